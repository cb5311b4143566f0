import Autograd
import Foundation
import NN

/// A parameter the optimizer updates: its name (the checkpoint key of its state), the
/// tensor, and its weight-decay group.
public struct OptimizedParameter: @unchecked Sendable {
  public let name: String
  public let tensor: Tensor
  public let group: ParameterGroup
  public init(name: String, tensor: Tensor, group: ParameterGroup) {
    self.name = name
    self.tensor = tensor
    self.group = group
  }
}

extension Module {
  /// This module's trainable parameters with their decay groups, names prefixed.
  public func optimizedParameters(prefix: String = "") -> [OptimizedParameter] {
    parameterGroups().filter { $0.tensor.requiresGrad }.map {
      OptimizedParameter(name: prefix + $0.name, tensor: $0.tensor, group: $0.group)
    }
  }
}

/// An optimizer writes only its per-parameter update rule; the learning rate comes from
/// the schedule at every step. Its state (moments, step count) is a set of named
/// tensors so that checkpoints can hold it.
public protocol Optimizer: AnyObject {
  var parameters: [OptimizedParameter] { get }
  /// Applies one update with learning rate `lr` from the parameters' current gradients
  /// (parameters without a gradient are left alone).
  func step(lr: Float)
  /// Named state tensors (`<param>.<slot>`), for checkpoints.
  func state() -> [(name: String, tensor: Tensor)]
  /// Restores state saved by `state()`; throws naming a missing or mis-shaped slot.
  func load(state: [String: Tensor]) throws
}

/// Shared storage of per-parameter slots (momentum buffers and the like).
final class Slots {
  let names: [String]
  var tensors: [String: [Tensor]] = [:]
  init(_ names: [String]) { self.names = names }

  func get(_ p: OptimizedParameter) -> [Tensor] {
    if let t = tensors[p.name] { return t }
    let t = names.map { _ in Tensor.zeros(p.tensor.shape) }
    tensors[p.name] = t
    return t
  }

  func state(_ params: [OptimizedParameter]) -> [(name: String, tensor: Tensor)] {
    params.flatMap { p in zip(names, get(p)).map { ("\(p.name).\($0.0)", $0.1) } }
  }

  func load(_ state: [String: Tensor], _ params: [OptimizedParameter], optimizer: String) throws {
    for p in params {
      for (slot, t) in zip(names, get(p)) {
        guard let saved = state["\(p.name).\(slot)"] else {
          throw TensorError(optimizer, "checkpoint has no \(slot) state for \(p.name)")
        }
        try t.assign(saved)
      }
    }
  }
}

/// SGD with momentum (optionally Nesterov) and L2 weight decay on the `.decay` group, as
/// PyTorch's `torch.optim.SGD`: v = μ·v + (g + λ·w); w −= lr·(Nesterov ? g + λw + μ·v : v).
public final class SGD: Optimizer {
  public let parameters: [OptimizedParameter]
  public var momentum: Float
  public var nesterov: Bool
  public var weightDecay: Float
  let slots = Slots(["momentum"])

  public init(_ parameters: [OptimizedParameter], momentum: Float = 0.9, nesterov: Bool = false, weightDecay: Float = 0) {
    self.parameters = parameters
    self.momentum = momentum
    self.nesterov = nesterov
    self.weightDecay = weightDecay
  }

  public func step(lr: Float) {
    for p in parameters {
      guard let g = p.tensor.grad else { continue }
      let v = slots.get(p)[0].data, w = p.tensor.data, gd = g.data
      let wd = p.group == .decay ? weightDecay : 0
      let mu = momentum, nest = nesterov
      Parallel.forChunks(p.tensor.count, minChunk: 1 << 15) { r in
        for i in r {
          let d = gd[i] + wd * w[i]
          let vi = mu * v[i] + d
          v[i] = vi
          w[i] -= lr * (nest ? d + mu * vi : vi)
        }
      }
    }
  }

  public func state() -> [(name: String, tensor: Tensor)] { slots.state(parameters) }
  public func load(state: [String: Tensor]) throws { try slots.load(state, parameters, optimizer: "SGD") }
}

/// AdamW (Loshchilov & Hutter 2019): Adam moments with bias correction and decoupled
/// weight decay w −= lr·λ·w on the `.decay` group, as `torch.optim.AdamW`.
public final class AdamW: Optimizer {
  public let parameters: [OptimizedParameter]
  public var beta1: Float, beta2: Float, eps: Float, weightDecay: Float
  let slots = Slots(["exp_avg", "exp_avg_sq"])
  /// Steps taken (bias correction), saved with the state as a one-element tensor.
  let stepCount = Tensor.zeros([1])

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

  public func step(lr: Float) {
    stepCount.data[0] += 1
    let t = Double(stepCount.data[0])
    let c1 = Float(1 - Foundation.pow(Double(beta1), t)), c2 = Float(1 - Foundation.pow(Double(beta2), t))
    let (b1, b2, eps) = (beta1, beta2, self.eps)
    for p in parameters {
      guard let g = p.tensor.grad else { continue }
      let s = slots.get(p)
      let m = s[0].data, v = s[1].data, w = p.tensor.data, gd = g.data
      let decay = p.group == .decay ? 1 - lr * weightDecay : 1
      let stepSize = lr / c1
      let invC2 = 1 / c2
      Parallel.forChunks(p.tensor.count, minChunk: 1 << 15) { r in
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

  public func state() -> [(name: String, tensor: Tensor)] { slots.state(parameters) + [("step", stepCount)] }
  public func load(state: [String: Tensor]) throws {
    try slots.load(state, parameters, optimizer: "AdamW")
    guard let s = state["step"] else { throw TensorError("AdamW", "checkpoint has no step count") }
    try stepCount.assign(s)
  }
}

/// LARS (You et al. 2017), as used by SimCLR: SGD with momentum where each `.decay`
/// parameter's step is scaled by the trust ratio η·‖w‖/‖g + λw‖; `.noDecay` parameters
/// (biases, norms) get neither weight decay nor adaptation.
public final class LARS: Optimizer {
  public let parameters: [OptimizedParameter]
  public var momentum: Float, weightDecay: Float, trustCoefficient: Float
  let slots = Slots(["momentum"])

  public init(_ parameters: [OptimizedParameter], momentum: Float = 0.9, weightDecay: Float = 1e-6, trustCoefficient: Float = 0.001) {
    self.parameters = parameters
    self.momentum = momentum
    self.weightDecay = weightDecay
    self.trustCoefficient = trustCoefficient
  }

  public func step(lr: Float) {
    for p in parameters {
      guard let g = p.tensor.grad else { continue }
      let v = slots.get(p)[0].data, w = p.tensor.data, gd = g.data
      let n = p.tensor.count
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

  public func state() -> [(name: String, tensor: Tensor)] { slots.state(parameters) }
  public func load(state: [String: Tensor]) throws { try slots.load(state, parameters, optimizer: "LARS") }
}

/// Scales all gradients so their global L2 norm is at most `maxNorm`; returns the norm
/// before clipping.
@discardableResult
public func clipGradientNorm(_ parameters: [OptimizedParameter], maxNorm: Float) -> Float {
  let norm = Float(gradientNorm(parameters))
  if norm > maxNorm && norm > 0 {
    let f = maxNorm / norm
    for p in parameters {
      guard let g = p.tensor.grad else { continue }
      for i in 0..<g.count { g.data[i] *= f }
    }
  }
  return norm
}

/// The global L2 norm of the parameters' gradients (those that have one): each tensor's
/// sum of squares in Float, the total in Double.
public func gradientNorm(_ parameters: [OptimizedParameter]) -> Double {
  var total = 0.0
  for p in parameters {
    guard let g = p.tensor.grad else { continue }
    var s: Float = 0
    for i in 0..<g.count { s += g.data[i] * g.data[i] }
    total += Double(s)
  }
  return total.squareRoot()
}

/// Exponential moving average of weights: shadow = d·shadow + (1−d)·w after each step.
public final class WeightAverage {
  public let decay: Float
  public let shadows: [(name: String, tensor: Tensor)]
  let sources: [Tensor]

  public init(_ module: Module, decay: Float = 0.999) {
    self.decay = decay
    let state = module.stateDict()
    shadows = state.map { ($0.name, $0.tensor.copy()) }
    sources = state.map(\.tensor)
  }

  public func update() {
    for ((_, s), w) in zip(shadows, sources) {
      for i in 0..<s.count { s.data[i] = decay * s.data[i] + (1 - decay) * w.data[i] }
    }
  }
}
