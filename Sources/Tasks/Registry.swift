import Autograd
import Backbones
import Foundation

/// The pretext tasks Pretext knows, by name. Each entry decodes the task's settings
/// (its section of the experiment config) and builds the task for a backbone.
public enum TaskRegistry {
  public typealias Factory = @Sendable (Decoder?, any Backbone, inout RandomGenerator) throws -> any PretextTask

  public static let factories: [String: Factory] = [
    "relative-location": { d, b, r in try RelativeLocation(settings(d), backbone: b, using: &r) },
    "mae": { d, b, r in try MaskedAutoencoder(settings(d), backbone: b, using: &r) },
    "simclr": { d, b, r in try Contrastive(settings(d), backbone: b, using: &r) },
    "rotation": { d, b, r in try Rotation(settings(d), backbone: b, using: &r) },
    "byol": { d, b, r in try BYOL(settings(d), backbone: b, using: &r) },
    "moco-v3": { d, b, r in try MoCoV3(settings(d), backbone: b, using: &r) },
  ]

  public static var names: [String] { factories.keys.sorted() }

  /// The side of each image a sample pushes through the backbone (one entry per view),
  /// from the settings and the backbone's configuration alone: what a memory check needs
  /// before anything is built.
  public static let backboneInputs: [String: @Sendable (Decoder?, BackboneConfig) throws -> [Int]] = [
    "relative-location": { d, b in RelativeLocation.backboneInputs(try settings(d), backbone: b) },
    "mae": { d, b in MaskedAutoencoder.backboneInputs(try settings(d), backbone: b) },
    "simclr": { d, b in Contrastive.backboneInputs(try settings(d), backbone: b) },
    "rotation": { d, b in Rotation.backboneInputs(try settings(d), backbone: b) },
    "byol": { d, b in BYOL.backboneInputs(try settings(d), backbone: b) },
    "moco-v3": { d, b in MoCoV3.backboneInputs(try settings(d), backbone: b) },
  ]

  /// Builds task `name`; `settings` decodes its options (defaults when nil).
  public static func make(
    _ name: String, settings: Decoder? = nil, backbone: any Backbone, using rng: inout RandomGenerator
  ) throws -> any PretextTask {
    guard let factory = factories[name] else {
      throw TaskError("unknown task \"\(name)\"; known: \(names.joined(separator: ", "))")
    }
    return try factory(settings, backbone, &rng)
  }

  static func settings<S: Decodable & DefaultConstructible>(_ decoder: Decoder?) throws -> S {
    guard let decoder else { return S() }
    return try S(from: decoder)
  }
}

/// Settings types with every field defaulted.
public protocol DefaultConstructible { init() }
extension Contrastive.Settings: DefaultConstructible {}
extension RelativeLocation.Settings: DefaultConstructible {}
extension MaskedAutoencoder.Settings: DefaultConstructible {}
extension Rotation.Settings: DefaultConstructible {}
extension BYOL.Settings: DefaultConstructible {}
extension MoCoV3.Settings: DefaultConstructible {}
