import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// The whole contents of a regular file, or nil when it is missing, a directory, not a
/// regular file (a device or pipe: never blocks on one), or cannot be read.
///
/// Used instead of `FileManager.contents(atPath:)` everywhere Pretext reads a file whole:
/// on Linux, Foundation reads a file whose size is 0 into a 4,096-byte buffer (files in
/// /proc report 0 but have contents) and, when nothing was read, returns an empty `Data`
/// without freeing that buffer (FoundationEssentials `readBytesFromFile` /
/// `readDataFromFile`, Swift 6.3), so every read of an empty file — a fresh
/// metrics.jsonl, an empty config — leaked 4 KB.
public func readWholeFile(_ path: String) -> Data? {
  let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
  guard fd >= 0 else { return nil }
  defer { close(fd) }
  var info = stat()
  guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
  // st_size is a hint (a file may grow while read, /proc files report 0): read to EOF.
  var bytes = [UInt8](repeating: 0, count: max(Int(info.st_size), 0) + 1)
  var count = 0
  while true {
    if count == bytes.count { bytes += [UInt8](repeating: 0, count: max(bytes.count, 4096)) }
    let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + count, $0.count - count) }
    if n < 0 {
      if errno == EINTR { continue }
      return nil
    }
    if n == 0 { break }
    count += n
  }
  return Data(bytes[..<count])
}

/// Why `readWholeFile` gave nil for a path, for an error message.
public enum UnreadableFile: Equatable, CustomStringConvertible, Sendable {
  case missing
  case directory
  /// A device, pipe or socket (e.g. /dev/null).
  case notRegular
  /// A regular file that could not be read (the system's reason).
  case unreadable(String)

  /// Looks at `path` after a failed read.
  public init(_ path: String) {
    var info = stat()
    guard stat(path, &info) == 0 else {
      let reason = errno
      self = reason == ENOENT || reason == ENOTDIR ? .missing : .unreadable(String(cString: strerror(reason)))
      return
    }
    switch info.st_mode & S_IFMT {
    case S_IFDIR: self = .directory
    case S_IFREG: self = .unreadable(String(cString: strerror(access(path, R_OK) == 0 ? EIO : EACCES)))
    default: self = .notRegular
    }
  }

  public var description: String {
    switch self {
    case .missing: return "no such file"
    case .directory: return "is a directory"
    case .notRegular: return "not a regular file (a device, pipe or socket)"
    case .unreadable(let reason): return "cannot be read (\(reason))"
    }
  }
}
