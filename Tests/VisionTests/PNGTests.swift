import Foundation
import XCTest

import Vision

// PNG decoding is checked against PngSuite (Fixtures/pngsuite, see its README.md): every
// valid file must decode to the pixels of its JSON reference (a flat RGBA array, 16-bit
// values for 16-bit files), and every corrupt x*.png must be refused with an error that
// names the file and the reason.

/// Fixture access and reference arithmetic shared by the tests.
enum Suite {
  static let directory: URL = Bundle.module.resourceURL!
    .appendingPathComponent("Fixtures/pngsuite")

  static func path(_ name: String) -> String {
    directory.appendingPathComponent("png/\(name).png").path
  }

  static func bytes(_ name: String) throws -> [UInt8] {
    try [UInt8](Data(contentsOf: URL(fileURLWithPath: path(name))))
  }

  /// All file names (without extension) in png/.
  static let names: [String] = {
    let files = try! FileManager.default.contentsOfDirectory(
      atPath: directory.appendingPathComponent("png").path)
    return files.filter { $0.hasSuffix(".png") }.map { String($0.dropLast(4)) }.sorted()
  }()

  static var validNames: [String] { names.filter { !$0.hasPrefix("x") } }
  static var corruptNames: [String] { names.filter { $0.hasPrefix("x") } }

  /// The JSON reference `json/<name>.json`, or nil if there is none.
  static func reference(_ name: String) -> [Int]? {
    let url = directory.appendingPathComponent("json/\(name).json")
    guard let data = try? Data(contentsOf: url) else { return nil }
    return try! JSONDecoder().decode([Int].self, from: data)
  }

  /// The 8-bit RGBA reference of a valid file. 16-bit references are reduced the way
  /// libpng's png_set_scale_16 does (round(v * 255 / 65535)), so the comparison is exact.
  static func rgba8(_ name: String) -> [Int] {
    let values = reference(name)!
    guard name.hasSuffix("16") else { return values }
    return values.map { ($0 * 255 + 32895) >> 16 }
  }

  static func luma(_ r: Int, _ g: Int, _ b: Int) -> Int {
    (19595 * r + 38470 * g + 7471 * b + 32768) >> 16
  }

  static func over(_ c: Int, _ a: Int, _ background: Int) -> Int {
    Int((Double(c * a + background * (255 - a)) / 255).rounded())
  }
}

/// CRC-32 (PNG/zlib polynomial), for crafting chunks.
func crc32(_ bytes: some Sequence<UInt8>) -> UInt32 {
  var crc: UInt32 = 0xFFFF_FFFF
  for byte in bytes {
    crc ^= UInt32(byte)
    for _ in 0..<8 { crc = (crc >> 1) ^ (crc & 1 == 0 ? 0 : 0xEDB8_8320) }
  }
  return ~crc
}

func bigEndian(_ value: UInt32) -> [UInt8] {
  [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
}

/// Signature + IHDR chunk with a correct CRC, and nothing else.
func headerOnlyPNG(width: UInt32, height: UInt32, bitDepth: UInt8 = 8, colorType: UInt8 = 2)
  -> [UInt8]
{
  let body: [UInt8] =
    Array("IHDR".utf8) + bigEndian(width) + bigEndian(height) + [bitDepth, colorType, 0, 0, 0]
  return [137, 80, 78, 71, 13, 10, 26, 10] + bigEndian(13) + body + bigEndian(crc32(body))
}

/// Deterministic pseudo-random bytes (SplitMix64), so failures reproduce.
func noise(count: Int, seed: UInt64) -> [UInt8] {
  var state = seed
  return (0..<count).map { _ in
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return UInt8(truncatingIfNeeded: z ^ (z >> 31))
  }
}

final class PNGSuiteTests: XCTestCase {
  func testSuiteIsComplete() {
    XCTAssertEqual(Suite.names.count, 175)
    XCTAssertEqual(Suite.corruptNames.count, 14)
  }

  /// RGB output with alpha dropped must equal the reference's RGB exactly.
  func testValidFilesDecodeToReferenceRGB() throws {
    var failures: [String] = []
    for name in Suite.validNames {
      let image = try PNG.read(path: Suite.path(name), options: ImageDecodeOptions(channels: .rgb))
      let reference = Suite.rgba8(name)
      XCTAssertEqual(image.channels, 3, name)
      XCTAssertEqual(reference.count, image.width * image.height * 4, name)
      var mismatches = 0
      for i in 0..<(image.width * image.height) {
        for c in 0..<3 where Int(image.pixels[i * 3 + c]) != reference[i * 4 + c] {
          mismatches += 1
        }
      }
      if mismatches > 0 { failures.append("\(name): \(mismatches) samples differ") }
    }
    XCTAssertEqual(failures, [])
  }

  /// The reduced `_to8` references round 16-bit samples differently (some truncate), so
  /// they agree with libpng's correctly rounded reduction only to within 1.
  func testSixteenBitFilesMatchTo8ReferencesWithinOne() throws {
    var checked = 0
    for name in Suite.validNames where name.hasSuffix("16") {
      guard let to8 = Suite.reference(name + "_to8") else { continue }
      let image = try PNG.read(path: Suite.path(name), options: ImageDecodeOptions(channels: .rgb))
      for i in 0..<(image.width * image.height) {
        for c in 0..<3 {
          let got = Int(image.pixels[i * 3 + c])
          let want = to8[i * 4 + c]
          if abs(got - want) > 1 {
            XCTFail("\(name) pixel \(i) channel \(c): \(got) vs _to8 \(want)")
            return
          }
        }
      }
      checked += 1
    }
    XCTAssertEqual(checked, 29)
  }

  /// Gray output: gray sources come out as stored, colour sources as BT.601 luma.
  func testValidFilesDecodeToReferenceGray() throws {
    var failures: [String] = []
    for name in Suite.validNames {
      let header = try PNG.header(path: Suite.path(name))
      let image = try PNG.read(path: Suite.path(name), options: ImageDecodeOptions(channels: .gray))
      let reference = Suite.rgba8(name)
      XCTAssertEqual(image.channels, 1, name)
      let isGraySource = header.colorType == .gray || header.colorType == .grayAlpha
      var mismatches = 0
      for i in 0..<(image.width * image.height) {
        let (r, g, b) = (reference[i * 4], reference[i * 4 + 1], reference[i * 4 + 2])
        let want = isGraySource ? r : Suite.luma(r, g, b)
        if Int(image.pixels[i]) != want { mismatches += 1 }
      }
      if mismatches > 0 { failures.append("\(name): \(mismatches) pixels differ") }
    }
    XCTAssertEqual(failures, [])
  }

  /// Natural output keeps gray sources gray and everything else RGB, with the same values
  /// as the explicit requests.
  func testNaturalChannels() throws {
    for name in Suite.validNames {
      let path = Suite.path(name)
      let header = try PNG.header(path: path)
      let natural = try PNG.read(path: path)
      XCTAssertEqual(natural.channels, header.naturalChannels, name)
      let explicit = try PNG.read(
        path: path, options: ImageDecodeOptions(channels: natural.channels == 1 ? .gray : .rgb))
      XCTAssertEqual(natural, explicit, name)
    }
  }

  /// Compositing over a background uses the reference's alpha (alpha channels and tRNS).
  func testAlphaCompositing() throws {
    let background = ImageDecodeOptions.Background(red: 30, green: 140, blue: 220)
    let backgroundGray = Suite.luma(30, 140, 220)
    var transparentFiles = 0
    var failures: [String] = []
    for name in Suite.validNames {
      let path = Suite.path(name)
      let reference = Suite.rgba8(name)
      let rgb = try PNG.read(
        path: path, options: ImageDecodeOptions(channels: .rgb, background: background))
      let gray = try PNG.read(
        path: path, options: ImageDecodeOptions(channels: .gray, background: background))
      let isGraySource = try PNG.header(path: path).naturalChannels == 1
      if stride(from: 3, to: reference.count, by: 4).contains(where: { reference[$0] != 255 }) {
        transparentFiles += 1
      }
      var mismatches = 0
      for i in 0..<(rgb.width * rgb.height) {
        let a = reference[i * 4 + 3]
        let composited = [30, 140, 220].enumerated().map { c, bg in
          Suite.over(reference[i * 4 + c], a, bg)
        }
        if rgb.pixels[i * 3..<i * 3 + 3].map(Int.init) != composited { mismatches += 1 }
        let wantGray =
          isGraySource
          ? Suite.over(reference[i * 4], a, backgroundGray)
          : Suite.luma(composited[0], composited[1], composited[2])
        if Int(gray.pixels[i]) != wantGray { mismatches += 1 }
      }
      if mismatches > 0 { failures.append("\(name): \(mismatches) mismatches") }
    }
    XCTAssertEqual(failures, [])
    // The suite's alpha and tRNS files (basn4a08, tbbn3p08, tp1n3p08, ...).
    XCTAssertGreaterThan(transparentFiles, 20)
  }

  /// The header agrees with the file name's colour type, bit depth and interlace code.
  func testHeadersMatchFileNames() throws {
    let colorTypes: [Character: PNGHeader.ColorType] = [
      "0": .gray, "2": .rgb, "3": .palette, "4": .grayAlpha, "6": .rgba,
    ]
    for name in Suite.validNames {
      let header = try PNG.header(path: Suite.path(name))
      let code = Array(name.suffix(5))  // e.g. "n2c08": interlace, colour type, depth
      XCTAssertEqual(header.colorType, colorTypes[code[1]], name)
      XCTAssertEqual(header.bitDepth, Int(String(code[3...]))!, name)
      if code[0] == "n" { XCTAssertFalse(header.isInterlaced, name) }
      if code[0] == "i" { XCTAssertTrue(header.isInterlaced, name) }
      let image = try PNG.read(path: Suite.path(name))
      XCTAssertEqual([image.width, image.height], [header.width, header.height], name)
    }
    // Odd sizes: s01n3p01 is 1×1, s40i3p04 is 40×40.
    XCTAssertEqual(try PNG.header(path: Suite.path("s01n3p01")).pixelCount, 1)
    XCTAssertEqual(try PNG.header(path: Suite.path("s40i3p04")).width, 40)
  }

  /// Interlaced and non-interlaced versions of the same picture decode identically.
  func testInterlacedMatchesNonInterlaced() throws {
    // basi* / basn* and s01i* / s01n* ...: the 4th letter is the interlace code.
    var pairs = 0
    for name in Suite.validNames where Array(name)[3] == "i" {
      let twin = String(name.prefix(3)) + "n" + name.dropFirst(4)
      guard Suite.names.contains(twin) else { continue }
      XCTAssertTrue(try PNG.header(path: Suite.path(name)).isInterlaced, name)
      for channels in [ImageDecodeOptions.Channels.gray, .rgb] {
        let options = ImageDecodeOptions(channels: channels, background: .white)
        XCTAssertEqual(
          try PNG.read(path: Suite.path(name), options: options),
          try PNG.read(path: Suite.path(twin), options: options), name)
      }
      pairs += 1
    }
    XCTAssertEqual(pairs, 33)  // 15 basic + 18 odd-size pairs
  }

  /// Every corrupt file (all 14 of PngSuite's x* files, the CRC-only ones included: the
  /// shim has libpng check every CRC) is refused, from a path with "<path>: <reason>" and
  /// from memory with the reason alone, with the same kind and reason every time.
  func testCorruptFilesAreRejectedWithClearErrors() throws {
    let expectedKinds: [String: VisionError.Kind] = [
      "xs1n0g01": .notPNG, "xs2n0g01": .notPNG, "xs4n0g01": .notPNG, "xs7n0g01": .notPNG,
      "xcrn0g04": .notPNG, "xlfn0g04": .notPNG,
      "xc1n0g08": .corrupt, "xc9n2c08": .corrupt, "xd0n2c08": .corrupt, "xd3n2c08": .corrupt,
      "xd9n2c08": .corrupt, "xdtn0g01": .corrupt, "xcsn0g01": .corrupt, "xhdn0g08": .corrupt,
    ]
    let expectedReasons: [String: String] = [
      "xs1n0g01": "not a PNG file (bad signature)",
      "xcrn0g04": "not a PNG file (bad signature: bytes 5-8 (CR LF ^Z LF) damaged, as by a text-mode transfer)",
      "xhdn0g08": "CRC error in IHDR chunk",
      "xdtn0g01": "no image data (IEND before any IDAT chunk)",
      "xcsn0g01": "CRC error in IDAT chunk",
      "xc1n0g08": "Invalid IHDR data (Invalid color type in IHDR)",
      "xd3n2c08": "Invalid IHDR data (Invalid bit depth in IHDR; Invalid color type/bit depth combination in IHDR)",
    ]
    XCTAssertEqual(Set(expectedKinds.keys), Set(Suite.corruptNames))
    for name in Suite.corruptNames {
      let path = Suite.path(name)
      var outcomes: [String] = []
      for _ in 0..<2 {
        do {
          let image = try PNG.read(path: path)
          XCTFail("\(name): a corrupt file decoded (\(image.shape))")
        } catch let error as VisionError {
          XCTAssertEqual(error.path, path, name)
          XCTAssertTrue(error.description.hasPrefix("\(path): "), error.description)
          XCTAssertFalse(error.reason.isEmpty, name)
          XCTAssertEqual(error.kind, expectedKinds[name], "\(name): \(error)")
          if let reason = expectedReasons[name] { XCTAssertEqual(error.reason, reason, name) }
          outcomes.append(error.description)
        }
      }
      XCTAssertEqual(outcomes.count, 2, name)
      XCTAssertEqual(outcomes.first, outcomes.last, name)
      // Decoding from memory (no path) gives the same kind and reason without a prefix.
      let bytes = try Suite.bytes(name)
      let error = try XCTUnwrap(Result { try PNG.decode(bytes) }.failure, "\(name) decoded from memory")
      XCTAssertNil(error.path)
      XCTAssertEqual(error.kind, expectedKinds[name], name)
      XCTAssertEqual(error.description, error.reason)
    }
  }
}

extension Result where Failure == any Error {
  fileprivate var failure: VisionError? {
    if case .failure(let error) = self { return error as? VisionError }
    return nil
  }
}

final class PNGCodecTests: XCTestCase {
  var temporaryDirectory: URL!

  override func setUpWithError() throws {
    temporaryDirectory = FileManager.default.temporaryDirectory
      .appendingPathComponent("pretext-png-tests-\(getpid())-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: temporaryDirectory, withIntermediateDirectories: true)
  }

  override func tearDownWithError() throws {
    try? FileManager.default.removeItem(at: temporaryDirectory)
  }

  func temporaryPath(_ name: String) -> String {
    temporaryDirectory.appendingPathComponent(name).path
  }

  func assertError(
    _ kind: VisionError.Kind, _ reason: String? = nil, file: StaticString = #filePath,
    line: UInt = #line, _ body: () throws -> Any
  ) {
    do {
      _ = try body()
      XCTFail("expected a \(kind) error", file: file, line: line)
    } catch let error as VisionError {
      XCTAssertEqual(error.kind, kind, error.description, file: file, line: line)
      if let reason { XCTAssertEqual(error.reason, reason, file: file, line: line) }
    } catch {
      XCTFail("unexpected error type: \(error)", file: file, line: line)
    }
  }

  func testRoundTripGrayAndRGB() throws {
    for (channels, width, height) in [(1, 1, 1), (1, 37, 23), (3, 1, 5), (3, 64, 33)] {
      let pixels = noise(count: width * height * channels, seed: UInt64(width * 100 + channels))
      let image = Image(width: width, height: height, channels: channels, pixels: pixels)
      for level in [0, 1, 6, 9] {
        let encoded = try PNG.encode(image, compressionLevel: level)
        XCTAssertEqual(Array(encoded.prefix(8)), [137, 80, 78, 71, 13, 10, 26, 10])
        let header = try PNG.header(of: encoded)
        XCTAssertEqual(header.colorType, channels == 1 ? .gray : .rgb)
        XCTAssertEqual(header.bitDepth, 8)
        XCTAssertEqual(try PNG.decode(encoded), image, "\(channels)ch \(width)×\(height) L\(level)")
        XCTAssertEqual(try PNG.decode(Data(encoded)), image)
      }
    }
  }

  func testRoundTripWithAlphaDropsOrComposites() throws {
    // Two RGBA pixels: opaque red, half-transparent blue.
    let rgba = Image(width: 2, height: 1, channels: 4, pixels: [255, 0, 0, 255, 0, 0, 255, 128])
    let encoded = try PNG.encode(rgba)
    XCTAssertEqual(try PNG.header(of: encoded).colorType, .rgba)
    XCTAssertEqual(try PNG.decode(encoded).pixels, [255, 0, 0, 0, 0, 255])
    let onWhite = try PNG.decode(encoded, options: ImageDecodeOptions(background: .white))
    // 255 * 127 / 255 = 127 for red and green; blue is 255 either way.
    XCTAssertEqual(onWhite.pixels, [255, 0, 0, 127, 127, 255])

    let grayAlpha = Image(width: 2, height: 1, channels: 2, pixels: [200, 0, 100, 255])
    let grayEncoded = try PNG.encode(grayAlpha)
    XCTAssertEqual(try PNG.header(of: grayEncoded).colorType, .grayAlpha)
    XCTAssertEqual(try PNG.decode(grayEncoded).pixels, [200, 100])
    let onGray = try PNG.decode(
      grayEncoded, options: ImageDecodeOptions(background: ImageDecodeOptions.Background(gray: 50)))
    XCTAssertEqual(onGray.pixels, [50, 100])
  }

  func testChannelConversions() throws {
    let rgb = Image(
      width: 3, height: 1, channels: 3, pixels: [255, 0, 0, 0, 255, 0, 10, 20, 30])
    let gray = try PNG.decode(try PNG.encode(rgb), options: ImageDecodeOptions(channels: .gray))
    // BT.601: 0.299 * 255 = 76.2, 0.587 * 255 = 149.7, 0.299*10 + 0.587*20 + 0.114*30 = 18.1.
    XCTAssertEqual(gray.pixels, [76, 150, 18])

    let grayImage = Image(width: 2, height: 1, channels: 1, pixels: [7, 250])
    let asRGB = try PNG.decode(try PNG.encode(grayImage), options: ImageDecodeOptions(channels: .rgb))
    XCTAssertEqual(asRGB.pixels, [7, 7, 7, 250, 250, 250])
  }

  func testWriteIsAtomicAndReadable() throws {
    let path = temporaryPath("out.png")
    let first = Image(width: 5, height: 4, channels: 3, pixels: noise(count: 60, seed: 1))
    let second = Image(width: 2, height: 2, channels: 1, pixels: [0, 64, 128, 255])
    try PNG.write(first, to: path)
    XCTAssertEqual(try PNG.read(path: path), first)
    try PNG.write(second, to: path)  // replaces the existing file
    XCTAssertEqual(try PNG.read(path: path), second)
    XCTAssertEqual(
      try FileManager.default.contentsOfDirectory(atPath: temporaryDirectory.path), ["out.png"],
      "no temporary file is left behind")
    assertError(.io) { try PNG.write(first, to: self.temporaryPath("missing/dir/x.png")) }
  }

  func testEncodeRejectsInconsistentImages() {
    var image = Image(width: 4, height: 4, channels: 3)
    image.pixels.removeLast()
    assertError(.invalidArgument) { try PNG.encode(image) }
    assertError(.invalidArgument) { try PNG.encode(Image(width: 1, height: 1, channels: 1), compressionLevel: 10) }
  }

  func testMaxPixelsRefusesHugeHeaderWithoutDecoding() throws {
    // 10^10 pixels claimed by a 33-byte file: refused from the IHDR alone.
    let bomb = headerOnlyPNG(width: 100_000, height: 100_000)
    XCTAssertEqual(bomb.count, 33)
    let header = try PNG.header(of: bomb)
    XCTAssertEqual([header.width, header.height], [100_000, 100_000])
    XCTAssertEqual(header.pixelCount, 10_000_000_000)
    assertError(.tooLarge, "100000×100000 pixels exceeds the limit of 67108864 pixels (raise maxPixels to read it)") {
      try PNG.decode(bomb)
    }
    let path = temporaryPath("big.png")
    try Data(bomb).write(to: URL(fileURLWithPath: path))
    do {
      _ = try PNG.read(path: path)
      XCTFail("decoded a bomb")
    } catch let error as VisionError {
      XCTAssertEqual(
        error.description,
        "\(path): 100000×100000 pixels exceeds the limit of 67108864 pixels (raise maxPixels to read it)")
    }
    // PNG's maximum side (2^31-1) is a legal header, and still refused.
    let widest = headerOnlyPNG(width: 0x7FFF_FFFF, height: 0x7FFF_FFFF, bitDepth: 16, colorType: 6)
    XCTAssertEqual(try PNG.header(of: widest).width, Int(Int32.max))
    assertError(.tooLarge) { try PNG.decode(widest, options: ImageDecodeOptions(maxPixels: .max - 1)) }

    // The limit is inclusive: a 32×32 image passes at 1024 pixels and fails at 1023.
    let small = try Suite.bytes("basn2c08")
    XCTAssertNoThrow(try PNG.decode(small, options: ImageDecodeOptions(maxPixels: 1024)))
    assertError(.tooLarge, "32×32 pixels exceeds the limit of 1023 pixels (raise maxPixels to read it)") {
      try PNG.decode(small, options: ImageDecodeOptions(maxPixels: 1023))
    }
    assertError(.invalidArgument) { try PNG.decode(small, options: ImageDecodeOptions(maxPixels: 0)) }
  }

  func testHeaderRejectsInvalidDimensions() {
    assertError(.corrupt) { try PNG.header(of: headerOnlyPNG(width: 0, height: 10)) }
    assertError(.corrupt) { try PNG.header(of: headerOnlyPNG(width: 0x8000_0000, height: 1)) }
    assertError(.corrupt) { try PNG.header(of: headerOnlyPNG(width: 1, height: 1, bitDepth: 16, colorType: 3)) }
  }

  func testTruncatedDataIsReported() throws {
    let bytes = try Suite.bytes("basn2c08")
    assertError(.notPNG, "empty file (0 bytes)") { try PNG.decode([UInt8]()) }
    assertError(.truncated, "truncated: only 5 bytes, shorter than the PNG signature") {
      try PNG.decode(Array(bytes.prefix(5)))
    }
    for length in [8, 20, 33, 40, 100, bytes.count / 2, bytes.count - 13, bytes.count - 1] {
      assertError(.truncated, "truncated: the data ends after \(length) bytes, inside the PNG stream") {
        try PNG.decode(Array(bytes.prefix(length)))
      }
    }
    // Interlaced, palette and 16-bit paths stop just as cleanly.
    for name in ["basi3p04", "basi6a16", "basn0g01"] {
      let whole = try Suite.bytes(name)
      for length in stride(from: 8, to: whole.count, by: max(1, whole.count / 40)) {
        assertError(.truncated) { try PNG.decode(Array(whole.prefix(length))) }
      }
    }
  }

  func testDamagedDataNeverCrashes() throws {
    // Flip bytes all over valid files: every outcome must be a decoded image or a VisionError.
    for name in ["basn2c08", "basi0g04", "tbbn3p08", "basn6a16"] {
      let original = try Suite.bytes(name)
      for position in stride(from: 8, to: original.count, by: 3) {
        var damaged = original
        damaged[position] ^= 0x5A
        do {
          _ = try PNG.decode(damaged)
        } catch let error as VisionError {
          XCTAssertFalse(error.reason.isEmpty)
        }
      }
    }
  }

  func testNonPNGFilesAreReported() throws {
    let empty = temporaryPath("empty.png")
    try Data().write(to: URL(fileURLWithPath: empty))
    XCTAssertThrowsError(try PNG.read(path: empty)) { error in
      XCTAssertEqual("\(error)", "\(empty): empty file (0 bytes)")
    }
    let text = temporaryPath("notes.png")
    try Data("just some text\n".utf8).write(to: URL(fileURLWithPath: text))
    XCTAssertThrowsError(try PNG.read(path: text)) { error in
      XCTAssertEqual("\(error)", "\(text): not a PNG file (bad signature)")
      XCTAssertEqual((error as? VisionError)?.kind, .notPNG)
    }
    let jpeg = temporaryPath("photo.png")
    try Data([0xFF, 0xD8, 0xFF, 0xE0, 0, 16]).write(to: URL(fileURLWithPath: jpeg))
    XCTAssertThrowsError(try PNG.read(path: jpeg)) { error in
      XCTAssertEqual("\(error)", "\(jpeg): not a PNG file (bad signature: looks like a JPEG file)")
    }
    let missing = temporaryPath("missing.png")
    XCTAssertThrowsError(try PNG.read(path: missing)) { error in
      XCTAssertEqual("\(error)", "\(missing): cannot open: No such file or directory")
      XCTAssertEqual((error as? VisionError)?.kind, .io)
    }
    XCTAssertThrowsError(try PNG.read(path: temporaryDirectory.path)) { error in
      XCTAssertEqual((error as? VisionError)?.kind, .io)
    }
  }

  func testConcurrentDecodingIsConsistent() throws {
    let names = ["basn2c08", "basi3p08", "basn6a16", "tbbn3p08", "basi0g01", "s37i3p04"]
    let files = try names.map { try Suite.bytes($0) }
    let expected = try files.map { try PNG.decode($0) }
    let mismatches = Counter()
    DispatchQueue.concurrentPerform(iterations: 64) { i in
      let index = i % files.count
      if (try? PNG.decode(files[index])) != expected[index] { mismatches.increment() }
    }
    XCTAssertEqual(mismatches.value, 0)
  }
}

private final class Counter: @unchecked Sendable {  // guarded by `lock`
  private let lock = NSLock()
  private var count = 0
  func increment() { lock.withLock { count += 1 } }
  var value: Int { lock.withLock { count } }
}
