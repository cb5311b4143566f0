import Experiments
import Foundation
import XCTest

/// Bounded config parsing (Sources/Experiments/YAMLSize.swift): the expanded size of a
/// YAML text, counted from libyaml's events without expanding it.
final class YAMLSizeTests: XCTestCase {
  func testCountsEveryNodeAndEachAliasAsTheNodeItNames() throws {
    // A mapping (1) of 2 keys and 2 values; the list [1, 2] is 3 nodes.
    XCTAssertEqual(YAMLSize.expandedNodeCount("a: 1\nb: [1, 2]\n", stopAbove: 1000), 1 + 2 + 1 + 3)
    // *l counts as the 3 nodes of the list it names.
    XCTAssertEqual(YAMLSize.expandedNodeCount("a: &l [1, 2]\nb: *l\n", stopAbove: 1000), 1 + 2 + 3 + 3)
    // A later anchor of the same name shadows the earlier one (YAML's rule).
    XCTAssertEqual(YAMLSize.expandedNodeCount("a: &x 1\nb: &x [1, 2, 3]\nc: *x\n", stopAbove: 1000), 1 + 3 + 1 + 4 + 4)
    XCTAssertEqual(YAMLSize.expandedNodeCount("", stopAbove: 1000), 0)
    XCTAssertNil(YAMLSize.expandedNodeCount("a: [1,", stopAbove: 1000), "unparsable text is the composer's to report")
  }

  /// Nine levels of nine aliases: 9^9 values once expanded, refused from the text at once.
  func testNestedAliasesAreRefusedWithoutExpanding() throws {
    var text = "x0: &a0 [lol]\n"
    for i in 1...9 {
      text += "x\(i): &a\(i) [" + Array(repeating: "*a\(i - 1)", count: 9).joined(separator: ",") + "]\n"
    }
    let start = Date()
    XCTAssertThrowsError(try YAMLSize.check(text, source: "bomb.yaml")) { error in
      XCTAssertTrue("\(error)".hasPrefix("bomb.yaml: the YAML expands to more than 100000 values"), "\(error)")
    }
    XCTAssertLessThan(Date().timeIntervalSince(start), 0.1)
    // Every shipped config is far below the limit.
    let experiments = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent().appendingPathComponent("experiments")
    for name in try FileManager.default.contentsOfDirectory(atPath: experiments.path) where name.hasSuffix(".yaml") {
      let text = try String(contentsOf: experiments.appendingPathComponent(name), encoding: .utf8)
      XCTAssertLessThan(try XCTUnwrap(YAMLSize.expandedNodeCount(text, stopAbove: 100_000)), 200, name)
      XCTAssertNoThrow(try YAMLSize.check(text, source: name))
    }
  }
}
