#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

// Walking a dataset folder: which files under it are images (by name), which are other
// files, and which entries cannot be used, with the path helpers every folder dataset
// shares. Nothing is opened here but folders; HeaderCheck.swift then reads the images'
// headers.
//
// Hidden entries (names starting with ".": .DS_Store, .git, the temporary files of an
// interrupted atomic write) are ignored. Symbolic links are followed; a link to a folder
// already scanned (a loop, or a second way to the same folder) is not entered again.

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

  /// Issues in byte-wise path order, like the images (the walk and the header check
  /// both add to them).
  mutating func sortIssues() {
    issues.sort { $0.path.utf8.lexicographicallyPrecedes($1.path.utf8) }
  }
}
