import Autograd
import Backbones
import NN
import XCTest

/// Drop path (stochastic depth) on the residual branches of both backbone families.
final class DropPathTests: XCTestCase {
  func testMasksDropWholeSamplesAtTheRateAndKeepTheExpectation() throws {
    var path = DropPath()
    path.rate = 0.25
    path.generator = RandomGenerator(seed: 3)
    let n = 20_000
    let ones = try Tensor(shape: [n, 2, 3], [Float](repeating: 1, count: n * 6))
    let out = try path(ones, training: true)
    let values = Array(UnsafeBufferPointer(start: out.data, count: n * 6))
    var dropped = 0
    for i in 0..<n {
      let row = values[(i * 6)..<((i + 1) * 6)]
      // A sample is dropped or kept whole; kept ones are scaled by 1/(1 − rate).
      XCTAssertTrue(row.allSatisfy { $0 == 0 } || row.allSatisfy { $0 == 1 / 0.75 }, "row \(i): \(Array(row))")
      if row.first == 0 { dropped += 1 }
    }
    // Binomial(n, 0.25): 5 standard deviations of the dropped fraction.
    let sigma = (0.25 * 0.75 / Double(n)).squareRoot()
    XCTAssertEqual(Double(dropped) / Double(n), 0.25, accuracy: 5 * sigma)
    // Evaluation, and a rate of 0, pass the branch through as it is.
    XCTAssertTrue(try path(ones, training: false) === ones)
    var off = DropPath()
    XCTAssertTrue(try off(ones, training: true) === ones)
  }

  func testRatesRiseLinearlyOverTheBlocks() {
    XCTAssertEqual(DropPath.rising(to: 0.3, over: 4, seed: 0).map(\.rate), [0, 0.1, 0.2, 0.3].map { Float($0) })
    XCTAssertEqual(DropPath.rising(to: 0.3, over: 1, seed: 0).map(\.rate), [0.3])
    let paths = DropPath.rising(to: 0.3, over: 2, seed: 0)
    XCTAssertNotEqual(paths[0].generator, paths[1].generator)
  }

  /// resnet10-small at 16 px, width 8, with every block's drop path at `rate`.
  func resnet(rate: Float, seed: UInt64 = 7) throws -> any Backbone {
    var rng = RandomGenerator(seed: 1)
    let model = try BackbonePreset.config("resnet10-small", imageSize: 16, width: 8).make(using: &rng)
    model.setDropPath(maximum: rate, seed: seed)
    return model
  }

  func testResNetBranchesAreDroppedInTrainingOnly() throws {
    var rng = RandomGenerator(seed: 2)
    let x = Tensor.uniform([4, 3, 16, 16], using: &rng)
    let plain = try resnet(rate: 0)
    plain.train()
    let reference = try plain.features(x)
    func maxDifference(_ a: Tensor, _ b: Tensor) -> Float {
      (0..<a.count).map { abs(a.data[$0] - b.data[$0]) }.max()!
    }
    // A rate so small that no sample is dropped: the unfused relu(dropPath(bn(branch)) +
    // shortcut) agrees with the fused epilogue up to float rounding and the 1/(1 − 1e-6) scale.
    let tiny = try resnet(rate: 1e-6)
    tiny.train()
    XCTAssertLessThan(maxDifference(try tiny.features(x), reference), 1e-4)
    // At 0.5 the features change in training, reproducibly for a seed, and gradients
    // still reach every block.
    let dropping = try resnet(rate: 0.5)
    dropping.train()
    let dropped = try dropping.features(x)
    XCTAssertGreaterThan(maxDifference(dropped, reference), 1e-3)
    let again = try resnet(rate: 0.5)
    again.train()
    XCTAssertEqual(maxDifference(try again.features(x), dropped), 0)
    try dropped.sum().backward()
    for (name, p) in dropping.namedParameters() where name.hasSuffix("conv1.weight") {
      XCTAssertNotNil(p.grad, name)
    }
    // In evaluation the network is the one without drop path (fresh copies: training
    // passes moved the running statistics).
    let evaluated = try resnet(rate: 0.5), reference2 = try resnet(rate: 0)
    evaluated.eval()
    reference2.eval()
    XCTAssertEqual(maxDifference(try evaluated.features(x), try reference2.features(x)), 0)
  }

  func testViTDropPathIsSeededAndOffInEvaluation() throws {
    func vit(rate: Float) throws -> any Backbone {
      var rng = RandomGenerator(seed: 1)
      let model = try BackbonePreset.config("vit-cpu", imageSize: 16, patchSize: 4).make(using: &rng)
      model.setDropPath(maximum: rate, seed: 11)
      model.train()
      return model
    }
    var rng = RandomGenerator(seed: 2)
    let x = Tensor.uniform([4, 3, 16, 16], using: &rng)
    let a = try vit(rate: 0.5).features(x), b = try vit(rate: 0.5).features(x), c = try vit(rate: 0).features(x)
    XCTAssertEqual((0..<a.count).map { a.data[$0] }, (0..<b.count).map { b.data[$0] })
    XCTAssertNotEqual((0..<a.count).map { a.data[$0] }, (0..<c.count).map { c.data[$0] })
    let model = try vit(rate: 0.5)
    model.eval()
    let reference = try vit(rate: 0)
    reference.eval()
    let e1 = try model.features(x), e2 = try reference.features(x)
    XCTAssertEqual((0..<e1.count).map { e1.data[$0] }, (0..<e2.count).map { e2.data[$0] })
  }
}
