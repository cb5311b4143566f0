import Autograd
import Foundation

/// SGD with momentum (optionally Nesterov) and L2 weight decay on the `.decay` group, as
/// PyTorch's `torch.optim.SGD`: v = μ·v + (g + λ·w); w −= lr·(Nesterov ? g + λw + μ·v : v).
public final class SGD: Optimizer {
  public let parameters: [OptimizedParameter]
  public var momentum: Float
  public var nesterov: Bool
  public var weightDecay: Float
  public let slots = OptimizerSlots(["momentum"], of: "SGD")

  public init(_ parameters: [OptimizedParameter], momentum: Float = 0.9, nesterov: Bool = false, weightDecay: Float = 0) {
    self.parameters = parameters
    self.momentum = momentum
    self.nesterov = nesterov
    self.weightDecay = weightDecay
  }

  public func update(_ p: OptimizedParameter, _ b: ParameterBuffers, lr: Float) {
    let v = b.slots[0], w = b.weights, gd = b.gradient
    let wd = p.group == .decay ? weightDecay : 0
    let mu = momentum, nest = nesterov
    Parallel.forChunks(b.count, minChunk: 1 << 15) { r in
      for i in r {
        let d = gd[i] + wd * w[i]
        let vi = mu * v[i] + d
        v[i] = vi
        w[i] -= lr * (nest ? d + mu * vi : vi)
      }
    }
  }
}

/// AdamW (Loshchilov & Hutter 2019): Adam moments with bias correction and decoupled
/// weight decay w −= lr·λ·w on the `.decay` group, as `torch.optim.AdamW`.
public final class AdamW: Optimizer {
  public let parameters: [OptimizedParameter]
  public var beta1: Float, beta2: Float, eps: Float, weightDecay: Float
  public let slots = OptimizerSlots(["exp_avg", "exp_avg_sq"], of: "AdamW")
  /// Steps taken (bias correction), saved with the state as a one-element tensor.
  let stepCount = Tensor.zeros([1])
  /// This step's bias corrections 1 − β₁ᵗ and 1 − β₂ᵗ.
  var corrections: (Float, Float) = (1, 1)

  public init(
    _ parameters: [OptimizedParameter], beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8,
    weightDecay: Float = 0.05
  ) {
    self.parameters = parameters
    self.beta1 = beta1
    self.beta2 = beta2
    self.eps = eps
    self.weightDecay = weightDecay
  }

  public var globalState: [(name: String, tensor: Tensor)] { [("step", stepCount)] }

  public func beginStep() {
    stepCount.data[0] += 1
    let t = Double(stepCount.data[0])
    corrections = (Float(1 - Foundation.pow(Double(beta1), t)), Float(1 - Foundation.pow(Double(beta2), t)))
  }

  public func update(_ p: OptimizedParameter, _ b: ParameterBuffers, lr: Float) {
    let (b1, b2, eps) = (beta1, beta2, self.eps)
    let m = b.slots[0], v = b.slots[1], w = b.weights, gd = b.gradient
    let decay = p.group == .decay ? 1 - lr * weightDecay : 1
    let stepSize = lr / corrections.0
    let invC2 = 1 / corrections.1
    Parallel.forChunks(b.count, minChunk: 1 << 15) { r in
      for i in r {
        let gi = gd[i]
        let mi = b1 * m[i] + (1 - b1) * gi
        let vi = b2 * v[i] + (1 - b2) * gi * gi
        m[i] = mi
        v[i] = vi
        w[i] = w[i] * decay - stepSize * mi / ((vi * invC2).squareRoot() + eps)
      }
    }
  }
}

/// LARS (You et al. 2017), as used by SimCLR and BYOL: SGD with momentum where each
/// `.decay` parameter's step is scaled by the trust ratio η·‖w‖/‖g + λw‖; `.noDecay`
/// parameters (biases, norms) get neither weight decay nor adaptation.
public final class LARS: Optimizer {
  public let parameters: [OptimizedParameter]
  public var momentum: Float, weightDecay: Float, trustCoefficient: Float
  public let slots = OptimizerSlots(["momentum"], of: "LARS")

  public init(_ parameters: [OptimizedParameter], momentum: Float = 0.9, weightDecay: Float = 1e-6, trustCoefficient: Float = 0.001) {
    self.parameters = parameters
    self.momentum = momentum
    self.weightDecay = weightDecay
    self.trustCoefficient = trustCoefficient
  }

  public func update(_ p: OptimizedParameter, _ b: ParameterBuffers, lr: Float) {
    let v = b.slots[0], w = b.weights, gd = b.gradient
    let n = b.count
    let adapt = p.group == .decay
    let wd = adapt ? weightDecay : 0
    var scale: Float = 1
    if adapt {
      var wn = 0.0, un = 0.0
      for i in 0..<n {
        let u = gd[i] + wd * w[i]
        wn += Double(w[i] * w[i])
        un += Double(u * u)
      }
      let (wNorm, uNorm) = (Float(wn.squareRoot()), Float(un.squareRoot()))
      scale = wNorm > 0 && uNorm > 0 ? trustCoefficient * wNorm / uNorm : 1
    }
    let mu = momentum
    for i in 0..<n {
      let u = (gd[i] + wd * w[i]) * scale
      let vi = mu * v[i] + u
      v[i] = vi
      w[i] -= lr * vi
    }
  }
}

/// The optimizers a config names (`train.optimizer`, the probe's `optimizer`).
public enum OptimizerKind: String, CaseIterable, Sendable, Codable {
  case adamw, sgd, lars

  /// The optimizer over `parameters`; `betas` are AdamW's, `momentum` SGD's and LARS's.
  public func make(_ parameters: [OptimizedParameter], momentum: Float, betas: [Float], weightDecay: Float) -> any Optimizer {
    switch self {
    case .sgd: SGD(parameters, momentum: momentum, weightDecay: weightDecay)
    case .lars: LARS(parameters, momentum: momentum, weightDecay: weightDecay)
    case .adamw: AdamW(parameters, beta1: betas[0], beta2: betas[1], weightDecay: weightDecay)
    }
  }
}
