import Autograd
import CPNG
import Foundation
import Support

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

// PNG reading and writing on top of libpng (through the CPNG shim, which keeps libpng's
// longjmp error handling entirely inside C). Decoding always yields 8-bit gray or RGB
// `Image`s, the two formats the training pipeline consumes.

/// The IHDR of a PNG: what the file claims before any pixel is decompressed.
public struct PNGHeader: Sendable, Hashable {
  /// PNG colour types (IHDR values).
  public enum ColorType: Int32, Sendable, Hashable {
    case gray = 0, rgb = 2, palette = 3, grayAlpha = 4, rgba = 6
  }

  public let width: Int
  public let height: Int
  /// Bits per sample as stored (1, 2, 4, 8, 16; palette index bits for `.palette`).
  public let bitDepth: Int
  public let colorType: ColorType
  /// Adam7 interlacing.
  public let isInterlaced: Bool

  public var pixelCount: Int { width * height }
  /// The channel count `ImageDecodeOptions.Channels.natural` decodes to: 1 for gray and
  /// gray+alpha, 3 for RGB, RGBA and palette images.
  public var naturalChannels: Int { colorType == .gray || colorType == .grayAlpha ? 1 : 3 }
  /// Whether the colour type carries an alpha channel. A tRNS chunk (transparency for
  /// gray, RGB or palette images) is not visible in the IHDR and is not reflected here.
  public var hasAlphaChannel: Bool { colorType == .grayAlpha || colorType == .rgba }

  /// The stored format: `gray`, `gray+alpha`, `RGB`, `RGBA` or `palette`, with the bit
  /// depth appended when it is not 8 (`gray 16-bit`).
  public var formatName: String {
    let base: String
    switch colorType {
    case .gray: base = "gray"
    case .grayAlpha: base = "gray+alpha"
    case .rgb: base = "RGB"
    case .rgba: base = "RGBA"
    case .palette: base = "palette"
    }
    return bitDepth == 8 || colorType == .palette ? base : "\(base) \(bitDepth)-bit"
  }
}

/// PNG decoding and encoding. Stateless and thread-safe: every call uses its own libpng
/// state, so a data loader may decode on many threads at once.
public enum PNG {
  /// Reads the IHDR only (the first 33 bytes of `data`; the rest need not be present).
  /// `path` only names the source in errors.
  public static func header(of data: some ContiguousBytes, path: String? = nil) throws
    -> PNGHeader
  {
    try data.withUnsafeBytes { try readHeader($0, path: path).header }
  }

  /// Reads the IHDR of the file at `path`, reading just its first 33 bytes.
  public static func header(path: String) throws -> PNGHeader {
    let prefix = try ImageFile.readFile(path, limit: headerBytes)
    return try header(of: prefix, path: path)
  }

  /// Decodes a complete PNG held in memory (`[UInt8]`, `Data`, ...).
  ///
  /// - Returns: an 8-bit image of `options.channels` channels (see `ImageDecodeOptions`),
  ///   `pixels` HWC with `width * height * channels` samples. 16-bit samples are rounded
  ///   to 8 bits (`v * 255 / 65535`); palettes are expanded; gamma is not applied.
  /// - Throws: `VisionError`, whose description starts with `path` when one is given.
  public static func decode(
    _ data: some ContiguousBytes, options: ImageDecodeOptions = ImageDecodeOptions(),
    path: String? = nil
  ) throws -> Image {
    try data.withUnsafeBytes { try decodeBytes($0, options: options, path: path) }
  }

  /// Reads and decodes the PNG file at `path`; see `decode(_:options:path:)`.
  public static func read(path: String, options: ImageDecodeOptions = ImageDecodeOptions())
    throws -> Image
  {
    // Refuse oversized images from the first 33 bytes, before reading a possibly huge
    // file into memory.
    let prefix = try ImageFile.readFile(path, limit: headerBytes)
    let head = try header(of: prefix, path: path)
    try checkSize(head, options: options, path: path)
    return try decode(ImageFile.readFile(path), options: options, path: path)
  }

  /// Encodes an 8-bit image (1, 2, 3 or 4 channels: gray, gray+alpha, RGB, RGBA) as a
  /// non-interlaced PNG. `compressionLevel` is zlib's 0 (store) ... 9 (smallest).
  public static func encode(_ image: Image, compressionLevel: Int = 6) throws -> [UInt8] {
    guard image.pixels.count == image.width * image.height * image.channels else {
      throw VisionError(
        kind: .invalidArgument, path: nil,
        reason: "image has \(image.pixels.count) samples, its shape "
          + "\(image.width)×\(image.height)×\(image.channels) needs "
          + "\(image.width * image.height * image.channels)")
    }
    guard image.width <= Int(Int32.max), image.height <= Int(Int32.max) else {
      throw VisionError(
        kind: .invalidArgument, path: nil,
        reason: "\(image.width)×\(image.height) is larger than PNG allows (2^31-1 per side)")
    }
    guard (0...9).contains(compressionLevel) else {
      throw VisionError(
        kind: .invalidArgument, path: nil,
        reason: "compression level \(compressionLevel) is not in 0...9")
    }
    var message = [CChar](repeating: 0, count: Int(CPNG_MESSAGE_CAPACITY))
    var output: UnsafeMutablePointer<UInt8>? = nil
    var size = 0
    let status = image.pixels.withUnsafeBufferPointer { pixels in
      cpng_encode(
        pixels.baseAddress, UInt32(image.width), UInt32(image.height), Int32(image.channels),
        Int32(compressionLevel), &output, &size, &message, message.count)
    }
    defer { cpng_free(output) }
    guard status == CPNG_OK, let output else {
      throw error(status, message, path: nil)
    }
    return Array(UnsafeBufferPointer(start: output, count: size))
  }

  /// Encodes `image` (see `encode`) and writes it to `path` atomically: the bytes go to a
  /// temporary file in the same directory, which is then renamed over `path`, so readers
  /// (e.g. a concurrent data loader) see either the old file or the complete new one.
  /// The file is not fsync'ed: atomicity against concurrent readers, not power loss.
  public static func write(_ image: Image, to path: String, compressionLevel: Int = 6) throws {
    let bytes = try encode(image, compressionLevel: compressionLevel)
    try writeAtomically(bytes, to: path)
  }
}

// MARK: - Implementation

extension PNG {
  /// Signature (8) + IHDR chunk (4 length + 4 type + 13 data + 4 CRC).
  static let headerBytes = 33

  static func readHeader(_ raw: UnsafeRawBufferPointer, path: String?) throws
    -> (header: PNGHeader, c: cpng_header)
  {
    var c = cpng_header()
    var message = [CChar](repeating: 0, count: Int(CPNG_MESSAGE_CAPACITY))
    let status = cpng_read_header(
      raw.baseAddress?.assumingMemoryBound(to: UInt8.self), raw.count, &c, &message,
      message.count)
    guard status == CPNG_OK else { throw error(status, message, path: path) }
    guard let colorType = PNGHeader.ColorType(rawValue: c.color_type) else {
      // Unreachable: libpng validated the IHDR.
      throw VisionError(kind: .corrupt, path: path, reason: "invalid colour type \(c.color_type)")
    }
    let header = PNGHeader(
      width: Int(c.width), height: Int(c.height), bitDepth: Int(c.bit_depth),
      colorType: colorType, isInterlaced: c.interlace_method != 0)
    return (header, c)
  }

  static func checkSize(_ header: PNGHeader, options: ImageDecodeOptions, path: String?) throws {
    if let reason = options.pixelBudgetProblem(width: header.width, height: header.height) {
      throw VisionError(kind: options.maxPixels > 0 ? .tooLarge : .invalidArgument, path: path, reason: reason)
    }
  }

  static func decodeBytes(
    _ raw: UnsafeRawBufferPointer, options: ImageDecodeOptions, path: String?
  ) throws -> Image {
    // Header first: the size check and the output allocation both depend on it, and a
    // bomb is refused here without libpng inflating a single IDAT byte.
    var (header, cHeader) = try readHeader(raw, path: path)
    try checkSize(header, options: options, path: path)

    var cOptions = cpng_decode_options()
    switch options.channels {
    case .gray: cOptions.channels = 1
    case .rgb: cOptions.channels = 3
    case .natural: cOptions.channels = 0
    }
    if let background = options.background {
      cOptions.composite = 1
      cOptions.background = (background.red, background.green, background.blue)
    }
    cOptions.max_pixels = UInt64(options.maxPixels)
    let channels = Int(cpng_output_channels(&cHeader, cOptions.channels))
    let (count, overflow) = header.pixelCount.multipliedReportingOverflow(by: channels)
    guard !overflow else {
      throw VisionError(
        kind: .tooLarge, path: path,
        reason: "\(header.width)×\(header.height)×\(channels) samples cannot be addressed")
    }

    var message = [CChar](repeating: 0, count: Int(CPNG_MESSAGE_CAPACITY))
    var status = CPNG_OK
    let pixels = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
      status = cpng_decode(
        raw.baseAddress?.assumingMemoryBound(to: UInt8.self), raw.count, &cOptions,
        buffer.baseAddress, count, &cHeader, &message, message.count)
      initialized = status == CPNG_OK ? count : 0
    }
    guard status == CPNG_OK else { throw error(status, message, path: path) }
    let image = Image(width: header.width, height: header.height, channels: channels, pixels: pixels)
    return options.shorterSide.map { image.reduced(toShorterSide: $0) } ?? image
  }

  static func error(_ status: cpng_status, _ message: [CChar], path: String?) -> VisionError {
    let kind: VisionError.Kind
    switch status {
    case CPNG_ERR_NOT_PNG: kind = .notPNG
    case CPNG_ERR_TRUNCATED: kind = .truncated
    case CPNG_ERR_TOO_LARGE: kind = .tooLarge
    case CPNG_ERR_ARGUMENT: kind = .invalidArgument
    case CPNG_ERR_NO_MEMORY: kind = .outOfMemory
    default: kind = .corrupt
    }
    let bytes = message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
    let reason = bytes.isEmpty ? "libpng failed (status \(status.rawValue))" : String(decoding: bytes, as: UTF8.self)
    return VisionError(kind: kind, path: path, reason: reason)
  }

  /// `Support.writeAtomically`, its failure as a Vision I/O error.
  static func writeAtomically(_ bytes: [UInt8], to path: String) throws {
    do {
      try Support.writeAtomically(bytes, to: path)
    } catch {
      throw VisionError(kind: .io, path: path, reason: error.reason)
    }
  }
}
