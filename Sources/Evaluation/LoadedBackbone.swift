import Autograd
import Backbones
import Foundation
import NN
import Support

// Which backbone a weights file holds: the network with its weights loaded, the input
// normalization stored with them, and the file's identity (SHA-256 and size) that reports
// and the feature cache record.

/// The backbone a weights file holds, with its hash and stored normalization.
struct LoadedBackbone {
  let backbone: any Backbone
  let normalization: InputNormalization?
  let sha256: String
  let bytes: Int

  /// How the feature cache names this backbone (`FeatureCacheKey.model`): by the weights'
  /// content, so a copied or renamed weights file still finds its features.
  var cacheModel: String { "sha256:\(sha256)" }

  init(path: String, architecture: BackboneConfig?) throws {
    let file: SafeTensors
    do {
      file = try SafeTensors.read(path: path)
    } catch let error as SafeTensorsError {
      throw EvaluationError(
        path,
        "\(error.reason); expected a backbone weights file (backbone.safetensors of a run, or `pretext inspect MODEL --save-weights FILE`)"
      )
    }
    let config: BackboneConfig
    if let architecture {
      if let stored = try? BackboneWeights.config(of: file, source: path), stored != architecture {
        throw EvaluationError(
          path,
          "holds weights of \(stored.name) (\(stored.imageSize) px, \(stored.inChannels) channel(s)) but --backbone asks for "
            + "\(architecture.name) (\(architecture.imageSize) px, \(architecture.inChannels) channel(s)); drop --backbone to use the file's own architecture"
        )
      }
      config = architecture
    } else {
      config = try BackboneWeights.config(of: file, source: path)
    }
    var rng = RandomGenerator(seed: 0)
    let backbone = try config.make(using: &rng)
    try backbone.load(file, strict: true, source: path)
    self.backbone = backbone
    self.normalization = BackboneWeights.input(of: file)
    self.sha256 = try SHA256.hex(ofFile: path)
    self.bytes = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
  }
}
