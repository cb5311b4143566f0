import Autograd
import NN
import Support

/// A parameter the optimizer updates: its name (the checkpoint key of its state), the
/// tensor, its weight-decay group, and the factor on the schedule's learning rate it is
/// updated with (1 unless a recipe scales it, as layer-wise decay does: BEiT, Bao et al.
/// 2021; MAE's fine-tuning, He et al. 2021).
public struct OptimizedParameter: @unchecked Sendable {
  public let name: String
  public let tensor: Tensor
  public let group: ParameterGroup
  public var learningRateScale: Float
  public init(name: String, tensor: Tensor, group: ParameterGroup, learningRateScale: Float = 1) {
    self.name = name
    self.tensor = tensor
    self.group = group
    self.learningRateScale = learningRateScale
  }
}

extension Module {
  /// This module's trainable parameters with their decay groups, names prefixed.
  /// Frozen parameters (a momentum target network, a probed backbone) are left out.
  public func optimizedParameters(prefix: String = "") -> [OptimizedParameter] {
    parameterGroups().filter { $0.tensor.requiresGrad }.map {
      OptimizedParameter(name: prefix + $0.name, tensor: $0.tensor, group: $0.group)
    }
  }
}

/// The buffers of one parameter's update: its weights, its gradient and its state slots
/// (`slots[k]` is slot k of `Optimizer.slotNames`), each `count` floats.
public struct ParameterBuffers {
  public let weights: UnsafeMutablePointer<Float>
  public let gradient: UnsafeMutablePointer<Float>
  public let slots: [UnsafeMutablePointer<Float>]
  public let count: Int
}

/// An optimizer writes only its per-parameter update rule (`update`); the loop over the
/// parameters, the state slots and their checkpoint form are shared (as mlx-swift's
/// MLXOptimizers do). The learning rate comes from the schedule at every step.
public protocol Optimizer: AnyObject {
  var parameters: [OptimizedParameter] { get }
  /// The per-parameter state, one tensor per slot name and parameter.
  var slots: OptimizerSlots { get }
  /// Once per step, before the parameters are updated (AdamW counts its steps here).
  func beginStep()
  /// One parameter's update with learning rate `lr`.
  func update(_ parameter: OptimizedParameter, _ buffers: ParameterBuffers, lr: Float)
  /// State beyond the per-parameter slots (AdamW's step count), for checkpoints.
  var globalState: [(name: String, tensor: Tensor)] { get }
}

extension Optimizer {
  public func beginStep() {}
  public var globalState: [(name: String, tensor: Tensor)] { [] }

  /// Applies one update with learning rate `lr` (times each parameter's
  /// `learningRateScale`) from the parameters' current gradients (parameters without a
  /// gradient are left alone).
  public func step(lr: Float) {
    beginStep()
    for p in parameters {
      guard let g = p.tensor.grad else { continue }
      let buffers = ParameterBuffers(
        weights: p.tensor.data, gradient: g.data, slots: slots.get(p).map(\.data), count: p.tensor.count)
      update(p, buffers, lr: lr * p.learningRateScale)
    }
  }

  /// Named state tensors (`<param>.<slot>`, then the global ones), for checkpoints.
  public func state() -> [(name: String, tensor: Tensor)] { slots.state(parameters) + globalState }

  /// Restores state saved by `state()`; throws naming a missing or mis-shaped slot.
  public func load(state: [String: Tensor]) throws {
    try slots.load(state, parameters)
    for (name, t) in globalState {
      guard let saved = state[name] else { throw TensorError(slots.optimizer, "checkpoint has no \(name) state") }
      try t.assign(saved)
    }
  }
}

/// Per-parameter slots (momentum buffers and the like), made zero on first use.
public final class OptimizerSlots {
  /// The optimizer's name, for errors.
  let optimizer: String
  let names: [String]
  var tensors: [String: [Tensor]] = [:]
  public init(_ names: [String], of optimizer: String) {
    self.names = names
    self.optimizer = optimizer
  }

  func get(_ p: OptimizedParameter) -> [Tensor] {
    if let t = tensors[p.name] { return t }
    let t = names.map { _ in Tensor.zeros(p.tensor.shape) }
    tensors[p.name] = t
    return t
  }

  func state(_ params: [OptimizedParameter]) -> [(name: String, tensor: Tensor)] {
    params.flatMap { p in zip(names, get(p)).map { ("\(p.name).\($0.0)", $0.1) } }
  }

  func load(_ state: [String: Tensor], _ params: [OptimizedParameter]) throws {
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
