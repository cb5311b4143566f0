import Foundation
import XCTest

/// `pretext data import` and `pretext data check`, run as a user would. The PNG fixtures
/// are made by the CLI itself: tiny IDX files are imported, then copies are corrupted.
final class DataCLITests: XCTestCase {
  var work = ""

  override func setUpWithError() throws {
    work = NSTemporaryDirectory() + "pretext-data-cli-\(UUID().uuidString.prefix(8))"
    try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
  }

  override func tearDown() {
    try? FileManager.default.removeItem(atPath: work)
  }

  func run(_ args: [String]) throws -> (status: Int32, out: String, err: String) { try runPretext(args) }

  /// An unsigned-byte IDX file: magic, big-endian dimensions, values.
  func writeIDX(_ path: String, shape: [Int], values: [UInt8]) throws {
    var bytes: [UInt8] = [0, 0, 8, UInt8(shape.count)]
    for d in shape { bytes += [UInt8(d >> 24 & 0xFF), UInt8(d >> 16 & 0xFF), UInt8(d >> 8 & 0xFF), UInt8(d & 0xFF)] }
    try Data(bytes + values).write(to: URL(fileURLWithPath: path))
  }

  /// A Fashion-MNIST-shaped source folder (train 12, test 5; labels i % 10), plain IDX.
  func makeSource() throws -> String {
    let source = work + "/src"
    try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
    for (prefix, count) in [("train", 12), ("t10k", 5)] {
      let pixels = (0..<count * 784).map { UInt8(truncatingIfNeeded: $0 * 5 + $0 / 784) }
      try writeIDX("\(source)/\(prefix)-images-idx3-ubyte", shape: [count, 28, 28], values: pixels)
      try writeIDX("\(source)/\(prefix)-labels-idx1-ubyte", shape: [count], values: (0..<count).map { UInt8($0 % 10) })
    }
    return source
  }

  func testHelpListsDataCommands() throws {
    let h = try run(["data", "--help"])
    XCTAssertEqual(h.status, 0)
    for sub in ["check", "import"] { XCTAssertTrue(h.out.contains(sub), h.out) }
    XCTAssertTrue(try run(["--help"]).out.contains("data"))
  }

  func testImportIsIdempotentAndItsOutputChecksClean() throws {
    let source = try makeSource()
    let out = work + "/fm"
    let first = try run(["data", "import", "fashion-mnist", "--source", source, "--out", out, "--threads", "2"])
    XCTAssertEqual(first.status, 0, first.err)
    XCTAssertTrue(first.out.contains("Imported Fashion-MNIST"), first.out)
    XCTAssertTrue(first.out.contains("29 PNG files written"), first.out)
    XCTAssertTrue(first.err.contains("12/12"), "progress: \(first.err)")
    let fm = FileManager.default
    XCTAssertTrue(fm.fileExists(atPath: out + "/.import-complete"))
    XCTAssertTrue(fm.fileExists(atPath: out + "/unlabeled/00011.png"))
    XCTAssertTrue(fm.fileExists(atPath: out + "/train/Trouser/00001.png"))
    XCTAssertTrue(fm.fileExists(atPath: out + "/test/T-shirt_top/00000.png"))

    let second = try run(["data", "import", "fashion-mnist", "--source", source, "--out", out])
    XCTAssertEqual(second.status, 0, second.err)
    XCTAssertTrue(second.out.contains("already imported"), second.out)

    let check = try run(["data", "check", out + "/unlabeled"])
    XCTAssertEqual(check.status, 0, check.out + check.err)
    XCTAssertTrue(check.out.contains("12 image files (PNG or JPEG), 12 usable"), check.out)
    XCTAssertTrue(check.out.contains("28×28 gray: 12"), check.out)
  }

  func testCheckListsExactlyTheBadFiles() throws {
    let source = try makeSource()
    let out = work + "/fm"
    XCTAssertEqual(try run(["data", "import", "fashion-mnist", "--source", source, "--out", out]).status, 0)
    let mixed = work + "/mixed"
    let fm = FileManager.default
    try fm.copyItem(atPath: out + "/unlabeled", toPath: mixed)
    // Corrupt two copies: cut one off after its header, flip a bit in the other's data.
    let cut = try Data(contentsOf: URL(fileURLWithPath: mixed + "/00003.png"))
    try cut.prefix(40).write(to: URL(fileURLWithPath: mixed + "/00003.png"))
    var flipped = [UInt8](try Data(contentsOf: URL(fileURLWithPath: mixed + "/00005.png")))
    flipped[flipped.count - 17] ^= 0x10
    try fm.createDirectory(atPath: mixed + "/sub", withIntermediateDirectories: true)
    try Data(flipped).write(to: URL(fileURLWithPath: mixed + "/sub/flipped.png"))
    try fm.removeItem(atPath: mixed + "/00005.png")
    try Data("notes".utf8).write(to: URL(fileURLWithPath: mixed + "/notes.txt"))
    try Data().write(to: URL(fileURLWithPath: mixed + "/empty.png"))
    try Data().write(to: URL(fileURLWithPath: mixed + "/sub/empty.dat"))

    let text = try run(["data", "check", mixed])
    XCTAssertEqual(text.status, 1, text.err)
    XCTAssertTrue(text.out.contains("13 image files (PNG or JPEG), 10 usable"), text.out)
    XCTAssertTrue(text.out.contains("rejected 3 files:"), text.out)
    XCTAssertTrue(text.out.contains("\n  00003.png: "), text.out)
    XCTAssertTrue(text.out.contains("\n  empty.png: "), text.out)
    XCTAssertTrue(text.out.contains("\n  sub/flipped.png: "), text.out)
    XCTAssertTrue(text.out.contains("skipped 2 non-image files: notes.txt, sub/empty.dat"), text.out)

    let json = try run(["data", "check", mixed, "--json"])
    XCTAssertEqual(json.status, 1)
    let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(json.out.utf8)) as? [String: Any])
    let rejected = try XCTUnwrap(object["rejected"] as? [[String: String]])
    XCTAssertEqual(rejected.map { $0["path"] }, ["00003.png", "empty.png", "sub/flipped.png"])
    XCTAssertEqual(object["usable"] as? Int, 10)
    XCTAssertEqual(object["all_usable"] as? Bool, false)

    // Without the bad files the folder is clean (non-images do not count against it).
    for bad in ["00003.png", "empty.png", "sub/flipped.png"] { try fm.removeItem(atPath: mixed + "/" + bad) }
    let clean = try run(["data", "check", mixed])
    XCTAssertEqual(clean.status, 0, clean.out + clean.err)
    XCTAssertTrue(clean.out.contains("all images are usable"), clean.out)
  }

  func testCheckListsEveryBadJPEGWithItsReason() throws {
    let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .appendingPathComponent("VisionTests/Fixtures/jpeg")
    let folder = work + "/photos"
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    let good = [UInt8](try Data(contentsOf: fixtures.appendingPathComponent("pattern-420.jpg")))
    for name in ["pattern-420.jpg", "cmyk.jpg", "orient-6.jpg", "photo-640x480.jpg"] {
      try FileManager.default.copyItem(atPath: fixtures.path + "/" + name, toPath: folder + "/" + name)
    }
    var bomb = good
    let sof = 2 + 18 + 2 * 69  // SOI, JFIF APP0, two quantization tables (cjpeg's layout)
    XCTAssertEqual(Array(bomb[sof..<sof + 2]), [0xFF, 0xC0])
    bomb.replaceSubrange(sof + 5..<sof + 9, with: [0xFD, 0xE8, 0xFD, 0xE8])  // 65000×65000
    try Data(bomb).write(to: URL(fileURLWithPath: folder + "/bomb.jpg"))
    try Data(good.prefix(good.count / 2)).write(to: URL(fileURLWithPath: folder + "/cut.JPG"))
    try Data().write(to: URL(fileURLWithPath: folder + "/empty.jpeg"))
    try Data("text".utf8).write(to: URL(fileURLWithPath: folder + "/text.jpg"))

    let text = try run(["data", "check", folder])
    XCTAssertEqual(text.status, 1, text.err)
    XCTAssertTrue(text.out.contains("8 image files (PNG or JPEG), 4 usable"), text.out)
    XCTAssertTrue(text.out.contains("  640×480 JPEG 4:2:0: 1"), text.out)
    XCTAssertTrue(text.out.contains("  32×16 JPEG 4:4:4: 1"), text.out)  // orient-6: shown upright
    XCTAssertTrue(text.out.contains("  16×8 JPEG CMYK: 1"), text.out)
    XCTAssertTrue(text.out.contains("rejected 4 files:"), text.out)
    XCTAssertTrue(
      text.out.contains("\n  bomb.jpg: 65000×65000 pixels exceeds the limit of 67108864 pixels"), text.out)
    XCTAssertTrue(text.out.contains("\n  cut.JPG: truncated: the data ends before the JPEG image does"), text.out)
    XCTAssertTrue(text.out.contains("\n  empty.jpeg: empty file (0 bytes)"), text.out)
    XCTAssertTrue(text.out.contains("\n  text.jpg: not a PNG or JPEG file"), text.out)
  }

  func testClearErrorsForMissingFoldersAndSources() throws {
    let missing = work + "/nothing-here"
    let check = try run(["data", "check", missing])
    XCTAssertEqual(check.status, 1)
    XCTAssertTrue(check.err.contains(missing + ": no such folder"), check.err)

    let imported = try run(["data", "import", "fashion-mnist", "--source", missing, "--out", work + "/o"])
    XCTAssertNotEqual(imported.status, 0)
    XCTAssertTrue(imported.err.contains(missing), imported.err)
    XCTAssertTrue(imported.err.contains("dataset-fashion-mnist"), imported.err)

    let unknown = try run(["data", "import", "imagenet", "--out", work + "/o"])
    XCTAssertNotEqual(unknown.status, 0)
    XCTAssertTrue(unknown.err.contains("fashion-mnist"), unknown.err)
  }
}
