import Foundation
import Vision
import XCTest

final class DataCheckTests: XCTestCase {
  /// Good PNGs of three kinds, corrupt ones (bad signature, cut off, flipped bit, empty,
  /// a dangling link), and non-image files, nested.
  func makeMixedFolder() throws -> String {
    let root = try DataFixtures.makeFolder()
    try DataFixtures.png(root, "a.png", width: 8, height: 8, seed: 1)
    try DataFixtures.png(root, "x/b.png", width: 8, height: 8, seed: 2)
    try DataFixtures.png(root, "x/y/c.png", width: 8, height: 8, seed: 3)
    try DataFixtures.png(root, "rgb.png", width: 5, height: 3, channels: 3, seed: 4)
    try DataFixtures.png(root, "x/rgba.png", width: 2, height: 2, channels: 4, seed: 5)
    try DataFixtures.notPNG(root, "bad-signature.png")
    try DataFixtures.truncatedPNG(root, "x/truncated.png")
    try DataFixtures.flippedPNG(root, "x/y/flipped.png")
    try DataFixtures.file(root, "empty.png", [])
    try DataFixtures.text(root, "notes.txt", "hello")
    try DataFixtures.text(root, "x/meta.json", "{}")
    try DataFixtures.file(root, "x/empty.bin", [])
    try FileManager.default.createSymbolicLink(atPath: root + "/x/gone.png", withDestinationPath: "missing.png")
    return root
  }

  func testMixedFolderListsExactlyTheBadFiles() throws {
    let root = try makeMixedFolder()
    defer { DataFixtures.remove(root) }
    let report = try DataCheck.run(path: root, threads: 2)
    XCTAssertEqual(report.root, root)
    XCTAssertEqual(report.imageFiles, 10)
    XCTAssertEqual(report.usable, 5)
    XCTAssertFalse(report.allUsable)
    XCTAssertEqual(
      report.rejected.map(\.path),
      ["bad-signature.png", "empty.png", "x/gone.png", "x/truncated.png", "x/y/flipped.png"])
    XCTAssertTrue(report.rejected.allSatisfy { !$0.reason.isEmpty })
    XCTAssertTrue(report.rejected[0].reason.contains("signature"), report.rejected[0].reason)
    XCTAssertEqual(report.skippedCount, 3)
    XCTAssertEqual(report.skippedExamples, ["notes.txt", "x/empty.bin", "x/meta.json"])
    XCTAssertEqual(report.shapes.map(\.text), ["8×8 gray: 3", "2×2 RGBA: 1", "5×3 RGB: 1"])
    XCTAssertEqual(report.shapes.map(\.channels), [1, 3, 3])

    let text = report.text
    XCTAssertTrue(text.contains("10 image files (PNG or JPEG), 5 usable"), text)
    XCTAssertTrue(text.contains("  8×8 gray: 3"), text)
    XCTAssertTrue(text.contains("skipped 3 non-image files: notes.txt, x/empty.bin, x/meta.json"), text)
    XCTAssertTrue(text.contains("rejected 5 files:"), text)
    for issue in report.rejected { XCTAssertTrue(text.contains("  \(issue.path): \(issue.reason)"), text) }
  }

  func testCleanFolderIsAllUsable() throws {
    let root = try DataFixtures.makeFolder()
    defer { DataFixtures.remove(root) }
    for i in 0..<20 { try DataFixtures.png(root, "d\(i % 3)/\(i).png", width: 28, height: 28, seed: i) }
    try DataFixtures.text(root, "README", "not an image, and not an error")
    let report = try DataCheck.run(path: root)
    XCTAssertTrue(report.allUsable)
    XCTAssertEqual(report.usable, 20)
    XCTAssertEqual(report.shapes.map(\.text), ["28×28 gray: 20"])
    XCTAssertEqual(report.skippedCount, 1)
    XCTAssertTrue(report.text.contains("all images are usable"), report.text)
  }

  func testReportIsTheSameForAnyThreadCount() throws {
    let root = try makeMixedFolder()
    defer { DataFixtures.remove(root) }
    let one = try DataCheck.run(path: root, threads: 1)
    for threads in [2, 3, 16] {
      let other = try DataCheck.run(path: root, threads: threads)
      XCTAssertEqual(other.rejected, one.rejected)
      XCTAssertEqual(other.shapes, one.shapes)
      XCTAssertEqual(other.usable, one.usable)
      XCTAssertEqual(other.skippedExamples, one.skippedExamples)
    }
  }

  func testJSONHasSnakeCaseKeysAndRoundTrips() throws {
    let root = try makeMixedFolder()
    defer { DataFixtures.remove(root) }
    let report = try DataCheck.run(path: root)
    let data = try JSONEncoder().encode(report)
    let object = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
    let keys = [
      "root", "image_files", "usable", "shapes", "rejected", "skipped_count", "skipped_examples", "all_usable",
    ]
    for key in keys {
      XCTAssertNotNil(object[key], key)
    }
    XCTAssertEqual(object["all_usable"] as? Bool, false)
    XCTAssertEqual(try JSONDecoder().decode(DataCheckReport.self, from: data), report)
  }

  func testMissingOrImagelessFolderIsAnError() throws {
    let root = try DataFixtures.makeFolder()
    defer { DataFixtures.remove(root) }
    XCTAssertThrowsError(try DataCheck.run(path: root + "/missing")) { error in
      XCTAssertEqual((error as? VisionError)?.kind, .notFound)
    }
    try DataFixtures.text(root, "a.txt", "")
    XCTAssertThrowsError(try DataCheck.run(path: root)) { error in
      XCTAssertEqual((error as? VisionError)?.kind, .empty)
      XCTAssertTrue("\(error)".contains("a.txt"), "\(error)")
    }
  }
}
