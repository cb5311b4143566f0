// Geometric transforms: resize, center crop, random resized crop, horizontal flip.
//
// Resampling follows PIL's `ImagingResample` (which torchvision's `antialias=True` path
// reproduces, `_upsample_bilinear2d_aa`): pixel centres sit at half-integers, each output
// sample is a normalized weighted sum of the input samples under a filter centred on
// `(i + 0.5) * scale`, and when downscaling with antialiasing the filter is widened by the
// scale factor so that every input pixel contributes (a low-pass before decimation).
// Without antialiasing the filter keeps its own width, which for bilinear gives exactly
// torch's `interpolate(mode="bilinear", align_corners=False)`. Taps that fall outside the
// source region are dropped and the remaining weights renormalized (PIL), which for a
// triangle filter equals torch's edge clamping.
//
// Shapes: every transform here maps [C, H, W] to [C, H', W'] and keeps C.

import Autograd

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// How `Resize` and `RandomResizedCrop` compute samples between pixel centres.
public enum Interpolation: Sendable, Hashable {
  /// torchvision's `nearest`: source index `floor(i * scale)`. Never antialiased.
  case nearest
  /// Triangle filter of radius 1 (PIL `BILINEAR`).
  case bilinear
  /// Keys cubic with a = -0.5, radius 2 (PIL `BICUBIC`, torchvision's antialiased
  /// bicubic). Sharper than bilinear when downscaling; may overshoot [0, 1] slightly near
  /// edges, as torchvision's float path does (no clamping here).
  case bicubic
}

/// A rectangle of pixels: rows `top ..< top + height`, columns `left ..< left + width`.
/// May reach outside an image (`FloatImage.cropped(to:)` pads with zeros there).
public struct CropBox: Sendable, Hashable, CustomStringConvertible {
  public var top: Int
  public var left: Int
  public var height: Int
  public var width: Int
  public init(top: Int, left: Int, height: Int, width: Int) {
    self.top = top
    self.left = left
    self.height = height
    self.width = width
  }
  public var bottom: Int { top + height }
  public var right: Int { left + width }
  /// Whether the box lies entirely inside an image of the given size.
  public func isInside(height imageHeight: Int, width imageWidth: Int) -> Bool {
    top >= 0 && left >= 0 && height > 0 && width > 0 && bottom <= imageHeight && right <= imageWidth
  }
  public var description: String { "rows \(top)..<\(bottom), columns \(left)..<\(right)" }
}

// MARK: - Resampling kernels

/// Filter weights for one axis: output sample `i` is
/// `Σ_k weights[i * taps + k] · input[starts[i] + k]` for `k < counts[i]`.
struct ResampleAxis {
  var starts: [Int]
  var counts: [Int]
  var weights: [Float]
  var taps: Int

  /// Coefficients mapping the input span `start ..< start + inSize` onto `outSize` samples.
  init(start: Int, inSize: Int, outSize: Int, interpolation: Interpolation, antialias: Bool) {
    let scale = Double(inSize) / Double(outSize)
    if interpolation == .nearest {
      // torchvision `nearest` (not `nearest-exact`): floor(i * scale), clamped.
      taps = 1
      starts = (0..<outSize).map { start + min(Int((Double($0) * scale).rounded(.down)), inSize - 1) }
      counts = [Int](repeating: 1, count: outSize)
      weights = [Float](repeating: 1, count: outSize)
      return
    }
    let radius: Double = interpolation == .bilinear ? 1 : 2
    let filterScale = antialias ? max(scale, 1) : 1
    let support = radius * filterScale
    let invFilterScale = 1 / filterScale
    let taps = Int(support.rounded(.up)) * 2 + 1
    self.taps = taps
    var starts = [Int](repeating: 0, count: outSize)
    var counts = [Int](repeating: 0, count: outSize)
    var weights = [Float](repeating: 0, count: outSize * taps)
    var w = [Double](repeating: 0, count: taps)
    for i in 0..<outSize {
      let center = (Double(i) + 0.5) * scale
      // PIL rounds the tap range with +0.5 and truncation; negative values clamp to 0.
      let lo = max(Int((center - support + 0.5).rounded(.down)), 0)
      let hi = min(Int((center + support + 0.5).rounded(.down)), inSize)
      let n = min(max(hi - lo, 0), taps)
      var total = 0.0
      for k in 0..<n {
        let d = (Double(lo + k) - center + 0.5) * invFilterScale
        let v = interpolation == .bilinear ? triangle(d) : keysCubic(d)
        w[k] = v
        total += v
      }
      // total > 0 always: the tap nearest the centre is within half a pixel of it.
      let norm = total != 0 ? 1 / total : 0
      for k in 0..<n { weights[i * taps + k] = Float(w[k] * norm) }
      starts[i] = start + lo
      counts[i] = n
    }
    self.starts = starts
    self.counts = counts
    self.weights = weights
  }
}

@inline(__always) private func triangle(_ x: Double) -> Double {
  let a = abs(x)
  return a < 1 ? 1 - a : 0
}

/// Keys' cubic convolution kernel with a = -0.5 (PIL's `bicubic_filter`).
@inline(__always) private func keysCubic(_ x: Double) -> Double {
  let a = -0.5
  let t = abs(x)
  if t < 1 { return ((a + 2) * t - (a + 3)) * t * t + 1 }
  if t < 2 { return (((t - 5) * t + 8) * t - 4) * a }
  return 0
}

extension FloatImage {
  /// Resamples the region `box` (which must lie inside the image) to `height × width`:
  /// a crop and a resize in one pass, with no intermediate crop copy. Separable:
  /// horizontal pass into a scratch buffer of `C × box.height × width`, then vertical.
  public func resized(
    cropping box: CropBox, height outH: Int, width outW: Int,
    interpolation: Interpolation = .bilinear, antialias: Bool = true
  ) -> FloatImage {
    precondition(outH > 0 && outW > 0, "resized: output size must be positive, got \(outH)×\(outW)")
    precondition(
      box.isInside(height: height, width: width),
      "resized: crop box \(box) is not inside the \(height)×\(width) image")
    let xs = ResampleAxis(
      start: box.left, inSize: box.width, outSize: outW, interpolation: interpolation,
      antialias: antialias)
    let ys = ResampleAxis(
      start: 0, inSize: box.height, outSize: outH, interpolation: interpolation,
      antialias: antialias)
    let c = channels
    let srcW = width
    let srcH = height
    let rows = box.height
    return FloatImage(channels: c, height: outH, width: outW) { out in
      withUnsafeTemporaryAllocation(of: Float.self, capacity: c * rows * outW) { tmp in
        pixels.withUnsafeBufferPointer { src in
          xs.starts.withUnsafeBufferPointer { xStart in
            xs.counts.withUnsafeBufferPointer { xCount in
              xs.weights.withUnsafeBufferPointer { xWeight in
                // Horizontal: every source row of the box → outW samples.
                let taps = xs.taps
                for ch in 0..<c {
                  for r in 0..<rows {
                    let srcRow = (ch * srcH + box.top + r) * srcW
                    let dstRow = (ch * rows + r) * outW
                    for i in 0..<outW {
                      let s0 = srcRow + xStart[i]
                      let w0 = i * taps
                      var acc: Float = 0
                      for k in 0..<xCount[i] { acc += xWeight[w0 + k] * src[s0 + k] }
                      tmp[dstRow + i] = acc
                    }
                  }
                }
              }
            }
          }
        }
        ys.starts.withUnsafeBufferPointer { yStart in
          ys.counts.withUnsafeBufferPointer { yCount in
            ys.weights.withUnsafeBufferPointer { yWeight in
              // Vertical: a weighted sum of whole rows, contiguous and vectorizable.
              let taps = ys.taps
              for ch in 0..<c {
                for j in 0..<outH {
                  let dst = (ch * outH + j) * outW
                  let w0 = j * taps
                  var row = (ch * rows + yStart[j]) * outW
                  let first = yWeight[w0]
                  for x in 0..<outW { out[dst + x] = first * tmp[row + x] }
                  for k in 1..<max(yCount[j], 1) {
                    row += outW
                    let w = yWeight[w0 + k]
                    for x in 0..<outW { out[dst + x] += w * tmp[row + x] }
                  }
                }
              }
            }
          }
        }
      }
    }
  }

  /// Resizes the whole image to `height × width` (see `Interpolation`; `antialias` widens
  /// the filter by the scale factor when downscaling, like PIL and torchvision's
  /// `antialias=True`).
  public func resized(
    height outH: Int, width outW: Int, interpolation: Interpolation = .bilinear, antialias: Bool = true
  ) -> FloatImage {
    resized(
      cropping: CropBox(top: 0, left: 0, height: height, width: width), height: outH, width: outW,
      interpolation: interpolation, antialias: antialias)
  }

  /// The pixels under `box`; parts of the box outside the image are filled with zeros
  /// (torchvision's `center_crop` pads the same way when the crop is larger than the image).
  public func cropped(to box: CropBox) -> FloatImage {
    precondition(box.height > 0 && box.width > 0, "cropped: box size must be positive, got \(box)")
    let c = channels
    let srcW = width
    let srcH = height
    // The columns of the box that exist in the source.
    let x0 = max(box.left, 0)
    let x1 = min(box.right, srcW)
    return FloatImage(channels: c, height: box.height, width: box.width) { out in
      out.initialize(repeating: 0)
      guard x0 < x1 else { return }
      pixels.withUnsafeBufferPointer { src in
        for ch in 0..<c {
          for r in 0..<box.height {
            let y = box.top + r
            guard y >= 0 && y < srcH else { continue }
            let s = (ch * srcH + y) * srcW
            let d = (ch * box.height + r) * box.width - box.left
            for x in x0..<x1 { out[d + x] = src[s + x] }
          }
        }
      }
    }
  }

  /// The mirror image (columns reversed).
  public func flippedHorizontally() -> FloatImage {
    let w = width
    return FloatImage(channels: channels, height: height, width: width) { out in
      pixels.withUnsafeBufferPointer { src in
        for row in 0..<(channels * height) {
          let base = row * w
          for x in 0..<w { out[base + x] = src[base + w - 1 - x] }
        }
      }
    }
  }
}

// MARK: - Transforms

/// Resizes to a fixed size, or so that the shorter side has a given length.
///
/// `Resize(shorterSide: s)` keeps the aspect ratio: the longer side becomes
/// `Int(s * long / short)` (truncated, as torchvision computes it).
public struct Resize: ImageTransform {
  public enum Target: Sendable, Hashable {
    case size(height: Int, width: Int)
    case shorterSide(Int)
  }
  public let target: Target
  public let interpolation: Interpolation
  public let antialias: Bool

  public init(
    height: Int, width: Int, interpolation: Interpolation = .bilinear, antialias: Bool = true
  ) throws {
    try checkPositive(height, "height", "Resize")
    try checkPositive(width, "width", "Resize")
    target = .size(height: height, width: width)
    self.interpolation = interpolation
    self.antialias = antialias
  }

  public init(shorterSide: Int, interpolation: Interpolation = .bilinear, antialias: Bool = true) throws {
    try checkPositive(shorterSide, "shorterSide", "Resize")
    target = .shorterSide(shorterSide)
    self.interpolation = interpolation
    self.antialias = antialias
  }

  /// The output size for an input of `height × width`.
  public func outputSize(height: Int, width: Int) -> (height: Int, width: Int) {
    switch target {
    case .size(let h, let w): return (h, w)
    case .shorterSide(let s):
      if width <= height { return (max(1, s * height / width), s) }
      return (s, max(1, s * width / height))
    }
  }

  public func callAsFunction(_ image: FloatImage, using rng: inout RandomGenerator) -> FloatImage {
    let (h, w) = outputSize(height: image.height, width: image.width)
    if h == image.height && w == image.width { return image }
    return image.resized(height: h, width: w, interpolation: interpolation, antialias: antialias)
  }
}

/// Crops the central `height × width` region. An image smaller than the crop (on either
/// axis) is zero-padded around its centre to the crop size, as torchvision's
/// `center_crop` does; it is never resized. Offsets: `round((H - h) / 2)` with Python's
/// round-half-to-even when cropping, `-(h - H) / 2` (floor) when padding.
public struct CenterCrop: ImageTransform {
  public let height: Int
  public let width: Int

  public init(height: Int, width: Int) throws {
    try checkPositive(height, "height", "CenterCrop")
    try checkPositive(width, "width", "CenterCrop")
    self.height = height
    self.width = width
  }

  public init(size: Int) throws { try self.init(height: size, width: size) }

  /// The box taken from an image of `imageHeight × imageWidth` (may reach outside it).
  public func box(height imageHeight: Int, width imageWidth: Int) -> CropBox {
    func offset(_ full: Int, _ crop: Int) -> Int {
      if crop > full { return -((crop - full) / 2) }
      return Int((Double(full - crop) / 2).rounded(.toNearestOrEven))
    }
    return CropBox(
      top: offset(imageHeight, height), left: offset(imageWidth, width), height: height, width: width)
  }

  public func callAsFunction(_ image: FloatImage, using rng: inout RandomGenerator) -> FloatImage {
    if image.height == height && image.width == width { return image }
    return image.cropped(to: box(height: image.height, width: image.width))
  }
}

/// Crops a random region of random area and aspect ratio, then resizes it to
/// `height × width` (Szegedy et al. 2015; the standard SimCLR/BYOL/MoCo augmentation).
///
/// The box is sampled exactly as torchvision's `RandomResizedCrop.get_params`: up to 10
/// attempts drawing an area fraction uniformly from `scale` and an aspect ratio (w/h)
/// log-uniformly from `ratio`, with sides `round(sqrt(area · ratio))` and
/// `round(sqrt(area / ratio))` (round half to even, as Python); the first box that fits
/// is placed uniformly at random. If none fits, the fallback is a centred crop of the whole
/// image with its aspect ratio clamped into `ratio`. The box always lies inside the image
/// (also for 1×1 images), and the output is always exactly `height × width`.
public struct RandomResizedCrop: ImageTransform {
  public let height: Int
  public let width: Int
  /// Range of the crop's area as a fraction of the image area.
  public let scale: ClosedRange<Double>
  /// Range of the crop's aspect ratio, width / height.
  public let ratio: ClosedRange<Double>
  public let interpolation: Interpolation
  public let antialias: Bool

  public init(
    height: Int, width: Int, scale: ClosedRange<Double> = 0.08...1.0,
    ratio: ClosedRange<Double> = (3.0 / 4.0)...(4.0 / 3.0),
    interpolation: Interpolation = .bilinear, antialias: Bool = true
  ) throws {
    try checkPositive(height, "height", "RandomResizedCrop")
    try checkPositive(width, "width", "RandomResizedCrop")
    guard scale.lowerBound > 0, scale.upperBound.isFinite else {
      throw TransformError("RandomResizedCrop", "scale must satisfy 0 < lower ≤ upper < ∞, got \(scale)")
    }
    guard ratio.lowerBound > 0, ratio.upperBound.isFinite else {
      throw TransformError("RandomResizedCrop", "ratio must satisfy 0 < lower ≤ upper < ∞, got \(ratio)")
    }
    self.height = height
    self.width = width
    self.scale = scale
    self.ratio = ratio
    self.interpolation = interpolation
    self.antialias = antialias
  }

  public init(
    size: Int, scale: ClosedRange<Double> = 0.08...1.0,
    ratio: ClosedRange<Double> = (3.0 / 4.0)...(4.0 / 3.0),
    interpolation: Interpolation = .bilinear, antialias: Bool = true
  ) throws {
    try self.init(
      height: size, width: size, scale: scale, ratio: ratio, interpolation: interpolation,
      antialias: antialias)
  }

  /// Samples the crop box for an image of `imageHeight × imageWidth` (the random part of
  /// the transform, exposed so that its geometry can be checked).
  public func sampleBox(height imageHeight: Int, width imageWidth: Int, using rng: inout RandomGenerator)
    -> CropBox
  {
    let area = Double(imageHeight * imageWidth)
    let logLo = log(ratio.lowerBound)
    let logHi = log(ratio.upperBound)
    for _ in 0..<10 {
      let targetArea = area * (scale.lowerBound + (scale.upperBound - scale.lowerBound) * rng.nextDouble())
      let aspect = exp(logLo + (logHi - logLo) * rng.nextDouble())
      let w = Int((targetArea * aspect).squareRoot().rounded(.toNearestOrEven))
      let h = Int((targetArea / aspect).squareRoot().rounded(.toNearestOrEven))
      if w > 0 && w <= imageWidth && h > 0 && h <= imageHeight {
        let top = rng.nextInt(below: imageHeight - h + 1)
        let left = rng.nextInt(below: imageWidth - w + 1)
        return CropBox(top: top, left: left, height: h, width: w)
      }
    }
    // Fallback: whole image, aspect clamped into `ratio`, centred. The clamps to
    // 1...size guard against extreme ratios on tiny images (torchvision could return 0).
    let inRatio = Double(imageWidth) / Double(imageHeight)
    var w = imageWidth
    var h = imageHeight
    if inRatio < ratio.lowerBound {
      h = Int((Double(w) / ratio.lowerBound).rounded(.toNearestOrEven))
    } else if inRatio > ratio.upperBound {
      w = Int((Double(h) * ratio.upperBound).rounded(.toNearestOrEven))
    }
    w = min(max(w, 1), imageWidth)
    h = min(max(h, 1), imageHeight)
    return CropBox(top: (imageHeight - h) / 2, left: (imageWidth - w) / 2, height: h, width: w)
  }

  public func callAsFunction(_ image: FloatImage, using rng: inout RandomGenerator) -> FloatImage {
    let box = sampleBox(height: image.height, width: image.width, using: &rng)
    return image.resized(
      cropping: box, height: height, width: width, interpolation: interpolation, antialias: antialias)
  }
}

/// Mirrors every image left to right (deterministic; see `RandomHorizontalFlip`).
public struct HorizontalFlip: ImageTransform {
  public init() {}
  public func callAsFunction(_ image: FloatImage, using rng: inout RandomGenerator) -> FloatImage {
    image.flippedHorizontally()
  }
}

/// Mirrors the image left to right with probability `p` (one uniform draw per call, taken
/// whatever `p` is, so the stream of draws does not depend on `p`).
public struct RandomHorizontalFlip: ImageTransform {
  public let p: Float
  public init(p: Float = 0.5) throws {
    try checkProbability(p, "RandomHorizontalFlip")
    self.p = p
  }
  public func callAsFunction(_ image: FloatImage, using rng: inout RandomGenerator) -> FloatImage {
    rng.nextFloat() < p ? image.flippedHorizontally() : image
  }
}
