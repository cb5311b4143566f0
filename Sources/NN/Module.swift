import Autograd

/// A building block of a network: named parameters, named buffers (non-trained state
/// such as BatchNorm's running statistics), child modules, and a train/eval mode.
///
/// Names are dotted paths built from the registration names (`blocks.3.attn.qkv.weight`)
/// and are chosen to match timm (ViT) and torchvision (ResNet), so they double as
/// checkpoint keys that PyTorch loads directly (docs/engine-principles.md, principle 7).
///
/// Subclasses create their parameters and children in `init`, then register them with
/// `register(parameter:)`, `register(buffer:)` and `register(child:)` in the order
/// PyTorch declares them (so listings and files come out in the same order).
open class Module: @unchecked Sendable {
  public private(set) var isTraining = true
  private var ownParameters: [(name: String, tensor: Tensor)] = []
  private var ownBuffers: [(name: String, tensor: Tensor)] = []
  private var children: [(name: String, module: Module)] = []
  /// The module's name inside its parent (set when registered).
  public private(set) var localName = ""
  public private(set) weak var parent: Module?

  public init() {}

  /// The dotted path from the root module ("" for the root).
  public var path: String {
    guard let parent else { return "" }
    let up = parent.path
    return up.isEmpty ? localName : up + "." + localName
  }

  /// A short type name for tables ("Linear", "Conv2d", …).
  open var typeName: String { String(describing: type(of: self)) }

  // MARK: Registration

  /// Registers a trainable tensor under `name` (marks it as requiring gradients).
  @discardableResult
  public func register(parameter name: String, _ tensor: Tensor) -> Tensor {
    precondition(!ownParameters.contains { $0.name == name }, "\(typeName): parameter \(name) registered twice")
    tensor.requiringGrad(true)
    ownParameters.append((name, tensor))
    return tensor
  }

  /// Registers a non-trained state tensor (saved in checkpoints, not optimized).
  @discardableResult
  public func register(buffer name: String, _ tensor: Tensor) -> Tensor {
    ownBuffers.append((name, tensor))
    return tensor
  }

  /// Registers a child module under `name`.
  @discardableResult
  public func register<M: Module>(child name: String, _ module: M) -> M {
    precondition(!children.contains { $0.name == name }, "\(typeName): child \(name) registered twice")
    module.localName = name
    module.parent = self
    children.append((name, module))
    return module
  }

  // MARK: Traversal

  /// Every parameter with its dotted name, depth-first in registration order.
  public func namedParameters() -> [(name: String, tensor: Tensor)] {
    collect(prefix: "") { $0.ownParameters }
  }

  /// Every buffer with its dotted name.
  public func namedBuffers() -> [(name: String, tensor: Tensor)] {
    collect(prefix: "") { $0.ownBuffers }
  }

  /// Parameters and buffers together, as saved in a weights file.
  public func stateDict() -> [(name: String, tensor: Tensor)] {
    collect(prefix: "") { $0.ownParameters + $0.ownBuffers }
  }

  public var parameters: [Tensor] { namedParameters().map(\.tensor) }

  /// Number of scalar parameters.
  public var parameterCount: Int { parameters.reduce(0) { $0 + $1.count } }

  /// This module and every descendant with its dotted path, depth-first.
  public func namedModules() -> [(name: String, module: Module)] {
    var out: [(String, Module)] = [("", self)]
    for (name, child) in children {
      out += child.namedModules().map { ($0.name.isEmpty ? name : name + "." + $0.name, $0.module) }
    }
    return out
  }

  public var childModules: [(name: String, module: Module)] { children }

  private func collect(
    prefix: String, _ own: (Module) -> [(name: String, tensor: Tensor)]
  ) -> [(name: String, tensor: Tensor)] {
    var out = own(self).map { (prefix + $0.name, $0.tensor) }
    for (name, child) in children {
      out += child.collect(prefix: prefix + name + ".", own)
    }
    return out
  }

  // MARK: Modes

  /// Switches this module and its descendants to training (`true`) or evaluation mode.
  public func train(_ on: Bool = true) {
    isTraining = on
    for (_, child) in children { child.train(on) }
  }

  /// Evaluation mode (BatchNorm uses running statistics, dropout is off).
  public func eval() { train(false) }

  /// Stops (or resumes) gradient computation for every parameter (e.g. a frozen backbone
  /// under a linear probe).
  public func freeze(_ frozen: Bool = true) {
    for p in parameters { p.requiringGrad(!frozen) }
  }

  /// Clears every parameter's gradient.
  public func zeroGrad() {
    for p in parameters { p.zeroGrad() }
  }
}

/// How a parameter is treated by the optimizer.
public enum ParameterGroup: String, Sendable, Codable {
  /// Weights of linear and convolution layers: weight decay applies.
  case decay
  /// Biases, normalization weights, position embeddings, class and mask tokens: no
  /// weight decay (and LARS does not adapt them), as in timm / MAE / SimCLR.
  case noDecay
}

extension Module {
  /// Splits parameters into weight-decay groups: 1-D tensors (biases, norm weights) and
  /// the names in `noDecayNames` (e.g. `pos_embed`, `cls_token`) go to `.noDecay`.
  public func parameterGroups(noDecayNames: Set<String> = ["pos_embed", "cls_token", "mask_token"])
    -> [(name: String, tensor: Tensor, group: ParameterGroup)]
  {
    namedParameters().map { item in
      let leaf = item.name.split(separator: ".").last.map(String.init) ?? item.name
      let noDecay = item.tensor.rank <= 1 || noDecayNames.contains(leaf)
      return (item.name, item.tensor, noDecay ? .noDecay : .decay)
    }
  }
}
