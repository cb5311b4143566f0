import Foundation

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
  /// Throws when the section holds a key not in `K` (a misspelt option must not be
  /// silently ignored). The error names the key and lists the known ones.
  public func rejectUnknownKeys<K: CodingKey & CaseIterable>(_: K.Type, allowing extra: Set<String> = ["name"]) throws {
    let present = try container(keyedBy: AnyCodingKey.self).allKeys
    let known = Set(K.allCases.map(\.stringValue)).union(extra)
    if let bad = present.first(where: { !known.contains($0.stringValue) }) {
      throw DecodingError.dataCorrupted(
        DecodingError.Context(
          codingPath: codingPath + [bad],
          debugDescription: "unknown key \"\(bad.stringValue)\" (known: \(known.sorted().joined(separator: ", ")))"))
    }
  }
}

extension KeyedDecodingContainer {
  /// The value at `key`, or `fallback` when the key is absent.
  public func value<T: Decodable>(_ key: Key, or fallback: T) throws -> T {
    try decodeIfPresent(T.self, forKey: key) ?? fallback
  }
}

/// The range checks of a task's settings: each names the key, what it accepts and the
/// value given, as `TaskError("simclr.temperature must be in (0, 100], got inf")`. The
/// bounds say what is meaningful (a probability in [0, 1], a width a machine can hold)
/// and keep every size derived from them in range of an `Int`.
public struct SettingsRanges {
  let task: String
  public init(task: String) { self.task = task }

  /// A number in the closed range, or above `lower` only when `open` (NaN fails).
  public func check<T: BinaryFloatingPoint>(
    _ key: String, _ value: T, in range: ClosedRange<T>, openBelow: Bool = false
  ) throws {
    let ok = value.isFinite && range.contains(value) && !(openBelow && value == range.lowerBound)
    if !ok {
      let low = openBelow ? "(" : "["
      throw TaskError("\(task).\(key) must be in \(low)\(range.lowerBound), \(range.upperBound)], got \(value)")
    }
  }

  public func check<T: BinaryFloatingPoint>(_ key: String, _ values: [T], in range: ClosedRange<T>, openBelow: Bool = false)
    throws
  {
    for v in values {
      do { try check(key, v, in: range, openBelow: openBelow) } catch {
        throw TaskError("\(task).\(key) takes numbers in \(openBelow ? "(" : "[")\(range.lowerBound), \(range.upperBound)], got \(values)")
      }
    }
  }

  public func check(_ key: String, _ value: Int, in range: ClosedRange<Int>) throws {
    if !range.contains(value) {
      throw TaskError("\(task).\(key) must be in [\(range.lowerBound), \(range.upperBound)], got \(value)")
    }
  }

  /// A [low, high] pair with low ≤ high, each in `range`.
  public func checkPair<T: BinaryFloatingPoint>(_ key: String, _ values: [T], in range: ClosedRange<T>, openBelow: Bool = false)
    throws
  {
    try check(key, values, in: range, openBelow: openBelow)
    if values.count != 2 || values[0] > values[1] {
      throw TaskError("\(task).\(key) takes two numbers [low, high] with low ≤ high, got \(values)")
    }
  }
}

/// The largest layer width a task setting takes: far above any CPU model, and small
/// enough that products of a few widths stay in range.
public let maximumTaskWidth = 1 << 16
