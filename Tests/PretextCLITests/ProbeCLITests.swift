import Foundation
import NN
import XCTest

/// `pretext probe` and `pretext embed` as a user runs them, on folders made by
/// `pretext data import` from tiny synthetic IDX files.
final class ProbeCLITests: XCTestCase {
  var dir: URL!
  var weights: String { dir.appendingPathComponent("run/backbone.safetensors").path }
  var train: String { dir.appendingPathComponent("fm/train").path }
  var test: String { dir.appendingPathComponent("fm/test").path }

  override func setUpWithError() throws {
    dir = FileManager.default.temporaryDirectory.appendingPathComponent("pretext-probe-cli-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir.appendingPathComponent("run"), withIntermediateDirectories: true)
    try makeIDX(dir.appendingPathComponent("idx"))
    let imported = try runPretext([
      "data", "import", "fashion-mnist", "--source", dir.appendingPathComponent("idx").path, "--out",
      dir.appendingPathComponent("fm").path,
    ])
    XCTAssertEqual(imported.status, 0, imported.err)
    let saved = try runPretext([
      "inspect", "vit-cpu", "--in-channels", "1", "--image-size", "16", "--patch-size", "4", "--save-weights", weights,
    ])
    XCTAssertEqual(saved.status, 0, saved.err)
  }

  override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

  /// Fashion-MNIST-shaped IDX files, 40 training and 20 test images of 28×28 in 10
  /// classes; each class is a bright horizontal band at its own height, so raw pixels
  /// separate the classes.
  func makeIDX(_ folder: URL) throws {
    try writeTinyFashionMNIST(to: folder, train: 40, test: 20) { i, y, x in
      let band = (i % 10) * 2 + 4
      return abs(y - band) <= 1 ? UInt8(200 + (x * 7 + i) % 50) : UInt8((x * 13 + y * 7 + i) % 40)
    }
  }

  func testProbePrintsTheTableAndWritesProbeJSON() throws {
    let r = try runPretext(["probe", "--weights", weights, "--train", train, "--test", test, "--threads", "1"])
    XCTAssertEqual(r.status, 0, r.err)
    for text in ["backbone", "random init", "raw pixels", "linear top-1", "kNN top-1", "Δ raw pixels"] {
      XCTAssertTrue(r.out.contains(text), "\(text) in\n\(r.out)")
    }
    let json = try Data(contentsOf: dir.appendingPathComponent("run/probe.json"))
    let report = try XCTUnwrap(JSONSerialization.jsonObject(with: json) as? [String: Any])
    let results = try XCTUnwrap(report["results"] as? [[String: Any]])
    XCTAssertEqual(results.map { $0["model"] as? String }, ["backbone", "random-init", "raw-pixels"])
    let pixels = try XCTUnwrap(results[2]["linear"] as? [String: Double])
    XCTAssertEqual(pixels["top1"], 100, "bands at distinct heights are linearly separable")
    let weightsRecord = try XCTUnwrap(report["weights"] as? [String: Any])
    XCTAssertEqual((weightsRecord["sha256"] as? String)?.count, 64)
    XCTAssertEqual((report["labels"] as? [String: Any])?["used"] as? Int, 40)

    // --json, a label budget and --out; the features come from the cache of the first run
    // only when the output folder is the same, so here they are computed again.
    let out = dir.appendingPathComponent("small").path
    let small = try runPretext([
      "probe", "--weights", weights, "--train", train, "--test", test, "--labels-per-class", "2", "--no-baselines",
      "--classifier", "lbfgs", "--out", out, "--json",
    ])
    XCTAssertEqual(small.status, 0, small.err)
    let obj = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(small.out.utf8)) as? [String: Any])
    XCTAssertEqual((obj["labels"] as? [String: Any])?["used"] as? Int, 20)
    XCTAssertEqual((obj["results"] as? [Any])?.count, 1)
    XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/probe.json"))
  }

  func testASavedClassifierPredictsAFolderAsTheProbeScoredIt() throws {
    let classifier = dir.appendingPathComponent("classifier.safetensors").path
    let r = try runPretext([
      "probe", "--weights", weights, "--train", train, "--test", test, "--no-baselines", "--json", "--save-classifier",
      classifier, "--threads", "1",
    ])
    XCTAssertEqual(r.status, 0, r.err)
    let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any])
    let result = try XCTUnwrap((report["results"] as? [[String: Any]])?.first)
    let top1 = try XCTUnwrap((result["linear"] as? [String: Double])?["top1"])
    // The file is a backbone file too: its metadata is plain JSON, and it names the depth.
    let file = try SafeTensors.read(path: classifier)
    let info = try XCTUnwrap(
      JSONSerialization.jsonObject(with: Data(file.metadata["pretext.classifier"]!.utf8)) as? [String: Any])
    XCTAssertEqual(info["depth"] as? String, result["layer"] as? String)
    XCTAssertEqual((info["classes"] as? [String])?.count, 10)
    XCTAssertEqual(info["test_top1"] as? Double, top1)

    let csv = dir.appendingPathComponent("predictions.csv").path
    let p = try runPretext(["predict", "--weights", classifier, test, "--out", csv, "--top", "3", "--threads", "1"])
    XCTAssertEqual(p.status, 0, p.err)
    XCTAssertTrue(p.out.hasPrefix("wrote \(csv): 20 images ("), p.out)
    let lines = try String(contentsOfFile: csv, encoding: .utf8).split(separator: "\n").map(String.init)
    XCTAssertEqual(lines.first, "path,class,score,class_2,score_2,class_3,score_3")
    XCTAssertEqual(lines.count, 21)
    // The same features and head as the probe's test pass: the same accuracy, exactly.
    var correct = 0
    for line in lines.dropFirst() {
      let f = line.split(separator: ",").map(String.init)
      XCTAssertEqual(f.count, 7, line)
      if f[0].split(separator: "/").first.map(String.init) == f[1] { correct += 1 }
      let scores = [f[2], f[4], f[6]].compactMap(Double.init)
      XCTAssertEqual(scores, scores.sorted(by: >), "best first: \(line)")
      XCTAssertTrue(scores.allSatisfy { (0...1).contains($0) }, line)
    }
    XCTAssertEqual(Double(correct) / 20 * 100, top1, accuracy: 1e-9)
    // A plain backbone file is not a classifier, and says how to make one.
    let wrong = try runPretext(["predict", "--weights", weights, test, "--out", csv])
    XCTAssertEqual(wrong.status, 1)
    XCTAssertTrue(
      wrong.err.contains(
        "has no pretext.classifier metadata: a backbone file, not a classifier; make one with `pretext probe --weights"),
      wrong.err)
  }

  /// Every option of `pretext probe`, table-driven: each is recorded in probe.json and
  /// changes the result it governs against a run with the defaults. (On these 40 images
  /// the kNN temperature changes no vote: its effect is checked against the weighted-vote
  /// formula in ClassifierTests.)
  func testEveryProbeOptionIsRecordedAndActs() throws {
    let out = dir.appendingPathComponent("options").path
    func probe(_ extra: [String]) throws -> [String: Any] {
      let r = try runPretext(
        ["probe", "--weights", weights, "--train", train, "--test", test, "--no-baselines", "--out", out, "--json"]
          + ["--threads", "1"] + extra)
      XCTAssertEqual(r.status, 0, "\(extra): \(r.err)")
      return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any], "\(extra)")
    }
    /// The value at a dotted path ("results.0.linear.top1"), as JSON text.
    func value(_ report: [String: Any], _ path: String) -> String {
      var node: Any? = report
      for key in path.split(separator: ".") {
        if let i = Int(key), let array = node as? [Any] {
          node = i < array.count ? array[i] : nil
        } else {
          node = (node as? [String: Any])?[String(key)]
        }
      }
      guard let node, let json = try? JSONSerialization.data(withJSONObject: node, options: [.fragmentsAllowed, .sortedKeys])
      else { return "absent" }
      return String(decoding: json, as: UTF8.self)
    }
    let defaults = try probe([])
    let cases: [(args: [String], recorded: String, expected: String, changes: String?)] = [
      (["--classifier", "lars"], "classifier.method", "\"lars\"", "results.0.linear_final_loss"),
      (["--classifier", "ridge"], "classifier.method", "\"ridge\"", "results.0.linear_final_loss"),
      // 40 labels make 1 step an epoch: the default 100 epochs are raised to 1000 steps.
      (["--epochs", "2000"], "classifier.epochs", "2000", "results.0.linear_steps"),
      (["--lr", "0.01"], "classifier.base_lr", "0.01", "results.0.linear_final_loss"),
      (["--weight-decay", "0.1"], "classifier.weight_decay", "0.1", "results.0.linear_final_loss"),
      (["--k", "1"], "knn.k", "1", "results.0.knn.top1"),
      (["--temperature", "5"], "knn.temperature", "5", nil),
      (["--validation-fraction", "0.5"], "layer_selection.validation_fraction", "0.5", "layer_selection.validation_images"),
      (["--seed", "3"], "seed", "3", "results.0.linear_final_loss"),
      (["--concat-depths", "1"], "layer_selection.concatenated_depths", "1", "results.0.layer_scores"),
      (["--layers", "last"], "layer_selection.mode", "\"last\"", "results.0.layer"),
      (["--no-cache"], "results.0.seconds.features_cached", "false", nil),
    ]
    for c in cases {
      let report = try probe(c.args)
      XCTAssertEqual(value(report, c.recorded), c.expected, "\(c.args) is recorded as \(c.recorded)")
      XCTAssertEqual(Array((report["command_line"] as? [String] ?? []).suffix(c.args.count)), c.args)
      if let changed = c.changes {
        XCTAssertNotEqual(value(report, changed), value(defaults, changed), "\(c.args) changes \(changed)")
      }
    }
    // The run with the defaults read its features from the cache after the first run.
    XCTAssertEqual(value(try probe([]), "results.0.seconds.features_cached"), "true")
  }

  func testProbeErrorsAreClear() throws {
    let missing = try runPretext(["probe", "--weights", weights + ".missing", "--train", train, "--test", test])
    XCTAssertNotEqual(missing.status, 0)
    XCTAssertTrue(missing.err.contains("no such file"), missing.err)
    let both = try runPretext([
      "probe", "--weights", weights, "--train", train, "--test", test, "--labels-per-class", "2", "--label-fraction",
      "0.5",
    ])
    XCTAssertNotEqual(both.status, 0)
    XCTAssertTrue(both.err.contains("not both"), both.err)
    let tooMany = try runPretext([
      "probe", "--weights", weights, "--train", train, "--test", test, "--labels-per-class", "9",
    ])
    XCTAssertNotEqual(tooMany.status, 0)
    XCTAssertTrue(tooMany.err.contains("has only 4 training images"), tooMany.err)
    let badLayer = try runPretext([
      "probe", "--weights", weights, "--train", train, "--test", test, "--layers", "blocks.99",
    ])
    XCTAssertNotEqual(badLayer.status, 0)
    XCTAssertTrue(badLayer.err.contains("blocks.0"), badLayer.err)
    let badClassifier = try runPretext([
      "probe", "--weights", weights, "--train", train, "--test", test, "--classifier", "svm",
    ])
    XCTAssertNotEqual(badClassifier.status, 0)
    XCTAssertTrue(badClassifier.err.contains("lbfgs"), badClassifier.err)
  }

  func testEmbedAndProbeReadJPEGFolders() throws {
    // JPEG fixtures of every kind as two classes, beside one PNG; the weights take 1
    // channel at 16 px, so every image is converted and resized.
    let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .appendingPathComponent("VisionTests/Fixtures/jpeg").path
    let photos = dir.appendingPathComponent("photos").path
    let classes = [
      "train/patterns": ["gray", "444", "422", "420", "progressive", "arithmetic"].map { "pattern-\($0).jpg" },
      "train/other": (1...6).map { "orient-\($0).jpg" },
      "test/patterns": ["pattern-progressive-gray.jpg", "smooth.jpg"],
      "test/other": ["orient-7.jpg", "orient-8.jpg", "cmyk.jpg"],
    ]
    for (folder, names) in classes {
      try FileManager.default.createDirectory(atPath: photos + "/" + folder, withIntermediateDirectories: true)
      for name in names {
        try FileManager.default.copyItem(atPath: fixtures + "/" + name, toPath: photos + "/" + folder + "/" + name)
      }
    }
    try FileManager.default.copyItem(atPath: train + "/Bag/00008.png", toPath: photos + "/test/other/bag.png")

    let out = dir.appendingPathComponent("emb/photos.safetensors").path
    let embedded = try runPretext(["embed", "--weights", weights, photos + "/test", "--out", out])
    XCTAssertEqual(embedded.status, 0, embedded.err)
    XCTAssertTrue(embedded.out.contains("[6, 192]"), embedded.out)
    let csv = try String(contentsOfFile: dir.appendingPathComponent("emb/photos.csv").path, encoding: .utf8)
    XCTAssertEqual(
      csv.split(separator: "\n").dropFirst(),
      [
        "0,other/bag.png", "1,other/cmyk.jpg", "2,other/orient-7.jpg", "3,other/orient-8.jpg",
        "4,patterns/pattern-progressive-gray.jpg", "5,patterns/smooth.jpg",
      ])

    let probed = try runPretext([
      "probe", "--weights", weights, "--train", photos + "/train", "--test", photos + "/test", "--no-baselines",
      "--classifier", "ridge", "--layers", "last", "--threads", "1", "--out", dir.appendingPathComponent("p").path,
    ])
    XCTAssertEqual(probed.status, 0, probed.err)
    XCTAssertTrue(probed.out.contains("linear top-1"), probed.out)
  }

  func testEmbedWritesFeaturesAndTheCSV() throws {
    let out = dir.appendingPathComponent("emb/test.safetensors").path
    let r = try runPretext(["embed", "--weights", weights, test, "--out", out, "--layer", "blocks.2"])
    XCTAssertEqual(r.status, 0, r.err)
    XCTAssertTrue(r.out.contains("[20, 192]"), r.out)
    let csv = try String(contentsOfFile: dir.appendingPathComponent("emb/test.csv").path, encoding: .utf8)
    let lines = csv.split(separator: "\n")
    XCTAssertEqual(lines.count, 21)
    XCTAssertEqual(lines[0], "index,path")
    // The header of the safetensors file names the tensor and its shape.
    let bytes = try Data(contentsOf: URL(fileURLWithPath: out))
    let n = bytes.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
    let header = try XCTUnwrap(JSONSerialization.jsonObject(with: bytes.subdata(in: 8..<(8 + n))) as? [String: Any])
    XCTAssertEqual((header["features"] as? [String: Any])?["shape"] as? [Int], [20, 192])
  }
  /// `embed --batch-size` gives the same rows as the default batch (within float32
  /// rounding: a GEMM over another number of rows may sum in another order), `--json`
  /// prints the summary, and row i of the features is the image on CSV line i: embedding
  /// that image alone gives the same row.
  func testEmbedRowsFollowTheCSVAtAnyBatchSize() throws {
    let out = dir.appendingPathComponent("rows")
    let whole = try runPretext(["embed", "--weights", weights, test, "--out", out.appendingPathComponent("a.safetensors").path])
    XCTAssertEqual(whole.status, 0, whole.err)
    let batched = try runPretext([
      "embed", "--weights", weights, test, "--out", out.appendingPathComponent("b.safetensors").path, "--batch-size", "3",
      "--json",
    ])
    XCTAssertEqual(batched.status, 0, batched.err)
    let summary = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(batched.out.utf8)) as? [String: Any])
    XCTAssertEqual(summary["images"] as? Int, 20)
    XCTAssertEqual(summary["dimension"] as? Int, 192)
    XCTAssertEqual(summary["csv"] as? String, out.appendingPathComponent("b.csv").path)
    func features(_ name: String) throws -> [[Float]] {
      let t = try XCTUnwrap(try SafeTensors.read(path: out.appendingPathComponent(name).path)["features"])
      let rows = t.shape[0], width = t.shape[1], values = t.scalars
      return (0..<rows).map { Array(values[($0 * width)..<(($0 + 1) * width)]) }
    }
    func assertClose(_ a: [Float], _ b: [Float], _ label: String) {
      let scale = a.map { abs($0) }.max() ?? 0
      // float32 rounding differs by ~1e-6 of the scale through a 6-block ViT; another
      // image's row differs by the scale itself. 1e-4 sits far from both.
      let tolerance = 1e-4 * max(scale, 1)
      XCTAssertEqual(a.count, b.count, label)
      XCTAssertLessThanOrEqual(zip(a, b).map { abs($0 - $1) }.max() ?? .infinity, tolerance, label)
    }
    let a = try features("a.safetensors"), b = try features("b.safetensors")
    XCTAssertEqual(a.count, 20)
    for i in 0..<20 { assertClose(a[i], b[i], "row \(i), batch 3 against 256") }
    // The CSV: a header, then one line per row, paths relative to the folder, each once.
    let lines = try String(contentsOf: out.appendingPathComponent("a.csv"), encoding: .utf8).split(separator: "\n")
    XCTAssertEqual(lines.first, "index,path")
    let rows = lines.dropFirst().map { $0.split(separator: ",", maxSplits: 1).map(String.init) }
    XCTAssertEqual(rows.map { $0[0] }, (0..<20).map(String.init))
    XCTAssertEqual(Set(rows.map { $0[1] }).count, 20)
    for row in rows { XCTAssertTrue(FileManager.default.fileExists(atPath: test + "/" + row[1]), row[1]) }
    // Row 7 alone.
    let single = dir.appendingPathComponent("single")
    let picked = URL(fileURLWithPath: test + "/" + rows[7][1])
    try FileManager.default.createDirectory(at: single, withIntermediateDirectories: true)
    try FileManager.default.copyItem(at: picked, to: single.appendingPathComponent(picked.lastPathComponent))
    let alone = try runPretext(["embed", "--weights", weights, single.path, "--out", out.appendingPathComponent("c.safetensors").path])
    XCTAssertEqual(alone.status, 0, alone.err)
    assertClose(try features("c.safetensors")[0], a[7], "row 7 embedded alone")
  }
}
