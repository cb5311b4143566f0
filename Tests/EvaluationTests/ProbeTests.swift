import Autograd
import Backbones
import Evaluation
import Foundation
import NN
import Support
import Vision
import XCTest

/// The whole probe on small synthetic PNG folders: three classes told apart by which
/// quadrant of a 14×14 gray image is bright (plus noise), and a tiny random-init ViT.
final class ProbeTests: XCTestCase {
  var dir: String!
  let classes = ["bottom", "left", "top"]
  let tiny = BackboneConfig.vit(
    ViTConfig(name: "tiny-vit", imageSize: 16, patchSize: 4, inChannels: 1, width: 32, depth: 2, heads: 2))

  override func setUpWithError() throws {
    dir = FileManager.default.temporaryDirectory.appendingPathComponent("pretext-probe-\(UUID().uuidString)").path
    try makeFolder("train", perClass: 20, seed: 1)
    try makeFolder("test", perClass: 10, seed: 2)
    var rng = RandomGenerator(seed: 3)
    try FileManager.default.createDirectory(atPath: path("run"), withIntermediateDirectories: true)
    try BackboneWeights.save(try tiny.make(using: &rng), to: path("run/backbone.safetensors"))
  }

  override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

  func path(_ relative: String) -> String { (dir as NSString).appendingPathComponent(relative) }

  func makeFolder(_ name: String, perClass: Int, seed: UInt64, classes: [String]? = nil) throws {
    var rng = RandomGenerator(seed: seed)
    for (c, className) in (classes ?? self.classes).enumerated() {
      let folder = path("\(name)/\(className)")
      try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
      for i in 0..<perClass {
        var pixels = [UInt8](repeating: 0, count: 14 * 14)
        for y in 0..<14 {
          for x in 0..<14 {
            let bright = c == 0 ? y >= 7 : c == 1 ? x < 7 : y < 7
            let v = (bright ? 170 : 60) + Int(rng.nextNormal() * 25)
            pixels[y * 14 + x] = UInt8(max(0, min(255, v)))
          }
        }
        try PNG.write(Image(width: 14, height: 14, channels: 1, pixels: pixels), to: "\(folder)/\(i).png")
      }
    }
  }

  func options() -> ProbeOptions {
    var o = ProbeOptions(weights: path("run/backbone.safetensors"), train: path("train"), test: path("test"))
    o.classifier = LinearProbeSettings(method: .sgd, minimumSteps: 200)
    o.validationFraction = 0.2
    return o
  }

  func testProbeReportsBackboneAndBaselinesAndWritesProbeJSON() throws {
    var lines: [String] = []
    let report = try Probe.run(options()) { lines.append($0) }
    XCTAssertEqual(report.results.map(\.model), [.backbone, .randomInit, .rawPixels])
    XCTAssertEqual(report.labels.used, 60)
    XCTAssertEqual(report.labels.perClass, [20, 20, 20])
    XCTAssertEqual(report.test.images, 30)
    // Depth names of the tiny ViT: blocks.0 and the final norm; both were scored, and
    // so was their concatenation.
    XCTAssertEqual(report.backbone.layerScores.map(\.layer), ["blocks.0", "norm", "blocks.0+norm"])
    XCTAssertEqual(report.layerSelection.concatenatedDepths, 4)
    XCTAssertEqual(report.layerSelection.validationImages, 12)
    // Raw pixels separate the quadrants perfectly.
    let pixels = try XCTUnwrap(report.result(.rawPixels))
    XCTAssertEqual(pixels.featureDimension, 256)
    XCTAssertGreaterThanOrEqual(pixels.linear.top1, 95)
    XCTAssertGreaterThanOrEqual(try XCTUnwrap(pixels.knn).top1, 95)
    // Gains are differences of top-1 points.
    let gain = try XCTUnwrap(report.backbone.gainOverRawPixels)
    XCTAssertEqual(gain.linear, report.backbone.linear.top1 - pixels.linear.top1, accuracy: 1e-9)
    XCTAssertNotNil(report.backbone.gainOverRandomInit)
    // probe.json in the weights file's folder, decodable, with the weights hash.
    let json = try Data(contentsOf: URL(fileURLWithPath: path("run/probe.json")))
    let decoded = try JSONDecoder().decode(ProbeReport.self, from: json)
    XCTAssertEqual(decoded.weights.sha256, try SHA256.hex(ofFile: path("run/backbone.safetensors")))
    XCTAssertEqual(decoded.results.count, 3)
    XCTAssertTrue(report.table.contains("raw pixels"), report.table)
    XCTAssertFalse(report.backbone.seconds.featuresCached)
  }

  func testSameSeedSameResultAndTheCacheIsReused() throws {
    let first = try Probe.run(options())
    let cacheFiles = try FileManager.default.contentsOfDirectory(atPath: path("run/probe-cache"))
    XCTAssertEqual(
      cacheFiles.filter { $0.hasSuffix(".safetensors") }.count, 4, "backbone and random init, train and test")
    let second = try Probe.run(options())
    XCTAssertTrue(second.backbone.seconds.featuresCached)
    XCTAssertTrue(second.result(.randomInit)!.seconds.featuresCached)
    for (a, b) in zip(first.results, second.results) {
      XCTAssertEqual(a.linear, b.linear)
      XCTAssertEqual(a.knn, b.knn)
      XCTAssertEqual(a.layer, b.layer)
    }
    // A subset reuses the whole folder's cache, and is computed without it identically.
    var subset = options()
    subset.budget = .perClass(6)
    let cached = try Probe.run(subset)
    XCTAssertTrue(cached.backbone.seconds.featuresCached)
    XCTAssertEqual(cached.labels.used, 18)
    subset.cache = false
    subset.outputDirectory = path("other")
    let fresh = try Probe.run(subset)
    XCTAssertFalse(fresh.backbone.seconds.featuresCached)
    XCTAssertEqual(fresh.backbone.linear, cached.backbone.linear)
    XCTAssertEqual(fresh.backbone.knn, cached.backbone.knn)
    XCTAssertFalse(FileManager.default.fileExists(atPath: path("other/probe-cache")))
    // A changed image invalidates the cache of its folder.
    try FileManager.default.removeItem(atPath: path("test/top/0.png"))
    let changed = try Probe.run(options())
    XCTAssertFalse(changed.backbone.seconds.featuresCached)
    XCTAssertEqual(changed.test.images, 29)
  }

  /// A second run beside the first (same architecture, other weights) reuses the
  /// random-init features from the first run's cache and computes only its own.
  func testSiblingRunsShareTheRandomInitFeatures() throws {
    _ = try Probe.run(options())
    try FileManager.default.createDirectory(atPath: path("run2"), withIntermediateDirectories: true)
    var rng = RandomGenerator(seed: 4)
    try BackboneWeights.save(try tiny.make(using: &rng), to: path("run2/backbone.safetensors"))
    var o = options()
    o.weights = path("run2/backbone.safetensors")
    let second = try Probe.run(o)
    XCTAssertFalse(second.backbone.seconds.featuresCached)
    XCTAssertTrue(try XCTUnwrap(second.result(.randomInit)).seconds.featuresCached)
    let first = try JSONDecoder().decode(
      ProbeReport.self, from: try Data(contentsOf: URL(fileURLWithPath: path("run/probe.json"))))
    XCTAssertEqual(first.result(.randomInit)?.linear, second.result(.randomInit)?.linear)
    // The shared files are linked into the second run's cache.
    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: path("run2/probe-cache")).count, 4)
  }

  /// An earlier report is reused only for the same weights, folders and settings.
  func testReusableReportAndKNNOff() throws {
    var o = options()
    o.reportFileName = "probe-all.json"
    XCTAssertNil(Probe.reusableReport(o), "no report yet")
    let first = try Probe.run(o)
    XCTAssertTrue(FileManager.default.fileExists(atPath: path("run/probe-all.json")))
    XCTAssertFalse(FileManager.default.fileExists(atPath: path("run/probe.json")))
    XCTAssertEqual(Probe.reusableReport(o)?.backbone.linear, first.backbone.linear)
    // Any setting that changes the answer makes the report stale.
    var other = o
    other.seed = 1
    XCTAssertNil(Probe.reusableReport(other))
    other = o
    other.knn.k = 5
    XCTAssertNil(Probe.reusableReport(other))
    other = o
    other.baselines = false
    XCTAssertNil(Probe.reusableReport(other))
    other = o
    other.budget = .perClass(5)
    XCTAssertNil(Probe.reusableReport(other))
    other = o
    other.concatenatedDepths = 1
    XCTAssertNil(Probe.reusableReport(other))
    // kNN off: no kNN numbers anywhere, and the earlier report (with kNN) is not reused.
    other = o
    other.knnEnabled = false
    XCTAssertNil(Probe.reusableReport(other))
    let noKNN = try Probe.run(other)
    XCTAssertNil(noKNN.knn)
    XCTAssertTrue(noKNN.results.allSatisfy { $0.knn == nil })
    XCTAssertNil(noKNN.backbone.gainOverRawPixels?.knn ?? nil)
    XCTAssertEqual(noKNN.backbone.linear, first.backbone.linear, "the linear probe does not depend on kNN")
    XCTAssertTrue(noKNN.table.contains("kNN: off"), noKNN.table)
    XCTAssertNotNil(Probe.reusableReport(other))
    // New weights (same architecture): stale.
    var rng = RandomGenerator(seed: 9)
    try BackboneWeights.save(try tiny.make(using: &rng), to: path("run/backbone.safetensors"))
    XCTAssertNil(Probe.reusableReport(other))
  }

  /// The test folder's features at one depth come from the probe's cache.
  func testFolderFeaturesComeFromTheProbeCache() throws {
    let fresh = try Probe.folderFeatures(
      weights: path("run/backbone.safetensors"), folder: path("test"), layer: "blocks.0", runDirectory: path("other"))
    XCTAssertFalse(fresh.cached)
    XCTAssertEqual(fresh.values.shape, [30, 32])
    XCTAssertEqual(fresh.classes, classes)
    XCTAssertEqual(fresh.labels.filter { $0 == 2 }.count, 10)
    _ = try Probe.run(options())
    let cached = try Probe.folderFeatures(
      weights: path("run/backbone.safetensors"), folder: path("test"), layer: "blocks.0", runDirectory: path("run"))
    XCTAssertTrue(cached.cached)
    XCTAssertEqual(cached.values.scalars, fresh.values.scalars)
    XCTAssertThrowsError(
      try Probe.folderFeatures(
        weights: path("run/backbone.safetensors"), folder: path("test"), layer: "blocks.5", runDirectory: path("run"))
    ) { XCTAssertTrue("\($0)".contains("no such depth"), "\($0)") }
  }

  /// Concatenated depths: scored beside single ones, their features side by side, and
  /// off with concatenatedDepths = 1.
  func testConcatenatedDepthsCompeteAndCanBeTurnedOff() throws {
    var o = options()
    o.baselines = false
    let report = try Probe.run(o)
    XCTAssertEqual(report.backbone.layerScores.map(\.layer), ["blocks.0", "norm", "blocks.0+norm"])
    let test = try Probe.folderFeatures(
      weights: path("run/backbone.safetensors"), folder: path("test"), layer: "blocks.0+norm", runDirectory: path("run"))
    let first = try Probe.folderFeatures(
      weights: path("run/backbone.safetensors"), folder: path("test"), layer: "blocks.0", runDirectory: path("run"))
    let second = try Probe.folderFeatures(
      weights: path("run/backbone.safetensors"), folder: path("test"), layer: "norm", runDirectory: path("run"))
    XCTAssertEqual(test.values.shape, [30, 64])
    for row in [0, 29] {
      XCTAssertEqual(Array(test.values.scalars[row * 64..<row * 64 + 32]), Array(first.values.scalars[row * 32..<row * 32 + 32]))
      XCTAssertEqual(Array(test.values.scalars[row * 64 + 32..<row * 64 + 64]), Array(second.values.scalars[row * 32..<row * 32 + 32]))
    }
    XCTAssertThrowsError(
      try Probe.folderFeatures(
        weights: path("run/backbone.safetensors"), folder: path("test"), layer: "blocks.0+blocks.5", runDirectory: path("run"))
    ) { XCTAssertTrue("\($0)".contains("no such depth"), "\($0)") }
    o.concatenatedDepths = 1
    let single = try Probe.run(o)
    XCTAssertEqual(single.backbone.layerScores.map(\.layer), ["blocks.0", "norm"])
    XCTAssertEqual(single.layerSelection.concatenatedDepths, 1)
  }

  func testLayerOptionsAndNoBaselines() throws {
    var o = options()
    o.layers = .last
    o.baselines = false
    o.classifier = LinearProbeSettings(method: .ridge)
    let last = try Probe.run(o)
    XCTAssertEqual(last.results.count, 1)
    XCTAssertEqual(last.backbone.layer, "norm")
    XCTAssertTrue(last.backbone.layerScores.isEmpty)
    XCTAssertNil(last.backbone.gainOverRawPixels)
    o.layers = .named("blocks.0")
    XCTAssertEqual(try Probe.run(o).backbone.layer, "blocks.0")
    o.layers = .named("blocks.7")
    XCTAssertThrowsError(try Probe.run(o)) { error in
      XCTAssertTrue("\(error)".contains("one of: blocks.0, norm"), "\(error)")
    }
    // One label per class: no validation split is possible; the last depth is used.
    o.layers = .all
    o.budget = .perClass(1)
    let one = try Probe.run(o)
    XCTAssertEqual(one.backbone.layer, "norm")
    XCTAssertNotNil(one.layerSelection.note)
  }

  func testTestClassesMissingFromTrainingAreAnError() throws {
    try makeFolder("test2", perClass: 2, seed: 4, classes: ["left", "right"])
    var o = options()
    o.test = path("test2")
    XCTAssertThrowsError(try Probe.run(o)) { error in
      let text = "\(error)"
      XCTAssertTrue(text.contains("\"right\"") && text.contains("lacks"), text)
    }
    // A test folder with fewer classes is fine.
    try FileManager.default.removeItem(atPath: path("test2/right"))
    o.baselines = false
    let report = try Probe.run(o)
    XCTAssertEqual(report.test.images, 2)
  }

  func testEmptyClassFolderIsAnError() throws {
    try FileManager.default.createDirectory(atPath: path("train/empty"), withIntermediateDirectories: true)
    XCTAssertThrowsError(try Probe.run(options())) { error in
      let text = "\(error)"
      XCTAssertTrue(text.contains("train/empty") && text.contains("no usable PNG"), text)
    }
  }

  func testUnreadableAndForeignWeightsAreClearErrors() throws {
    var o = options()
    // Not a safetensors file.
    try Data("not weights".utf8).write(to: URL(fileURLWithPath: path("garbage.safetensors")))
    o.weights = path("garbage.safetensors")
    XCTAssertThrowsError(try Probe.run(o)) { error in
      let text = "\(error)"
      XCTAssertTrue(text.contains("garbage.safetensors") && text.contains("backbone weights file"), text)
    }
    o.weights = path("missing.safetensors")
    XCTAssertThrowsError(try Probe.run(o)) { error in XCTAssertTrue("\(error)".contains("no such file"), "\(error)") }
    // Tensors of another architecture under this one's metadata.
    var rng = RandomGenerator(seed: 0)
    let other = try BackbonePreset.config("resnet18-small", imageSize: 16, inChannels: 1).make(using: &rng)
    try other.safeTensors(metadata: try BackboneWeights.metadata(config: tiny, input: nil)).write(
      to: path("other.safetensors"))
    o.weights = path("other.safetensors")
    XCTAssertThrowsError(try Probe.run(o)) { error in
      XCTAssertTrue("\(error)".contains("another architecture"), "\(error)")
    }
    // --backbone naming an architecture the file's metadata contradicts.
    o.weights = path("run/backbone.safetensors")
    o.architecture = try BackbonePreset.config("vit-cpu", inChannels: 1)
    XCTAssertThrowsError(try Probe.run(o)) { error in
      let text = "\(error)"
      XCTAssertTrue(text.contains("tiny-vit") && text.contains("vit-cpu"), text)
    }
    // A file without Pretext's metadata needs --backbone.
    var plain = RandomGenerator(seed: 0)
    try tiny.make(using: &plain).safeTensors(metadata: ["format": "pt"]).write(to: path("plain.safetensors"))
    o.weights = path("plain.safetensors")
    o.architecture = nil
    XCTAssertThrowsError(try Probe.run(o)) { error in XCTAssertTrue("\(error)".contains("--backbone"), "\(error)") }
    o.architecture = tiny
    o.baselines = false
    XCTAssertNoThrow(try Probe.run(o))
  }

  func testEmbedWritesFeaturesAndCSV() throws {
    var o = Embedding.Options(
      weights: path("run/backbone.safetensors"), folder: path("test"), output: path("emb/test.safetensors"))
    let summary = try Embedding.run(o)
    XCTAssertEqual(summary.images, 30)
    XCTAssertEqual(summary.dimension, 32)
    XCTAssertEqual(summary.layer, "norm")
    let file = try SafeTensors.read(path: path("emb/test.safetensors"))
    XCTAssertEqual(file["features"]?.shape, [30, 32])
    let csv = try String(contentsOfFile: path("emb/test.csv"), encoding: .utf8).split(separator: "\n")
    XCTAssertEqual(csv.first, "index,path")
    XCTAssertEqual(csv.count, 31)
    XCTAssertEqual(csv[1], "0,bottom/0.png")
    // The rows are the backbone's final features of the images, in path order.
    let backbone = try BackboneWeights.load(path: path("run/backbone.safetensors"))
    let prep = try Preprocessing(config: backbone.config, stored: nil)
    let folder = try ImageFolder(path: path("test"))
    let direct = try FeatureExtractor.extract(backbone, images: try prep.images(of: folder, indices: Array(0..<30)))
    XCTAssertEqual(direct.last?.values.scalars, file["features"]?.scalars)
    o.layer = "blocks.9"
    XCTAssertThrowsError(try Embedding.run(o)) { error in XCTAssertTrue("\(error)".contains("blocks.0"), "\(error)") }
  }
}
