import Autograd
import Foundation

/// `pretext doctor --training-check`: trains a small convolutional network end to end on
/// synthetic images (a few seconds) to show that the engine learns on this machine —
/// convolution, batch norm, pooling, linear layers, cross-entropy, backward and an SGD
/// update all take part.
///
/// The task: 1×12×12 images holding a horizontal, vertical or diagonal bar at a random
/// position, plus noise; the network must name the orientation.
public struct TrainingCheckReport: Codable, Sendable {
  public var steps: Int
  public var initialLoss: Float
  public var finalLoss: Float
  public var heldOutAccuracy: Float
  public var seconds: Double
  public var passed: Bool

  enum CodingKeys: String, CodingKey {
    case steps, initialLoss = "initial_loss", finalLoss = "final_loss"
    case heldOutAccuracy = "held_out_accuracy", seconds, passed
  }

  public var text: String {
    String(
      format: "training check: loss %.3f → %.3f in %ld steps, held-out accuracy %.1f%% (%.1f s): %@",
      initialLoss, finalLoss, steps, heldOutAccuracy * 100, seconds, passed ? "OK" : "FAILED")
  }
}

public enum TrainingCheck {
  static let size = 12, classes = 3

  /// A batch of bar images [n, 1, 12, 12] and their orientation labels.
  static func batch(_ n: Int, using rng: inout RandomGenerator) -> (Tensor, [Int]) {
    let s = size
    let x = Tensor.randn([n, 1, s, s], std: 0.3, using: &rng)
    var labels: [Int] = []
    for i in 0..<n {
      let label = rng.nextInt(below: classes)
      labels.append(label)
      let p = x.data + i * s * s
      let offset = rng.nextInt(below: s - 4) + 2
      for t in 1..<(s - 1) {
        let (r, c): (Int, Int)
        switch label {
        case 0: (r, c) = (offset, t)
        case 1: (r, c) = (t, offset)
        default: (r, c) = (t, (t + offset) % s)
        }
        p[r * s + c] += 1.5
      }
    }
    return (x, labels)
  }

  /// Kaiming-uniform weights for `fanIn` inputs.
  static func weight(_ shape: [Int], fanIn: Int, using rng: inout RandomGenerator) -> Tensor {
    let bound = (6 / Float(fanIn)).squareRoot()
    return Tensor.uniform(shape, low: -bound, high: bound, using: &rng).requiringGrad()
  }

  public static func run(steps: Int = 80, batchSize: Int = 32, seed: UInt64 = 1) throws -> TrainingCheckReport {
    let start = DispatchTime.now().uptimeNanoseconds
    var rng = RandomGenerator(seed: seed)
    let w1 = weight([8, 1, 3, 3], fanIn: 9, using: &rng)
    let g1 = Tensor.ones([8], requiresGrad: true), b1 = Tensor.zeros([8], requiresGrad: true)
    let m1 = Tensor.zeros([8]), v1 = Tensor.ones([8])
    let w2 = weight([16, 8, 3, 3], fanIn: 72, using: &rng)
    let g2 = Tensor.ones([16], requiresGrad: true), b2 = Tensor.zeros([16], requiresGrad: true)
    let m2 = Tensor.zeros([16]), v2 = Tensor.ones([16])
    let fc = weight([classes, 16], fanIn: 16, using: &rng)
    let fcBias = Tensor.zeros([classes], requiresGrad: true)
    let parameters = [w1, g1, b1, w2, g2, b2, fc, fcBias]

    func forward(_ x: Tensor, training: Bool) throws -> Tensor {
      var h = try conv2d(x, weight: w1, options: Conv2dOptions(padding: 1))
      h = try batchNorm(h, weight: g1, bias: b1, runningMean: m1, runningVar: v1, training: training).relu()
      h = try h.maxPool2d(kernel: 2)
      h = try conv2d(h, weight: w2, options: Conv2dOptions(padding: 1))
      h = try batchNorm(h, weight: g2, bias: b2, runningMean: m2, runningVar: v2, training: training).relu()
      h = try h.adaptiveAvgPool2d((1, 1)).flattened(from: 1)
      return try linear(h, weight: fc, bias: fcBias)
    }

    // SGD with momentum 0.9 (the optimizers proper live in the training module).
    let velocity = parameters.map { Tensor.zeros($0.shape) }
    let lr: Float = 0.05
    var losses: [Float] = []
    for _ in 0..<steps {
      let (x, y) = batch(batchSize, using: &rng)
      let loss = try crossEntropy(forward(x, training: true), targets: y)
      for p in parameters { p.zeroGrad() }
      try loss.backward()
      losses.append(try loss.item())
      for (p, v) in zip(parameters, velocity) {
        guard let g = p.grad else { continue }
        for i in 0..<p.count {
          v.data[i] = 0.9 * v.data[i] + g.data[i]
          p.data[i] -= lr * v.data[i]
        }
      }
    }
    let (xt, yt) = batch(512, using: &rng)
    let predicted = try withoutGradients { try forward(xt, training: false).argmax(axis: 1).values }
    let accuracy = Float(zip(predicted, yt).filter { $0 == $1 }.count) / Float(yt.count)
    let initial = losses.prefix(5).reduce(0, +) / Float(min(5, losses.count))
    let final = losses.suffix(5).reduce(0, +) / Float(min(5, losses.count))
    return TrainingCheckReport(
      steps: steps, initialLoss: initial, finalLoss: final, heldOutAccuracy: accuracy,
      seconds: Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9,
      passed: final < 0.5 * initial && accuracy > 0.9)
  }
}
