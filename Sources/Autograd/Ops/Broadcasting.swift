/// The machinery of element-wise ops: NumPy broadcasting (shapes and iteration plans),
/// the kernels that map an element function over one or two tensors, and the reduction
/// of a broadcast gradient back to an input's shape.

import Foundation


/// The broadcast shape of two shapes (NumPy rules: align right, 1 stretches).
func broadcastShape(_ a: [Int], _ b: [Int], op: String) throws -> [Int] {
  let rank = max(a.count, b.count)
  var out = [Int](repeating: 1, count: rank)
  for i in 0..<rank {
    let da = i < rank - a.count ? 1 : a[i - (rank - a.count)]
    let db = i < rank - b.count ? 1 : b[i - (rank - b.count)]
    guard da == db || da == 1 || db == 1 else {
      throw TensorError(
        op, "\(fmt(a)) and \(fmt(b)) cannot be broadcast together (axis \(i): \(da) vs \(db))")
    }
    out[i] = da == 1 ? db : da
  }
  return out
}

/// A broadcast iteration plan: output dims with per-input strides (0 where the input is
/// broadcast), adjacent dims merged where both inputs allow it so the inner loop is as
/// long as possible.
struct BroadcastPlan {
  var dims: [Int] = []
  var strideA: [Int] = []
  var strideB: [Int] = []

  init(out: [Int], a: [Int], b: [Int]) {
    func strides(_ s: [Int]) -> [Int] {
      let padded = [Int](repeating: 1, count: out.count - s.count) + s
      var st = [Int](repeating: 0, count: out.count)
      var acc = 1
      for i in stride(from: out.count - 1, through: 0, by: -1) {
        st[i] = padded[i] == 1 && out[i] != 1 ? 0 : acc
        acc *= padded[i]
      }
      return st
    }
    let sa = strides(a)
    let sb = strides(b)
    for i in 0..<out.count where out[i] != 1 {
      if let last = dims.indices.last,
        Self.mergeable(strideA[last], sa[i], out[i]), Self.mergeable(strideB[last], sb[i], out[i])
      {
        dims[last] *= out[i]
        strideA[last] = sa[i]
        strideB[last] = sb[i]
      } else {
        dims.append(out[i])
        strideA.append(sa[i])
        strideB.append(sb[i])
      }
    }
    if dims.isEmpty {
      dims = [1]
      strideA = [0]
      strideB = [0]
    }
  }

  /// Dim `outer` (stride `so`) can merge into the following dim (stride `si`, size n)
  /// when both are broadcast or the outer one continues the inner one.
  static func mergeable(_ so: Int, _ si: Int, _ n: Int) -> Bool {
    (so == 0 && si == 0) || (so == si * n && si != 0)
  }
}

// Element functions are small structs rather than closures: a generic kernel is
// specialized for each struct type, so the function is inlined into the loop that each
// worker thread runs and the loop vectorizes. (A closure captured by the worker's
// closure stays an indirect call per element: 5-10x slower.)

/// f(x), one element.
protocol UnaryFunction { func callAsFunction(_ x: Float) -> Float }
/// f(a, b), one element.
protocol BinaryFunction { func callAsFunction(_ a: Float, _ b: Float) -> Float }

/// out[i] = f(a[ia], b[ib]) over the broadcast shape (or `outShape`, which the caller
/// has checked).
@inline(__always)
func broadcastMap<F: BinaryFunction>(
  _ a: Tensor, _ b: Tensor, op: String, outShape target: [Int]? = nil, _ f: F
) throws -> Tensor {
  let outShape =
    try target ?? (a.shape == b.shape ? a.shape : broadcastShape(a.shape, b.shape, op: op))
  let out = Tensor(uninitializedShape: outShape)
  let pa = a.data
  let pb = b.data
  let po = out.data
  let n = out.count
  if n == 0 { return out }
  if a.shape == outShape && b.shape == outShape {
    Parallel.forChunks(n, minChunk: 1 << 14) { r in
      for i in r { po[i] = f(pa[i], pb[i]) }
    }
    return out
  }
  let plan = BroadcastPlan(out: outShape, a: a.shape, b: b.shape)
  let inner = plan.dims.last!
  let ia = plan.strideA.last!
  let ib = plan.strideB.last!
  let rows = n / inner
  let outerDims = Array(plan.dims.dropLast())
  let outerA = Array(plan.strideA.dropLast())
  let outerB = Array(plan.strideB.dropLast())
  Parallel.forChunks(rows, minChunk: max(1, (1 << 14) / inner)) { r in
    // Offsets of the first row of this chunk, then advanced like an odometer.
    var index = [Int](repeating: 0, count: outerDims.count)
    var rem = r.lowerBound
    for d in stride(from: outerDims.count - 1, through: 0, by: -1) {
      index[d] = rem % outerDims[d]
      rem /= outerDims[d]
    }
    var offA = 0
    var offB = 0
    for d in 0..<outerDims.count {
      offA += index[d] * outerA[d]
      offB += index[d] * outerB[d]
    }
    for row in r {
      let o = po + row * inner
      let xa = pa + offA
      let xb = pb + offB
      if ia == 1 && ib == 1 {
        for j in 0..<inner { o[j] = f(xa[j], xb[j]) }
      } else if ia == 1 {
        let vb = xb[0]
        for j in 0..<inner { o[j] = f(xa[j], vb) }
      } else if ib == 1 {
        let va = xa[0]
        for j in 0..<inner { o[j] = f(va, xb[j]) }
      } else {
        o[0] = f(xa[0], xb[0])
        for j in 1..<max(inner, 1) { o[j] = o[0] }
      }
      // Advance the odometer.
      var d = outerDims.count - 1
      while d >= 0 {
        index[d] += 1
        offA += outerA[d]
        offB += outerB[d]
        if index[d] < outerDims[d] { break }
        offA -= outerA[d] * outerDims[d]
        offB -= outerB[d] * outerDims[d]
        index[d] = 0
        d -= 1
      }
    }
  }
  return out
}

/// out[i] = f(x[i]).
@inline(__always)
func map<F: UnaryFunction>(_ x: Tensor, _ f: F) -> Tensor {
  let out = Tensor(uninitializedShape: x.shape)
  let px = x.data
  let po = out.data
  Parallel.forChunks(x.count, minChunk: 1 << 14) { r in
    for i in r { po[i] = f(px[i]) }
  }
  return out
}

/// out[i] = f(x[i], y[i]) for equal shapes.
@inline(__always)
func zipMap<F: BinaryFunction>(_ x: Tensor, _ y: Tensor, _ f: F) -> Tensor {
  let out = Tensor(uninitializedShape: x.shape)
  let px = x.data
  let py = y.data
  let po = out.data
  Parallel.forChunks(x.count, minChunk: 1 << 14) { r in
    for i in r { po[i] = f(px[i], py[i]) }
  }
  return out
}

/// Sums a broadcast gradient back down to an input's shape.
func reduceToShape(_ g: Tensor, _ shape: [Int]) throws -> Tensor {
  if g.shape == shape { return g }
  let lead = g.rank - shape.count
  var axes = Array(0..<lead)
  for i in 0..<shape.count where shape[i] == 1 && g.shape[lead + i] != 1 {
    axes.append(lead + i)
  }
  let summed = axes.isEmpty ? g : try g.sum(axes: axes, keepDims: true)
  return try summed.reshaped(shape)
}
