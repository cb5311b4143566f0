import Autograd
import Backbones
import Foundation
import NN
import Tasks
import Training
import Vision
import XCTest

/// The `train` keys that shape an optimizer step, each checked against what it must do:
/// `optimizer: sgd` and `lars` take the steps of their update rules, `clip_grad_norm`
/// bounds the step, `min_lr` is where the schedule ends, `ema_decay` writes the averaged
/// backbone and resumes the average exactly.
final class TrainerOptionTests: XCTestCase {
  var dir: URL!
  override func setUpWithError() throws {
    dir = FileManager.default.temporaryDirectory.appendingPathComponent("pretext-options-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
  }
  override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

  func trainer(_ name: String, _ configure: (inout TrainerSettings) -> Void) throws -> Trainer {
    let backbone = try TrainerTests.tinyViT()
    var taskRNG = RandomGenerator(seed: 2)
    let task = try TaskRegistry.make(
      "simclr", settings: JSONDecoderBox.decoder(for: #"{"projection_hidden": 32, "projection_output": 16}"#),
      backbone: backbone, using: &taskRNG)
    var s = TrainerSettings()
    s.batchSize = 16
    s.steps = 1
    s.baseLearningRate = 0.05
    s.logEvery = 1
    s.artifactsEvery = 0
    configure(&s)
    let t = try Trainer(
      task: task, backbone: backbone, source: TrainerTests.dataset(), settings: s,
      runDirectory: dir.appendingPathComponent(name).path)
    t.onProgress = { _ in }
    return t
  }

  /// Every trainable tensor with its group, a copy of its value before training, and
  /// (after `run`) its value and last gradient.
  struct Watched {
    let name: String
    let group: ParameterGroup
    let before: [Float]
    let tensor: Tensor
  }
  func watch(_ t: Trainer) -> [Watched] {
    [("backbone", t.backbone as Module), ("heads", t.task.heads)].flatMap { prefix, module in
      module.parameterGroups().map {
        Watched(
          name: "\(prefix).\($0.name)", group: $0.group, before: $0.tensor.scalars, tensor: $0.tensor)
      }
    }
  }

  func rates(_ name: String) throws -> [Double] {
    try String(contentsOf: dir.appendingPathComponent("\(name)/metrics.jsonl"), encoding: .utf8).split(separator: "\n")
      .map { try XCTUnwrap((try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["lr"] as? Double) }
  }

  func norm(_ x: [Float]) -> Double { x.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot() }

  /// SGD's first step (an empty momentum buffer) is w − lr·g, bit for bit.
  func testSGDTakesItsUpdateRule() throws {
    let t = try trainer("sgd") {
      $0.optimizer = "sgd"
      $0.weightDecay = 0
    }
    let watched = watch(t)
    _ = try t.run(resume: false)
    let lr = Float(try rates("sgd")[0])
    for w in watched {
      let g = try XCTUnwrap(w.tensor.grad, w.name).scalars
      XCTAssertEqual(w.tensor.scalars, zip(w.before, g).map { $0 - lr * $1 }, w.name)
    }
  }

  /// LARS scales each weight matrix's step to η·lr·‖w‖ (η = 0.001, the trust
  /// coefficient); biases and norms take the plain SGD step. The step is read back as
  /// w_after − w_before in float32, whose rounding (half an ulp per element) bounds the
  /// error of its norm by u·‖w‖ (u = 2⁻²⁴); a large rate keeps that small against the step.
  func testLARSScalesEachStepToTheWeightNorm() throws {
    let t = try trainer("lars") {
      $0.optimizer = "lars"
      $0.weightDecay = 0
      $0.baseLearningRate = 5
    }
    let watched = watch(t)
    _ = try t.run(resume: false)
    let lr = try rates("lars")[0]
    var adapted = 0
    for w in watched {
      let step = zip(w.tensor.scalars, w.before).map { $0 - $1 }
      if w.group == .decay && norm(w.before) > 0 {
        let expected = 0.001 * lr * norm(w.before)
        let rounding = Double(Float.ulpOfOne / 2) * (norm(w.before) + expected)
        XCTAssertEqual(norm(step), expected, accuracy: rounding + 1e-5 * expected, w.name)
        adapted += 1
      } else {
        let g = try XCTUnwrap(w.tensor.grad, w.name).scalars
        XCTAssertEqual(w.tensor.scalars, zip(w.before, g).map { $0 - Float(lr) * $1 }, w.name)
      }
    }
    XCTAssertGreaterThan(adapted, 4)
  }

  /// `clip_grad_norm`: the step is that of the clipped gradient (SGD's first step:
  /// exactly lr × the max norm), while the log keeps the norm before clipping. (Rounding of
  /// the read-back step as in the LARS test.)
  func testClipGradNormBoundsTheStep() throws {
    let maxNorm: Float = 0.01
    let t = try trainer("clip") {
      $0.optimizer = "sgd"
      $0.weightDecay = 0
      $0.clipGradientNorm = maxNorm
      $0.baseLearningRate = 5
    }
    let watched = watch(t)
    _ = try t.run(resume: false)
    let lr = try rates("clip")[0]
    let step = norm(watched.flatMap { w in zip(w.tensor.scalars, w.before).map { $0 - $1 } })
    let weights = norm(watched.flatMap(\.before))
    let expected = lr * Double(maxNorm)
    XCTAssertEqual(step, expected, accuracy: Double(Float.ulpOfOne / 2) * (weights + expected) + 1e-5 * expected)
    let logged = try XCTUnwrap(
      (try JSONSerialization.jsonObject(
        with: Data(contentsOf: dir.appendingPathComponent("clip/metrics.jsonl"))) as? [String: Any])?["grad_norm"]
        as? Double)
    XCTAssertGreaterThan(logged, 100 * Double(maxNorm), "the norm before clipping")
  }

  /// `min_lr`: the cosine ends at it, and no step goes below it.
  func testMinimumLearningRateIsWhereTheScheduleEnds() throws {
    let t = try trainer("min") {
      $0.steps = 20
      $0.minimumLearningRate = 0.01
      $0.warmupFraction = 0.1
    }
    _ = try t.run(resume: false)
    let lr = try rates("min")
    let peak = 0.05 * 16 / 256, floor = 0.01 * 16 / 256
    XCTAssertEqual(lr.max()!, peak, accuracy: 1e-12)
    XCTAssertGreaterThanOrEqual(lr.min()!, floor - 1e-15)
    // The last step's rate: cosine at (19 − 2) / 18 of the way from the peak to the floor.
    XCTAssertEqual(lr.last!, floor + (peak - floor) * 0.5 * (1 + cos(Double.pi * 17 / 18)), accuracy: 1e-12)
  }

  /// `ema_decay`: the averaged backbone is written beside the backbone, differs from it,
  /// and a run stopped and resumed ends with the average of an uninterrupted one, byte for
  /// byte.
  func testWeightAverageIsWrittenAndResumedExactly() throws {
    func make(_ name: String) throws -> Trainer {
      try trainer(name) {
        $0.steps = 6
        $0.emaDecay = 0.9
        $0.checkpointEvery = 2
      }
    }
    let full = try make("full")
    _ = try full.run(resume: false)
    let average = try Data(contentsOf: URL(fileURLWithPath: full.averagePath))
    XCTAssertNotEqual(average, try Data(contentsOf: URL(fileURLWithPath: full.backbonePath)))
    let first = try make("split")
    first.onProgress = { [unowned first] line in if line.hasPrefix("step 3/") { first.stopRequested = true } }
    XCTAssertEqual(try first.run(resume: false).steps, 3)
    let second = try make("split")
    XCTAssertEqual(try second.run(resume: true).steps, 6)
    XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: second.averagePath)), average)
  }
}
