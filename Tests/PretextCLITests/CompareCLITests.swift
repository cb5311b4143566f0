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
      "probe-2-per-class.json", "projection.json", "retrieval.json", "retrieval.png", "reconstruction-0000004.png",
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
    // Accuracy per budget, loss, PCA and t-SNE maps per run, and the label-free signals
    // logged at the last step (RankMe, feature spread: one chart each, a line per run).
    XCTAssertEqual(html.components(separatedBy: "<svg ").count - 1, 2 + 2 + 2 + 2 + 2)
    XCTAssertEqual(html.components(separatedBy: "features, t-SNE</title>").count - 1, 2)
    XCTAssertTrue(html.contains("<title>RankMe</title>") && html.contains("<title>Feature spread</title>"))
    XCTAssertTrue(html.contains("Nearest neighbours in feature space"))
    try assertReportTablesMatch(html: html, csv: csv)

    // Again: nothing is trained or probed, the files are untouched, the report is rewritten.
    let watched = [
      "backbone.safetensors", "metrics.jsonl", "probe-all.json", "probe-2-per-class.json", "projection.json",
      "retrieval.png",
    ].map { mae.appendingPathComponent($0) }
    let before = try watched.map(modified)
    let second = try compare()
    XCTAssertEqual(second.status, 0, second.err)
    XCTAssertEqual(second.err.components(separatedBy: "reusing the finished run").count - 1, 2, second.err)
    XCTAssertEqual(second.err.components(separatedBy: "reusing the probe").count - 1, 4, second.err)
    XCTAssertEqual(second.err.components(separatedBy: "reusing the projection").count - 1, 2, second.err)
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

  /// `finetune:` fine-tunes each run and trains the from-scratch baseline once for the
  /// architecture both runs share; the report's tables and results.csv show both, the
  /// same command again reuses all four reports, and a changed recipe key trains again.
  func testFinetuningJoinsTheComparison() throws {
    let finetune = [
      "--set", "compare.probe.labels_per_class=[2]", "--set", "compare.probe.classifier=ridge",
      "--set", "compare.finetune.labels_per_class=[2]", "--set", "compare.finetune.epochs=2",
      "--set", "compare.finetune.batch_size=4",
    ]
    let first = try compare(finetune)
    XCTAssertEqual(first.status, 0, first.err)
    // mae fine-tuned, the vit-cpu baseline trained, simclr fine-tuned, the baseline reused.
    XCTAssertTrue(first.err.contains("fine-tuning: 3 trained, 1 reused"), first.err)
    let folders = try runFolders()
    let scratch = try XCTUnwrap(folders.first { $0.hasPrefix("from-scratch-vit-cpu-") && $0.hasSuffix("-2-per-class") })
    XCTAssertEqual(folders.count, 3, "two runs and one baseline: \(folders)")
    var top1: [String: Double] = [:]
    for folder in folders {
      let path = folder == scratch ? folder : "\(folder)/finetune-2-per-class"
      let json = runs.appendingPathComponent("\(path)/finetune.json")
      let report = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: json)) as? [String: Any])
      XCTAssertEqual(report["steps"] as? Int, 2 * (20 / 4), "2 epochs of 20 labels in batches of 4: \(folder)")
      XCTAssertEqual(report["initialization"] as? String, folder == scratch ? "random (seed 0)" : "pretrained")
      XCTAssertTrue(FileManager.default.fileExists(atPath: runs.appendingPathComponent("\(path)/classifier.safetensors").path))
      top1[folder] = try XCTUnwrap(report["top1"] as? Double)
    }

    // results.csv: the fine-tuned top-1 on each backbone row, the baseline's on each random-init row.
    let csv = try String(contentsOf: runs.appendingPathComponent("results.csv"), encoding: .utf8)
    let rows = csv.split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
    let header = rows[0]
    let (model, experiment, tuned, steps) = (
      try XCTUnwrap(header.firstIndex(of: "model")), try XCTUnwrap(header.firstIndex(of: "experiment")),
      try XCTUnwrap(header.firstIndex(of: "finetune_top1")), try XCTUnwrap(header.firstIndex(of: "finetune_steps"))
    )
    for row in rows.dropFirst() {
      let run = try XCTUnwrap(folders.first { $0.hasPrefix(row[experiment] + "-") })
      switch row[model] {
      case "backbone": XCTAssertEqual(row[tuned], String(format: "%.2f", top1[run]!), "\(row)")
      case "random-init": XCTAssertEqual(row[tuned], String(format: "%.2f", top1[scratch]!), "\(row)")
      default: XCTAssertEqual(row[tuned], "", "raw pixels are not fine-tuned: \(row)")
      }
      XCTAssertEqual(row[steps], row[model] == "raw-pixels" ? "" : "10")
    }
    let html = try String(contentsOf: runs.appendingPathComponent("report.html"), encoding: .utf8)
    try assertReportTablesMatch(html: html, csv: csv)
    XCTAssertTrue(html.contains("<th>fine-tune top-1</th>") && html.contains("<h2>Fine-tuning</h2>"))
    let finetuneTable = html.components(separatedBy: "<h2>Fine-tuning</h2>")[1].components(separatedBy: "</table>")[0]
    XCTAssertEqual(finetuneTable.components(separatedBy: "<tr>").count - 2, 3, "mae, simclr and one baseline")
    XCTAssertTrue(html.contains("fine-tune top-1"), "the accuracy chart has the fine-tuning bars")

    let again = try compare(finetune)
    XCTAssertEqual(again.status, 0, again.err)
    XCTAssertTrue(again.err.contains("fine-tuning: 0 trained, 4 reused"), again.err)
    let changed = try compare(finetune + ["--set", "compare.finetune.label_smoothing=0"])
    XCTAssertEqual(changed.status, 0, changed.err)
    XCTAssertTrue(changed.err.contains("fine-tuning: 3 trained, 1 reused"), changed.err)

    let bad = try compare(finetune + ["--set", "compare.finetune.optimizer=lars"])
    XCTAssertNotEqual(bad.status, 0)
    XCTAssertTrue(bad.err.contains("finetune.optimizer") && bad.err.contains("adamw or sgd"), bad.err)
  }

  /// Every `probe:` key of a compare file makes the earlier probe reports stale: the
  /// compare run with it changed probes again (no "reusing the probe") and records the new
  /// value; the same command once more reuses them. `report.projection: false` leaves the
  /// PCA out.
  func testEveryProbeKeyMakesEarlierReportsStale() throws {
    // One label budget and the closed-form classifier keep the 15 compare runs short.
    let budget = ["--set", "compare.probe.labels_per_class=[2]", "--set", "compare.probe.classifier=ridge"]
    let first = try compare(budget)
    XCTAssertEqual(first.status, 0, first.err)
    let cases: [(set: String, recorded: (_ report: [String: Any]) -> Any?, expected: String)] = [
      ("k=3", { ($0["knn"] as? [String: Any])?["k"] }, "3"),
      ("temperature=0.5", { ($0["knn"] as? [String: Any])?["temperature"] }, "0.5"),
      ("classifier=lbfgs", { ($0["classifier"] as? [String: Any])?["method"] }, "lbfgs"),
      ("epochs=7", { ($0["classifier"] as? [String: Any])?["epochs"] }, "7"),
      ("batch_size=4", { ($0["classifier"] as? [String: Any])?["batch_size"] }, "4"),
      ("lr=0.02", { ($0["classifier"] as? [String: Any])?["base_lr"] }, "0.02"),
      ("weight_decay=0.3", { ($0["classifier"] as? [String: Any])?["weight_decay"] }, "0.3"),
      ("iterations=17", { ($0["classifier"] as? [String: Any])?["iterations"] }, "17"),
      ("layers=last", { ($0["layer_selection"] as? [String: Any])?["mode"] }, "last"),
      ("concat_depths=1", { ($0["layer_selection"] as? [String: Any])?["concatenated_depths"] }, "1"),
      ("validation_fraction=0.25", { ($0["layer_selection"] as? [String: Any])?["validation_fraction"] }, "0.25"),
      ("seed=5", { $0["seed"] }, "5"),
      ("knn=false", { $0["knn"] ?? "absent" }, "absent"),
      ("baselines=false", { ($0["results"] as? [Any])?.count }, "1"),
    ]
    for c in cases {
      // Back to the plain settings first, so that each case differs from the reports
      // before it in its own key alone.
      let plain = try compare(budget)
      XCTAssertEqual(plain.status, 0, plain.err)
      let r = try compare(budget + ["--set", "compare.probe.\(c.set)"])
      XCTAssertEqual(r.status, 0, "\(c.set): \(r.err)")
      XCTAssertFalse(r.err.contains("reusing the probe"), "\(c.set) makes the reports stale:\n\(r.err)")
      for folder in try runFolders() {
        let file = runs.appendingPathComponent("\(folder)/probe-2-per-class.json")
        let report = try XCTUnwrap(
          try JSONSerialization.jsonObject(with: Data(contentsOf: file)) as? [String: Any], file.path)
        XCTAssertEqual(c.recorded(report).map { "\($0)" }, c.expected, "\(c.set) in \(folder)")
      }
    }
    let again = try compare(budget + ["--set", "compare.probe.baselines=false"])
    XCTAssertEqual(again.err.components(separatedBy: "reusing the probe").count - 1, 2, again.err)
    // No projection: no projection.json written, no scatter in the report.
    for folder in try runFolders() {
      try? FileManager.default.removeItem(at: runs.appendingPathComponent("\(folder)/projection.json"))
    }
    let plain = try compare(budget + ["--set", "compare.report.projection=false"])
    XCTAssertEqual(plain.status, 0, plain.err)
    for folder in try runFolders() {
      XCTAssertFalse(FileManager.default.fileExists(atPath: runs.appendingPathComponent("\(folder)/projection.json").path))
    }
    let html = try String(contentsOf: runs.appendingPathComponent("report.html"), encoding: .utf8)
    XCTAssertFalse(html.contains("PCA"), "no projection section")
  }

  /// The HTML report's tables show the values of results.csv: its results table one row
  /// per backbone row of the CSV (matched by experiment and label budget), its baselines
  /// table one row per label budget and baseline.
  func assertReportTablesMatch(html: String, csv: String, file: StaticString = #filePath, line: UInt = #line) throws {
    let lines = csv.split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
    let header = try XCTUnwrap(lines.first)
    func column(_ name: String) throws -> Int { try XCTUnwrap(header.firstIndex(of: name), name) }
    let records = lines.dropFirst()
    let (model, linear1, linear5, knn1, budget, used, steps, layer) = (
      try column("model"), try column("linear_top1"), try column("linear_top5"), try column("knn_top1"),
      try column("label_budget"), try column("labels_used"), try column("pretrain_steps"), try column("layer")
    )
    let (gainRandomLinear, gainRandomKNN, gainPixelsLinear, gainPixelsKNN) = (
      try column("gain_linear_over_random_init"), try column("gain_knn_over_random_init"),
      try column("gain_linear_over_raw_pixels"), try column("gain_knn_over_raw_pixels")
    )
    // Tables: rows of cells, tags stripped.
    let tables = html.components(separatedBy: "<table>").dropFirst().map { chunk -> [[String]] in
      let table = chunk.components(separatedBy: "</table>")[0]
      return table.components(separatedBy: "<tr>").dropFirst().map { row in
        row.components(separatedBy: "</td>").dropLast().map { cell in
          String(cell[(cell.range(of: ">", options: .backwards).map { $0.upperBound } ?? cell.startIndex)...])
        }
      }.filter { !$0.isEmpty }
    }
    XCTAssertGreaterThanOrEqual(tables.count, 2, file: file, line: line)
    let backbones = records.filter { $0[model] == "backbone" }
    XCTAssertEqual(tables[0].count, backbones.count, "one results row per backbone row", file: file, line: line)
    let experiment = try column("experiment")
    for row in tables[0] {
      let record = try XCTUnwrap(
        backbones.first { row[0] == $0[experiment] && row[6] == "\($0[budget]) (\($0[used]) labels)" },
        "the CSV row of \(row[0]) at \(row[6])", file: file, line: line)
      XCTAssertEqual(
        Array(row[7...11]),
        [
          record[linear1], record[linear5], record[knn1], "\(record[gainRandomLinear]) / \(record[gainRandomKNN])",
          "\(record[gainPixelsLinear]) / \(record[gainPixelsKNN])",
        ], file: file, line: line)
      XCTAssertEqual(row[6], "\(record[budget]) (\(record[used]) labels)", file: file, line: line)
      XCTAssertTrue(row[4].hasSuffix("(\(record[steps]) steps)"), row[4], file: file, line: line)
    }
    let baselines = records.filter { $0[model] != "backbone" }
    // One baseline row per label budget and baseline model (the experiments share them).
    var seen = Set<String>()
    let distinct = baselines.filter { seen.insert("\($0[budget]) \($0[model]) \($0[layer])").inserted }
    XCTAssertEqual(tables[1].count, distinct.count, file: file, line: line)
    for row in tables[1] {
      let record = try XCTUnwrap(
        distinct.first {
          row[0] == "\($0[budget]) (\($0[used]) labels)"
            && row[1] == ($0[model] == "random-init" ? "random init" : "raw pixels")
        }, "the CSV row of \(row[1]) at \(row[0])", file: file, line: line)
      XCTAssertEqual(Array(row[2...5]), [record[layer], record[linear1], record[linear5], record[knn1]], file: file, line: line)
    }
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
