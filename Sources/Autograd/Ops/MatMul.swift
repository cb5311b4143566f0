/// Matrix products on OpenBLAS sgemm: `matmul` (2-D and batched, with transposes) and
/// `linear` (x·Wᵀ + b, PyTorch's weight layout).

/// C = op(A)·op(B) for every batch element. A: [batch…, M, K] (or [batch…, K, M] when
/// transposed), B likewise or 2-D (shared by all batch elements).
func batchedGemm(
  _ a: Tensor, _ b: Tensor, transA: Bool, transB: Bool, op: String
) throws -> Tensor {
  guard a.rank >= 2, b.rank >= 2 else {
    throw TensorError(
      op, "\(fmt(a.shape)) × \(fmt(b.shape)): both operands need at least 2 dimensions")
  }
  let (ar, ac) = (a.shape[a.rank - 2], a.shape[a.rank - 1])
  let (br, bc) = (b.shape[b.rank - 2], b.shape[b.rank - 1])
  let (m, k) = transA ? (ac, ar) : (ar, ac)
  let (k2, n) = transB ? (bc, br) : (br, bc)
  guard k == k2 else {
    throw TensorError(
      op,
      "\(fmt(a.shape))\(transA ? "ᵀ" : "") × \(fmt(b.shape))\(transB ? "ᵀ" : ""): inner dimensions differ (\(k) vs \(k2))"
    )
  }
  let batchA = Array(a.shape.dropLast(2))
  let batchB = Array(b.shape.dropLast(2))
  let batch = batchA.reduce(1, *)
  guard b.rank == 2 || batchA == batchB else {
    throw TensorError(op, "\(fmt(a.shape)) × \(fmt(b.shape)): batch dimensions differ")
  }
  let out = Tensor(uninitializedShape: batchA + [m, n])
  if b.rank == 2 && !transA {
    // One tall GEMM: [batch·M, K] × [K, N].
    BLAS.sgemm(
      transA: false, transB: transB, m: batch * m, n: n, k: k, a: a.data, lda: ac,
      b: b.data, ldb: bc, c: out.data, ldc: n)
    return out
  }
  let strideA = ar * ac
  let strideB = b.rank == 2 ? 0 : br * bc
  let strideC = m * n
  let pa = a.data
  let pb = b.data
  let pc = out.data
  let small = m * n * k < 1 << 21
  let body: (Range<Int>) -> Void = { r in
    for i in r {
      BLAS.sgemm(
        transA: transA, transB: transB, m: m, n: n, k: k, a: pa + i * strideA, lda: ac,
        b: pb + i * strideB, ldb: bc, c: pc + i * strideC, ldc: n)
    }
  }
  if small && batch > 1 {
    Parallel.forChunksWithSerialBLAS(batch, body)
  } else {
    body(0..<batch)
  }
  return out
}

/// Matrix product with optional transposes of the last two axes. `a`: [batch…, M, K],
/// `b`: [batch…, K, N] or [K, N] → [batch…, M, N].
public func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false)
  throws -> Tensor
{
  let out = try batchedGemm(a, b, transA: transposeA, transB: transposeB, op: "matmul")
  return out.recording("matmul", [a, b]) { g in
    // C = A·B: dA = dC·Bᵀ, dB = Aᵀ·dC; the transposed cases follow by symmetry.
    var da: Tensor? = nil
    var db: Tensor? = nil
    if a.requiresGrad {
      if transposeA {
        // dA = op(B)·dCᵀ written out per case: B·dCᵀ, or Bᵀ·dCᵀ when B was transposed.
        let bb =
          b.rank == 2 && g.rank > 2 ? try b.expanded(to: Array(g.shape.dropLast(2)) + b.shape) : b
        da = try batchedGemm(bb, g, transA: transposeB, transB: true, op: "matmul")
      } else {
        da = try batchedGemm(g, b, transA: false, transB: !transposeB, op: "matmul")
      }
    }
    if b.requiresGrad {
      let full =
        transposeB
        ? try batchedGemm(g, a, transA: true, transB: transposeA, op: "matmul")
        : try batchedGemm(a, g, transA: !transposeA, transB: false, op: "matmul")
      // A shared 2-D B gets the sum over the batch.
      db = b.rank == 2 && full.rank > 2 ? try full.sum(axes: Array(0..<(full.rank - 2))) : full
    }
    return [da, db]
  }
}

/// y = x·Wᵀ + b over the last axis: x [*, in], weight [out, in], bias [out] → [*, out].
public func linear(_ x: Tensor, weight: Tensor, bias: Tensor? = nil) throws -> Tensor {
  guard weight.rank == 2, x.rank >= 1, x.shape[x.rank - 1] == weight.shape[1] else {
    throw TensorError(
      "linear",
      "input \(fmt(x.shape)) × weight \(fmt(weight.shape)): the input's last dimension must equal the weight's second"
    )
  }
  let (outF, inF) = (weight.shape[0], weight.shape[1])
  if let bias, bias.shape != [outF] {
    throw TensorError(
      "linear",
      "bias \(fmt(bias.shape)) does not match weight \(fmt(weight.shape)) (expected [\(outF)])")
  }
  let rows = x.count / Swift.max(inF, 1)
  let outShape = Array(x.shape.dropLast()) + [outF]
  let out = Tensor(uninitializedShape: outShape)
  if let bias {
    // Pre-fill the bias and let sgemm accumulate onto it (beta = 1).
    for r in 0..<rows { (out.data + r * outF).update(from: bias.data, count: outF) }
  }
  BLAS.sgemm(
    transB: true, m: rows, n: outF, k: inF, a: x.data, lda: inF, b: weight.data, ldb: inF,
    beta: bias == nil ? 0 : 1, c: out.data, ldc: outF)
  var inputs = [x, weight]
  if let bias { inputs.append(bias) }
  return out.recording("linear", inputs) { g in
    var dx: Tensor? = nil
    var dw: Tensor? = nil
    var db: Tensor? = nil
    if x.requiresGrad {
      let d = Tensor(uninitializedShape: x.shape)
      BLAS.sgemm(
        m: rows, n: inF, k: outF, a: g.data, lda: outF, b: weight.data, ldb: inF, c: d.data,
        ldc: inF)
      dx = d
    }
    if weight.requiresGrad {
      let d = Tensor(uninitializedShape: weight.shape)
      BLAS.sgemm(
        transA: true, m: outF, n: inF, k: rows, a: g.data, lda: outF, b: x.data, ldb: inF,
        c: d.data, ldc: inF)
      dw = d
    }
    if let bias, bias.requiresGrad {
      db = try g.reshaped([rows, outF]).sum(axis: 0)
    }
    return bias == nil ? [dx, dw] : [dx, dw, db]
  }
}
