import ArgumentParser
import Backbones
import Foundation

struct Inspect: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Per-layer table of a backbone: output shapes, parameters and multiply-accumulates.",
    discussion: "Models: \(BackbonePreset.names.joined(separator: ", ")).")

  @Argument(help: "The backbone preset.") var model: String
  @Option(help: "Input image size (pixels, square).") var imageSize: Int?
  @Option(help: "ViT patch size.") var patchSize: Int?
  @Option(help: "Input channels (1 or 3).") var inChannels: Int?
  @Option(help: "Also write the freshly initialized weights (safetensors) to this file.") var saveWeights: String?
  @Option(help: "With --save-weights: also write a seeded input batch and its features (JSON), for comparing with PyTorch.")
  var saveFeatures: String?
  @Flag(help: "Print JSON instead of a table.") var json = false

  func run() throws {
    let config = try BackbonePreset.config(model, imageSize: imageSize, patchSize: patchSize, inChannels: inChannels)
    let report = try InspectReport.make(config: config)
    printWhole(json ? try jsonString(report) : report.table)
    if saveFeatures != nil && saveWeights == nil { throw ValidationError("--save-features needs --save-weights") }
    if let saveWeights {
      var rng = RandomGenerator(seed: 0)
      let backbone = try config.make(using: &rng)
      try BackboneWeights.save(backbone, to: saveWeights)
      if let saveFeatures {
        backbone.eval()
        var inputRNG = RandomGenerator(seed: 1)
        let x = Tensor.uniform([2, config.inChannels, config.imageSize, config.imageSize], using: &inputRNG)
        let f = try withoutGradients { try backbone.features(x) }
        let record: [String: [Double]] = [
          "input_shape": x.shape.map(Double.init), "input": x.scalars.map(Double.init),
          "features_shape": f.shape.map(Double.init), "features": f.scalars.map(Double.init),
        ]
        try JSONSerialization.data(withJSONObject: record).write(to: URL(fileURLWithPath: saveFeatures))
      }
    }
  }
}

import Autograd
