import Autograd

// Unlabeled datasets backed by a folder of image files (PNG or JPEG, read through
// `ImageFile`): every image under the folder, flat or nested at any depth, or every image
// a `.txt` list names (ImageList.swift). Also what every folder dataset shares: its
// options and the record of a file left out. The labeled kind is LabeledImageFolder.swift.
//
// Files are listed as images by name (`ImageFormat.fileExtensions`) and read by content.
// Scanning (DirectoryWalk.swift) checks each image's header (HeaderCheck.swift: a PNG's
// 33-byte signature + IHDR, a JPEG's markers up to its first scan; cheap, done on all
// cores); pixels are only decoded when a sample is read, so opening a folder of 100k
// images takes about a second. Files that fail the header check are reported once, in
// `rejected`, and left out (or, with `strict`, make the constructor throw).
//
// Order: samples are sorted by their path relative to the root, comparing UTF-8 bytes,
// so the same folder gives the same indices on every machine and file system.

/// A file that was left out of a dataset, and why. `path` is relative to the dataset
/// root (absolute when a CSV named an absolute path).
public struct DatasetIssue: Sendable, Hashable, Codable {
  public let path: String
  public let reason: String

  public init(path: String, reason: String) {
    self.path = path
    self.reason = reason
  }
}

/// How to open an image folder.
public struct ImageFolderOptions: Sendable, Hashable {
  /// Throw when any image file is unreadable or fails the header check, instead of
  /// leaving it out and listing it in `rejected`.
  public var strict: Bool
  /// Check each image's header while scanning (a PNG's first 33 bytes, a JPEG's markers
  /// before its scan). Off, every file named like an image is listed and problems only
  /// show when a sample is decoded.
  public var checkHeaders: Bool
  /// How `loadImage(at:)` decodes (the `ImageSource` entry point used by loaders).
  public var decode: ImageDecodeOptions
  /// Threads for the header check (default: Pretext's thread count).
  public var threads: Int

  public init(
    strict: Bool = false, checkHeaders: Bool = true, decode: ImageDecodeOptions = ImageDecodeOptions(),
    threads: Int = Parallel.threads
  ) {
    self.strict = strict
    self.checkHeaders = checkHeaders
    self.decode = decode
    self.threads = threads
  }
}

/// Unlabeled images: every PNG or JPEG file under a folder, at any depth, or every image
/// a `.txt` list names (see ImageList.swift).
public struct ImageFolder: Sendable, ImageSource {
  /// The folder as given (trailing slashes removed), or the list's folder.
  public let root: String
  /// The image list the samples come from, when the path named one.
  public let list: String?
  /// The samples' paths relative to `root`, sorted byte-wise.
  public let files: [String]
  /// Per sample (parallel to `files`): the shape it decodes to under `options.decode`,
  /// its file size and modification time, from the header check (nil when it is off).
  public let infos: [ImageFileInfo]?
  /// Files that are not images by name (relative paths, sorted), e.g. `README.txt`.
  public let skipped: [String]
  /// Unusable image files and unreadable folders, with the reason (sorted by path).
  public let rejected: [DatasetIssue]
  /// Images by size and stored format (`"28×28 gray": 60000`), from the header check
  /// (empty when it is off).
  public let formats: [String: Int]
  public let options: ImageFolderOptions

  /// Scans `path` recursively.
  ///
  /// - Throws: `VisionError` when the folder is missing, not a folder, unreadable, or
  ///   holds no usable image file; in strict mode also when any file is rejected.
  public init(path: String, options: ImageFolderOptions = ImageFolderOptions()) throws {
    let opened = try FolderScan.open(path)
    let root = opened.root
    var scan = opened.scan
    if options.checkHeaders { scan.checkHeaders(root: root, threads: options.threads, decode: options.decode) }
    try scan.enforce(strict: options.strict, root: opened.list ?? root)
    guard !scan.images.isEmpty else { throw scan.emptyError(root: opened.list ?? root) }
    self.root = root
    self.list = opened.list
    self.files = scan.images
    self.infos = scan.infos
    self.skipped = scan.skipped
    self.rejected = scan.issues
    self.formats = scan.formats
    self.options = options
  }

  public var count: Int { files.count }

  /// The path of sample `index` (root + relative path).
  public func path(at index: Int) -> String { FolderScan.join(root, files[index]) }

  /// Decodes sample `index`.
  ///
  /// - Throws: `VisionError` naming the file and why it cannot be decoded.
  public func image(at index: Int, options decode: ImageDecodeOptions) throws -> Image {
    try FolderScan.readImage(path(at: index), root: root, options: decode)
  }

  /// What the scan found, to print once when a run starts: the image count, then the
  /// skipped and rejected files (each rejected one with its reason).
  public var summary: String {
    FolderScan.summary(
      root: list ?? root, count: count, classes: nil, skipped: skipped, rejected: rejected, formats: formats)
  }

  // ImageSource
  public func name(of index: Int) -> String { path(at: index) }
  public func loadImage(at index: Int) throws -> Image { try image(at: index, options: options.decode) }
  public var isStrict: Bool { options.strict }
}
