/// Movement ops: reshape (shares storage), expand, permute/transpose (copies), slice,
/// concat, stack, gather/scatter along an axis, pad.

extension Tensor {
  /// The same values in a new shape with the same element count; one dimension may be
  /// -1 (inferred). Shares storage.
  public func reshaped(_ newShape: [Int]) throws -> Tensor {
    var s = newShape
    if let i = s.firstIndex(of: -1) {
      let known = s.enumerated().filter { $0.offset != i }.map(\.element).reduce(1, *)
      guard known > 0, count % known == 0, s.filter({ $0 == -1 }).count == 1 else {
        throw TensorError("reshape", "cannot infer -1 in \(fmt(newShape)) from \(fmt(shape))")
      }
      s[i] = count / known
    }
    guard s.allSatisfy({ $0 >= 0 }), s.reduce(1, *) == count else {
      throw TensorError(
        "reshape", "\(fmt(shape)) (\(count) elements) cannot become \(fmt(newShape))")
    }
    if s == shape { return self }
    let x = self
    return Tensor(shape: s, storage: storage).recording("reshape", [x]) { g in
      [try g.reshaped(x.shape)]
    }
  }

  /// Collapses axes `start...end` into one.
  public func flattened(from start: Int = 0, through end: Int = -1) throws -> Tensor {
    if rank == 0 { return try reshaped([1]) }
    let s = try normalizeAxis(start, rank: rank, op: "flatten")
    let e = try normalizeAxis(end, rank: rank, op: "flatten")
    guard s <= e else { throw TensorError("flatten", "start axis \(start) after end axis \(end)") }
    let merged = shape[s...e].reduce(1, *)
    return try reshaped(Array(shape[..<s]) + [merged] + Array(shape[(e + 1)...]))
  }

  /// Inserts a size-1 axis at `axis` (−1 appends).
  public func unsqueezed(_ axis: Int) throws -> Tensor {
    let a = try normalizeAxis(axis, rank: rank + 1, op: "unsqueeze")
    var s = shape
    s.insert(1, at: a)
    return try reshaped(s)
  }

  /// Removes a size-1 axis.
  public func squeezed(_ axis: Int) throws -> Tensor {
    let a = try normalizeAxis(axis, rank: rank, op: "squeeze")
    guard shape[a] == 1 else {
      throw TensorError("squeeze", "axis \(axis) of \(fmt(shape)) has size \(shape[a]), not 1")
    }
    var s = shape
    s.remove(at: a)
    return try reshaped(s)
  }

  /// Broadcasts to `target` (NumPy rules), materialized. The gradient is summed back.
  public func expanded(to target: [Int]) throws -> Tensor {
    if target == shape { return self }
    let b = try broadcastShape(shape, target, op: "expand")
    guard b == target else {
      throw TensorError("expand", "\(fmt(shape)) cannot be expanded to \(fmt(target))")
    }
    let x = self
    let result = try broadcastMap(x, Tensor.zeros([]), op: "expand", outShape: target, First())
    return result.recording("expand", [x]) { g in [try reduceToShape(g, x.shape)] }
  }

  /// Reorders axes: result axis i is input axis `order[i]`. Copies.
  public func permuted(_ order: [Int]) throws -> Tensor {
    guard order.count == rank, Set(order) == Set(0..<rank) else {
      throw TensorError(
        "permute", "order \(order) is not a permutation of the \(rank) axes of \(fmt(shape))")
    }
    if order == Array(0..<rank) { return self }
    let x = self
    let out = permuteKernel(x, order)
    var inverse = [Int](repeating: 0, count: rank)
    for (i, o) in order.enumerated() { inverse[o] = i }
    return out.recording("permute", [x]) { g in [permuteKernel(g, inverse)] }
  }

  /// Swaps two axes (default: the last two). Copies.
  public func transposed(_ a0: Int = -2, _ a1: Int = -1) throws -> Tensor {
    let a = try normalizeAxis(a0, rank: rank, op: "transpose")
    let b = try normalizeAxis(a1, rank: rank, op: "transpose")
    var order = Array(0..<rank)
    order.swapAt(a, b)
    return try permuted(order)
  }

  /// Elements `range` along `axis` (a copy).
  public func sliced(axis: Int, _ range: Range<Int>) throws -> Tensor {
    let a = try normalizeAxis(axis, rank: rank, op: "slice")
    guard range.lowerBound >= 0, range.upperBound <= shape[a] else {
      throw TensorError(
        "slice", "range \(range) is out of bounds for axis \(axis) of \(fmt(shape))")
    }
    let x = self
    let (outer, n, inner) = splitAround(shape, a)
    var outShape = shape
    outShape[a] = range.count
    let out = Tensor(uninitializedShape: outShape)
    let len = range.count * inner
    for o in 0..<outer {
      (out.data + o * len).update(from: x.data + (o * n + range.lowerBound) * inner, count: len)
    }
    return out.recording("slice", [x]) { g in
      let dx = Tensor.zeros(x.shape)
      for o in 0..<outer {
        (dx.data + (o * n + range.lowerBound) * inner).update(from: g.data + o * len, count: len)
      }
      return [dx]
    }
  }

  /// Constant padding: `widths[i]` = (before, after) for axis i (fewer entries pad the
  /// leading axes only).
  public func padded(_ widths: [(Int, Int)], value: Float = 0) throws -> Tensor {
    guard widths.count <= rank, widths.allSatisfy({ $0.0 >= 0 && $0.1 >= 0 }) else {
      throw TensorError(
        "pad", "\(widths.count) non-negative (before, after) pairs needed for \(fmt(shape))")
    }
    let x = self
    var result = x
    for (axis, (before, after)) in widths.enumerated() where before > 0 || after > 0 {
      var padShape = result.shape
      padShape[axis] = before
      var parts: [Tensor] = []
      if before > 0 { parts.append(Tensor.full(padShape, value)) }
      parts.append(result)
      if after > 0 {
        padShape[axis] = after
        parts.append(Tensor.full(padShape, value))
      }
      result = try Tensor.concat(parts, axis: axis)
    }
    return result
  }

  /// Joins tensors along an existing axis; all other dimensions must match.
  public static func concat(_ tensors: [Tensor], axis: Int) throws -> Tensor {
    guard let first = tensors.first else { throw TensorError("concat", "no tensors to join") }
    let a = try normalizeAxis(axis, rank: first.rank, op: "concat")
    for t in tensors {
      var s1 = t.shape
      var s0 = first.shape
      guard s1.count == s0.count else {
        throw TensorError(
          "concat", "ranks differ: \(tensors.map { fmt($0.shape) }.joined(separator: ", "))")
      }
      s1[a] = 0
      s0[a] = 0
      guard s1 == s0 else {
        throw TensorError(
          "concat",
          "shapes differ outside axis \(axis): \(tensors.map { fmt($0.shape) }.joined(separator: ", "))"
        )
      }
    }
    var outShape = first.shape
    outShape[a] = tensors.reduce(0) { $0 + $1.shape[a] }
    let out = Tensor(uninitializedShape: outShape)
    let outer = first.shape[..<a].reduce(1, *)
    let inner = first.shape[(a + 1)...].reduce(1, *)
    let rowOut = outShape[a] * inner
    var offset = 0
    var offsets: [Int] = []
    for t in tensors {
      let len = t.shape[a] * inner
      offsets.append(offset)
      if len > 0 {
        for o in 0..<outer {
          (out.data + o * rowOut + offset).update(from: t.data + o * len, count: len)
        }
      }
      offset += len
    }
    return out.recording("concat", tensors) { g in
      tensors.enumerated().map { (i, t) in
        guard t.requiresGrad else { return nil }
        let len = t.shape[a] * inner
        let dt = Tensor(uninitializedShape: t.shape)
        if len > 0 {
          for o in 0..<outer {
            (dt.data + o * len).update(from: g.data + o * rowOut + offsets[i], count: len)
          }
        }
        return dt
      }
    }
  }

  /// Stacks equal-shaped tensors along a new axis.
  public static func stack(_ tensors: [Tensor], axis: Int = 0) throws -> Tensor {
    guard let first = tensors.first else { throw TensorError("stack", "no tensors to stack") }
    guard tensors.allSatisfy({ $0.shape == first.shape }) else {
      throw TensorError(
        "stack", "shapes differ: \(tensors.map { fmt($0.shape) }.joined(separator: ", "))")
    }
    let a = try normalizeAxis(axis, rank: first.rank + 1, op: "stack")
    return try concat(tensors.map { try $0.unsqueezed(a) }, axis: a)
  }

  /// out[i][j][k] = self[index[i][j][k]][j][k] for axis 0 (likewise for other axes), as
  /// `torch.gather`: `index` has the rank of `self` and, outside `axis`, dimensions no
  /// larger than self's. MAE uses it to keep each sample's visible patches.
  public func gather(axis: Int, index: IndexTensor) throws -> Tensor {
    let a = try normalizeAxis(axis, rank: rank, op: "gather")
    try checkIndex(index, axis: a, op: "gather", source: shape)
    let x = self
    let out = Tensor(uninitializedShape: index.shape)
    let plan = GatherPlan(index: index, axis: a, source: shape)
    plan.forEach { outPos, srcPos in out.data[outPos] = x.data[srcPos] }
    return out.recording("gather", [x]) { g in
      let dx = Tensor.zeros(x.shape)
      plan.forEach { outPos, srcPos in dx.data[srcPos] += g.data[outPos] }
      return [dx]
    }
  }

  /// A copy of `self` with `source` written at `index` along `axis` (as
  /// `torch.scatter`; `index` and `source` have the same shape). With duplicate indices
  /// the last write wins. Gradients: to `self` where not overwritten, to `source`
  /// gathered from the result's gradient.
  public func scattering(axis: Int, index: IndexTensor, source: Tensor) throws -> Tensor {
    let a = try normalizeAxis(axis, rank: rank, op: "scatter")
    guard source.shape == index.shape else {
      throw TensorError(
        "scatter", "source \(fmt(source.shape)) and index \(fmt(index.shape)) shapes differ")
    }
    try checkIndex(index, axis: a, op: "scatter", source: shape)
    let base = self
    let out = base.copy()
    let plan = GatherPlan(index: index, axis: a, source: shape)
    plan.forEach { srcPos, outPos in out.data[outPos] = source.data[srcPos] }
    return out.recording("scatter", [base, source]) { g in
      var dBase: Tensor? = nil
      if base.requiresGrad {
        let d = g.copy()
        plan.forEach { _, outPos in d.data[outPos] = 0 }
        dBase = d
      }
      var dSource: Tensor? = nil
      if source.requiresGrad {
        let d = Tensor(uninitializedShape: source.shape)
        plan.forEach { srcPos, outPos in d.data[srcPos] = g.data[outPos] }
        dSource = d
      }
      return [dBase, dSource]
    }
  }

  private func checkIndex(_ index: IndexTensor, axis: Int, op: String, source: [Int]) throws {
    guard index.shape.count == source.count else {
      throw TensorError(op, "index \(fmt(index.shape)) must have the rank of \(fmt(source))")
    }
    for i in 0..<source.count where i != axis && index.shape[i] > source[i] {
      throw TensorError(op, "index \(fmt(index.shape)) is larger than \(fmt(source)) on axis \(i)")
    }
    let n = source[axis]
    if let bad = index.values.first(where: { $0 < 0 || $0 >= n }) {
      throw TensorError(
        op, "index \(bad) is out of range for axis \(axis) of size \(n) in \(fmt(source))")
    }
  }
}

/// Maps each position of an index tensor to the source position it names.
struct GatherPlan {
  let index: IndexTensor
  let axis: Int
  let source: [Int]

  /// Calls body(indexPosition, sourcePosition) for every index element, in order.
  func forEach(_ body: (Int, Int) -> Void) {
    let r = index.shape.count
    var srcStrides = [Int](repeating: 1, count: r)
    for i in stride(from: r - 2, through: 0, by: -1) {
      srcStrides[i] = srcStrides[i + 1] * source[i + 1]
    }
    var pos = [Int](repeating: 0, count: r)
    for flat in 0..<index.values.count {
      var src = 0
      for d in 0..<r { src += (d == axis ? index.values[flat] : pos[d]) * srcStrides[d] }
      body(flat, src)
      var d = r - 1
      while d >= 0 {
        pos[d] += 1
        if pos[d] < index.shape[d] { break }
        pos[d] = 0
        d -= 1
      }
    }
  }
}

/// Copies `x` with axes reordered (out axis i = in axis order[i]); the innermost output
/// axis is copied with the input's stride.
func permuteKernel(_ x: Tensor, _ order: [Int]) -> Tensor {
  let outShape = order.map { x.shape[$0] }
  let out = Tensor(uninitializedShape: outShape)
  let r = x.rank
  var inStrides = [Int](repeating: 1, count: r)
  for i in stride(from: r - 2, through: 0, by: -1) {
    inStrides[i] = inStrides[i + 1] * x.shape[i + 1]
  }
  let st = order.map { inStrides[$0] }
  let inner = outShape.last ?? 1
  let innerStride = st.last ?? 1
  let rows = x.count / Swift.max(inner, 1)
  let outerDims = Array(outShape.dropLast())
  let outerStrides = Array(st.dropLast())
  let px = x.data
  let po = out.data
  if x.count == 0 { return out }
  Parallel.forChunks(rows, minChunk: Swift.max(1, 8192 / inner)) { range in
    var index = [Int](repeating: 0, count: outerDims.count)
    var rem = range.lowerBound
    for d in stride(from: outerDims.count - 1, through: 0, by: -1) {
      index[d] = rem % outerDims[d]
      rem /= outerDims[d]
    }
    var off = 0
    for d in 0..<outerDims.count { off += index[d] * outerStrides[d] }
    for row in range {
      let dst = po + row * inner
      let src = px + off
      if innerStride == 1 {
        dst.update(from: src, count: inner)
      } else {
        for j in 0..<inner { dst[j] = src[j * innerStride] }
      }
      var d = outerDims.count - 1
      while d >= 0 {
        index[d] += 1
        off += outerStrides[d]
        if index[d] < outerDims[d] { break }
        off -= outerStrides[d] * outerDims[d]
        index[d] = 0
        d -= 1
      }
    }
  }
  return out
}
