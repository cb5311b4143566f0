import Autograd
import Backbones
import Foundation
import Tasks
import Training
import Vision
import XCTest

/// Test tier 4: every task's loss falls on a tiny seeded dataset, and an interrupted run
/// resumes with exactly the losses of an uninterrupted one.
final class TrainerTests: XCTestCase {
  var dir: URL!
  override func setUpWithError() throws {
    dir = FileManager.default.temporaryDirectory.appendingPathComponent("pretext-train-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
  }
  override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

  /// 64 gray 24×24 images: a bright bar (horizontal or vertical) and a blob on noise, over
  /// a brightness ramp when `ramp` is set (which makes patch positions learnable).
  static func dataset(count: Int = 64, size: Int = 24, ramp: Bool = false) -> InMemoryImages {
    var rng = RandomGenerator(seed: 99)
    var images: [Image] = []
    for _ in 0..<count {
      var img = Image(width: size, height: size, channels: 1)
      for i in 0..<img.pixels.count {
        let (x, y) = (i % size, i / size)
        img.pixels[i] = UInt8(rng.nextInt(below: 40) + (ramp ? 5 * x + 3 * y : 0))
      }
      let at = 3 + rng.nextInt(below: size - 6), vertical = rng.nextInt(below: 2) == 1
      for t in 2..<(size - 2) {
        if vertical { img[at, t] = 230 } else { img[t, at] = 230 }
      }
      let (cx, cy) = (4 + rng.nextInt(below: size - 8), 4 + rng.nextInt(below: size - 8))
      for y in (cy - 2)...(cy + 2) { for x in (cx - 2)...(cx + 2) { img[x, y] = 160 } }
      images.append(img)
    }
    return InMemoryImages(images)
  }

  func tinyViT(imageSize: Int = 16) throws -> any Backbone {
    var rng = RandomGenerator(seed: 1)
    return try VisionTransformer(
      ViTConfig(name: "vit-test", imageSize: imageSize, patchSize: 4, inChannels: 1, width: 32, depth: 2, heads: 2), using: &rng)
  }

  func settings(steps: Int, lr: Double = 2e-3) -> TrainerSettings {
    var s = TrainerSettings()
    s.batchSize = 16
    s.steps = steps
    s.baseLearningRate = lr
    s.warmupFraction = 0.1
    s.logEvery = 1
    s.checkpointEvery = 1000
    s.artifactsEvery = 0
    return s
  }

  func losses(_ run: URL) throws -> [Double] {
    let text = try String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
    return try text.split(separator: "\n").map {
      try XCTUnwrap((try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["loss"] as? Double)
    }
  }

  func train(
    _ taskName: String, backbone: any Backbone, settings: TrainerSettings, taskSettings: String? = nil, ramp: Bool = false
  ) throws -> [Double] {
    var rng = RandomGenerator(seed: 2)
    let decoder = try taskSettings.map { try JSONDecoderBox.decoder(for: $0) }
    let task = try TaskRegistry.make(taskName, settings: decoder, backbone: backbone, using: &rng)
    let run = dir.appendingPathComponent(taskName)
    let trainer = try Trainer(
      task: task, backbone: backbone, source: Self.dataset(ramp: ramp), settings: settings, runDirectory: run.path)
    trainer.onProgress = { _ in }
    let summary = try trainer.run(resume: false)
    XCTAssertEqual(summary.steps, settings.steps)
    XCTAssertTrue(FileManager.default.fileExists(atPath: summary.backbonePath))
    return try losses(run)
  }

  func assertFalls(_ l: [Double], by factor: Double, _ label: String) {
    let first = l.prefix(5).reduce(0, +) / 5, last = l.suffix(5).reduce(0, +) / 5
    XCTAssertLessThan(last, first * factor, "\(label): loss \(first) → \(last)")
  }

  func testMAELossFallsAndWritesReconstructions() throws {
    let l = try train(
      "mae", backbone: tinyViT(), settings: settings(steps: 40),
      taskSettings: #"{"decoder_width": 32, "decoder_depth": 1, "decoder_heads": 2, "norm_pix_loss": false}"#)
    assertFalls(l, by: 0.8, "mae")
    let files = try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("mae").path)
    XCTAssertTrue(files.contains { $0.hasPrefix("reconstruction-") && $0.hasSuffix(".png") }, "\(files)")
  }

  func testSimCLRLossFalls() throws {
    let l = try train("simclr", backbone: tinyViT(), settings: settings(steps: 150), taskSettings: #"{"projection_hidden": 64, "projection_output": 32}"#)
    assertFalls(l, by: 0.9, "simclr")
  }

  func testRelativeLocationLossFalls() throws {
    let l = try train(
      "relative-location", backbone: tinyViT(), settings: settings(steps: 150),
      taskSettings: #"{"resize": 24, "patch_size": 6, "gap": 2, "jitter": 1, "head_hidden": 64}"#, ramp: true)
    assertFalls(l, by: 0.9, "relative-location")
  }

  func testResumeGivesIdenticalLosses() throws {
    func makeTrainer(_ run: URL) throws -> Trainer {
      let backbone = try tinyViT()
      var rng = RandomGenerator(seed: 2)
      let task = try TaskRegistry.make(
        "simclr", settings: JSONDecoderBox.decoder(for: #"{"projection_hidden": 32, "projection_output": 16}"#),
        backbone: backbone, using: &rng)
      var s = settings(steps: 10)
      s.checkpointEvery = 3
      let t = try Trainer(task: task, backbone: backbone, source: Self.dataset(), settings: s, runDirectory: run.path)
      t.onProgress = { _ in }
      return t
    }
    let full = dir.appendingPathComponent("full"), split = dir.appendingPathComponent("split")
    _ = try makeTrainer(full).run(resume: false)
    let first = try makeTrainer(split)
    first.onProgress = { [unowned first] line in if line.hasPrefix("step 4/") { first.stopRequested = true } }
    XCTAssertEqual(try first.run(resume: false).steps, 4)
    let summary = try makeTrainer(split).run(resume: true)
    XCTAssertEqual(summary.resumedFromStep, 4)
    XCTAssertEqual(summary.steps, 10)
    XCTAssertEqual(try losses(split), try losses(full), "the resumed run's losses equal the uninterrupted run's")
    XCTAssertLessThanOrEqual(Checkpoints.list(in: split.path).count, 2)
  }

  func testMinutesBudgetStretchesTheSchedule() throws {
    var s = settings(steps: 0)
    s.minutes = 0.03  // about 2 s
    s.epochs = 0
    let backbone = try tinyViT()
    var rng = RandomGenerator(seed: 2)
    let task = try TaskRegistry.make(
      "simclr", settings: JSONDecoderBox.decoder(for: #"{"projection_hidden": 32, "projection_output": 16}"#),
      backbone: backbone, using: &rng)
    let trainer = try Trainer(task: task, backbone: backbone, source: Self.dataset(), settings: s, runDirectory: dir.path)
    trainer.onProgress = { _ in }
    let start = Date()
    let summary = try trainer.run(resume: false)
    XCTAssertGreaterThan(summary.steps, 10)
    XCTAssertEqual(summary.steps, summary.totalSteps)
    XCTAssertLessThan(Date().timeIntervalSince(start), 6)
    // The learning rate warmed up and decayed over the stretched schedule.
    let lrs = try String(contentsOf: dir.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n")
      .map { try XCTUnwrap((try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["lr"] as? Double) }
    XCTAssertLessThan(lrs.last!, lrs.max()! * 0.05)
  }

  func testBadSettingsAndUnwritableFolderFailBeforeTraining() throws {
    var s = settings(steps: 5)
    s.optimizer = "adam"
    let backbone = try tinyViT()
    var rng = RandomGenerator(seed: 2)
    let task = try TaskRegistry.make("simclr", backbone: backbone, using: &rng)
    XCTAssertThrowsError(try Trainer(task: task, backbone: backbone, source: Self.dataset(), settings: s, runDirectory: dir.path)) {
      XCTAssertTrue("\($0)".contains("train.optimizer"), "\($0)")
    }
    XCTAssertThrowsError(try TaskRegistry.make("jigsaw", backbone: backbone, using: &rng)) {
      XCTAssertTrue("\($0)".contains("known: mae, relative-location, simclr"), "\($0)")
    }
    let misspelt = try JSONDecoderBox.decoder(for: #"{"temprature": 0.1}"#)
    XCTAssertThrowsError(try TaskRegistry.make("simclr", settings: misspelt, backbone: backbone, using: &rng)) {
      XCTAssertTrue("\($0)".contains("temprature"), "\($0)")
    }
  }
}

/// Hands out a `Decoder` positioned on a JSON object (for task settings in tests).
enum JSONDecoderBox {
  struct Capture: Decodable {
    let decoder: Decoder
    init(from decoder: Decoder) throws { self.decoder = decoder }
  }
  static func decoder(for json: String) throws -> Decoder {
    try JSONDecoder().decode(Capture.self, from: Data(json.utf8)).decoder
  }
}
