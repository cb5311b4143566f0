import Foundation

/// A section of settings declared once. Each option is one line of `options`: its config
/// key, the field it sets, what it accepts and a line of help. The field's initial value
/// (in `init()`) is the default. From that one declaration come:
/// - decoding (`init(from:)`: unknown keys refused, absent keys keep the default),
/// - the range checks (`validate()`, also run by decoding), whose `SettingError` names the
///   key so that a config file can point at the line that sets it,
/// - encoding, and the options table of the README (`optionsTable()`).
///
/// ```swift
/// struct Settings: SettingsSchema {
///   var temperature: Float = 0.2
///   static let section = "simclr"
///   static let options: [SettingOption<Settings>] = [
///     .number("temperature", \.temperature, in: 0...100, openBelow: true, "softmax temperature"),
///   ]
/// }
/// ```
public protocol SettingsSchema: Codable, Sendable {
  init()
  /// The section's name in messages: `train`, `probe`, or a task's name (`simclr`).
  static var section: String { get }
  static var options: [SettingOption<Self>] { get }
  /// Keys the section may hold that no option decodes (a task section's `name`).
  static var otherKeys: Set<String> { get }
  /// Checks between options (e.g. `min_lr` ≤ `base_lr`), after each option's own check;
  /// throws a `SettingError`. The default checks nothing.
  func checkTogether() throws
}

extension SettingsSchema {
  public static var otherKeys: Set<String> { [] }
  public func checkTogether() throws {}

  public init(from decoder: Decoder) throws {
    self.init()
    try decoder.rejectUnknownKeys(known: Set(Self.options.map(\.key)).union(Self.otherKeys))
    let c = try decoder.container(keyedBy: AnyCodingKey.self)
    for option in Self.options { try option.decode(&self, c) }
    try validate()
  }

  public func encode(to encoder: Encoder) throws {
    var c = encoder.container(keyedBy: AnyCodingKey.self)
    for option in Self.options { try option.encode(self, &c) }
  }

  /// Throws a `SettingError` for the first option out of range, then for the checks
  /// between options.
  public func validate() throws {
    for option in Self.options {
      if let problem = option.problem(self) { throw SettingError(section: Self.section, key: option.key, problem) }
    }
    try checkTogether()
  }

  /// A `SettingError` about `key` of this section.
  public static func error(_ key: String, _ problem: String) -> SettingError {
    SettingError(section: Self.section, key: key, problem)
  }

  /// The options as rows of a Markdown table: key, default, accepted values, help.
  public static func optionsTable() -> String {
    let defaults = Self()
    var lines = ["| key | default | accepts | meaning |", "| --- | --- | --- | --- |"]
    for option in options {
      // An optional setting's default is absent (chosen elsewhere, as its help says).
      let shown = option.show(defaults)
      let cells = ["`\(option.key)`", shown == "null" ? "—" : "`\(shown)`", option.accepts, option.help]
      lines.append("| " + cells.map { $0.replacingOccurrences(of: "|", with: "\\|") }.joined(separator: " | ") + " |")
    }
    return lines.joined(separator: "\n")
  }
}

/// A setting out of range, or settings that contradict one another: `key` is the option's
/// config key in `section`, so that a config loader can name the line that sets it.
public struct SettingError: Error, CustomStringConvertible, Sendable, Equatable {
  public let section: String
  public let key: String
  /// What is wrong, as the end of a sentence about the key: "must be in [2, 1048576], got 1".
  public let problem: String
  public init(section: String, key: String, _ problem: String) {
    self.section = section
    self.key = key
    self.problem = problem
  }
  public var description: String { "\(section).\(key) \(problem)" }
}

/// One option of a `SettingsSchema`: how to decode, check, encode and show one field.
public struct SettingOption<S>: @unchecked Sendable {
  public let key: String
  /// The values accepted, for the options table: "(0, 100]", "true or false".
  public let accepts: String
  public let help: String
  var decode: (inout S, KeyedDecodingContainer<AnyCodingKey>) throws -> Void
  let encode: (S, inout KeyedEncodingContainer<AnyCodingKey>) throws -> Void
  /// Why the field's value is refused (the end of a sentence), or nil when accepted.
  let problem: (S) -> String?
  let show: (S) -> String

  /// An option with its own check: `problem` returns why a value is refused, or nil.
  public init<T: Codable>(
    _ key: String, _ field: WritableKeyPath<S, T>, accepts: String, _ help: String,
    problem: @escaping @Sendable (T) -> String? = { _ in nil }
  ) {
    self.key = key
    self.accepts = accepts
    self.help = help
    let codingKey = AnyCodingKey(key)
    decode = { settings, c in
      if let value = try c.decodeIfPresent(T.self, forKey: codingKey) { settings[keyPath: field] = value }
    }
    encode = { settings, c in try c.encode(settings[keyPath: field], forKey: codingKey) }
    self.problem = { problem($0[keyPath: field]) }
    show = { settingText($0[keyPath: field]) }
  }

  /// A number in `range` (the bound excluded where `openBelow`/`openAbove`); NaN and
  /// infinities are refused.
  public static func number<T: BinaryFloatingPoint & Codable & Sendable>(
    _ key: String, _ field: WritableKeyPath<S, T>, in range: ClosedRange<T>, openBelow: Bool = false,
    openAbove: Bool = false, _ help: String
  ) -> SettingOption {
    let bounds = NumberBounds(range, openBelow: openBelow, openAbove: openAbove)
    return SettingOption(key, field, accepts: bounds.text, help) { bounds.problem($0) }
  }

  /// A whole number in `range`.
  public static func integer<T: FixedWidthInteger & Codable & Sendable>(
    _ key: String, _ field: WritableKeyPath<S, T>, in range: ClosedRange<T>, _ help: String
  ) -> SettingOption {
    let text = "[\(range.lowerBound), \(range.upperBound)]"
    return SettingOption(key, field, accepts: text, help) { range.contains($0) ? nil : "must be in \(text), got \($0)" }
  }

  /// A whole number in `range`, or nothing (nil: the default chosen elsewhere).
  public static func integer<T: FixedWidthInteger & Codable & Sendable>(
    _ key: String, _ field: WritableKeyPath<S, T?>, in range: ClosedRange<T>, _ help: String
  ) -> SettingOption {
    let text = "[\(range.lowerBound), \(range.upperBound)]"
    return SettingOption(key, field, accepts: text, help) { v in
      v.map { range.contains($0) ? nil : "must be in \(text), got \($0)" } ?? nil
    }
  }

  /// A number in `range`, or nothing (nil: the default chosen elsewhere).
  public static func number<T: BinaryFloatingPoint & Codable & Sendable>(
    _ key: String, _ field: WritableKeyPath<S, T?>, in range: ClosedRange<T>, openBelow: Bool = false, _ help: String
  ) -> SettingOption {
    let bounds = NumberBounds(range, openBelow: openBelow, openAbove: false)
    return SettingOption(key, field, accepts: bounds.text, help) { v in v.map { bounds.problem($0) } ?? nil }
  }

  /// A list of numbers, each in `range`: exactly `count` of them, or (with `count` nil)
  /// one or more.
  public static func numbers<T: BinaryFloatingPoint & Codable & Sendable>(
    _ key: String, _ field: WritableKeyPath<S, [T]>, count: Int? = nil, in range: ClosedRange<T>,
    openBelow: Bool = false, openAbove: Bool = false, _ help: String
  ) -> SettingOption {
    let bounds = NumberBounds(range, openBelow: openBelow, openAbove: openAbove)
    let how = count.map { "\($0) numbers" } ?? "one or more numbers"
    return SettingOption(key, field, accepts: "\(how) in \(bounds.text)", help) { values in
      let countOK = count.map { values.count == $0 } ?? !values.isEmpty
      return countOK && values.allSatisfy({ bounds.problem($0) == nil }) ? nil : "takes \(how) in \(bounds.text), got \(values)"
    }
  }

  /// A pair [low, high] with low ≤ high, each in `range`.
  public static func interval<T: BinaryFloatingPoint & Codable & Sendable>(
    _ key: String, _ field: WritableKeyPath<S, [T]>, in range: ClosedRange<T>, openBelow: Bool = false, _ help: String
  ) -> SettingOption {
    let bounds = NumberBounds(range, openBelow: openBelow, openAbove: false)
    let accepts = "[low, high] in \(bounds.text), low ≤ high"
    return SettingOption(key, field, accepts: accepts, help) { v in
      v.count == 2 && v[0] <= v[1] && v.allSatisfy({ bounds.problem($0) == nil })
        ? nil : "takes two numbers [low, high] in \(bounds.text) with low ≤ high, got \(v)"
    }
  }

  /// One of the names in `choices`.
  public static func choice(
    _ key: String, _ field: WritableKeyPath<S, String>, _ choices: [String], _ help: String
  ) -> SettingOption {
    let text = choices.joined(separator: ", ")
    return SettingOption(key, field, accepts: text, help) { choices.contains($0) ? nil : "must be one of \(text); got \"\($0)\"" }
  }

  /// A list, or a single value taken as a list of one (`labels_per_class: 100`).
  public static func list<T: Codable>(
    _ key: String, _ field: WritableKeyPath<S, [T]>, accepts: String, _ help: String,
    problem: @escaping @Sendable ([T]) -> String? = { _ in nil }
  ) -> SettingOption {
    var option = SettingOption(key, field, accepts: accepts, help, problem: problem)
    let codingKey = AnyCodingKey(key)
    option.decode = { settings, c in
      guard c.contains(codingKey) else { return }
      if (try? c.nestedUnkeyedContainer(forKey: codingKey)) != nil {
        settings[keyPath: field] = try c.decode([T].self, forKey: codingKey)
      } else {
        settings[keyPath: field] = [try c.decode(T.self, forKey: codingKey)]
      }
    }
    return option
  }

  /// true or false.
  public static func flag(_ key: String, _ field: WritableKeyPath<S, Bool>, _ help: String) -> SettingOption {
    SettingOption(key, field, accepts: "true or false", help)
  }

  /// Any value of a type that checks itself when decoded (a path, a seed, a custom enum).
  public static func value<T: Codable>(
    _ key: String, _ field: WritableKeyPath<S, T>, accepts: String, _ help: String
  ) -> SettingOption {
    SettingOption(key, field, accepts: accepts, help)
  }
}

/// The bounds of a number option, and their text: "[0, 1]", "(0, 100]".
struct NumberBounds<T: BinaryFloatingPoint & Sendable>: Sendable {
  let range: ClosedRange<T>
  let openBelow: Bool, openAbove: Bool
  init(_ range: ClosedRange<T>, openBelow: Bool, openAbove: Bool) {
    self.range = range
    self.openBelow = openBelow
    self.openAbove = openAbove
  }
  var text: String {
    "\(openBelow ? "(" : "[")\(numberText(range.lowerBound)), \(numberText(range.upperBound))\(openAbove ? ")" : "]")"
  }
  func problem(_ v: T) -> String? {
    let ok =
      v.isFinite && range.contains(v) && !(openBelow && v == range.lowerBound) && !(openAbove && v == range.upperBound)
    return ok ? nil : "must be in \(text), got \(v)"
  }
}

/// A bound as people write it: 0, 1, 0.5, 1e-06.
func numberText<T: BinaryFloatingPoint>(_ v: T) -> String {
  let d = Double(v)
  if d == d.rounded(), abs(d) < 1e15 { return String(Int64(d)) }
  return "\(d)"
}

/// A setting's value as YAML would show it, for the options table.
func settingText<T: Encodable>(_ value: T) -> String {
  guard let data = try? JSONEncoder.sortedKeys.encode(value) else { return "\(value)" }
  let text = String(decoding: data, as: UTF8.self)
  // A string is shown without JSON's quotes: YAML takes it bare.
  if text.hasPrefix("\""), text.hasSuffix("\""), text.count >= 2 { return String(text.dropFirst().dropLast()) }
  return text.replacingOccurrences(of: ",", with: ", ")
}

/// A coding key for any string, to list the keys a config section actually has.
public struct AnyCodingKey: CodingKey, Hashable, Sendable {
  public var stringValue: String
  public var intValue: Int?
  public init(_ s: String) { stringValue = s }
  public init?(stringValue: String) { self.stringValue = stringValue }
  public init?(intValue: Int) {
    stringValue = String(intValue)
    self.intValue = intValue
  }
}

extension Decoder {
  /// Throws when the section holds a key not in `known` (a misspelt option must not be
  /// silently ignored). The error names the key and lists the known ones.
  public func rejectUnknownKeys(known: Set<String>) throws {
    let present = try container(keyedBy: AnyCodingKey.self).allKeys
    if let bad = present.first(where: { !known.contains($0.stringValue) }) {
      throw DecodingError.dataCorrupted(
        DecodingError.Context(
          codingPath: codingPath + [bad],
          debugDescription: "unknown key \"\(bad.stringValue)\" (known: \(known.sorted().joined(separator: ", ")))"))
    }
  }

  /// `rejectUnknownKeys(known:)` for the keys of a `CodingKeys` enum (and `extra`).
  public func rejectUnknownKeys<K: CodingKey & CaseIterable>(_: K.Type, allowing extra: Set<String> = []) throws {
    try rejectUnknownKeys(known: Set(K.allCases.map(\.stringValue)).union(extra))
  }
}

extension KeyedDecodingContainer {
  /// The value at `key`, or `fallback` when the key is absent.
  public func value<T: Decodable>(_ key: Key, or fallback: T) throws -> T {
    try decodeIfPresent(T.self, forKey: key) ?? fallback
  }
}
