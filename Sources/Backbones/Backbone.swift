import Autograd
import NN

/// An image encoder shared by every pretext task: images [B, C, H, W] → features
/// [B, featureCount]. Tasks attach their heads to these features; the probe reads them
/// (or an intermediate depth's) from the frozen backbone.
public protocol Backbone: Module {
  var config: BackboneConfig { get }
  /// Width of `features`.
  var featureCount: Int { get }
  /// Pooled features of the final layer: [B, featureCount].
  func features(_ images: Tensor) throws -> Tensor
  /// Pooled features after each block (ViT) or stage (ResNet), shallow to deep, with
  /// their names (`blocks.3`, `layer2`); the last is `features`.
  func featuresByDepth(_ images: Tensor) throws -> [(name: String, features: Tensor)]
  /// Drop path (`DropPath`) on every residual branch in training, rising linearly from 0
  /// at the first block to `maximum` at the last (timm's rule for ViT and ResNet); each
  /// block draws its masks from a generator seeded from `seed`. 0 turns it off.
  func setDropPath(maximum: Float, seed: UInt64)
}

/// Everything needed to rebuild a backbone (stored in weight files' metadata).
public enum BackboneConfig: Codable, Sendable, Equatable {
  case vit(ViTConfig)
  case resnet(ResNetConfig)

  /// Builds the backbone with freshly initialized weights.
  public func make(using rng: inout RandomGenerator) throws -> any Backbone {
    switch self {
    case .vit(let c): return try VisionTransformer(c, using: &rng)
    case .resnet(let c): return try ResNet(c, using: &rng)
    }
  }

  /// Whether the backbone takes images of any size (a ResNet: convolutions and a global
  /// pool) or only `imageSize` (a ViT: one position embedding per patch).
  public var acceptsAnyImageSize: Bool {
    switch self {
    case .vit: return false
    case .resnet: return true
    }
  }

  public var name: String {
    switch self {
    case .vit(let c): return c.name
    case .resnet(let c): return c.name
    }
  }

  public var imageSize: Int {
    switch self {
    case .vit(let c): return c.imageSize
    case .resnet(let c): return c.imageSize
    }
  }

  public var inChannels: Int {
    switch self {
    case .vit(let c): return c.inChannels
    case .resnet(let c): return c.inChannels
    }
  }
}

// The JSON form (weight files' `pretext.backbone` metadata, probe records): one flat
// object with the architecture named, `{"architecture": "vit", "width": 192, …}`, which
// any JSON reader takes as it is. Files written before this form hold Swift's default
// enum encoding, `{"vit": {"_0": {…}}}`; they still decode.
extension BackboneConfig {
  private enum Key: String, CodingKey { case architecture, vit, resnet, payload = "_0" }

  public init(from decoder: Decoder) throws {
    let c = try decoder.container(keyedBy: Key.self)
    if let architecture = try c.decodeIfPresent(String.self, forKey: .architecture) {
      switch architecture {
      case "vit": self = .vit(try ViTConfig(from: decoder))
      case "resnet": self = .resnet(try ResNetConfig(from: decoder))
      default:
        throw DecodingError.dataCorruptedError(
          forKey: .architecture, in: c, debugDescription: "unknown architecture \"\(architecture)\" (known: vit, resnet)")
      }
    } else if c.contains(.vit) {
      self = .vit(try c.nestedContainer(keyedBy: Key.self, forKey: .vit).decode(ViTConfig.self, forKey: .payload))
    } else if c.contains(.resnet) {
      self = .resnet(try c.nestedContainer(keyedBy: Key.self, forKey: .resnet).decode(ResNetConfig.self, forKey: .payload))
    } else {
      throw DecodingError.keyNotFound(
        Key.architecture, .init(codingPath: decoder.codingPath, debugDescription: "no architecture (vit or resnet)"))
    }
  }

  public func encode(to encoder: Encoder) throws {
    var c = encoder.container(keyedBy: Key.self)
    switch self {
    case .vit(let config):
      try c.encode("vit", forKey: .architecture)
      try config.encode(to: encoder)
    case .resnet(let config):
      try c.encode("resnet", forKey: .architecture)
      try config.encode(to: encoder)
    }
  }
}

/// A misconfigured backbone (bad sizes, unknown preset): says what to change.
public struct BackboneError: Error, CustomStringConvertible, Sendable {
  public let description: String
  public init(_ description: String) { self.description = description }
}
