/// Scaled dot-product attention as one fused op (Vaswani et al. 2017):
/// O = softmax(Q·Kᵀ·scale)·V, per batch element and head.
///
/// Forward keeps the softmax P for the backward pass, which is then one sweep per
/// (batch, head): dV = Pᵀ·dO, dP = dO·Vᵀ, dS = P ⊙ (dP − rowsum(dP ⊙ P)),
/// dQ = dS·K·scale, dK = dSᵀ·Q·scale. The (batch × head) problems are spread over the
/// threads with single-threaded sgemm: each is small (ViT-Tiny: 65×65×64).
///
/// Two layouts share the kernel: separate q, k, v of shape [B, H, T, D], and the packed
/// output of a fused qkv projection, [B, T, 3·H·D] (timm's layout: the last axis is
/// (3, H, D)), read in place with strided GEMMs so no permute is needed; the packed
/// form returns [B, T, H·D], ready for the output projection.

/// Where one operand lives: element (b, h, t, d) is at base + b·batch + h·head + t·row + d.
struct AttentionOperand {
  let base: UnsafeMutablePointer<Float>
  let batch, head, row: Int
  @inline(__always) func at(_ b: Int, _ h: Int) -> UnsafeMutablePointer<Float> {
    base + b * batch + h * head
  }
}

struct AttentionProblem {
  let b, h, tq, tk, d: Int
  let scale: Float

  /// Forward: writes O and the softmax P [B·H, tq, tk].
  func forward(
    q: AttentionOperand, k: AttentionOperand, v: AttentionOperand, o: AttentionOperand,
    p: UnsafeMutablePointer<Float>
  ) {
    Parallel.forChunksWithSerialBLAS(b * h) { r in
      for bh in r {
        let (bi, hi) = (bh / h, bh % h)
        let pp = p + bh * tq * tk
        BLAS.sgemm(
          transB: true, m: tq, n: tk, k: d, alpha: scale, a: q.at(bi, hi), lda: q.row,
          b: k.at(bi, hi), ldb: k.row, c: pp, ldc: tk)
        for t in 0..<tq { softmaxRow(pp + t * tk, pp + t * tk, tk) }
        BLAS.sgemm(
          m: tq, n: d, k: tk, a: pp, lda: tk, b: v.at(bi, hi), ldb: v.row, c: o.at(bi, hi),
          ldc: o.row)
      }
    }
  }

  /// Backward: from dO writes dQ, dK, dV (any may be nil when not needed).
  func backward(
    q: AttentionOperand, k: AttentionOperand, v: AttentionOperand, p: UnsafeMutablePointer<Float>,
    dO: AttentionOperand, dQ: AttentionOperand?, dK: AttentionOperand?, dV: AttentionOperand?
  ) {
    Parallel.forChunksWithSerialBLAS(b * h) { r in
      withScratch(tq * tk) { ds in
        for bh in r {
          let (bi, hi) = (bh / h, bh % h)
          let pp = p + bh * tq * tk
          if let dV {
            BLAS.sgemm(
              transA: true, m: tk, n: d, k: tq, a: pp, lda: tk, b: dO.at(bi, hi), ldb: dO.row,
              c: dV.at(bi, hi), ldc: dV.row)
          }
          guard dQ != nil || dK != nil else { continue }
          // dP = dO·Vᵀ, then dS = P ⊙ (dP − rowsum(dP ⊙ P)) in place.
          BLAS.sgemm(
            transB: true, m: tq, n: tk, k: d, a: dO.at(bi, hi), lda: dO.row, b: v.at(bi, hi),
            ldb: v.row,
            c: ds, ldc: tk)
          for t in 0..<tq {
            let dr = ds + t * tk
            let pr = pp + t * tk
            let dot = vectorDot(dr, pr, tk)
            for j in 0..<tk { dr[j] = pr[j] * (dr[j] - dot) }
          }
          if let dQ {
            BLAS.sgemm(
              m: tq, n: d, k: tk, alpha: scale, a: ds, lda: tk, b: k.at(bi, hi), ldb: k.row,
              c: dQ.at(bi, hi), ldc: dQ.row)
          }
          if let dK {
            BLAS.sgemm(
              transA: true, m: tk, n: d, k: tq, alpha: scale, a: ds, lda: tk, b: q.at(bi, hi),
              ldb: q.row,
              c: dK.at(bi, hi), ldc: dK.row)
          }
        }
      }
    }
  }
}

/// softmax(Q·Kᵀ·scale)·V with q [B, H, Tq, D], k [B, H, Tk, D], v [B, H, Tk, D]
/// → [B, H, Tq, D]. `scale` defaults to 1/√D.
public func scaledDotProductAttention(_ q: Tensor, _ k: Tensor, _ v: Tensor, scale: Float? = nil)
  throws -> Tensor
{
  guard q.rank == 4, k.rank == 4, v.rank == 4,
    q.shape[0] == k.shape[0], q.shape[1] == k.shape[1], q.shape[3] == k.shape[3], k.shape == v.shape
  else {
    throw TensorError(
      "attention",
      "q \(fmt(q.shape)), k \(fmt(k.shape)), v \(fmt(v.shape)) must be [B, H, Tq, D], [B, H, Tk, D], [B, H, Tk, D]"
    )
  }
  let (b, h, tq, d) = (q.shape[0], q.shape[1], q.shape[2], q.shape[3])
  let tk = k.shape[2]
  let problem = AttentionProblem(
    b: b, h: h, tq: tq, tk: tk, d: d, scale: scale ?? 1 / Float(d).squareRoot())
  func operand(_ t: Tensor, _ rows: Int) -> AttentionOperand {
    AttentionOperand(base: t.data, batch: h * rows * d, head: rows * d, row: d)
  }
  let out = Tensor(uninitializedShape: [b, h, tq, d])
  let p = Tensor(uninitializedShape: [b * h, tq, tk])
  problem.forward(
    q: operand(q, tq), k: operand(k, tk), v: operand(v, tk), o: operand(out, tq), p: p.data)
  return out.recording("attention", [q, k, v]) { g in
    let dq = q.requiresGrad ? Tensor(uninitializedShape: q.shape) : nil
    let dk = k.requiresGrad ? Tensor(uninitializedShape: k.shape) : nil
    let dv = v.requiresGrad ? Tensor(uninitializedShape: v.shape) : nil
    problem.backward(
      q: operand(q, tq), k: operand(k, tk), v: operand(v, tk), p: p.data, dO: operand(g, tq),
      dQ: dq.map { operand($0, tq) }, dK: dk.map { operand($0, tk) }, dV: dv.map { operand($0, tk) }
    )
    return [dq, dk, dv]
  }
}

/// Multi-head self-attention on a packed qkv projection: qkv [B, T, 3·H·D] (last axis
/// laid out as (3, H, D), as timm's `Attention`) → [B, T, H·D] (heads concatenated).
public func packedSelfAttention(_ qkv: Tensor, heads: Int, scale: Float? = nil) throws -> Tensor {
  guard qkv.rank == 3, heads > 0, qkv.shape[2] % (3 * heads) == 0 else {
    throw TensorError(
      "attention", "qkv \(fmt(qkv.shape)) must be [B, T, 3·heads·D] with heads = \(heads)")
  }
  let (b, t) = (qkv.shape[0], qkv.shape[1])
  let d = qkv.shape[2] / (3 * heads)
  let width = heads * d
  let problem = AttentionProblem(
    b: b, h: heads, tq: t, tk: t, d: d, scale: scale ?? 1 / Float(d).squareRoot())
  func packed(_ base: UnsafeMutablePointer<Float>, _ which: Int) -> AttentionOperand {
    AttentionOperand(base: base + which * width, batch: t * 3 * width, head: d, row: 3 * width)
  }
  let out = Tensor(uninitializedShape: [b, t, width])
  let o = AttentionOperand(base: out.data, batch: t * width, head: d, row: width)
  let p = Tensor(uninitializedShape: [b * heads, t, t])
  problem.forward(
    q: packed(qkv.data, 0), k: packed(qkv.data, 1), v: packed(qkv.data, 2), o: o, p: p.data)
  return out.recording("attention", [qkv]) { g in
    let dqkv = Tensor(uninitializedShape: qkv.shape)
    let dO = AttentionOperand(base: g.data, batch: t * width, head: d, row: width)
    problem.backward(
      q: packed(qkv.data, 0), k: packed(qkv.data, 1), v: packed(qkv.data, 2), p: p.data, dO: dO,
      dQ: packed(dqkv.data, 0), dK: packed(dqkv.data, 1), dV: packed(dqkv.data, 2))
    return [dqkv]
  }
}
