import Evaluation
import Experiments
import Foundation
import XCTest

/// The compare file: its schema, defaults, overrides and the errors it gives.
final class CompareConfigTests: XCTestCase {
  var dir: URL!
  override func setUpWithError() throws {
    dir = FileManager.default.temporaryDirectory.appendingPathComponent("pretext-compare-config-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir.appendingPathComponent("exp"), withIntermediateDirectories: true)
    _ = try write("exp/base.yaml", "backbone: {preset: vit-cpu, image_size: 16, patch_size: 4, in_channels: 1}\n")
    _ = try write("exp/mae.yaml", "base: base.yaml\nname: mae\ntask: {name: mae}\ntrain: {steps: 10}\n")
    _ = try write("exp/simclr.yaml", "base: base.yaml\nname: simclr\ntask: {name: simclr}\ntrain: {steps: 10}\n")
  }
  override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

  func write(_ name: String, _ text: String) throws -> String {
    let path = dir.appendingPathComponent(name).path
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    return path
  }

  func error(_ body: () throws -> Any) -> String {
    do {
      _ = try body()
      return "no error"
    } catch { return "\(error)" }
  }

  func testFullFileAndDefaults() throws {
    let path = try write(
      "exp/cmp.yaml",
      """
      name: side-by-side
      output: /tmp/out
      experiments:
        - mae.yaml
        - path: simclr.yaml
          set: [train.base_lr=0.001]
      set: [train.steps=3, train.batch_size=8]
      probe:
        train: /data/train
        test: /data/test
        labels_per_class: [100, all]
        label_fractions: [0.1]
        knn: false
        classifier: lbfgs
        layers: last
      report: {projection_points_per_class: 50}
      """)
    XCTAssertTrue(CompareConfig.isCompareFile(path))
    XCTAssertFalse(CompareConfig.isCompareFile(dir.appendingPathComponent("exp/mae.yaml").path))
    let c = try CompareConfig.load(path: path)
    XCTAssertEqual(c.name, "side-by-side")
    XCTAssertEqual(c.directory, "/tmp/out/side-by-side")
    XCTAssertEqual(
      c.experiments.map(\.path),
      [dir.appendingPathComponent("exp/mae.yaml").path, dir.appendingPathComponent("exp/simclr.yaml").path])
    XCTAssertEqual(c.experiments[1].overrides, ["train.base_lr=0.001"])
    XCTAssertTrue(c.experiments[1].location.hasSuffix("cmp.yaml:5"), c.experiments[1].location)
    XCTAssertEqual(c.overrides, ["train.steps=3", "train.batch_size=8"])
    XCTAssertEqual(c.probe.budgets, [.perClass(100), .all, .fraction(0.1)])
    XCTAssertFalse(c.probe.knn)
    XCTAssertEqual(c.probe.classifierSettings.method, .lbfgs)
    XCTAssertEqual(c.report.projectionPointsPerClass, 50)
    XCTAssertTrue(c.report.projection)
    // What a probe of one budget is asked.
    let o = c.probe.options(weights: "/r/backbone.safetensors", runDirectory: "/r", budget: .perClass(100))
    XCTAssertEqual(o.reportPath, "/r/probe-100-per-class.json")
    XCTAssertFalse(o.knnEnabled)
    XCTAssertEqual(o.layers, .last)
    XCTAssertEqual(o.train, "/data/train")

    // Defaults: the file's name, runs/, all labels on Fashion-MNIST's folders.
    let minimal = try write("exp/minimal.yaml", "experiments: [mae.yaml]\nprobe: {labels_per_class: 10}\n")
    let m = try CompareConfig.load(path: minimal)
    XCTAssertEqual(m.name, "minimal")
    XCTAssertEqual(m.directory, "runs/minimal")
    XCTAssertEqual(m.probe.budgets, [.perClass(10)])
    XCTAssertEqual(m.probe.test, "data/fashion-mnist/test")
    XCTAssertTrue(m.probe.knn && m.probe.baselines)
    // No file: plain experiment configs, overridable with compare.* on the command line.
    let implicit = try CompareConfig.load(path: nil, overrides: ["name=quick", "probe.labels_per_class=[5]"])
    XCTAssertEqual(implicit.name, "quick")
    XCTAssertEqual(implicit.probe.budgets, [.perClass(5)])
    XCTAssertEqual(try CompareConfig.load(path: nil).probe.budgets, [.all])
  }

  func testExperimentsAreLoadedWithTheirOverridesAndPlaced() throws {
    let path = try write(
      "exp/cmp.yaml",
      """
      name: c
      output: \(dir.appendingPathComponent("runs").path)
      experiments:
        - mae.yaml
        - {path: simclr.yaml, set: [train.steps=7]}
      set: [train.steps=3]
      """)
    let run = try CompareRun(config: try CompareConfig.load(path: path), overrides: ["train.batch_size=16"])
    XCTAssertEqual(run.planned.map(\.config.name), ["mae", "simclr"])
    XCTAssertEqual(run.planned[0].config.train.steps, 3)  // shared set
    XCTAssertEqual(run.planned[1].config.train.steps, 7)  // the entry's set comes after it
    XCTAssertEqual(run.planned.map(\.config.train.batchSize), [16, 16])  // the command line, last
    for p in run.planned {
      XCTAssertEqual(
        p.runDirectory, dir.appendingPathComponent("runs/c/\(p.config.name)-\(p.config.hash.prefix(8))").path)
    }
    // Another override is another config: another folder.
    let other = try CompareRun(config: try CompareConfig.load(path: path), overrides: ["train.batch_size=32"])
    XCTAssertNotEqual(other.planned[0].runDirectory, run.planned[0].runDirectory)
    // Plain experiment files added to (or instead of) a compare file.
    let plain = try CompareRun(
      config: try CompareConfig.load(path: nil), extraExperiments: [dir.appendingPathComponent("exp/mae.yaml").path])
    XCTAssertEqual(plain.planned.map(\.config.name), ["mae"])
    XCTAssertTrue(plain.planned[0].runDirectory.hasPrefix("runs/compare/mae-"))
  }

  func testErrorsNameTheFileAndLine() throws {
    let unknown = try write("exp/u.yaml", "name: x\nexperiments: [mae.yaml]\nprobes: {}\n")
    let u = error { try CompareConfig.load(path: unknown) }
    XCTAssertTrue(u.contains("u.yaml:3: unknown key \"probes\""), u)

    let nested = try write("exp/n.yaml", "experiments: [mae.yaml]\nprobe:\n  test: /t\n  neighbours: 5\n")
    let n = error { try CompareConfig.load(path: nested) }
    XCTAssertTrue(n.contains("n.yaml:4") && n.contains("unknown key \"neighbours\""), n)

    let typed = try write("exp/t.yaml", "experiments: [mae.yaml]\nprobe:\n  knn: maybe\n")
    let t = error { try CompareConfig.load(path: typed) }
    XCTAssertTrue(t.contains("t.yaml:3") && t.contains("probe.knn must be true or false"), t)

    let budget = try write("exp/b.yaml", "experiments: [mae.yaml]\nprobe:\n  labels_per_class: [100, some]\n")
    let b = error { try CompareConfig.load(path: budget) }
    XCTAssertTrue(b.contains("b.yaml:3") && b.contains("positive integer or all"), b)
    let zero = try write("exp/z.yaml", "experiments: [mae.yaml]\nprobe:\n  labels_per_class: 0\n")
    XCTAssertTrue(error { try CompareConfig.load(path: zero) }.contains("at least 1"))

    let classifier = try write("exp/c.yaml", "experiments: [mae.yaml]\nprobe:\n  classifier: svm\n")
    let c = error { try CompareConfig.load(path: classifier) }
    XCTAssertTrue(c.contains("c.yaml:3") && c.contains("classifier must be one of sgd, lars, lbfgs, ridge"), c)

    let entry = try write("exp/e.yaml", "experiments:\n  - mae.yaml\n  - {path: simclr.yaml, sets: [a=1]}\n")
    let e = error { try CompareConfig.load(path: entry) }
    XCTAssertTrue(e.contains("e.yaml:3") && e.contains("unknown key \"sets\""), e)

    let badName = try write("exp/slash.yaml", "name: a/b\nexperiments: [mae.yaml]\n")
    XCTAssertTrue(error { try CompareConfig.load(path: badName) }.contains("slash.yaml:1: name must be a folder name"))

    // Errors of an experiment name the compare entry and the experiment file.
    let missing = try write("exp/m.yaml", "experiments:\n  - mae.yaml\n  - nothere.yaml\n")
    let m = error { try CompareRun(config: try CompareConfig.load(path: missing)) }
    XCTAssertTrue(m.contains("m.yaml:3") && m.contains("nothere.yaml") && m.contains("no such config file"), m)
    let badSet = try write("exp/s.yaml", "experiments: [mae.yaml]\nset: [train.steps=many]\n")
    let s = error { try CompareRun(config: try CompareConfig.load(path: badSet)) }
    XCTAssertTrue(s.contains("s.yaml:1") && s.contains("train.steps"), s)
    let twins = try write("exp/d.yaml", "experiments: [mae.yaml, mae.yaml]\n")
    let d = error { try CompareRun(config: try CompareConfig.load(path: twins)) }
    XCTAssertTrue(d.contains("two experiments are named \"mae\""), d)
    let empty = try write("exp/empty.yaml", "experiments: []\n")
    XCTAssertTrue(error { try CompareRun(config: try CompareConfig.load(path: empty)) }.contains("no experiments"))
    // A command-line override of the compare file is named as such.
    let o = error { try CompareConfig.load(path: nil, overrides: ["probe.k=0"]) }
    XCTAssertTrue(o.contains("--set compare.probe") && o.contains("probe.k must be in [1, 1000000], got 0"), o)
  }

  func testShippedCompareFileLoads() throws {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent()
    let path = root.appendingPathComponent("experiments/compare-fashion-mnist.yaml").path
    XCTAssertTrue(CompareConfig.isCompareFile(path))
    let config = try CompareConfig.load(path: path)
    XCTAssertEqual(config.directory, "runs/fashion-mnist")
    XCTAssertEqual(config.probe.budgets, [.perClass(100), .all])
    let run = try CompareRun(config: config, overrides: ["train.minutes=2"])
    XCTAssertEqual(
      run.planned.map(\.config.taskName), ["mae", "simclr", "relative-location", "rotation", "byol", "moco-v3"])
    XCTAssertTrue(run.planned.allSatisfy { $0.config.train.minutes == 2 })
  }

  /// What a run folder holds decides whether a comparison trains, resumes, reuses or refuses it.
  func testRunFolderState() throws {
    let config = try ExperimentConfig.load(path: dir.appendingPathComponent("exp/mae.yaml").path)
    let run = dir.appendingPathComponent("runs/mae").path
    XCTAssertEqual(RunFolderState.of(run, for: config), .empty)
    try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: true)
    try config.resolvedYAML.write(toFile: run + "/config.yaml", atomically: true, encoding: .utf8)
    XCTAssertEqual(RunFolderState.of(run, for: config), .empty, "a config but no checkpoint: start over")
    // Finished: pretrain.json with this config's hash, and the backbone file.
    try "{\"config_hash\":\"\(config.hash)\",\"finished\":\"x\",\"seconds\":3,\"steps\":10}".write(
      toFile: run + "/pretrain.json", atomically: true, encoding: .utf8)
    XCTAssertEqual(RunFolderState.of(run, for: config), .empty, "no backbone file: not finished")
    try Data("w".utf8).write(to: URL(fileURLWithPath: run + "/backbone.safetensors"))
    XCTAssertEqual(
      RunFolderState.of(run, for: config),
      .finished(PretrainingRecord(configHash: config.hash, steps: 10, seconds: 3, finished: "x")))
    // Another config in the folder: refused, whatever else is there.
    let other = try ExperimentConfig.load(
      path: dir.appendingPathComponent("exp/mae.yaml").path, overrides: ["train.steps=11"])
    XCTAssertEqual(RunFolderState.of(run, for: other), .otherConfig)
  }
}
