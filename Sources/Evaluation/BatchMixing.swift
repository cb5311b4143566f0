import Autograd
import Foundation

// Mixup (Zhang et al. 2018, https://arxiv.org/abs/1710.09412) and CutMix (Yun et al.
// 2019, https://arxiv.org/abs/1905.04899) on a batch of images, the regularizers of
// DeiT's and MAE's fine-tuning recipes. Each image is mixed with its partner in the
// reversed batch (timm's `Mixup` in batch mode): the loss is
// λ·CE(logits, y) + (1 − λ)·CE(logits, y_partner).

/// How one batch was mixed: the images' share λ of their own label.
public struct BatchMix: Sendable, Equatable {
  public enum Kind: String, Sendable { case none, mixup, cutmix }
  public let kind: Kind
  /// Weight of each image's own label; 1 − λ goes to its partner's.
  public let lambda: Float
  /// Row i's partner row (the batch reversed).
  public static func partner(of i: Int, batch: Int) -> Int { batch - 1 - i }
}

/// Mixes batches with Mixup or CutMix: per batch, CutMix with probability
/// `switchProbability` when both are on (timm's default 0.5), otherwise the one that is on.
public struct BatchMixer: Sendable {
  /// Beta(α, α) concentration of Mixup's λ (0: Mixup off).
  public let mixupAlpha: Double
  /// Beta(α, α) concentration of CutMix's box area (0: CutMix off).
  public let cutmixAlpha: Double
  public let switchProbability: Double

  public init(mixupAlpha: Double, cutmixAlpha: Double, switchProbability: Double = 0.5) {
    self.mixupAlpha = mixupAlpha
    self.cutmixAlpha = cutmixAlpha
    self.switchProbability = switchProbability
  }

  public var isActive: Bool { mixupAlpha > 0 || cutmixAlpha > 0 }

  /// Mixes `images` [B, C, H, W] in place (each row with its partner, read before any row
  /// is written) and says how.
  public func mix(_ images: Tensor, using rng: inout RandomGenerator) -> BatchMix {
    let b = images.shape[0]
    guard isActive, b >= 2 else { return BatchMix(kind: .none, lambda: 1) }
    let useCutmix = cutmixAlpha > 0 && (mixupAlpha <= 0 || rng.nextDouble() < switchProbability)
    let source = images.copy()
    let (c, h, w) = (images.shape[1], images.shape[2], images.shape[3])
    let per = c * h * w
    let dst = images.data, src = source.data
    if useCutmix {
      // A box of area (1 − λ)·H·W centred uniformly, clipped to the image; λ is then the
      // share of the image left unchanged (the paper's area-corrected λ).
      let lam = Self.beta(cutmixAlpha, using: &rng)
      let cut = (1 - lam).squareRoot()
      let (bh, bw) = (Int(Double(h) * cut), Int(Double(w) * cut))
      let (cy, cx) = (rng.nextInt(below: h), rng.nextInt(below: w))
      let (y0, y1) = (max(cy - bh / 2, 0), min(cy + bh / 2, h))
      let (x0, x1) = (max(cx - bw / 2, 0), min(cx + bw / 2, w))
      for i in 0..<b {
        let j = BatchMix.partner(of: i, batch: b)
        for ch in 0..<c {
          for y in y0..<y1 {
            let row = ch * h * w + y * w
            (dst + i * per + row + x0).update(from: src + j * per + row + x0, count: x1 - x0)
          }
        }
      }
      let area = Double((y1 - y0) * (x1 - x0)) / Double(h * w)
      return BatchMix(kind: .cutmix, lambda: Float(1 - area))
    }
    let lam = Float(Self.beta(mixupAlpha, using: &rng))
    for i in 0..<b {
      let j = BatchMix.partner(of: i, batch: b)
      let (o, p) = (dst + i * per, src + j * per)
      for k in 0..<per { o[k] = lam * o[k] + (1 - lam) * p[k] }
    }
    return BatchMix(kind: .mixup, lambda: lam)
  }

  /// A draw from Beta(α, α): X/(X + Y) with X, Y ~ Gamma(α).
  static func beta(_ alpha: Double, using rng: inout RandomGenerator) -> Double {
    let x = gamma(alpha, using: &rng), y = gamma(alpha, using: &rng)
    return x + y > 0 ? x / (x + y) : 0.5
  }

  /// A draw from Gamma(α, 1) by Marsaglia & Tsang (2000); for α < 1, Gamma(α + 1)·U^(1/α).
  static func gamma(_ alpha: Double, using rng: inout RandomGenerator) -> Double {
    if alpha < 1 {
      let u = max(rng.nextDouble(), Double.leastNormalMagnitude)
      return gamma(alpha + 1, using: &rng) * Foundation.pow(u, 1 / alpha)
    }
    let d = alpha - 1.0 / 3, c = 1 / (9 * d).squareRoot()
    while true {
      let x = Double(rng.nextNormal())
      let v0 = 1 + c * x
      guard v0 > 0 else { continue }
      let v = v0 * v0 * v0
      let u = rng.nextDouble()
      if u < 1 - 0.0331 * x * x * x * x || Foundation.log(max(u, Double.leastNormalMagnitude)) < 0.5 * x * x + d * (1 - v + Foundation.log(v)) {
        return d * v
      }
    }
  }
}
