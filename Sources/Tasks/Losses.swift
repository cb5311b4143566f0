import Autograd

/// NT-Xent, the normalized temperature-scaled cross-entropy of SimCLR (Chen et al. 2020,
/// https://arxiv.org/abs/2002.05709, Algorithm 1).
///
/// z1, z2: [N, D] projections of two views of the same N images. Each of the 2N
/// embeddings is L2-normalized; its positive is the other view of its image and its
/// 2N − 2 negatives are every other embedding (itself excluded). The loss is the mean
/// over the anchors of −log softmax(sim/τ)[positive].
///
/// `anchors` (default: all N images) limits the anchors to the two views of images
/// `anchors` — in data-parallel training, this process's images among the gathered
/// global batch; the mean of the per-process losses is then the loss over all 2N anchors.
///
/// Returns the loss and the contrastive top-1 accuracy (how often the positive has the
/// highest similarity among the 2N − 1 candidates) over the anchors.
public func ntXentLoss(
  _ z1: Tensor, _ z2: Tensor, temperature: Float, anchors: Range<Int>? = nil
) throws -> (loss: Tensor, top1: Double) {
  guard z1.rank == 2, z1.shape == z2.shape, z1.shape[0] >= 2 else {
    throw TensorError("nt_xent", "views \(z1.shape) and \(z2.shape) must be equal [N, D] with N ≥ 2")
  }
  guard temperature > 0 else { throw TensorError("nt_xent", "temperature must be positive, got \(temperature)") }
  let n = z1.shape[0]
  let rows = anchors ?? 0..<n
  guard !rows.isEmpty, rows.lowerBound >= 0, rows.upperBound <= n else {
    throw TensorError("nt_xent", "anchors \(rows) must be a non-empty range of the \(n) images")
  }
  let m = rows.count
  let z = try Tensor.concat([z1, z2], axis: 0).l2Normalized(axis: 1)  // [2N, D] candidates
  // The anchors' rows of z: first views, then second views ([2m, D]).
  let a =
    m == n
    ? z
    : try Tensor.concat([z.sliced(axis: 0, rows), z.sliced(axis: 0, (n + rows.lowerBound)..<(n + rows.upperBound))], axis: 0)
  let similarity = try matmul(a, z, transposeB: true) * (1 / temperature)  // [2m, 2N]
  // Anchor i is candidate `own[i]`; its positive is the other view of the same image.
  let own = (0..<(2 * m)).map { $0 < m ? rows.lowerBound + $0 : n + rows.lowerBound + $0 - m }
  let targets = own.map { $0 < n ? $0 + n : $0 - n }
  // Exclude each anchor from its own candidates.
  let selfMask = Tensor.zeros([2 * m, 2 * n])
  for (i, j) in own.enumerated() { selfMask.data[i * 2 * n + j] = -1e9 }
  let logits = try similarity + selfMask
  let loss = try crossEntropy(logits, targets: targets)
  let predicted = try logits.argmax(axis: 1).values
  let correct = zip(predicted, targets).filter { $0 == $1 }.count
  return (loss, Double(correct) / Double(2 * m))
}

/// BYOL's regression loss (Grill et al. 2020, https://arxiv.org/abs/2006.07733, §3.1,
/// eq. 2): the squared distance of the L2-normalized prediction and target,
/// ‖p/‖p‖ − z/‖z‖‖² = 2 − 2·cos(p, z), averaged over the rows.
///
/// prediction: [N, D] (the online network's, gradient flows); target: [N, D] (the target
/// network's: detached here, the stop-gradient of §3.1). Returns the loss and the mean
/// cosine similarity.
public func normalizedMSELoss(_ prediction: Tensor, _ target: Tensor) throws -> (loss: Tensor, cosine: Double) {
  guard prediction.rank == 2, prediction.shape == target.shape, prediction.shape[0] >= 1 else {
    throw TensorError("normalized_mse", "prediction \(prediction.shape) and target \(target.shape) must be equal [N, D]")
  }
  let p = try prediction.l2Normalized(axis: 1)
  let z = try target.detached().l2Normalized(axis: 1)
  let cosine = try (p * z).sum(axis: 1).mean()  // mean over the N rows of cos(p_i, z_i)
  return (2 - 2 * cosine, Double(try cosine.item()))
}

/// MoCo v3's contrastive loss (Chen, Xie & He 2021, https://arxiv.org/abs/2104.02057,
/// §3, Algorithm 1): InfoNCE of queries against the keys of the global batch, whose
/// positive is the key of the same image (another view), scaled by 2τ.
///
/// q: [N, D] this process's queries (gradient flows); k: [M, D] the keys of the global
/// batch (M = N · processes; detached here: the momentum encoder gets no gradient);
/// query i's positive is key `offset + i` (offset = rank · N). Both are L2-normalized;
/// logits q·kᵀ/τ [N, M]; the loss is 2τ · mean cross-entropy, the scale of Algorithm 1
/// (`CrossEntropyLoss(logits, labels) * (2 * t)`), which makes the gradient's size less
/// dependent on τ. Returns the loss and the top-1 accuracy of the positive.
public func infoNCELoss(
  queries q: Tensor, keys k: Tensor, temperature: Float, positivesFrom offset: Int = 0
) throws -> (loss: Tensor, top1: Double) {
  guard q.rank == 2, k.rank == 2, q.shape[1] == k.shape[1], q.shape[0] >= 1 else {
    throw TensorError("info_nce", "queries \(q.shape) and keys \(k.shape) must be [N, D] and [M, D]")
  }
  guard temperature > 0 else { throw TensorError("info_nce", "temperature must be positive, got \(temperature)") }
  let n = q.shape[0]
  guard offset >= 0, offset + n <= k.shape[0] else {
    throw TensorError("info_nce", "the positives \(offset)..<\(offset + n) are not among the \(k.shape[0]) keys")
  }
  let logits = try matmul(q.l2Normalized(axis: 1), k.detached().l2Normalized(axis: 1), transposeB: true) * (1 / temperature)
  let targets = (0..<n).map { offset + $0 }
  let loss = try crossEntropy(logits, targets: targets) * (2 * temperature)
  let predicted = try logits.argmax(axis: 1).values
  let correct = zip(predicted, targets).filter { $0 == $1 }.count
  return (loss, Double(correct) / Double(n))
}

/// MAE's reconstruction loss (He et al. 2021, https://arxiv.org/abs/2111.06377): mean
/// squared error per patch, averaged over the masked patches only.
///
/// prediction, target: [B, N, P] (P = patch²·channels); mask: [B, N], 1 where the patch
/// was hidden from the encoder. With `normalizeTarget` (MAE's `norm_pix_loss`) each target
/// patch is standardized by its own mean and (unbiased) variance first.
public func maskedReconstructionLoss(
  prediction: Tensor, target: Tensor, mask: Tensor, normalizeTarget: Bool
) throws -> Tensor {
  guard prediction.shape == target.shape, prediction.rank == 3, mask.shape == Array(prediction.shape.prefix(2)) else {
    throw TensorError(
      "masked_mse", "prediction \(prediction.shape), target \(target.shape), mask \(mask.shape): need [B, N, P], [B, N, P], [B, N]")
  }
  var t = target.detached()
  if normalizeTarget {
    let mean = try t.mean(axis: -1, keepDims: true)
    let variance = try t.variance(axes: [-1], correction: 1, keepDims: true)
    t = try (t - mean) / (variance + 1e-6).sqrt()
  }
  let perPatch = try (prediction - t).pow(2).mean(axis: -1)  // [B, N]
  let masked = try mask.sum().item()
  guard masked > 0 else { throw TensorError("masked_mse", "no patch is masked") }
  return try (perPatch * mask).sum() * (1 / masked)
}

/// Splits images [B, C, H, W] into flattened patches [B, N, p·p·C] in MAE's `patchify`
/// order (row-major patches; inside a patch, row-major pixels with channels last).
public func patchify(_ images: Tensor, patchSize p: Int) throws -> Tensor {
  guard images.rank == 4, images.shape[2] % p == 0, images.shape[3] % p == 0 else {
    throw TensorError("patchify", "images \(images.shape) must be [B, C, H, W] with H, W multiples of \(p)")
  }
  let (b, c, h, w) = (images.shape[0], images.shape[1], images.shape[2] / p, images.shape[3] / p)
  // [B, C, h, p, w, p] → [B, h, w, p, p, C]
  return try images.reshaped([b, c, h, p, w, p]).permuted([0, 2, 4, 3, 5, 1]).reshaped([b, h * w, p * p * c])
}

/// The inverse of `patchify`: [B, N, p·p·C] → [B, C, H, W] for a square grid.
public func unpatchify(_ patches: Tensor, patchSize p: Int, channels c: Int) throws -> Tensor {
  let (b, n) = (patches.shape[0], patches.shape[1])
  let g = Int(Double(n).squareRoot())
  guard g * g == n, patches.shape[2] == p * p * c else {
    throw TensorError("unpatchify", "patches \(patches.shape) do not form a square grid of \(p)×\(p)×\(c) patches")
  }
  return try patches.reshaped([b, g, g, p, p, c]).permuted([0, 5, 1, 3, 2, 4]).reshaped([b, c, g * p, g * p])
}
