import Foundation

/// A CSV field (RFC 4180): quoted, with quotes doubled, when it holds a comma, a quote or
/// a line break; otherwise as it is.
public func csvField(_ s: String) -> String {
  guard s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return s }
  return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
}
