/// 2-D convolution as im2col + sgemm, with col2im in the backward pass.
///
/// Shapes: input [N, C, H, W], weight [O, C/groups, kH, kW] (PyTorch's layout), bias [O]
/// → output [N, O, Hout, Wout], Hout = (H + 2·padH − dilH·(kH−1) − 1)/strideH + 1.
/// Images are spread over the threads, each with its own column buffer and
/// single-threaded sgemm (one image's GEMM is a few tens of MFLOP: big enough for good
/// BLAS efficiency, too small to split further). Weight gradients are accumulated per
/// thread and summed in a fixed order, so results do not depend on scheduling.

public struct Conv2dOptions: Sendable, Equatable {
  public var stride: (Int, Int)
  public var padding: (Int, Int)
  public var dilation: (Int, Int)
  public var groups: Int

  public init(stride: Int = 1, padding: Int = 0, dilation: Int = 1, groups: Int = 1) {
    self.init(
      stride: (stride, stride), padding: (padding, padding), dilation: (dilation, dilation),
      groups: groups)
  }
  public init(
    stride: (Int, Int), padding: (Int, Int), dilation: (Int, Int) = (1, 1), groups: Int = 1
  ) {
    self.stride = stride
    self.padding = padding
    self.dilation = dilation
    self.groups = groups
  }
  public static func == (a: Self, b: Self) -> Bool {
    a.stride == b.stride && a.padding == b.padding && a.dilation == b.dilation
      && a.groups == b.groups
  }
}

/// The geometry of one convolution, shared by forward and backward.
struct ConvGeometry {
  let n, c, h, w, o, kh, kw, oh, ow, groups: Int
  let sh, sw, ph, pw, dh, dw: Int
  var cg: Int { c / groups }
  var og: Int { o / groups }
  /// Rows of the column matrix of one group: Cg·kH·kW.
  var ckk: Int { cg * kh * kw }
  var spatial: Int { oh * ow }
  /// A 1×1 kernel with stride 1 and no padding: the input is its own column matrix.
  var isPointwise: Bool { kh == 1 && kw == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0 }

  init(input: [Int], weight: [Int], options o: Conv2dOptions) throws {
    guard input.count == 4, weight.count == 4 else {
      throw TensorError(
        "conv2d",
        "input \(fmt(input)) must be [N, C, H, W] and weight \(fmt(weight)) [O, C/groups, kH, kW]")
    }
    let g = o.groups
    guard g >= 1, input[1] % g == 0, weight[0] % g == 0, weight[1] * g == input[1] else {
      throw TensorError(
        "conv2d",
        "input \(fmt(input)) and weight \(fmt(weight)) do not fit groups=\(g) (weight must be [O, C/groups, kH, kW] with O divisible by groups)"
      )
    }
    guard o.stride.0 > 0, o.stride.1 > 0, o.dilation.0 > 0, o.dilation.1 > 0, o.padding.0 >= 0,
      o.padding.1 >= 0
    else {
      throw TensorError("conv2d", "stride and dilation must be positive and padding non-negative")
    }
    (n, c, h, w) = (input[0], input[1], input[2], input[3])
    (self.o, kh, kw) = (weight[0], weight[2], weight[3])
    groups = g
    (sh, sw, ph, pw, dh, dw) = (
      o.stride.0, o.stride.1, o.padding.0, o.padding.1, o.dilation.0, o.dilation.1
    )
    oh = (h + 2 * ph - dh * (kh - 1) - 1) / sh + 1
    ow = (w + 2 * pw - dw * (kw - 1) - 1) / sw + 1
    guard h + 2 * ph - dh * (kh - 1) - 1 >= 0, w + 2 * pw - dw * (kw - 1) - 1 >= 0 else {
      throw TensorError(
        "conv2d",
        "kernel \(kh)×\(kw) (dilation \(dh)×\(dw)) is larger than the padded input \(h + 2 * ph)×\(w + 2 * pw) of \(fmt(input))"
      )
    }
  }

  /// The valid output range [lo, hi) along one axis for kernel offset `off`
  /// (input index = out·stride + off must fall in [0, size)).
  @inline(__always)
  static func validRange(off: Int, stride s: Int, size: Int, outSize: Int) -> (Int, Int) {
    let lo = off >= 0 ? 0 : (-off + s - 1) / s
    let hi = size - 1 - off < 0 ? 0 : Swift.min(outSize, (size - 1 - off) / s + 1)
    return (Swift.min(lo, hi), hi)
  }

  /// Fills cols [ckk, oh·ow] from one group of one image (x points at its first channel).
  func im2col(_ x: UnsafePointer<Float>, _ cols: UnsafeMutablePointer<Float>) {
    for ci in 0..<cg {
      let plane = x + ci * h * w
      for ki in 0..<kh {
        let (ohLo, ohHi) = Self.validRange(off: ki * dh - ph, stride: sh, size: h, outSize: oh)
        for kj in 0..<kw {
          let row = cols + ((ci * kh + ki) * kw + kj) * spatial
          let offW = kj * dw - pw
          let (owLo, owHi) = Self.validRange(off: offW, stride: sw, size: w, outSize: ow)
          for y in 0..<oh {
            let dst = row + y * ow
            if y < ohLo || y >= ohHi || owLo >= owHi {
              dst.update(repeating: 0, count: ow)
              continue
            }
            let src = plane + (y * sh + ki * dh - ph) * w + offW
            if owLo > 0 { dst.update(repeating: 0, count: owLo) }
            if sw == 1 {
              (dst + owLo).update(from: src + owLo, count: owHi - owLo)
            } else {
              for xo in owLo..<owHi { dst[xo] = src[xo * sw] }
            }
            if owHi < ow { (dst + owHi).update(repeating: 0, count: ow - owHi) }
          }
        }
      }
    }
  }

  /// The column matrix of one group of one image: the input itself for a pointwise
  /// convolution, else im2col into `scratch`.
  @inline(__always)
  func columns(_ x: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>) -> UnsafePointer<Float> {
    if isPointwise { return UnsafePointer(x) }
    im2col(x, scratch)
    return UnsafePointer(scratch)
  }

  /// Adds cols [ckk, oh·ow] back into one group of one image's gradient.
  func col2im(_ cols: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>) {
    for ci in 0..<cg {
      let plane = dx + ci * h * w
      for ki in 0..<kh {
        let (ohLo, ohHi) = Self.validRange(off: ki * dh - ph, stride: sh, size: h, outSize: oh)
        for kj in 0..<kw {
          let row = cols + ((ci * kh + ki) * kw + kj) * spatial
          let offW = kj * dw - pw
          let (owLo, owHi) = Self.validRange(off: offW, stride: sw, size: w, outSize: ow)
          if owLo >= owHi { continue }
          for y in ohLo..<ohHi {
            let src = row + y * ow
            let dst = plane + (y * sh + ki * dh - ph) * w + offW
            if sw == 1 {
              for xo in owLo..<owHi { dst[xo] += src[xo] }
            } else {
              for xo in owLo..<owHi { dst[xo * sw] += src[xo] }
            }
          }
        }
      }
    }
  }
}

/// 2-D convolution (cross-correlation, as PyTorch's `conv2d`).
public func conv2d(
  _ x: Tensor, weight: Tensor, bias: Tensor? = nil, options: Conv2dOptions = Conv2dOptions()
) throws -> Tensor {
  let geo = try ConvGeometry(input: x.shape, weight: weight.shape, options: options)
  if let bias, bias.shape != [geo.o] {
    throw TensorError("conv2d", "bias \(fmt(bias.shape)) does not match \(geo.o) output channels")
  }
  let out = Tensor(uninitializedShape: [geo.n, geo.o, geo.oh, geo.ow])
  let px = x.data
  let pw = weight.data
  let po = out.data
  let imageIn = geo.c * geo.h * geo.w
  let imageOut = geo.o * geo.spatial
  let colsSize = geo.isPointwise ? 0 : geo.ckk * geo.spatial
  Parallel.forChunksWithSerialBLAS(geo.n) { images in
    withScratch(colsSize) { cols in
      for i in images {
        for g in 0..<geo.groups {
          let xg = px + i * imageIn + g * geo.cg * geo.h * geo.w
          let colsPtr = geo.columns(xg, scratch: cols)
          let og = po + i * imageOut + g * geo.og * geo.spatial
          if let bias {
            for oc in 0..<geo.og {
              (og + oc * geo.spatial).update(
                repeating: bias.data[g * geo.og + oc], count: geo.spatial)
            }
          }
          BLAS.sgemm(
            m: geo.og, n: geo.spatial, k: geo.ckk, a: pw + g * geo.og * geo.ckk, lda: geo.ckk,
            b: colsPtr, ldb: geo.spatial, beta: bias == nil ? 0 : 1, c: og, ldc: geo.spatial)
        }
      }
    }
  }
  var inputs = [x, weight]
  if let bias { inputs.append(bias) }
  return out.recording("conv2d", inputs) { g in
    let dx = x.requiresGrad ? Tensor.zeros(x.shape) : nil
    let pg = g.data
    let threads = Swift.min(Parallel.threads, geo.n)
    // One weight-gradient accumulator per chunk, summed in order afterwards.
    let dwParts = weight.requiresGrad ? (0..<threads).map { _ in Tensor.zeros(weight.shape) } : []
    let chunkOf = { (lo: Int) in (0..<threads).first { geo.n * ($0 + 1) / threads > lo } ?? 0 }
    Parallel.forChunksWithSerialBLAS(geo.n) { images in
      withScratch(geo.ckk * geo.spatial) { cols in
        let dwAcc = weight.requiresGrad ? dwParts[chunkOf(images.lowerBound)].data : nil
        for i in images {
          for gi in 0..<geo.groups {
            let xg = px + i * imageIn + gi * geo.cg * geo.h * geo.w
            let gg = pg + i * imageOut + gi * geo.og * geo.spatial
            let wg = pw + gi * geo.og * geo.ckk
            if let dwAcc {
              let colsPtr = geo.columns(xg, scratch: cols)
              // dW_g += dOut_g [og, spatial] · colsᵀ [spatial, ckk]
              BLAS.sgemm(
                transB: true, m: geo.og, n: geo.ckk, k: geo.spatial, a: gg, lda: geo.spatial,
                b: colsPtr, ldb: geo.spatial, beta: 1, c: dwAcc + gi * geo.og * geo.ckk,
                ldc: geo.ckk)
            }
            if let dx {
              let dxg = dx.data + i * imageIn + gi * geo.cg * geo.h * geo.w
              if geo.isPointwise {
                BLAS.sgemm(
                  transA: true, m: geo.ckk, n: geo.spatial, k: geo.og, a: wg, lda: geo.ckk,
                  b: gg, ldb: geo.spatial, beta: 1, c: dxg, ldc: geo.spatial)
              } else {
                // dCols = W_gᵀ [ckk, og] · dOut_g [og, spatial], then folded back.
                BLAS.sgemm(
                  transA: true, m: geo.ckk, n: geo.spatial, k: geo.og, a: wg, lda: geo.ckk,
                  b: gg, ldb: geo.spatial, c: cols, ldc: geo.spatial)
                geo.col2im(cols, dxg)
              }
            }
          }
        }
      }
    }
    var dw: Tensor? = nil
    if weight.requiresGrad {
      let total = dwParts[0]
      for part in dwParts.dropFirst() { addInPlace(total, part) }
      dw = total
    }
    var db: Tensor? = nil
    if let bias, bias.requiresGrad {
      db = try g.reshaped([geo.n, geo.o, geo.spatial]).sum(axes: [0, 2])
    }
    return bias == nil ? [dx, dw] : [dx, dw, db]
  }
}
