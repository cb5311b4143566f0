import Autograd
import Backbones
import Foundation
import Support

/// A task the registry can build: its settings (whose `section` is the task's name in
/// configs), how it is made for a backbone, and the image sides it feeds the backbone.
public protocol RegisteredTask: PretextTask {
  associatedtype Settings: TaskSettings
  init(_ settings: Settings, backbone: any Backbone, using rng: inout RandomGenerator) throws
  /// The side of each image a sample pushes through the backbone (one entry per view),
  /// from the settings and the backbone's configuration alone: what a memory check needs
  /// before anything is built.
  static func backboneInputs(_ settings: Settings, backbone: BackboneConfig) -> [Int]
}

extension RegisteredTask {
  /// The task's name in configs (`task.name`).
  public static var registryName: String { Settings.section }
  public var name: String { Self.registryName }
}

/// The pretext tasks Pretext knows, by name. Adding a task is one new file with a type
/// conforming to `RegisteredTask` and one line in `tasks`.
public enum TaskRegistry {
  public static let tasks: [any RegisteredTask.Type] = [
    RelativeLocation.self, MaskedAutoencoder.self, Contrastive.self, Rotation.self, BYOL.self, MoCoV3.self,
  ]

  public static var names: [String] { tasks.map { $0.registryName }.sorted() }

  public static func knows(_ name: String) -> Bool { tasks.contains { $0.registryName == name } }

  /// Builds task `name`; `settings` decodes its options (defaults when nil).
  public static func make(
    _ name: String, settings: Decoder? = nil, backbone: any Backbone, using rng: inout RandomGenerator
  ) throws -> any PretextTask {
    try make(type(name), settings, backbone, &rng)
  }

  /// The image sides a sample of task `name` pushes through the backbone (one per view).
  public static func backboneInputs(_ name: String, settings: Decoder? = nil, backbone: BackboneConfig) throws -> [Int] {
    try inputs(type(name), settings, backbone)
  }

  static func type(_ name: String) throws -> any RegisteredTask.Type {
    guard let t = tasks.first(where: { $0.registryName == name }) else {
      throw TaskError("unknown task \"\(name)\"; known: \(names.joined(separator: ", "))")
    }
    return t
  }

  static func settings<T: RegisteredTask>(_: T.Type, _ decoder: Decoder?) throws -> T.Settings {
    guard let decoder else { return T.Settings() }
    return try T.Settings(from: decoder)
  }

  static func make<T: RegisteredTask>(
    _ t: T.Type, _ decoder: Decoder?, _ backbone: any Backbone, _ rng: inout RandomGenerator
  ) throws -> any PretextTask {
    try T(settings(t, decoder), backbone: backbone, using: &rng)
  }

  static func inputs<T: RegisteredTask>(_ t: T.Type, _ decoder: Decoder?, _ backbone: BackboneConfig) throws -> [Int] {
    T.backboneInputs(try settings(t, decoder), backbone: backbone)
  }
}

extension RegisteredTask {
  /// The task's options as a Markdown table.
  public static func optionsTable() -> String { Settings.optionsTable() }
}
