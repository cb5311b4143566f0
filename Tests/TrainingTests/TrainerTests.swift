import Autograd
import Backbones
import Foundation
import NN
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

  /// A 2-block, 32-wide ViT on gray 16-px images (seed 1), the backbone of the trainer tests.
  static func tinyViT(imageSize: Int = 16) throws -> any Backbone {
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
    let initial = backbone.namedParameters().map { (name: $0.name, tensor: $0.tensor.copy()) }
    let summary = try trainer.run(resume: false)
    XCTAssertEqual(summary.steps, settings.steps)
    XCTAssertTrue(FileManager.default.fileExists(atPath: summary.backbonePath))
    assertBackboneTrained(backbone, from: initial, taskName)
    return try losses(run)
  }

  /// The task trains the backbone, not only its heads (whose loss alone can fall on frozen
  /// random features): every backbone tensor moved from its initial value and has a
  /// gradient of positive norm at the last step.
  func assertBackboneTrained(
    _ backbone: any Backbone, from initial: [(name: String, tensor: Tensor)], _ label: String,
    file: StaticString = #filePath, line: UInt = #line
  ) {
    let now = Dictionary(uniqueKeysWithValues: backbone.namedParameters().map { ($0.name, $0.tensor) })
    XCTAssertFalse(initial.isEmpty, file: file, line: line)
    for (name, before) in initial {
      guard let after = now[name] else { return XCTFail("\(label): \(name) is gone", file: file, line: line) }
      let moved = (0..<before.count).contains { before.data[$0] != after.data[$0] }
      XCTAssertTrue(moved, "\(label): \(name) did not change", file: file, line: line)
      let norm = after.grad.map { g in (0..<g.count).reduce(Float(0)) { $0 + g.data[$1] * g.data[$1] } } ?? 0
      XCTAssertGreaterThan(norm, 0, "\(label): \(name) has no gradient", file: file, line: line)
    }
  }

  func assertFalls(_ l: [Double], by factor: Double, _ label: String) {
    let first = l.prefix(5).reduce(0, +) / 5, last = l.suffix(5).reduce(0, +) / 5
    XCTAssertLessThan(last, first * factor, "\(label): loss \(first) → \(last)")
  }

  func testMAELossFallsAndWritesReconstructions() throws {
    let l = try train(
      "mae", backbone: Self.tinyViT(), settings: settings(steps: 40),
      taskSettings: #"{"decoder_width": 32, "decoder_depth": 1, "decoder_heads": 2, "norm_pix_loss": false}"#)
    assertFalls(l, by: 0.8, "mae")
    let files = try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("mae").path)
    XCTAssertTrue(files.contains { $0.hasPrefix("reconstruction-") && $0.hasSuffix(".png") }, "\(files)")
  }

  func testSimCLRLossFalls() throws {
    let l = try train("simclr", backbone: Self.tinyViT(), settings: settings(steps: 150), taskSettings: #"{"projection_hidden": 64, "projection_output": 32}"#)
    assertFalls(l, by: 0.9, "simclr")
  }

  func testRelativeLocationLossFalls() throws {
    let l = try train(
      "relative-location", backbone: Self.tinyViT(), settings: settings(steps: 150),
      taskSettings: #"{"resize": 24, "patch_size": 6, "gap": 2, "jitter": 1, "head_hidden": 64}"#, ramp: true)
    assertFalls(l, by: 0.9, "relative-location")
  }

  func testResumeGivesIdenticalLosses() throws {
    func makeTrainer(_ run: URL) throws -> Trainer {
      let backbone = try Self.tinyViT()
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

  /// A trainer whose clock is simulated: every read advances it by `tick` seconds (the
  /// trainer reads it once before the first step and once per step), so a step takes
  /// exactly `tick` whatever the machine.
  func timedTrainer(_ run: URL, minutes: Double, tick: Double, steps: Int = 0) throws -> Trainer {
    var s = settings(steps: steps)
    s.minutes = minutes
    s.epochs = 0.5  // a budget that must not be used
    s.checkpointEvery = 7
    let backbone = try Self.tinyViT()
    var rng = RandomGenerator(seed: 2)
    let task = try TaskRegistry.make(
      "simclr", settings: JSONDecoderBox.decoder(for: #"{"projection_hidden": 32, "projection_output": 16}"#),
      backbone: backbone, using: &rng)
    let trainer = try Trainer(task: task, backbone: backbone, source: Self.dataset(), settings: s, runDirectory: run.path)
    let clock = SimulatedClock(tick: tick)
    trainer.clock = { clock.read() }
    trainer.onProgress = { _ in }
    return trainer
  }

  func records(_ run: URL) throws -> [[String: Any]] {
    try String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n").map {
      try XCTUnwrap(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
    }
  }

  /// 0.0625 minutes at 1/16 s a step: exactly 60 steps, planned from the first one (the
  /// warmup, 10% of 60 steps, rises from step 1), ending on the budget.
  func testMinutesBudgetIsPlannedFromTheFirstStep() throws {
    let run = dir.appendingPathComponent("timed")
    let trainer = try timedTrainer(run, minutes: 0.0625, tick: 1.0 / 16)
    var lines: [String] = []
    trainer.onProgress = { lines.append($0) }
    let summary = try trainer.run(resume: false)
    XCTAssertEqual(summary.steps, 60)
    XCTAssertEqual(summary.totalSteps, 60)
    XCTAssertEqual(summary.seconds, 3.75)
    let rates = try records(run).map { try XCTUnwrap($0["lr"] as? Double) }
    XCTAssertEqual(rates.count, 60)
    let peak = 2e-3 * 16 / 256
    XCTAssertEqual(rates[0], peak / 6, accuracy: peak * 1e-9)
    for k in 1..<6 { XCTAssertGreaterThan(rates[k], rates[k - 1], "step \(k + 1) warms up") }
    for k in 7..<60 { XCTAssertLessThan(rates[k], rates[k - 1], "step \(k + 1) decays") }
    XCTAssertLessThan(rates[59], peak * 0.01)
    // Every progress line holds the real (estimated) total and the time left of the budget.
    XCTAssertEqual(lines.count, 60, "\(lines.prefix(3))")
    XCTAssertTrue(lines[0].hasPrefix("step 1/~60 | epoch 0.25 |"), lines[0])
    XCTAssertTrue(lines[0].hasSuffix("| ETA 3s"), lines[0])
    XCTAssertTrue(lines[59].hasPrefix("step 60/~60 |") && lines[59].hasSuffix("| ETA 0s"), lines[59])
  }

  /// Uneven step times through the trainer (the plan changes at every step): the run ends
  /// within one step of the budget, and the rate moves smoothly, by at most the bound of
  /// TrainingPlanTests.testMinutesScheduleHasNoBreakWhenThePlanChanges.
  func testMinutesBudgetWithUnevenSteps() throws {
    let run = dir.appendingPathComponent("uneven")
    let trainer = try timedTrainer(run, minutes: 0.0625, tick: 0)
    let ticks = [0.05, 0.1, 0.025]
    let clock = SimulatedClock(ticks: ticks)
    trainer.clock = { clock.read() }
    let summary = try trainer.run(resume: false)
    XCTAssertEqual(summary.steps, summary.totalSteps)
    XCTAssertEqual(summary.seconds, 3.75, accuracy: ticks.max()!)
    let rates = try records(run).map { try XCTUnwrap($0["lr"] as? Double) }
    let peak = 2e-3 * 16 / 256, warmup = 0.1
    let slope = peak * max(1 / warmup, Double.pi / (2 * (1 - warmup)))
    for k in 1..<rates.count {
      XCTAssertLessThanOrEqual(abs(rates[k] - rates[k - 1]), slope * 3 * ticks.max()! / 3.75, "step \(k + 1)")
    }
    XCTAssertLessThan(rates.last!, peak * 0.01)
  }

  /// A minutes run stopped at step 20 and resumed on a new clock plans the time that is
  /// left: it ends at step 60, with the rates and losses of the uninterrupted run.
  func testResumedMinutesBudgetUsesTheTimeLeft() throws {
    let full = dir.appendingPathComponent("full"), split = dir.appendingPathComponent("split")
    _ = try timedTrainer(full, minutes: 0.0625, tick: 1.0 / 16).run(resume: false)
    let first = try timedTrainer(split, minutes: 0.0625, tick: 1.0 / 16)
    first.onProgress = { [unowned first] line in if line.hasPrefix("step 20/") { first.stopRequested = true } }
    XCTAssertEqual(try first.run(resume: false).steps, 20)
    let second = try timedTrainer(split, minutes: 0.0625, tick: 1.0 / 16)
    let summary = try second.run(resume: true)
    XCTAssertEqual(summary.resumedFromStep, 20)
    XCTAssertEqual(summary.steps, 60)
    XCTAssertEqual(summary.seconds, 3.75)
    let a = try records(full), b = try records(split)
    XCTAssertEqual(a.map { $0["lr"] as? Double }, b.map { $0["lr"] as? Double })
    XCTAssertEqual(a.map { $0["loss"] as? Double }, b.map { $0["loss"] as? Double })
  }

  /// Steps come before minutes (TrainerSettings): a run with both takes the steps, and
  /// says the minutes are not used.
  func testStepsWinOverMinutes() throws {
    let run = dir.appendingPathComponent("both")
    let trainer = try timedTrainer(run, minutes: 0.0625, tick: 1.0 / 16, steps: 5)
    var lines: [String] = []
    trainer.onProgress = { lines.append($0) }
    let summary = try trainer.run(resume: false)
    XCTAssertEqual(summary.steps, 5)
    XCTAssertEqual(summary.totalSteps, 5)
    XCTAssertTrue(lines.contains { $0.contains("train.minutes 0.0625 is not used") }, "\(lines)")
    XCTAssertTrue(lines.contains { $0.hasPrefix("step 5/5 |") }, "\(lines)")
  }

  /// A budget shorter than one step still takes one step, and ends.
  func testMinutesBudgetShorterThanAStep() throws {
    let run = dir.appendingPathComponent("short")
    let trainer = try timedTrainer(run, minutes: 0.001, tick: 10)
    var lines: [String] = []
    trainer.onProgress = { lines.append($0) }
    let summary = try trainer.run(resume: false)
    XCTAssertEqual(summary.steps, 1)
    let steps = lines.filter { $0.hasPrefix("step ") }
    XCTAssertEqual(steps.count, 1, "\(lines)")
    XCTAssertTrue(steps[0].hasPrefix("step 1/~1 |") && steps[0].hasSuffix("| ETA 0s"), steps[0])
  }

  func testBadSettingsAndUnwritableFolderFailBeforeTraining() throws {
    var s = settings(steps: 5)
    s.optimizer = "adam"
    let backbone = try Self.tinyViT()
    var rng = RandomGenerator(seed: 2)
    let task = try TaskRegistry.make("simclr", backbone: backbone, using: &rng)
    XCTAssertThrowsError(try Trainer(task: task, backbone: backbone, source: Self.dataset(), settings: s, runDirectory: dir.path)) {
      XCTAssertTrue("\($0)".contains("train.optimizer"), "\($0)")
    }
    XCTAssertThrowsError(try TaskRegistry.make("jigsaw", backbone: backbone, using: &rng)) {
      XCTAssertTrue("\($0)".contains("known: byol, mae, moco-v3, relative-location, rotation, simclr"), "\($0)")
    }
    let misspelt = try JSONDecoderBox.decoder(for: #"{"temprature": 0.1}"#)
    XCTAssertThrowsError(try TaskRegistry.make("simclr", settings: misspelt, backbone: backbone, using: &rng)) {
      XCTAssertTrue("\($0)".contains("temprature"), "\($0)")
    }
  }
}

/// A clock for tests: each read returns the previous value plus the next of `ticks`
/// (cycling), starting at 1000.
final class SimulatedClock: @unchecked Sendable {
  let ticks: [Double]
  private var now = 1000.0
  private var reads = 0
  private let lock = NSLock()
  init(tick: Double) { ticks = [tick] }
  init(ticks: [Double]) { self.ticks = ticks }
  func read() -> Double {
    lock.lock()
    defer { lock.unlock() }
    now += ticks[reads % ticks.count]
    reads += 1
    return now
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
