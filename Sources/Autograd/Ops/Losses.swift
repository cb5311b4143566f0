/// Losses and related functions: cross-entropy (fused log-softmax + NLL, with label
/// smoothing and an ignore index), mean squared error, L2 normalization.

import Foundation

/// Mean cross-entropy of `logits` [N, C] against class indices `targets` (N values).
///
/// With label smoothing ε the target distribution is (1−ε)·onehot + ε/C (Szegedy et al.
/// 2016, as PyTorch). Rows whose target equals `ignoreIndex` contribute nothing and are
/// not counted in the mean. Fused: the backward pass is (softmax − target)/count.
public func crossEntropy(
  _ logits: Tensor, targets: [Int], labelSmoothing: Float = 0, ignoreIndex: Int? = nil
) throws -> Tensor {
  guard logits.rank == 2 else {
    throw TensorError("cross_entropy", "logits \(fmt(logits.shape)) must be [N, C]")
  }
  let (n, c) = (logits.shape[0], logits.shape[1])
  guard targets.count == n else {
    throw TensorError("cross_entropy", "\(targets.count) targets for logits \(fmt(logits.shape))")
  }
  guard labelSmoothing >= 0 && labelSmoothing < 1 else {
    throw TensorError("cross_entropy", "label smoothing must be in [0, 1), got \(labelSmoothing)")
  }
  for (i, t) in targets.enumerated() where t != ignoreIndex && (t < 0 || t >= c) {
    throw TensorError("cross_entropy", "target \(t) at row \(i) is not a class index in 0..<\(c)")
  }
  let counted = targets.filter { $0 != ignoreIndex }.count
  let probs = Tensor(uninitializedShape: logits.shape)
  var total = 0.0
  let pl = logits.data
  let pp = probs.data
  let eps = labelSmoothing
  for i in 0..<n {
    let row = pl + i * c
    softmaxRow(row, pp + i * c, c)
    guard targets[i] != ignoreIndex else { continue }
    var m = -Float.infinity
    for j in 0..<c { m = Swift.max(m, row[j]) }
    var sum: Float = 0
    for j in 0..<c { sum += FastMath.exp(row[j] - m) }
    let lse = m + Foundation.log(sum)
    // −Σ q_j log p_j with q = (1−ε)·onehot + ε/C.
    var loss = (1 - eps) * (lse - row[targets[i]])
    if eps > 0 {
      var meanLogit: Float = 0
      for j in 0..<c { meanLogit += row[j] }
      loss += eps * (lse - meanLogit / Float(c))
    }
    total += Double(loss)
  }
  let out = Tensor.scalar(counted == 0 ? 0 : Float(total / Double(counted)))
  return out.recording("cross_entropy", [logits]) { g in
    let pp = probs.data  // captures `probs`, keeping its storage alive
    let scale = counted == 0 ? 0 : g.data[0] / Float(counted)
    let dx = Tensor(uninitializedShape: logits.shape)
    for i in 0..<n {
      let d = dx.data + i * c
      let p = pp + i * c
      if targets[i] == ignoreIndex {
        d.update(repeating: 0, count: c)
        continue
      }
      for j in 0..<c { d[j] = scale * (p[j] - eps / Float(c)) }
      d[targets[i]] -= scale * (1 - eps)
    }
    return [dx]
  }
}

/// Mean squared error mean((a − b)²) over all elements; shapes must match.
public func mseLoss(_ a: Tensor, _ b: Tensor) throws -> Tensor {
  guard a.shape == b.shape else {
    throw TensorError("mse_loss", "shapes differ: \(fmt(a.shape)) vs \(fmt(b.shape))")
  }
  return try (a - b).pow(2).mean()
}

extension Tensor {
  /// x / max(‖x‖₂, eps) along `axis` (PyTorch's `F.normalize`).
  public func l2Normalized(axis: Int = -1, eps: Float = 1e-12) throws -> Tensor {
    // Clamping the squared norm (not the norm) keeps sqrt's gradient finite at 0.
    let norm = try pow(2).sum(axes: [axis], keepDims: true).clamp(min: eps * eps).sqrt()
    return try self / norm
  }
}
