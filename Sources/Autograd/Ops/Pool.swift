/// Pooling over the spatial axes of [N, C, H, W]: max pool, average pool (padding
/// counted, PyTorch's default) and adaptive average pool. Planes (n, c) are
/// independent, so they are spread over the threads.

/// Output size of a pooling window along one axis.
@inline(__always)
private func pooledSize(_ size: Int, _ k: Int, _ s: Int, _ p: Int) -> Int {
  (size + 2 * p - k) / s + 1
}

private func checkPoolInput(_ x: Tensor, kernel: Int, stride: Int, padding: Int, op: String) throws
{
  guard x.rank == 4 else { throw TensorError(op, "input \(fmt(x.shape)) must be [N, C, H, W]") }
  guard kernel > 0, stride > 0, padding >= 0, padding * 2 <= kernel else {
    throw TensorError(
      op,
      "kernel \(kernel), stride \(stride), padding \(padding): need kernel, stride > 0 and padding ≤ kernel/2"
    )
  }
  guard x.shape[2] + 2 * padding >= kernel, x.shape[3] + 2 * padding >= kernel else {
    throw TensorError(op, "kernel \(kernel) is larger than the padded input \(fmt(x.shape))")
  }
}

extension Tensor {
  /// Max pool with a square window (padding acts as −∞). The gradient goes to the
  /// first maximal element of each window.
  public func maxPool2d(kernel: Int, stride: Int? = nil, padding: Int = 0) throws -> Tensor {
    let s = stride ?? kernel
    try checkPoolInput(self, kernel: kernel, stride: s, padding: padding, op: "max_pool2d")
    let x = self
    let (n, c, h, w) = (shape[0], shape[1], shape[2], shape[3])
    let oh = pooledSize(h, kernel, s, padding)
    let ow = pooledSize(w, kernel, s, padding)
    let out = Tensor(uninitializedShape: [n, c, oh, ow])
    var argmax = [Int32](repeating: 0, count: out.count)
    let px = x.data
    let po = out.data
    argmax.withUnsafeMutableBufferPointer { am in
      let pa = am.baseAddress!
      Parallel.forChunks(n * c) { planes in
        for p in planes {
          let src = px + p * h * w
          for y in 0..<oh {
            for xo in 0..<ow {
              var best = -Float.infinity
              var arg: Int32 = -1
              for ky in 0..<kernel {
                let iy = y * s - padding + ky
                if iy < 0 || iy >= h { continue }
                for kx in 0..<kernel {
                  let ix = xo * s - padding + kx
                  if ix < 0 || ix >= w { continue }
                  let v = src[iy * w + ix]
                  if v > best || arg < 0 || v.isNaN {
                    best = v
                    arg = Int32(iy * w + ix)
                  }
                }
              }
              let o = (p * oh + y) * ow + xo
              po[o] = best
              pa[o] = arg
            }
          }
        }
      }
    }
    return out.recording("max_pool2d", [x]) { g in
      let dx = Tensor.zeros(x.shape)
      let pg = g.data
      let pd = dx.data
      Parallel.forChunks(n * c) { planes in
        for p in planes {
          for j in 0..<(oh * ow) {
            let o = p * oh * ow + j
            pd[p * h * w + Int(argmax[o])] += pg[o]
          }
        }
      }
      return [dx]
    }
  }

  /// Average pool with a square window; padded positions count as zeros in the average
  /// (PyTorch's `count_include_pad=True`).
  public func avgPool2d(kernel: Int, stride: Int? = nil, padding: Int = 0) throws -> Tensor {
    let s = stride ?? kernel
    try checkPoolInput(self, kernel: kernel, stride: s, padding: padding, op: "avg_pool2d")
    let (n, c, h, w) = (shape[0], shape[1], shape[2], shape[3])
    let oh = pooledSize(h, kernel, s, padding)
    let ow = pooledSize(w, kernel, s, padding)
    let windows = (0..<oh).map { y in (y * s - padding, y * s - padding + kernel) }
    let windowsX = (0..<ow).map { x in (x * s - padding, x * s - padding + kernel) }
    return try windowAverage(
      op: "avg_pool2d", n: n, c: c, h: h, w: w, rows: windows, cols: windowsX,
      divisor: { _, _ in Float(kernel * kernel) })
  }

  /// Adaptive average pool to `outputSize` (bins as PyTorch: start = ⌊i·H/out⌋,
  /// end = ⌈(i+1)·H/out⌉).
  public func adaptiveAvgPool2d(_ outputSize: (Int, Int)) throws -> Tensor {
    guard rank == 4 else {
      throw TensorError("adaptive_avg_pool2d", "input \(fmt(shape)) must be [N, C, H, W]")
    }
    let (n, c, h, w) = (shape[0], shape[1], shape[2], shape[3])
    let (oh, ow) = outputSize
    guard oh > 0, ow > 0, h > 0, w > 0 else {
      throw TensorError(
        "adaptive_avg_pool2d", "output size \(oh)×\(ow) and input \(fmt(shape)) must be positive")
    }
    let rows = (0..<oh).map { i in (i * h / oh, ((i + 1) * h + oh - 1) / oh) }
    let cols = (0..<ow).map { j in (j * w / ow, ((j + 1) * w + ow - 1) / ow) }
    return try windowAverage(
      op: "adaptive_avg_pool2d", n: n, c: c, h: h, w: w, rows: rows, cols: cols,
      divisor: { r, q in Float((r.1 - r.0) * (q.1 - q.0)) })
  }

  /// Averages of rectangular windows [rows[i]) × [cols[j]) (clipped to the image) with
  /// the given divisor; the shared code of average and adaptive pooling.
  private func windowAverage(
    op: String, n: Int, c: Int, h: Int, w: Int, rows: [(Int, Int)], cols: [(Int, Int)],
    divisor: ((Int, Int), (Int, Int)) -> Float
  ) throws -> Tensor {
    let x = self
    let oh = rows.count
    let ow = cols.count
    let out = Tensor(uninitializedShape: [n, c, oh, ow])
    let scale = rows.flatMap { r in cols.map { q in 1 / divisor(r, q) } }
    let px = x.data
    let po = out.data
    Parallel.forChunks(n * c) { planes in
      for p in planes {
        let src = px + p * h * w
        for (y, r) in rows.enumerated() {
          for (xo, q) in cols.enumerated() {
            var sum: Float = 0
            for iy in Swift.max(r.0, 0)..<Swift.min(r.1, h) {
              for ix in Swift.max(q.0, 0)..<Swift.min(q.1, w) { sum += src[iy * w + ix] }
            }
            po[(p * oh + y) * ow + xo] = sum * scale[y * ow + xo]
          }
        }
      }
    }
    return out.recording(op, [x]) { g in
      let dx = Tensor.zeros(x.shape)
      let pg = g.data
      let pd = dx.data
      Parallel.forChunks(n * c) { planes in
        for p in planes {
          let dst = pd + p * h * w
          for (y, r) in rows.enumerated() {
            for (xo, q) in cols.enumerated() {
              let v = pg[(p * oh + y) * ow + xo] * scale[y * ow + xo]
              for iy in Swift.max(r.0, 0)..<Swift.min(r.1, h) {
                for ix in Swift.max(q.0, 0)..<Swift.min(q.1, w) { dst[iy * w + ix] += v }
              }
            }
          }
        }
      }
      return [dx]
    }
  }
}
