import CJPEG
import Foundation
import Vision
import XCTest

// JPEG decoding is checked against djpeg, libjpeg-turbo's own decoder: the fixtures in
// Fixtures/jpeg and their reference decodes (.ppm, .pgm) come from make_jpeg_fixtures.sh.
// The shim uses djpeg's settings (accurate integer IDCT, fancy upsampling, the same scale),
// so with the same libjpeg-turbo the pixels must be equal, not close. Where a test needs a
// tolerance (a decode against a box filter, gray against the luma of RGB) it says why.

/// The JPEG fixtures and their references.
enum JPEGFixtures {
  static let directory: URL = Bundle.module.resourceURL!.appendingPathComponent("Fixtures/jpeg")

  static func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

  static func bytes(_ name: String) throws -> [UInt8] {
    try [UInt8](Data(contentsOf: URL(fileURLWithPath: path(name))))
  }

  /// A binary PNM as djpeg writes it (P5 gray or P6 RGB, maxval 255) as an `Image`.
  static func pnm(_ name: String) throws -> Image {
    let bytes = try self.bytes(name)
    var fields: [String] = []
    var i = 0
    while fields.count < 4 {
      while bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x09 || bytes[i] == 0x0D { i += 1 }
      let start = i
      while !(bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x09 || bytes[i] == 0x0D) { i += 1 }
      fields.append(String(decoding: bytes[start..<i], as: UTF8.self))
    }
    i += 1  // the single whitespace byte before the samples
    let channels = fields[0] == "P5" ? 1 : 3
    precondition(fields[0] == "P5" || fields[0] == "P6", "\(name): not a binary PNM")
    precondition(fields[3] == "255", "\(name): maxval \(fields[3])")
    let width = Int(fields[1])!
    let height = Int(fields[2])!
    return Image(
      width: width, height: height, channels: channels, pixels: Array(bytes[i..<i + width * height * channels]))
  }

  /// The offset of the first marker `code` (FF code) in a JPEG's header segments.
  static func markerOffset(_ bytes: [UInt8], _ code: UInt8) -> Int? {
    var i = 2
    while i + 4 <= bytes.count, bytes[i] == 0xFF {
      if bytes[i + 1] == code { return i }
      if bytes[i + 1] == 0xDA { return nil }  // start of scan: no more header segments
      i += 2 + Int(bytes[i + 2]) << 8 + Int(bytes[i + 3])
    }
    return nil
  }

  /// `bytes` with the frame header (SOF0 or SOF2) claiming `width`×`height`.
  static func withFrameSize(_ bytes: [UInt8], width: Int, height: Int) -> [UInt8] {
    var patched = bytes
    let sof = markerOffset(bytes, 0xC0) ?? markerOffset(bytes, 0xC2)!
    // FF Cn, length (2), precision (1), height (2), width (2).
    patched[sof + 5] = UInt8(height >> 8)
    patched[sof + 6] = UInt8(height & 0xFF)
    patched[sof + 7] = UInt8(width >> 8)
    patched[sof + 8] = UInt8(width & 0xFF)
    return patched
  }

  /// Where the entropy-coded data of the first scan starts.
  static func scanDataOffset(_ bytes: [UInt8]) -> Int {
    var i = 2
    while bytes[i + 1] != 0xDA { i += 2 + Int(bytes[i + 2]) << 8 + Int(bytes[i + 3]) }
    return i + 2 + Int(bytes[i + 2]) << 8 + Int(bytes[i + 3])
  }
}

final class JPEGTests: XCTestCase {
  func assertError(
    _ kind: VisionError.Kind, containing text: String? = nil, file: StaticString = #filePath, line: UInt = #line,
    _ body: () throws -> Any
  ) {
    do {
      _ = try body()
      XCTFail("expected a \(kind) error", file: file, line: line)
    } catch let error as VisionError {
      XCTAssertEqual(error.kind, kind, error.description, file: file, line: line)
      if let text { XCTAssertTrue(error.reason.contains(text), error.reason, file: file, line: line) }
    } catch {
      XCTFail("unexpected error type: \(error)", file: file, line: line)
    }
  }

  func maxDifference(_ a: Image, _ b: Image) -> Int {
    precondition(a.shape == b.shape, "\(a.shape) vs \(b.shape)")
    return zip(a.pixels, b.pixels).map { abs(Int($0) - Int($1)) }.max() ?? 0
  }

  // MARK: - Every kind of file against djpeg

  func testEachSubsamplingGrayProgressiveAndArithmeticMatchDjpegExactly() throws {
    let cases: [(file: String, reference: String, format: String)] = [
      ("pattern-gray.jpg", "pattern-gray.pgm", "JPEG gray"),
      ("pattern-444.jpg", "pattern-444.ppm", "JPEG 4:4:4"),
      ("pattern-422.jpg", "pattern-422.ppm", "JPEG 4:2:2"),
      ("pattern-420.jpg", "pattern-420.ppm", "JPEG 4:2:0"),
      ("pattern-progressive.jpg", "pattern-progressive.ppm", "JPEG 4:2:0 progressive"),
      ("pattern-progressive-gray.jpg", "pattern-progressive-gray.pgm", "JPEG gray progressive"),
      ("pattern-arithmetic.jpg", "pattern-arithmetic.ppm", "JPEG 4:2:0"),
    ]
    var decoded: [Image] = []
    for (file, reference, format) in cases {
      let bytes = try JPEGFixtures.bytes(file)
      let header = try JPEG.header(of: bytes)
      XCTAssertEqual(header.formatName, format, file)
      XCTAssertEqual([header.width, header.height, header.orientation], [37, 29, 1], file)
      XCTAssertEqual(header.isProgressive, format.hasSuffix("progressive"), file)
      let image = try JPEG.decode(bytes)
      XCTAssertEqual(image, try JPEGFixtures.pnm(reference), file)
      XCTAssertEqual(try ImageFile.read(path: JPEGFixtures.path(file)), image, file)
      decoded.append(image)
    }
    // The colour files really differ (each subsampling decodes to its own pixels), so the
    // exact matches above are not three looks at one decode. A progressive file holds the
    // same coefficients as its baseline twin, split into scans, and an arithmetic-coded
    // file the same coefficients, coded otherwise: the same pixels.
    XCTAssertEqual(Set(decoded[1...3].map(\.pixels)).count, 3)
    XCTAssertEqual(decoded[4], decoded[3])
    XCTAssertEqual(decoded[5], decoded[0])
    XCTAssertEqual(decoded[6], decoded[3])
  }

  func testChannelConversions() throws {
    // Gray to RGB replicates the gray value.
    let gray = try JPEGFixtures.pnm("pattern-gray.pgm")
    let rgb = try JPEG.decode(JPEGFixtures.bytes("pattern-gray.jpg"), options: ImageDecodeOptions(channels: .rgb))
    XCTAssertEqual(rgb.channels, 3)
    XCTAssertEqual(rgb.pixels, gray.pixels.flatMap { [$0, $0, $0] })
    XCTAssertEqual(try JPEG.decode(JPEGFixtures.bytes("pattern-gray.jpg")).channels, 1)

    // Colour to gray is the stored luma Y. The BT.601 luma of the decoded RGB is Y again
    // in exact arithmetic (decoding inverts the encoder's YCbCr matrix), so only
    // rounding separates them: R, G and B are each rounded (≤ 0.5, and the luma weights
    // sum to 1), then the luma (≤ 0.5): at most 1 apart, where no channel was clamped.
    let colour = try JPEGFixtures.pnm("pattern-444.ppm")
    let luma = try JPEG.decode(JPEGFixtures.bytes("pattern-444.jpg"), options: ImageDecodeOptions(channels: .gray))
    XCTAssertEqual(luma.shape, [29, 37, 1])
    var compared = 0
    for p in 0..<luma.pixels.count {
      let (r, g, b) = (Int(colour.pixels[3 * p]), Int(colour.pixels[3 * p + 1]), Int(colour.pixels[3 * p + 2]))
      guard ![r, g, b].contains(where: { $0 == 0 || $0 == 255 }) else { continue }
      XCTAssertLessThanOrEqual(abs(Int(luma.pixels[p]) - Suite.luma(r, g, b)), 1, "pixel \(p)")
      compared += 1
    }
    XCTAssertGreaterThan(compared, luma.pixels.count / 2)
  }

  // MARK: - EXIF orientation

  func testEveryExifOrientationIsShownUpright() throws {
    // Each orient-K.jpg stores the upright image under the inverse of K's transform
    // (jpegtran, lossless), so applying K must give the upright image back. Every 8×8
    // block of it is flat (DC only), which transposing and mirroring keep exact: the
    // decode equals djpeg's decode of the upright file.
    let upright = try JPEGFixtures.pnm("orient-upright.ppm")
    // The four quadrants are told apart (red, green / blue, white), so a wrong transform
    // moves at least two of them and cannot pass.
    let centres = [(8, 4), (24, 4), (8, 12), (24, 12)].map {
      upright[$0.0, $0.1, 0] / 64 * 16 + upright[$0.0, $0.1, 1] / 64 * 4 + upright[$0.0, $0.1, 2] / 64
    }
    XCTAssertEqual(Set(centres).count, 4)
    for k in 1...8 {
      let bytes = try JPEGFixtures.bytes("orient-\(k).jpg")
      let header = try JPEG.header(of: bytes)
      XCTAssertEqual(header.orientation, k)
      XCTAssertEqual([header.storedWidth, header.storedHeight], k >= 5 ? [16, 32] : [32, 16], "orientation \(k)")
      XCTAssertEqual([header.width, header.height], [32, 16], "orientation \(k)")
      let image = try JPEG.decode(bytes)
      XCTAssertEqual(image, upright, "orientation \(k)")
      XCTAssertEqual(try JPEG.decode(bytes, options: ImageDecodeOptions(channels: .gray)).shape, [16, 32, 1])
      let imageHeader = try ImageFile.header(path: JPEGFixtures.path("orient-\(k).jpg"))
      XCTAssertEqual([imageHeader.width, imageHeader.height], [32, 16])
    }
  }

  func testMalformedExifIsIgnoredNeverTrusted() throws {
    let upright = try JPEGFixtures.bytes("orient-6.jpg")
    // The APP1 segment starts at byte 2; its TIFF header at 12; IFD0 offset at 16…19
    // (little-endian here). Offsets pointing past the segment, an orientation of 9 and a
    // wrong field type all leave the file as stored (orientation 1).
    var farOffset = upright
    farOffset[16] = 0xF0
    var badValue = upright
    badValue[30] = 9  // the entry's value (after tag 12 01, type 03 00, count 01 00 00 00)
    var badType = upright
    badType[24] = 4  // LONG instead of SHORT
    for damaged in [farOffset, badValue, badType] {
      let header = try JPEG.header(of: damaged)
      XCTAssertEqual(header.orientation, 1)
      XCTAssertEqual([header.width, header.height], [16, 32])
      XCTAssertEqual(try JPEG.decode(damaged).shape, [32, 16, 3])
    }
    // Every cut of the EXIF segment's length keeps the parser inside the segment.
    for length in 2..<0x22 {
      var cut = upright
      cut[5] = UInt8(length)
      _ = try? JPEG.decode(cut)
    }
  }

  // MARK: - CMYK

  func testAdobeCMYKAndYCCKAreConvertedToRGB() throws {
    for kind in ["cmyk", "ycck"] {
      let bytes = try JPEGFixtures.bytes("\(kind).jpg")
      let header = try JPEG.header(of: bytes)
      XCTAssertEqual(header.colorSpace, kind == "cmyk" ? .cmyk : .ycck)
      XCTAssertTrue(header.hasAdobeMarker)
      XCTAssertEqual(header.formatName, kind == "cmyk" ? "JPEG CMYK" : "JPEG YCCK")
      XCTAssertEqual(header.naturalChannels, 3)
      // djpeg's PPM writer converts CMYK as R = round(C·K/255) on the stored (inverted)
      // values, the same rule as the shim: equal.
      let reference = try JPEGFixtures.pnm("\(kind).ppm")
      let image = try JPEG.decode(bytes)
      XCTAssertEqual(image, reference, kind)
      // The left half is cyan ink (little red), the right half magenta (little green).
      XCTAssertLessThan(image[2, 0, 0], 100)
      XCTAssertGreaterThan(image[2, 0, 1], 200)
      XCTAssertLessThan(image[12, 0, 1], 100)
      // Gray is the BT.601 luma of that RGB.
      let gray = try JPEG.decode(bytes, options: ImageDecodeOptions(channels: .gray))
      XCTAssertEqual(
        gray.pixels,
        (0..<16 * 8).map { p in
          UInt8(
            Suite.luma(Int(reference.pixels[3 * p]), Int(reference.pixels[3 * p + 1]), Int(reference.pixels[3 * p + 2]))
          )
        })
    }
  }

  // MARK: - Size budget and DCT scaling

  func testDecompressionBombIsRefusedFromTheHeaderBeforeAnyAllocation() throws {
    let bomb = JPEGFixtures.withFrameSize(try JPEGFixtures.bytes("pattern-420.jpg"), width: 65000, height: 65000)
    let header = try JPEG.header(of: bomb)
    XCTAssertEqual([header.width, header.height], [65000, 65000])
    let message = "65000×65000 pixels exceeds the limit of 67108864 pixels (raise maxPixels to read it)"
    assertError(.tooLarge, containing: message) { try JPEG.decode(bomb) }
    let path = NSTemporaryDirectory() + "pretext-bomb-\(UUID().uuidString).jpg"
    try Data(bomb).write(to: URL(fileURLWithPath: path))
    defer { try? FileManager.default.removeItem(atPath: path) }
    assertError(.tooLarge, containing: message) { try ImageFile.read(path: path) }
    // The shim refuses it too, before it looks at the output buffer: none is given here,
    // which would otherwise be an argument error.
    var options = cjpeg_decode_options(channels: 0, scale_denom: 1, max_pixels: 64 << 20)
    var text = [CChar](repeating: 0, count: Int(CJPEG_MESSAGE_CAPACITY))
    let status = bomb.withUnsafeBufferPointer {
      cjpeg_decode($0.baseAddress, $0.count, &options, nil, 0, nil, &text, text.count)
    }
    XCTAssertEqual(status, CJPEG_ERR_TOO_LARGE)
    XCTAssertEqual(String(cString: text), message)
    // The limit is inclusive, and applies to the stored size even when decoding smaller.
    let small = try JPEGFixtures.bytes("pattern-420.jpg")
    XCTAssertNoThrow(try JPEG.decode(small, options: ImageDecodeOptions(maxPixels: 37 * 29)))
    assertError(.tooLarge, containing: "37×29 pixels exceeds the limit of 1072") {
      try JPEG.decode(small, options: ImageDecodeOptions(maxPixels: 37 * 29 - 1, shorterSide: 4))
    }
  }

  func testScaleIsTheLargestReductionKeepingTheShorterSide() {
    let cases: [(Int?, Int)] = [(nil, 1), (48, 1), (47, 1), (25, 1), (24, 2), (13, 2), (12, 4), (7, 4), (6, 8), (1, 8)]
    for (minimum, expected) in cases {
      XCTAssertEqual(
        JPEG.scaleDenominator(width: 64, height: 48, minimumShorterSide: minimum), expected, "\(minimum ?? 0)")
    }
    // Sides round up: 29/8 → 4 still keeps a shorter side of 4.
    XCTAssertEqual(JPEG.scaleDenominator(width: 37, height: 29, minimumShorterSide: 4), 8)
    XCTAssertEqual(JPEG.scaleDenominator(width: 37, height: 29, minimumShorterSide: 5), 4)
    XCTAssertEqual(JPEG.scaleDenominator(width: 1, height: 300, minimumShorterSide: 1), 8)
  }

  func testScaledDecodesMatchDjpegAndABoxFilteredFullDecode() throws {
    let bytes = try JPEGFixtures.bytes("smooth.jpg")
    let full = try JPEGFixtures.pnm("smooth-1-1.ppm")
    XCTAssertEqual(try JPEG.decode(bytes), full)
    for (minimum, n) in [(24, 2), (12, 4), (6, 8)] {
      let scaled = try JPEG.decode(bytes, options: ImageDecodeOptions(shorterSide: minimum))
      XCTAssertEqual(scaled.shape, [48 / n, 64 / n, 3])
      XCTAssertEqual(scaled, try JPEGFixtures.pnm("smooth-1-\(n).ppm"), "1/\(n)")
      // Close to the full decode box-filtered n×n: a gradient's blocks are almost all
      // low frequencies, which the reduced IDCT keeps; what it drops (the quantized
      // remainder, chroma upsampling differences) moves no sample by more than 3 here.
      // A wrong scale or a shifted grid would be off by tens.
      XCTAssertLessThanOrEqual(maxDifference(scaled, boxDownscale(full, n)), 3, "1/\(n)")
    }
    // Gray at 1/8: the reduced IDCT of a block is its DC term, which is the block's mean
    // before rounding; the full decode's mean differs from it only by the per-pixel
    // rounding (no sample of this gradient is clamped): at most 1.
    let gray = try JPEG.decode(
      try JPEGFixtures.bytes("smooth-gray.jpg"), options: ImageDecodeOptions(shorterSide: 6))
    XCTAssertEqual(gray.shape, [6, 8, 1])
    XCTAssertLessThanOrEqual(maxDifference(gray, boxDownscale(try JPEGFixtures.pnm("smooth-gray.pgm"), 8)), 1)
    // Orientation is applied after scaling. PNG has no reduced decode: it is resized.
    let rotated = try JPEG.decode(
      try JPEGFixtures.bytes("orient-6.jpg"), options: ImageDecodeOptions(shorterSide: 4))
    XCTAssertEqual(rotated.shape, [4, 8, 3])
    let png = try PNG.encode(Image(width: 64, height: 48, channels: 1, filledWith: 9))
    let reduced = try ImageFile.decode(png, options: ImageDecodeOptions(shorterSide: 6))
    XCTAssertEqual(reduced, Image(width: 8, height: 6, channels: 1, filledWith: 9), "a flat image stays flat")
  }

  /// The mean of each n×n block, rounded.
  func boxDownscale(_ image: Image, _ n: Int) -> Image {
    let (w, h, c) = (image.width / n, image.height / n, image.channels)
    var out = Image(width: w, height: h, channels: c)
    for y in 0..<h {
      for x in 0..<w {
        for ch in 0..<c {
          var sum = 0
          for dy in 0..<n { for dx in 0..<n { sum += Int(image[x * n + dx, y * n + dy, ch]) } }
          out[x, y, ch] = UInt8((sum + n * n / 2) / (n * n))
        }
      }
    }
    return out
  }

  // MARK: - Bad input

  func testTruncatedEmptyAndForeignInputAreClearErrors() throws {
    for file in ["pattern-420.jpg", "pattern-progressive.jpg"] {
      let bytes = try JPEGFixtures.bytes(file)
      let scan = JPEGFixtures.scanDataOffset(bytes)
      // Cut inside the scan data: the pixels are incomplete.
      assertError(.truncated, containing: "the data ends before the JPEG image does") {
        try JPEG.decode(Array(bytes.prefix((scan + bytes.count) / 2)))
      }
      // Cut inside the header segments.
      assertError(.truncated) { try JPEG.header(of: Array(bytes.prefix(scan / 2))) }
      assertError(.truncated) { try JPEG.decode(Array(bytes.prefix(scan / 2))) }
      // Even with only the final EOI marker missing: libjpeg reads ahead for its bit
      // buffer and meets the end of the data while decoding the last pixel rows, so it
      // cannot tell this from a cut that lost pixels. Refused alike.
      assertError(.truncated) { try JPEG.decode(Array(bytes.dropLast(2))) }
    }
    assertError(.notJPEG, containing: "empty file") { try JPEG.decode([UInt8]()) }
    assertError(.notJPEG, containing: "not a JPEG file") { try JPEG.decode(Array("just text".utf8)) }
    assertError(.notJPEG, containing: "not a JPEG file") { try JPEG.decode([0xFF, 0xD8]) }
    assertError(.notJPEG, containing: "not a JPEG file") {
      try JPEG.decode(try PNG.encode(Image(width: 2, height: 2, channels: 1)))
    }
  }

  func testZeroWidthOrHeightInTheFrameHeaderIsRefused() throws {
    let bytes = try JPEGFixtures.bytes("pattern-444.jpg")
    for (w, h) in [(0, 29), (37, 0), (0, 0)] {
      let patched = JPEGFixtures.withFrameSize(bytes, width: w, height: h)
      assertError(.corrupt, containing: "the frame header (SOF) gives a width or height of 0") {
        try JPEG.header(of: patched)
      }
      assertError(.corrupt, containing: "width or height of 0") { try JPEG.decode(patched) }
    }
  }

  func testCorruptScanDataIsAnErrorAndTrailingGarbageIsNot() throws {
    // Decision: a warning from libjpeg while pixels are decoded (it would fill the rest
    // with guesses) makes the file unusable, as a PNG CRC error does; bytes after the last
    // pixel row change nothing and are accepted.
    let bytes = try JPEGFixtures.bytes("pattern-420.jpg")
    let scan = JPEGFixtures.scanDataOffset(bytes)
    let middle = (scan + bytes.count) / 2
    var marker = bytes
    marker.insert(contentsOf: [0xFF, 0xD0], at: middle)  // a restart marker where none may be
    assertError(.corrupt, containing: "corrupt image data: Corrupt JPEG data") { try JPEG.decode(marker) }
    var garbageBeforeEOI = bytes
    garbageBeforeEOI.insert(contentsOf: [0x00, 0x11, 0x22], at: bytes.count - 2)
    XCTAssertEqual(try JPEG.decode(garbageBeforeEOI), try JPEGFixtures.pnm("pattern-420.ppm"))
    XCTAssertEqual(try JPEG.decode(bytes + Array("trailing text".utf8)), try JPEGFixtures.pnm("pattern-420.ppm"))
  }

  func testDamagedBytesNeverCrash() throws {
    // Every byte of the header and a stride of the scan, set to each of a few values:
    // an image or a VisionError, never a crash (the fuzzer goes further:
    // Tests/Fuzz/run-jpeg-fuzzer.sh).
    for file in ["pattern-420.jpg", "pattern-progressive.jpg", "cmyk.jpg", "orient-5.jpg"] {
      let bytes = try JPEGFixtures.bytes(file)
      let scan = JPEGFixtures.scanDataOffset(bytes)
      for position in Array(2..<scan) + Array(stride(from: scan, to: bytes.count, by: 7)) {
        for value: UInt8 in [0x00, 0xFF, bytes[position] ^ 0x10] {
          var damaged = bytes
          damaged[position] = value
          do {
            let image = try JPEG.decode(damaged, options: ImageDecodeOptions(maxPixels: 1 << 20))
            XCTAssertEqual(image.pixels.count, image.width * image.height * image.channels)
          } catch is VisionError {
          }
        }
      }
    }
  }

  /// A progressive 8×8 gray JPEG of `scans` valid scans (all coefficients zero): the DC
  /// and then each AC coefficient alone, each sent at bit 13 and refined bit by bit (14
  /// scans per coefficient, 896 in all). Huffman tables of one 1-bit code (symbol 0), so
  /// every scan's data is the byte 0x7F: code or correction bit 0, padded with ones.
  func manyScans(_ scans: Int) -> [UInt8] {
    func segment(_ marker: UInt8, _ payload: [UInt8]) -> [UInt8] {
      [0xFF, marker, UInt8((payload.count + 2) >> 8), UInt8((payload.count + 2) & 0xFF)] + payload
    }
    let oneCode: [UInt8] = [1] + [UInt8](repeating: 0, count: 15) + [0]
    var bytes: [UInt8] = [0xFF, 0xD8]
    bytes += segment(0xDB, [0] + [UInt8](repeating: 1, count: 64))  // quantization table 0
    bytes += segment(0xC2, [8, 0, 8, 0, 8, 1, 1, 0x11, 0])  // SOF2: 8×8, one component
    bytes += segment(0xC4, [0x00] + oneCode + [0x10] + oneCode)  // DC and AC table 0
    var all: [[UInt8]] = []
    for k: UInt8 in 0..<64 {
      all.append(segment(0xDA, [1, 1, 0, k, k, 13]) + [0x7F])
      for bit: UInt8 in (0..<13).reversed() {
        all.append(segment(0xDA, [1, 1, 0, k, k, (bit + 1) << 4 | bit]) + [0x7F])
      }
    }
    precondition(scans <= all.count)
    return bytes + all.prefix(scans).joined() + [0xFF, 0xD9]
  }

  func testMoreThan500ScansAreRefused() throws {
    // TurboJPEG's limit: every scan is a pass over the whole coefficient buffer, so a
    // small file with thousands of scans costs far more than its size says.
    let flat = Image(width: 8, height: 8, channels: 1, filledWith: 128)
    XCTAssertEqual(try JPEG.decode(manyScans(14)), flat)
    XCTAssertEqual(try JPEG.decode(manyScans(500)), flat)
    assertError(.corrupt, containing: "more than 500 scans") { try JPEG.decode(manyScans(501)) }
    assertError(.corrupt, containing: "more than 500 scans") { try JPEG.decode(manyScans(896)) }
  }

  func testHeaderOfAFileWithLongSegmentsBeforeTheFrame() throws {
    // Two 60,000-byte APP2 segments (an ICC profile's size) push the frame header past
    // the 64 KiB prefix the header reader starts with: it then reads the whole file.
    let bytes = try JPEGFixtures.bytes("pattern-444.jpg")
    let segment: [UInt8] = [0xFF, 0xE2, 0xEA, 0x60] + [UInt8](repeating: 0x41, count: 60_000 - 2)
    let long = Array(bytes.prefix(2)) + segment + segment + Array(bytes.dropFirst(2))
    let path = NSTemporaryDirectory() + "pretext-long-\(UUID().uuidString).jpg"
    try Data(long).write(to: URL(fileURLWithPath: path))
    defer { try? FileManager.default.removeItem(atPath: path) }
    let header = try JPEG.header(path: path)
    XCTAssertEqual([header.width, header.height], [37, 29])
    XCTAssertEqual(try ImageFile.read(path: path), try JPEGFixtures.pnm("pattern-444.ppm"))
  }

  // MARK: - Names and contents

  func testFilesAreReadByContentWhateverTheirName() throws {
    let root = try DataFixtures.makeFolder()
    defer { DataFixtures.remove(root) }
    let jpeg = try JPEGFixtures.bytes("pattern-420.jpg")
    let png = try PNG.encode(DataFixtures.image(width: 5, height: 4, channels: 3, seed: 2))
    try DataFixtures.file(root, "jpeg-named.png", jpeg)
    try DataFixtures.file(root, "png-named.jpg", png)
    try DataFixtures.file(root, "png-named.JPEG", png)
    XCTAssertEqual(try ImageFile.read(path: root + "/jpeg-named.png"), try JPEGFixtures.pnm("pattern-420.ppm"))
    XCTAssertEqual(try ImageFile.read(path: root + "/png-named.jpg"), try PNG.decode(png))
    XCTAssertEqual(try ImageFile.header(path: root + "/jpeg-named.png").format, .jpeg)
    XCTAssertEqual(try ImageFile.header(path: root + "/png-named.jpg").format, .png)
    let report = try DataCheck.run(path: root)
    XCTAssertTrue(report.allUsable, report.text)
    XCTAssertEqual(report.shapes.map(\.text), ["5×4 RGB: 2", "37×29 JPEG 4:2:0: 1"])

    // Neither format: the error says so, typed by what the name claims.
    try DataFixtures.text(root, "text.jpg", "this is not an image\n")
    XCTAssertThrowsError(try ImageFile.read(path: root + "/text.jpg")) { error in
      XCTAssertEqual((error as? VisionError)?.kind, .notJPEG)
      XCTAssertEqual(
        (error as? VisionError)?.reason,
        "not a PNG or JPEG file (bad signature: it starts with 74 68 69 73, neither the PNG signature 89 50 4E 47 "
          + "nor the JPEG start of image FF D8)")
    }
    XCTAssertEqual(ImageFormat.named("a/b.JPG"), .jpeg)
    XCTAssertEqual(ImageFormat.named("a/b.jpeg"), .jpeg)
    XCTAssertEqual(ImageFormat.named("a/b.Png"), .png)
    XCTAssertNil(ImageFormat.named("a.jpg/b"))
    XCTAssertNil(ImageFormat.named("jpg"))
    XCTAssertEqual(ImageFormat.extensionNames, ".jpeg, .jpg or .png")
  }
}
