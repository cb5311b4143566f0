// How any supported image file (PNG, JPEG) is turned into an 8-bit `Image`: one set of
// options for every format, so a dataset's decode settings do not depend on what its
// files are.

/// How to turn an image file into an 8-bit `Image`.
public struct ImageDecodeOptions: Sendable, Hashable {
  public enum Channels: Sendable, Hashable {
    /// 1 channel. Colour sources are reduced with BT.601 luma weights
    /// (0.299 R + 0.587 G + 0.114 B, rounded, on the stored bytes; a JPEG's stored luma Y
    /// is that sum, computed by its encoder).
    case gray
    /// 3 channels. Gray sources are replicated into R, G and B.
    case rgb
    /// 1 channel for gray and gray+alpha sources, 3 for everything else.
    case natural
  }

  /// A colour to composite transparent pixels over (sRGB bytes, as stored).
  public struct Background: Sendable, Hashable {
    public var red: UInt8
    public var green: UInt8
    public var blue: UInt8

    public init(red: UInt8, green: UInt8, blue: UInt8) {
      self.red = red
      self.green = green
      self.blue = blue
    }

    public init(gray: UInt8) { self.init(red: gray, green: gray, blue: gray) }

    public static let black = Background(gray: 0)
    public static let white = Background(gray: 255)
  }

  /// 64 Mi pixels: an 8192×8192 RGB image is 192 MiB decoded. Anything larger in a
  /// training set is far more likely a decompression bomb than a sample.
  public static let defaultMaxPixels = 64 * 1024 * 1024

  public var channels: Channels
  /// nil: alpha (an alpha channel or tRNS transparency) is dropped and colours come out
  /// as stored, even under fully transparent pixels. Otherwise every pixel is composited
  /// over this colour: `out = round((c * a + bg * (255 - a)) / 255)` per channel, on 8-bit
  /// values, without gamma (the luma of the background is used for gray output).
  /// JPEG has no alpha; it ignores this.
  public var background: Background?
  /// Images with `width * height > maxPixels` (the stored size, before any reduction) are
  /// refused from their header, before any pixel memory is allocated or any data is
  /// decompressed. Must be positive.
  public var maxPixels: Int
  /// The shorter side images come out with at most (`data.decode_size`): a larger
  /// image is reduced, keeping its aspect ratio (`Image.reducedSize`), with antialiased
  /// bilinear filtering as PIL does. A JPEG is first decoded at the largest DCT reduction
  /// (1/2, 1/4 or 1/8 per side; it skips most of the inverse DCT, upsampling and colour
  /// conversion) whose shorter side is still at least this size, then resized.
  /// Smaller images are never enlarged. nil: full size.
  public var shorterSide: Int?

  public init(
    channels: Channels = .natural, background: Background? = nil,
    maxPixels: Int = ImageDecodeOptions.defaultMaxPixels, shorterSide: Int? = nil
  ) {
    self.channels = channels
    self.background = background
    self.maxPixels = maxPixels
    self.shorterSide = shorterSide
  }

  /// Why a file of `width`×`height` stored pixels must not be decoded under these
  /// options (nil when it may), for the formats' own error types.
  func pixelBudgetProblem(width: Int, height: Int) -> String? {
    guard maxPixels > 0 else { return "maxPixels must be positive, got \(maxPixels)" }
    // Sides come from 32-bit header fields, so the product cannot overflow Int.
    guard width * height > maxPixels else { return nil }
    return "\(width)×\(height) pixels exceeds the limit of \(maxPixels) pixels (raise maxPixels to read it)"
  }
}
