import Autograd
import Dispatch
import Foundation
import Support

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

// Datasets backed by folders of image files (PNG or JPEG, read through `ImageFile`):
//
// - `ImageFolder`: unlabeled, every image under a folder (flat or nested, any depth).
// - `LabeledImageFolder`: labeled, either one subfolder per class (the common
//   "ImageFolder" convention: root/<class>/**/*.png or *.jpg, classes in sorted order) or
//   a CSV of `path,label` lines.
//
// Files are listed as images by name (`ImageFormat.fileExtensions`) and read by content.
// Scanning checks each image's header (a PNG's 33-byte signature + IHDR, a JPEG's markers
// up to its first scan; cheap, done on all cores); pixels are only decoded when a sample
// is read, so opening a folder of 100k images takes about a second. Files that fail the header check are reported once,
// in `rejected`, and left out (or, with `strict`, make the constructor throw).
//
// Order: samples are sorted by their path relative to the root, comparing UTF-8 bytes,
// so the same folder gives the same indices on every machine and file system.
//
// Hidden entries (names starting with ".": .DS_Store, .git, the temporary files of an
// interrupted atomic write) are ignored. Symbolic links are followed; a link to a folder
// already scanned (a loop, or a second way to the same folder) is not entered again.

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

// MARK: - Scanning

/// The result of walking a folder, and the helpers the datasets share.
struct FolderScan {
  /// Files named like images (`ImageFormat.fileExtensions`, case-insensitive), relative
  /// paths.
  var images: [String] = []
  /// Other files, relative paths.
  var skipped: [String] = []
  /// Unreadable folders, broken links, undecodable names; later also rejected images.
  var issues: [DatasetIssue] = []
  /// Non-hidden folders directly under the root (class folders, for labeled datasets).
  var topLevelFolders: [String] = []
  /// Usable images by size and format (`28×28 gray`), filled by the header check.
  var formats: [String: Int] = [:]
  /// Per image (parallel to `images`): its decoded shape, size and modification time,
  /// filled by the header check (nil without it).
  var infos: [ImageFileInfo]? = nil

  /// Folders are identified by device and inode, so a folder reached twice (through a
  /// symbolic link) is recognized.
  private struct FolderID: Hashable {
    let device: UInt64
    let inode: UInt64
  }

  static func normalize(_ path: String) -> String {
    var p = path
    while p.count > 1 && p.hasSuffix("/") { p.removeLast() }
    return p.isEmpty ? "." : p
  }

  static func join(_ root: String, _ relative: String) -> String {
    if relative.hasPrefix("/") { return relative }
    return root == "/" ? "/" + relative : root + "/" + relative
  }

  static func parent(of path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return "." }
    return slash == path.startIndex ? "/" : String(path[..<slash])
  }

  static func isImageName(_ name: String) -> Bool { ImageFormat.named(name) != nil }

  /// Sorted by UTF-8 bytes (not by Unicode collation, which can differ between
  /// platforms and normalization forms).
  static func sortedBytewise(_ names: [String]) -> [String] {
    names.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
  }

  /// Walks `root` depth-first, children in sorted order (so which of two links to the
  /// same folder is entered is deterministic). Only folder entries are stat'ed (and
  /// entries whose type the file system does not report); files are never opened.
  static func scan(root: String) throws -> FolderScan {
    var info = stat()
    guard stat(root, &info) == 0 else {
      let code = errno
      if code == ENOENT || code == ENOTDIR {
        throw VisionError(
          kind: .notFound, path: root,
          reason: "no such folder; expected a folder of \(ImageFormat.names) images (searched recursively)")
      }
      throw VisionError(kind: .unreadable, path: root, reason: "cannot access: \(String(cString: strerror(code)))")
    }
    guard (info.st_mode & S_IFMT) == S_IFDIR else {
      throw VisionError(
        kind: .wrongType, path: root,
        reason: "is a file, not a folder; expected a folder of \(ImageFormat.names) images (searched recursively), "
          + "or a .\(ImageList.fileExtension) file listing image paths")
    }
    var result = FolderScan()
    var visited: Set<FolderID> = [FolderID(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))]
    var stack: [(absolute: String, relative: String)] = [(root, "")]
    while let (absolute, relative) = stack.popLast() {
      guard let directory = opendir(absolute) else {
        let reason = "cannot open folder: \(String(cString: strerror(errno)))"
        if relative.isEmpty {
          throw VisionError(kind: .unreadable, path: root, reason: reason + "; check its permissions")
        }
        result.issues.append(DatasetIssue(path: relative + "/", reason: reason))
        continue
      }
      var folders: [(absolute: String, relative: String)] = []
      while let entry = readdir(directory) {
        let nameBytes = withUnsafeBytes(of: entry.pointee.d_name) { raw in
          Array(raw.prefix { $0 != 0 })
        }
        guard nameBytes.first != UInt8(ascii: ".") else { continue }  // hidden, ".", ".."
        let type = entry.pointee.d_type
        guard let name = String(validating: nameBytes, as: UTF8.self) else {
          // Such a path cannot round-trip through String, so it could not be opened: a
          // problem for an image or a folder, not for any other file.
          let shown = String(decoding: nameBytes, as: UTF8.self)
          let shownPath = relative.isEmpty ? shown : relative + "/" + shown
          if Int(type) == Int(DT_DIR) || isImageName(shown) {
            result.issues.append(
              DatasetIssue(path: shownPath, reason: "the name is not valid UTF-8; rename it"))
          } else {
            result.skipped.append(shownPath)
          }
          continue
        }
        let childAbsolute = absolute == "/" ? "/" + name : absolute + "/" + name
        let childRelative = relative.isEmpty ? name : relative + "/" + name
        var isFolder = Int(type) == Int(DT_DIR)
        var isFile = Int(type) == Int(DT_REG)
        if Int(type) == Int(DT_LNK) || Int(type) == Int(DT_UNKNOWN) {
          var target = stat()
          guard stat(childAbsolute, &target) == 0 else {
            // A dangling link: an image that cannot be read if it is named like one.
            if isImageName(name) {
              result.issues.append(
                DatasetIssue(path: childRelative, reason: "cannot open: \(String(cString: strerror(errno)))"))
            } else {
              result.skipped.append(childRelative)
            }
            continue
          }
          isFolder = (target.st_mode & S_IFMT) == S_IFDIR
          isFile = (target.st_mode & S_IFMT) == S_IFREG
        }
        if isFolder {
          folders.append((childAbsolute, childRelative))
        } else if isFile && isImageName(name) {
          result.images.append(childRelative)
        } else {
          // Other files, and FIFOs/sockets/devices (never opened: reading a FIFO blocks).
          result.skipped.append(childRelative)
        }
      }
      closedir(directory)
      folders.sort { $0.relative.utf8.lexicographicallyPrecedes($1.relative.utf8) }
      var enter: [(absolute: String, relative: String)] = []
      for folder in folders {
        var target = stat()
        guard stat(folder.absolute, &target) == 0 else {
          result.issues.append(
            DatasetIssue(path: folder.relative + "/", reason: "cannot open folder: \(String(cString: strerror(errno)))")
          )
          continue
        }
        // A folder seen before is a symbolic-link loop or a second path to the same
        // files: entering it would never end, or would list the files twice.
        guard visited.insert(FolderID(device: UInt64(target.st_dev), inode: UInt64(target.st_ino))).inserted
        else { continue }
        if relative.isEmpty { result.topLevelFolders.append(folder.relative) }
        enter.append(folder)
      }
      stack.append(contentsOf: enter.reversed())
    }
    result.images = sortedBytewise(result.images)
    result.skipped = sortedBytewise(result.skipped)
    result.sortIssues()
    return result
  }

  /// The header check of every image (paths relative to `root`), on `threads` threads:
  /// files that fail it move to `issues`; the others are counted by size and format in
  /// `formats`.
  /// `decode` decides the shapes recorded in `infos`, parallel to the images kept.
  mutating func checkHeaders(root: String, threads: Int, decode: ImageDecodeOptions = ImageDecodeOptions()) {
    let files = images
    // Per file: its header and file facts, or why it is unusable.
    let results: [(header: ImageHeader?, info: ImageFileInfo?, reason: String?)] = concurrentMap(
      files.count, threads: threads
    ) { i in
      let path = FolderScan.join(root, files[i])
      do {
        let header = try ImageFile.header(path: path)
        var st = stat()
        guard stat(path, &st) == 0 else { return (nil, nil, "cannot open: \(String(cString: strerror(errno)))") }
        #if canImport(Darwin)
          let modified = Int64(st.st_mtimespec.tv_sec) * 1_000_000_000 + Int64(st.st_mtimespec.tv_nsec)
        #else
          let modified = Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
        #endif
        let shape = header.decodedShape(decode)
        let info = ImageFileInfo(
          width: shape.width, height: shape.height, channels: shape.channels, byteCount: Int(st.st_size),
          modified: modified)
        return (header, info, nil)
      } catch let error as VisionError {
        return (nil, nil, error.reason)
      } catch {
        return (nil, nil, "\(error)")
      }
    }
    var bad: [DatasetIssue] = []
    var kept: [String] = []
    var keptInfos: [ImageFileInfo] = []
    kept.reserveCapacity(files.count)
    keptInfos.reserveCapacity(files.count)
    for (file, result) in zip(files, results) {
      if let header = result.header, let info = result.info {
        formats["\(header.width)×\(header.height) \(header.formatName)", default: 0] += 1
        kept.append(file)
        keptInfos.append(info)
      } else {
        bad.append(DatasetIssue(path: file, reason: result.reason ?? "unreadable"))
      }
    }
    images = kept
    infos = keptInfos
    issues += bad
    sortIssues()
  }

  mutating func sortIssues() {
    issues.sort { $0.path.utf8.lexicographicallyPrecedes($1.path.utf8) }
  }

  /// In strict mode, any issue is an error listing (the first few) rejected files.
  func enforce(strict: Bool, root: String) throws {
    guard strict, !issues.isEmpty else { return }
    let shown = issues.prefix(5).map { "\($0.path) (\($0.reason))" }.joined(separator: "; ")
    let more = issues.count > 5 ? "; and \(issues.count - 5) more" : ""
    throw VisionError(
      kind: .unreadable, path: root,
      reason: "\(issues.count) file\(issues.count == 1 ? "" : "s") cannot be used: \(shown)\(more). "
        + "Fix or remove them (`pretext data check` lists them all), or open the dataset without strict mode to skip them"
    )
  }

  func emptyError(root: String) -> VisionError {
    var found: [String] = []
    if !issues.isEmpty { found.append("\(issues.count) unusable image file\(issues.count == 1 ? "" : "s")") }
    if !skipped.isEmpty {
      let examples = skipped.prefix(3).joined(separator: ", ")
      found.append(
        "\(skipped.count) other file\(skipped.count == 1 ? "" : "s") (\(examples)\(skipped.count > 3 ? ", …" : ""))")
    }
    let what = found.isEmpty ? "it is empty" : "found only " + found.joined(separator: " and ")
    return VisionError(
      kind: .empty, path: root,
      reason: "no usable \(ImageFormat.names) images (\(what)); expected \(ImageFormat.extensionNames) files in it "
        + "or its subfolders")
  }

  static func summary(
    root: String, count: Int, classes: Int?, skipped: [String], rejected: [DatasetIssue], formats: [String: Int]
  ) -> String {
    var lines = ["\(root): \(count) image\(count == 1 ? "" : "s")" + (classes.map { " in \($0) classes" } ?? "")]
    if formats.count > 1 {
      // Not an error, but worth knowing: tiny or odd images are stretched to the input.
      let kinds = formats.sorted { ($1.value, $0.key) < ($0.value, $1.key) }
      let shown = kinds.prefix(4).map { "\($0.key): \($0.value)" }.joined(separator: ", ")
      lines.append(
        "mixed sizes and formats (\(shown)\(kinds.count > 4 ? ", …" : "")): each image is converted to the "
          + "backbone's channels and cropped or resized to its input")
    }
    if !skipped.isEmpty {
      let examples = skipped.prefix(3).joined(separator: ", ") + (skipped.count > 3 ? ", …" : "")
      lines.append("skipped \(skipped.count) non-image file\(skipped.count == 1 ? "" : "s"): \(examples)")
    }
    if !rejected.isEmpty {
      lines.append("left out \(rejected.count) unusable file\(rejected.count == 1 ? "" : "s"):")
      lines += rejected.map { "  \($0.path): \($0.reason)" }
    }
    return lines.joined(separator: "\n")
  }

  static func readImage(_ path: String, root: String, options: ImageDecodeOptions) throws -> Image {
    do {
      return try ImageFile.read(path: path, options: options)
    } catch let error as VisionError {
      throw VisionError(
        kind: .unreadable, path: path,
        reason: error.reason + "; remove or replace the file (`pretext data check \(root)` lists every unusable file)")
    }
  }
}

// MARK: - CSV

/// `path,label` lines (see `LabeledImageFolder.init(csv:options:)`).
enum CSVLabels {
  /// Whether a dataset path names a CSV label file (`.csv`, any case).
  static func isCSVName(_ path: String) -> Bool { path.lowercased().hasSuffix(".csv") }

  struct Entry {
    let line: Int
    let path: String
    let label: String
  }

  static func parse(path: String) throws -> [Entry] {
    var info = stat()
    guard stat(path, &info) == 0 else {
      throw VisionError(
        kind: .notFound, path: path,
        reason: "no such file; expected a CSV of `path,label` lines (paths relative to its folder)")
    }
    guard (info.st_mode & S_IFMT) == S_IFREG else {
      throw VisionError(
        kind: .wrongType, path: path, reason: "is not a file; expected a CSV of `path,label` lines")
    }
    var entries: [Entry] = []
    var sawFirst = false
    for (number, line) in try textLines(path, notUTF8: "is not UTF-8 text; save the CSV as UTF-8") {
      if line.allSatisfy({ $0 == " " || $0 == "\t" }) { continue }
      let fields: [String]
      do {
        fields = try splitFields(line)
      } catch let reason as CSVFieldError {
        throw VisionError(kind: .invalidCSV, path: path, reason: "line \(number): \(reason.message)")
      }
      let isFirst = !sawFirst
      sawFirst = true
      guard fields.count == 2 else {
        if isFirst && !(fields.first.map(FolderScan.isImageName) ?? false) { continue }  // a header
        throw VisionError(
          kind: .invalidCSV, path: path,
          reason: "line \(number): expected 2 fields `path,label`, found \(fields.count): \(line)")
      }
      if isFirst && !FolderScan.isImageName(fields[0]) { continue }  // a header such as path,label
      guard !fields[0].isEmpty, !fields[1].isEmpty else {
        throw VisionError(
          kind: .invalidCSV, path: path,
          reason: "line \(number): \(fields[0].isEmpty ? "the path" : "the label") is empty; expected `path,label`")
      }
      var file = Substring(fields[0])
      while file.hasPrefix("./") { file = file.dropFirst(2) }
      entries.append(Entry(line: number, path: String(file), label: fields[1]))
    }
    return entries
  }

  /// The lines of a UTF-8 text file with their numbers (from 1), without line endings
  /// (`\n`, `\r\n` or a lone `\r` before `\n`) or a leading byte-order mark; shared by
  /// CSV label files and image lists.
  static func textLines(_ path: String, notUTF8: String) throws -> [(number: Int, line: Substring)] {
    let bytes: [UInt8]
    do {
      bytes = try ImageFile.readFile(path)
    } catch let error as VisionError {
      throw VisionError(kind: .unreadable, path: path, reason: error.reason)
    }
    guard let text = String(validating: bytes, as: UTF8.self) else {
      throw VisionError(kind: .invalidCSV, path: path, reason: notUTF8)
    }
    // "\r\n" is a single Character in Swift, so it is a separator of its own.
    let lines = text.split(omittingEmptySubsequences: false) { $0 == "\n" || $0 == "\r\n" }
    return lines.enumerated().map { offset, raw in
      var line = Substring(raw)
      if line.hasSuffix("\r") { line.removeLast() }
      if offset == 0 && line.hasPrefix("\u{FEFF}") { line.removeFirst() }  // byte-order mark
      return (offset + 1, line)
    }
  }

  struct CSVFieldError: Error {
    let message: String
  }

  /// Comma-separated fields, each optionally double-quoted (`""` is a quote inside
  /// quotes); unquoted fields are trimmed of surrounding spaces and tabs.
  static func splitFields(_ line: Substring) throws -> [String] {
    var fields: [String] = []
    var current = ""
    var quoted = false
    var inQuotes = false
    var chars = line.makeIterator()
    var pending: Character? = nil
    func next() -> Character? {
      if let p = pending {
        pending = nil
        return p
      }
      return chars.next()
    }
    func finish() {
      fields.append(quoted ? current : current.trimmingCharacters(in: .whitespaces))
      current = ""
      quoted = false
    }
    while let c = next() {
      if inQuotes {
        if c == "\"" {
          if let after = next() {
            if after == "\"" {
              current.append("\"")
            } else {
              inQuotes = false
              pending = after
            }
          } else {
            inQuotes = false
          }
        } else {
          current.append(c)
        }
      } else if c == "," {
        finish()
      } else if c == "\"" && current.allSatisfy({ $0 == " " || $0 == "\t" }) && !quoted {
        current = ""
        quoted = true
        inQuotes = true
      } else if quoted {
        guard c == " " || c == "\t" else {
          throw CSVFieldError(message: "unexpected text after a closing quote: \(line)")
        }
      } else {
        current.append(c)
      }
    }
    guard !inQuotes else { throw CSVFieldError(message: "a quoted field is not closed: \(line)") }
    finish()
    return fields
  }

  /// Numeric order when every label is a non-negative integer, byte-wise otherwise.
  static func sortedClasses(_ labels: Set<String>) -> [String] {
    let all = Array(labels)
    if all.allSatisfy({ !$0.isEmpty && $0.utf8.allSatisfy { (48...57).contains($0) } }) {
      return all.sorted { a, b in
        let (x, y) = (a.drop { $0 == "0" }, b.drop { $0 == "0" })
        return x.count != y.count ? x.count < y.count : (x == y ? a < b : x < y)
      }
    }
    return FolderScan.sortedBytewise(all)
  }
}
