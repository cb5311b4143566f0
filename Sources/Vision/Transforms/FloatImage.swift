// The working image type of the augmentation pipeline and the protocol every transform
// follows.
//
// Transforms run on `FloatImage` (planar CHW Float32, nominally in [0, 1]) rather than on
// the 8-bit `Image`: chaining several colour operations on bytes would round after every
// step, and the network wants CHW floats in the end anyway (`makeBatch` copies them into a
// tensor as they are). This mirrors torchvision's float-tensor path (`ToTensor()` first,
// then the v2 transforms on `[C, H, W]` floats).

import Autograd

/// A floating-point image, planar (CHW): the sample of channel `c` at row `y`, column `x`
/// is `pixels[(c * height + y) * width + x]`, so `pixels.count == channels * height * width`.
///
/// Values are nominally in [0, 1] (an 8-bit sample `v` becomes `v / 255`). Colour
/// transforms clamp to [0, 1] the way torchvision does; `Normalize` and bicubic resampling
/// may leave the range, which is fine for a network input. Channel meaning by count:
/// 1 = gray, 3 = RGB; 2 and 4 are gray+alpha and RGBA (colour transforms leave the alpha
/// channel alone).
///
/// A value type (copy-on-write storage), `Sendable`: views can be produced on a background
/// thread and handed to the training loop.
public struct FloatImage: Sendable, Equatable {
  public let channels: Int
  public let height: Int
  public let width: Int
  /// `channels * height * width` samples, CHW. Mutate freely, but keep the count.
  public var pixels: [Float]

  /// Wraps existing samples; `pixels.count` must equal `channels * height * width`, and
  /// every dimension must be at least 1.
  public init(channels: Int, height: Int, width: Int, pixels: [Float]) {
    precondition(
      channels > 0 && height > 0 && width > 0,
      "FloatImage: channels, height and width must be positive, got \(channels)×\(height)×\(width)")
    precondition(
      pixels.count == channels * height * width,
      "FloatImage: \(pixels.count) samples do not fill \(channels)×\(height)×\(width) (C×H×W)")
    self.channels = channels
    self.height = height
    self.width = width
    self.pixels = pixels
  }

  /// An image with every sample set to `value`.
  public init(channels: Int, height: Int, width: Int, filledWith value: Float = 0) {
    precondition(
      channels > 0 && height > 0 && width > 0,
      "FloatImage: channels, height and width must be positive, got \(channels)×\(height)×\(width)")
    self.init(
      channels: channels, height: height, width: width,
      pixels: [Float](repeating: value, count: channels * height * width))
  }

  /// Builds an image by letting `fill` write all `channels * height * width` samples into
  /// uninitialized storage (the one allocation of a transform's output).
  init(
    channels: Int, height: Int, width: Int,
    filling fill: (UnsafeMutableBufferPointer<Float>) -> Void
  ) {
    let count = channels * height * width
    let pixels = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
      fill(buffer)
      initialized = count
    }
    self.init(channels: channels, height: height, width: width, pixels: pixels)
  }

  /// Converts an 8-bit HWC image: every sample is divided by 255 and the channels are
  /// split into planes (torchvision's `ToTensor`).
  public init(_ image: Image) {
    let c = image.channels
    let plane = image.width * image.height
    self.init(channels: c, height: image.height, width: image.width) { out in
      image.pixels.withUnsafeBufferPointer { src in
        let scale: Float = 1 / 255
        if c == 1 {
          for i in 0..<plane { out[i] = Float(src[i]) * scale }
          return
        }
        for ch in 0..<c {
          let base = ch * plane
          for i in 0..<plane { out[base + i] = Float(src[i * c + ch]) * scale }
        }
      }
    }
  }

  /// Converts back to an 8-bit HWC image: clamps to [0, 1], scales by 255 and rounds to
  /// the nearest byte. Needs 1...4 channels (what `Image` holds).
  public func toImage() -> Image {
    precondition(
      (1...4).contains(channels), "FloatImage.toImage: an Image holds 1...4 channels, got \(channels)")
    let c = channels
    let plane = width * height
    let bytes = [UInt8](unsafeUninitializedCapacity: plane * c) { out, initialized in
      pixels.withUnsafeBufferPointer { src in
        for ch in 0..<c {
          let base = ch * plane
          for i in 0..<plane {
            let v = min(max(src[base + i], 0), 1) * 255
            out[i * c + ch] = UInt8(v + 0.5)  // v ≥ 0, so truncating v + 0.5 rounds
          }
        }
      }
      initialized = plane * c
    }
    return Image(width: width, height: height, channels: c, pixels: bytes)
  }

  /// `[channels, height, width]`, the order of the `pixels` layout.
  public var shape: [Int] { [channels, height, width] }

  /// `"3×32×32"` (C×H×W), the way sizes appear in error messages.
  public var sizeDescription: String { "\(channels)×\(height)×\(width)" }

  /// The sample of `channel` at row `y`, column `x` (only the flat index is checked).
  @inlinable
  public subscript(channel: Int, y: Int, x: Int) -> Float {
    get { pixels[(channel * height + y) * width + x] }
    set { pixels[(channel * height + y) * width + x] = newValue }
  }
}

/// One augmentation step: an image in, an image out, every random choice drawn from the
/// generator passed in (no hidden state, so a seed reproduces a view exactly).
///
/// Conformers that can be misconfigured validate in their initializer and `throw`
/// `TransformError`; applying a transform never fails and never traps for any image of at
/// least 1×1 (each transform documents what it does with images that are smaller than its
/// output, or that have an unusual number of channels).
public protocol ImageTransform: Sendable {
  func callAsFunction(_ image: FloatImage, using rng: inout RandomGenerator) -> FloatImage
}

/// A transform built with invalid settings, or a batch of images that cannot be stacked.
/// The description names the transform and the problem, e.g.
/// `RandomResizedCrop: scale must satisfy 0 < lower ≤ upper, got 0.5...0.2`.
public struct TransformError: Error, CustomStringConvertible, Equatable, Sendable {
  /// The transform or function that refused (`"GaussianBlur"`, `"makeBatch"`, …).
  public let transform: String
  public let message: String
  public init(_ transform: String, _ message: String) {
    self.transform = transform
    self.message = message
  }
  public var description: String { "\(transform): \(message)" }
}

/// Throws unless `p` is a probability.
func checkProbability(_ p: Float, _ transform: String) throws {
  guard p >= 0 && p <= 1 else {
    throw TransformError(transform, "probability p must be in [0, 1], got \(p)")
  }
}

/// Throws unless `size` is a positive output dimension.
func checkPositive(_ value: Int, _ name: String, _ transform: String) throws {
  guard value > 0 else { throw TransformError(transform, "\(name) must be positive, got \(value)") }
}
