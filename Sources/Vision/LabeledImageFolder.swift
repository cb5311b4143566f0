#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

// Labeled datasets backed by image files: either one subfolder per class (the common
// "ImageFolder" convention: root/<class>/**/*.png or *.jpg, classes in sorted order), a
// `.txt` image list whose paths start with their class folder, or a CSV of `path,label`
// lines (CSVLabels.swift). Scanning, header checks and ordering are those of
// `ImageFolder` (ImageFolder.swift).

/// Labeled images: class subfolders (`root/<class>/**/*.png`, `*.jpg`) or a CSV of
/// `path,label`.
/// Class indices follow the sorted class names (see the initializers).
public struct LabeledImageFolder: Sendable, ImageSource {
  /// The folder holding the class folders, or the CSV file's or image list's folder.
  public let root: String
  /// The CSV file or image list the samples come from, when the path named one.
  public let list: String?
  /// Class names; `labels` index into it.
  public let classes: [String]
  /// Sample paths relative to `root` (absolute when a CSV gave an absolute path),
  /// sorted byte-wise.
  public let files: [String]
  /// The class index of each sample, parallel to `files`.
  public let labels: [Int]
  /// Files that are not images by name, or images outside any class folder.
  public let skipped: [String]
  /// Unusable files with the reason (sorted by path).
  public let rejected: [DatasetIssue]
  /// Images by size and stored format, as `ImageFolder.formats`.
  public let formats: [String: Int]
  public let options: ImageFolderOptions

  /// Opens the class-folder convention: each non-hidden subfolder of `path` is a class,
  /// named after the folder, and holds that class's images at any depth. Classes are
  /// indexed in byte-wise sorted order of their names (`cat` = 0, `dog` = 1). Images
  /// directly in `path` belong to no class and are listed in `skipped`.
  ///
  /// `path` may also name a CSV of `path,label` lines (`init(csv:options:)`), or a `.txt`
  /// image list whose paths start with their class folder (`cat/1.jpg`).
  ///
  /// - Throws: `VisionError` when the folder is missing, has no class folders, or a
  ///   class folder holds no usable image; in strict mode also when any file is rejected.
  public init(path: String, options: ImageFolderOptions = ImageFolderOptions()) throws {
    if CSVLabels.isCSVName(path) {
      try self.init(csv: path, options: options)
    } else {
      try self.init(classFolders: path, options: options)
    }
  }

  private init(classFolders path: String, options: ImageFolderOptions) throws {
    let opened = try FolderScan.open(path)
    let root = opened.root
    let shown = opened.list ?? root
    var scan = opened.scan
    // Images at the top level have no class folder.
    let loose = scan.images.filter { !$0.utf8.contains(UInt8(ascii: "/")) }
    scan.images.removeAll { !$0.utf8.contains(UInt8(ascii: "/")) }
    scan.skipped = FolderScan.sortedBytewise(scan.skipped + loose)
    if opened.list != nil {
      // A list's classes are the first folders of its paths (absolute paths have none).
      let tops = scan.images.filter { !$0.hasPrefix("/") }.map { String($0.prefix { $0 != "/" }) }
      scan.topLevelFolders = Array(Set(tops))
      scan.skipped = FolderScan.sortedBytewise(scan.skipped + scan.images.filter { $0.hasPrefix("/") })
      scan.images.removeAll { $0.hasPrefix("/") }
    }
    if options.checkHeaders { scan.checkHeaders(root: root, threads: options.threads) }
    try scan.enforce(strict: options.strict, root: shown)
    let classes = FolderScan.sortedBytewise(scan.topLevelFolders)
    guard !classes.isEmpty else {
      throw VisionError(
        kind: .empty, path: shown,
        reason: "no class folders found; expected one subfolder per class, each holding that "
          + "class's \(ImageFormat.names) images (e.g. \(root)/cat/1.png, \(root)/dog/2.jpg)")
    }
    let index = Dictionary(uniqueKeysWithValues: classes.enumerated().map { ($1, $0) })
    var labels: [Int] = []
    labels.reserveCapacity(scan.images.count)
    var counts = [Int](repeating: 0, count: classes.count)
    for file in scan.images {
      let label = index[String(file.prefix { $0 != "/" })]!
      labels.append(label)
      counts[label] += 1
    }
    if let empty = counts.firstIndex(of: 0) {
      throw VisionError(
        kind: .empty, path: FolderScan.join(root, classes[empty]),
        reason: "class folder holds no usable \(ImageFormat.names) image; add images or remove the folder "
          + "(every subfolder of \(root) is a class)")
    }
    self.root = root
    self.list = opened.list
    self.classes = classes
    self.files = scan.images
    self.labels = labels
    self.skipped = scan.skipped
    self.rejected = scan.issues
    self.formats = scan.formats
    self.options = options
  }

  /// Opens a CSV of `path,label` lines. Paths are relative to the CSV file's folder (or
  /// absolute); labels are class names. The first line is a header, and skipped, when its
  /// path field is not named like an image (e.g. `path,label`). Fields may be double-quoted
  /// (for commas in names); blank lines are ignored. Classes are the distinct labels,
  /// sorted numerically when every label is a non-negative integer (`2` before `10`),
  /// byte-wise otherwise.
  ///
  /// - Throws: `VisionError` naming the CSV and the line for a malformed line, a file
  ///   that does not exist or is not an image by name, or a path listed twice; also for an
  ///   empty list, and in strict mode for a file that fails the header check.
  public init(csv path: String, options: ImageFolderOptions = ImageFolderOptions()) throws {
    let entries = try CSVLabels.parse(path: path)
    let csvFolder = FolderScan.parent(of: FolderScan.normalize(path))
    var seen: [String: Int] = [:]
    for entry in entries {
      let full = FolderScan.join(csvFolder, entry.path)
      if let first = seen[entry.path] {
        throw VisionError(
          kind: .invalidCSV, path: path,
          reason: "line \(entry.line): \(entry.path) is already listed on line \(first); list each image once")
      }
      seen[entry.path] = entry.line
      guard FolderScan.isImageName(entry.path) else {
        throw VisionError(
          kind: .invalidCSV, path: path,
          reason: "line \(entry.line): \(entry.path) is not named like an image "
            + "(\(ImageFormat.extensionNames)); only \(ImageFormat.names) images are read")
      }
      var info = stat()
      guard stat(full, &info) == 0 else {
        let why = String(cString: strerror(errno))
        throw VisionError(
          kind: .invalidCSV, path: path,
          reason: "line \(entry.line): cannot use \(full) (\(why)); paths are relative to the CSV's folder \(csvFolder)"
        )
      }
      guard (info.st_mode & S_IFMT) == S_IFREG else {
        throw VisionError(
          kind: .invalidCSV, path: path,
          reason: "line \(entry.line): \(full) is not a regular file; list image files only")
      }
    }
    guard !entries.isEmpty else {
      throw VisionError(
        kind: .empty, path: path,
        reason: "lists no images; expected lines of `path,label` (paths relative to \(csvFolder))")
    }
    var scan = FolderScan()
    scan.images = FolderScan.sortedBytewise(entries.map(\.path))
    if options.checkHeaders { scan.checkHeaders(root: csvFolder, threads: options.threads) }
    try scan.enforce(strict: options.strict, root: path)
    guard !scan.images.isEmpty else { throw scan.emptyError(root: path) }
    let labelOf = Dictionary(uniqueKeysWithValues: entries.map { ($0.path, $0.label) })
    let classes = CSVLabels.sortedClasses(Set(entries.map(\.label)))
    let index = Dictionary(uniqueKeysWithValues: classes.enumerated().map { ($1, $0) })
    self.root = csvFolder
    self.list = path
    self.classes = classes
    self.files = scan.images
    self.labels = scan.images.map { index[labelOf[$0]!]! }
    self.skipped = []
    self.rejected = scan.issues
    self.formats = scan.formats
    self.options = options
  }

  public var count: Int { files.count }

  /// Samples per class, indexed like `classes`.
  public var classCounts: [Int] {
    var counts = [Int](repeating: 0, count: classes.count)
    for label in labels { counts[label] += 1 }
    return counts
  }

  public func path(at index: Int) -> String { FolderScan.join(root, files[index]) }
  public func label(at index: Int) -> Int { labels[index] }

  /// Decodes sample `index`.
  ///
  /// - Throws: `VisionError` naming the file and why it cannot be decoded.
  public func image(at index: Int, options decode: ImageDecodeOptions) throws -> Image {
    try FolderScan.readImage(path(at: index), root: root, options: decode)
  }

  /// What the scan found, to print once when a run starts (see `ImageFolder.summary`).
  public var summary: String {
    FolderScan.summary(
      root: list ?? root, count: count, classes: classes.count, skipped: skipped, rejected: rejected,
      formats: formats)
  }

  // ImageSource
  public func name(of index: Int) -> String { path(at: index) }
  public func loadImage(at index: Int) throws -> Image { try image(at: index, options: options.decode) }
  public var isStrict: Bool { options.strict }
}
