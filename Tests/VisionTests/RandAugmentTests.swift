import Autograd
import Foundation
import Vision
import XCTest

/// RandAugment's ops, at torchvision's magnitude scale, on hand-computable images.
final class RandAugmentTests: XCTestCase {
  func augment(_ magnitude: Int) throws -> RandAugment { try RandAugment(operations: 2, magnitude: magnitude) }

  func random(_ c: Int, _ h: Int, _ w: Int, seed: UInt64 = 1) -> FloatImage {
    var rng = RandomGenerator(seed: seed)
    return FloatImage(channels: c, height: h, width: w, pixels: (0..<(c * h * w)).map { _ in rng.nextFloat() })
  }

  func testAtMagnitudeZeroGeometricAndEnhanceOpsAreTheIdentity() throws {
    let image = random(3, 9, 11)
    let zero = try augment(0)
    for op: RandAugment.Operation in [.identity, .shearX, .shearY, .translateX, .translateY, .rotate, .brightness, .color, .contrast, .sharpness] {
      for sign: Float in [-1, 1] {
        let out = zero.apply(op, signed: sign, to: image)
        for i in 0..<image.pixels.count {
          XCTAssertEqual(out.pixels[i], image.pixels[i], accuracy: 1e-6, "\(op) sign \(sign) sample \(i)")
        }
      }
    }
  }

  func testTranslationMovesPixelsByTheScaledSideAndFills() throws {
    // Magnitude 30 of 30: 150/331 of the width, truncated: 20 px → 9 px.
    let image = FloatImage(channels: 1, height: 1, width: 20, pixels: (0..<20).map { Float($0 + 1) / 20 })
    let right = try augment(30).apply(.translateX, signed: 1, to: image)
    XCTAssertEqual(Array(right.pixels[0..<9]), [Float](repeating: 0, count: 9))
    XCTAssertEqual(Array(right.pixels[9...]), Array(image.pixels[0..<11]))
    let left = try augment(30).apply(.translateX, signed: -1, to: image)
    XCTAssertEqual(Array(left.pixels[0..<11]), Array(image.pixels[9...]))
    let down = try augment(30).apply(.translateY, signed: 1, to: FloatImage(channels: 1, height: 20, width: 1, pixels: image.pixels))
    XCTAssertEqual(down.pixels, right.pixels)
  }

  func testRotationAndShearKeepTheCentreAndRotationInvertsBySign() throws {
    // A single bright pixel at the centre of an odd-sized image stays put.
    var dot = FloatImage(channels: 1, height: 9, width: 9, filledWith: 0)
    dot[0, 4, 4] = 1
    let full = try augment(30)
    XCTAssertEqual(full.apply(.rotate, signed: 1, to: dot), dot)
    // Shear's centre is the top-left corner (torchvision's `center=[0, 0]`): row 0 stays.
    var row = FloatImage(channels: 1, height: 9, width: 9, filledWith: 0)
    for x in 0..<9 { row[0, 0, x] = Float(x + 1) / 9 }
    XCTAssertEqual(Array(full.apply(.shearX, signed: 1, to: row).pixels[0..<9]), Array(row.pixels[0..<9]))
    // 30° turns a horizontal line through the centre to a slope of ±tan 30°; the two
    // signs turn opposite ways. Nearest-neighbour sampling moves a pixel by at most one
    // row over a lever of ≥ 5 columns, so the fitted slope is within 0.1 of tan 30°.
    var line = FloatImage(channels: 1, height: 21, width: 21, filledWith: 0)
    for x in 0..<21 { line[0, 10, x] = 1 }
    func slope(_ image: FloatImage) -> Double {
      var points: [(Double, Double)] = []
      for y in 0..<21 { for x in 0..<21 where image[0, y, x] == 1 { points.append((Double(x) - 10, Double(y) - 10)) } }
      let sxy = points.reduce(0) { $0 + $1.0 * $1.1 }, sxx = points.reduce(0) { $0 + $1.0 * $1.0 }
      return sxy / sxx
    }
    let up = slope(full.apply(.rotate, signed: 1, to: line)), down = slope(full.apply(.rotate, signed: -1, to: line))
    XCTAssertEqual(abs(up), Foundation.tan(30 * Double.pi / 180), accuracy: 0.1)
    XCTAssertEqual(up, -down, accuracy: 0.1)
  }

  func testSharpnessBlendsWithPILSmoothingAndKeepsTheBorder() throws {
    var image = FloatImage(channels: 1, height: 3, width: 3, filledWith: 0)
    image[0, 1, 1] = 1
    // Smoothing the centre: (5·1 + 0)/13. Factor 1 − 0.9 (magnitude 30, negative sign).
    let soft = try augment(30).apply(.sharpness, signed: -1, to: image)
    XCTAssertEqual(soft[0, 1, 1], 0.1 + 0.9 * 5 / 13, accuracy: 1e-6)
    for i in 0..<9 where i != 4 { XCTAssertEqual(soft.pixels[i], 0) }
    // Factor 1.9 overshoots and clamps to 1.
    XCTAssertEqual(try augment(30).apply(.sharpness, signed: 1, to: image)[0, 1, 1], 1)
  }

  func testPosterizeSolarizeAutocontrastEqualize() throws {
    let image = random(3, 6, 7)
    // Magnitude 30: 8 − round(30/7.5) = 4 bits, so every sample is a multiple of 16/255.
    for v in try augment(30).apply(.posterize, to: image).pixels {
      XCTAssertEqual((v * 255).rounded().truncatingRemainder(dividingBy: 16), 0, "\(v)")
    }
    // Magnitude 0 keeps all 8 bits: the 8-bit value of each sample.
    for (a, b) in zip(try augment(0).apply(.posterize, to: image).pixels, image.pixels) {
      XCTAssertEqual(a, (b * 255).rounded() / 255, accuracy: 1e-6)
    }
    // Solarize at magnitude 15: threshold 1 − 15/30 = 0.5.
    for (a, b) in zip(try augment(15).apply(.solarize, to: image).pixels, image.pixels) {
      XCTAssertEqual(a, b >= 0.5 ? 1 - b : b)
    }
    // Autocontrast maps [0.2, 0.6] onto [0, 1] linearly; a flat channel stays.
    let ramp = FloatImage(channels: 1, height: 1, width: 5, pixels: [0.2, 0.3, 0.4, 0.5, 0.6])
    let stretched = try augment(9).apply(.autoContrast, to: ramp).pixels
    for (a, e) in zip(stretched, [0, 0.25, 0.5, 0.75, 1] as [Float]) { XCTAssertEqual(a, e, accuracy: 1e-6) }
    let flat = FloatImage(channels: 1, height: 2, width: 2, filledWith: 0.3)
    XCTAssertEqual(try augment(9).apply(.autoContrast, to: flat), flat)
    // Equalize: every level once is already equalized; 32 levels spread over the full range.
    let levels = FloatImage(channels: 1, height: 16, width: 16, pixels: (0..<256).map { Float($0) / 255 })
    for (a, b) in zip(try augment(9).apply(.equalize, to: levels).pixels, levels.pixels) {
      XCTAssertEqual(a, b, accuracy: 1e-6)
    }
    let narrow = FloatImage(channels: 1, height: 32, width: 32, pixels: (0..<1024).map { Float(100 + $0 % 32) / 255 })
    let spread = try augment(9).apply(.equalize, to: narrow).pixels
    XCTAssertEqual(spread.min(), 0)
    XCTAssertEqual(spread.max(), 1)
    // The lookup table is monotone: a brighter input is never darker after.
    let order = (0..<32).map { spread[$0] }
    XCTAssertEqual(order, order.sorted())
  }

  func testEveryOpKeepsShapeRangeAndAlphaOnAnyImage() throws {
    let strong = try augment(30)
    for (c, h, w) in [(1, 1, 1), (3, 1, 1), (4, 2, 3), (1, 28, 28), (3, 13, 40), (2, 5, 5)] {
      let image = random(c, h, w, seed: UInt64(c * 100 + h + w))
      for op in RandAugment.Operation.allCases {
        for sign: Float in [-1, 1] {
          let out = strong.apply(op, signed: sign, to: image)
          XCTAssertEqual(out.shape, image.shape, "\(op) on \(image.sizeDescription)")
          XCTAssertTrue(out.pixels.allSatisfy { $0 >= 0 && $0 <= 1 }, "\(op) on \(image.sizeDescription)")
          if c == 2 || c == 4, ![.shearX, .shearY, .translateX, .translateY, .rotate].contains(op) {
            let alpha = (c - 1) * h * w
            XCTAssertEqual(Array(out.pixels[alpha...]), Array(image.pixels[alpha...]), "\(op) touched alpha")
          }
        }
      }
    }
  }

  func testEachImageDrawsOpThenSignPerOperation() throws {
    let image = random(3, 12, 12)
    let ra = try augment(9)
    for seed in 0..<20 as Range<UInt64> {
      var rng = RandomGenerator(seed: seed)
      var copy = rng
      let out = ra(image, using: &rng)
      var expected = image
      for _ in 0..<2 {
        let op = RandAugment.Operation.allCases[copy.nextInt(below: RandAugment.Operation.allCases.count)]
        let sign: Float = copy.nextFloat() < 0.5 ? -1 : 1
        expected = ra.apply(op, signed: sign, to: expected)
      }
      XCTAssertEqual(out, expected, "seed \(seed)")
      XCTAssertEqual(rng, copy, "draws exactly two (op, sign) pairs")
    }
    var none = RandomGenerator(seed: 4)
    XCTAssertEqual(try RandAugment(operations: 0)(image, using: &none), image)
  }

  func testInvalidSettingsAreClearErrors() {
    XCTAssertThrowsError(try RandAugment(operations: -1)) { XCTAssertTrue("\($0)".contains("operations"), "\($0)") }
    XCTAssertThrowsError(try RandAugment(magnitude: 31)) { XCTAssertTrue("\($0)".contains("0...30"), "\($0)") }
    XCTAssertThrowsError(try RandAugment(fill: .nan)) { XCTAssertTrue("\($0)".contains("fill"), "\($0)") }
  }
}
