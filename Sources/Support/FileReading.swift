import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// Why a file could not be read whole (`readFileBytes`).
public enum FileReadError: Error, Equatable, CustomStringConvertible, Sendable {
  /// open(2) failed with this errno (ENOENT or ENOTDIR: the file does not exist).
  case cannotOpen(Int32)
  case directory
  /// A device, pipe or socket (e.g. /dev/null), where only regular files are accepted.
  case notRegular
  /// fstat(2) or read(2) failed with this errno.
  case cannotRead(Int32)

  public var isMissing: Bool {
    if case .cannotOpen(let code) = self { return code == ENOENT || code == ENOTDIR }
    return false
  }

  public var description: String {
    switch self {
    case .cannotOpen(let code): return "cannot open: \(String(cString: strerror(code)))"
    case .directory: return "is a directory"
    case .notRegular: return "not a regular file (a device, pipe or socket)"
    case .cannotRead(let code): return "cannot read: \(String(cString: strerror(code)))"
    }
  }
}

/// The whole file at `path`, or its first `limit` bytes: the one reader behind configs,
/// weights, metrics, reports and PNG files.
///
/// Not `FileManager.contents(atPath:)`: on Linux, Foundation reads a file whose size is 0
/// into a 4,096-byte buffer (files in /proc report 0 but have contents) and, when nothing
/// was read, returns an empty `Data` without freeing that buffer (FoundationEssentials
/// `readBytesFromFile` / `readDataFromFile`, Swift 6.3), so every read of an empty file —
/// a fresh metrics.jsonl, an empty config — leaked 4 KB.
///
/// - Parameter regularOnly: refuse devices, pipes and sockets (opened without blocking,
///   so a pipe with no writer cannot hang the caller); otherwise only folders are refused.
public func readFileBytes(_ path: String, limit: Int = .max, regularOnly: Bool = true) throws(FileReadError)
  -> [UInt8]
{
  let fd = open(path, O_RDONLY | O_CLOEXEC | (regularOnly ? O_NONBLOCK : 0))
  guard fd >= 0 else { throw .cannotOpen(errno) }
  defer { close(fd) }
  var info = stat()
  guard fstat(fd, &info) == 0 else { throw .cannotRead(errno) }
  switch info.st_mode & S_IFMT {
  case S_IFDIR: throw .directory
  case S_IFREG: break
  default: if regularOnly { throw .notRegular }
  }
  // The size is a hint: the loop copes with files that change while being read, and with
  // /proc files and devices that report 0.
  var bytes = [UInt8](repeating: 0, count: min(max(Int(info.st_size), 0), limit))
  var filled = 0
  while true {
    if filled == bytes.count {
      guard filled < limit else { break }
      bytes.append(contentsOf: repeatElement(0, count: min(max(filled, 65536), limit - filled)))
    }
    let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + filled, $0.count - filled) }
    if n < 0 {
      if errno == EINTR { continue }
      throw .cannotRead(errno)
    }
    if n == 0 { break }
    filled += n
  }
  bytes.removeSubrange(filled...)
  return bytes
}

/// `readFileBytes` as `Data` (for decoders), nil when the file cannot be read.
public func readWholeFile(_ path: String) -> Data? {
  (try? readFileBytes(path)).map { Data($0) }
}
