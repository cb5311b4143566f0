import CYaml
import Foundation
import Yams

/// How big a YAML text is once its aliases are expanded, counted before anything is
/// expanded: a pass over libyaml's events (the same parser Yams composes with), so a
/// "billion laughs" file (`a1: &a1 [*a0, *a0, …]` nested a few levels) is refused from
/// its few hundred bytes instead of expanding into gigabytes when the config is merged,
/// decoded or written back out.
///
/// Each node counts 1 and each alias counts the size of the node its anchor names (a
/// number kept per anchor), so the count is the node count of the expanded document in
/// time linear in the text.
public enum YAMLSize {
  /// Far above any real config (a full experiment or compare file has a few hundred
  /// nodes) and far below what costs noticeable memory or time once expanded.
  public static let nodeLimit = 100_000

  /// Throws a `ConfigError` naming `source` (a file, or `--set key=value`) when the text
  /// expands to more than `nodeLimit` nodes. Text that libyaml cannot parse passes: the
  /// composer that follows reports it with its line and column.
  public static func check(_ text: String, source: String, limit: Int = nodeLimit) throws {
    guard let count = expandedNodeCount(text, stopAbove: limit), count > limit else { return }
    throw ConfigError(
      "\(source): the YAML expands to more than \(limit) values once its aliases (*name) are expanded; "
        + "a config needs a few hundred: write the values out or use fewer nested aliases")
  }

  /// The expanded node count, or the first count above `stopAbove` (the pass stops
  /// there); nil when the text does not parse.
  public static func expandedNodeCount(_ text: String, stopAbove: Int) -> Int? {
    var parser = yaml_parser_t()
    guard yaml_parser_initialize(&parser) == 1 else { return nil }
    defer { yaml_parser_delete(&parser) }
    let bytes = Array(text.utf8)
    return bytes.withUnsafeBufferPointer { buffer -> Int? in
      yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
      var anchors: [String: Int] = [:]
      // Open collections: their anchor and the nodes counted inside so far (with the
      // collection itself).
      var open: [(anchor: String?, count: Int)] = []
      var total = 0
      func add(_ n: Int) {
        if open.isEmpty {
          total = total.addingReportingOverflow(n).overflow ? Int.max : total + n
        } else {
          let sum = open[open.count - 1].count.addingReportingOverflow(n)
          open[open.count - 1].count = sum.overflow ? Int.max : sum.partialValue
        }
      }
      func name(_ p: UnsafeMutablePointer<yaml_char_t>?) -> String? { p.map { String(cString: $0) } }
      while true {
        var event = yaml_event_t()
        guard yaml_parser_parse(&parser, &event) == 1 else { return nil }
        defer { yaml_event_delete(&event) }
        switch event.type {
        case YAML_STREAM_END_EVENT:
          return total
        case YAML_SCALAR_EVENT:
          if let a = name(event.data.scalar.anchor) { anchors[a] = 1 }
          add(1)
        case YAML_ALIAS_EVENT:
          // An undefined alias is the composer's error to report.
          add(name(event.data.alias.anchor).flatMap { anchors[$0] } ?? 1)
        case YAML_SEQUENCE_START_EVENT:
          open.append((name(event.data.sequence_start.anchor), 1))
        case YAML_MAPPING_START_EVENT:
          open.append((name(event.data.mapping_start.anchor), 1))
        case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
          guard let done = open.popLast() else { return nil }
          if let a = done.anchor { anchors[a] = done.count }
          add(done.count)
        default:
          break
        }
        // Any level over the limit stops the pass (a sum over levels can only exceed
        // it by the depth's factor: a few).
        if total > stopAbove || open.contains(where: { $0.count > stopAbove }) { return max(total, stopAbove + 1) }
      }
    }
  }
}

/// `Yams.compose`, after `YAMLSize.check`: every config text Pretext reads (config and
/// compare files, `--set` values) goes through here. A size error is a `ConfigError`
/// naming `source`; a syntax error is Yams' own, for the caller to wrap.
func composeBounded(_ text: String, source: String) throws -> Node? {
  try YAMLSize.check(text, source: source)
  return try Yams.compose(yaml: text)
}
