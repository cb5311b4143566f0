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
