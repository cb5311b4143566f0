import Foundation
import Support
import Yams

/// A config file's top-level mapping of sections, and the decoding of each section with
/// errors that name the file and line: the one loader of experiment configs
/// (`ExperimentConfig`) and compare files (`CompareConfig`).
struct ConfigSections {
  let root: Node.Mapping
  /// `file:line` (or the `--set` at fault) of a key path such as ["train", "batch_size"];
  /// a key set nowhere is located at the innermost section that is.
  let locate: ([CodingKey]) -> String
  /// The value written at a key path, quoted, for messages (nil when unknown).
  var value: ([String]) -> String? = { _ in nil }

  /// The mapping of the YAML file at `path` (an empty file is an empty mapping). `kind`
  /// ("config", "compare") and the section names are for the messages.
  static func readMapping(_ path: String, kind: String, sections: [String]) throws -> Node.Mapping {
    let data = try readConfigFile(path, kind: kind)
    let node: Node?
    do {
      node = try composeBounded(String(decoding: data, as: UTF8.self), source: path)
    } catch let e as ConfigError {
      throw e
    } catch {
      throw ConfigError("\(path): not valid YAML (\(error))")
    }
    guard let mapping = node?.mapping ?? (node == nil ? Node.Mapping([]) : nil) else {
      throw ConfigError("\(path): the top level must be a mapping of sections (\(sections.joined(separator: ", ")))")
    }
    return mapping
  }

  /// Throws for the first top-level key not in `known`, naming its line.
  func rejectUnknownKeys(_ known: Set<String>) throws {
    for key in root.keys.compactMap(\.string) where !known.contains(key) {
      throw ConfigError("\(locate([AnyCodingKey(key)])): unknown key \"\(key)\" (known: \(known.sorted().joined(separator: ", ")))")
    }
  }

  /// Section `key` decoded as `T`, or `fallback` when the file has no such section.
  func decode<T: Decodable>(_ key: String, _ fallback: T) throws -> T {
    guard let node = root[key] else { return fallback }
    return try Self.decode(T.self, from: node, section: key, locate: locate, value: value)
  }

  /// `node` decoded as `T`; a wrong type, an unknown key or a value out of range becomes
  /// a `ConfigError` naming the line of the key at fault (`section` is the node's key).
  static func decode<T: Decodable>(
    _: T.Type, from node: Node, section: String, locate: ([CodingKey]) -> String, value: ([String]) -> String? = { _ in nil }
  ) throws -> T {
    do {
      return try YAMLDecoder().decode(T.self, from: node)
    } catch let e as DecodingError {
      throw ConfigError(
        ExperimentConfig.describe(e, prefix: section, locate: locate, value: value))
    } catch let e as SettingError {
      throw ConfigError("\(locate([AnyCodingKey(section), AnyCodingKey(e.key)])): \(e)")
    }
  }
}
