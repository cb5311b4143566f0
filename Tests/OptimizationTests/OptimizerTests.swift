import Autograd
import NN
import Optimization
import XCTest

/// One step of each optimizer against values computed by hand from the update rules.
final class OptimizerTests: XCTestCase {
  func param(_ w: [Float], grad: [Float], group: ParameterGroup = .decay) throws -> OptimizedParameter {
    let t = try Tensor(shape: [w.count], w, requiresGrad: true)
    t.grad = try Tensor(shape: [grad.count], grad)
    return OptimizedParameter(name: "p", tensor: t, group: group)
  }

  func assertClose(_ a: [Float], _ b: [Float], _ tol: Float = 1e-6, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, file: file, line: line)
    for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: tol, "\(a) vs \(b)", file: file, line: line) }
  }

  func testSGDMomentumAndWeightDecay() throws {
    let p = try param([1, -2], grad: [0.5, 0.25])
    let sgd = SGD([p], momentum: 0.9, weightDecay: 0.1)
    sgd.step(lr: 0.1)
    // d = g + 0.1·w = [0.6, 0.05]; v = d; w -= 0.1·v
    assertClose(p.tensor.scalars, [1 - 0.06, -2 - 0.005])
    sgd.step(lr: 0.1)
    // d = g + 0.1·w = [0.5 + 0.094, 0.25 - 0.2005]; v = 0.9·v + d
    let d2: [Float] = [0.5 + 0.1 * 0.94, 0.25 + 0.1 * -2.005]
    let v2: [Float] = [0.9 * 0.6 + d2[0], 0.9 * 0.05 + d2[1]]
    assertClose(p.tensor.scalars, [0.94 - 0.1 * v2[0], -2.005 - 0.1 * v2[1]])
  }

  func testSGDNesterovAndNoDecayGroup() throws {
    let p = try param([1], grad: [1], group: .noDecay)
    SGD([p], momentum: 0.5, nesterov: true, weightDecay: 10).step(lr: 0.1)
    // No decay for the group: d = 1, v = 1, step = d + 0.5·v = 1.5.
    assertClose(p.tensor.scalars, [1 - 0.15])
  }

  func testAdamWFirstStepsAndDecoupledDecay() throws {
    let p = try param([1, -1], grad: [0.2, -0.4])
    let adam = AdamW([p], beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.5)
    adam.step(lr: 0.01)
    // Step 1: m̂ = g, v̂ = g², update = g/|g| = sign(g); w = w·(1 − lr·λ) − lr·sign(g).
    assertClose(p.tensor.scalars, [1 * (1 - 0.005) - 0.01, -1 * (1 - 0.005) + 0.01], 1e-5)
    p.tensor.grad = try Tensor(shape: [2], [0.2, -0.4])
    let w1 = p.tensor.scalars
    adam.step(lr: 0.01)
    // Step 2 with the same gradient: m̂ = g, v̂ = g² again → the same unit step.
    assertClose(p.tensor.scalars, [w1[0] * (1 - 0.005) - 0.01, w1[1] * (1 - 0.005) + 0.01], 1e-5)
    XCTAssertEqual(adam.state().map(\.name).sorted(), ["p.exp_avg", "p.exp_avg_sq", "step"])
  }

  func testLARSTrustRatio() throws {
    let p = try param([3, 4], grad: [0.6, 0.8])  // ‖w‖ = 5, ‖g‖ = 1
    LARS([p], momentum: 0.9, weightDecay: 0, trustCoefficient: 0.001).step(lr: 1)
    // scale = 0.001·5/1 → w −= 1·0.005·g
    assertClose(p.tensor.scalars, [3 - 0.003, 4 - 0.004])
    let bias = try param([3, 4], grad: [0.6, 0.8], group: .noDecay)
    LARS([bias], momentum: 0.9, weightDecay: 0.1, trustCoefficient: 0.001).step(lr: 1)
    assertClose(bias.tensor.scalars, [3 - 0.6, 4 - 0.8])  // no adaptation, no decay
  }

  func testStateRoundTrip() throws {
    let p = try param([1, 2], grad: [0.1, 0.2])
    let a = AdamW([p])
    a.step(lr: 0.1)
    let saved = Dictionary(uniqueKeysWithValues: a.state().map { ($0.name, $0.tensor.copy()) })
    let q = try param([1, 2], grad: [0.1, 0.2])
    let b = AdamW([q])
    try b.load(state: saved)
    XCTAssertEqual(b.state().map(\.tensor.scalars), a.state().map(\.tensor.scalars))
    XCTAssertThrowsError(try b.load(state: [:])) { XCTAssertTrue("\($0)".contains("p"), "\($0)") }
  }

  func testGradientClipping() throws {
    let p = try param([0, 0], grad: [3, 4])
    XCTAssertEqual(clipGradientNorm([p], maxNorm: 1), 5)
    assertClose(p.tensor.grad!.scalars, [0.6, 0.8])
    XCTAssertEqual(clipGradientNorm([p], maxNorm: 2), 1, accuracy: 1e-6)
    assertClose(p.tensor.grad!.scalars, [0.6, 0.8])
  }

  func testCosineScheduleWithWarmup() {
    let s = CosineSchedule(peak: 1, minimum: 0.1, warmupSteps: 4, totalSteps: 14)
    XCTAssertEqual(s.rate(at: 0), 0.25)
    XCTAssertEqual(s.rate(at: 3), 1)
    XCTAssertEqual(s.rate(at: 4), 1, accuracy: 1e-12)
    XCTAssertEqual(s.rate(at: 9), 0.55, accuracy: 1e-12)  // halfway: min + (peak − min)/2
    XCTAssertEqual(s.rate(at: 14), 0.1, accuracy: 1e-12)
    XCTAssertEqual(s.rate(at: 100), 0.1, accuracy: 1e-12)
    XCTAssertEqual(CosineSchedule.scaledLearningRate(base: 1.5e-4, batchSize: 512), 3e-4)
  }

  func testEMA() throws {
    let m = Module()
    let w = m.register(parameter: "w", try Tensor(shape: [1], [0]))
    let ema = MovingAverage(of: m)
    w.data[0] = 1
    ema.update(momentum: 0.5)
    XCTAssertEqual(ema.averages[0].tensor.scalars, [0.5])
  }

  /// A momentum target starts as a copy of the online module, is frozen (out of the
  /// optimizer's parameters), averages parameters and buffers alike, and refuses a module
  /// of another shape.
  func testMomentumTargetNetwork() throws {
    func net(_ w: Float) throws -> Module {
      let m = Module()
      m.register(parameter: "w", try Tensor(shape: [2], [w, 2 * w]))
      m.register(buffer: "running_mean", try Tensor(shape: [1], [w]))
      return m
    }
    let online = try net(4), target = try net(0)
    let average = try MovingAverage(of: online, into: target)
    XCTAssertEqual(target.stateDict().map(\.tensor.scalars), [[4, 8], [4]])
    XCTAssertTrue(target.optimizedParameters().isEmpty)
    XCTAssertEqual(online.optimizedParameters().count, 1)
    online.stateDict()[0].tensor.data[0] = 8
    online.stateDict()[1].tensor.data[0] = 0
    average.update(momentum: 0.75)
    XCTAssertEqual(target.stateDict().map(\.tensor.scalars), [[5, 8], [3]])
    average.update(momentum: 1)
    XCTAssertEqual(target.stateDict().map(\.tensor.scalars), [[5, 8], [3]])

    let other = Module()
    other.register(parameter: "w", try Tensor(shape: [3], [0, 0, 0]))
    other.register(buffer: "running_mean", try Tensor(shape: [1], [0]))
    XCTAssertThrowsError(try MovingAverage(of: online, into: other))
  }

  /// BYOL's schedule: base at the start, (1 + base)/2 half-way, 1 at the end and beyond.
  func testCosineMomentum() {
    XCTAssertEqual(cosineMomentum(base: 0.996, fraction: 0), 0.996, accuracy: 1e-7)
    XCTAssertEqual(cosineMomentum(base: 0.996, fraction: 0.5), 0.998, accuracy: 1e-7)
    XCTAssertEqual(cosineMomentum(base: 0.996, fraction: 1), 1)
    XCTAssertEqual(cosineMomentum(base: 0.996, fraction: 3), 1)
    XCTAssertEqual(cosineMomentum(base: 0.99, fraction: -1), 0.99, accuracy: 1e-7)
  }
}
