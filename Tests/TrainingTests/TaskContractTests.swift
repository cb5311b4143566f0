import Autograd
import Backbones
import Foundation
import NN
import Optimization
import Tasks
import Training
import Vision
import XCTest

/// What every registered task must do, checked for every name in `TaskRegistry.names`
/// (a task added later is covered with no new test code) on a tiny ResNet and a tiny
/// ViT: a finite loss from sampled and collated images, gradients on every backbone and
/// trainable head parameter, training with the real trainer, and a resume from a
/// checkpoint with losses bit-identical to an uninterrupted run's.
final class TaskContractTests: XCTestCase {
  var dir: URL!
  override func setUpWithError() throws {
    dir = FileManager.default.temporaryDirectory.appendingPathComponent("pretext-contract-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
  }
  override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

  static let backbones: [BackboneConfig] = [
    .resnet(
      ResNetConfig(
        name: "resnet-test", block: .basic, layers: [1, 1, 1, 1], width: 4, inChannels: 1, stem: .small, imageSize: 16)),
    .vit(ViTConfig(name: "vit-test", imageSize: 16, patchSize: 4, inChannels: 1, width: 32, depth: 2, heads: 2)),
  ]

  /// Smaller heads than the defaults, for speed; a task not listed runs with its defaults.
  static let smallSettings: [String: String] = [
    "mae": #"{"decoder_width": 32, "decoder_depth": 1, "decoder_heads": 2}"#,
    "simclr": #"{"projection_hidden": 32, "projection_output": 16}"#,
    "relative-location": #"{"resize": 32, "patch_size": 8, "gap": 2, "jitter": 1, "head_hidden": 32}"#,
    "byol": #"{"projection_hidden": 32, "projection_output": 16, "predictor_hidden": 32}"#,
    "moco-v3": #"{"projection_hidden": 32, "projection_output": 16, "predictor_hidden": 32}"#,
  ]

  /// Backbone (seed 1) and task (seed 2), the same every call; nil when the task refuses
  /// this backbone with a `TaskError` (MAE takes only a ViT).
  func make(_ name: String, _ config: BackboneConfig) throws -> (backbone: any Backbone, task: any PretextTask)? {
    var rng = RandomGenerator(seed: 1)
    let backbone = try config.make(using: &rng)
    var taskRNG = RandomGenerator(seed: 2)
    let settings = try Self.smallSettings[name].map { try JSONDecoderBox.decoder(for: $0) }
    do {
      return (backbone, try TaskRegistry.make(name, settings: settings, backbone: backbone, using: &taskRNG))
    } catch is TaskError {
      return nil
    }
  }

  func trainerSettings() -> TrainerSettings {
    var s = TrainerSettings()
    s.batchSize = 8
    s.steps = 6
    s.baseLearningRate = 2e-3
    s.warmupFraction = 0.1
    s.logEvery = 1
    s.checkpointEvery = 2
    s.artifactsEvery = 0
    return s
  }

  func trainer(_ name: String, _ config: BackboneConfig, run: String) throws -> Trainer {
    let (backbone, task) = try XCTUnwrap(try make(name, config))
    let t = try Trainer(
      task: task, backbone: backbone, source: TrainerTests.dataset(count: 32), settings: trainerSettings(),
      runDirectory: dir.appendingPathComponent(run).path)
    t.onProgress = { _ in }
    return t
  }

  func losses(_ run: String) throws -> [Double] {
    let text = try String(contentsOf: dir.appendingPathComponent("\(run)/metrics.jsonl"), encoding: .utf8)
    return try text.split(separator: "\n").compactMap {
      (try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["loss"] as? Double
    }
  }

  func gradientNorm(_ t: Tensor) -> Double {
    guard let g = t.grad else { return 0 }
    return (0..<g.count).reduce(0.0) { $0 + Double(g.data[$1] * g.data[$1]) }.squareRoot()
  }

  func testEveryTaskOnEveryBackboneItAccepts() throws {
    XCTAssertGreaterThanOrEqual(TaskRegistry.names.count, 6)
    for name in TaskRegistry.names {
      var accepted: [String] = []
      for config in Self.backbones {
        guard let (backbone, task) = try make(name, config) else { continue }
        accepted.append(config.name)
        let label = "\(name) on \(config.name)"
        XCTAssertEqual(task.name, name, label)
        // Sample → collate → a finite loss.
        var rng = RandomGenerator(seed: 3)
        let images = TrainerTests.dataset(count: 6)
        let samples = try (0..<6).map { try task.sample(images.loadImage(at: $0), using: &rng) }
        let batch = try TaskBatch.collate(samples)
        let sides = try TaskRegistry.backboneInputs(
          name, settings: try Self.smallSettings[name].map { try JSONDecoderBox.decoder(for: $0) }, backbone: config)
        XCTAssertEqual(batch.views.map { $0.shape[2] }, sides, "\(label): the views' sizes are backboneInputs'")
        let output = try task.loss(batch, backbone: backbone)
        let loss = try output.loss.item()
        XCTAssertTrue(loss.isFinite, "\(label): loss \(loss)")
        XCTAssertTrue(output.metrics.allSatisfy { $0.value.isFinite }, "\(label): \(output.metrics)")
        // Backward: every backbone parameter and every trainable head parameter has a
        // gradient of positive norm; frozen ones (a target network) have none.
        try output.loss.backward()
        for (p, t) in backbone.namedParameters() {
          XCTAssertGreaterThan(gradientNorm(t), 0, "\(label): backbone.\(p) has no gradient")
        }
        for (p, t) in task.heads.namedParameters() {
          if t.requiresGrad {
            XCTAssertGreaterThan(gradientNorm(t), 0, "\(label): heads.\(p) has no gradient")
          } else {
            XCTAssertEqual(gradientNorm(t), 0, "\(label): the frozen heads.\(p) has a gradient")
          }
        }
        try assertResumesExactly(name, config, label)
      }
      XCTAssertFalse(accepted.isEmpty, "\(name) accepts neither a ResNet nor a ViT")
    }
  }

  /// Six steps straight, against three steps, a stop and a resume from the checkpoint:
  /// the same losses to the bit (this holds only if everything the loss depends on, a
  /// target network included, is saved and restored).
  func assertResumesExactly(_ name: String, _ config: BackboneConfig, _ label: String) throws {
    let run = "\(name)-\(config.name)"
    let full = try trainer(name, config, run: run + "-full")
    let summary = try full.run(resume: false)
    XCTAssertEqual(summary.steps, 6, label)
    XCTAssertTrue(summary.finalLoss.isFinite, "\(label): final loss \(summary.finalLoss)")
    let first = try trainer(name, config, run: run + "-split")
    first.onProgress = { [unowned first] line in if line.hasPrefix("step 3/") { first.stopRequested = true } }
    XCTAssertEqual(try first.run(resume: false).steps, 3, label)
    let resumed = try trainer(name, config, run: run + "-split").run(resume: true)
    XCTAssertEqual(resumed.resumedFromStep, 3, label)
    let (a, b) = (try losses(run + "-full"), try losses(run + "-split"))
    XCTAssertEqual(a.count, 6, label)
    XCTAssertEqual(b, a, "\(label): the resumed run's losses differ from the uninterrupted run's")
  }

  /// BYOL's target and MoCo v3's momentum encoder: saved in checkpoints, outside the
  /// optimizer, given no gradient, and after a step exactly m·target + (1 − m)·online with
  /// m from the cosine schedule at the step's progress.
  func testTargetNetworksGetNoGradientAndFollowTheEMARule() throws {
    for (name, base) in [("byol", 0.996), ("moco-v3", 0.99)] {
      for config in Self.backbones {
        let label = "\(name) on \(config.name)"
        let t = try trainer(name, config, run: "\(name)-\(config.name)-ema")
        let target = try XCTUnwrap(t.task.heads.childModules.first { $0.name == "target" }?.module, label)
        let onlineProjector = try XCTUnwrap(t.task.heads.childModules.first { $0.name == "projector" }?.module, label)
        let targetParameters = target.namedParameters()
        XCTAssertFalse(targetParameters.isEmpty, label)
        XCTAssertTrue(targetParameters.allSatisfy { !$0.tensor.requiresGrad }, "\(label): the target is not frozen")
        // The target starts as a copy of the online backbone and projector.
        let online = t.backbone.namedParameters().map { ("backbone." + $0.name, $0.tensor) }
          + onlineProjector.namedParameters().map { ("projector." + $0.name, $0.tensor) }
        XCTAssertEqual(online.map(\.0), targetParameters.map(\.name), label)
        for ((n, o), (_, g)) in zip(online, targetParameters) {
          XCTAssertEqual(o.scalars, g.scalars, "\(label): target \(n) is not the online copy")
        }
        let before = targetParameters.map { $0.tensor.scalars }
        // One step of a 6-step run, then a stop.
        t.onProgress = { [unowned t] line in if line.hasPrefix("step 1/") { t.stopRequested = true } }
        XCTAssertEqual(try t.run(resume: false).steps, 1, label)
        XCTAssertTrue(targetParameters.allSatisfy { $0.tensor.grad == nil }, "\(label): the target got a gradient")
        let m = cosineMomentum(base: base, fraction: 1.0 / 6)
        var moved = false
        for (i, ((n, o), (_, g))) in zip(online, targetParameters).enumerated() {
          let expected = zip(before[i], o.scalars).map { m * $0 + (1 - m) * $1 }
          XCTAssertEqual(g.scalars, expected, "\(label): target \(n) is not m·target + (1 − m)·online")
          moved = moved || expected != before[i]
        }
        XCTAssertTrue(moved, "\(label): the online network did not move, so the rule was not tested")
        // The checkpoint holds the target; the optimizer has no state for it.
        let file = try SafeTensors.read(path: try XCTUnwrap(Checkpoints.list(in: t.runDirectory).last, label))
        let names = file.tensors.map(\.name)
        XCTAssertTrue(names.contains { $0.hasPrefix("model.heads.target.backbone.") }, "\(label): \(names.prefix(5))")
        XCTAssertTrue(names.contains { $0.hasPrefix("optimizer.") && $0.contains("heads.projector.") }, label)
        XCTAssertFalse(names.contains { $0.hasPrefix("optimizer.") && $0.contains("heads.target.") }, label)
      }
    }
  }

  /// The README shows Sources/Tasks/Rotation.swift as the example of a task: the block of
  /// Swift after the line `<!-- Sources/Tasks/Rotation.swift -->` must be that file.
  /// Skipped while README.md has no such line.
  func testTheReadmeExampleIsTheRotationTask() throws {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent()
    let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
    let source = try String(contentsOf: root.appendingPathComponent("Sources/Tasks/Rotation.swift"), encoding: .utf8)
    let marker = "<!-- Sources/Tasks/Rotation.swift -->"
    guard readme.contains(marker) else { throw XCTSkip("README.md has no line \(marker) before its example task yet") }
    let block = try XCTUnwrap(Self.swiftBlock(after: marker, in: readme), "no ```swift block right after \(marker)")
    XCTAssertEqual(block, source, "README.md's example differs from Sources/Tasks/Rotation.swift")
  }

  /// The text of the ```swift block that follows `marker` (blank lines between allowed),
  /// with its last newline; nil when there is none.
  static func swiftBlock(after marker: String, in text: String) -> String? {
    guard let at = text.range(of: marker) else { return nil }
    let after = text[at.upperBound...]
    guard let open = after.range(of: "```swift\n"), after[..<open.lowerBound].allSatisfy(\.isWhitespace),
      let close = after[open.upperBound...].range(of: "\n```")
    else { return nil }
    return String(after[open.upperBound..<close.lowerBound]) + "\n"
  }

  func testTheReadmeBlockIsFoundAfterItsMarkerOnly() {
    let m = "<!-- f.swift -->"
    XCTAssertEqual(Self.swiftBlock(after: m, in: "intro\n\(m)\n\n```swift\nlet a = 1\nlet b = 2\n```\nmore"), "let a = 1\nlet b = 2\n")
    XCTAssertNil(Self.swiftBlock(after: m, in: "\(m)\ntext first\n```swift\nlet a = 1\n```\n"))
    XCTAssertNil(Self.swiftBlock(after: m, in: "```swift\nlet a = 1\n```\n"))
    XCTAssertNil(Self.swiftBlock(after: m, in: "\(m)\n```swift\nlet a = 1\n"))
  }
}
