import Autograd
import Foundation
import NN
import Support

/// Backbone weight files: safetensors with the architecture in `__metadata__`
/// (`pretext.backbone`: the configuration as JSON; `format`: "pt", as timm expects), so
/// a file alone rebuilds its backbone, and PyTorch loads the tensors by name.
public enum BackboneWeights {
  static let configKey = "pretext.backbone"
  static let inputKey = "pretext.input"

  /// Saves the weights; `input` records the pixel normalization the backbone was
  /// trained with, so that evaluation feeds it images the same way.
  public static func save(_ backbone: any Backbone, to path: String, input: InputNormalization? = nil) throws {
    try backbone.safeTensors(metadata: metadata(config: backbone.config, input: input)).write(to: path)
  }

  /// The metadata of a backbone weights file.
  public static func metadata(config: BackboneConfig, input: InputNormalization?) throws -> [String: String] {
    var m = [configKey: String(decoding: try JSONEncoder.sortedKeys.encode(config), as: UTF8.self), "format": "pt"]
    if let input { m[inputKey] = String(decoding: try JSONEncoder.sortedKeys.encode(input), as: UTF8.self) }
    return m
  }

  /// The normalization stored in a weights file, if any.
  public static func input(of file: SafeTensors) -> InputNormalization? {
    file.metadata[inputKey].flatMap { try? JSONDecoder().decode(InputNormalization.self, from: Data($0.utf8)) }
  }

  /// The configuration stored in a weights file.
  public static func config(of file: SafeTensors, source: String) throws -> BackboneConfig {
    guard let text = file.metadata[configKey] else {
      throw SafeTensorsError(source, "has no \(configKey) metadata: not a Pretext backbone file (use --backbone to name the architecture)")
    }
    do {
      return try JSONDecoder().decode(BackboneConfig.self, from: Data(text.utf8))
    } catch {
      throw SafeTensorsError(source, "its \(configKey) metadata is not a valid backbone configuration (\(error))")
    }
  }

  /// Rebuilds the backbone a file describes and loads its weights (strictly).
  public static func load(path: String) throws -> any Backbone {
    let file = try SafeTensors.read(path: path)
    let config = try config(of: file, source: path)
    var rng = RandomGenerator(seed: 0)
    let backbone = try config.make(using: &rng)
    try backbone.load(file, strict: true, source: path)
    return backbone
  }

  /// Loads a file into an existing backbone, checking the architecture first.
  public static func load(path: String, into backbone: any Backbone) throws {
    let file = try SafeTensors.read(path: path)
    if let stored = try? config(of: file, source: path), stored != backbone.config {
      throw SafeTensorsError(
        path, "holds weights of \(stored.name) \(describe(stored)), but the model is \(backbone.config.name) \(describe(backbone.config))")
    }
    try backbone.load(file, strict: true, source: path)
  }

  static func describe(_ c: BackboneConfig) -> String {
    switch c {
    case .vit(let v):
      return "(ViT \(v.imageSize) px, patch \(v.patchSize), width \(v.width), depth \(v.depth), \(v.inChannels) channel(s))"
    case .resnet(let r):
      return "(ResNet \(r.block.rawValue) \(r.layers), width \(r.width), \(r.stem.rawValue) stem, \(r.inChannels) channel(s))"
    }
  }
}

/// How pixels in [0, 1] are normalized before the backbone: (x − mean) / std per channel
/// (one value applies to every channel).
public struct InputNormalization: Codable, Sendable, Equatable {
  public var mean: [Float]
  public var std: [Float]
  public init(mean: [Float], std: [Float]) {
    self.mean = mean
    self.std = std
  }
  /// Pretext's default: mean 0.5, std 0.5 (pixels to [−1, 1]).
  public static let standard = InputNormalization(mean: [0.5], std: [0.5])
}

/// `pretext inspect`: the per-layer table of a backbone for an input size.
public struct InspectReport: Codable, Sendable {
  public var model: String
  public var inputShape: [Int]
  public var layers: [LayerRecord]
  public var totalParameters: Int
  public var totalMACs: Int

  enum CodingKeys: String, CodingKey {
    case model, inputShape = "input_shape", layers, totalParameters = "total_parameters", totalMACs = "total_macs"
  }

  /// Builds the model and runs one image through it in evaluation mode.
  public static func make(config: BackboneConfig) throws -> InspectReport {
    var rng = RandomGenerator(seed: 0)
    let backbone = try config.make(using: &rng)
    backbone.eval()
    let input = Tensor.zeros([1, config.inChannels, config.imageSize, config.imageSize])
    var layers = try Profiler.run { _ = try backbone.features(input) }
    let own = backbone.namedParameters().filter { !$0.name.contains(".") }.reduce(0) { $0 + $1.tensor.count }
    if own > 0 {
      layers.insert(LayerRecord(name: "(embeddings)", type: "Parameter", outputShape: [], parameters: own, macs: 0), at: 0)
    }
    return InspectReport(
      model: config.name, inputShape: input.shape, layers: layers, totalParameters: backbone.parameterCount,
      totalMACs: layers.reduce(0) { $0 + $1.macs })
  }

  public var table: String {
    func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count) }
    func grouped(_ n: Int) -> String {
      let s = String(n)
      var out = ""
      for (i, c) in s.reversed().enumerated() {
        if i > 0 && i % 3 == 0 { out.append(",") }
        out.append(c)
      }
      return String(out.reversed())
    }
    var lines = [pad("layer", 34) + pad("type", 18) + pad("output", 20) + pad("params", 14) + "MACs"]
    for l in layers {
      lines.append(pad(l.name, 34) + pad(l.type, 18) + pad("\(l.outputShape)", 20) + pad(grouped(l.parameters), 14) + grouped(l.macs))
    }
    lines.append("")
    lines.append("\(model), input \(inputShape): \(grouped(totalParameters)) parameters, "
      + String(format: "%.3f", Double(totalMACs) / 1e9) + " GMACs (\(grouped(totalMACs)))")
    return lines.joined(separator: "\n")
  }
}
