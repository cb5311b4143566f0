// Colour transforms: colour jitter, grayscale, solarize, normalize, channel conversion.
//
// Formulas follow torchvision's float-tensor functional ops (`_functional_tensor.py`):
// brightness/contrast/saturation are blends with black, the gray mean and the per-pixel
// gray image, clamped to [0, 1]; hue goes through torchvision's RGB↔HSV conversion; luma
// uses the ITU-R BT.601 weights 0.299/0.587/0.114.
//
// Channels: 3 = RGB and 1 = gray are the cases that matter. With 4 channels the first
// three are treated as RGB and the fourth (alpha) is left untouched; with 2, the first is
// gray and the second is left untouched. Saturation and hue are no-ops on gray images
// (torchvision does the same), and contrast then uses the mean of the gray channel.
//
// Shapes: [C, H, W] → [C, H, W], except `Grayscale`/`ConvertChannels` which may change C.

import Autograd

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// ITU-R BT.601 luma weights (PIL's `convert("L")`, torchvision's `rgb_to_grayscale`).
public let lumaWeights: (red: Float, green: Float, blue: Float) = (0.299, 0.587, 0.114)

/// The number of leading colour channels (3 for RGB/RGBA, 1 for gray/gray+alpha).
@inline(__always) func colorChannelCount(_ channels: Int) -> Int { channels >= 3 ? 3 : 1 }

extension FloatImage {
  /// A copy of the image made by running `body` on the output buffer, which starts as a
  /// copy of `pixels` (the one allocation of an in-place colour op).
  func mapped(_ body: (UnsafeMutableBufferPointer<Float>) -> Void) -> FloatImage {
    FloatImage(channels: channels, height: height, width: width) { out in
      pixels.withUnsafeBufferPointer { src in
        _ = out.initialize(fromContentsOf: src)
      }
      body(out)
    }
  }

  /// The image with its colour channels replaced by their luma, `0.299 R + 0.587 G +
  /// 0.114 B`, repeated over `outputChannels` planes (1 or 3). An alpha channel is kept
  /// (1 → 2 channels, 3 → 4 channels when the source had alpha). A gray source is copied.
  public func grayscaled(outputChannels: Int = 1) -> FloatImage {
    precondition(
      outputChannels == 1 || outputChannels == 3,
      "grayscaled: outputChannels must be 1 or 3, got \(outputChannels)")
    let plane = height * width
    let hasAlpha = channels == 2 || channels == 4
    let outC = outputChannels + (hasAlpha ? 1 : 0)
    let rgb = channels >= 3
    return FloatImage(channels: outC, height: height, width: width) { out in
      pixels.withUnsafeBufferPointer { src in
        if rgb {
          let (wr, wg, wb) = lumaWeights
          for i in 0..<plane { out[i] = wr * src[i] + wg * src[plane + i] + wb * src[2 * plane + i] }
        } else {
          for i in 0..<plane { out[i] = src[i] }
        }
        for c in 1..<outputChannels {
          for i in 0..<plane { out[c * plane + i] = out[i] }
        }
        if hasAlpha {
          let a = (channels - 1) * plane
          let d = outputChannels * plane
          for i in 0..<plane { out[d + i] = src[a + i] }
        }
      }
    }
  }
}

// MARK: - Colour jitter

/// Randomly changes brightness, contrast, saturation and hue, in a random order
/// (torchvision's `ColorJitter`).
///
/// Each non-zero setting `v` of brightness, contrast and saturation gives a factor drawn
/// uniformly from `[max(0, 1 - v), 1 + v]`; hue `h` (at most 0.5) gives a shift drawn from
/// `[-h, h]` (a fraction of the hue circle). Per call: one permutation of the four
/// operations, then one uniform draw for each enabled operation (the order of
/// torchvision's `get_params`), then the operations applied in the permuted order. A
/// setting of 0 disables its operation, so all-zero settings give the identity.
public struct ColorJitter: ImageTransform {
  /// Factor ranges; nil when the operation is disabled.
  public let brightness: ClosedRange<Float>?
  public let contrast: ClosedRange<Float>?
  public let saturation: ClosedRange<Float>?
  /// Hue shift range, within [-0.5, 0.5]; nil when disabled.
  public let hue: ClosedRange<Float>?

  public init(brightness: Float = 0, contrast: Float = 0, saturation: Float = 0, hue: Float = 0) throws {
    func factorRange(_ v: Float, _ name: String) throws -> ClosedRange<Float>? {
      guard v >= 0, v.isFinite else {
        throw TransformError("ColorJitter", "\(name) must be a finite value ≥ 0, got \(v)")
      }
      return v == 0 ? nil : max(0, 1 - v)...(1 + v)
    }
    guard hue >= 0 && hue <= 0.5 else {
      throw TransformError("ColorJitter", "hue must be in [0, 0.5], got \(hue)")
    }
    self.brightness = try factorRange(brightness, "brightness")
    self.contrast = try factorRange(contrast, "contrast")
    self.saturation = try factorRange(saturation, "saturation")
    self.hue = hue == 0 ? nil : -hue...hue
  }

  /// Explicit factor ranges (torchvision's tuple form). A range equal to `1...1` (or
  /// `0...0` for hue) disables its operation, as nil does.
  public init(
    brightnessRange: ClosedRange<Float>?, contrastRange: ClosedRange<Float>? = nil,
    saturationRange: ClosedRange<Float>? = nil, hueRange: ClosedRange<Float>? = nil
  ) throws {
    func check(_ r: ClosedRange<Float>?, _ name: String) throws -> ClosedRange<Float>? {
      guard let r else { return nil }
      guard r.lowerBound >= 0, r.upperBound.isFinite else {
        throw TransformError("ColorJitter", "\(name) range must lie in [0, ∞), got \(r)")
      }
      return r == 1...1 ? nil : r
    }
    self.brightness = try check(brightnessRange, "brightness")
    self.contrast = try check(contrastRange, "contrast")
    self.saturation = try check(saturationRange, "saturation")
    if let h = hueRange {
      guard h.lowerBound >= -0.5 && h.upperBound <= 0.5 else {
        throw TransformError("ColorJitter", "hue range must lie in [-0.5, 0.5], got \(h)")
      }
      self.hue = h == 0...0 ? nil : h
    } else {
      self.hue = nil
    }
  }

  /// One draw of the jitter: the order of the operations (0 brightness, 1 contrast,
  /// 2 saturation, 3 hue) and the factor of each enabled one.
  public struct Parameters: Sendable, Equatable {
    public var order: [Int]
    public var brightness: Float?
    public var contrast: Float?
    public var saturation: Float?
    public var hue: Float?
    public init(
      order: [Int] = [0, 1, 2, 3], brightness: Float? = nil, contrast: Float? = nil,
      saturation: Float? = nil, hue: Float? = nil
    ) {
      self.order = order
      self.brightness = brightness
      self.contrast = contrast
      self.saturation = saturation
      self.hue = hue
    }
  }

  /// Draws the operation order and factors (torchvision's `get_params` order).
  public func sampleParameters(using rng: inout RandomGenerator) -> Parameters {
    func draw(_ r: ClosedRange<Float>?) -> Float? {
      guard let r else { return nil }
      return r.lowerBound + (r.upperBound - r.lowerBound) * rng.nextFloat()
    }
    let order = rng.permutation(4)
    let b = draw(brightness)
    let c = draw(contrast)
    let s = draw(saturation)
    let h = draw(hue)
    return Parameters(order: order, brightness: b, contrast: c, saturation: s, hue: h)
  }

  /// Applies drawn parameters; all four operations work in place on one output buffer.
  public static func apply(_ parameters: Parameters, to image: FloatImage) -> FloatImage {
    let p = parameters
    if p.brightness == nil && p.contrast == nil && p.saturation == nil && p.hue == nil { return image }
    let plane = image.height * image.width
    let cc = colorChannelCount(image.channels)
    return image.mapped { buf in
      for op in p.order {
        switch op {
        case 0: if let f = p.brightness { brightnessInPlace(buf, plane: plane, colorChannels: cc, factor: f) }
        case 1: if let f = p.contrast { contrastInPlace(buf, plane: plane, colorChannels: cc, factor: f) }
        case 2: if let f = p.saturation, cc == 3 { saturationInPlace(buf, plane: plane, factor: f) }
        case 3: if let f = p.hue, cc == 3 { hueInPlace(buf, plane: plane, shift: f) }
        default: break
        }
      }
    }
  }

  public func callAsFunction(_ image: FloatImage, using rng: inout RandomGenerator) -> FloatImage {
    Self.apply(sampleParameters(using: &rng), to: image)
  }

  /// `clamp(x · factor, 0, 1)`: a blend with black (torchvision `adjust_brightness`).
  public static func adjustBrightness(_ image: FloatImage, factor: Float) -> FloatImage {
    apply(Parameters(brightness: factor), to: image)
  }

  /// `clamp(factor · x + (1 - factor) · m, 0, 1)` with `m` the mean luma of the image (the
  /// mean of the gray channel for gray images) (torchvision `adjust_contrast`).
  public static func adjustContrast(_ image: FloatImage, factor: Float) -> FloatImage {
    apply(Parameters(contrast: factor), to: image)
  }

  /// `clamp(factor · x + (1 - factor) · luma(x), 0, 1)` per pixel; a no-op on gray images
  /// (torchvision `adjust_saturation`).
  public static func adjustSaturation(_ image: FloatImage, factor: Float) -> FloatImage {
    apply(Parameters(saturation: factor), to: image)
  }

  /// Rotates the hue by `shift` (a fraction of the circle, in [-0.5, 0.5]) through HSV;
  /// a no-op on gray images (torchvision `adjust_hue`).
  public static func adjustHue(_ image: FloatImage, shift: Float) -> FloatImage {
    apply(Parameters(hue: shift), to: image)
  }
}

@inline(__always) private func clamp01(_ x: Float) -> Float { min(max(x, 0), 1) }

private func brightnessInPlace(
  _ buf: UnsafeMutableBufferPointer<Float>, plane: Int, colorChannels: Int, factor: Float
) {
  for i in 0..<(colorChannels * plane) { buf[i] = clamp01(buf[i] * factor) }
}

private func contrastInPlace(
  _ buf: UnsafeMutableBufferPointer<Float>, plane: Int, colorChannels: Int, factor: Float
) {
  // The blend target is one scalar: the mean luma over the whole image.
  var sum: Float = 0
  if colorChannels == 3 {
    let (wr, wg, wb) = lumaWeights
    for i in 0..<plane { sum += wr * buf[i] + wg * buf[plane + i] + wb * buf[2 * plane + i] }
  } else {
    for i in 0..<plane { sum += buf[i] }
  }
  let offset = (1 - factor) * (sum / Float(plane))
  for i in 0..<(colorChannels * plane) { buf[i] = clamp01(factor * buf[i] + offset) }
}

private func saturationInPlace(_ buf: UnsafeMutableBufferPointer<Float>, plane: Int, factor: Float) {
  let (wr, wg, wb) = lumaWeights
  let keep = 1 - factor
  for i in 0..<plane {
    let r = buf[i]
    let g = buf[plane + i]
    let b = buf[2 * plane + i]
    let gray = keep * (wr * r + wg * g + wb * b)
    buf[i] = clamp01(factor * r + gray)
    buf[plane + i] = clamp01(factor * g + gray)
    buf[2 * plane + i] = clamp01(factor * b + gray)
  }
}

/// torchvision's `_rgb2hsv` → `(h + shift) mod 1` → `_hsv2rgb`, one pixel at a time.
///
/// Written without branches or integer conversions so that the loop vectorizes (the hot
/// spot of the SimCLR pipeline): the hue sector is chosen with selects, and HSV → RGB uses
/// the closed form `c_n = v · (1 - s · clamp(min(k, 4 - k), 0, 1))`, `k = (n + 6h) mod 6`
/// with n = 5, 3, 1 for R, G, B, which equals torchvision's six-sector table of
/// `p = v(1 - s)`, `q = v(1 - sf)`, `t = v(1 - s(1 - f))`. Results are clamped to [0, 1]
/// (torchvision clamps p, q and t; v only differs for inputs above 1).
private func hueInPlace(_ buf: UnsafeMutableBufferPointer<Float>, plane: Int, shift: Float) {
  @inline(__always) func channel(_ n: Float, _ h6: Float, _ v: Float, _ s: Float) -> Float {
    var k = n + h6
    k = k >= 6 ? k - 6 : k
    let c = min(max(min(k, 4 - k), 0), 1)
    return clamp01(v * (1 - s * c))
  }
  let base = buf.baseAddress!
  let red = base
  let green = base + plane
  let blue = base + 2 * plane
  for i in 0..<plane {
    let r = red[i]
    let g = green[i]
    let b = blue[i]
    let maxc = max(r, max(g, b))
    let minc = min(r, min(g, b))
    let cr = maxc - minc
    let equal = maxc == minc
    let s = cr / (equal ? 1 : maxc)
    let inv = 1 / (equal ? 1 : cr)
    let rc = (maxc - r) * inv
    let gc = (maxc - g) * inv
    let bc = (maxc - b) * inv
    let h = maxc == r ? bc - gc : (maxc == g ? 2 + rc - bc : 4 + gc - rc)
    // h/6 ∈ [-1, 1]; fmod(h/6 + 1, 1) then + shift, then mod 1, in one floor-modulo.
    var hue = h * (1 / 6) + 1 + shift
    hue -= hue.rounded(.down)
    let h6 = min(hue * 6, 6)
    red[i] = channel(5, h6, maxc, s)
    green[i] = channel(3, h6, maxc, s)
    blue[i] = channel(1, h6, maxc, s)
  }
}

// MARK: - Grayscale

/// Converts to gray with `outputChannels` equal planes (torchvision's `Grayscale`).
public struct Grayscale: ImageTransform {
  public let outputChannels: Int
  public init(outputChannels: Int = 1) throws {
    guard outputChannels == 1 || outputChannels == 3 else {
      throw TransformError("Grayscale", "outputChannels must be 1 or 3, got \(outputChannels)")
    }
    self.outputChannels = outputChannels
  }
  public func callAsFunction(_ image: FloatImage, using rng: inout RandomGenerator) -> FloatImage {
    image.grayscaled(outputChannels: outputChannels)
  }
}

/// With probability `p`, replaces the colour channels by their luma while keeping the
/// channel count (torchvision's `RandomGrayscale`: RGB in, three equal planes out). Gray
/// images pass through unchanged. One uniform draw per call.
public struct RandomGrayscale: ImageTransform {
  public let p: Float
  public init(p: Float = 0.1) throws {
    try checkProbability(p, "RandomGrayscale")
    self.p = p
  }
  public func callAsFunction(_ image: FloatImage, using rng: inout RandomGenerator) -> FloatImage {
    guard rng.nextFloat() < p, image.channels >= 3 else { return image }
    return image.grayscaled(outputChannels: 3)
  }
}

// MARK: - Solarize

/// With probability `p`, inverts every sample at or above `threshold`: `x ≥ t ? 1 - x : x`
/// (torchvision's `RandomSolarize` on floats; BYOL uses threshold 0.5). Applies to every
/// channel, as torchvision does. One uniform draw per call.
public struct Solarize: ImageTransform {
  public let threshold: Float
  public let p: Float
  public init(threshold: Float = 0.5, p: Float = 1) throws {
    guard threshold.isFinite else {
      throw TransformError("Solarize", "threshold must be finite, got \(threshold)")
    }
    try checkProbability(p, "Solarize")
    self.threshold = threshold
    self.p = p
  }
  public func callAsFunction(_ image: FloatImage, using rng: inout RandomGenerator) -> FloatImage {
    guard rng.nextFloat() < p else { return image }
    return image.solarized(threshold: threshold, alphaToo: true)
  }
}

extension FloatImage {
  /// Samples at or above `threshold` inverted, `x ≥ t ? 1 − x : x`: the colour channels,
  /// and the alpha channel too when `alphaToo` (torchvision's `RandomSolarize` inverts
  /// every channel; RandAugment's solarize, like its other colour ops, leaves alpha alone).
  func solarized(threshold t: Float, alphaToo: Bool) -> FloatImage {
    let count = alphaToo ? pixels.count : colorChannelCount(channels) * height * width
    return mapped { buf in
      for i in 0..<count where buf[i] >= t { buf[i] = 1 - buf[i] }
    }
  }
}

// MARK: - Normalize

/// `(x - mean[c]) / std[c]` per channel (torchvision's `Normalize`). A single mean/std
/// value applies to every channel. Applying it to an image whose channel count differs
/// from a per-channel setting is a pipeline bug and stops with a message naming both.
public struct Normalize: ImageTransform {
  public let mean: [Float]
  public let std: [Float]

  public init(mean: [Float], std: [Float]) throws {
    guard !mean.isEmpty, mean.count == std.count else {
      throw TransformError(
        "Normalize", "mean and std need the same, non-zero number of values, got \(mean.count) and \(std.count)")
    }
    guard mean.allSatisfy(\.isFinite) else {
      throw TransformError("Normalize", "mean values must be finite, got \(mean)")
    }
    guard std.allSatisfy({ $0 > 0 && $0.isFinite }) else {
      throw TransformError("Normalize", "std values must be finite and > 0, got \(std)")
    }
    self.mean = mean
    self.std = std
  }

  /// ImageNet statistics (RGB), the usual choice for natural images.
  public static let imageNet = try! Normalize(mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225])

  /// The transform that undoes this one: `x · std + mean`, written as a `Normalize` with
  /// mean `-mean/std` and std `1/std`.
  public var inverse: Normalize {
    try! Normalize(
      mean: zip(mean, std).map { -$0 / $1 }, std: std.map { 1 / $0 })
  }

  public func callAsFunction(_ image: FloatImage, using rng: inout RandomGenerator) -> FloatImage {
    let c = image.channels
    precondition(
      mean.count == 1 || mean.count == c,
      "Normalize: \(mean.count) mean/std values for an image with \(c) channels (\(image.sizeDescription))")
    let plane = image.height * image.width
    return image.mapped { buf in
      for ch in 0..<c {
        let k = mean.count == 1 ? 0 : ch
        let m = mean[k]
        let inv = 1 / std[k]
        let base = ch * plane
        for i in base..<(base + plane) { buf[i] = (buf[i] - m) * inv }
      }
    }
  }
}

// MARK: - Channel conversion

/// Converts between gray and RGB: to 3 channels, gray is repeated over three planes; to 1
/// channel, RGB becomes its BT.601 luma. Alpha is dropped (2 → 1 or 3, 4 → 3 or 1). An
/// image that already has the target count passes through unchanged.
public struct ConvertChannels: ImageTransform {
  public let channels: Int
  public init(to channels: Int) throws {
    guard channels == 1 || channels == 3 else {
      throw TransformError("ConvertChannels", "target must be 1 (gray) or 3 (RGB) channels, got \(channels)")
    }
    self.channels = channels
  }
  public func callAsFunction(_ image: FloatImage, using rng: inout RandomGenerator) -> FloatImage {
    let c = image.channels
    if c == channels { return image }
    let plane = image.height * image.width
    let target = channels
    if target == 3 && c >= 3 || target == 1 && c < 3 {
      // Same colour model: keep the leading colour planes, drop alpha.
      return FloatImage(channels: target, height: image.height, width: image.width) { out in
        image.pixels.withUnsafeBufferPointer { src in
          for i in 0..<(target * plane) { out[i] = src[i] }
        }
      }
    }
    return FloatImage(channels: target, height: image.height, width: image.width) { out in
      image.pixels.withUnsafeBufferPointer { src in
        if target == 3 {
          // Gray (or gray+alpha) → RGB: the gray plane three times.
          for ch in 0..<3 {
            for i in 0..<plane { out[ch * plane + i] = src[i] }
          }
        } else {
          // RGB (or RGBA) → gray: BT.601 luma.
          let (wr, wg, wb) = lumaWeights
          for i in 0..<plane { out[i] = wr * src[i] + wg * src[plane + i] + wb * src[2 * plane + i] }
        }
      }
    }
  }
}
