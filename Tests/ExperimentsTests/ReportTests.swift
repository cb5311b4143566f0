import Backbones
import Evaluation
import Experiments
import Foundation
import Vision
import XCTest

#if canImport(FoundationXML)
  import FoundationXML
#endif

/// The report written from synthetic run folders: every file the comparison reads is
/// written by hand here, in the formats the trainer and the probe write.
final class ReportTests: XCTestCase {
  var dir: URL!
  override func setUpWithError() throws {
    dir = FileManager.default.temporaryDirectory.appendingPathComponent("pretext-report-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
  }
  override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

  static let classes = ["Bag", "Coat", "T-shirt_top"]

  /// A run folder as `pretext compare` leaves it: config.yaml, metrics.jsonl,
  /// pretrain.json, probe-all.json and probe-2-per-class.json, projection.json, and (MAE)
  /// two reconstruction grids.
  func makeRun(task: String, linear: Double, knn: Double?, pictures: Bool) throws -> String {
    let run = dir.appendingPathComponent(task).path
    try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: true)
    let config = """
      name: \(task)
      backbone: {preset: vit-cpu, image_size: 16, patch_size: 4, in_channels: 1}
      task: {name: \(task)}
      train: {batch_size: 32, steps: 40}
      """
    try config.write(toFile: run + "/config.yaml", atomically: true, encoding: .utf8)
    let hash = try ExperimentConfig.load(path: run + "/config.yaml").hash
    var metrics = ""
    for step in stride(from: 10, through: 40, by: 10) {
      metrics +=
        "{\"elapsed_seconds\":\(Double(step) / 2),\"epoch\":0.1,\"images_per_second\":64,\"loss\":\(3.0 / Double(step)),\"lr\":0.001,\"metrics\":{},\"step\":\(step)}\n"
    }
    try metrics.write(toFile: run + "/metrics.jsonl", atomically: true, encoding: .utf8)
    try "{\"config_hash\":\"\(hash)\",\"finished\":\"2025-01-01T00:00:00Z\",\"seconds\":20,\"steps\":40}\n".write(
      toFile: run + "/pretrain.json", atomically: true, encoding: .utf8)
    for (budget, used) in [("all", 30), ("2 per class", 6)] {
      let report = try probeReport(budget: budget, used: used, linear: linear, knn: knn)
      let name = budget == "all" ? "probe-all.json" : "probe-2-per-class.json"
      try report.write(to: URL(fileURLWithPath: run + "/" + name))
    }
    let projection = ProjectionFile(
      method: "pca", layer: "norm", folder: "/data/test", images: 30, featureDimension: 192,
      explainedVariance: [0.4, 0.2], classes: Self.classes,
      points: (0..<30).map { .init(x: Double($0 % 7) - 3, y: Double($0 % 5) * 0.5, label: $0 % 3) })
    try JSONEncoder().encode(projection).write(to: URL(fileURLWithPath: ProjectionFile.path(in: run)))
    if pictures {
      for step in [10, 40] {
        let image = Image(
          width: 12, height: 8, channels: 1, pixels: (0..<96).map { UInt8(($0 * 7 + step) % 256) })
        try PNG.write(image, to: run + String(format: "/reconstruction-%07d.png", step))
      }
    }
    return run
  }

  /// probe.json text as `Probe.run` writes it, with the given backbone accuracies and
  /// fixed baselines (random init 50/40, raw pixels 70/65).
  func probeReport(budget: String, used: Int, linear: Double, knn: Double?) throws -> Data {
    func json<T: Encodable>(_ v: T) throws -> Any {
      try JSONSerialization.jsonObject(with: try JSONEncoder().encode(v))
    }
    let config = try BackbonePreset.config("vit-cpu", imageSize: 16, patchSize: 4, inChannels: 1)
    func result(_ model: String, _ top1: Double, _ knnTop1: Double?, gains: Bool) -> [String: Any] {
      var r: [String: Any] = [
        "model": model, "description": model, "layer": model == "raw-pixels" ? "pixels" : "norm",
        "feature_dimension": 192, "layer_scores": [], "linear": ["top1": top1, "top5": 99.0], "linear_steps": 100,
        "linear_final_loss": 0.5,
        "seconds": ["features": 1.0, "features_cached": false, "layer_selection": 0.0, "linear": 1.0, "knn": 0.1],
      ]
      if let knnTop1 { r["knn"] = ["top1": knnTop1, "top5": 98.0] }
      if gains {
        r["gain_over_random_init"] = ["linear": top1 - 50] as [String: Any]
        r["gain_over_raw_pixels"] = ["linear": top1 - 70] as [String: Any]
      }
      return r
    }
    var object: [String: Any] = [
      "version": "test", "command_line": [], "date": "2025-01-01T00:00:00Z",
      "weights": [
        "path": "backbone.safetensors", "sha256": String(repeating: "0", count: 64), "bytes": 1,
        "architecture": "vit-cpu", "config": try json(config),
      ],
      "train": ["path": "/data/train", "images": 30, "classes": Self.classes, "fingerprint": "0"],
      "test": ["path": "/data/test", "images": 30, "classes": Self.classes, "fingerprint": "0"],
      "labels": ["budget": budget, "used": used, "per_class": [used / 3, used / 3, used / 3], "seed": 0],
      "preprocessing": try json(
        try Preprocessing(
          size: 16, channels: 1, normalization: InputNormalization(mean: [0.5], std: [0.5]), source: "weights file")),
      "layer_selection": [
        "mode": "all", "validation_fraction": 0.1, "training_images": 0, "validation_images": 0,
      ],
      "classifier": try json(LinearProbeSettings()), "seed": 0, "threads": 1,
      "results": [
        result("backbone", linear, knn, gains: true), result("random-init", 50, knn == nil ? nil : 40, gains: false),
        result("raw-pixels", 70, knn == nil ? nil : 65, gains: false),
      ],
      "seconds": ["images": 1.0, "total": 2.0],
    ]
    if knn != nil { object["knn"] = try json(KNNSettings()) }
    // Decoded once here so that a fixture the probe could not have written fails early.
    let data = try JSONSerialization.data(withJSONObject: object)
    _ = try JSONDecoder().decode(ProbeReport.self, from: data)
    return data
  }

  func testReportFromRunFolders() throws {
    let mae = try makeRun(task: "mae", linear: 81.25, knn: 77.5, pictures: true)
    let simclr = try makeRun(task: "simclr", linear: 60, knn: 55, pictures: false)
    let files = ["probe-all.json", "probe-2-per-class.json", "probe-missing.json"]
    let runs = try [mae, simclr].map { try RunRecord.load(runDirectory: $0, probeFiles: files) }
    XCTAssertEqual(runs[0].probes.count, 2, "a missing probe file is skipped")
    XCTAssertEqual(runs[0].steps, 40)
    XCTAssertEqual(try XCTUnwrap(runs[0].imagesPerSecond), 40.0 * 32 / 20, accuracy: 1e-9)
    XCTAssertEqual(runs[0].loss.count, 4)
    XCTAssertEqual(runs[0].pictures.count, 2)
    XCTAssertEqual(runs[0].parameters, runs[1].parameters)
    XCTAssertGreaterThan(runs[0].parameters, 100_000)

    let out = dir.appendingPathComponent("report").path
    let written = try CompareReport(name: "synthetic", runs: runs, commandLine: "pretext compare x.yaml").write(to: out)
    XCTAssertEqual(written.map { ($0 as NSString).lastPathComponent }, ["results.csv", "report.md", "report.html"])

    // CSV: the header, then one row per run, budget and model.
    let csv = try String(contentsOfFile: out + "/results.csv", encoding: .utf8).split(separator: "\n").map(String.init)
    XCTAssertEqual(csv[0], CompareReport.csvColumns.joined(separator: ","))
    XCTAssertEqual(csv.count, 1 + 2 * 2 * 3)
    let rows = csv.dropFirst().map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
    XCTAssertTrue(rows.allSatisfy { $0.count == CompareReport.csvColumns.count })
    func column(_ name: String) -> Int { CompareReport.csvColumns.firstIndex(of: name)! }
    let maeAll = try XCTUnwrap(
      rows.first {
        $0[column("experiment")] == "mae" && $0[column("model")] == "backbone" && $0[column("label_budget")] == "all"
      })
    XCTAssertEqual(maeAll[column("linear_top1")], "81.25")
    XCTAssertEqual(maeAll[column("knn_top1")], "77.50")
    XCTAssertEqual(maeAll[column("gain_linear_over_random_init")], "+31.25")
    XCTAssertEqual(maeAll[column("gain_linear_over_raw_pixels")], "+11.25")
    XCTAssertEqual(maeAll[column("pretrain_images_per_second")], "64.0")
    XCTAssertEqual(maeAll[column("pretrain_seconds")], "20.0")
    XCTAssertEqual(maeAll[column("labels_used")], "30")
    XCTAssertEqual(maeAll[column("config_hash")], runs[0].configHash)
    let pixels = try XCTUnwrap(rows.first { $0[column("model")] == "raw-pixels" })
    XCTAssertEqual(pixels[column("pretrain_seconds")], "", "baseline rows have no pretraining")
    XCTAssertEqual(pixels[column("parameters")], "")

    // Markdown: the table and one row per run and budget; the equal baselines once per budget.
    let md = try String(contentsOfFile: out + "/report.md", encoding: .utf8)
    XCTAssertTrue(md.contains("| experiment | task | backbone | parameters |"), md)
    XCTAssertTrue(md.contains("| mae | mae | vit-cpu (ViT 192 wide, 6 blocks, 16 px, 4 px patches)"), md)
    XCTAssertTrue(md.contains("all (30 labels)") && md.contains("2 per class (6 labels)"), md)
    XCTAssertEqual(md.components(separatedBy: "| random init |").count - 1, 2, md)

    // HTML: one page, no script and nothing fetched; the charts as inline SVG; the grids
    // as PNG data URIs holding the files' bytes.
    let html = try String(contentsOfFile: out + "/report.html", encoding: .utf8)
    XCTAssertTrue(html.hasPrefix("<!DOCTYPE html>"))
    XCTAssertFalse(html.lowercased().contains("<script"))
    XCTAssertFalse(html.contains("src=\"http") || html.contains("href=\"http") || html.contains("url("))
    let svgCount = html.components(separatedBy: "<svg ").count - 1
    XCTAssertEqual(svgCount, 2 + 2 + 2, "two accuracy charts, two loss curves, two projections")
    for text in [
      "Labels: all (30 labels)", "mae training loss", "principal component 1 (40.0% of variance)", "T-shirt_top",
    ] {
      XCTAssertTrue(html.contains(SVG.escape(text)), text)
    }
    XCTAssertTrue(html.contains("<polyline"))
    XCTAssertEqual(html.components(separatedBy: "<circle ").count - 1, 2 * (30 + 3), "points and legend dots")
    let uris = html.components(separatedBy: "src=\"data:image/png;base64,").dropFirst().map { $0.prefix { $0 != "\"" } }
    XCTAssertEqual(uris.count, 2)
    let firstGrid = try Data(contentsOf: URL(fileURLWithPath: mae + "/reconstruction-0000010.png"))
    XCTAssertEqual(Data(base64Encoded: String(uris[0])), firstGrid)

    // Well-formed: the page parses as XML (void elements are self-closed, text escaped).
    let parser = XMLParser(data: Data(html.utf8))
    XCTAssertTrue(parser.parse(), "report.html is not well-formed: \(String(describing: parser.parserError))")
  }

  func testLossCurveKeepsOnlyTheStepsTrainedAgainAfterARollback() throws {
    let run = try makeRun(task: "simclr", linear: 80, knn: 70, pictures: false)
    // Steps 10..40 logged, then a NaN at 45 rolled back to the checkpoint of step 20:
    // steps 30 and 40 were trained again, with other losses.
    var metrics = try String(contentsOfFile: run + "/metrics.jsonl", encoding: .utf8)
    metrics +=
      "{\"event\":\"nan_rollback\",\"step\":45,\"restored_step\":20,\"reason\":\"the loss is nan\",\"lr_factor\":0.5,\"rollback\":1,\"retries\":2}\n"
    for step in [30, 40] {
      metrics +=
        "{\"elapsed_seconds\":\(step),\"epoch\":0.1,\"images_per_second\":64,\"loss\":9.\(step),\"lr\":0.001,\"metrics\":{},\"step\":\(step)}\n"
    }
    try metrics.write(toFile: run + "/metrics.jsonl", atomically: true, encoding: .utf8)
    let record = try RunRecord.load(runDirectory: run, probeFiles: [])
    XCTAssertEqual(record.loss.map(\.step), [10, 20, 30, 40])
    XCTAssertEqual(record.loss.map(\.loss).suffix(2), [9.3, 9.4])
  }

  /// Evaluations logged during pretraining (the `eval` section's metrics in step records)
  /// become the report's "During pretraining" table and charts, for the runs that have
  /// them; a rollback drops the evaluations of the steps trained again.
  func testEvaluationsDuringPretrainingAreDrawn() throws {
    let simclr = try makeRun(task: "simclr", linear: 80, knn: 70, pictures: false)
    let mae = try makeRun(task: "mae", linear: 60, knn: 50, pictures: false)
    var metrics = ""
    for (step, top1, rank, spread) in [(20, 50.0, 10.0, 0.5), (40, 70.0, 12.0, 0.6), (60, 10.0, 1.0, 0.01)] {
      metrics +=
        "{\"elapsed_seconds\":\(step * 3),\"epoch\":0.1,\"images_per_second\":64,\"loss\":2,\"lr\":0.001,\"metrics\":{\"online_probe_loss\":1.5,\"online_probe_top1\":\(top1),\"rankme\":\(rank),\"feature_spread\":\(spread)},\"step\":\(step)}\n"
    }
    // Step 60 was rolled back to 40 and not trained again.
    metrics +=
      "{\"event\":\"nan_rollback\",\"step\":61,\"restored_step\":40,\"reason\":\"the loss is nan\",\"lr_factor\":0.5,\"rollback\":1,\"retries\":2}\n"
    try metrics.write(toFile: simclr + "/metrics.jsonl", atomically: true, encoding: .utf8)
    let runs = try [simclr, mae].map { try RunRecord.load(runDirectory: $0, probeFiles: []) }
    XCTAssertEqual(runs[0].evaluations.map(\.step), [20, 40])
    XCTAssertEqual(runs[0].evaluations[1].metrics, ["online_probe_top1": 70, "rankme": 12, "feature_spread": 0.6])
    XCTAssertEqual(runs[0].evaluations[1].seconds, 120)
    XCTAssertTrue(runs[1].evaluations.isEmpty)

    let report = CompareReport(name: "evaluated", runs: runs)
    let md = report.markdown()
    XCTAssertTrue(md.contains("## During pretraining"), md)
    XCTAssertTrue(md.contains("| simclr | 40 | 2.0 | 70.00 | 12.0 | 0.600 |"), md)
    XCTAssertFalse(md.contains("| mae | 40 |"), "a run without evaluations has no row")
    let html = try report.html()
    for title in ["Online linear probe", "Online linear probe against time", "RankMe", "Feature spread"] {
      XCTAssertTrue(html.contains("<title>\(title)</title>"), title)
    }
    // Without any evaluated run the section is absent.
    let plain = try CompareReport(name: "plain", runs: [runs[1]]).html()
    XCTAssertFalse(plain.contains("During pretraining"))
    XCTAssertFalse(CompareReport(name: "plain", runs: [runs[1]]).markdown().contains("During pretraining"))
  }

  func testReportWithoutKNNOrProbesStillRenders() throws {
    let run = try makeRun(task: "relative-location", linear: 66, knn: nil, pictures: false)
    let probed = try RunRecord.load(runDirectory: run, probeFiles: ["probe-all.json"])
    XCTAssertNil(probed.probes[0].knn)
    let report = CompareReport(name: "no-knn", runs: [probed])
    let html = try report.html()
    XCTAssertTrue(XMLParser(data: Data(html.utf8)).parse())
    XCTAssertFalse(html.contains("kNN top-1</text>"), "no kNN bars when kNN is off")
    XCTAssertTrue(report.csv().contains(",66.00,99.00,,,"))
    // Not yet probed: one row with the pretraining columns.
    let unprobed = try RunRecord.load(runDirectory: run, probeFiles: [], projection: false)
    let table = CompareReport(name: "x", runs: [unprobed]).resultsTable
    XCTAssertTrue(table.contains("not probed"), table)
    XCTAssertThrowsError(try RunRecord.load(runDirectory: dir.path, probeFiles: [])) {
      XCTAssertTrue("\($0)".contains("not a run folder"))
    }
  }

  func testTicksAndEscaping() {
    XCTAssertEqual(SVG.ticks(0, 100), [0, 20, 40, 60, 80, 100])
    XCTAssertEqual(SVG.ticks(0.13, 0.92, count: 4), [0.2, 0.4, 0.6, 0.8])
    // The accuracy axis starts 10 points below the lowest bar, at a multiple of 10.
    XCTAssertEqual(CompareReport.accuracyFloor([84.02, 75.33, 80.95]), 60)
    XCTAssertEqual(CompareReport.accuracyFloor([90]), 80)
    XCTAssertEqual(CompareReport.accuracyFloor([9.5, 50]), 0)
    XCTAssertEqual(CompareReport.accuracyFloor([]), 0)
    XCTAssertEqual(SVG.escape("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;")
    XCTAssertEqual(
      CompareReport.shellCommand(["pretext", "compare", "--set", "compare.probe.labels_per_class=[10]", "it's", ""]),
      "pretext compare --set 'compare.probe.labels_per_class=[10]' 'it'\\''s' ''")
    let chart = SVG.lineChart(
      title: "t", series: [.init(name: "loss", points: [(1, 2)], color: "#000")], xLabel: "step", yLabel: "loss")
    XCTAssertTrue(XMLParser(data: Data(chart.utf8)).parse())
    XCTAssertTrue(chart.contains("<circle"), "a single point is drawn as a dot")
    // A diverging loss (values far beyond Int's range) still gives a chart with its ticks.
    let huge = SVG.lineChart(
      title: "t", series: [.init(name: "loss", points: [(1, 1e30), (2, 3e30)], color: "#000")], xLabel: "step",
      yLabel: "loss")
    XCTAssertTrue(XMLParser(data: Data(huge.utf8)).parse())
    XCTAssertNotNil(huge.range(of: ">[0-9]{31}<", options: .regularExpression), "a tick label near 2e30")
  }
}
