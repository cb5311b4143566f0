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

/// A misconfigured backbone (bad sizes, unknown preset): says what to change.
public struct BackboneError: Error, CustomStringConvertible, Sendable {
  public let description: String
  public init(_ description: String) { self.description = description }
}
