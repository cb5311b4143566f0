/// 2-D convolution as im2col + sgemm, with col2im in the backward pass (or, asked for,
/// Winograd F(2×2, 3×3): Winograd.swift).
///
/// Shapes: input [N, C, H, W], weight [O, C/groups, kH, kW] (PyTorch's layout), bias [O]
/// → output [N, O, Hout, Wout], Hout = (H + 2·padH − dilH·(kH−1) − 1)/strideH + 1.
/// Images are spread over the threads, each with its own column buffer and
/// single-threaded sgemm. Where an image has few output positions (a late ResNet stage:
/// 7×7 or 4×4), several images sit side by side in one column matrix, so each GEMM has
/// at least `ConvGeometry.targetColumns` columns instead of a 16-column sliver that
/// spends more time packing than multiplying. Weight gradients are accumulated per
/// thread and summed in a fixed order, so results do not depend on scheduling.

public struct Conv2dOptions: Sendable, Equatable {
  public var stride: (Int, Int)
  public var padding: (Int, Int)
  public var dilation: (Int, Int)
  public var groups: Int
  public var algorithm: ConvolutionAlgorithm

  public init(
    stride: Int = 1, padding: Int = 0, dilation: Int = 1, groups: Int = 1, algorithm: ConvolutionAlgorithm = .im2col
  ) {
    self.init(
      stride: (stride, stride), padding: (padding, padding), dilation: (dilation, dilation),
      groups: groups, algorithm: algorithm)
  }
  public init(
    stride: (Int, Int), padding: (Int, Int), dilation: (Int, Int) = (1, 1), groups: Int = 1,
    algorithm: ConvolutionAlgorithm = .im2col
  ) {
    self.stride = stride
    self.padding = padding
    self.dilation = dilation
    self.groups = groups
    self.algorithm = algorithm
  }
  public static func == (a: Self, b: Self) -> Bool {
    a.stride == b.stride && a.padding == b.padding && a.dilation == b.dilation
      && a.groups == b.groups && a.algorithm == b.algorithm
  }
}

/// How conv2d computes. `im2col` (the default) takes every shape. `winograd` is
/// F(2×2, 3×3) (Ops/Winograd.swift), for 3×3 stride-1 "same" layers only: on a ResNet
/// stage's layers it does about 1.25× the work per second of im2col (`pretext bench
/// ops` prints both; a whole ResNet-10 SimCLR step is 1.2–1.3× faster), but it is not the default yet — its scratch (the transformed
/// tiles of up to `ConvGeometry.targetColumns` columns per thread) grows with the batch
/// in steps the memory plan's two measured steps do not follow, and the plan of the
/// shipped ResNet configs then misses the peak by more than its ±25%.
public enum ConvolutionAlgorithm: String, Sendable, Equatable, CaseIterable {
  case im2col, winograd
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

  /// The fewest GEMM columns worth aiming for (OpenBLAS's SkylakeX kernels pack panels of
  /// 16–32 columns; below a few hundred the packing dominates).
  static let targetColumns = 256
  /// Images per column matrix: enough for `targetColumns` columns, and 1 for pointwise
  /// convolutions, whose column matrix is the image itself. Depends only on the shape,
  /// so the arithmetic (and its rounding) is the same whatever the scheduling.
  var imagesPerGEMM: Int {
    isPointwise ? 1 : Swift.max(1, Swift.min(n, Self.targetColumns / Swift.max(spatial, 1)))
  }

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

  /// Fills cols [ckk, oh·ow] (rows `ld` apart) from one group of one image (x points at
  /// its first channel).
  func im2col(_ x: UnsafePointer<Float>, _ cols: UnsafeMutablePointer<Float>, ld: Int) {
    for ci in 0..<cg {
      let plane = x + ci * h * w
      for ki in 0..<kh {
        let (ohLo, ohHi) = Self.validRange(off: ki * dh - ph, stride: sh, size: h, outSize: oh)
        for kj in 0..<kw {
          let row = cols + ((ci * kh + ki) * kw + kj) * ld
          let offW = kj * dw - pw
          let (owLo, owHi) = Self.validRange(off: offW, stride: sw, size: w, outSize: ow)
          if isRowAligned {
            // Output pixel i reads input pixel i + shift: one copy for all valid rows,
            // then zeros where the kernel hangs over the border.
            let shift = (ki * dh - ph) * w + offW
            shiftedCopy(
              from: plane, to: row, shift: shift, rows: (ohLo, ohHi), columns: (owLo, owHi))
            continue
          }
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

  /// The column matrix [ckk, images·oh·ow] of one group of `images` consecutive images
  /// starting at `x` (its group's first channel): the input itself for a pointwise
  /// convolution (one image), else im2col into `scratch`, image j in columns j·oh·ow….
  @inline(__always)
  func columns(_ x: UnsafePointer<Float>, images: Int, scratch: UnsafeMutablePointer<Float>) -> UnsafePointer<Float> {
    if isPointwise { return x }
    for j in 0..<images { im2col(x + j * c * h * w, scratch + j * spatial, ld: images * spatial) }
    return UnsafePointer(scratch)
  }

  /// Stride 1 with the output as wide as the input (every 3×3 "same" convolution of a
  /// ResNet stage): output pixel i of a kernel offset reads input pixel i + a constant,
  /// so im2col and col2im move whole planes instead of one short row at a time.
  var isRowAligned: Bool { sh == 1 && sw == 1 && ow == w }

  /// im2col of one kernel offset when `isRowAligned`: dst[i] = src[i + shift] inside the
  /// valid rows × columns, 0 elsewhere.
  @inline(__always)
  func shiftedCopy(
    from src: UnsafePointer<Float>, to dst: UnsafeMutablePointer<Float>, shift: Int,
    rows: (Int, Int), columns: (Int, Int)
  ) {
    let (rowLo, rowHi) = rows
    let (colLo, colHi) = columns
    if rowLo >= rowHi || colLo >= colHi {
      dst.update(repeating: 0, count: spatial)
      return
    }
    let first = rowLo * ow + colLo
    let end = (rowHi - 1) * ow + colHi
    if first > 0 { dst.update(repeating: 0, count: first) }
    (dst + first).update(from: src + first + shift, count: end - first)
    if end < spatial { (dst + end).update(repeating: 0, count: spatial - end) }
    // The copy ran across row ends: clear the columns outside the border.
    clearColumns(outside: columns, rows: rows, of: dst)
  }

  /// Zeroes the columns outside [lo, hi) in rows [rowLo, rowHi) of an [oh, ow] plane.
  @inline(__always)
  func clearColumns(outside columns: (Int, Int), rows: (Int, Int), of plane: UnsafeMutablePointer<Float>) {
    let (lo, hi) = columns
    if lo == 0 && hi == ow { return }
    for y in rows.0..<rows.1 {
      let r = plane + y * ow
      for x in 0..<lo { r[x] = 0 }
      for x in hi..<ow { r[x] = 0 }
    }
  }

  /// Moves the [og, oh·ow] output blocks of `images` consecutive images between the
  /// tensor's layout (one image every `imageStride` floats) and one [og, images·oh·ow]
  /// GEMM operand (image j in columns j·oh·ow…): gathers into `matrix` when `toMatrix`,
  /// scatters from it otherwise.
  func moveBlocks(
    tensor: UnsafeMutablePointer<Float>, imageStride: Int, matrix: UnsafeMutablePointer<Float>, images: Int,
    toMatrix: Bool
  ) {
    let ld = images * spatial
    for j in 0..<images {
      for oc in 0..<og {
        let inTensor = tensor + j * imageStride + oc * spatial
        let inMatrix = matrix + oc * ld + j * spatial
        if toMatrix {
          inMatrix.update(from: inTensor, count: spatial)
        } else {
          inTensor.update(from: inMatrix, count: spatial)
        }
      }
    }
  }

  /// Adds cols [ckk, oh·ow] (rows `ld` apart) back into one group of one image's
  /// gradient. Overwrites the entries of `cols` that fall outside the input.
  func col2im(_ cols: UnsafeMutablePointer<Float>, _ dx: UnsafeMutablePointer<Float>, ld: Int) {
    for ci in 0..<cg {
      let plane = dx + ci * h * w
      for ki in 0..<kh {
        let (ohLo, ohHi) = Self.validRange(off: ki * dh - ph, stride: sh, size: h, outSize: oh)
        for kj in 0..<kw {
          let row = cols + ((ci * kh + ki) * kw + kj) * ld
          let offW = kj * dw - pw
          let (owLo, owHi) = Self.validRange(off: offW, stride: sw, size: w, outSize: ow)
          if owLo >= owHi || ohLo >= ohHi { continue }
          if isRowAligned {
            // The transpose of `shiftedCopy`: zero what lies outside the border, then one
            // vector add over the valid span (it stays inside this plane).
            clearColumns(outside: (owLo, owHi), rows: (ohLo, ohHi), of: row)
            let first = ohLo * ow + owLo
            let end = (ohHi - 1) * ow + owHi
            let shift = (ki * dh - ph) * w + offW
            vectorAddInPlace(plane + first + shift, row + first, end - first)
            continue
          }
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
  if options.algorithm == .winograd {
    guard WinogradF2x3.applies(to: geo) else {
      throw TensorError(
        "conv2d", "Winograd F(2×2, 3×3) needs a 3×3 kernel with stride 1, padding 1, no dilation and one group")
    }
    return winogradConv2d(x, weight: weight, bias: bias, geo: geo)
  }
  let out = Tensor(uninitializedShape: [geo.n, geo.o, geo.oh, geo.ow])
  let px = x.data
  let pw = weight.data
  let po = out.data
  let imageIn = geo.c * geo.h * geo.w
  let imageOut = geo.o * geo.spatial
  let groupIn = geo.cg * geo.h * geo.w
  let groupOut = geo.og * geo.spatial
  let perGEMM = geo.imagesPerGEMM
  // Per thread: the column matrix, and for several images per GEMM a staging buffer for
  // the [og, images·oh·ow] product (or its gradient), which is laid out image-major.
  let colsSize = geo.isPointwise ? 0 : geo.ckk * geo.spatial * perGEMM
  let stagedSize = perGEMM > 1 ? groupOut * perGEMM : 0
  Parallel.forChunksWithSerialBLAS(geo.n) { images in
    withScratch(colsSize + stagedSize) { scratch in
      let (cols, staged) = (scratch, scratch + colsSize)
      for first in stride(from: images.lowerBound, to: images.upperBound, by: perGEMM) {
        let count = Swift.min(perGEMM, images.upperBound - first)
        let ld = count * geo.spatial
        for g in 0..<geo.groups {
          let colsPtr = geo.columns(px + first * imageIn + g * groupIn, images: count, scratch: cols)
          let outG = po + first * imageOut + g * groupOut
          // out_g [og, ld] = W_g [og, ckk] · cols [ckk, ld]
          BLAS.sgemm(
            m: geo.og, n: ld, k: geo.ckk, a: pw + g * geo.og * geo.ckk, lda: geo.ckk,
            b: colsPtr, ldb: ld, c: count == 1 ? outG : staged, ldc: ld)
          if count > 1 {
            geo.moveBlocks(tensor: outG, imageStride: imageOut, matrix: staged, images: count, toMatrix: false)
          }
          if let bias {
            for j in 0..<count {
              for oc in 0..<geo.og {
                let row = outG + j * imageOut + oc * geo.spatial
                let value = bias.data[g * geo.og + oc]
                for k in 0..<geo.spatial { row[k] += value }
              }
            }
          }
        }
      }
    }
  }
  var inputs = [x, weight]
  if let bias { inputs.append(bias) }
  return out.recording("conv2d", inputs) { g in
    let dx = x.requiresGrad ? Tensor.zeros(x.shape) : nil
    let pg = g.data
    let chunks = Swift.min(Parallel.threads, geo.n)
    // One weight-gradient accumulator per chunk, summed in order afterwards.
    let dwParts = weight.requiresGrad ? (0..<chunks).map { _ in Tensor.zeros(weight.shape) } : []
    let backwardCols = geo.isPointwise ? 0 : geo.ckk * geo.spatial * perGEMM
    Parallel.forIndexedChunksWithSerialBLAS(geo.n) { chunk, images in
      withScratch(backwardCols + stagedSize) { scratch in
        let (cols, staged) = (scratch, scratch + backwardCols)
        let dwAcc = weight.requiresGrad ? dwParts[chunk].data : nil
        for first in stride(from: images.lowerBound, to: images.upperBound, by: perGEMM) {
          let count = Swift.min(perGEMM, images.upperBound - first)
          let ld = count * geo.spatial
          for gi in 0..<geo.groups {
            let xg = px + first * imageIn + gi * groupIn
            let wg = pw + gi * geo.og * geo.ckk
            // dOut of these images as [og, ld] (gathered when there are several).
            var gg = UnsafePointer(pg + first * imageOut + gi * groupOut)
            if count > 1 {
              geo.moveBlocks(
                tensor: pg + first * imageOut + gi * groupOut, imageStride: imageOut, matrix: staged, images: count,
                toMatrix: true)
              gg = UnsafePointer(staged)
            }
            if let dwAcc {
              let colsPtr = geo.columns(xg, images: count, scratch: cols)
              // dW_g += dOut_g [og, ld] · colsᵀ [ld, ckk]
              BLAS.sgemm(
                transB: true, m: geo.og, n: geo.ckk, k: ld, a: gg, lda: ld,
                b: colsPtr, ldb: ld, beta: 1, c: dwAcc + gi * geo.og * geo.ckk,
                ldc: geo.ckk)
            }
            if let dx {
              let dxg = dx.data + first * imageIn + gi * groupIn
              if geo.isPointwise {
                BLAS.sgemm(
                  transA: true, m: geo.ckk, n: ld, k: geo.og, a: wg, lda: geo.ckk,
                  b: gg, ldb: ld, beta: 1, c: dxg, ldc: ld)
              } else {
                // dCols = W_gᵀ [ckk, og] · dOut_g [og, ld], then folded back per image.
                BLAS.sgemm(
                  transA: true, m: geo.ckk, n: ld, k: geo.og, a: wg, lda: geo.ckk,
                  b: gg, ldb: ld, c: cols, ldc: ld)
                for j in 0..<count { geo.col2im(cols + j * geo.spatial, dxg + j * imageIn, ld: ld) }
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
