import Foundation
import Support
import XCTest

/// A section declared with every kind of option, to check what the one declaration gives.
struct Sample: SettingsSchema, Equatable {
  var rate: Double = 0.5
  var count = 3
  var limit: Int? = nil
  var scale: [Double] = [0.2, 1]
  var jitter: [Float] = [0.4, 0.4]
  var mode = "fast"
  var on = true
  var tags: [String] = ["a"]
  init() {}

  static let section = "sample"
  static let options: [SettingOption<Sample>] = [
    .number("rate", \.rate, in: 0...1, openBelow: true, "a share"),
    .integer("count", \.count, in: 1...10, "how many"),
    .integer("limit", \.limit, in: 1...100, "an optional cap"),
    .interval("scale", \.scale, in: 0...1, openBelow: true, "a range"),
    .numbers("jitter", \.jitter, count: 2, in: 0...1, "two strengths"),
    .choice("mode", \.mode, ["fast", "slow"], "a|b choice"),
    .flag("on", \.on, "a switch"),
    .list("tags", \.tags, accepts: "names", "one or more names"),
  ]

  func checkTogether() throws {
    if let limit, limit < count { throw Self.error("limit", "must be at least count (\(count)), got \(limit)") }
  }
}

final class SettingsSchemaTests: XCTestCase {
  func decode(_ json: String) throws -> Sample { try JSONDecoder().decode(Sample.self, from: Data(json.utf8)) }

  func problem(_ json: String) -> String {
    do {
      _ = try decode(json)
      return "no error"
    } catch { return "\(error)" }
  }

  /// Absent keys keep the defaults of `init()`; present ones are decoded, a single value
  /// standing for a list of one.
  func testDecodingKeepsDefaultsAndReadsEveryKind() throws {
    XCTAssertEqual(try decode("{}"), Sample())
    let s = try decode(
      #"{"rate": 1, "count": 10, "limit": 50, "scale": [0.5, 0.5], "jitter": [0, 1], "mode": "slow", "on": false, "tags": "b"}"#)
    XCTAssertEqual(s.rate, 1)
    XCTAssertEqual(s.count, 10)
    XCTAssertEqual(s.limit, 50)
    XCTAssertEqual(s.scale, [0.5, 0.5])
    XCTAssertEqual(s.jitter, [0, 1])
    XCTAssertEqual(s.mode, "slow")
    XCTAssertFalse(s.on)
    XCTAssertEqual(s.tags, ["b"])
    // Encoding writes every option; decoding it gives the same settings back.
    XCTAssertEqual(try JSONDecoder().decode(Sample.self, from: JSONEncoder().encode(s)), s)
  }

  /// Each out-of-range value is refused with the section, the key, what it accepts and
  /// the value given; the error carries the key for a loader to locate.
  func testRangesAreCheckedWithTheKey() {
    XCTAssertEqual(problem(#"{"rate": 0}"#), "sample.rate must be in (0, 1], got 0.0")
    XCTAssertEqual(problem(#"{"count": 11}"#), "sample.count must be in [1, 10], got 11")
    XCTAssertEqual(problem(#"{"limit": 0}"#), "sample.limit must be in [1, 100], got 0")
    XCTAssertEqual(
      problem(#"{"scale": [0.9, 0.1]}"#), "sample.scale takes two numbers [low, high] in (0, 1] with low ≤ high, got [0.9, 0.1]")
    XCTAssertEqual(problem(#"{"jitter": [0.1]}"#), "sample.jitter takes 2 numbers in [0, 1], got [0.1]")
    XCTAssertEqual(problem(#"{"mode": "medium"}"#), "sample.mode must be one of fast, slow; got \"medium\"")
    XCTAssertEqual(problem(#"{"count": 5, "limit": 4}"#), "sample.limit must be at least count (5), got 4")
    do {
      _ = try decode(#"{"count": 0}"#)
      XCTFail("count 0 was accepted")
    } catch let e as SettingError {
      XCTAssertEqual(e.key, "count")
    } catch { XCTFail("\(error)") }
    // Code that builds settings without decoding gets the same checks from validate().
    var s = Sample()
    s.rate = .nan
    XCTAssertThrowsError(try s.validate()) { XCTAssertEqual("\($0)", "sample.rate must be in (0, 1], got nan") }
  }

  /// A misspelt key is an error listing the known ones, never silently ignored.
  func testUnknownKeysAreRefused() {
    let p = problem(#"{"rat": 0.5}"#)
    XCTAssertTrue(p.contains("unknown key \"rat\"") && p.contains("known: count, jitter, limit, mode, on, rate"), p)
  }

  /// The options table has one row per option with its default and accepted values.
  func testOptionsTableShowsEveryOption() {
    let rows = Sample.optionsTable().split(separator: "\n").map(String.init)
    XCTAssertEqual(rows.count, 2 + Sample.options.count)
    XCTAssertEqual(rows[2], "| `rate` | `0.5` | (0, 1] | a share |")
    XCTAssertEqual(rows[4], "| `limit` | — | [1, 100] | an optional cap |")
    XCTAssertEqual(rows[5], "| `scale` | `[0.2, 1]` | [low, high] in (0, 1], low ≤ high | a range |")
    XCTAssertEqual(rows[7], "| `mode` | `fast` | fast, slow | a\\|b choice |")
  }
}
