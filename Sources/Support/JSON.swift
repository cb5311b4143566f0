import Foundation

extension JSONEncoder {
  /// One line, keys sorted, slashes unescaped: the same value always gives the same
  /// bytes (metadata, checkpoints, metrics lines, manifests).
  public static var sortedKeys: JSONEncoder {
    let e = JSONEncoder()
    e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return e
  }

  /// Like `sortedKeys`, indented for people to read (reports, `--json` output).
  public static var sortedKeysPretty: JSONEncoder {
    let e = JSONEncoder()
    e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    return e
  }
}
