import Autograd
import Backbones
import Evaluation
import Foundation
import NN
import Support
import Tasks
import Training
import Vision
import Yams

/// A pretraining experiment: what to train (task, backbone), on what (data), how
/// (train), and where the run goes. Decoded from YAML; every field has a default.
///
/// ```yaml
/// base: fashion-mnist-base.yaml      # optional: this file's keys override the base's
/// name: simclr-vit
/// data: {unlabeled: data/fashion-mnist/unlabeled}
/// backbone: {preset: vit-cpu, image_size: 32, patch_size: 4, in_channels: 1}
/// task: {name: simclr, temperature: 0.2}
/// train: {batch_size: 256, epochs: 10, optimizer: adamw, base_lr: 1.5e-4}
/// ```
public struct ExperimentConfig: @unchecked Sendable {
  public var name: String
  public var output: String
  public var data: DataSection
  public var backbone: BackboneSection
  public var taskName: String
  /// The task section as YAML (decoded by the task itself).
  public var taskNode: Node
  public var train: TrainerSettings
  /// What is measured during pretraining: the online probe and label-free signals.
  public var eval: OnlineEvaluationSettings
  /// The resolved configuration (bases merged, overrides applied), as saved in the run.
  public var resolvedYAML: String
  /// A short hash of the resolved configuration: the run's identity.
  public var hash: String
  /// Where each key was set (file and line, or --set), for errors found after loading.
  var locator: Locator

  public struct DataSection: SettingsSchema, Equatable {
    /// A folder of images (searched recursively) or a `.txt` list of image paths.
    public var unlabeled = "data/fashion-mnist/unlabeled"
    public var strict = false
    /// The shorter side images are reduced to when decoded, before the task's crops.
    public var decodeSize = DecodeSize.auto
    /// Keep the decoded images in a memory-mapped cache file (`CachedImageFolder`).
    public var cache = true
    public init() {}

    public static let section = "data"
    public static let options: [SettingOption<DataSection>] = [
      .value("unlabeled", \.unlabeled, accepts: "a folder or a .txt list of paths", "the images to pretrain on (searched recursively)"),
      .flag("strict", \.strict, "stop at the first unreadable image instead of skipping it"),
      .value(
        "decode_size", \.decodeSize, accepts: "auto, full or 1…\(DecodeSize.maximum) pixels",
        "the shorter side images are reduced to when decoded (auto: twice the input)"),
      .flag("cache", \.cache, "keep the decoded images in a memory-mapped cache file"),
    ]
  }

  /// `data.decode_size`: `auto` (twice the backbone's input, so that a random resized
  /// crop of a small part of the image still has pixels of its own), `full` (no
  /// reduction), or a number of pixels.
  public enum DecodeSize: Codable, Sendable, Equatable {
    case auto, full
    case pixels(Int)

    /// The largest side accepted: beyond it, images are decoded at full size anyway.
    public static let maximum = 16384

    /// The shorter side for a backbone input of `imageSize` (nil: full size).
    public func shorterSide(imageSize: Int) -> Int? {
      switch self {
      case .auto: return 2 * imageSize
      case .full: return nil
      case .pixels(let n): return n
      }
    }

    public init(from decoder: Decoder) throws {
      let c = try decoder.singleValueContainer()
      if let n = try? c.decode(Int.self) {
        guard (1...Self.maximum).contains(n) else {
          throw DecodingError.dataCorruptedError(
            in: c, debugDescription: "must be auto, full or a size from 1 to \(Self.maximum) pixels, got \(n)")
        }
        self = .pixels(n)
        return
      }
      let text = try? c.decode(String.self)
      switch text {
      case "auto": self = .auto
      case "full": self = .full
      default:
        throw DecodingError.dataCorruptedError(
          in: c, debugDescription: "must be auto, full or a size in pixels, got \(text ?? "a list or a mapping")")
      }
    }

    public func encode(to encoder: Encoder) throws {
      var c = encoder.singleValueContainer()
      switch self {
      case .auto: try c.encode("auto")
      case .full: try c.encode("full")
      case .pixels(let n): try c.encode(n)
      }
    }
  }

  public struct BackboneSection: SettingsSchema, Equatable {
    public var preset = "vit-cpu"
    public var imageSize: Int? = nil
    public var patchSize: Int? = nil
    public var inChannels: Int? = nil
    /// ViT embedding width, or the ResNet's first-stage channels.
    public var width: Int? = nil
    public init() {}

    /// The largest side and width accepted: far above anything a CPU trains, small
    /// enough that sizes derived from them stay in range of an `Int`. What a run can
    /// really hold is the memory check's answer (MemoryCheck.swift).
    public static let maximumSize = 1 << 20

    public static let section = "backbone"
    public static let options: [SettingOption<BackboneSection>] = [
      .value("preset", \.preset, accepts: BackbonePreset.names.joined(separator: ", "), "the architecture"),
      .integer("image_size", \.imageSize, in: 1...maximumSize, "input side in pixels (the preset's when absent)"),
      .integer("patch_size", \.patchSize, in: 1...maximumSize, "ViT patch side (the preset's when absent)"),
      .integer("in_channels", \.inChannels, in: 1...maximumSize, "input channels: 1 gray, 3 colour (the preset's when absent)"),
      .integer("width", \.width, in: 1...maximumSize, "ViT embedding width, or the ResNet's first-stage channels"),
    ]

    public func config() throws -> BackboneConfig {
      do { try validate() } catch let e as SettingError { throw BackboneError("\(e)") }
      return try BackbonePreset.config(
        preset, imageSize: imageSize, patchSize: patchSize, inChannels: inChannels, width: width)
    }
  }

  static let topLevelKeys: Set<String> = ["base", "name", "output", "data", "backbone", "task", "train", "eval"]

  /// Loads `path`, following `base:` files, then applies `overrides` (`key.path=value`).
  public static func load(path: String, overrides: [String] = []) throws -> ExperimentConfig {
    let layers = try loadLayers(path: path, seen: [])
    var merged = Node.Mapping([])
    for layer in layers.reversed() { merged = merge(merged, layer.node) }
    merged["base"] = nil
    for o in overrides { try applyOverride(o, to: &merged) }
    let root = Node.mapping(merged)
    let locator = Locator(path: path, layers: layers, overrides: overrides)
    let sections = ConfigSections(
      root: merged, locate: { locator.locate($0.map(\.stringValue), orSection: true) }, value: { locator.value($0) })
    try sections.rejectUnknownKeys(topLevelKeys)
    let name = try sections.decode("name", (path as NSString).lastPathComponent.replacingOccurrences(of: ".yaml", with: ""))
    let output = try sections.decode("output", "runs")
    let data = try sections.decode("data", DataSection())
    let backbone = try sections.decode("backbone", BackboneSection())
    let train = try sections.decode("train", TrainerSettings())
    let eval = try sections.decode("eval", OnlineEvaluationSettings())
    let taskNode = merged["task"] ?? Node.mapping(["name": "simclr"])
    guard let taskName = taskNode["name"]?.string else {
      throw ConfigError("\(locator.locate(["task"])): task needs a name (\(TaskRegistry.names.joined(separator: ", ")))")
    }
    guard TaskRegistry.knows(taskName) else {
      throw ConfigError(
        "\(locator.locate(["task", "name"])): unknown task \"\(taskName)\" (known: \(TaskRegistry.names.joined(separator: ", ")))")
    }
    let yaml = try Yams.serialize(node: root, sortKeys: true)
    return ExperimentConfig(
      name: name, output: output, data: data, backbone: backbone, taskName: taskName, taskNode: taskNode, train: train, eval: eval,
      resolvedYAML: yaml, hash: SafeTensors.checksum(Array(yaml.utf8)[...]), locator: locator)
  }

  /// Builds the task from its section; errors name the file and line (`sourcePath` is
  /// named when no line is known).
  public func makeTask(backbone: any Backbone, using rng: inout RandomGenerator, sourcePath: String) throws -> any PretextTask {
    try withTaskSection(sourcePath: sourcePath) { decoder in
      try TaskRegistry.make(taskName, settings: decoder, backbone: backbone, using: &rng)
    }
  }

  /// Runs `body` on a decoder of the task section; what it throws about the section
  /// becomes a `ConfigError` naming the file and line (of the key, where one is at fault).
  func withTaskSection<T>(sourcePath: String? = nil, _ body: (Decoder) throws -> T) throws -> T {
    do {
      return try body(try YAMLDecoder().decode(DecoderCapture.self, from: taskNode).decoder)
    } catch let e as DecodingError {
      throw ConfigError(Self.describe(e, prefix: "task", locator: locator))
    } catch let e as SettingError {
      throw ConfigError("\(locator.locate(["task", e.key], orSection: true, fallback: sourcePath)): \(e)")
    } catch let e as TaskError {
      // A task that does not fit the backbone.
      throw ConfigError("\(locator.locate(["task"], fallback: sourcePath)): \(e)")
    } catch let e as TransformError {
      // A view recipe the transforms refuse (e.g. a patch grid's jitter wider than its gap).
      throw ConfigError("\(locator.locate(["task"], fallback: sourcePath)): \(e)")
    }
  }

  /// Builds the backbone of the `backbone` section; errors name the file and line.
  public func makeBackbone(using rng: inout RandomGenerator) throws -> any Backbone {
    let config = try backboneConfig()
    do {
      return try config.make(using: &rng)
    } catch let e as BackboneError {
      throw ConfigError("\(locator.locate(["backbone"])): \(e)")
    }
  }

  /// The `backbone` section's configuration (nothing built); errors name the file and
  /// line (of the key, for a size out of range).
  public func backboneConfig() throws -> BackboneConfig {
    do {
      try backbone.validate()
    } catch let e as SettingError {
      throw ConfigError("\(locator.locate(["backbone", e.key], orSection: true)): \(e)")
    }
    do {
      return try backbone.config()
    } catch let e as BackboneError {
      throw ConfigError("\(locator.locate(["backbone"])): \(e)")
    }
  }

  /// The run folder: `<output>/<name>`.
  public var runDirectory: String { (output as NSString).appendingPathComponent(name) }

  // MARK: Files and merging

  struct Layer {
    let path: String
    let node: Node.Mapping
  }

  /// Names where a key of the resolved config was set: the `--set` that set it (applied
  /// last, so in effect), else the innermost file that has it, with the line.
  struct Locator {
    let path: String
    let layers: [Layer]
    let overrides: [String]

    /// `keys` is a path such as ["train", "batch_size"]. With `orSection`, a key set
    /// nowhere (a default) is located at its section instead; `fallback` names the file
    /// when nothing is found.
    func locate(_ keys: [String], orSection: Bool = false, fallback: String? = nil) -> String {
      let dotted = keys.joined(separator: ".")
      if let o = overrides.last(where: { $0.hasPrefix(dotted + "=") }) { return "--set \(o)" }
      // A --set inside this section may be the culprit too.
      let inside = overrides.last { $0.hasPrefix(dotted + ".") }.map { " (or --set \($0))" } ?? ""
      for layer in layers {
        if let mark = ExperimentConfig.find(keys, in: layer.node) { return "\(layer.path):\(mark.line)\(inside)" }
      }
      if orSection && keys.count > 1 { return locate(Array(keys.dropLast()), fallback: fallback) }
      let file = fallback ?? path
      return overrides.isEmpty ? file : "\(file) (or --set)"
    }

    /// The value in effect at `keys` as the user wrote it (a scalar quoted, or the kind of
    /// node), for messages; nil when the path is not found.
    func value(_ keys: [String]) -> String? {
      let dotted = keys.joined(separator: ".")
      if let o = overrides.last(where: { $0.hasPrefix(dotted + "=") }) {
        return "\"\(o.dropFirst(dotted.count + 1))\""
      }
      for layer in layers {
        var node = Node.mapping(layer.node)
        var found = true
        for k in keys {
          guard let next = node.mapping?.first(where: { $0.key.string == k })?.value else {
            found = false
            break
          }
          node = next
        }
        guard found else { continue }
        switch node {
        case .scalar(let scalar): return "\"\(scalar.string)\""
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        default: return nil
        }
      }
      return nil
    }
  }

  /// The file and its bases, innermost first.
  static func loadLayers(path: String, seen: Set<String>) throws -> [Layer] {
    let full = URL(fileURLWithPath: path).standardizedFileURL.path
    guard !seen.contains(full) else { throw ConfigError("\(path): base files form a loop") }
    let mapping = try ConfigSections.readMapping(path, kind: "config", sections: ["name", "data", "backbone", "task", "train"])
    var layers = [Layer(path: path, node: mapping)]
    if let base = mapping["base"] {
      guard let baseName = base.string else { throw ConfigError("\(path):\(base.mark?.line ?? 0): base must be a file name") }
      let basePath = baseName.hasPrefix("/") ? baseName : ((path as NSString).deletingLastPathComponent as NSString).appendingPathComponent(baseName)
      layers += try loadLayers(path: basePath, seen: seen.union([full]))
    }
    return layers
  }

  /// `top` over `base`, recursively for nested mappings.
  static func merge(_ base: Node.Mapping, _ top: Node.Mapping) -> Node.Mapping {
    var out = base
    for (k, v) in top {
      if let sub = v.mapping, let existing = out[k]?.mapping {
        out[k] = .mapping(merge(existing, sub))
      } else {
        out[k] = v
      }
    }
    return out
  }

  /// `a.b.c=value`: sets the key (creating sections), the value parsed as YAML.
  static func applyOverride(_ override: String, to root: inout Node.Mapping) throws {
    guard let eq = override.firstIndex(of: "="), eq != override.startIndex else {
      throw ConfigError("--set \(override): expected key.path=value")
    }
    let keys = override[..<eq].split(separator: ".").map(String.init)
    let valueText = String(override[override.index(after: eq)...])
    try YAMLSize.check(valueText, source: "--set \(override)")
    let value = (try? Yams.compose(yaml: valueText)) ?? nil ?? Node(valueText)
    func set(_ mapping: inout Node.Mapping, _ keys: ArraySlice<String>) {
      guard let first = keys.first else { return }
      if keys.count == 1 {
        mapping[first] = value
      } else {
        var child = mapping[first]?.mapping ?? Node.Mapping([])
        set(&child, keys.dropFirst())
        mapping[first] = .mapping(child)
      }
    }
    set(&root, keys[...])
  }

  static func find(_ keys: [String], in mapping: Node.Mapping) -> Mark? {
    var node = Node.mapping(mapping)
    var mark: Mark? = nil
    for k in keys {
      guard let m = node.mapping else { return mark }
      guard let pair = m.first(where: { $0.key.string == k }) else { return nil }
      mark = pair.key.mark ?? pair.value.mark
      node = pair.value
    }
    return mark
  }

  static func describe(_ error: DecodingError, prefix: String, locator: Locator) -> String {
    describe(error, prefix: prefix, locate: { locator.locate($0.map(\.stringValue)) }, value: { locator.value($0) })
  }

  /// A decoding error as "file:line: key.path must be …". `locate` names the file and line
  /// of a key path; `value` gives the value written there, when known.
  static func describe(
    _ error: DecodingError, prefix: String, locate: ([CodingKey]) -> String, value: ([String]) -> String? = { _ in nil }
  ) -> String {
    func full(_ path: [CodingKey]) -> [CodingKey] { [AnyCodingKey(prefix)] + path }
    func dotted(_ path: [CodingKey]) -> String { full(path).map(\.stringValue).joined(separator: ".") }
    switch error {
    case .typeMismatch(let type, let c):
      let found = value(full(c.codingPath).map(\.stringValue)).map { "got \($0)" } ?? c.debugDescription
      return "\(locate(full(c.codingPath))): \(dotted(c.codingPath)) must be \(typeName(type)), \(found)"
    case .valueNotFound(let type, let c):
      return "\(locate(full(c.codingPath))): \(dotted(c.codingPath)) needs a \(typeName(type)) value"
    case .keyNotFound(let key, let c):
      return "\(locate(full(c.codingPath))): missing key \(dotted(c.codingPath + [key]))"
    case .dataCorrupted(let c):
      return "\(locate(full(c.codingPath))): \(dotted(c.codingPath)): \(c.debugDescription)"
    @unknown default:
      return "\(error)"
    }
  }

  static func typeName(_ t: Any.Type) -> String {
    switch t {
    case is Int.Type, is UInt64.Type: return "an integer"
    case is Double.Type, is Float.Type: return "a number"
    case is Bool.Type: return "true or false"
    case is String.Type: return "a string"
    case is [Float].Type, is [Double].Type, is [Int].Type, is [String].Type: return "a list"
    default:
      // Decoders name containers by their role ("Sequence", "Mapping").
      let name = "\(t)"
      if name.contains("Sequence") || name.hasPrefix("Array") { return "a list" }
      if name.contains("Mapping") || name.hasPrefix("Dictionary") { return "a mapping" }
      return "a \(name)"
    }
  }
}

struct DecoderCapture: Decodable {
  let decoder: Decoder
  init(from decoder: Decoder) throws { self.decoder = decoder }
}

public struct ConfigError: Error, CustomStringConvertible, Sendable {
  public let description: String
  public init(_ description: String) { self.description = description }
}

/// The bytes of a config file (`kind`: "config", "compare" — for the message), or a
/// `ConfigError` saying why it cannot be read: missing, a directory, not a regular file
/// (a device or pipe such as /dev/null or /dev/stdin), or no permission.
func readConfigFile(_ path: String, kind: String = "config") throws -> Data {
  do {
    return Data(try readFileBytes(path))
  } catch let error where error.isMissing {
    throw ConfigError("\(path): no such \(kind) file")
  } catch .directory {
    throw ConfigError("\(path): is a directory, not a \(kind) file (give a YAML file)")
  } catch {
    throw ConfigError("\(path): \(error); give a YAML \(kind) file")
  }
}
