/// An 8-bit image held in memory.
///
/// Layout: `pixels` is row-major and channel-interleaved (HWC): the sample of channel `c`
/// at column `x`, row `y` is `pixels[(y * width + x) * channels + c]`, rows tightly packed
/// (no padding), so `pixels.count == width * height * channels`. Channel meaning by count:
/// 1 = gray, 3 = RGB (sRGB-encoded bytes as stored in the file; no gamma is applied).
/// 2 (gray+alpha) and 4 (RGBA) are accepted by the PNG encoder; the decoders never
/// produce them (alpha is dropped or composited at decode time; JPEG has none).
///
/// A value type: copies share storage until one of them is mutated (copy-on-write), so
/// images can be passed between threads freely.
public struct Image: Sendable, Hashable {
  public let width: Int
  public let height: Int
  public let channels: Int
  /// `width * height * channels` samples, HWC. Mutate in place freely, but keep the count;
  /// the encoder rejects an image whose count no longer matches its shape.
  public var pixels: [UInt8]

  /// Wraps existing samples; `pixels.count` must equal `width * height * channels`.
  public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) {
    precondition(width > 0 && height > 0, "Image: width and height must be positive")
    precondition((1...4).contains(channels), "Image: channels must be 1...4, got \(channels)")
    precondition(
      pixels.count == width * height * channels,
      "Image: \(pixels.count) samples do not fill \(width)×\(height)×\(channels)")
    self.width = width
    self.height = height
    self.channels = channels
    self.pixels = pixels
  }

  /// An image with every sample set to `value`.
  public init(width: Int, height: Int, channels: Int, filledWith value: UInt8 = 0) {
    precondition(width > 0 && height > 0, "Image: width and height must be positive")
    self.init(
      width: width, height: height, channels: channels,
      pixels: [UInt8](repeating: value, count: width * height * channels))
  }

  /// The sample of `channel` at column `x`, row `y`. Only the flat index is bounds-checked
  /// (by the array), not `x` and `channel` individually, to keep pixel loops cheap.
  @inlinable
  public subscript(x: Int, y: Int, channel: Int = 0) -> UInt8 {
    get { pixels[(y * width + x) * channels + channel] }
    set { pixels[(y * width + x) * channels + channel] = newValue }
  }

  /// The shape as `[height, width, channels]`, the order of the `pixels` layout.
  public var shape: [Int] { [height, width, channels] }
}
