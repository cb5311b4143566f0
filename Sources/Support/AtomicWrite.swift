import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// Why a file could not be written (`writeAtomically`): the path and the reason, as
/// "path: reason". The file that was there, if any, is unchanged.
public struct FileWriteError: Error, CustomStringConvertible, Sendable {
  public let path: String
  public let reason: String
  public init(_ path: String, _ reason: String) {
    self.path = path
    self.reason = reason
  }
  public var description: String { "\(path): \(reason)" }
}

/// Writes `bytes` to `path` so that a reader sees the old file or the whole new one,
/// never a part: through a temporary file in the same folder (rename(2) is atomic only
/// within one file system), fsync'd before the rename, and the folder fsync'd after it
/// so that the rename itself survives a crash. On failure the temporary file is removed
/// and nothing is replaced.
public func writeAtomically(_ bytes: [UInt8], to path: String) throws(FileWriteError) {
  let url = URL(fileURLWithPath: path)
  let name = url.lastPathComponent
  guard !path.isEmpty, !path.hasSuffix("/"), !name.isEmpty else {
    throw FileWriteError(path, "the path names a folder, not a file")
  }
  let folder = url.deletingLastPathComponent().path
  // O_EXCL on a name no other writer draws: two writers of one path never share a file.
  let temporary = folder + "/." + name + ".tmp-\(getpid())-\(UInt64.random(in: .min ... .max))"
  let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
  guard fd >= 0 else { throw FileWriteError(path, "cannot create \(temporary): \(String(cString: strerror(errno)))") }
  var written = 0
  var failure: Int32 = 0
  bytes.withUnsafeBytes { buffer in
    while written < buffer.count {
      let n = write(fd, buffer.baseAddress! + written, buffer.count - written)
      if n < 0 && errno == EINTR { continue }
      if n <= 0 {
        failure = n == 0 ? EIO : errno
        return
      }
      written += n
    }
    if fsync(fd) != 0 { failure = errno }
  }
  if close(fd) != 0 && failure == 0 { failure = errno }
  guard failure == 0 else {
    unlink(temporary)
    throw FileWriteError(path, "write failed: \(String(cString: strerror(failure))) (nothing was replaced)")
  }
  guard rename(temporary, path) == 0 else {
    let e = errno
    unlink(temporary)
    throw FileWriteError(path, "cannot replace the file: \(String(cString: strerror(e)))")
  }
  let folderFD = open(folder, O_RDONLY)
  if folderFD >= 0 {
    fsync(folderFD)
    close(folderFD)
  }
}
