/// Softmax and log-softmax, fused and numerically stable (the row maximum is subtracted
/// before exponentiating).

import Foundation

/// Softmax of each row of length `d`: dst = exp(src − max) / Σ.
@inline(__always)
func softmaxRow(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ d: Int) {
  var m = vectorMax(src, d)
  if m == -.infinity { m = 0 }  // an all −∞ row stays NaN-free until the division
  for j in 0..<d { dst[j] = FastMath.exp(src[j] - m) }
  let inv = 1 / vectorSum(dst, d)
  for j in 0..<d { dst[j] *= inv }
}

extension Tensor {
  /// Runs a last-axis kernel over `axis` by moving that axis last and back.
  private func alongAxis(_ axis: Int, op: String, _ body: (Tensor) throws -> Tensor) throws
    -> Tensor
  {
    let a = try normalizeAxis(axis, rank: rank, op: op)
    if a == rank - 1 { return try body(self) }
    var order = Array(0..<rank)
    order.swapAt(a, rank - 1)
    return try body(try permuted(order)).permuted(order)
  }

  /// softmax(x) along `axis` (default: last).
  public func softmax(axis: Int = -1) throws -> Tensor {
    try alongAxis(axis, op: "softmax") { x in
      guard let d = x.shape.last, d > 0 else {
        throw TensorError("softmax", "empty axis in \(fmt(x.shape))")
      }
      let rows = x.count / d
      let y = Tensor(uninitializedShape: x.shape)
      let px = x.data
      let py = y.data
      Parallel.forChunks(rows, minChunk: Swift.max(1, 2048 / d)) { r in
        for row in r { softmaxRow(px + row * d, py + row * d, d) }
      }
      return y.recording("softmax", [x]) { g in
        // dx = y ⊙ (dy − Σ dy·y)
        let dx = Tensor(uninitializedShape: x.shape)
        let pg = g.data
        let pd = dx.data
        Parallel.forChunks(rows, minChunk: Swift.max(1, 2048 / d)) { r in
          for row in r {
            let yr = py + row * d
            let gr = pg + row * d
            let dr = pd + row * d
            let dot = vectorDot(gr, yr, d)
            for j in 0..<d { dr[j] = yr[j] * (gr[j] - dot) }
          }
        }
        return [dx]
      }
    }
  }

  /// log(softmax(x)) along `axis`, computed as x − max − log Σ exp(x − max).
  public func logSoftmax(axis: Int = -1) throws -> Tensor {
    try alongAxis(axis, op: "log_softmax") { x in
      guard let d = x.shape.last, d > 0 else {
        throw TensorError("log_softmax", "empty axis in \(fmt(x.shape))")
      }
      let rows = x.count / d
      let y = Tensor(uninitializedShape: x.shape)
      let px = x.data
      let py = y.data
      Parallel.forChunks(rows, minChunk: Swift.max(1, 2048 / d)) { r in
        for row in r {
          let src = px + row * d
          let dst = py + row * d
          let m = vectorMax(src, d)
          for j in 0..<d { dst[j] = FastMath.exp(src[j] - m) }
          let lse = m + Foundation.log(vectorSum(dst, d))
          for j in 0..<d { dst[j] = src[j] - lse }
        }
      }
      return y.recording("log_softmax", [x]) { g in
        // dx = dy − softmax · Σ dy
        let dx = Tensor(uninitializedShape: x.shape)
        let pg = g.data
        let pd = dx.data
        Parallel.forChunks(rows, minChunk: Swift.max(1, 2048 / d)) { r in
          for row in r {
            let yr = py + row * d
            let gr = pg + row * d
            let dr = pd + row * d
            let s = vectorSum(gr, d)
            for j in 0..<d { dr[j] = gr[j] - FastMath.exp(yr[j]) * s }
          }
        }
        return [dx]
      }
    }
  }
}
