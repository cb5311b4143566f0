import Foundation
import XCTest

/// `pretext compare` end to end on a tiny synthetic Fashion-MNIST: two tasks pretrained
/// for a few steps, probed at two label budgets, the report written; then the same
/// command again, which must reuse every run and probe; then an interrupted run resumed
/// and a changed config trained in a new folder.
final class CompareCLITests: XCTestCase {
  var dir: URL!
  var runs: URL { dir.appendingPathComponent("runs/tiny") }

  override func setUpWithError() throws {
    dir = FileManager.default.temporaryDirectory.appendingPathComponent("pretext-compare-cli-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    // Each class a bright band at its own height, so the probes have something to find.
    try writeTinyFashionMNIST(to: dir.appendingPathComponent("idx"), train: 40, test: 20) { i, y, x in
      let band = (i % 10) * 2 + 4
      return abs(y - band) <= 1 ? UInt8(200 + (x * 7 + i) % 50) : UInt8((x * 13 + y * 7 + i) % 40)
    }
    let imported = try runPretext([
      "data", "import", "fashion-mnist", "--source", dir.appendingPathComponent("idx").path, "--out",
      dir.appendingPathComponent("fm").path,
    ])
    XCTAssertEqual(imported.status, 0, imported.err)
    let shared = """
      data: {unlabeled: \(dir.appendingPathComponent("fm/unlabeled").path)}
      backbone: {preset: vit-cpu, image_size: 16, patch_size: 4, in_channels: 1, width: 48}
      train: {batch_size: 8, steps: 4, log_every: 1, checkpoint_every: 2, artifacts_every: 2}
      """
    try "name: mae\ntask: {name: mae, decoder_width: 32, decoder_depth: 1, decoder_heads: 2}\n\(shared)\n".write(
      to: dir.appendingPathComponent("mae.yaml"), atomically: true, encoding: .utf8)
    try "name: simclr\ntask: {name: simclr, projection_hidden: 32, projection_output: 16}\n\(shared)\n".write(
      to: dir.appendingPathComponent("simclr.yaml"), atomically: true, encoding: .utf8)
    try """
    name: tiny
    output: \(dir.appendingPathComponent("runs").path)
    experiments: [mae.yaml, simclr.yaml]
    set: [train.seed=1]
    probe:
      train: \(dir.appendingPathComponent("fm/train").path)
      test: \(dir.appendingPathComponent("fm/test").path)
      labels_per_class: [2, all]
    report: {projection_points_per_class: 2}
    """.write(to: dir.appendingPathComponent("compare.yaml"), atomically: true, encoding: .utf8)
  }

  override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

  func compare(_ extra: [String] = []) throws -> (status: Int32, out: String, err: String) {
    try runPretext(["compare", dir.appendingPathComponent("compare.yaml").path, "--threads", "1"] + extra)
  }

  func runFolders() throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: runs.path).filter {
      var isDirectory: ObjCBool = false
      return FileManager.default.fileExists(atPath: runs.appendingPathComponent($0).path, isDirectory: &isDirectory)
        && isDirectory.boolValue
    }.sorted()
  }

  func modified(_ path: URL) throws -> Date {
    try XCTUnwrap(FileManager.default.attributesOfItem(atPath: path.path)[.modificationDate] as? Date)
  }

  func testCompareTrainsProbesReportsThenReusesEverything() throws {
    let first = try compare()
    XCTAssertEqual(first.status, 0, first.err)
    XCTAssertTrue(first.out.contains("| mae | mae |") && first.out.contains("| simclr | simclr |"), first.out)
    for name in ["results.csv", "report.md", "report.html"] {
      XCTAssertTrue(FileManager.default.fileExists(atPath: runs.appendingPathComponent(name).path), name)
    }
    let folders = try runFolders()
    XCTAssertEqual(folders.count, 2, "\(folders)")
    XCTAssertTrue(folders[0].hasPrefix("mae-") && folders[1].hasPrefix("simclr-"), "\(folders)")
    let mae = runs.appendingPathComponent(folders[0])
    for f in [
      "config.yaml", "pretrain.json", "backbone.safetensors", "metrics.jsonl", "probe-all.json",
      "probe-2-per-class.json", "projection.json", "reconstruction-0000004.png",
    ] {
      XCTAssertTrue(FileManager.default.fileExists(atPath: mae.appendingPathComponent(f).path), f)
    }
    // The folder name carries the start of the config hash that results.csv reports.
    let csv = try String(contentsOf: runs.appendingPathComponent("results.csv"), encoding: .utf8)
    let maeRow = try XCTUnwrap(csv.split(separator: "\n").first { $0.hasPrefix("mae,mae,backbone,") })
    XCTAssertTrue(maeRow.contains(",\(folders[0].dropFirst(4))"), "\(maeRow) / \(folders[0])")
    XCTAssertEqual(csv.split(separator: "\n").count, 1 + 2 * 2 * 3)
    let html = try String(contentsOf: runs.appendingPathComponent("report.html"), encoding: .utf8)
    XCTAssertTrue(html.contains("data:image/png;base64,"))
    XCTAssertEqual(html.components(separatedBy: "<svg ").count - 1, 2 + 2 + 2)

    // Again: nothing is trained or probed, the files are untouched, the report is rewritten.
    let watched = ["backbone.safetensors", "metrics.jsonl", "probe-all.json", "probe-2-per-class.json"].map {
      mae.appendingPathComponent($0)
    }
    let before = try watched.map(modified)
    let second = try compare()
    XCTAssertEqual(second.status, 0, second.err)
    XCTAssertEqual(second.err.components(separatedBy: "reusing the finished run").count - 1, 2, second.err)
    XCTAssertEqual(second.err.components(separatedBy: "reusing the probe").count - 1, 4, second.err)
    XCTAssertFalse(second.err.contains("step 1/"), "no training step ran:\n\(second.err)")
    XCTAssertTrue(second.err.contains("0 trained, 0 resumed, 2 reused; probes: 0 run, 4 reused"), second.err)
    XCTAssertEqual(try watched.map(modified), before)
    XCTAssertEqual(try runFolders(), folders)

    // An interrupted run (its last checkpoint and pretrain.json gone): resumed from step 2.
    let simclr = runs.appendingPathComponent(folders[1])
    try FileManager.default.removeItem(at: simclr.appendingPathComponent("pretrain.json"))
    try FileManager.default.removeItem(at: simclr.appendingPathComponent("checkpoint-00000004.safetensors"))
    let resumed = try compare()
    XCTAssertEqual(resumed.status, 0, resumed.err)
    XCTAssertTrue(resumed.err.contains("resuming \(simclr.path) at step 2 of 4"), resumed.err)
    XCTAssertTrue(resumed.err.contains("reusing the finished run \(mae.path)"), resumed.err)
    let lines = try String(contentsOf: simclr.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
      .split(separator: "\n")
    XCTAssertEqual(lines.count, 4, "each step logged once")
    // Resuming is exact: the same weights, so even the simclr probes are reused.
    XCTAssertTrue(resumed.err.contains("probes: 0 run, 4 reused"), resumed.err)

    // A changed config trains in a new folder and leaves the old ones alone.
    let changed = try compare(["--set", "train.steps=3"])
    XCTAssertEqual(changed.status, 0, changed.err)
    XCTAssertEqual(try runFolders().count, 4)
    XCTAssertEqual(try modified(watched[0]), before[0])
  }

  func testErrorsAreClear() throws {
    try "name: x\nexperiments: [mae.yaml]\nprobe: {labels_per_class: [lots]}\n".write(
      to: dir.appendingPathComponent("bad.yaml"), atomically: true, encoding: .utf8)
    let bad = try runPretext(["compare", dir.appendingPathComponent("bad.yaml").path])
    XCTAssertNotEqual(bad.status, 0)
    XCTAssertTrue(bad.err.contains("bad.yaml:3") && bad.err.contains("positive integer or all"), bad.err)
    // Probe folders are checked before any training.
    let missing = try compare(["--set", "compare.probe.test=/nonexistent/test"])
    XCTAssertNotEqual(missing.status, 0)
    XCTAssertTrue(missing.err.contains("/nonexistent/test"), missing.err)
    XCTAssertFalse(FileManager.default.fileExists(atPath: runs.path))
    let two = try runPretext([
      "compare", dir.appendingPathComponent("compare.yaml").path, dir.appendingPathComponent("bad.yaml").path,
    ])
    XCTAssertNotEqual(two.status, 0)
    XCTAssertTrue(two.err.contains("one compare file at a time"), two.err)
  }
}
