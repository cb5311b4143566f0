import Autograd
import Backbones
import Experiments
import Foundation
import Tasks
import Vision
import XCTest

final class ConfigTests: XCTestCase {
  var dir: URL!
  override func setUpWithError() throws {
    dir = FileManager.default.temporaryDirectory.appendingPathComponent("pretext-config-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
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

  func testBaseFileOverridesAndDefaults() throws {
    _ = try write("base.yaml", """
      data:
        unlabeled: /images
      backbone: {preset: vit-cpu, in_channels: 1}
      train:
        batch_size: 64
        epochs: 3
      """)
    let path = try write("exp.yaml", """
      base: base.yaml
      name: exp
      task: {name: mae, mask_ratio: 0.5}
      train:
        epochs: 5
      """)
    let c = try ExperimentConfig.load(path: path, overrides: ["train.base_lr=0.001", "backbone.image_size=28"])
    XCTAssertEqual(c.name, "exp")
    XCTAssertEqual(c.data.unlabeled, "/images")
    XCTAssertEqual(c.train.batchSize, 64)  // from the base
    XCTAssertEqual(c.train.epochs, 5)  // overridden by the experiment
    XCTAssertEqual(c.train.baseLearningRate, 0.001)  // --set
    XCTAssertEqual(c.backbone.imageSize, 28)
    XCTAssertEqual(c.train.optimizer, "adamw")  // default
    XCTAssertEqual(c.taskName, "mae")
    XCTAssertEqual(c.runDirectory, "runs/exp")
    // The identity follows the resolved content.
    let same = try ExperimentConfig.load(path: path, overrides: ["train.base_lr=0.001", "backbone.image_size=28"])
    XCTAssertEqual(c.hash, same.hash)
    XCTAssertNotEqual(c.hash, try ExperimentConfig.load(path: path).hash)
  }

  func testErrorsNameTheKeyTheFileAndTheLine() throws {
    let path = try write("bad.yaml", """
      name: x
      train:
        batch_size: 64
        epoch: 3
      """)
    let unknown = error { try ExperimentConfig.load(path: path) }
    XCTAssertTrue(unknown.contains("bad.yaml:4"), unknown)
    XCTAssertTrue(unknown.contains("unknown key \"epoch\""), unknown)

    // A task's option out of range: the line of the key, not of the section.
    let taskFile = try write("task.yaml", "task:\n  name: mae\n  decoder_depth: 2\n  mask_ratio: 1.5\n")
    let m = try ExperimentConfig.load(path: taskFile)
    var rng = RandomGenerator(seed: 0)
    let vit = try m.makeBackbone(using: &rng)
    let k = error { _ = try m.makeTask(backbone: vit, using: &rng, sourcePath: taskFile) }
    XCTAssertTrue(k.contains("task.yaml:4: mae.mask_ratio must be in (0, 1), got 1.5"), k)

    let typed = try write("typed.yaml", "train:\n  batch_size: many\n")
    let t = error { try ExperimentConfig.load(path: typed) }
    XCTAssertTrue(t.contains("typed.yaml:2") && t.contains("train.batch_size"), t)

    let range = try write("range.yaml", "train:\n  batch_size: 1\n")
    let r = error { try ExperimentConfig.load(path: range) }
    XCTAssertTrue(r.contains("range.yaml:2") && r.contains("train.batch_size must be in [2, 1048576], got 1"), r)

    let top = try write("top.yaml", "name: a\nbackbon: {preset: vit-cpu}\n")
    XCTAssertTrue(error { try ExperimentConfig.load(path: top) }.contains("top.yaml:2: unknown key \"backbon\""))

    let task = try write("task.yaml", "task: {name: jigsaw}\n")
    XCTAssertTrue(error { try ExperimentConfig.load(path: task) }.contains("unknown task \"jigsaw\""))

    XCTAssertTrue(error { try ExperimentConfig.load(path: self.dir.appendingPathComponent("none.yaml").path) }.contains("no such config file"))
    let loop = try write("loop.yaml", "base: loop.yaml\n")
    XCTAssertTrue(error { try ExperimentConfig.load(path: loop) }.contains("loop"))
    XCTAssertTrue(error { try ExperimentConfig.load(path: loop, overrides: ["nokey"]) }.contains("loop"))
    let ok = try write("ok.yaml", "name: a\n")
    XCTAssertTrue(error { try ExperimentConfig.load(path: ok, overrides: ["=3"]) }.contains("key.path=value"))
  }

  func testEmptyFilesAreConfigsOfDefaults() throws {
    // Read without Foundation's file reader, which leaks a buffer on empty files (the
    // config fuzzer's empty input).
    let empty = try write("empty.yaml", "")
    let c = try ExperimentConfig.load(path: empty)
    XCTAssertEqual(c.name, "empty")
    XCTAssertEqual(c.taskName, "simclr")
    XCTAssertEqual(c.train.optimizer, "adamw")
    _ = try write("blank.yaml", "")
    let child = try write("child.yaml", "base: blank.yaml\ntask: {name: mae}\n")
    XCTAssertEqual(try ExperimentConfig.load(path: child).taskName, "mae")
    XCTAssertTrue(error { try ExperimentConfig.load(path: self.dir.path) }.contains("is a directory, not a config file"))
    XCTAssertTrue(error { try ExperimentConfig.load(path: "/dev/null") }.contains("/dev/null: not a regular file"))
    XCTAssertTrue(error { try CompareConfig.load(path: self.dir.path) }.contains("is a directory, not a compare file"))
    let compare = try CompareConfig.load(path: empty)
    XCTAssertEqual(compare.name, "empty")
    XCTAssertFalse(CompareConfig.isCompareFile(empty))
  }

  func testShippedExperimentsLoad() throws {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    for name in ["mae", "simclr", "relative-location", "rotation", "byol", "moco-v3"] {
      let path = root.appendingPathComponent("experiments/\(name).yaml").path
      let c = try ExperimentConfig.load(path: path)
      XCTAssertEqual(c.taskName, name)
      XCTAssertEqual(c.backbone.inChannels, 1)
      // The task builds for the configured backbone and makes a sample from a 28×28 image.
      var rng = RandomGenerator(seed: 0)
      let backbone = try c.backbone.config().make(using: &rng)
      let task = try c.makeTask(backbone: backbone, using: &rng, sourcePath: path)
      let sample = try task.sample(Image(width: 28, height: 28, channels: 1, filledWith: 100), using: &rng)
      XCTAssertFalse(sample.views.isEmpty)
      // Each view has the backbone's input size (MAE's and MoCo v3's ViT: 32 px; the
      // ResNet of SimCLR, BYOL and rotation: 28 px), or the patch input size (relative
      // location: 10-px patches).
      let size = name == "relative-location" ? try XCTUnwrap(c.taskNode["patch_input_size"]?.int) : backbone.config.imageSize
      XCTAssertTrue(sample.views.allSatisfy { $0.shape == [1, size, size] }, "\(name): \(sample.views.map(\.shape))")
    }
  }
}
