import Autograd
import Backbones
import NN
import Optimization

/// The momentum target network of BYOL (Grill et al. 2020, §3.1: the target network) and
/// MoCo v3 (Chen, Xie & He 2021, §3: the momentum encoder): a backbone and a projector of
/// the online network's architecture whose weights are the exponential moving average of
/// the online backbone's and projector's, ξ ← m·ξ + (1 − m)·θ after every step.
///
/// `module` holds it as `backbone.*` and `projector.*`; a task registers it among its
/// heads (as `target`), so checkpoints save it and a resume or a rollback restores it
/// exactly with the rest of the model. `MovingAverage(of:into:)` starts it as a copy of
/// the online weights and freezes it: its parameters do not require gradients, so
/// `optimizedParameters()` leaves them out of the optimizer, and it runs forward without
/// recording (`withoutGradients`: no gradient reaches it, and no activations are kept).
final class MomentumEncoder {
  let module = Module()
  let backbone: any Backbone
  let projector: MLPHead
  let averages: [MovingAverage]

  /// `online`: the online backbone; `onlineProjector`: the module holding the online
  /// projector's layers; `projector`: a fresh head of the same shape (its initial weights
  /// are replaced by the online ones).
  init(online: any Backbone, onlineProjector: Module, projector: MLPHead, using rng: inout RandomGenerator) throws {
    backbone = try online.config.make(using: &rng)
    self.projector = projector
    let targetProjector = Module()
    projector.register(in: targetProjector)
    module.register(child: "backbone", backbone)
    module.register(child: "projector", targetProjector)
    averages = [
      try MovingAverage(of: online, into: backbone), try MovingAverage(of: onlineProjector, into: targetProjector),
    ]
  }

  /// The target projections of images [B, C, H, W] → [B, D], with no gradient.
  func callAsFunction(_ images: Tensor) throws -> Tensor {
    try withoutGradients { try projector(backbone.features(images)) }
  }

  /// One EMA step with momentum `m` (1 keeps the target as it is).
  func update(momentum m: Float) {
    for a in averages { a.update(momentum: m) }
  }
}

extension MLPHead {
  /// The head's layers in a module of their own (`fc1`, `bn`, …), to be registered as one
  /// child and averaged as one.
  func asModule() -> Module {
    let m = Module()
    register(in: m)
    return m
  }
}
