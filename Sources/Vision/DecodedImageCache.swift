import Autograd
import Foundation

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

// A folder's decoded images in one file, memory-mapped: after the first epoch (or
// `pretext data cache`), an epoch costs no decoding, only a copy out of the page cache.
//
// The file is planned in full before any image is decoded: the folder's header check
// knows every image's decoded shape (`ImageFileInfo`), so each image has a fixed place
// and images can be stored in any order — the shuffled order of the first epoch, or all
// cores at once. Its blocks are reserved up front (`posix_fallocate`), so filling it can
// never meet a full disk through the mapping (which would be a SIGBUS, not an error).
//
// It is written safely: filled under `<name>.partial`, which one process at a time may
// fill (an advisory lock; another process reads its images without the cache), and
// which a later run continues when its key still matches. Which images the file holds is
// written to it only after their samples are synced, so a crash or a kill loses at most
// the last few (decoded again), never a half-written image. When every image is in, the
// file is marked complete, synced and renamed to `<name>`. A complete file is used only
// when its key matches: a SHA-256 of the decode options and of every file's path, size
// and modification time, so an added, removed or changed image (or another
// `decode_size`) starts a new one.
//
// Layout (little-endian):
//   [0, 64)            magic "PRXCACHE", version u32, complete u32, count u64,
//                      key (32 bytes), data offset u64
//   [64, 64 + 24·N)    per image: offset u64, width u32, height u32, channels u8,
//                      status u8, 6 bytes of padding
//   [data offset, …)   the images' samples, HWC, packed in index order
//
// Memory: nothing but the mapping holds pixels; the process keeps O(N) bytes of index.

public final class DecodedImageCache: @unchecked Sendable {
  public enum Status: UInt8, Sendable {
    /// Not decoded yet.
    case missing = 0
    case stored = 1
    /// Decoding failed: the file is read again (for its error) whenever it is asked for.
    case unreadable = 2
    /// Decoded to another shape than its header promised: decoded whenever asked for.
    case uncacheable = 3
  }

  /// Where the complete cache is (or will be, once filled).
  public let path: String
  public let count: Int
  /// Bytes of the file: header, index and samples.
  public let byteCount: Int
  /// All images are stored (or known unreadable) and the file is in place under `path`.
  public var isComplete: Bool { lock.withLock { complete } }

  static let magic = Array("PRXCACHE".utf8)
  static let version: UInt32 = 1
  static let headerBytes = 64
  static let entryBytes = 24
  /// Statuses are written to the file after this many new ones (or at the end).
  static let persistEvery = 256

  private let lock = NSLock()
  private let fd: Int32
  private let base: UnsafeMutableRawPointer
  private let writable: Bool
  private var complete: Bool
  private var remaining: Int
  /// Per image: its status in this process (the file's copy lags until `persist`).
  private var statuses: [UInt8]
  private var unpersisted = 0
  private let offsets: [Int]
  private let shapes: [ImageFileInfo]

  /// The partial file a cache at `path` is filled in.
  public static func partialPath(of path: String) -> String { path + ".partial" }

  /// The cache at `path` for images of shapes `infos`, identified by `key`: the complete
  /// file there when its key matches; else its partial file, continued when its key
  /// matches, started anew otherwise. With `create` false, only a complete file is used.
  ///
  /// - Throws: `VisionError` of kind `.cache` when there is no complete file and none
  ///   may be filled (`create` false, another process filling it, no space, no
  ///   permission); the reason says which, and how much space it needs.
  public init(path: String, key: [UInt8], infos: [ImageFileInfo], create: Bool = true) throws {
    precondition(key.count == 32, "DecodedImageCache: the key is a SHA-256 digest")
    self.path = path
    count = infos.count
    shapes = infos
    var offsets = [Int](repeating: 0, count: infos.count)
    let dataOffset = Self.headerBytes + Self.entryBytes * infos.count
    var next = dataOffset
    for (i, info) in infos.enumerated() {
      offsets[i] = next
      next += info.sampleCount
    }
    self.offsets = offsets
    byteCount = next

    if let existing = Self.open(path, key: key, count: infos.count, byteCount: byteCount, complete: true) {
      (fd, base) = existing
      writable = false
      complete = true
      remaining = 0
      statuses = []
      return
    }
    guard create else {
      throw VisionError(kind: .cache, path: path, reason: "no complete decoded-image cache for this folder")
    }
    let partial = Self.partialPath(of: path)
    try? FileManager.default.createDirectory(
      atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    let fd = Glibc.open(partial, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
    guard fd >= 0 else {
      throw VisionError(
        kind: .cache, path: partial,
        reason: "cannot create the decoded-image cache: \(String(cString: strerror(errno)))")
    }
    guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
      close(fd)
      throw VisionError(kind: .cache, path: partial, reason: "another process is filling this decoded-image cache")
    }
    if let continued = Self.map(fd, key: key, count: infos.count, byteCount: byteCount, complete: false, writable: true)
    {
      base = continued
      // Images the file says are stored were synced before it said so.
      statuses = (0..<infos.count).map { continued.load(fromByteOffset: Self.statusOffset($0), as: UInt8.self) }
    } else {
      guard ftruncate(fd, 0) == 0 else {
        let reason = String(cString: strerror(errno))
        close(fd)
        throw VisionError(kind: .cache, path: partial, reason: "cannot start the decoded-image cache: \(reason)")
      }
      let reserved = posix_fallocate(fd, 0, off_t(byteCount))
      guard reserved == 0 else {
        close(fd)
        unlink(partial)
        var fs = statvfs()
        let folder = (path as NSString).deletingLastPathComponent
        let free = statvfs(folder, &fs) == 0 ? Int(fs.f_bavail) * Int(fs.f_frsize) : -1
        throw VisionError(
          kind: .cache, path: path,
          reason:
            "cannot reserve \(Self.sizeText(byteCount)) for the decoded-image cache "
            + "(\(String(cString: strerror(reserved)))" + (free >= 0 ? ", \(Self.sizeText(free)) free" : "")
            + "); free some space, lower data.decode_size, or set data.cache: false")
      }
      guard let mapped = mmap(nil, byteCount, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), mapped != MAP_FAILED
      else {
        let reason = String(cString: strerror(errno))
        close(fd)
        unlink(partial)
        throw VisionError(kind: .cache, path: path, reason: "cannot map the decoded-image cache: \(reason)")
      }
      base = mapped
      statuses = [UInt8](repeating: Status.missing.rawValue, count: infos.count)
      // Header (not complete) and index (every image missing: the file is zeroed).
      Self.magic.withUnsafeBytes { mapped.copyMemory(from: $0.baseAddress!, byteCount: 8) }
      Self.store(UInt32(Self.version), at: 8, in: mapped)
      Self.store(UInt32(0), at: 12, in: mapped)
      Self.store(UInt64(infos.count), at: 16, in: mapped)
      key.withUnsafeBytes { (mapped + 24).copyMemory(from: $0.baseAddress!, byteCount: 32) }
      Self.store(UInt64(dataOffset), at: 56, in: mapped)
      for (i, info) in infos.enumerated() {
        let entry = Self.headerBytes + Self.entryBytes * i
        Self.store(UInt64(offsets[i]), at: entry, in: mapped)
        Self.store(UInt32(info.width), at: entry + 8, in: mapped)
        Self.store(UInt32(info.height), at: entry + 12, in: mapped)
        mapped.storeBytes(of: UInt8(info.channels), toByteOffset: entry + 16, as: UInt8.self)
      }
    }
    self.fd = fd
    writable = true
    complete = false
    remaining = statuses.count { $0 == Status.missing.rawValue }
    if remaining == 0 { try finish() }
  }

  deinit {
    if writable && !complete { lock.withLock { persist() } }
    munmap(base, byteCount)
    close(fd)
  }

  public func status(at index: Int) -> Status {
    guard writable else {
      return Status(rawValue: base.load(fromByteOffset: Self.statusOffset(index), as: UInt8.self)) ?? .missing
    }
    return Status(rawValue: lock.withLock { statuses[index] }) ?? .missing
  }

  /// The stored image `index`, or nil when it is not stored.
  public func image(at index: Int) -> Image? {
    guard status(at: index) == .stored else { return nil }
    let info = shapes[index]
    let pixels = [UInt8](UnsafeRawBufferPointer(start: base + offsets[index], count: info.sampleCount))
    return Image(width: info.width, height: info.height, channels: info.channels, pixels: pixels)
  }

  /// Stores decoded image `index` (thread-safe; distinct images may be stored at once).
  /// An image of another shape than planned is not stored, and marked `uncacheable`.
  /// Storing the last missing image completes the file.
  public func store(_ image: Image, at index: Int) throws {
    guard writable, status(at: index) == .missing else { return }
    let info = shapes[index]
    guard image.width == info.width, image.height == info.height, image.channels == info.channels else {
      try mark(index, .uncacheable)
      return
    }
    image.pixels.withUnsafeBytes { (base + offsets[index]).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
    try mark(index, .stored)
  }

  /// Records that image `index` cannot be decoded.
  public func markUnreadable(_ index: Int) throws {
    guard writable else { return }
    try mark(index, .unreadable)
  }

  /// Writes the statuses of the images stored so far to the file (done every
  /// `persistEvery` images and when the cache goes away), so that another run continues.
  public func flush() {
    guard writable else { return }
    lock.withLock { if !complete { persist() } }
  }

  // MARK: - Implementation

  static func statusOffset(_ index: Int) -> Int { headerBytes + entryBytes * index + 17 }

  private func mark(_ index: Int, _ status: Status) throws {
    let last = lock.withLock { () -> Bool in
      guard statuses[index] == Status.missing.rawValue, !complete else { return false }
      statuses[index] = status.rawValue
      remaining -= 1
      unpersisted += 1
      if unpersisted >= Self.persistEvery && remaining > 0 { persist() }
      return remaining == 0
    }
    if last { try finish() }
  }

  /// Syncs the samples, then writes the statuses (caller holds the lock). Best effort: a
  /// status that does not reach the disk only means the image is decoded again.
  private func persist() {
    let dataStart = Self.headerBytes + Self.entryBytes * count
    let page = Int(sysconf(Int32(_SC_PAGESIZE)))
    let alignedStart = dataStart / page * page
    msync(base + alignedStart, byteCount - alignedStart, MS_SYNC)
    for i in 0..<count { base.storeBytes(of: statuses[i], toByteOffset: Self.statusOffset(i), as: UInt8.self) }
    msync(base, min(byteCount, dataStart + page), MS_SYNC)
    unpersisted = 0
  }

  /// Writes every status, marks the file complete, syncs it and renames it into place.
  private func finish() throws {
    try lock.withLock {
      guard !complete else { return }
      persist()
      Self.store(UInt32(1), at: 12, in: base)
      guard msync(base, Self.headerBytes, MS_SYNC) == 0, fsync(fd) == 0 else {
        throw VisionError(
          kind: .cache, path: path, reason: "cannot write the decoded-image cache: \(String(cString: strerror(errno)))")
      }
      guard rename(Self.partialPath(of: path), path) == 0 else {
        throw VisionError(
          kind: .cache, path: path,
          reason: "cannot put the decoded-image cache in place: \(String(cString: strerror(errno)))")
      }
      let folder = Glibc.open((path as NSString).deletingLastPathComponent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
      if folder >= 0 {
        fsync(folder)
        close(folder)
      }
      complete = true
    }
  }

  private static func store<T: FixedWidthInteger>(_ value: T, at offset: Int, in base: UnsafeMutableRawPointer) {
    base.storeBytes(of: value.littleEndian, toByteOffset: offset, as: T.self)
  }

  /// The file at `path` mapped read-only, when it is a complete cache with this key.
  private static func open(_ path: String, key: [UInt8], count: Int, byteCount: Int, complete: Bool)
    -> (Int32, UnsafeMutableRawPointer)?
  {
    let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    guard let mapped = map(fd, key: key, count: count, byteCount: byteCount, complete: complete, writable: false) else {
      close(fd)
      return nil
    }
    return (fd, mapped)
  }

  /// `fd` mapped, when it holds a cache of this key, count and size, complete or not.
  private static func map(_ fd: Int32, key: [UInt8], count: Int, byteCount: Int, complete: Bool, writable: Bool)
    -> UnsafeMutableRawPointer?
  {
    var info = stat()
    var header = [UInt8](repeating: 0, count: headerBytes)
    let matches =
      fstat(fd, &info) == 0 && Int(info.st_size) == byteCount
      && pread(fd, &header, headerBytes, 0) == headerBytes
      && Array(header[0..<8]) == magic
      && header.load(UInt32.self, at: 8) == version && header.load(UInt32.self, at: 12) == (complete ? 1 : 0)
      && header.load(UInt64.self, at: 16) == UInt64(count) && Array(header[24..<56]) == key
    guard matches else { return nil }
    let protection = writable ? PROT_READ | PROT_WRITE : PROT_READ
    guard let mapped = mmap(nil, byteCount, protection, MAP_SHARED, fd, 0), mapped != MAP_FAILED else { return nil }
    return mapped
  }

  /// `640 bytes`, `512 kB`, `34.1 MB`, `65.2 GB`.
  public static func sizeText(_ bytes: Int) -> String {
    let b = Double(bytes)
    if b >= 1e9 { return String(format: "%.1f GB", b / 1e9) }
    if b >= 1e6 { return String(format: "%.1f MB", b / 1e6) }
    if b >= 1e3 { return String(format: "%.0f kB", b / 1e3) }
    return "\(bytes) bytes"
  }
}

extension [UInt8] {
  fileprivate func load<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
    var value: T = 0
    Swift.withUnsafeMutableBytes(of: &value) { out in
      for i in 0..<MemoryLayout<T>.size { out[i] = self[offset + i] }
    }
    return T(littleEndian: value)
  }
}
