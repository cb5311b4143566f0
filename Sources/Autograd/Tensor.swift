/// A dense, contiguous, row-major tensor of `Float`s that can take part in reverse-mode
/// automatic differentiation.
///
/// A tensor is a shape plus a reference to 64-byte aligned storage. Reshaping shares the
/// storage; every other op writes a new tensor (a permute is a copy). Tensors produced
/// by an op while gradients are recorded keep the op's `GradFn`, through which
/// `backward()` reaches the leaves (`requiresGrad` tensors with no `GradFn`: parameters).
public final class Tensor: @unchecked Sendable {
  public let shape: [Int]
  public let storage: TensorStorage
  /// Whether gradients flow to (leaves) or through (results) this tensor.
  public internal(set) var requiresGrad: Bool
  /// The accumulated gradient of a leaf after `backward()`; `nil` until then.
  public var grad: Tensor?
  /// The op that produced this tensor, kept while gradients may still flow through it.
  var gradFn: GradFn?
  /// Set when `backward()` has run through this result and released `gradFn`: a second
  /// pass would otherwise treat it as a leaf and silently drop the gradient.
  var backwardReleased = false

  /// Wraps existing storage; `storage.count` must equal the product of `shape`.
  init(shape: [Int], storage: TensorStorage, requiresGrad: Bool = false) {
    self.shape = shape
    self.storage = storage
    self.requiresGrad = requiresGrad
  }

  /// An uninitialized tensor (every element must be written before it is read).
  init(uninitializedShape shape: [Int]) {
    self.shape = shape
    self.storage = TensorStorage(uninitializedCount: shape.reduce(1, *))
    self.requiresGrad = false
  }

  /// A tensor holding `values` (row-major) in `shape`.
  public convenience init(shape: [Int], _ values: [Float], requiresGrad: Bool = false) throws {
    let count = shape.reduce(1, *)
    guard shape.allSatisfy({ $0 >= 0 }) else {
      throw TensorError("Tensor", "negative dimension in shape \(fmt(shape))")
    }
    guard values.count == count else {
      throw TensorError(
        "Tensor", "shape \(fmt(shape)) needs \(count) values, got \(values.count)")
    }
    self.init(uninitializedShape: shape)
    values.withUnsafeBufferPointer { src in
      if count > 0 { data.update(from: src.baseAddress!, count: count) }
    }
    self.requiresGrad = requiresGrad
  }

  /// A tensor of zeros.
  public static func zeros(_ shape: [Int], requiresGrad: Bool = false) -> Tensor {
    let t = Tensor(shape: shape, storage: TensorStorage(zeroedCount: shape.reduce(1, *)))
    t.requiresGrad = requiresGrad
    return t
  }

  /// A tensor filled with `value`.
  public static func full(_ shape: [Int], _ value: Float, requiresGrad: Bool = false) -> Tensor {
    let t = Tensor(uninitializedShape: shape)
    t.data.initialize(repeating: value, count: t.count)
    t.requiresGrad = requiresGrad
    return t
  }

  public static func ones(_ shape: [Int], requiresGrad: Bool = false) -> Tensor {
    full(shape, 1, requiresGrad: requiresGrad)
  }

  /// A rank-0 tensor.
  public static func scalar(_ value: Float) -> Tensor { full([], value) }

  /// Standard-normal values scaled by `std` and shifted by `mean`.
  public static func randn(
    _ shape: [Int], mean: Float = 0, std: Float = 1, using rng: inout RandomGenerator,
    requiresGrad: Bool = false
  ) -> Tensor {
    let t = Tensor(uninitializedShape: shape)
    for i in 0..<t.count { t.data[i] = mean + std * rng.nextNormal() }
    t.requiresGrad = requiresGrad
    return t
  }

  /// Uniform values in [low, high).
  public static func uniform(
    _ shape: [Int], low: Float = 0, high: Float = 1, using rng: inout RandomGenerator,
    requiresGrad: Bool = false
  ) -> Tensor {
    let t = Tensor(uninitializedShape: shape)
    let span = high - low
    for i in 0..<t.count { t.data[i] = low + span * rng.nextFloat() }
    t.requiresGrad = requiresGrad
    return t
  }

  // MARK: Properties

  @inline(__always) public var data: UnsafeMutablePointer<Float> { storage.pointer }
  @inline(__always) public var count: Int { storage.count }
  @inline(__always) public var rank: Int { shape.count }

  /// The values in row-major order.
  public var scalars: [Float] { Array(UnsafeBufferPointer(start: data, count: count)) }

  /// The single value of a one-element tensor.
  public func item() throws -> Float {
    guard count == 1 else {
      throw TensorError("item", "tensor of shape \(fmt(shape)) has \(count) elements, not 1")
    }
    return data[0]
  }

  /// The value at a multi-dimensional index (for tests and inspection, not hot loops).
  public subscript(_ index: Int...) -> Float {
    precondition(index.count == rank, "subscript: \(index.count) indices for rank \(rank)")
    var offset = 0
    for (i, (d, n)) in zip(index, shape).enumerated() {
      precondition(d >= 0 && d < n, "subscript: index \(d) out of range for axis \(i) of size \(n)")
      offset = offset * n + d
    }
    return data[offset]
  }

  /// Whether this tensor is a leaf that accumulates a gradient (a parameter).
  public var isLeaf: Bool { gradFn == nil }

  /// Marks a leaf as needing a gradient (e.g. a parameter), or stops tracking it.
  @discardableResult
  public func requiringGrad(_ flag: Bool = true) -> Tensor {
    precondition(gradFn == nil, "requiringGrad: only leaves can change requiresGrad")
    requiresGrad = flag
    return self
  }

  /// The same values, cut off from the graph (no gradient flows back through it).
  public func detached() -> Tensor {
    Tensor(shape: shape, storage: storage)
  }

  /// A copy with its own storage, cut off from the graph.
  public func copy() -> Tensor {
    let t = Tensor(uninitializedShape: shape)
    if count > 0 { t.data.update(from: data, count: count) }
    return t
  }

  /// Overwrites the values of this tensor in place with those of `other` (same shape),
  /// outside autograd: used by optimizers and weight loading.
  public func assign(_ other: Tensor) throws {
    guard other.shape == shape else {
      throw TensorError("assign", "shapes differ: \(fmt(shape)) ← \(fmt(other.shape))")
    }
    if count > 0 { data.update(from: other.data, count: count) }
  }

  /// Fills the tensor with `value` in place, outside autograd.
  public func fill(_ value: Float) {
    data.update(repeating: value, count: count)
  }
}

extension Tensor: CustomStringConvertible {
  public var description: String {
    let shown = scalars.prefix(8).map { String($0) }.joined(separator: ", ")
    return "Tensor(\(fmt(shape)): [\(shown)\(count > 8 ? ", …" : "")])"
  }
}

/// Integer indices with a shape, for `gather`, `scatter`, losses' targets and the like.
public struct IndexTensor: Sendable, Equatable {
  public let shape: [Int]
  public let values: [Int]

  public init(shape: [Int], _ values: [Int]) throws {
    guard shape.reduce(1, *) == values.count else {
      throw TensorError(
        "IndexTensor", "shape \(fmt(shape)) needs \(shape.reduce(1, *)) values, got \(values.count)")
    }
    self.shape = shape
    self.values = values
  }

  /// A rank-1 index list.
  public init(_ values: [Int]) {
    self.shape = [values.count]
    self.values = values
  }
}
