import Autograd
import Support
import Foundation
import NN

/// Keeps the step records up to `step` (the checkpoint resumed or rolled back to: the
/// steps after it are run again) and the first `events` rollback events (those the
/// training state counts); drops the rest and any line cut short by a crash.
func truncateMetrics(_ url: URL, after step: Int, events: Int) throws {
  struct Line: Decodable {
    let step: Int
    let event: String?
  }
  guard let data = readWholeFile(url.path) else { return }
  var kept: [Substring] = []
  var eventsKept = 0
  for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
    guard let record = try? JSONDecoder().decode(Line.self, from: Data(line.utf8)) else { continue }
    if record.event != nil {
      if eventsKept < events {
        kept.append(line)
        eventsKept += 1
      }
    } else if record.step <= step {
      kept.append(line)
    }
  }
  let text = kept.map { $0 + "\n" }.joined()
  try writeAtomically(Array(text.utf8), to: url.path)
}

/// `metrics.jsonl` of a run: one JSON object per line (step records, rollback events),
/// written by process 0 only (`enabled`).
final class MetricsLog {
  let url: URL
  private var file: FileHandle?

  /// Opens the log: emptied for a new run; for a resumed one, cut back to the
  /// checkpoint (`truncateMetrics`).
  init(directory: String, enabled: Bool, resumedFrom: Int?, events: Int) throws {
    url = URL(fileURLWithPath: RunFolder(directory).metrics)
    guard enabled else { return }
    if let resumedFrom { try truncateMetrics(url, after: resumedFrom, events: events) }
    file = try openAppending(url, truncate: resumedFrom == nil)
  }

  deinit { try? file?.close() }

  func append<T: Encodable>(_ line: T) throws {
    try file?.write(contentsOf: JSONEncoder.sortedKeys.encode(line) + Data("\n".utf8))
  }

  /// Keeps the steps up to `step` and the first `events` events (see `truncateMetrics`).
  func truncate(after step: Int, events: Int) throws {
    guard let open = file else { return }
    try open.close()
    try truncateMetrics(url, after: step, events: events)
    file = try openAppending(url, truncate: false)
  }
}

func openAppending(_ url: URL, truncate: Bool) throws -> FileHandle {
  if truncate || !FileManager.default.fileExists(atPath: url.path) {
    guard FileManager.default.createFile(atPath: url.path, contents: nil) else {
      throw TrainingError("cannot create \(url.path)")
    }
  }
  let h = try FileHandle(forWritingTo: url)
  try h.seekToEnd()
  return h
}
