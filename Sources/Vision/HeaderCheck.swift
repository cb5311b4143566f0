import Support

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

// What a folder scan does with its images once listed: check their headers (rejecting
// files that fail), apply strict mode, explain an empty dataset, summarize what was
// found, and read one sample, turning a decoder's error into a dataset error that says
// what to do.

extension FolderScan {
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
