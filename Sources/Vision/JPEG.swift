import Autograd
import CJPEG
import Foundation

// JPEG reading on top of libjpeg-turbo (through the CJPEG shim, which keeps libjpeg's
// longjmp error handling entirely inside C). Decoding yields 8-bit gray or RGB `Image`s,
// upright (the EXIF orientation applied), like PNG.swift does for PNG files.

/// What a JPEG declares before its scan data: the frame header (SOF), the EXIF orientation
/// and the markers that decide its colours.
public struct JPEGHeader: Sendable, Hashable {
  public enum ColorSpace: Sendable, Hashable {
    case gray, ycbcr, rgb, cmyk, ycck, other
  }

  /// The stored size (SOF), before the orientation is applied.
  public let storedWidth: Int
  public let storedHeight: Int
  /// Number of components: 1 (gray), 3 (YCbCr or RGB), 4 (CMYK or YCCK).
  public let components: Int
  public let colorSpace: ColorSpace
  public let isProgressive: Bool
  /// EXIF orientation 1…8 (1: upright or no EXIF); 5…8 swap width and height.
  public let orientation: Int
  /// An Adobe APP14 marker is present: CMYK values are stored inverted.
  public let hasAdobeMarker: Bool
  /// Horizontal and vertical sampling factors of a component (1…4 each).
  public struct Sampling: Sendable, Hashable {
    public let h: Int
    public let v: Int
  }

  /// Sampling factors per component (of the first four).
  public let sampling: [Sampling]

  /// The size the image decodes to at full scale, upright.
  public var width: Int { orientation >= 5 ? storedHeight : storedWidth }
  public var height: Int { orientation >= 5 ? storedWidth : storedHeight }
  /// The channel count `ImageDecodeOptions.Channels.natural` decodes to.
  public var naturalChannels: Int { colorSpace == .gray ? 1 : 3 }

  /// The chroma subsampling of a colour file in J:a:b notation (`4:2:0`), or the factors
  /// (`2x2,1x1,1x1`) when it has no common name; nil for gray files.
  public var subsampling: String? {
    guard components >= 3, colorSpace != .gray else { return nil }
    let luma = sampling[0]
    let chroma = sampling[1]
    if sampling.dropFirst().allSatisfy({ $0 == chroma }), chroma.h > 0, chroma.v > 0,
      luma.h % chroma.h == 0, luma.v % chroma.v == 0
    {
      switch (luma.h / chroma.h, luma.v / chroma.v) {
      case (1, 1): return "4:4:4"
      case (2, 1): return "4:2:2"
      case (2, 2): return "4:2:0"
      case (1, 2): return "4:4:0"
      case (4, 1): return "4:1:1"
      case (4, 2): return "4:1:0"
      default: break
      }
    }
    return sampling.map { "\($0.h)x\($0.v)" }.joined(separator: ",")
  }

  /// The stored format, as data check and the folder summary name it: `JPEG 4:2:0`,
  /// `JPEG gray progressive`, `JPEG CMYK`.
  public var formatName: String {
    var parts = ["JPEG"]
    switch colorSpace {
    case .gray: parts.append("gray")
    case .ycbcr: parts.append(subsampling ?? "YCbCr")
    case .rgb: parts.append("RGB")
    case .cmyk: parts.append("CMYK")
    case .ycck: parts.append("YCCK")
    case .other: parts.append("\(components) components")
    }
    if isProgressive { parts.append("progressive") }
    return parts.joined(separator: " ")
  }
}

/// JPEG decoding. Stateless and thread-safe: every call uses its own libjpeg state.
public enum JPEG {
  /// Reads the markers before the first scan (`data` may be a prefix of the file that
  /// reaches it). `path` only names the source in errors.
  public static func header(of data: some ContiguousBytes, path: String? = nil) throws -> JPEGHeader {
    try data.withUnsafeBytes { try readHeader($0, path: path).header }
  }

  /// Reads the header of the file at `path` from its first 4 KiB, or 64 KiB (an EXIF
  /// segment with a thumbnail), or the whole file, whichever first reaches the scan: the
  /// markers before it are usually a few hundred bytes, and a folder scan reads every
  /// file's header.
  public static func header(path: String) throws -> JPEGHeader {
    for limit in headerPrefixes {
      let prefix = try ImageFile.readFile(path, limit: limit)
      do {
        return try header(of: prefix, path: path)
      } catch let error as VisionError where error.kind == .truncated && prefix.count == limit {
        continue  // the file goes on: read more of it
      }
    }
    return try header(of: ImageFile.readFile(path), path: path)
  }

  /// The DCT reduction (1, 2, 4 or 8) to decode a `width`×`height` file at: the largest
  /// whose shorter side, `ceil(side / d)`, is still at least `minimumShorterSide`.
  public static func scaleDenominator(width: Int, height: Int, minimumShorterSide: Int?) -> Int {
    guard let minimum = minimumShorterSide else { return 1 }
    let shorter = min(width, height)
    return [8, 4, 2].first { (shorter + $0 - 1) / $0 >= minimum } ?? 1
  }

  /// Decodes a complete JPEG held in memory.
  ///
  /// - Returns: an 8-bit image of `options.channels` channels, upright (EXIF orientation
  ///   applied), its shorter side reduced to `options.shorterSide` (DCT scaling to the
  ///   largest reduction still at least that size, see `scaleDenominator`, then an
  ///   antialiased resize); CMYK files come out as RGB.
  /// - Throws: `VisionError`, whose description starts with `path` when one is given.
  public static func decode(
    _ data: some ContiguousBytes, options: ImageDecodeOptions = ImageDecodeOptions(), path: String? = nil
  ) throws -> Image {
    try data.withUnsafeBytes { try decodeBytes($0, options: options, path: path) }
  }

  /// Reads and decodes the JPEG file at `path`; see `decode(_:options:path:)`. An
  /// oversized image is refused from its header, before the whole file is read.
  public static func read(path: String, options: ImageDecodeOptions = ImageDecodeOptions()) throws -> Image {
    let head = try header(path: path)
    try checkSize(head, options: options, path: path)
    return try decode(ImageFile.readFile(path), options: options, path: path)
  }
}

// MARK: - Implementation

extension JPEG {
  /// The prefixes `header(path:)` tries before reading the whole file.
  static let headerPrefixes = [4 * 1024, 64 * 1024]

  static func readHeader(_ raw: UnsafeRawBufferPointer, path: String?) throws
    -> (header: JPEGHeader, c: cjpeg_header)
  {
    var c = cjpeg_header()
    var message = [CChar](repeating: 0, count: Int(CJPEG_MESSAGE_CAPACITY))
    let status = cjpeg_read_header(
      raw.baseAddress?.assumingMemoryBound(to: UInt8.self), raw.count, &c, &message, message.count)
    guard status == CJPEG_OK else { throw error(status, message, path: path) }
    return (header(c), c)
  }

  static func header(_ c: cjpeg_header) -> JPEGHeader {
    let colorSpace: JPEGHeader.ColorSpace
    switch c.color_space {
    case CJPEG_COLOR_GRAY: colorSpace = .gray
    case CJPEG_COLOR_YCBCR: colorSpace = .ycbcr
    case CJPEG_COLOR_RGB: colorSpace = .rgb
    case CJPEG_COLOR_CMYK: colorSpace = .cmyk
    case CJPEG_COLOR_YCCK: colorSpace = .ycck
    default: colorSpace = .other
    }
    let h = [c.h_sampling.0, c.h_sampling.1, c.h_sampling.2, c.h_sampling.3]
    let v = [c.v_sampling.0, c.v_sampling.1, c.v_sampling.2, c.v_sampling.3]
    let count = min(Int(c.components), 4)
    return JPEGHeader(
      storedWidth: Int(c.width), storedHeight: Int(c.height), components: Int(c.components),
      colorSpace: colorSpace, isProgressive: c.progressive != 0, orientation: Int(c.orientation),
      hasAdobeMarker: c.adobe != 0, sampling: (0..<count).map { JPEGHeader.Sampling(h: Int(h[$0]), v: Int(v[$0])) })
  }

  static func checkSize(_ header: JPEGHeader, options: ImageDecodeOptions, path: String?) throws {
    if let reason = options.pixelBudgetProblem(width: header.storedWidth, height: header.storedHeight) {
      throw VisionError(kind: options.maxPixels > 0 ? .tooLarge : .invalidArgument, path: path, reason: reason)
    }
  }

  static func decodeBytes(_ raw: UnsafeRawBufferPointer, options: ImageDecodeOptions, path: String?) throws
    -> Image
  {
    // Header first: the size check, the scale and the output allocation depend on it.
    let (header, storedHeader) = try readHeader(raw, path: path)
    var cHeader = storedHeader
    try checkSize(header, options: options, path: path)
    var cOptions = cjpeg_decode_options()
    switch options.channels {
    case .gray: cOptions.channels = 1
    case .rgb: cOptions.channels = 3
    case .natural: cOptions.channels = 0
    }
    cOptions.scale_denom = Int32(
      scaleDenominator(
        width: header.storedWidth, height: header.storedHeight, minimumShorterSide: options.shorterSide))
    cOptions.max_pixels = UInt64(options.maxPixels)
    var width: UInt32 = 0
    var height: UInt32 = 0
    var channels: Int32 = 0
    guard cjpeg_output_shape(&cHeader, &cOptions, &width, &height, &channels) != 0 else {
      throw VisionError(kind: .invalidArgument, path: path, reason: "invalid decode options \(options)")
    }
    // At most 65535² × 3 samples: no overflow.
    let count = Int(width) * Int(height) * Int(channels)
    var message = [CChar](repeating: 0, count: Int(CJPEG_MESSAGE_CAPACITY))
    var status = CJPEG_OK
    let pixels = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
      status = cjpeg_decode(
        raw.baseAddress?.assumingMemoryBound(to: UInt8.self), raw.count, &cOptions, buffer.baseAddress, count,
        &cHeader, &message, message.count)
      initialized = status == CJPEG_OK ? count : 0
    }
    guard status == CJPEG_OK else { throw error(status, message, path: path) }
    let image = Image(width: Int(width), height: Int(height), channels: Int(channels), pixels: pixels)
    guard let side = options.shorterSide else { return image }
    // The final size follows from the full-scale size, not the DCT-reduced one (whose
    // sides are rounded up), so it is known from the header alone, as a PNG's is.
    let target = Image.reducedSize(width: header.width, height: header.height, shorterSide: side)
    return image.resized(width: target.width, height: target.height)
  }

  static func error(_ status: cjpeg_status, _ message: [CChar], path: String?) -> VisionError {
    let kind: VisionError.Kind
    switch status {
    case CJPEG_ERR_NOT_JPEG: kind = .notJPEG
    case CJPEG_ERR_TRUNCATED: kind = .truncated
    case CJPEG_ERR_TOO_LARGE: kind = .tooLarge
    case CJPEG_ERR_ARGUMENT: kind = .invalidArgument
    case CJPEG_ERR_NO_MEMORY: kind = .outOfMemory
    case CJPEG_ERR_UNSUPPORTED: kind = .unsupported
    default: kind = .corrupt
    }
    let bytes = message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
    let reason = bytes.isEmpty ? "libjpeg failed (status \(status.rawValue))" : String(decoding: bytes, as: UTF8.self)
    return VisionError(kind: kind, path: path, reason: reason)
  }
}
