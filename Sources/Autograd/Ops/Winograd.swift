/// Winograd's minimal filtering F(2×2, 3×3) for 3×3 convolutions with stride 1 and
/// padding 1 (Lavin & Gray 2016, "Fast Algorithms for Convolutional Neural Networks"):
/// each 2×2 block of outputs is Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A over the 4×4 input tile d around
/// it, so a layer becomes 16 GEMMs [O, C]·[C, tiles]: 16 multiplies per 4 outputs
/// against im2col's 36, and the input is expanded 4× (16 values per 2×2 outputs) instead
/// of 9× into a column matrix.
///
/// The backward pass runs through the adjoints of the same transforms: dM = A dY Aᵀ per
/// tile, then dU = Σ dM·Vᵀ (→ dW = Gᵀ dU G) and dV = Uᵀ·dM (→ dX += B dV Bᵀ, the tiles
/// overlapping by two pixels). Every step is an exact identity of the convolution, so
/// outputs and gradients differ from im2col's by rounding only (the transforms' entries
/// are 0, ±½ and ±1).
///
/// Layouts, for a group of `count` images with T = count · tiles columns (tile t of image
/// j in column j · tiles + t; tiles row-major over the ⌈H/2⌉ × ⌈W/2⌉ grid):
///   U [16, O, C]  transformed weights (once per call)
///   V [16, C, T]  transformed input tiles
///   M [16, O, T]  their products, before the output transform (dM in the backward pass)
struct WinogradF2x3 {
  let geo: ConvGeometry
  let tilesH: Int
  let tilesW: Int
  var tiles: Int { tilesH * tilesW }

  init(_ geo: ConvGeometry) {
    self.geo = geo
    tilesH = (geo.oh + 1) / 2
    tilesW = (geo.ow + 1) / 2
  }

  /// The convolutions F(2×2, 3×3) computes: 3×3, stride 1, padding 1, no dilation, one group.
  static func applies(to geo: ConvGeometry) -> Bool {
    geo.kh == 3 && geo.kw == 3 && geo.sh == 1 && geo.sw == 1 && geo.ph == 1 && geo.pw == 1 && geo.dh == 1
      && geo.dw == 1 && geo.groups == 1
  }

  /// Images per group: enough for `ConvGeometry.targetColumns` GEMM columns. Depends only
  /// on the shape.
  var imagesPerGEMM: Int { Swift.max(1, Swift.min(geo.n, ConvGeometry.targetColumns / tiles)) }

  // MARK: The transforms' 1-D steps
  //
  // Each acts on four vectors — the four rows (or columns) of a tile — with one lane per
  // tile: eight tiles of a tile row are transformed at once.

  typealias Lanes = SIMD8<Float>
  typealias Four = (Lanes, Lanes, Lanes, Lanes)
  static let width = 8

  /// Bᵀ d: d0−d2, d1+d2, d2−d1, d1−d3.
  @inline(__always) static func bt(_ d: Four) -> Four { (d.0 - d.2, d.1 + d.2, d.2 - d.1, d.1 - d.3) }
  /// B v, the adjoint of Bᵀ: v0, v1−v2+v3, −v0+v1+v2, −v3.
  @inline(__always) static func b(_ v: Four) -> Four { (v.0, v.1 - v.2 + v.3, v.1 + v.2 - v.0, -v.3) }
  /// Aᵀ m: m0+m1+m2, m1−m2−m3.
  @inline(__always) static func at(_ m: Four) -> (Lanes, Lanes) { (m.0 + m.1 + m.2, m.1 - m.2 - m.3) }
  /// A e, the adjoint of Aᵀ: e0, e0+e1, e0−e1, −e1.
  @inline(__always) static func a(_ e0: Lanes, _ e1: Lanes) -> Four { (e0, e0 + e1, e0 - e1, -e1) }
  /// G g for a 3-vector: g0, (g0+g1+g2)/2, (g0−g1+g2)/2, g2.
  @inline(__always)
  static func weight(_ a: Float, _ b: Float, _ c: Float) -> SIMD4<Float> {
    SIMD4(a, 0.5 * (a + b + c), 0.5 * (a - b + c), c)
  }
  /// Gᵀ u, its adjoint: u0 + (u1+u2)/2, (u1−u2)/2, (u1+u2)/2 + u3.
  @inline(__always)
  static func weightAdjoint(_ u: SIMD4<Float>) -> (Float, Float, Float) {
    let (s, d) = (0.5 * (u[1] + u[2]), 0.5 * (u[1] - u[2]))
    return (u[0] + s, d, s + u[3])
  }

  /// `valid` lanes from p (the rest 0): a partial block never reads past its tile row.
  @inline(__always)
  static func load(_ p: UnsafePointer<Float>, _ valid: Int) -> Lanes {
    if valid == width { return UnsafeRawPointer(p).loadUnaligned(as: Lanes.self) }
    var v = Lanes()
    for i in 0..<valid { v[i] = p[i] }
    return v
  }
  @inline(__always)
  static func store(_ v: Lanes, _ p: UnsafeMutablePointer<Float>, _ valid: Int) {
    if valid == width {
      UnsafeMutableRawPointer(p).storeBytes(of: v, as: Lanes.self)
      return
    }
    for i in 0..<valid { p[i] = v[i] }
  }
  /// The 16 values of a tile block, ξ = 4·row + column, each `stride` apart.
  @inline(__always)
  static func load16(_ p: UnsafePointer<Float>, stride s: Int, _ valid: Int) -> (Four, Four, Four, Four) {
    (
      (load(p, valid), load(p + s, valid), load(p + 2 * s, valid), load(p + 3 * s, valid)),
      (load(p + 4 * s, valid), load(p + 5 * s, valid), load(p + 6 * s, valid), load(p + 7 * s, valid)),
      (load(p + 8 * s, valid), load(p + 9 * s, valid), load(p + 10 * s, valid), load(p + 11 * s, valid)),
      (load(p + 12 * s, valid), load(p + 13 * s, valid), load(p + 14 * s, valid), load(p + 15 * s, valid))
    )
  }
  @inline(__always)
  static func store16(_ m: (Four, Four, Four, Four), _ p: UnsafeMutablePointer<Float>, stride s: Int, _ valid: Int) {
    store(m.0.0, p, valid)
    store(m.0.1, p + s, valid)
    store(m.0.2, p + 2 * s, valid)
    store(m.0.3, p + 3 * s, valid)
    store(m.1.0, p + 4 * s, valid)
    store(m.1.1, p + 5 * s, valid)
    store(m.1.2, p + 6 * s, valid)
    store(m.1.3, p + 7 * s, valid)
    store(m.2.0, p + 8 * s, valid)
    store(m.2.1, p + 9 * s, valid)
    store(m.2.2, p + 10 * s, valid)
    store(m.2.3, p + 11 * s, valid)
    store(m.3.0, p + 12 * s, valid)
    store(m.3.1, p + 13 * s, valid)
    store(m.3.2, p + 14 * s, valid)
    store(m.3.3, p + 15 * s, valid)
  }
  /// The same 1-D step down the four rows, lane-wise (a tile's columns).
  @inline(__always)
  static func rowwise(_ m: (Four, Four, Four, Four), _ f: (Four) -> Four) -> (Four, Four, Four, Four) {
    (f(m.0), f(m.1), f(m.2), f(m.3))
  }
  /// Transposes the 4×4 arrangement of lanes vectors (rows ↔ columns of every tile).
  @inline(__always)
  static func transpose(_ m: (Four, Four, Four, Four)) -> (Four, Four, Four, Four) {
    (
      (m.0.0, m.1.0, m.2.0, m.3.0), (m.0.1, m.1.1, m.2.1, m.3.1), (m.0.2, m.1.2, m.2.2, m.3.2),
      (m.0.3, m.1.3, m.2.3, m.3.3)
    )
  }

  // MARK: Weights

  /// U [16, O, C] = G g Gᵀ of every [3, 3] kernel of w [O, C, 3, 3].
  func transformWeights(_ w: UnsafePointer<Float>, into u: UnsafeMutablePointer<Float>) {
    let plane = geo.o * geo.c
    for k in 0..<plane {
      let g = w + 9 * k
      // Rows of G g (4×3), then each row times Gᵀ.
      let r0 = SIMD4(g[0], g[1], g[2], 0), r1 = SIMD4(g[3], g[4], g[5], 0), r2 = SIMD4(g[6], g[7], g[8], 0)
      @inline(__always) func store(_ row: SIMD4<Float>, _ i: Int) {
        let v = Self.weight(row[0], row[1], row[2])
        for j in 0..<4 { u[(4 * i + j) * plane + k] = v[j] }
      }
      store(r0, 0)
      store(0.5 * (r0 + r1 + r2), 1)
      store(0.5 * (r0 - r1 + r2), 2)
      store(r2, 3)
    }
  }

  /// dW [O, C, 3, 3] = Gᵀ dU G of dU [16, O, C].
  func weightGradient(_ du: UnsafePointer<Float>, into dw: UnsafeMutablePointer<Float>) {
    let plane = geo.o * geo.c
    for k in 0..<plane {
      // Gᵀ on the columns of each of the four rows, then on the rows.
      @inline(__always) func row(_ i: Int) -> (Float, Float, Float) {
        Self.weightAdjoint(
          SIMD4(du[(4 * i) * plane + k], du[(4 * i + 1) * plane + k], du[(4 * i + 2) * plane + k], du[(4 * i + 3) * plane + k]))
      }
      let (a, b, c, d) = (row(0), row(1), row(2), row(3))
      let c0 = Self.weightAdjoint(SIMD4(a.0, b.0, c.0, d.0))
      let c1 = Self.weightAdjoint(SIMD4(a.1, b.1, c.1, d.1))
      let c2 = Self.weightAdjoint(SIMD4(a.2, b.2, c.2, d.2))
      let g = dw + 9 * k
      (g[0], g[3], g[6]) = c0
      (g[1], g[4], g[7]) = c1
      (g[2], g[5], g[8]) = c2
    }
  }

  // MARK: Tiles
  //
  // Tile (ty, tx) reads input rows 2ty−1 … 2ty+2 and columns 2tx−1 … 2tx+2, and writes
  // output rows 2ty, 2ty+1 and columns 2tx, 2tx+1. Along a row, the tiles' columns are
  // the row's odd and even pixels: with odd[m] = row[2m − 1] and even[m] = row[2m], the
  // columns of tiles tx … tx+7 are odd[tx…], even[tx…], odd[tx+1…], even[tx+1…], each one
  // contiguous load. `split` holds those two arrays for each of a tile row's rows.

  /// Lanes per split array: whole blocks of tiles, plus the one further that column 3 reads.
  var splitSpan: Int { (tilesW + Self.width - 1) / Self.width * Self.width + 1 }

  /// Splits row y of a plane into split[0…] (odd) and split[span…] (even), zero outside
  /// the image (padding).
  @inline(__always)
  func splitRow(_ plane: UnsafePointer<Float>, _ y: Int, into split: UnsafeMutablePointer<Float>) {
    let span = splitSpan
    split.update(repeating: 0, count: 2 * span)
    guard y >= 0, y < geo.h else { return }
    let row = plane + y * geo.w
    let (odd, even) = (split, split + span)
    var x = 0
    while x + 1 < geo.w {
      even[x / 2] = row[x]
      odd[x / 2 + 1] = row[x + 1]
      x += 2
    }
    if x < geo.w { even[x / 2] = row[x] }
  }

  /// Adds the split arrays back into row y of a plane (inside the image).
  @inline(__always)
  func addSplitRow(_ split: UnsafePointer<Float>, into plane: UnsafeMutablePointer<Float>, _ y: Int) {
    guard y >= 0, y < geo.h else { return }
    let span = splitSpan
    let row = plane + y * geo.w
    let (odd, even) = (split, split + span)
    var x = 0
    while x + 1 < geo.w {
      row[x] += even[x / 2]
      row[x + 1] += odd[x / 2 + 1]
      x += 2
    }
    if x < geo.w { row[x] += even[x / 2] }
  }

  /// V [16, C, T] = Bᵀ d B of every tile of `count` images starting at x (their first channel).
  func transformInput(_ x: UnsafePointer<Float>, images count: Int, into v: UnsafeMutablePointer<Float>) {
    let columns = count * tiles
    let stride = geo.c * columns
    let span = splitSpan
    withScratch(8 * span) { split in
      for j in 0..<count {
        for ci in 0..<geo.c {
          let plane = x + (j * geo.c + ci) * geo.h * geo.w
          let out = v + ci * columns + j * tiles
          for ty in 0..<tilesH {
            for r in 0..<4 { splitRow(plane, 2 * ty - 1 + r, into: split + 2 * r * span) }
            for t0 in Swift.stride(from: 0, to: tilesW, by: Self.width) {
              let valid = Swift.min(Self.width, tilesW - t0)
              @inline(__always) func columnsOf(_ r: Int) -> Four {
                let (odd, even) = (UnsafePointer(split + 2 * r * span + t0), UnsafePointer(split + (2 * r + 1) * span + t0))
                return Self.bt((Self.load(odd, 8), Self.load(even, 8), Self.load(odd + 1, 8), Self.load(even + 1, 8)))
              }
              // Bᵀ along each row's columns (d B, transposed), then down the rows.
              let dB = (columnsOf(0), columnsOf(1), columnsOf(2), columnsOf(3))
              let tile = Self.rowwise(Self.transpose(dB), Self.bt)  // [column][row] of Bᵀ d B
              Self.store16(Self.transpose(tile), out + ty * tilesW + t0, stride: stride, valid)
            }
          }
        }
      }
    }
  }

  /// out [count, O, H, W] (+ bias) = Aᵀ M A of M [16, O, T], cropped to the image.
  func transformOutput(
    _ m: UnsafePointer<Float>, images count: Int, bias: UnsafePointer<Float>?, into out: UnsafeMutablePointer<Float>
  ) {
    let columns = count * tiles
    let stride = geo.o * columns
    let (oh, ow) = (geo.oh, geo.ow)
    for j in 0..<count {
      for oc in 0..<geo.o {
        let src = m + oc * columns + j * tiles
        let plane = out + (j * geo.o + oc) * oh * ow
        let b = bias?[oc] ?? 0
        for ty in 0..<tilesH {
          for t0 in Swift.stride(from: 0, to: tilesW, by: Self.width) {
            let valid = Swift.min(Self.width, tilesW - t0)
            let tile = Self.load16(src + ty * tilesW + t0, stride: stride, valid)
            // Aᵀ down the rows, then along the columns: y[a][b] for a, b ∈ {0, 1}.
            let (q0, q1) = (Self.at((tile.0.0, tile.1.0, tile.2.0, tile.3.0)), Self.at((tile.0.1, tile.1.1, tile.2.1, tile.3.1)))
            let (q2, q3) = (Self.at((tile.0.2, tile.1.2, tile.2.2, tile.3.2)), Self.at((tile.0.3, tile.1.3, tile.2.3, tile.3.3)))
            let row0 = Self.at((q0.0, q1.0, q2.0, q3.0))
            let row1 = Self.at((q0.1, q1.1, q2.1, q3.1))
            @inline(__always) func write(_ y: (Lanes, Lanes), _ a: Int) {
              guard 2 * ty + a < oh else { return }
              let line = plane + (2 * ty + a) * ow + 2 * t0
              for i in 0..<valid {
                line[2 * i] = y.0[i] + b
                if 2 * (t0 + i) + 1 < ow { line[2 * i + 1] = y.1[i] + b }
              }
            }
            write(row0, 0)
            write(row1, 1)
          }
        }
      }
    }
  }

  /// dM [16, O, T] = A dY Aᵀ of the output gradient of `count` images (zero where a
  /// tile reaches past the image).
  func transformOutputGradient(_ g: UnsafePointer<Float>, images count: Int, into dm: UnsafeMutablePointer<Float>) {
    let columns = count * tiles
    let stride = geo.o * columns
    let (oh, ow) = (geo.oh, geo.ow)
    for j in 0..<count {
      for oc in 0..<geo.o {
        let plane = g + (j * geo.o + oc) * oh * ow
        let dst = dm + oc * columns + j * tiles
        for ty in 0..<tilesH {
          for t0 in Swift.stride(from: 0, to: tilesW, by: Self.width) {
            let valid = Swift.min(Self.width, tilesW - t0)
            // e[a][b] = dY(2ty + a, 2tx + b), zero past the image.
            var e = (Lanes(), Lanes(), Lanes(), Lanes())  // (a, b) = (0,0), (0,1), (1,0), (1,1)
            for a in 0..<2 where 2 * ty + a < oh {
              let line = plane + (2 * ty + a) * ow + 2 * t0
              for i in 0..<valid {
                let (v0, v1) = (line[2 * i], 2 * (t0 + i) + 1 < ow ? line[2 * i + 1] : 0)
                if a == 0 { (e.0[i], e.1[i]) = (v0, v1) } else { (e.2[i], e.3[i]) = (v0, v1) }
              }
            }
            // A down the rows (two → four), then along each row's columns.
            let rows = (Self.a(e.0, e.2), Self.a(e.1, e.3))  // [b] → four rows
            let tile = (
              Self.a(rows.0.0, rows.1.0), Self.a(rows.0.1, rows.1.1), Self.a(rows.0.2, rows.1.2),
              Self.a(rows.0.3, rows.1.3)
            )
            Self.store16(tile, dst + ty * tilesW + t0, stride: stride, valid)
          }
        }
      }
    }
  }

  /// dX += B dV Bᵀ of dV [16, C, T], each tile added back where it lies inside the image
  /// (neighbouring tiles overlap by two rows and two columns).
  func addInputGradient(_ dv: UnsafePointer<Float>, images count: Int, into dx: UnsafeMutablePointer<Float>) {
    let columns = count * tiles
    let stride = geo.c * columns
    let span = splitSpan
    withScratch(8 * span) { split in
      for j in 0..<count {
        for ci in 0..<geo.c {
          let src = dv + ci * columns + j * tiles
          let plane = dx + (j * geo.c + ci) * geo.h * geo.w
          for ty in 0..<tilesH {
            split.update(repeating: 0, count: 8 * span)
            for t0 in Swift.stride(from: 0, to: tilesW, by: Self.width) {
              let valid = Swift.min(Self.width, tilesW - t0)
              let tile = Self.load16(src + ty * tilesW + t0, stride: stride, valid)
              // B down the rows, then along the columns: d[r][c] of tile rows r, columns c.
              let byRow = Self.rowwise(Self.transpose(tile), Self.b)  // [column][row]
              let d = Self.rowwise(Self.transpose(byRow), Self.b)  // [row][column]
              @inline(__always) func add(_ v: Lanes, _ p: UnsafeMutablePointer<Float>) {
                UnsafeMutableRawPointer(p).storeBytes(of: UnsafeRawPointer(p).loadUnaligned(as: Lanes.self) + v, as: Lanes.self)
              }
              @inline(__always) func addRow(_ row: Four, _ r: Int) {
                let (odd, even) = (split + 2 * r * span + t0, split + (2 * r + 1) * span + t0)
                add(row.0, odd)
                add(row.1, even)
                add(row.2, odd + 1)
                add(row.3, even + 1)
              }
              addRow(d.0, 0)
              addRow(d.1, 1)
              addRow(d.2, 2)
              addRow(d.3, 3)
            }
            for r in 0..<4 { addSplitRow(split + 2 * r * span, into: plane, 2 * ty - 1 + r) }
          }
        }
      }
    }
  }
}

/// conv2d through F(2×2, 3×3); `geo` satisfies `WinogradF2x3.applies(to:)`.
func winogradConv2d(_ x: Tensor, weight: Tensor, bias: Tensor?, geo: ConvGeometry) -> Tensor {
  let wino = WinogradF2x3(geo)
  let out = Tensor(uninitializedShape: [geo.n, geo.o, geo.oh, geo.ow])
  let u = Tensor(uninitializedShape: [16, geo.o, geo.c])
  wino.transformWeights(weight.data, into: u.data)
  let (px, pu, po) = (x.data, u.data, out.data)
  let pb = bias.map { UnsafePointer($0.data) }
  let perGEMM = wino.imagesPerGEMM
  let (imageIn, imageOut) = (geo.c * geo.h * geo.w, geo.o * geo.spatial)
  // Per thread: V [16, C, T] and M [16, O, T] of one group, sized for the thread's own
  // images (the memory plan measures scratch per sample: it should grow no faster).
  let vSize = { (images: Int) in 16 * geo.c * Swift.min(perGEMM, images) * wino.tiles }
  let mSize = { (images: Int) in 16 * geo.o * Swift.min(perGEMM, images) * wino.tiles }
  Parallel.forChunksWithSerialBLAS(geo.n) { images in
    withScratch(vSize(images.count) + mSize(images.count)) { scratch in
      let (v, m) = (scratch, scratch + vSize(images.count))
      for first in stride(from: images.lowerBound, to: images.upperBound, by: perGEMM) {
        let count = Swift.min(perGEMM, images.upperBound - first)
        let columns = count * wino.tiles
        wino.transformInput(px + first * imageIn, images: count, into: v)
        for xi in 0..<16 {
          // M_ξ [O, T] = U_ξ [O, C] · V_ξ [C, T]
          BLAS.sgemm(
            m: geo.o, n: columns, k: geo.c, a: pu + xi * geo.o * geo.c, lda: geo.c, b: v + xi * geo.c * columns,
            ldb: columns, c: m + xi * geo.o * columns, ldc: columns)
        }
        wino.transformOutput(m, images: count, bias: pb, into: po + first * imageOut)
      }
    }
  }
  var inputs = [x, weight]
  if let bias { inputs.append(bias) }
  return out.recording("conv2d", inputs) { g in
    let dx = x.requiresGrad ? Tensor.zeros(x.shape) : nil
    let (pg, px, pu) = (g.data, x.data, u.data)  // the closure holds x and U alive
    let chunks = Swift.min(Parallel.threads, geo.n)
    // dU per chunk, summed in chunk order afterwards (results independent of scheduling).
    let duParts = weight.requiresGrad ? (0..<chunks).map { _ in Tensor.zeros([16, geo.o, geo.c]) } : []
    Parallel.forIndexedChunksWithSerialBLAS(geo.n) { chunk, images in
      withScratch(vSize(images.count) + mSize(images.count)) { scratch in
        let (v, dm) = (scratch, scratch + vSize(images.count))
        for first in stride(from: images.lowerBound, to: images.upperBound, by: perGEMM) {
          let count = Swift.min(perGEMM, images.upperBound - first)
          let columns = count * wino.tiles
          wino.transformOutputGradient(pg + first * imageOut, images: count, into: dm)
          if weight.requiresGrad { wino.transformInput(px + first * imageIn, images: count, into: v) }
          for xi in 0..<16 {
            let (vXi, dmXi) = (v + xi * geo.c * columns, dm + xi * geo.o * columns)
            if weight.requiresGrad {
              // dU_ξ [O, C] += dM_ξ [O, T] · V_ξᵀ [T, C]
              BLAS.sgemm(
                transB: true, m: geo.o, n: geo.c, k: columns, a: dmXi, lda: columns, b: vXi, ldb: columns, beta: 1,
                c: duParts[chunk].data + xi * geo.o * geo.c, ldc: geo.c)
            }
            if dx != nil {
              // dV_ξ [C, T] = U_ξᵀ [C, O] · dM_ξ [O, T], over V_ξ (used above).
              BLAS.sgemm(
                transA: true, m: geo.c, n: columns, k: geo.o, a: pu + xi * geo.o * geo.c, lda: geo.c, b: dmXi,
                ldb: columns, c: vXi, ldc: columns)
            }
          }
          if let dx { wino.addInputGradient(v, images: count, into: dx.data + first * imageIn) }
        }
      }
    }
    var dw: Tensor? = nil
    if weight.requiresGrad {
      let total = duParts[0]
      for part in duParts.dropFirst() { addInPlace(total, part) }
      let w = Tensor(uninitializedShape: weight.shape)
      wino.weightGradient(total.data, into: w.data)
      dw = w
    }
    var db: Tensor? = nil
    if let bias, bias.requiresGrad {
      db = try g.reshaped([geo.n, geo.o, geo.spatial]).sum(axes: [0, 2])
    }
    return bias == nil ? [dx, dw] : [dx, dw, db]
  }
}
