import Autograd
import Foundation
import NN
import Optimization

/// How the linear classifier on frozen features is trained.
public struct LinearProbeSettings: Codable, Sendable, Equatable {
  public enum Method: String, Codable, Sendable, CaseIterable {
    /// BatchNorm (no affine) + Linear trained by SGD with momentum and a cosine schedule
    /// on mini-batches of cached features (MAE's probe head, with SGD).
    case sgd
    /// The same head trained with LARS, as MAE's `main_linprobe.py`.
    case lars
    /// Multinomial logistic regression on standardized features, L-BFGS, full batch:
    /// deterministic, no learning rate to tune; suits small labeled sets.
    case lbfgs
    /// Ridge regression onto one-hot targets, closed form (Cholesky): deterministic and
    /// the fastest.
    case ridge
  }

  public var method: Method
  /// sgd/lars: passes over the labeled features; raised when needed so that training
  /// takes at least `minimumSteps` steps (small labeled sets).
  public var epochs: Int
  public var minimumSteps: Int
  /// sgd/lars: mini-batch size (capped at the number of labeled images).
  public var batchSize: Int
  /// sgd/lars: base learning rate for a batch of 256, scaled linearly (Goyal et al.).
  public var baseLearningRate: Double
  /// sgd/lars: linear warmup, as a fraction of all steps.
  public var warmupFraction: Double
  public var momentum: Double
  /// sgd/lars: weight decay on the Linear weight (MAE uses 0). lbfgs: λ of the penalty
  /// λ/2·‖W‖² added to the mean loss (nil: 1/N, scikit-learn's C = 1). ridge: α of
  /// ‖XW − Y‖²/N + α‖W‖² (nil: 1e-3).
  public var weightDecay: Double?
  /// lbfgs: iteration limit.
  public var iterations: Int

  public init(
    method: Method = .sgd, epochs: Int? = nil, minimumSteps: Int = 1000, batchSize: Int? = nil,
    baseLearningRate: Double? = nil, warmupFraction: Double = 0.1, momentum: Double = 0.9, weightDecay: Double? = nil,
    iterations: Int = 500
  ) {
    self.method = method
    // MAE: LARS, batch 16384, blr 0.1, 90 epochs (10 warmup), weight decay 0. The SGD
    // defaults suit a few hundred to a thousand dimensions and ~60k images on a CPU
    // (measured on Fashion-MNIST): batches of 256 at lr 0.1 come within about a point of
    // the converged (L-BFGS) accuracy on ViT features in 100 epochs — 30 leave 2–3
    // points — while raw pixels, whose standardized features are strongly correlated,
    // lose accuracy at lr ≥ 0.3 (the step is too long for their largest curvature). 100
    // epochs of 60k × 192 take about 2 s on one core.
    switch method {
    case .lars:
      self.epochs = epochs ?? 90
      self.batchSize = batchSize ?? 16384
      self.baseLearningRate = baseLearningRate ?? 0.1
    default:
      self.epochs = epochs ?? 100
      self.batchSize = batchSize ?? 256
      self.baseLearningRate = baseLearningRate ?? 0.1
    }
    self.minimumSteps = minimumSteps
    self.warmupFraction = warmupFraction
    self.momentum = momentum
    self.weightDecay = weightDecay
    self.iterations = iterations
  }

  enum CodingKeys: String, CodingKey {
    case method, epochs, minimumSteps = "minimum_steps", batchSize = "batch_size",
      baseLearningRate = "base_lr", warmupFraction = "warmup_fraction", momentum, weightDecay = "weight_decay",
      iterations
  }

  public func validate() throws {
    guard epochs >= 1, batchSize >= 2, baseLearningRate > 0, (0..<1).contains(warmupFraction),
      (0..<1).contains(momentum), iterations >= 1, (weightDecay ?? 0) >= 0
    else {
      throw EvaluationError(
        "linear probe settings",
        "need epochs ≥ 1, batch size ≥ 2, lr > 0, warmup and momentum in [0, 1), iterations ≥ 1, weight decay ≥ 0")
    }
  }
}

/// A trained linear classifier: scores = ((x − mean) · invStd) · Wᵀ + b. The probe's
/// BatchNorm (evaluation mode) is folded into `mean`/`invStd`.
public struct LinearClassifier: @unchecked Sendable {
  public let mean: [Float]
  public let invStd: [Float]
  /// [C, F]
  public let weight: Tensor
  /// [C]
  public let bias: [Float]
  /// Steps (sgd/lars) or iterations (lbfgs) taken; 0 for ridge.
  public let steps: Int
  /// Mean training loss at the end (cross-entropy; squared error for ridge).
  public let finalLoss: Double

  /// Class scores for `x` [N, F] → [N, C].
  public func scores(_ x: Tensor) throws -> Tensor {
    let (n, f) = (x.shape[0], x.shape[1])
    guard f == weight.shape[1] else {
      throw EvaluationError("linear classifier", "features have \(f) dimensions, the classifier \(weight.shape[1])")
    }
    let standardized = Standardization(mean: mean, invStd: invStd).apply(x)
    let c = weight.shape[0]
    let out = Tensor.zeros([n, c])
    for i in 0..<n { (out.data + i * c).update(from: bias, count: c) }
    BLAS.sgemm(
      transB: true, m: n, n: c, k: f, a: standardized.data, lda: f, b: weight.data, ldb: f, beta: 1, c: out.data, ldc: c
    )
    return out
  }
}

/// Per-feature standardization (x − mean) · invStd.
struct Standardization {
  let mean: [Float]
  let invStd: [Float]

  /// Mean and 1/√(var + eps) of each column of `x` [N, F] (biased variance, as BatchNorm).
  static func fit(_ x: Tensor, eps: Double = 1e-6) -> Standardization {
    let (n, f) = (x.shape[0], x.shape[1])
    var sum = [Double](repeating: 0, count: f), sq = [Double](repeating: 0, count: f)
    let p = x.data
    for i in 0..<n {
      let row = p + i * f
      for j in 0..<f {
        let v = Double(row[j])
        sum[j] += v
        sq[j] += v * v
      }
    }
    let mean = sum.map { $0 / Double(max(n, 1)) }
    let invStd = (0..<f).map { j -> Float in
      let v = max(0, sq[j] / Double(max(n, 1)) - mean[j] * mean[j])
      return Float(1 / (v + eps).squareRoot())
    }
    return Standardization(mean: mean.map { Float($0) }, invStd: invStd)
  }

  func apply(_ x: Tensor) -> Tensor {
    let (n, f) = (x.shape[0], x.shape[1])
    let out = Tensor.zeros([n, f])
    let (src, dst) = (x.data, out.data)
    mean.withUnsafeBufferPointer { m in
      invStd.withUnsafeBufferPointer { s in
        Parallel.forChunks(n, minChunk: 256) { r in
          for i in r {
            for j in 0..<f { dst[i * f + j] = (src[i * f + j] - m[j]) * s[j] }
          }
        }
      }
    }
    return out
  }
}

public enum LinearProbe {
  /// Trains a linear classifier on `features` [N, F] with `labels` in 0..<classes.
  /// Deterministic for a given seed and thread count.
  public static func train(
    features: Tensor, labels: [Int], classes: Int, settings: LinearProbeSettings, seed: UInt64
  ) throws -> LinearClassifier {
    try settings.validate()
    guard features.rank == 2, features.shape[0] == labels.count, labels.count >= 2 else {
      throw EvaluationError(
        "linear probe",
        "needs features [N, F] with N ≥ 2 and one label per row, got \(features.shape) and \(labels.count) labels")
    }
    guard labels.allSatisfy({ (0..<classes).contains($0) }) else {
      throw EvaluationError("linear probe", "labels must be class indices in 0..<\(classes)")
    }
    switch settings.method {
    case .sgd, .lars: return try trainHead(features, labels, classes, settings, seed)
    case .lbfgs: return try LogisticRegression.fit(features, labels, classes, settings)
    case .ridge: return try RidgeClassifier.fit(features, labels, classes, settings)
    }
  }

  /// MAE's probe head: BatchNorm1d(affine=False, eps=1e-6) then Linear (weight
  /// truncated-normal std 0.01, bias 0), cross-entropy, momentum SGD or LARS with linear
  /// warmup and a per-step cosine decay to 0; batches drawn from a seeded permutation
  /// each epoch, the last partial batch dropped (MAE's `drop_last=True`).
  ///
  /// The features are frozen and the head has no hidden layer, so the forward and
  /// backward passes are written out here on one thread (no autograd tape, no BLAS):
  /// BatchNorm in training mode normalizes with the batch statistics (biased variance)
  /// and updates running statistics with momentum 0.1 from the unbiased variance, as
  /// PyTorch; no gradient flows into it (it has no parameters and its input is fixed).
  /// The gradients land in the Linear layer's `grad` tensors, and the optimizers
  /// apply them. One thread per fit keeps a fit's result independent of the thread
  /// count and lets independent fits (the depths being compared) run side by side.
  static func trainHead(
    _ x: Tensor, _ labels: [Int], _ classes: Int, _ s: LinearProbeSettings, _ seed: UInt64
  ) throws -> LinearClassifier {
    let (n, f, c) = (x.shape[0], x.shape[1], classes)
    var rng = RandomGenerator(seed: seed)
    let fc = Linear(f, c, initialization: .truncatedNormal(std: 0.01), using: &rng)
    let gradW = Tensor.zeros([c, f])
    let gradB = Tensor.zeros([c])
    fc.weight.grad = gradW
    fc.bias!.grad = gradB
    let parameters = fc.optimizedParameters()
    let wd = Float(s.weightDecay ?? 0)
    let optimizer: any Optimizer =
      s.method == .lars
      ? LARS(parameters, momentum: Float(s.momentum), weightDecay: wd)
      : SGD(parameters, momentum: Float(s.momentum), weightDecay: wd)
    let batch = min(s.batchSize, n)
    let stepsPerEpoch = n / batch
    let epochs = max(s.epochs, (s.minimumSteps + stepsPerEpoch - 1) / stepsPerEpoch)
    let total = epochs * stepsPerEpoch
    // SGD: the linear scaling rule on the batch actually used. LARS: on the configured
    // batch, as MAE's recipe fixes it (0.1 × 16384 / 256 = 6.4) — LARS sets each step's
    // length relative to ‖w‖, and a smaller labeled set (a capped batch) should not
    // shrink it.
    let lr = CosineSchedule.scaledLearningRate(
      base: s.baseLearningRate, batchSize: s.method == .lars ? s.batchSize : batch)
    let schedule = CosineSchedule(
      peak: lr, minimum: 0, warmupSteps: (Double(total) * s.warmupFraction).rounded(.down), totalSteps: total)

    let (bnMomentum, bnEps): (Float, Float) = (0.1, 1e-6)
    var runningMean = [Float](repeating: 0, count: f)
    var runningVar = [Float](repeating: 1, count: f)
    var mean = [Float](repeating: 0, count: f)
    var variance = [Float](repeating: 0, count: f)
    let xb = UnsafeMutablePointer<Float>.allocate(capacity: batch * f)
    let probs = UnsafeMutablePointer<Float>.allocate(capacity: batch * c)
    defer {
      xb.deallocate()
      probs.deallocate()
    }
    var yb = [Int](repeating: 0, count: batch)
    let (src, w, b, gw, gb) = (x.data, fc.weight.data, fc.bias!.data, gradW.data, gradB.data)
    var step = 0
    var lastLoss = 0.0
    for _ in 0..<epochs {
      let order = rng.permutation(n)
      for k in 0..<stepsPerEpoch {
        for r in 0..<batch {
          let i = order[k * batch + r]
          (xb + r * f).update(from: src + i * f, count: f)
          yb[r] = labels[i]
        }
        // BatchNorm, training mode: two passes over the batch per feature.
        for j in 0..<f { mean[j] = 0 }
        for r in 0..<batch { add(xb + r * f, into: &mean) }
        for j in 0..<f { mean[j] /= Float(batch) }
        for j in 0..<f { variance[j] = 0 }
        for r in 0..<batch {
          let row = xb + r * f
          for j in 0..<f {
            let d = row[j] - mean[j]
            variance[j] += d * d
          }
        }
        for j in 0..<f {
          let biased = variance[j] / Float(batch)
          runningMean[j] = (1 - bnMomentum) * runningMean[j] + bnMomentum * mean[j]
          runningVar[j] = (1 - bnMomentum) * runningVar[j] + bnMomentum * variance[j] / Float(max(1, batch - 1))
          variance[j] = 1 / (biased + bnEps).squareRoot()  // now the inverse std
        }
        for r in 0..<batch {
          let row = xb + r * f
          for j in 0..<f { row[j] = (row[j] - mean[j]) * variance[j] }
        }
        // Linear, softmax cross-entropy: dL/dz = (softmax − onehot) / batch.
        var loss = 0.0
        for r in 0..<batch {
          let p = probs + r * c
          var m = -Float.infinity
          for k in 0..<c {
            p[k] = b[k] + dot(xb + r * f, w + k * f, f)
            m = max(m, p[k])
          }
          var sum: Float = 0
          for k in 0..<c {
            p[k] = FastMath.exp(p[k] - m)
            sum += p[k]
          }
          loss += Double(Foundation.log(sum) - Foundation.log(max(p[yb[r]], .leastNormalMagnitude)))
          let scale = 1 / (sum * Float(batch))
          for k in 0..<c { p[k] *= scale }
          p[yb[r]] -= 1 / Float(batch)
        }
        // dW = Gᵀ·x̂ [C, F], db = Σ G.
        gw.update(repeating: 0, count: c * f)
        gb.update(repeating: 0, count: c)
        for r in 0..<batch {
          let row = xb + r * f
          for k in 0..<c {
            let g = probs[r * c + k]
            gb[k] += g
            let out = gw + k * f
            for j in 0..<f { out[j] += g * row[j] }
          }
        }
        optimizer.step(lr: Float(schedule.rate(at: step)))
        lastLoss = loss / Double(batch)
        step += 1
      }
    }
    let invStd = (0..<f).map { 1 / (runningVar[$0] + bnEps).squareRoot() }
    return LinearClassifier(
      mean: runningMean, invStd: invStd, weight: fc.weight.copy(), bias: fc.bias!.scalars, steps: step,
      finalLoss: lastLoss)
  }
}

/// Σ a·b over n floats, 16 lanes at a time.
@inline(__always)
func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
  var acc = SIMD16<Float>()
  var i = 0
  while i + 16 <= n {
    let va = UnsafeRawPointer(a + i).loadUnaligned(as: SIMD16<Float>.self)
    let vb = UnsafeRawPointer(b + i).loadUnaligned(as: SIMD16<Float>.self)
    acc.addProduct(va, vb)
    i += 16
  }
  var s = acc.sum()
  while i < n {
    s += a[i] * b[i]
    i += 1
  }
  return s
}

/// sums[j] += row[j].
@inline(__always)
func add(_ row: UnsafePointer<Float>, into sums: inout [Float]) {
  let n = sums.count
  sums.withUnsafeMutableBufferPointer { s in
    for j in 0..<n { s[j] += row[j] }
  }
}
