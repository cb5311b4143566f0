import Support

// The one reader above the image formats: folders, the loader, probe, embed and data
// check call `ImageFile` and never ask which format a file is. A file's format is decided
// by its first bytes (the PNG signature, the JPEG start-of-image marker), not by its
// name, so a PNG named `.jpg` or a JPEG named `.png` is read for what it is. Names only
// decide which files a folder lists as images (`ImageFormat.fileExtensions`).

/// An image file format Pretext reads.
public enum ImageFormat: String, Sendable, Hashable, CaseIterable {
  case png = "PNG"
  case jpeg = "JPEG"

  /// The file name extensions listed as images, lowercase (matched case-insensitively:
  /// `.JPG` is a JPEG name). The only list of supported extensions.
  public static let fileExtensions: [String: ImageFormat] = ["png": .png, "jpg": .jpeg, "jpeg": .jpeg]

  /// The formats for messages: `PNG or JPEG`.
  public static let names = allCases.map(\.rawValue).joined(separator: " or ")

  /// The extensions for messages: `.jpeg, .jpg or .png`.
  public static let extensionNames: String = {
    let all = fileExtensions.keys.sorted().map { "." + $0 }
    return all.dropLast().joined(separator: ", ") + " or " + all.last!
  }()

  /// The format a file name claims (by its extension), or nil for other names.
  public static func named(_ path: String) -> ImageFormat? {
    guard let dot = path.lastIndex(of: "."), !path[dot...].contains("/") else { return nil }
    return fileExtensions[path[path.index(after: dot)...].lowercased()]
  }

  /// The format `bytes` (the start of a file) are in, or nil when they are neither.
  /// A short prefix of a signature counts (so a cut-off file gets its format's
  /// "truncated" message), and so does a PNG signature whose line-ending bytes were
  /// damaged by a text-mode transfer (PNG then explains that).
  public static func detect(_ bytes: some Collection<UInt8>) -> ImageFormat? {
    let pngStart: [UInt8] = [0x89, 0x50, 0x4E, 0x47]  // \x89 P N G
    let jpegStart: [UInt8] = [0xFF, 0xD8]  // start of image; the next marker's FF follows
    if !bytes.isEmpty && bytes.prefix(pngStart.count).elementsEqual(pngStart.prefix(bytes.count)) { return .png }
    if !bytes.isEmpty && bytes.prefix(jpegStart.count).elementsEqual(jpegStart.prefix(bytes.count)) { return .jpeg }
    return nil
  }
}

/// What an image file declares in its header, whatever its format.
public struct ImageHeader: Sendable, Hashable {
  public let format: ImageFormat
  /// The size it decodes to at full scale, upright (a JPEG's EXIF orientation applied).
  public let width: Int
  public let height: Int
  /// The stored format: PNG's colour type and depth (`gray`, `RGBA 16-bit`, `palette`)
  /// or JPEG's colours and subsampling (`JPEG 4:2:0`, `JPEG gray progressive`).
  public let formatName: String
  /// Channels `ImageDecodeOptions.Channels.natural` decodes to.
  public let naturalChannels: Int

  public init(_ png: PNGHeader) {
    format = .png
    width = png.width
    height = png.height
    formatName = png.formatName
    naturalChannels = png.naturalChannels
  }

  public init(_ jpeg: JPEGHeader) {
    format = .jpeg
    width = jpeg.width
    height = jpeg.height
    formatName = jpeg.formatName
    naturalChannels = jpeg.naturalChannels
  }
}

extension ImageHeader {
  /// The shape `ImageFile.read` returns for this file under `options`: the channels they
  /// ask for and the size `shorterSide` reduces it to. Known from the header alone.
  public func decodedShape(_ options: ImageDecodeOptions) -> (width: Int, height: Int, channels: Int) {
    let size = options.shorterSide.map { Image.reducedSize(width: width, height: height, shorterSide: $0) }
    let channels: Int
    switch options.channels {
    case .gray: channels = 1
    case .rgb: channels = 3
    case .natural: channels = naturalChannels
    }
    return (size?.width ?? width, size?.height ?? height, channels)
  }
}

/// What the folder scan's header check learned about one image file: its decoded shape
/// (under the folder's decode options), and its size and modification time, which tell
/// a decoded-image cache when the file has changed.
public struct ImageFileInfo: Sendable, Hashable {
  public let width: Int
  public let height: Int
  public let channels: Int
  /// File size in bytes.
  public let byteCount: Int
  /// Modification time, nanoseconds since 1970.
  public let modified: Int64

  public init(width: Int, height: Int, channels: Int, byteCount: Int, modified: Int64) {
    self.width = width
    self.height = height
    self.channels = channels
    self.byteCount = byteCount
    self.modified = modified
  }

  /// Samples of the decoded image: width · height · channels.
  public var sampleCount: Int { width * height * channels }
}

/// Reading any supported image file. Stateless and thread-safe.
public enum ImageFile {
  /// The header of an image held in memory (`bytes` may be a prefix of the file).
  public static func header(of bytes: [UInt8], path: String? = nil) throws -> ImageHeader {
    switch try format(of: bytes, path: path) {
    case .png: return ImageHeader(try PNG.header(of: bytes, path: path))
    case .jpeg: return ImageHeader(try JPEG.header(of: bytes, path: path))
    }
  }

  /// The header of the file at `path`, reading only its start (33 bytes for a PNG, the
  /// markers up to the first scan for a JPEG).
  public static func header(path: String) throws -> ImageHeader {
    switch try format(of: readFile(path, limit: signatureBytes), path: path) {
    case .png: return ImageHeader(try PNG.header(path: path))
    case .jpeg: return ImageHeader(try JPEG.header(path: path))
    }
  }

  /// Decodes an image held in memory; see `PNG.decode` and `JPEG.decode`.
  /// - Throws: `VisionError`.
  public static func decode(
    _ bytes: [UInt8], options: ImageDecodeOptions = ImageDecodeOptions(), path: String? = nil
  ) throws -> Image {
    switch try format(of: bytes, path: path) {
    case .png: return try PNG.decode(bytes, options: options, path: path)
    case .jpeg: return try JPEG.decode(bytes, options: options, path: path)
    }
  }

  /// Reads and decodes the file at `path`. An oversized image is refused from its
  /// header, before the whole file is read.
  /// - Throws: `VisionError`.
  public static func read(path: String, options: ImageDecodeOptions = ImageDecodeOptions()) throws -> Image {
    switch try format(of: readFile(path, limit: signatureBytes), path: path) {
    case .png: return try PNG.read(path: path, options: options)
    case .jpeg: return try JPEG.read(path: path, options: options)
    }
  }

  /// The whole file, or its first `limit` bytes (devices and pipes accepted); a failure
  /// is an `.io` error naming the file. The module's one file reader: the text files
  /// beside the images (CSV labels, image lists, import manifests) are read with it too.
  static func readFile(_ path: String, limit: Int = .max) throws -> [UInt8] {
    do {
      return try readFileBytes(path, limit: limit, regularOnly: false)
    } catch {
      throw VisionError(kind: .io, path: path, reason: error.description)
    }
  }

  /// Enough of a file's start to tell the formats apart.
  static let signatureBytes = 8

  /// The format of `bytes`; for neither, a `.notJPEG` error when the name claims JPEG,
  /// else `.notPNG`.
  static func format(of bytes: [UInt8], path: String?) throws -> ImageFormat {
    if let format = ImageFormat.detect(bytes) { return format }
    let reason: String
    if bytes.isEmpty {
      reason = "empty file (0 bytes)"
    } else {
      let start = bytes.prefix(4).map { hex($0) }.joined(separator: " ")
      reason =
        "not a \(ImageFormat.names) file (bad signature: it starts with \(start), neither the PNG signature "
        + "89 50 4E 47 nor the JPEG start of image FF D8)"
    }
    let kind: VisionError.Kind = path.flatMap(ImageFormat.named) == .jpeg ? .notJPEG : .notPNG
    throw VisionError(kind: kind, path: path, reason: reason)
  }

  static func hex(_ byte: UInt8) -> String {
    let digits = Array("0123456789ABCDEF")
    return String([digits[Int(byte >> 4)], digits[Int(byte & 15)]])
  }
}
