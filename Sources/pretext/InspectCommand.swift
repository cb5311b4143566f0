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
  @Flag(help: "Print JSON instead of a table.") var json = false

  func run() throws {
    let config = try BackbonePreset.config(model, imageSize: imageSize, patchSize: patchSize, inChannels: inChannels)
    let report = try InspectReport.make(config: config)
    print(json ? try jsonString(report) : report.table)
    if let saveWeights {
      var rng = RandomGenerator(seed: 0)
      try BackboneWeights.save(try config.make(using: &rng), to: saveWeights)
    }
  }
}

import Autograd
