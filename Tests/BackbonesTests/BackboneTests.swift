import Autograd
import Backbones
import Foundation
import NN
import Support
import XCTest

/// Test tier 5 (shapes and parameter counts of every preset) and tier 2 (the same
/// weights give the same features as timm / torchvision).
final class PresetTests: XCTestCase {
  func testReferenceParameterCountsAndMACs() throws {
    let resnet = try InspectReport.make(config: BackbonePreset.config("resnet18"))
    XCTAssertEqual(resnet.totalParameters, 11_176_512)  // torchvision resnet18 without fc
    XCTAssertEqual(Double(resnet.totalMACs) / 1e9, 1.82, accuracy: 0.01)
    let vit = try InspectReport.make(config: BackbonePreset.config("vit-tiny"))
    XCTAssertEqual(vit.totalParameters, 5_524_416)  // timm vit_tiny_patch16_224 without head
    // Per-layer standard counts: the first block's qkv (197 tokens × 192 × 576) and attention (2·197²·192).
    let qkv = try XCTUnwrap(vit.layers.first { $0.name == "blocks.0.attn.qkv" })
    XCTAssertEqual(qkv.macs, 197 * 192 * 576)
    XCTAssertEqual(qkv.outputShape, [1, 197, 576])
    let attn = try XCTUnwrap(vit.layers.first { $0.name == "blocks.0.attn" })
    XCTAssertEqual(attn.macs, 2 * 197 * 197 * 192)
  }

  func testEveryPresetBuildsWithItsShapes() throws {
    var rng = RandomGenerator(seed: 1)
    for name in BackbonePreset.names {
      // Small inputs keep this fast: ViTs at 32 px / patch 8, ResNets at 32 px.
      let isViT = name.hasPrefix("vit")
      let config = try BackbonePreset.config(name, imageSize: 32, patchSize: isViT ? 8 : nil)
      let model = try config.make(using: &rng)
      model.eval()
      let x = Tensor.uniform([2, 3, 32, 32], using: &rng)
      let f = try withoutGradients { try model.features(x) }
      XCTAssertEqual(f.shape, [2, model.featureCount], name)
      let depths = try withoutGradients { try model.featuresByDepth(x) }
      XCTAssertEqual(depths.last?.features.shape, [2, model.featureCount], name)
      XCTAssertEqual(depths.count, isViT ? (name == "vit-cpu" ? 6 : 12) : 4, name)
    }
    // vit-cpu at 32 px, patch 4: patch embedding 3·16·192 + 192, class token 192,
    // positions 65·192, 6 blocks of 444,864, final norm 384.
    let vitCPU = try BackbonePreset.config("vit-cpu").make(using: &rng)
    XCTAssertEqual(vitCPU.featureCount, 192)
    XCTAssertEqual(vitCPU.parameterCount, 9_408 + 192 + 12_480 + 6 * 444_864 + 384)
    // resnet18 with the small stem: the 7×7 stem conv (9,408) becomes 3×3 (1,728).
    let small = try BackbonePreset.config("resnet18-small").make(using: &rng)
    XCTAssertEqual(small.featureCount, 512)
    XCTAssertEqual(small.parameterCount, 11_176_512 - 9_408 + 1_728)
  }

  func testBadConfigurationsAreClearErrors() {
    XCTAssertThrowsError(try BackbonePreset.config("vit-huge")) { XCTAssertTrue("\($0)".contains("known:")) }
    var rng = RandomGenerator(seed: 0)
    XCTAssertThrowsError(try BackbonePreset.config("vit-tiny", imageSize: 30, patchSize: 4).make(using: &rng)) {
      XCTAssertTrue("\($0)".contains("multiple of the patch size"), "\($0)")
    }
    XCTAssertThrowsError(try BackbonePreset.config("vit-cpu", inChannels: 2).make(using: &rng))
  }

  func testMaskedEncodingUsesOnlyTheKeptPatches() throws {
    var rng = RandomGenerator(seed: 2)
    let vit = try VisionTransformer(ViTConfig(imageSize: 16, patchSize: 4, width: 24, depth: 2, heads: 2), using: &rng)
    vit.eval()
    let x = Tensor.uniform([2, 3, 16, 16], using: &rng)
    let tokens = try vit.embedPatches(x)
    let keep = try IndexTensor(shape: [2, 3], [0, 5, 9, 15, 2, 7])
    let (encoded, _) = try vit.encode(patchTokens: tokens, keep: keep)
    XCTAssertEqual(encoded.shape, [2, 4, 24])
    // Same as encoding the gathered tokens by hand: sample 1 with patches [15, 2, 7].
    let manual = try Tensor.concat([15, 2, 7].map { try tokens.sliced(axis: 0, 1..<2).sliced(axis: 1, $0..<($0 + 1)) }, axis: 1)
    let (alone, _) = try vit.encode(patchTokens: manual)
    let a = try encoded.sliced(axis: 0, 1..<2).scalars, b = alone.scalars
    for (u, v) in zip(a, b) { XCTAssertEqual(u, v, accuracy: 1e-5) }
  }
}

/// Features equal to PyTorch's for the same weights (Fixtures/make_backbone_golden.py):
/// timm's ViT with class-token and with average pooling; torchvision's own ResNet class
/// (ImageNet stem with max pool, BasicBlock and Bottleneck) and a mirror of it with the
/// small stem. Each fixture names its architecture; the test builds it from there.
final class PyTorchGoldenTests: XCTestCase {
  /// The fixture's architecture: "kind" and the fields of ViTConfig or ResNetConfig.
  enum Architecture: Decodable {
    case vit(ViTConfig)
    case resnet(ResNetConfig)
    enum Key: String, CodingKey { case kind }
    init(from decoder: Decoder) throws {
      switch try decoder.container(keyedBy: Key.self).decode(String.self, forKey: .kind) {
      case "vit": self = .vit(try ViTConfig(from: decoder))
      case "resnet": self = .resnet(try ResNetConfig(from: decoder))
      case let other:
        throw DecodingError.dataCorrupted(.init(codingPath: [Key.kind], debugDescription: "unknown kind \(other)"))
      }
    }
  }

  struct Golden: Decodable {
    let config: Architecture
    let input_shape: [Int]
    let input: [Float]
    let features_shape: [Int]
    let features: [Float]
    let names: [String]
  }

  static let fixtures = [
    "vit_small_test", "vit_avg_test", "resnet_small_test", "resnet_basic_imagenet_test", "resnet_bottleneck_test",
  ]

  func testBackbonesMatchTimmAndTorchvision() throws {
    for name in Self.fixtures {
      let json = try XCTUnwrap(Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Fixtures"))
      let weights = try XCTUnwrap(
        Bundle.module.url(forResource: name, withExtension: "safetensors", subdirectory: "Fixtures"))
      let golden = try JSONDecoder().decode(Golden.self, from: Data(contentsOf: json))
      var rng = RandomGenerator(seed: 0)
      let model: any Backbone
      switch golden.config {
      case .vit(let c): model = try VisionTransformer(c, using: &rng)
      case .resnet(let c): model = try ResNet(c, using: &rng)
      }
      XCTAssertEqual(model.stateDict().map(\.name), golden.names, "\(name): names and order match PyTorch's state_dict")
      try model.load(try SafeTensors.read(path: weights.path), strict: true)
      model.eval()
      let x = try Tensor(shape: golden.input_shape, golden.input)
      let f = try withoutGradients { try model.features(x) }
      XCTAssertEqual(f.shape, golden.features_shape, name)
      var worst: Float = 0
      for (a, b) in zip(f.scalars, golden.features) { worst = max(worst, abs(a - b) / max(abs(b), 1e-2)) }
      XCTAssertLessThan(worst, 1e-4, "\(name): features differ from PyTorch's (worst relative error \(worst))")
    }
  }
}

final class WeightFileTests: XCTestCase {
  var dir: URL!
  override func setUpWithError() throws {
    dir = FileManager.default.temporaryDirectory.appendingPathComponent("pretext-weights-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
  }
  override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

  func testWeightFileMetadataIsPlainJSONAndTheOlderFormStillLoads() throws {
    for config in [
      try BackbonePreset.config("vit-cpu"), try BackbonePreset.config("resnet18-small", inChannels: 1, width: 16),
    ] {
      let text = try BackboneWeights.metadata(config: config, input: nil)["pretext.backbone"]!
      let plain = try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [String: Any]
      XCTAssertEqual(plain["architecture"] as? String, config.acceptsAnyImageSize ? "resnet" : "vit", text)
      XCTAssertEqual(plain["imageSize"] as? Int, config.imageSize, text)
      XCTAssertEqual(plain["inChannels"] as? Int, config.inChannels, text)
      XCTAssertEqual(try JSONDecoder().decode(BackboneConfig.self, from: Data(text.utf8)), config)
    }
    // Swift's enum encoding, as files written before the flat form hold it.
    let old = #"{"resnet":{"_0":{"block":"basic","imageSize":32,"inChannels":1,"layers":[2,2,2,2],"name":"r","stem":"small","width":8}}}"#
    XCTAssertEqual(
      try JSONDecoder().decode(BackboneConfig.self, from: Data(old.utf8)),
      .resnet(ResNetConfig(name: "r", block: .basic, layers: [2, 2, 2, 2], width: 8, inChannels: 1, stem: .small, imageSize: 32)))
    XCTAssertThrowsError(try JSONDecoder().decode(BackboneConfig.self, from: Data(#"{"architecture":"mlp"}"#.utf8))) {
      XCTAssertTrue("\($0)".contains("unknown architecture \"mlp\" (known: vit, resnet)"), "\($0)")
    }
  }

  func testSaveLoadSaveIsByteIdentical() throws {
    var rng = RandomGenerator(seed: 3)
    for preset in ["vit-cpu", "resnet18-small"] {
      let model = try BackbonePreset.config(preset, imageSize: 16, patchSize: preset == "vit-cpu" ? 4 : nil).make(using: &rng)
      let first = dir.appendingPathComponent("\(preset).safetensors").path
      try BackboneWeights.save(model, to: first)
      let loaded = try BackboneWeights.load(path: first)
      XCTAssertEqual(loaded.config, model.config)
      let second = dir.appendingPathComponent("\(preset)-2.safetensors").path
      try BackboneWeights.save(loaded, to: second)
      XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: first)), try Data(contentsOf: URL(fileURLWithPath: second)), preset)
    }
  }

  func testCorruptFilesAreRejectedWithClearErrors() throws {
    var rng = RandomGenerator(seed: 4)
    let model = try BackbonePreset.config("vit-cpu", imageSize: 16, patchSize: 4).make(using: &rng)
    let good = model.safeTensors(metadata: ["k": "v"]).encode()
    func error(_ bytes: [UInt8]) -> String {
      do {
        _ = try SafeTensors.decode(bytes, source: "w.safetensors")
        return "no error"
      } catch { return "\(error)" }
    }
    XCTAssertTrue(error(Array(good.prefix(5))).contains("too short"))
    XCTAssertTrue(error(Array(good.prefix(good.count - 10))).contains("outside"), error(Array(good.prefix(good.count - 10))))
    var badLength = good
    badLength[0] = 0xFF
    badLength[3] = 0x7F
    XCTAssertTrue(error(badLength).contains("header length"))
    var badJSON = good
    badJSON[8] = UInt8(ascii: "[")
    XCTAssertTrue(error(badJSON).contains("not a JSON object"))
    // Same-length edits of the header's bytes (the length prefix is binary).
    func edit(_ bytes: [UInt8], _ old: String, _ new: String) -> [UInt8] {
      let (o, n) = (Array(old.utf8), Array(new.utf8))
      var out = bytes
      for i in 8..<(bytes.count - o.count) where Array(bytes[i..<(i + o.count)]) == o {
        out.replaceSubrange(i..<(i + o.count), with: n)
        break
      }
      return out
    }
    // A header that lies about a dtype or a shape.
    let header = SafeTensors(tensors: [("a", Tensor.zeros([2]))]).encode()
    XCTAssertTrue(error(edit(header, "F32", "I8 ")).contains("dtype"))
    XCTAssertTrue(error(edit(header, "[2]", "[3]")).contains("tensor a"))
    // A flipped bit in the data area (the last byte) is caught by the checksum.
    var damaged = good
    damaged[damaged.count - 1] ^= 0x01
    XCTAssertTrue(error(damaged).contains("checksum mismatch"), error(damaged))
    // Overlapping tensors.
    let two = SafeTensors(tensors: [("a", Tensor.zeros([2])), ("b", Tensor.zeros([2]))]).encode()
    let overlapped = edit(two, "[8,16]", "[4,12]")
    XCTAssertTrue(error(overlapped).contains("overlap"), error(overlapped))
    // Values that are not finite (a diverged run saved before the check existed).
    let nan = SafeTensors(tensors: [("w", try Tensor(shape: [3], [1, .nan, .infinity]))]).encode()
    XCTAssertTrue(
      error(nan).hasPrefix(
        "w.safetensors: tensor w holds non-finite values (1 NaN and 1 infinite value(s), first at flat index 1); "
          + "the weights are unusable"), error(nan))
  }

  func testWeightsOfAnotherArchitectureAreRefusedAndNothingChanges() throws {
    var rng = RandomGenerator(seed: 5)
    let vit = try BackbonePreset.config("vit-cpu", imageSize: 16, patchSize: 4).make(using: &rng)
    let resnet = try BackbonePreset.config("resnet18-small", imageSize: 16).make(using: &rng)
    let path = dir.appendingPathComponent("resnet.safetensors").path
    try BackboneWeights.save(resnet, to: path)
    let before = vit.parameters.map(\.scalars)
    XCTAssertThrowsError(try BackboneWeights.load(path: path, into: vit)) {
      XCTAssertTrue("\($0)".contains("holds weights of resnet18-small"), "\($0)")
    }
    XCTAssertEqual(vit.parameters.map(\.scalars), before)
    // Same architecture, other width: names match, shapes do not.
    let narrow = try VisionTransformer(ViTConfig(imageSize: 16, patchSize: 4, width: 96, depth: 6, heads: 3), using: &rng)
    XCTAssertThrowsError(try vit.load(narrow.safeTensors(), source: "narrow")) {
      XCTAssertTrue("\($0)".contains("has shape"), "\($0)")
    }
    XCTAssertThrowsError(try BackboneWeights.load(path: dir.appendingPathComponent("missing").path)) {
      XCTAssertTrue("\($0)".contains("no such file"), "\($0)")
    }
  }

  func testWholeFileReadsAndWhyNot() throws {
    let empty = dir.appendingPathComponent("empty").path
    XCTAssertTrue(FileManager.default.createFile(atPath: empty, contents: Data()))
    XCTAssertEqual(readWholeFile(empty), Data())
    // A regular file is read in one buffer of its size; a /proc file reports size 0 but
    // has contents, so the buffer must grow.
    let bytes = Data((0..<10_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
    let full = dir.appendingPathComponent("full").path
    try bytes.write(to: URL(fileURLWithPath: full))
    XCTAssertEqual(readWholeFile(full), bytes)
    XCTAssertEqual(try readFileBytes(full, limit: 33), Array(bytes.prefix(33)))
    let status = try XCTUnwrap(readWholeFile("/proc/self/status"))
    XCTAssertTrue(String(decoding: status, as: UTF8.self).contains("Pid:"))
    func reason(_ path: String) -> FileReadError? {
      XCTAssertNil(readWholeFile(path), path)
      do {
        _ = try readFileBytes(path)
        return nil
      } catch {
        return error
      }
    }
    XCTAssertEqual(reason(dir.path), .directory)
    XCTAssertEqual(reason("/dev/null"), .notRegular)
    XCTAssertEqual(reason(dir.appendingPathComponent("missing").path)?.isMissing, true)
    XCTAssertEqual(reason(full + "/x")?.isMissing, true)
    XCTAssertThrowsError(try BackboneWeights.load(path: dir.path)) {
      XCTAssertTrue("\($0)".contains("is a directory"), "\($0)")
    }
  }

  /// A state_dict saved from PyTorch holds BatchNorm's `num_batches_tracked` as int64.
  func testIntegerTensorsFromPyTorchReadAsFloats() throws {
    let header = #"{"n":{"dtype":"I64","shape":[2],"data_offsets":[0,16]},"m":{"dtype":"I32","shape":[1],"data_offsets":[16,20]}}"#
    var bytes: [UInt8] = []
    let headerBytes = Array(header.utf8)
    withUnsafeBytes(of: UInt64(headerBytes.count).littleEndian) { bytes += $0 }
    bytes += headerBytes
    for v in [Int64(1563), Int64(-2)] { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    withUnsafeBytes(of: Int32(7).littleEndian) { bytes += $0 }
    let file = try SafeTensors.decode(bytes, source: "torch.safetensors")
    let tensors = Dictionary(uniqueKeysWithValues: file.tensors.map { ($0.name, $0.tensor.scalars) })
    XCTAssertEqual(tensors["n"], [1563, -2])
    XCTAssertEqual(tensors["m"], [7])
  }

  func testHalfPrecisionConversion() {
    XCTAssertEqual(Float(halfBits: 0x3C00), 1)
    XCTAssertEqual(Float(halfBits: 0xC000), -2)
    XCTAssertEqual(Float(halfBits: 0x0001), 5.9604645e-08)
    XCTAssertEqual(Float(halfBits: 0x7C00), .infinity)
  }
}
