import Autograd
import Backbones
import Support
import Vision

/// The two-view augmentation of the joint-embedding tasks: SimCLR's recipe (Chen et al.
/// 2020, Appendix A: random resized crop, flip, colour jitter, grayscale, blur) and
/// BYOL's, which MoCo v3 takes over (Grill et al. 2020, Appendix B, Table 6: the same
/// steps plus solarization, with blur and solarization at different probabilities in the
/// two views, so the views are asymmetric).
///
/// Each view's pipeline: crop → flip → colour jitter → grayscale → blur → solarize →
/// normalize, on [C, H, W] images with values in [0, 1] until the normalization.
public struct ViewAugmentation: Codable, Sendable, Equatable {
  public var cropScale: [Double] = [0.08, 1]
  public var flip: Float = 0.5
  /// Brightness, contrast, saturation, hue.
  public var colorJitter: [Float] = [0.4, 0.4, 0.4, 0.1]
  public var colorJitterProbability: Float = 0.8
  public var grayscaleProbability: Float = 0.2
  /// One probability for both views, or [view 1, view 2].
  public var blurProbability: [Float] = [0.5]
  public var blurSigma: [Float] = [0.1, 2.0]
  /// One probability for both views, or [view 1, view 2]; 0 leaves the step out.
  public var solarizeProbability: [Float] = [0]
  public init() {}

  /// BYOL's asymmetric views (Table 6): colour jitter with saturation 0.2, blur always in
  /// view 1 and with p 0.1 in view 2, solarization only in view 2.
  public static var asymmetric: ViewAugmentation {
    var a = ViewAugmentation()
    a.colorJitter = [0.4, 0.4, 0.2, 0.1]
    a.blurProbability = [1.0, 0.1]
    a.solarizeProbability = [0.0, 0.2]
    return a
  }

  /// The options of a task's section that set the augmentation at `path`, declared once
  /// for every task that uses it (the keys sit in the task's section, not nested).
  public static func options<S>(_ path: WritableKeyPath<S, ViewAugmentation>) -> [SettingOption<S>] {
    let perView = { (key: String, field: WritableKeyPath<ViewAugmentation, [Float]>, help: String) in
      SettingOption<S>.list(key, path.appending(path: field), accepts: "p, or [view 1, view 2], in [0, 1]", help) { p in
        (1...2).contains(p.count) && p.allSatisfy { (0...1).contains($0) }
          ? nil : "takes one probability or two (one per view) in [0, 1], got \(p)"
      }
    }
    return [
      .cropScale(path.appending(path: \.cropScale)),
      .flip(path.appending(path: \.flip)),
      .numbers(
        "color_jitter", path.appending(path: \.colorJitter), count: 4, in: 0...1,
        "colour jitter strengths: brightness, contrast, saturation, hue"),
      .number("color_jitter_p", path.appending(path: \.colorJitterProbability), in: 0...1, "probability of the colour jitter"),
      .number("grayscale_p", path.appending(path: \.grayscaleProbability), in: 0...1, "probability of grayscaling a view"),
      perView("blur_p", \.blurProbability, "probability of a Gaussian blur"),
      // Sigma in pixels: beyond 100 the kernel is wider than any image Pretext trains on.
      .interval("blur_sigma", path.appending(path: \.blurSigma), in: 0...100, openBelow: true, "blur sigma range, in pixels"),
      perView("solarize_p", \.solarizeProbability, "probability of solarizing (threshold 0.5)"),
    ]
  }

  /// The probability of view `v` in a per-view setting.
  static func of(_ p: [Float], view v: Int) -> Float { p.count == 1 ? p[0] : p[v] }

  /// The two views at `size` × `size`, normalized by `normalize`.
  func views(size: Int, normalize: Normalize) throws -> MultiView {
    let j = colorJitter
    let pipelines = try (0..<2).map { v -> any ImageTransform in
      var steps: [any ImageTransform] = [
        try RandomResizedCrop(size: size, scale: cropScale[0]...cropScale[1]),
        try RandomHorizontalFlip(p: flip),
        try RandomApply(
          ColorJitter(brightness: j[0], contrast: j[1], saturation: j[2], hue: j[3]), p: colorJitterProbability),
        try RandomGrayscale(p: grayscaleProbability),
        try RandomApply(GaussianBlur(sigma: blurSigma[0]...blurSigma[1]), p: Self.of(blurProbability, view: v)),
      ]
      // BYOL's threshold 0.5 (Table 6). Left out at p = 0, so a recipe without it (SimCLR)
      // draws exactly what it drew before solarization existed here.
      let solarize = Self.of(solarizeProbability, view: v)
      if solarize > 0 { steps.append(try Solarize(threshold: 0.5, p: solarize)) }
      steps.append(normalize)
      return Compose(steps)
    }
    return try MultiView(pipelines)
  }
}

/// The two augmented views of one image that a joint-embedding task (SimCLR, BYOL,
/// MoCo v3) trains on: the image converted to the backbone's channels, then each view's
/// pipeline, normalized. Both views are at the backbone's input size.
struct TwoViewSampler: Sendable {
  let input: InputPreparation
  let views: MultiView

  init(_ augmentation: ViewAugmentation, mean: [Float], std: [Float], backbone: BackboneConfig) throws {
    input = try InputPreparation(channels: backbone.inChannels, mean: mean, std: std)
    views = try augmentation.views(size: backbone.imageSize, normalize: input.normalize)
  }

  func sample(_ image: Image, using rng: inout RandomGenerator) -> TaskSample {
    TaskSample(views: views(input.float(image, using: &rng), using: &rng))
  }

  /// The sides the two views push through the backbone.
  static func backboneInputs(_ backbone: BackboneConfig) -> [Int] { [backbone.imageSize, backbone.imageSize] }
}
