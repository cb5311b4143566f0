import Foundation
import NN
import Support

/// The folder of one pretraining run: it owns the name of every file a run writes and the
/// checks made on the folder before training (writable, room for a checkpoint) and on
/// resume (damaged checkpoints set aside).
///
/// ```
/// config.yaml                 the resolved config (written by the experiment runner)
/// metrics.jsonl               step records and rollback events, a JSON object a line
/// checkpoint-<step>.safetensors  full training state, the newest `keep_checkpoints`
/// backbone.safetensors        the backbone alone, for the probe and for PyTorch
/// backbone-ema.safetensors    its moving average (with `ema_decay`)
/// pretrain.json               written when the budget is spent
/// ```
public struct RunFolder: Sendable, Equatable {
  public let path: String
  public init(_ path: String) { self.path = path }

  public func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }
  public var config: String { file("config.yaml") }
  public var metrics: String { file("metrics.jsonl") }
  public var backbone: String { file("backbone.safetensors") }
  public var backboneAverage: String { file("backbone-ema.safetensors") }
  public var record: String { file("pretrain.json") }

  public func checkpoint(step: Int) -> String { Checkpoints.path(step: step, in: path) }
  /// Checkpoint files, oldest first.
  public var checkpoints: [String] { Checkpoints.list(in: path) }

  /// Creates the folder and fails early (before any training) when it cannot be written
  /// or has too little room for one save; removes temporary files of writes cut short by
  /// a crash or a kill (the files they were replacing are intact: writes are atomic).
  /// Returns a warning when the room may not hold the whole run.
  func prepare(_ sizes: RunFileSizes, keep: Int) throws -> String? {
    try makeFolders(path)
    try checkWritable()
    for name in (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
    where name.hasPrefix(".") && name.contains(".tmp-") {
      try? FileManager.default.removeItem(atPath: file(name))
    }
    let existing = (checkpoints + [backbone, backboneAverage]).reduce(0) {
      $0 + ((try? FileManager.default.attributesOfItem(atPath: $1)[.size] as? Int) ?? 0)
    }
    return try Self.checkFreeSpace(
      available: Self.availableBytes(at: path), oneSave: sizes.oneSave, wholeRun: sizes.wholeRun(keep: keep) - existing,
      folder: path)
  }

  /// `prepare`'s checks without writing anything (`--dry-run`): the folder, or the
  /// nearest folder above it that exists, must be a writable folder with room for a save.
  func checkWithoutWriting(_ sizes: RunFileSizes, keep: Int) throws -> String? {
    var existing = path
    var isFolder: ObjCBool = false
    while !FileManager.default.fileExists(atPath: existing, isDirectory: &isFolder) {
      let parent = (existing as NSString).deletingLastPathComponent
      if parent.isEmpty || parent == existing {
        existing = "."
        break
      }
      existing = parent
    }
    _ = FileManager.default.fileExists(atPath: existing, isDirectory: &isFolder)
    guard isFolder.boolValue else {
      throw TrainingError("cannot create the run folder \(path): a file has the name \(existing)")
    }
    guard access(existing, W_OK) == 0 else {
      let reason = String(cString: strerror(errno))
      throw TrainingError(
        existing == path
          ? "cannot write to the run folder \(path): \(reason)"
          : "cannot create the run folder \(path): \(existing): \(reason)")
    }
    return try Self.checkFreeSpace(
      available: Self.availableBytes(at: existing), oneSave: sizes.oneSave, wholeRun: sizes.wholeRun(keep: keep),
      folder: path)
  }

  /// Fails early (before any training) when the folder cannot be written.
  func checkWritable() throws {
    let probe = file(".write-test-\(getpid())")
    let fd = open(probe, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    guard fd >= 0, Foundation.write(fd, "ok", 2) == 2 else {
      let reason = String(cString: strerror(errno))
      if fd >= 0 {
        close(fd)
        unlink(probe)
      }
      throw TrainingError("cannot write to the run folder \(path): \(reason)")
    }
    close(fd)
    try? FileManager.default.removeItem(atPath: probe)
  }

  /// Free bytes for this user on the file system holding `path` (nil if unknown).
  static func availableBytes(at path: String) -> Int? {
    var info = statvfs()
    guard statvfs(path, &info) == 0 else { return nil }
    return Int(info.f_bavail) * Int(info.f_frsize)
  }

  /// Throws when `available` bytes cannot hold one save (a checkpoint and the backbone
  /// files, each written whole before the file it replaces goes); returns a warning when
  /// they cannot hold the whole run.
  public static func checkFreeSpace(available: Int?, oneSave: Int, wholeRun: Int, folder: String) throws -> String? {
    guard let available else { return nil }
    func mb(_ n: Int) -> String { String(format: "%.1f MB", Double(n) / 1e6) }
    if available < oneSave {
      throw TrainingError(
        "the run folder \(folder) has \(mb(available)) free, less than the \(mb(oneSave)) a checkpoint needs; "
          + "free some space or set `output` to another disk")
    }
    if available < wholeRun {
      return "warning: the run folder \(folder) has \(mb(available)) free, and this run's checkpoints may need up to "
        + "\(mb(wholeRun)) (lower train.keep_checkpoints, or free some space)"
    }
    return nil
  }

  /// The newest checkpoint that reads (sizes and checksum verified). A damaged one
  /// (truncated, or failing its checksum) is renamed `*.damaged` (kept for inspection,
  /// out of the checkpoint list), `report`ed, and the one before it is tried.
  func newestReadableCheckpoint(report: (String) -> Void) throws -> (file: SafeTensors, path: String) {
    let candidates = checkpoints
    guard !candidates.isEmpty else {
      throw TrainingError("--resume: no checkpoint in \(path) (start without --resume)")
    }
    var damaged: [String] = []
    for checkpoint in candidates.reversed() {
      do {
        return (try SafeTensors.read(path: checkpoint), checkpoint)
      } catch {
        let aside = checkpoint + ".damaged"
        try? FileManager.default.removeItem(atPath: aside)
        try FileManager.default.moveItem(atPath: checkpoint, toPath: aside)
        let next = checkpoint == candidates.first ? "" : ", trying the checkpoint before it"
        report("\(error); renamed to \((aside as NSString).lastPathComponent)\(next)")
        damaged.append((checkpoint as NSString).lastPathComponent)
      }
    }
    throw TrainingError(
      "--resume: every checkpoint in \(path) is damaged (\(damaged.joined(separator: ", ")), renamed *.damaged); "
        + "start the run again without --resume")
  }
}

/// Bytes of the files a save writes: a checkpoint, and the backbone file(s) beside it.
public struct RunFileSizes: Sendable, Equatable {
  public var checkpoint: Int
  public var backboneFiles: Int
  /// One save: each file is written whole before the one it replaces goes.
  var oneSave: Int { checkpoint + backboneFiles }
  /// The peak of a whole run: `keep` + 1 checkpoints and two copies of the backbone files.
  public func wholeRun(keep: Int) -> Int { (keep + 1) * checkpoint + 2 * backboneFiles }
}

/// `mkdir -p`, failing with the system's reason ("Permission denied") and the folder
/// that could not be made.
func makeFolders(_ path: String) throws {
  var isFolder: ObjCBool = false
  if FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) {
    if isFolder.boolValue { return }
    throw TrainingError("cannot create the run folder \(path): a file has that name")
  }
  let parent = (path as NSString).deletingLastPathComponent
  if !parent.isEmpty && parent != path { try makeFolders(parent) }
  if mkdir(path, 0o755) != 0 && errno != EEXIST {
    throw TrainingError("cannot create the run folder \(path): \(String(cString: strerror(errno)))")
  }
}
