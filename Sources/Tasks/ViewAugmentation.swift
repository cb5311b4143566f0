import Autograd
import Vision

/// The two-view augmentation of the joint-embedding tasks: SimCLR's recipe (Chen et al.
/// 2020, Appendix A: random resized crop, flip, colour jitter, grayscale, blur) and
/// BYOL's, which MoCo v3 takes over (Grill et al. 2020, Appendix B, Table 6: the same
/// steps plus solarization, with blur and solarization at different probabilities in the
/// two views, so the views are asymmetric).
///
/// Each view's pipeline: crop → flip → colour jitter → grayscale → blur → solarize →
/// normalize, on [C, H, W] images with values in [0, 1] until the normalization.
struct ViewAugmentation {
  var cropScale: [Double]
  var flip: Float
  /// Brightness, contrast, saturation, hue.
  var colorJitter: [Float]
  var colorJitterProbability: Float
  var grayscaleProbability: Float
  /// Per view (two views).
  var blurProbability: [Float]
  var blurSigma: [Float]
  /// Per view; empty: no solarization (SimCLR).
  var solarizeProbability: [Float] = []

  /// Checks every key, named as in the task's settings (`task.blur_p`, …).
  func check(task: String) throws {
    let perView = solarizeProbability.isEmpty ? "" : ", blur_p and solarize_p 2 (one per view)"
    guard cropScale.count == 2, colorJitter.count == 4, blurSigma.count == 2, blurProbability.count == 2,
      solarizeProbability.isEmpty || solarizeProbability.count == 2
    else {
      throw TaskError("\(task): crop_scale and blur_sigma take 2 numbers, color_jitter 4\(perView)")
    }
    let r = SettingsRanges(task: task)
    try r.checkPair("crop_scale", cropScale, in: 0...1, openBelow: true)
    try r.check("color_jitter", colorJitter, in: 0...1)
    try r.check("flip", flip, in: 0...1)
    try r.check("color_jitter_p", colorJitterProbability, in: 0...1)
    try r.check("grayscale_p", grayscaleProbability, in: 0...1)
    for p in blurProbability { try r.check("blur_p", p, in: 0...1) }
    for p in solarizeProbability { try r.check("solarize_p", p, in: 0...1) }
    // Sigma in pixels: beyond 100 the kernel is wider than any image Pretext trains on.
    try r.checkPair("blur_sigma", blurSigma, in: 0...100, openBelow: true)
  }

  /// The two views at `size` × `size`, normalized by `normalize`. Call after `check`.
  func views(size: Int, normalize: Normalize) throws -> MultiView {
    let j = colorJitter
    let pipelines = try (0..<2).map { v -> any ImageTransform in
      var steps: [any ImageTransform] = [
        try RandomResizedCrop(size: size, scale: cropScale[0]...cropScale[1]),
        try RandomHorizontalFlip(p: flip),
        try RandomApply(
          ColorJitter(brightness: j[0], contrast: j[1], saturation: j[2], hue: j[3]), p: colorJitterProbability),
        try RandomGrayscale(p: grayscaleProbability),
        try RandomApply(GaussianBlur(sigma: blurSigma[0]...blurSigma[1]), p: blurProbability[v]),
      ]
      // BYOL's threshold 0.5 (Table 6). Left out at p = 0, so a recipe without it (SimCLR)
      // draws exactly what it drew before solarization existed here.
      if v < solarizeProbability.count && solarizeProbability[v] > 0 {
        steps.append(try Solarize(threshold: 0.5, p: solarizeProbability[v]))
      }
      steps.append(normalize)
      return Compose(steps)
    }
    return try MultiView(pipelines)
  }
}
