import Foundation
import Vision
import XCTest

/// Decode-time resizing of 8-bit images, against PIL's `Image.resize(size, BILINEAR)`
/// (Fixtures/resize, made by make_resize_fixtures.py).
final class ImageResizeTests: XCTestCase {
  func fixture(_ name: String) throws -> Image { try JPEGFixtures.pnm("../resize/" + name) }

  func testResizeMatchesPILBilinearWithinOneLevel() throws {
    // PIL's 8-bit path rounds its first (horizontal) pass to bytes, an error of at most
    // 0.5 that the second pass carries through non-negative weights summing to 1 (the
    // triangle filter has no negative lobes), and its 22-bit fixed-point weights add
    // less than 255 · taps · 2⁻²² ≈ 0.006; here both passes stay in floats. So the two
    // results differ by under 0.51 before the final rounding: at most 1 level.
    // Without the antialiasing filter (a plain 2-tap bilinear), the noise strip of the
    // 40×29 reduction would be off by tens.
    for (input, ext) in [("rgb", "ppm"), ("gray", "pgm")] {
      let source = try fixture("input-\(input).\(ext)")
      for (w, h) in [(40, 29), (131, 50), (17, 97), (1, 1), (200, 150)] {
        let expected = try fixture("\(input)-\(w)x\(h).\(ext)")
        let got = source.resized(width: w, height: h)
        XCTAssertEqual(got.shape, expected.shape)
        let worst = zip(got.pixels, expected.pixels).map { abs(Int($0) - Int($1)) }.max() ?? 0
        XCTAssertLessThanOrEqual(worst, 1, "\(input) \(w)×\(h)")
      }
    }
  }

  func testReducedSizeFollowsTheShorterSideAndNeverEnlarges() {
    XCTAssertTrue(Image.reducedSize(width: 4000, height: 3000, shorterSide: 64) == (85, 64))
    XCTAssertTrue(Image.reducedSize(width: 3000, height: 4000, shorterSide: 224) == (224, 298))
    XCTAssertTrue(Image.reducedSize(width: 300, height: 200, shorterSide: 224) == (300, 200))
    XCTAssertTrue(Image.reducedSize(width: 1, height: 1, shorterSide: 8) == (1, 1))
    XCTAssertTrue(Image.reducedSize(width: 5000, height: 2, shorterSide: 1) == (2500, 1))
    XCTAssertTrue(Image.reducedSize(width: 2, height: 5000, shorterSide: 1) == (1, 2500))
    // A 1-pixel-wide strip keeps at least one pixel on its long side.
    XCTAssertTrue(Image.reducedSize(width: 3, height: 2, shorterSide: 1) == (1, 1))
  }

  func testDecodeOptionsReduceEveryFormatToTheSameShape() throws {
    // A JPEG goes through DCT scaling first; the final size depends only on the header.
    let jpeg = try JPEG.decode(
      try JPEGFixtures.bytes("photo-640x480.jpg"), options: ImageDecodeOptions(shorterSide: 100))
    XCTAssertEqual(jpeg.shape, [100, 133, 3])
    let header = try ImageFile.header(of: try JPEGFixtures.bytes("photo-640x480.jpg"))
    XCTAssertTrue(header.decodedShape(ImageDecodeOptions(shorterSide: 100)) == (133, 100, 3))
    XCTAssertTrue(header.decodedShape(ImageDecodeOptions(channels: .gray)) == (640, 480, 1))
    // The reduced decode is close to a full decode resized: DCT scaling is itself a
    // low-pass (the block's low frequencies), so the two filters differ by a few levels
    // on a photo; a wrong scale or offset would differ by tens.
    let full = try JPEG.decode(try JPEGFixtures.bytes("photo-640x480.jpg")).resized(width: 133, height: 100)
    let mean =
      zip(jpeg.pixels, full.pixels).map { Double(abs(Int($0) - Int($1))) }.reduce(0, +) / Double(full.pixels.count)
    XCTAssertLessThan(mean, 3, "mean difference \(mean)")
    // PNG: decoded at full size, then resized the same way.
    let source = try fixture("input-rgb.ppm")
    let png = try ImageFile.decode(try PNG.encode(source), options: ImageDecodeOptions(shorterSide: 29))
    XCTAssertEqual(png, source.resized(width: 39, height: 29))
  }
}
