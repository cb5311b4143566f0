import Experiments
import Foundation
import XCTest

final class OptionsReferenceTests: XCTestCase {
  /// The README's options tables are the ones the declarations make: a new or changed
  /// option fails here until the README shows it.
  func testReadmeShowsEveryOptionAsDeclared() throws {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent()
    let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
    let begin = "<!-- options: begin (pretext options) -->\n", end = "<!-- options: end -->"
    guard let start = readme.range(of: begin), let stop = readme.range(of: end, range: start.upperBound..<readme.endIndex)
    else { return XCTFail("README.md has no \(begin.dropLast()) … \(end) block") }
    let shown = String(readme[start.upperBound..<stop.lowerBound]).trimmingCharacters(in: .whitespacesAndNewlines)
    let declared = OptionsReference.markdown().trimmingCharacters(in: .whitespacesAndNewlines)
    XCTAssertEqual(shown, declared, "README.md's options differ from the declarations: paste `pretext options` between the markers")
    // Every section is there, each with a row per option.
    XCTAssertTrue(declared.contains("| `batch_size` | `256` | [2, 1048576] |"), declared)
    XCTAssertTrue(declared.contains("#### `task` with `name: simclr`"), declared)
  }
}
