#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

// A text file that lists image paths, accepted wherever an image folder is: for trees
// too large to walk (a million files on a network file system), or a chosen subset of
// one. One path per line, relative to the list file's folder or absolute; blank lines
// and lines starting with `#` are ignored. A labeled dataset read from a list takes each
// image's class from the first folder of its listed path (`cat/1.jpg` is a cat), as the
// class-folder convention does.
//
// Lists are recognized by name: a `.txt` file. Nothing but the list is read here; the
// listed files are checked like a folder's (their headers, then their pixels).

enum ImageList {
  /// The extension that marks a file as an image list, lowercase.
  static let fileExtension = "txt"

  static func isListName(_ path: String) -> Bool {
    guard let dot = path.lastIndex(of: "."), !path[dot...].contains("/") else { return false }
    return path[path.index(after: dot)...].lowercased() == fileExtension
  }

  /// The listed paths, in file order, with any leading `./` removed.
  ///
  /// - Throws: `VisionError` naming the list and the line for a path that is not named
  ///   like an image or is listed twice, or for a list that is not UTF-8 or lists nothing.
  static func parse(path: String) throws -> [String] {
    var paths: [String] = []
    var seen: [String: Int] = [:]
    let notUTF8 = "is not UTF-8 text; an image list holds one path per line, in UTF-8"
    for (number, text) in try CSVLabels.textLines(path, notUTF8: notUTF8) {
      var line = text
      // Paths may hold spaces inside; only the ends are trimmed.
      while let first = line.first, first == " " || first == "\t" { line.removeFirst() }
      while let last = line.last, last == " " || last == "\t" { line.removeLast() }
      if line.isEmpty || line.hasPrefix("#") { continue }
      while line.hasPrefix("./") { line = line.dropFirst(2) }
      let file = String(line)
      guard FolderScan.isImageName(file) else {
        throw VisionError(
          kind: .invalidCSV, path: path,
          reason: "line \(number): \(file) is not named like an image (\(ImageFormat.extensionNames)); "
            + "an image list holds one image path per line, relative to the list's folder")
      }
      if let first = seen[file] {
        throw VisionError(
          kind: .invalidCSV, path: path,
          reason: "line \(number): \(file) is already listed on line \(first); list each image once")
      }
      seen[file] = number
      paths.append(file)
    }
    guard !paths.isEmpty else {
      throw VisionError(
        kind: .empty, path: path,
        reason: "lists no images; expected one image path per line (relative to \(FolderScan.parent(of: path)))")
    }
    return paths
  }
}

extension FolderScan {
  /// What a dataset path names: a folder to walk, or an image list (read, and its
  /// entries taken as the images, relative to `root`).
  struct Opened {
    /// The folder sample paths are relative to: the folder itself, or the list's folder.
    let root: String
    /// The list file, when the path named one.
    let list: String?
    var scan: FolderScan
  }

  /// Opens `path` (a folder or a `.txt` image list) for a dataset.
  static func open(_ path: String) throws -> Opened {
    let path = normalize(path)
    var info = stat()
    if stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, ImageList.isListName(path) {
      var scan = FolderScan()
      scan.images = sortedBytewise(try ImageList.parse(path: path))
      return Opened(root: parent(of: path), list: path, scan: scan)
    }
    return Opened(root: path, list: nil, scan: try scan(root: path))
  }
}
