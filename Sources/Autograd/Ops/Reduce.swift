/// Reductions over axes (sum, mean, max/argmax, var), each with `keepDims`.

/// The [outer, n, inner] view of a shape around `axis`.
@inline(__always)
func splitAround(_ shape: [Int], _ axis: Int) -> (outer: Int, n: Int, inner: Int) {
  (shape[..<axis].reduce(1, *), shape[axis], shape[(axis + 1)...].reduce(1, *))
}

/// Sums one axis (kept as size 1).
func sumAxisKernel(_ x: Tensor, _ axis: Int) -> Tensor {
  var outShape = x.shape
  outShape[axis] = 1
  let (outer, n, inner) = splitAround(x.shape, axis)
  let out = Tensor(uninitializedShape: outShape)
  let px = x.data
  let po = out.data
  if inner == 1 {
    Parallel.forChunks(outer, minChunk: max(1, 4096 / max(n, 1))) { r in
      for o in r {
        po[o] = vectorSum(px + o * n, n)
      }
    }
  } else {
    // Parallel over (outer × inner blocks); each output accumulates its rows in order.
    let block = 256
    let blocks = (inner + block - 1) / block
    Parallel.forChunks(outer * blocks, minChunk: max(1, 16384 / max(1, n * block))) { r in
      for t in r {
        let o = t / blocks
        let b0 = (t % blocks) * block
        let b1 = Swift.min(b0 + block, inner)
        let dst = po + o * inner
        for k in b0..<b1 { dst[k] = 0 }
        for j in 0..<n {
          let src = px + (o * n + j) * inner
          for k in b0..<b1 { dst[k] += src[k] }
        }
      }
    }
  }
  return out
}

/// Max over one axis (kept as size 1) and the index of the first maximum.
func maxAxisKernel(_ x: Tensor, _ axis: Int) -> (Tensor, [Int32]) {
  var outShape = x.shape
  outShape[axis] = 1
  let (outer, n, inner) = splitAround(x.shape, axis)
  let out = Tensor(uninitializedShape: outShape)
  var indices = [Int32](repeating: 0, count: outer * inner)
  let px = x.data
  let po = out.data
  indices.withUnsafeMutableBufferPointer { idx in
    let pi = idx.baseAddress!
    Parallel.forChunks(outer * inner, minChunk: 1024) { r in
      for t in r {
        let o = t / inner
        let k = t % inner
        var best = px[o * n * inner + k]
        var arg: Int32 = 0
        for j in 1..<Swift.max(n, 1) {
          let v = px[(o * n + j) * inner + k]
          // NaN wins so that it propagates, like PyTorch.
          if v > best || (v.isNaN && !best.isNaN) {
            best = v
            arg = Int32(j)
          }
        }
        po[t] = best
        pi[t] = arg
      }
    }
  }
  return (out, indices)
}

extension Tensor {
  func resolvedAxes(_ axes: [Int]?, op: String) throws -> [Int] {
    guard let axes else { return Array(0..<rank) }
    let resolved = try axes.map { try normalizeAxis($0, rank: rank, op: op) }
    guard Set(resolved).count == resolved.count else {
      throw TensorError(op, "repeated axis in \(axes) for shape \(fmt(shape))")
    }
    return resolved.sorted()
  }

  /// The shape after reducing `axes` (kept as 1 or dropped).
  func reducedShape(_ axes: [Int], keepDims: Bool) -> [Int] {
    var s: [Int] = []
    for (i, d) in shape.enumerated() {
      if axes.contains(i) {
        if keepDims { s.append(1) }
      } else {
        s.append(d)
      }
    }
    return s
  }

  /// Sum over `axes` (all axes when nil).
  public func sum(axes: [Int]? = nil, keepDims: Bool = false) throws -> Tensor {
    let x = self
    let ax = try resolvedAxes(axes, op: "sum")
    var t = x.detached()
    for a in ax.reversed() {
      t = sumAxisKernel(t, a)
    }
    let keptShape = x.reducedShape(ax, keepDims: true)
    let result = Tensor(shape: x.reducedShape(ax, keepDims: keepDims), storage: t.storage)
    return result.recording("sum", [x]) { g in
      // Broadcast the gradient back over the reduced axes.
      [try g.reshaped(keptShape).expanded(to: x.shape)]
    }
  }

  public func sum(axis: Int, keepDims: Bool = false) throws -> Tensor {
    try sum(axes: [axis], keepDims: keepDims)
  }

  /// Mean over `axes` (all axes when nil).
  public func mean(axes: [Int]? = nil, keepDims: Bool = false) throws -> Tensor {
    let ax = try resolvedAxes(axes, op: "mean")
    let n = ax.reduce(1) { $0 * shape[$1] }
    guard n > 0 else { throw TensorError("mean", "mean over an empty axis of shape \(fmt(shape))") }
    return try sum(axes: ax, keepDims: keepDims) * (1 / Float(n))
  }

  public func mean(axis: Int, keepDims: Bool = false) throws -> Tensor {
    try mean(axes: [axis], keepDims: keepDims)
  }

  /// Variance over `axes`, with Bessel's `correction` (0 = population variance, as
  /// normalization layers use; 1 = the sample variance, PyTorch's default).
  public func variance(axes: [Int]? = nil, correction: Int = 1, keepDims: Bool = false) throws
    -> Tensor
  {
    let ax = try resolvedAxes(axes, op: "var")
    let n = ax.reduce(1) { $0 * shape[$1] }
    guard n - correction > 0 else {
      throw TensorError(
        "var", "\(n) elements with correction \(correction) over axes \(ax) of \(fmt(shape))")
    }
    let centered = try self - mean(axes: ax, keepDims: true)
    return try centered.pow(2).sum(axes: ax, keepDims: keepDims) * (1 / Float(n - correction))
  }

  /// Max over one axis; the gradient flows to the (first) maximal element.
  public func max(axis: Int, keepDims: Bool = false) throws -> Tensor {
    let x = self
    let a = try normalizeAxis(axis, rank: rank, op: "max")
    let (m, idx) = maxAxisKernel(x, a)
    let result =
      keepDims ? m : Tensor(shape: x.reducedShape([a], keepDims: false), storage: m.storage)
    let (outer, n, inner) = splitAround(x.shape, a)
    return result.recording("max", [x]) { g in
      let dx = Tensor.zeros(x.shape)
      for t in 0..<(outer * inner) {
        let o = t / inner
        let k = t % inner
        dx.data[(o * n + Int(idx[t])) * inner + k] = g.data[t]
      }
      return [dx]
    }
  }

  /// Max over all elements.
  public func max() throws -> Tensor {
    try reshaped([count]).max(axis: 0)
  }

  /// Index of the maximum along `axis` (first one on ties), axis removed.
  public func argmax(axis: Int) throws -> IndexTensor {
    let a = try normalizeAxis(axis, rank: rank, op: "argmax")
    let (_, idx) = maxAxisKernel(self, a)
    return try IndexTensor(shape: reducedShape([a], keepDims: false), idx.map { Int($0) })
  }
}
