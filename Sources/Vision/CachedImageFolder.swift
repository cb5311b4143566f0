import Autograd
import Foundation
import Support
import Synchronization

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

// An image folder read through its decoded-image cache (DecodedImageCache.swift): what
// training and `pretext data cache` use. An image is decoded the first time it is asked
// for and stored; later it comes out of the cache. Which cache belongs to a folder, and
// whether it is still valid, is decided here.
//
// Where: `<folder>/.pretext/decoded-<size>-<channels>.cache` (hidden, so scans ignore
// it; it goes when the folder goes), for an image list `<list's folder>/.pretext/
// decoded-<list name>-<size>-<channels>.cache`. When that folder cannot be written, the
// user's cache folder (`$XDG_CACHE_HOME/pretext`, else `~/.cache/pretext`) holds it
// under a name derived from the folder's absolute path. `PRETEXT_CACHE_DIR` overrides
// both.

public final class CachedImageFolder: ImageSource, @unchecked Sendable {
  public let folder: ImageFolder
  public let cache: DecodedImageCache

  /// Opens (or plans) `folder`'s cache at `path` (default: `defaultPath(for:)`).
  ///
  /// - Throws: `VisionError` of kind `.cache` when the folder was opened without its
  ///   header check (the cache is planned from the headers), or the cache cannot be
  ///   created.
  /// With `create` false, only a complete cache is used (else it throws).
  public init(folder: ImageFolder, path: String? = nil, create: Bool = true) throws {
    guard let infos = folder.infos else {
      throw VisionError(
        kind: .cache, path: folder.root, reason: "a decoded-image cache needs the folder's header check")
    }
    self.folder = folder
    cache = try DecodedImageCache(
      path: path ?? Self.defaultPath(for: folder), key: Self.key(of: folder, infos: infos), infos: infos,
      create: create)
  }

  // ImageSource
  public var count: Int { folder.count }
  public func name(of index: Int) -> String { folder.name(of: index) }
  public var isStrict: Bool { folder.isStrict }
  public func readingStopped() { cache.flush() }

  /// The cached image, or the decoded one (then stored). An unreadable file is decoded
  /// again, so its error is the decoder's own.
  public func loadImage(at index: Int) throws -> Image {
    if let image = cache.image(at: index) { return image }
    let image: Image
    do {
      image = try folder.loadImage(at: index)
    } catch {
      try cache.markUnreadable(index)
      throw error
    }
    try cache.store(image, at: index)
    return image
  }

  /// Decodes every image not yet cached, on `threads` threads, completing the file.
  /// `progress` gets (images done, total) about every 1% and at the end.
  /// - Returns: the unreadable images, with the reason.
  public func fill(threads: Int = Parallel.threads, progress: (Int, Int) -> Void = { _, _ in }) throws
    -> [DatasetIssue]
  {
    let missing = (0..<count).filter { cache.status(at: $0) == .missing }
    let known = (0..<count).filter { cache.status(at: $0) == .unreadable }
    let done = Mutex(count - missing.count)
    let failure = Mutex<VisionError?>(nil)
    let step = max(1, count / 100)
    nonisolated(unsafe) let report = progress
    let reasons: [String?] = concurrentMap(missing.count, threads: threads) { i in
      guard failure.withLock({ $0 == nil }) else { return nil }
      var reason: String? = nil
      do {
        _ = try loadImage(at: missing[i])
      } catch let error as VisionError where error.kind == .cache {
        failure.withLock { $0 = error }
      } catch {
        reason = (error as? VisionError)?.reason ?? "\(error)"
      }
      // Reported under the lock, so lines come in order.
      done.withLock { n in
        n += 1
        if n % step == 0 || n == count { report(n, count) }
      }
      return reason
    }
    cache.flush()
    if let error = failure.withLock({ $0 }) { throw error }
    if missing.isEmpty { progress(count, count) }
    var issues = known.map {
      DatasetIssue(path: folder.files[$0], reason: "unreadable (found when the cache was filled)")
    }
    for (i, reason) in reasons.enumerated() {
      if let reason { issues.append(DatasetIssue(path: folder.files[missing[i]], reason: reason)) }
    }
    return issues.sorted { $0.path.utf8.lexicographicallyPrecedes($1.path.utf8) }
  }

  // MARK: - Which cache

  /// The folder's cache file (see the top of this file).
  public static func defaultPath(for folder: ImageFolder) -> String {
    let decode = folder.options.decode
    let size = effectiveShorterSide(folder).map { "\($0)" } ?? "full"
    let channels: String
    switch decode.channels {
    case .gray: channels = "gray"
    case .rgb: channels = "rgb"
    case .natural: channels = "natural"
    }
    let listName =
      folder.list.map { ((($0 as NSString).lastPathComponent) as NSString).deletingPathExtension + "-" } ?? ""
    let name = "decoded-\(listName)\(size)-\(channels).cache"
    if let override = ProcessInfo.processInfo.environment["PRETEXT_CACHE_DIR"], !override.isEmpty {
      return (override as NSString).appendingPathComponent("\(FNV1a.hex(absolute(folder.list ?? folder.root)))-\(name)")
    }
    let beside = (folder.root as NSString).appendingPathComponent(".pretext")
    if isWritableFolder(beside) || (!FileManager.default.fileExists(atPath: beside) && isWritableFolder(folder.root)) {
      return (beside as NSString).appendingPathComponent(name)
    }
    let environment = ProcessInfo.processInfo.environment
    let userCache =
      environment["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : $0 }
      ?? (NSHomeDirectory() as NSString).appendingPathComponent(".cache")
    return ((userCache as NSString).appendingPathComponent("pretext") as NSString)
      .appendingPathComponent("\(FNV1a.hex(absolute(folder.list ?? folder.root)))-\(name)")
  }

  /// SHA-256 of what the cached pixels depend on: the decode options and, per image, its
  /// path, file size, modification time and planned shape.
  static func key(of folder: ImageFolder, infos: [ImageFileInfo]) -> [UInt8] {
    var h = SHA256()
    let d = folder.options.decode
    let background = d.background.map { "\($0.red),\($0.green),\($0.blue)" } ?? "none"
    let options =
      "pretext decoded-image cache \(DecodedImageCache.version)|\(d.channels)|\(effectiveShorterSide(folder) ?? 0)|"
      + "\(background)|\(d.maxPixels)|\(folder.count)\n"
    h.update(options.utf8)
    var record = [UInt8]()
    for (file, info) in zip(folder.files, infos) {
      record.removeAll(keepingCapacity: true)
      record += file.utf8
      record.append(0)
      for value in [Int64(info.byteCount), info.modified, Int64(info.width), Int64(info.height), Int64(info.channels)] {
        withUnsafeBytes(of: value.littleEndian) { record += $0 }
      }
      h.update(record)
    }
    return h.finalize()
  }

  /// The decode size, or nil when it reduces no image of the folder (every shorter side
  /// is below it): then the pixels are the full-size ones, and runs whose decode sizes
  /// differ (Fashion-MNIST's 28-px images at 56 or 64) share one cache.
  static func effectiveShorterSide(_ folder: ImageFolder) -> Int? {
    guard let side = folder.options.decode.shorterSide, let infos = folder.infos else {
      return folder.options.decode.shorterSide
    }
    return infos.contains { min($0.width, $0.height) >= side } ? side : nil
  }

  private static func isWritableFolder(_ path: String) -> Bool {
    var isFolder: ObjCBool = false
    return FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) && isFolder.boolValue
      && access(path, W_OK) == 0
  }

  private static func absolute(_ path: String) -> String {
    path.hasPrefix("/") ? path : (FileManager.default.currentDirectoryPath as NSString).appendingPathComponent(path)
  }
}
