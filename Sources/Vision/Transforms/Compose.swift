// Pipelines: `Compose` (a sequence), `RandomApply` (a sequence applied with probability
// p), and `MultiView` (N views of one image, each from its own pipeline: SimCLR's two
// augmented views, or DINO-style global + local crops).

import Autograd

/// Applies transforms one after the other (torchvision's `Compose`). Each transform draws
/// from the same generator in turn.
public struct Compose: ImageTransform {
  public let transforms: [any ImageTransform]

  public init(_ transforms: [any ImageTransform]) { self.transforms = transforms }
  public init(_ transforms: any ImageTransform...) { self.transforms = transforms }

  public func callAsFunction(_ image: FloatImage, using rng: inout RandomGenerator) -> FloatImage {
    var x = image
    for t in transforms { x = t(x, using: &rng) }
    return x
  }
}

/// Applies its transforms (in order) with probability `p`, otherwise passes the image
/// through (torchvision's `RandomApply`). One uniform draw per call decides; the wrapped
/// transforms draw only when they run.
public struct RandomApply: ImageTransform {
  public let transforms: [any ImageTransform]
  public let p: Float

  public init(_ transforms: [any ImageTransform], p: Float) throws {
    try checkProbability(p, "RandomApply")
    self.transforms = transforms
    self.p = p
  }

  public init(_ transform: any ImageTransform, p: Float) throws {
    try self.init([transform], p: p)
  }

  public func callAsFunction(_ image: FloatImage, using rng: inout RandomGenerator) -> FloatImage {
    guard rng.nextFloat() < p else { return image }
    var x = image
    for t in transforms { x = t(x, using: &rng) }
    return x
  }
}

/// Produces several views of one image, view `k` from `pipelines[k]` (the same pipeline
/// may be listed several times: SimCLR uses two draws of one recipe).
///
/// Each view gets its own generator split off the caller's (`RandomGenerator.split()`, one
/// draw per view), so the views are independent draws and the randomness of view `k` does
/// not depend on how many numbers the pipelines before it consumed.
public struct MultiView: Sendable {
  public let pipelines: [any ImageTransform]

  public init(_ pipelines: [any ImageTransform]) throws {
    guard !pipelines.isEmpty else { throw TransformError("MultiView", "needs at least one pipeline") }
    self.pipelines = pipelines
  }

  /// `views` independent draws of the same pipeline.
  public init(views: Int, _ pipeline: any ImageTransform) throws {
    guard views > 0 else { throw TransformError("MultiView", "views must be positive, got \(views)") }
    self.pipelines = Array(repeating: pipeline, count: views)
  }

  public var viewCount: Int { pipelines.count }

  public func callAsFunction(_ image: FloatImage, using rng: inout RandomGenerator) -> [FloatImage] {
    pipelines.map { pipeline in
      var viewRNG = rng.split()
      return pipeline(image, using: &viewRNG)
    }
  }

  /// Converts an 8-bit image once, then makes the views (what a loader's prepare step needs).
  public func callAsFunction(_ image: Image, using rng: inout RandomGenerator) -> [FloatImage] {
    self(FloatImage(image), using: &rng)
  }
}
