/// Fused normalization layers: batch norm (Ioffe & Szegedy 2015) and layer norm (Ba et
/// al. 2016), each with a hand-written backward pass instead of a chain of small ops.

/// Batch normalization over axis 1 of [N, C, …]: statistics per channel over the batch
/// and spatial positions.
///
/// In training, batch statistics normalize (biased variance) and the running statistics
/// are updated in place with `momentum` (running var from the unbiased variance, as
/// PyTorch). In evaluation the running statistics normalize. `weight`/`bias` ([C]) are
/// optional (MAE's linear probe uses BatchNorm without affine parameters).
///
/// With a `statisticsGroup` (synchronized batch norm), training statistics are those of
/// the global batch spread over the group's processes — x is this process's slice — and
/// the backward pass sums Σdy and Σdy·x̂ over the group too, so every process computes
/// what one process holding the global batch would. Each process's weight and bias
/// gradients stay local sums (the trainer averages gradients across processes).
///
/// Fused epilogue: with `residual` (same shape as x) the result is bn(x) + residual, and
/// with `relu` it goes through max(0, ·) — a ResNet block's `relu(bn(conv(x)) + shortcut)`
/// in one op. Besides saving passes over memory, this keeps two tensors alive for backward
/// (the BN input and the result) where conv–BN–ReLU kept three and conv–BN–add–ReLU four:
/// the ReLU mask is read from the result, which the next layer keeps anyway — like
/// PyTorch's in-place ReLU and `+=` shortcut.
public func batchNorm(
  _ x: Tensor, weight: Tensor?, bias: Tensor?, runningMean: Tensor?, runningVar: Tensor?,
  training: Bool, momentum: Float = 0.1, eps: Float = 1e-5, statisticsGroup: (any Communicator)? = nil,
  residual: Tensor? = nil, relu: Bool = false
) throws -> Tensor {
  guard x.rank >= 2 else {
    throw TensorError("batch_norm", "input \(fmt(x.shape)) must be [N, C, …]")
  }
  let (n, c) = (x.shape[0], x.shape[1])
  let s = x.shape[2...].reduce(1, *)
  for (name, t) in [
    ("weight", weight), ("bias", bias), ("running_mean", runningMean), ("running_var", runningVar),
  ] {
    if let t, t.shape != [c] {
      throw TensorError(
        "batch_norm", "\(name) \(fmt(t.shape)) does not match \(c) channels of \(fmt(x.shape))")
    }
  }
  if let residual, residual.shape != x.shape {
    throw TensorError(
      "batch_norm", "residual \(fmt(residual.shape)) does not match the input \(fmt(x.shape))")
  }
  // Values per channel: this process's, and the whole group's.
  let m = n * s
  let group = training ? statisticsGroup : nil
  var counts = [Double(m)]
  group?.allReduceSum(&counts, count: 1)
  let globalM = Int(counts[0])
  if training && globalM <= 1 {
    throw TensorError(
      "batch_norm", "training needs more than one value per channel, got input \(fmt(x.shape))")
  }
  if !training && (runningMean == nil || runningVar == nil) {
    throw TensorError("batch_norm", "evaluation mode needs running statistics")
  }
  let mean = Tensor(uninitializedShape: [c])
  let invStd = Tensor(uninitializedShape: [c])
  let px = x.data
  if training {
    // Two passes (the mean, then squared deviations around it), each summed over the
    // group between them: per-image partial sums in Float, accumulated in Double.
    var sums = [Double](repeating: 0, count: c)
    sums.withUnsafeMutableBufferPointer { out in
      Parallel.forChunks(c) { channels in
        for ch in channels {
          var sum = 0.0
          for i in 0..<n { sum += Double(vectorSum(px + (i * c + ch) * s, s)) }
          out[ch] = sum
        }
      }
    }
    group?.allReduceSum(&sums, count: c)
    for ch in 0..<c { mean.data[ch] = Float(sums[ch] / Double(globalM)) }
    var squares = [Double](repeating: 0, count: c)
    squares.withUnsafeMutableBufferPointer { out in
      Parallel.forChunks(c) { channels in
        for ch in channels {
          var sq = 0.0
          let muF = mean.data[ch]
          for i in 0..<n { sq += Double(vectorSumSquaredDeviation(px + (i * c + ch) * s, s, muF)) }
          out[ch] = sq
        }
      }
    }
    group?.allReduceSum(&squares, count: c)
    for ch in 0..<c {
      let variance = squares[ch] / Double(globalM)
      invStd.data[ch] = Float(1 / (variance + Double(eps)).squareRoot())
      if let runningMean, let runningVar {
        runningMean.data[ch] = (1 - momentum) * runningMean.data[ch] + momentum * mean.data[ch]
        runningVar.data[ch] =
          (1 - momentum) * runningVar.data[ch] + momentum
          * Float(variance * Double(globalM) / Double(globalM - 1))
      }
    }
  } else {
    for ch in 0..<c {
      mean.data[ch] = runningMean!.data[ch]
      invStd.data[ch] = 1 / (runningVar!.data[ch] + eps).squareRoot()
    }
  }
  let out = Tensor(uninitializedShape: x.shape)
  let po = out.data
  let pr = residual?.data
  // y = x·a + b per channel, a = invStd·w, b = bias − mean·a; then + residual, ReLU.
  Parallel.forChunks(n * c, minChunk: Swift.max(1, 8192 / Swift.max(s, 1))) { rows in
    for r in rows {
      let ch = r % c
      let a = invStd.data[ch] * (weight?.data[ch] ?? 1)
      let b = (bias?.data[ch] ?? 0) - mean.data[ch] * a
      let src = px + r * s
      let dst = po + r * s
      if let pr {
        let res = pr + r * s
        for j in 0..<s { dst[j] = src[j] * a + b + res[j] }
      } else {
        for j in 0..<s { dst[j] = src[j] * a + b }
      }
      if relu {
        for j in 0..<s { dst[j] = Swift.max(dst[j], 0) }
      }
    }
  }
  var inputs = [x]
  if let weight { inputs.append(weight) }
  if let bias { inputs.append(bias) }
  if let residual { inputs.append(residual) }
  // The result's storage, not the tensor: the pullback is owned by the result's GradFn.
  let result = out.storage
  let name = "batch_norm" + (residual == nil ? "" : "_add") + (relu ? "_relu" : "")
  return out.recording(name, inputs) { gradOut in
    // Through the ReLU: the gradient where the result is positive.
    let g: Tensor
    if relu {
      g = Tensor(uninitializedShape: gradOut.shape)
      let (src, dst, y) = (gradOut.data, g.data, result.pointer)
      Parallel.forChunks(g.count, minChunk: 1 << 15) { range in
        for i in range { dst[i] = y[i] > 0 ? src[i] : 0 }
      }
    } else {
      g = gradOut
    }
    let pg = g.data
    // Per channel: Σdy and Σdy·x̂ over this process's values ([2C]: Σdy, then Σdy·x̂).
    var sums = [Double](repeating: 0, count: 2 * c)
    sums.withUnsafeMutableBufferPointer { out in
      Parallel.forChunks(c) { channels in
        for ch in channels {
          let mu = mean.data[ch]
          let istd = invStd.data[ch]
          var a = 0.0
          var b = 0.0
          for i in 0..<n {
            let gp = pg + (i * c + ch) * s
            let xp = px + (i * c + ch) * s
            // Σ dy·x̂ = istd·(Σ dy·x − mu·Σ dy)
            let sg = vectorSum(gp, s)
            a += Double(sg)
            b += Double(istd * (vectorDot(gp, xp, s) - mu * sg))
          }
          out[ch] = a
          out[c + ch] = b
        }
      }
    }
    // The weight and bias gradients: this process's sums.
    let sumDy = Tensor(uninitializedShape: [c])
    let sumDyXhat = Tensor(uninitializedShape: [c])
    for ch in 0..<c {
      sumDy.data[ch] = Float(sums[ch])
      sumDyXhat.data[ch] = Float(sums[c + ch])
    }
    // The input gradient: the sums over every value normalized together.
    let globalSumDy: Tensor, globalSumDyXhat: Tensor
    if let group {
      group.allReduceSum(&sums, count: 2 * c)
      globalSumDy = Tensor(uninitializedShape: [c])
      globalSumDyXhat = Tensor(uninitializedShape: [c])
      for ch in 0..<c {
        globalSumDy.data[ch] = Float(sums[ch])
        globalSumDyXhat.data[ch] = Float(sums[c + ch])
      }
    } else {
      (globalSumDy, globalSumDyXhat) = (sumDy, sumDyXhat)
    }
    var dx: Tensor? = nil
    if x.requiresGrad {
      let d = Tensor(uninitializedShape: x.shape)
      let pd = d.data
      Parallel.forChunks(n * c, minChunk: Swift.max(1, 8192 / Swift.max(s, 1))) { rows in
        for r in rows {
          let ch = r % c
          let w = weight?.data[ch] ?? 1
          let mu = mean.data[ch]
          let istd = invStd.data[ch]
          let gp = pg + r * s
          let xp = px + r * s
          let dp = pd + r * s
          if training {
            // dx = w·istd·(dy − Σdy/M − x̂·Σ(dy·x̂)/M)
            let k1 = globalSumDy.data[ch] / Float(globalM)
            let k2 = globalSumDyXhat.data[ch] / Float(globalM)
            let scale = w * istd
            for j in 0..<s {
              let xhat = (xp[j] - mu) * istd
              dp[j] = scale * (gp[j] - k1 - xhat * k2)
            }
          } else {
            let scale = w * istd
            for j in 0..<s { dp[j] = gp[j] * scale }
          }
        }
      }
      dx = d
    }
    var grads: [Tensor?] = [dx]
    if let weight { grads.append(weight.requiresGrad ? sumDyXhat : nil) }
    if let bias { grads.append(bias.requiresGrad ? sumDy : nil) }
    if let residual { grads.append(residual.requiresGrad ? g : nil) }
    return grads
  }
}

/// Layer normalization over the last axis: x [*, D], weight and bias [D] (optional).
public func layerNorm(_ x: Tensor, weight: Tensor?, bias: Tensor?, eps: Float = 1e-5) throws
  -> Tensor
{
  guard let d = x.shape.last, d > 0 else {
    throw TensorError("layer_norm", "input \(fmt(x.shape)) needs a non-empty last axis")
  }
  for (name, t) in [("weight", weight), ("bias", bias)] {
    if let t, t.shape != [d] {
      throw TensorError(
        "layer_norm", "\(name) \(fmt(t.shape)) does not match the last axis of \(fmt(x.shape))")
    }
  }
  let rows = x.count / d
  let out = Tensor(uninitializedShape: x.shape)
  let mean = Tensor(uninitializedShape: [rows])
  let invStd = Tensor(uninitializedShape: [rows])
  // Missing affine parameters act as weight 1, bias 0: one code path.
  let w = weight ?? Tensor.ones([d])
  let b = bias ?? Tensor.zeros([d])
  let px = x.data
  let po = out.data
  let pw = w.data
  let pb = b.data
  Parallel.forChunks(rows, minChunk: Swift.max(1, 4096 / d)) { r in
    for row in r {
      let src = px + row * d
      let dst = po + row * d
      let mu = vectorSum(src, d) / Float(d)
      let istd = 1 / (vectorSumSquaredDeviation(src, d, mu) / Float(d) + eps).squareRoot()
      mean.data[row] = mu
      invStd.data[row] = istd
      for j in 0..<d { dst[j] = (src[j] - mu) * istd * pw[j] + pb[j] }
    }
  }
  var inputs = [x]
  if let weight { inputs.append(weight) }
  if let bias { inputs.append(bias) }
  return out.recording("layer_norm", inputs) { g in
    // The closure uses w's and b's pointers: keep the tensors alive with it.
    withExtendedLifetime((w, b)) {}
    let pg = g.data
    let dx = x.requiresGrad ? Tensor(uninitializedShape: x.shape) : nil
    let needParams = (weight?.requiresGrad ?? false) || (bias?.requiresGrad ?? false)
    let maxChunks = Parallel.threads
    // Per-chunk partial Σ dy·x̂ and Σ dy, combined in chunk order.
    let partW = needParams ? Tensor.zeros([maxChunks, d]) : nil
    let partB = needParams ? Tensor.zeros([maxChunks, d]) : nil
    let used = Parallel.forIndexedChunks(rows, minChunk: Swift.max(1, 4096 / d)) { chunk, r in
      let accW = partW.map { $0.data + chunk * d }
      let accB = partB.map { $0.data + chunk * d }
      withScratch(d) { dxh in
        for row in r {
          let src = px + row * d
          let gp = pg + row * d
          let mu = mean.data[row]
          let istd = invStd.data[row]
          if let accW, let accB {
            for j in 0..<d {
              accW[j] += gp[j] * (src[j] - mu) * istd
              accB[j] += gp[j]
            }
          }
          if let dx {
            // dx = istd·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)), dx̂ = dy·w;
            // Σ dx̂·x̂ = istd·(Σ dx̂·x − mu·Σ dx̂).
            for j in 0..<d { dxh[j] = gp[j] * pw[j] }
            let s1 = vectorSum(dxh, d)
            let s2 = istd * (vectorDot(dxh, src, d) - mu * s1)
            let m1 = s1 / Float(d)
            let m2 = s2 / Float(d)
            let dst = dx.data + row * d
            for j in 0..<d { dst[j] = istd * (dxh[j] - m1 - (src[j] - mu) * istd * m2) }
          }
        }
      }
    }
    var dw: Tensor? = nil
    var db: Tensor? = nil
    if let partW, let partB {
      let sw = Tensor.zeros([d])
      let sb = Tensor.zeros([d])
      for c in 0..<used {
        for j in 0..<d {
          sw.data[j] += partW.data[c * d + j]
          sb.data[j] += partB.data[c * d + j]
        }
      }
      dw = sw
      db = sb
    }
    var grads: [Tensor?] = [dx]
    if let weight { grads.append(weight.requiresGrad ? dw : nil) }
    if let bias { grads.append(bias.requiresGrad ? db : nil) }
    return grads
  }
}
