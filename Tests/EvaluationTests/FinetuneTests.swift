import Autograd
import Backbones
import Evaluation
import Foundation
import NN
import Support
import Vision
import XCTest

/// `pretext finetune` on the probe tests' synthetic folders (three classes told apart by
/// which quadrant of a 14×14 gray image is bright): the whole recipe runs, learns the
/// task, is deterministic, and leaves a classifier `pretext predict` applies.
final class FinetuneTests: XCTestCase {
  var folders: ProbeTests!

  override func setUpWithError() throws {
    folders = ProbeTests(name: "fixture", testClosure: { _ in })
    try folders.setUpWithError()
  }

  override func tearDownWithError() throws { try folders.tearDownWithError() }

  func options(_ out: String) -> FinetuneOptions {
    var o = FinetuneOptions(
      weights: folders.path("run/backbone.safetensors"), train: folders.path("train"), test: folders.path("test"),
      outputDirectory: folders.path(out))
    // 60 labeled images, batch 16: 3 steps an epoch, 300 steps; every part of the ViT
    // recipe on (layer decay, drop path, label smoothing, Mixup/CutMix, moving average).
    o.settings.epochs = 100
    o.settings.batchSize = 16
    o.settings.baseLearningRate = 0.032  // peak 2e-3 at batch 16
    // A mirror turns "left" into a class that does not exist: no flips, gentle crops.
    o.settings.horizontalFlip = false
    o.settings.cropScale = [0.8, 1]
    return o
  }

  func testFinetuneLearnsIsDeterministicAndWritesAClassifierPredictUses() throws {
    let report = try Finetuning.run(options("a"))
    XCTAssertEqual(report.steps, 300)
    XCTAssertEqual(report.recipe.layerDecay, 0.75)
    XCTAssertEqual(report.recipe.dropPath, 0.1)
    XCTAssertNotNil(report.movingAverage)
    XCTAssertEqual(report.depth, "norm")
    XCTAssertEqual(report.testImages, 30)
    // Chance is 33%; raw pixels separate the classes perfectly (ProbeTests), so 300
    // steps on every layer must do far better than chance.
    XCTAssertGreaterThanOrEqual(report.top1, 80, report.table)
    XCTAssertEqual(report.top5, 100)  // three classes: top-5 is top-3
    let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: folders.path("a/finetune.json"))))
    XCTAssertEqual((json as? [String: Any])?["top1"] as? Double, report.top1)

    let again = try Finetuning.run(options("b"))
    XCTAssertEqual(again.top1, report.top1)
    XCTAssertEqual(again.finalLoss, report.finalLoss)
    XCTAssertEqual(
      try Data(contentsOf: URL(fileURLWithPath: folders.path("a/classifier.safetensors"))),
      try Data(contentsOf: URL(fileURLWithPath: folders.path("b/classifier.safetensors"))))

    let summary = try Prediction.run(
      classifier: folders.path("a/classifier.safetensors"), folder: folders.path("test"),
      output: folders.path("a/predictions.csv"))
    XCTAssertEqual(summary.images, 30)
    // The classifier file predicts what the fine-tuning evaluation measured.
    let csv = try String(contentsOfFile: folders.path("a/predictions.csv"), encoding: .utf8)
    let rows = csv.split(separator: "\n").dropFirst()
    let right = rows.filter { $0.hasPrefix($0.split(separator: ",")[1] + "/") }.count
    XCTAssertEqual(100 * Double(right) / 30, report.top1, accuracy: 1e-9)
  }

  func testFromScratchStartsFromRandomInitOfTheSameArchitecture() throws {
    var o = options("scratch")
    o.fromScratch = true
    o.settings.epochs = 2
    o.settings.randAugmentOperations = 2  // at the default magnitude, 9
    let report = try Finetuning.run(o)
    XCTAssertEqual(report.recipe.randAugment, RandAugmentRecipe(operations: 2, magnitude: 9))
    XCTAssertEqual(report.initialization, "random (seed 0)")
    XCTAssertNil(report.weightsSHA256)
    XCTAssertEqual(report.backbone, folders.tiny)
    XCTAssertEqual(report.steps, 6)

    o.weights = nil
    XCTAssertThrowsError(try Finetuning.run(o)) { error in
      XCTAssertTrue("\(error)".contains("--from-scratch"), "\(error)")
    }
  }

  func testBadSettingsNameTheOption() throws {
    var o = options("bad")
    o.settings.epochs = 1
    o.settings.batchSize = 61
    XCTAssertThrowsError(try Finetuning.run(o)) { XCTAssertTrue("\($0)".contains("--batch-size 61"), "\($0)") }
    o.settings.batchSize = 16
    o.settings.layerDecay = 1.5
    XCTAssertThrowsError(try Finetuning.run(o)) { XCTAssertTrue("\($0)".contains("--layer-decay"), "\($0)") }
    o.settings.layerDecay = nil
    o.settings.randAugmentOperations = 2
    o.settings.randAugmentMagnitude = 31
    XCTAssertThrowsError(try Finetuning.run(o)) {
      XCTAssertTrue("\($0)".contains("--rand-augment-magnitude") && "\($0)".contains("0...30"), "\($0)")
    }
    XCTAssertFalse(FileManager.default.fileExists(atPath: folders.path("bad/finetune.json")))
  }

  func testMixupAndCutMixMixEachImageWithItsPartner() {
    var rng = RandomGenerator(seed: 5)
    // Image i is filled with the value i: a mixed pixel tells which images it came from.
    func batch() -> Tensor {
      let t = Tensor.zeros([4, 1, 8, 8])
      for i in 0..<4 { for k in 0..<64 { t.data[i * 64 + k] = Float(i) } }
      return t
    }
    let mixup = BatchMixer(mixupAlpha: 0.8, cutmixAlpha: 0)
    let x = batch()
    let m = mixup.mix(x, using: &rng)
    XCTAssertEqual(m.kind, .mixup)
    XCTAssertTrue((0...1).contains(m.lambda))
    for i in 0..<4 {
      let partner = Float(3 - i)
      XCTAssertEqual(x.data[i * 64], m.lambda * Float(i) + (1 - m.lambda) * partner, accuracy: 1e-6)
    }
    let cutmix = BatchMixer(mixupAlpha: 0, cutmixAlpha: 1)
    let y = batch()
    let c = cutmix.mix(y, using: &rng)
    XCTAssertEqual(c.kind, .cutmix)
    for i in 0..<4 {
      // λ is exactly the share of pixels still the image's own.
      let own = (0..<64).filter { y.data[i * 64 + $0] == Float(i) }.count
      let pasted = (0..<64).filter { y.data[i * 64 + $0] == Float(3 - i) }.count
      XCTAssertEqual(own + pasted, 64)
      XCTAssertEqual(Float(own) / 64, c.lambda, accuracy: 1e-6)
    }
    XCTAssertEqual(BatchMixer(mixupAlpha: 0, cutmixAlpha: 0).mix(batch(), using: &rng).kind, .none)
  }
}
