import Autograd
import Vision
import XCTest

/// Quarter turns move samples exactly, as numpy.rot90 on [C, H, W].
final class RotateTests: XCTestCase {
  /// 1 channel, 2 rows, 3 columns: [[1, 2, 3], [4, 5, 6]].
  let image = FloatImage(channels: 1, height: 2, width: 3, pixels: [1, 2, 3, 4, 5, 6])

  func testQuarterTurnsMatchNumpyRot90() {
    // numpy.rot90([[1, 2, 3], [4, 5, 6]], k) for k = 1, 2, 3.
    let one = image.rotated(quarterTurns: 1)
    XCTAssertEqual([one.height, one.width], [3, 2])
    XCTAssertEqual(one.pixels, [3, 6, 2, 5, 1, 4])
    XCTAssertEqual(image.rotated(quarterTurns: 2).pixels, [6, 5, 4, 3, 2, 1])
    let three = image.rotated(quarterTurns: 3)
    XCTAssertEqual([three.height, three.width], [3, 2])
    XCTAssertEqual(three.pixels, [4, 1, 5, 2, 6, 3])
    XCTAssertEqual(image.rotated(quarterTurns: -1), three)
    XCTAssertEqual(image.rotated(quarterTurns: 4), image)
  }

  func testFourTurnsAreTheIdentityOnEveryChannel() {
    var rng = RandomGenerator(seed: 5)
    let rgb = FloatImage(channels: 3, height: 5, width: 7, pixels: (0..<105).map { _ in rng.nextFloat() })
    var x = rgb
    for _ in 0..<4 { x = Rotate(quarterTurns: 1)(x, using: &rng) }
    XCTAssertEqual(x, rgb)
    XCTAssertEqual(rgb.rotated(quarterTurns: 1).rotated(quarterTurns: 1), rgb.rotated(quarterTurns: 2))
    XCTAssertNotEqual(rgb.rotated(quarterTurns: 2), rgb)
  }
}
