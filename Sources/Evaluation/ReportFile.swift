import Foundation
import Support

/// Writes an evaluation report (probe.json, finetune.json) as indented JSON with sorted
/// keys, atomically, creating its folder: a crash mid-write leaves the previous report.
///
/// - Throws: `EvaluationError` naming the folder when it cannot be created.
func writeReport<T: Encodable>(_ report: T, to path: String) throws {
  let folder = (path as NSString).deletingLastPathComponent
  do {
    if !folder.isEmpty { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }
  } catch {
    throw EvaluationError(
      folder, "cannot create the output folder (\(error.localizedDescription)); choose another with --out")
  }
  try writeAtomically(Array(try JSONEncoder.sortedKeysPretty.encode(report)) + [10], to: path)
}
