import Autograd
import Backbones
import Foundation
import NN
import Tasks
import Training
import Vision
import XCTest

/// A task that behaves like `inner` except at chosen calls of `loss` (counted from 0),
/// where it injects a numerical fault: a NaN loss, or a finite loss whose gradient is
/// infinite (it adds √(w − w), which is 0 with an infinite derivative, for a head weight).
final class FaultInjectingTask: PretextTask, @unchecked Sendable {
  enum Fault { case nanLoss, infiniteGradient }
  let inner: any PretextTask
  let faults: [Int: Fault]
  private(set) var calls = 0
  /// What `afterStep` was given, in order.
  private(set) var progress: [TrainingProgress] = []

  init(_ inner: any PretextTask, faults: [Int: Fault]) {
    self.inner = inner
    self.faults = faults
  }

  var name: String { inner.name }
  var heads: Module { inner.heads }
  var inputNormalization: InputNormalization { inner.inputNormalization }
  func sample(_ image: Image, using rng: inout RandomGenerator) throws -> TaskSample {
    try inner.sample(image, using: &rng)
  }

  func afterStep(_ progress: TrainingProgress) throws { self.progress.append(progress) }

  func loss(_ batch: TaskBatch, backbone: any Backbone) throws -> TaskOutput {
    defer { calls += 1 }
    var output = try inner.loss(batch, backbone: backbone)
    switch faults[calls] {
    case .nanLoss?:
      output.loss = try output.loss * Float.nan
    case .infiniteGradient?:
      let w = heads.parameters[0]
      output.loss = try output.loss + (w - w.detached()).sqrt().sum()
    case nil:
      break
    }
    return output
  }
}

/// `nan_retries`: a non-finite loss or gradient rolls back to the last checkpoint with a
/// lower learning rate, and the lowered rate survives a resume.
final class RollbackTests: XCTestCase {
  var dir: URL!
  override func setUpWithError() throws {
    dir = FileManager.default.temporaryDirectory.appendingPathComponent("pretext-rollback-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
  }
  override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

  func settings(retries: Int) -> TrainerSettings {
    var s = TrainerSettings()
    s.batchSize = 16
    s.steps = 10
    s.baseLearningRate = 2e-3
    s.warmupFraction = 0.1
    s.logEvery = 1
    s.checkpointEvery = 3
    s.artifactsEvery = 0
    s.nanRetries = retries
    s.nanLearningRateFactor = 0.5
    return s
  }

  func trainer(_ name: String, retries: Int, faults: [Int: FaultInjectingTask.Fault]) throws -> Trainer {
    var rng = RandomGenerator(seed: 1)
    let backbone = try VisionTransformer(
      ViTConfig(name: "vit-test", imageSize: 16, patchSize: 4, inChannels: 1, width: 32, depth: 2, heads: 2),
      using: &rng)
    let inner = try TaskRegistry.make(
      "simclr", settings: JSONDecoderBox.decoder(for: #"{"projection_hidden": 32, "projection_output": 16}"#),
      backbone: backbone, using: &rng)
    let t = try Trainer(
      task: FaultInjectingTask(inner, faults: faults), backbone: backbone, source: TrainerTests.dataset(),
      settings: settings(retries: retries), runDirectory: dir.appendingPathComponent(name).path)
    t.onProgress = { _ in }
    return t
  }

  /// A task's progress follows the run state: after a rollback to the checkpoint of step
  /// 3 it is given steps 4, 5, … again, not a count of its own.
  func testTaskProgressFollowsARollback() throws {
    let t = try trainer("progress", retries: 1, faults: [5: .nanLoss])
    _ = try t.run(resume: false)
    let task = try XCTUnwrap(t.task as? FaultInjectingTask)
    XCTAssertEqual(task.progress.map(\.step), [1, 2, 3, 4, 5, 4, 5, 6, 7, 8, 9, 10])
    XCTAssertTrue(task.progress.allSatisfy { $0.totalSteps == 10 })
    XCTAssertEqual(task.progress.last?.fraction, 1)
    XCTAssertEqual(task.progress.first?.fraction, 0.1)
  }

  /// The lines of metrics.jsonl as dictionaries.
  func lines(_ name: String) throws -> [[String: Any]] {
    let text = try String(contentsOf: dir.appendingPathComponent("\(name)/metrics.jsonl"), encoding: .utf8)
    return try text.split(separator: "\n").map {
      try XCTUnwrap(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
    }
  }

  func steps(_ name: String) throws -> [(step: Int, loss: Double, lr: Double)] {
    try lines(name).filter { $0["event"] == nil }.map {
      (try XCTUnwrap($0["step"] as? Int), try XCTUnwrap($0["loss"] as? Double), try XCTUnwrap($0["lr"] as? Double))
    }
  }

  func testNaNLossRollsBackToTheLastCheckpointWithALowerLearningRate() throws {
    _ = try trainer("clean", retries: 0, faults: [:]).run(resume: false)
    // Call 5 is step 5 (0-based): the last checkpoint is step 3.
    let faulty = try trainer("faulty", retries: 2, faults: [5: .nanLoss])
    var messages: [String] = []
    faulty.onProgress = { messages.append($0) }
    let summary = try faulty.run(resume: false)
    XCTAssertEqual(summary.steps, 10)

    let events = try lines("faulty").filter { $0["event"] != nil }
    XCTAssertEqual(events.count, 1)
    XCTAssertEqual(events[0]["event"] as? String, "nan_rollback")
    XCTAssertEqual(events[0]["step"] as? Int, 5)
    XCTAssertEqual(events[0]["restored_step"] as? Int, 3)
    XCTAssertEqual(events[0]["lr_factor"] as? Double, 0.5)
    XCTAssertEqual(events[0]["reason"] as? String, "the loss is nan")
    XCTAssertTrue(
      messages.contains {
        $0.contains("step 5: the loss is nan; rolled back to step 3") && $0.contains("rollback 1 of 2")
      },
      "\(messages)")

    // Every step is logged once; before the checkpoint the run is the clean one, after it
    // the learning rate is halved.
    let clean = try steps("clean"), faultySteps = try steps("faulty")
    XCTAssertEqual(faultySteps.map(\.step), Array(1...10))
    for (a, b) in zip(clean, faultySteps) {
      if a.step <= 3 {
        XCTAssertEqual(a.loss, b.loss, "step \(a.step)")
        XCTAssertEqual(a.lr, b.lr, "step \(a.step)")
      } else {
        XCTAssertEqual(b.lr, a.lr * 0.5, accuracy: a.lr * 1e-12, "step \(a.step)")
      }
    }
  }

  func testNonFiniteGradientStopsWhenTheRetriesAreUsedUp() throws {
    // Step 2 fails, then step 0 twice more (no checkpoint yet: back to the start).
    let t = try trainer(
      "exhausted", retries: 2, faults: [2: .infiniteGradient, 3: .infiniteGradient, 4: .infiniteGradient])
    XCTAssertThrowsError(try t.run(resume: false)) {
      let message = "\($0)"
      XCTAssertTrue(message.hasPrefix("step 0: the gradient of heads.projection_fc1.weight has"), message)
      XCTAssertTrue(message.contains("after 2 rollback(s); the last checkpoint in"), message)
    }
    XCTAssertEqual(try lines("exhausted").filter { $0["event"] != nil }.count, 2)

    // Without retries the first fault stops the run, as it always did.
    let strict = try trainer("strict", retries: 0, faults: [1: .nanLoss])
    XCTAssertThrowsError(try strict.run(resume: false)) {
      XCTAssertTrue("\($0)".hasPrefix("step 1: the loss is nan; the last checkpoint in"), "\($0)")
      XCTAssertTrue("\($0)".contains("set nan_retries"), "\($0)")
    }
  }

  func testTheLowerLearningRateIsCheckpointedAndResumed() throws {
    _ = try trainer("straight", retries: 2, faults: [5: .nanLoss]).run(resume: false)
    // The same run stopped at step 7 (after the rollback, checkpoint saved on stop), then
    // resumed by a fresh trainer that injects nothing: it must continue at half the rate.
    let first = try trainer("split", retries: 2, faults: [5: .nanLoss])
    first.onProgress = { [unowned first] line in if line.hasPrefix("step 7/") { first.stopRequested = true } }
    XCTAssertEqual(try first.run(resume: false).steps, 7)
    let summary = try trainer("split", retries: 2, faults: [:]).run(resume: true)
    XCTAssertEqual(summary.resumedFromStep, 7)
    XCTAssertEqual(summary.steps, 10)
    let a = try steps("straight"), b = try steps("split")
    XCTAssertEqual(a.map(\.step), b.map(\.step))
    XCTAssertEqual(a.map(\.loss), b.map(\.loss))
    XCTAssertEqual(a.map(\.lr), b.map(\.lr))
    XCTAssertEqual(try lines("split").filter { $0["event"] != nil }.count, 1)
  }

  func testFreeSpaceCheckSaysHowMuchIsNeeded() throws {
    XCTAssertThrowsError(
      try RunFolder.checkFreeSpace(available: 1_000_000, oneSave: 45_000_000, wholeRun: 120_000_000, folder: "runs/x")
    ) {
      XCTAssertEqual(
        "\($0)",
        "the run folder runs/x has 1.0 MB free, less than the 45.0 MB a checkpoint needs; free some space or set `output` to another disk"
      )
    }
    XCTAssertEqual(
      try RunFolder.checkFreeSpace(available: 50_000_000, oneSave: 45_000_000, wholeRun: 120_000_000, folder: "runs/x"),
      "warning: the run folder runs/x has 50.0 MB free, and this run's checkpoints may need up to 120.0 MB (lower train.keep_checkpoints, or free some space)"
    )
    XCTAssertNil(
      try RunFolder.checkFreeSpace(available: nil, oneSave: 45_000_000, wholeRun: 120_000_000, folder: "runs/x"))
    XCTAssertNil(
      try RunFolder.checkFreeSpace(available: 200_000_000, oneSave: 45_000_000, wholeRun: 120_000_000, folder: "runs/x"))
  }
}
