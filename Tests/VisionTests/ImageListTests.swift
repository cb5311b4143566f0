import Foundation
import Vision
import XCTest

/// A `.txt` file of image paths, accepted wherever an image folder is.
final class ImageListTests: XCTestCase {
  func testAListIsReadLikeTheFolderItNames() throws {
    let root = try DataFixtures.makeFolder()
    defer { DataFixtures.remove(root) }
    try DataFixtures.png(root, "a/1.png", seed: 1)
    try DataFixtures.png(root, "a/2.png", seed: 2)
    try DataFixtures.png(root, "b/3.png", seed: 3)
    try DataFixtures.png(root, "b/not-listed.png", seed: 4)
    try DataFixtures.text(
      root, "list.txt", "\u{FEFF}# training subset\r\n./b/3.png\r\n\n  a/2.png  \na/1.png\n" + root + "/a/1.png\n")
    let list = try ImageFolder(path: root + "/list.txt")
    // Sorted as a folder's files are; an absolute path is kept as given.
    XCTAssertEqual(list.files, [root + "/a/1.png", "a/1.png", "a/2.png", "b/3.png"])
    XCTAssertEqual(list.root, root)
    XCTAssertEqual(list.list, root + "/list.txt")
    XCTAssertEqual(try list.loadImage(at: 3), DataFixtures.image(seed: 3))
    XCTAssertTrue(list.summary.hasPrefix(root + "/list.txt: 4 images"), list.summary)
    // Labeled: the first folder of each path is its class; absolute paths have none.
    let labeled = try LabeledImageFolder(path: root + "/list.txt")
    XCTAssertEqual(labeled.classes, ["a", "b"])
    XCTAssertEqual(labeled.files, ["a/1.png", "a/2.png", "b/3.png"])
    XCTAssertEqual(labeled.labels, [0, 0, 1])
    XCTAssertEqual(labeled.skipped, [root + "/a/1.png"])
    // data check reads the list too.
    let report = try DataCheck.run(path: root + "/list.txt", threads: 2)
    XCTAssertEqual(report.usable, 4)
    XCTAssertEqual(report.root, root + "/list.txt")
  }

  func testBadListsNameTheLineAndMissingFilesAreLeftOut() throws {
    let root = try DataFixtures.makeFolder()
    defer { DataFixtures.remove(root) }
    try DataFixtures.png(root, "1.png")
    func error(_ text: String) -> String {
      do {
        try DataFixtures.text(root, "l.txt", text)
        _ = try ImageFolder(path: root + "/l.txt")
        return "no error"
      } catch {
        return "\(error)"
      }
    }
    XCTAssertEqual(
      error("1.png\nnotes.md\n"),
      "\(root)/l.txt: line 2: notes.md is not named like an image (.jpeg, .jpg or .png); an image list holds one "
        + "image path per line, relative to the list's folder")
    XCTAssertEqual(
      error("1.png\n./1.png\n"), "\(root)/l.txt: line 2: 1.png is already listed on line 1; list each image once")
    XCTAssertEqual(
      error("# nothing\n\n"), "\(root)/l.txt: lists no images; expected one image path per line (relative to \(root))")
    try DataFixtures.file(root, "bad.txt", [0xFF, 0xFE, 0x00])
    XCTAssertThrowsError(try ImageFolder(path: root + "/bad.txt")) {
      XCTAssertEqual("\($0)", "\(root)/bad.txt: is not UTF-8 text; an image list holds one path per line, in UTF-8")
    }
    // A listed file that is gone is left out, with the reason (strict: an error).
    try DataFixtures.text(root, "l.txt", "1.png\ngone.png\n")
    let list = try ImageFolder(path: root + "/l.txt")
    XCTAssertEqual(list.files, ["1.png"])
    XCTAssertEqual(list.rejected.map(\.path), ["gone.png"])
    XCTAssertTrue(list.rejected[0].reason.contains("No such file"), list.rejected[0].reason)
    XCTAssertThrowsError(try ImageFolder(path: root + "/l.txt", options: ImageFolderOptions(strict: true))) {
      XCTAssertTrue("\($0)".hasPrefix("\(root)/l.txt: 1 file cannot be used: gone.png"), "\($0)")
    }
    // Other files are still not folders.
    try DataFixtures.text(root, "notes.md", "1.png\n")
    XCTAssertThrowsError(try ImageFolder(path: root + "/notes.md")) {
      XCTAssertTrue("\($0)".contains("is a file, not a folder"), "\($0)")
      XCTAssertTrue("\($0)".contains("or a .txt file listing image paths"), "\($0)")
    }
  }
}
