import Foundation
import Vision
import XCTest

/// Temporary folders of tiny generated files for the dataset tests (IDX, folders, check).
enum DataFixtures {
  /// A fresh empty folder under the system's temporary folder.
  static func makeFolder(_ name: String = #function) throws -> String {
    let safe = name.filter { $0.isLetter || $0.isNumber }
    let path = NSTemporaryDirectory() + "pretext-data-\(safe)-\(UUID().uuidString.prefix(8))"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
  }

  static func remove(_ path: String) { try? FileManager.default.removeItem(atPath: path) }

  /// A `width`×`height` image whose pixels encode `seed` (so tests can tell images apart).
  static func image(width: Int = 4, height: Int = 3, channels: Int = 1, seed: Int = 0) -> Image {
    let pixels = (0..<width * height * channels).map { UInt8(truncatingIfNeeded: $0 * 7 + seed * 31) }
    return Image(width: width, height: height, channels: channels, pixels: pixels)
  }

  /// Writes a PNG at `root/relative`, creating folders on the way.
  @discardableResult
  static func png(
    _ root: String, _ relative: String, width: Int = 4, height: Int = 3, channels: Int = 1, seed: Int = 0
  ) throws -> Image {
    let path = root + "/" + relative
    try FileManager.default.createDirectory(
      atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    let image = image(width: width, height: height, channels: channels, seed: seed)
    try PNG.write(image, to: path)
    return image
  }

  static func file(_ root: String, _ relative: String, _ bytes: [UInt8]) throws {
    let path = root + "/" + relative
    try FileManager.default.createDirectory(
      atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    try Data(bytes).write(to: URL(fileURLWithPath: path))
  }

  static func text(_ root: String, _ relative: String, _ text: String) throws {
    try file(root, relative, Array(text.utf8))
  }

  /// A PNG whose signature and IHDR are intact but whose image data is cut off: it
  /// passes the header check and fails only when decoded.
  static func truncatedPNG(_ root: String, _ relative: String) throws {
    let bytes = try PNG.encode(image(width: 16, height: 16, seed: 5))
    try file(root, relative, Array(bytes.prefix(45)))
  }

  /// A PNG with one bit flipped in its last IDAT byte (a CRC error when decoded).
  static func flippedPNG(_ root: String, _ relative: String) throws {
    var bytes = try PNG.encode(image(width: 16, height: 16, seed: 6))
    // The file ends with IDAT data, the IDAT CRC (4 bytes) and IEND (12 bytes).
    bytes[bytes.count - 17] ^= 0x01
    try file(root, relative, bytes)
  }

  /// Bytes that are not a PNG at all (bad signature), under a .png name.
  static func notPNG(_ root: String, _ relative: String) throws {
    try text(root, relative, "this is not an image, whatever its name says\n")
  }
}

final class ImageFolderTests: XCTestCase {
  func testNestedFolderListsPNGsSkipsOthersAndRejectsBadHeaders() throws {
    let root = try DataFixtures.makeFolder()
    defer { DataFixtures.remove(root) }
    let a = try DataFixtures.png(root, "a.png", seed: 1)
    try DataFixtures.png(root, "sub/b.PNG", width: 5, height: 2, channels: 3, seed: 2)
    let c = try DataFixtures.png(root, "sub/deep/deeper/c.png", seed: 3)
    try DataFixtures.text(root, "notes.txt", "hello")
    try DataFixtures.text(root, "sub/labels.json", "{}")
    try DataFixtures.file(root, "empty.png", [])
    try DataFixtures.notPNG(root, "sub/fake.png")
    try DataFixtures.png(root, ".hidden.png")  // hidden: ignored altogether
    try DataFixtures.png(root, ".git/objects/x.png")

    let folder = try ImageFolder(path: root + "/")
    XCTAssertEqual(folder.root, root)
    XCTAssertEqual(folder.files, ["a.png", "sub/b.PNG", "sub/deep/deeper/c.png"])
    XCTAssertEqual(folder.skipped, ["notes.txt", "sub/labels.json"])
    XCTAssertEqual(folder.rejected.map(\.path), ["empty.png", "sub/fake.png"])
    XCTAssertTrue(folder.rejected.allSatisfy { !$0.reason.isEmpty })
    XCTAssertEqual(folder.count, 3)
    XCTAssertEqual(folder.path(at: 2), root + "/sub/deep/deeper/c.png")
    XCTAssertEqual(try folder.image(at: 0, options: ImageDecodeOptions()), a)
    XCTAssertEqual(try folder.loadImage(at: 2), c)
    XCTAssertEqual(folder.name(of: 0), root + "/a.png")
    let rgb = try folder.image(at: 1, options: ImageDecodeOptions(channels: .rgb))
    XCTAssertEqual(rgb.shape, [2, 5, 3])
    let gray = try folder.image(at: 1, options: ImageDecodeOptions(channels: .gray))
    XCTAssertEqual(gray.channels, 1)
    let summary = folder.summary
    XCTAssertTrue(summary.hasPrefix("\(root): 3 images\n"), summary)
    XCTAssertTrue(summary.contains("skipped 2 non-image files: notes.txt, sub/labels.json"), summary)
    XCTAssertTrue(summary.contains("left out 2 unusable files:\n  empty.png: "), summary)
  }

  func testStrictModeFailsOnRejectedFiles() throws {
    let root = try DataFixtures.makeFolder()
    defer { DataFixtures.remove(root) }
    try DataFixtures.png(root, "good.png")
    try DataFixtures.notPNG(root, "bad.png")
    XCTAssertEqual(try ImageFolder(path: root).files, ["good.png"])
    XCTAssertThrowsError(try ImageFolder(path: root, options: ImageFolderOptions(strict: true))) { error in
      let e = error as? VisionError
      XCTAssertEqual(e?.kind, .unreadable)
      XCTAssertTrue("\(error)".contains("bad.png"), "\(error)")
      XCTAssertTrue("\(error)".contains("strict"), "says how to proceed: \(error)")
    }
  }

  func testOrderIsByteWiseAndDeterministic() throws {
    let root = try DataFixtures.makeFolder()
    defer { DataFixtures.remove(root) }
    // Created out of order; byte order puts upper case before lower case, "a b" (space,
    // 0x20) before "a.png" (0x2E) before "a/" (0x2F), and "é" (0xC3…) after "z".
    let names = ["z.png", "é.png", "a/x.png", "a.png", "a b.png", "B.png", "a/10.png", "a/9.png", "_.png"]
    for (i, name) in names.enumerated() { try DataFixtures.png(root, name, seed: i) }
    let expected = ["B.png", "_.png", "a b.png", "a.png", "a/10.png", "a/9.png", "a/x.png", "z.png", "é.png"]
    let first = try ImageFolder(path: root, options: ImageFolderOptions(threads: 1))
    XCTAssertEqual(first.files, expected)
    let second = try ImageFolder(path: root, options: ImageFolderOptions(threads: 4))
    XCTAssertEqual(second.files, expected)
  }

  func testMissingEmptyAndWrongTypeAreClearErrors() throws {
    let root = try DataFixtures.makeFolder()
    defer { DataFixtures.remove(root) }
    let missing = root + "/nope"
    XCTAssertThrowsError(try ImageFolder(path: missing)) { error in
      XCTAssertEqual((error as? VisionError)?.kind, .notFound)
      XCTAssertTrue("\(error)".hasPrefix(missing + ": "), "\(error)")
      XCTAssertTrue("\(error)".contains("expected a folder of PNG or JPEG images"), "\(error)")
    }
    XCTAssertThrowsError(try ImageFolder(path: root)) { error in
      XCTAssertEqual((error as? VisionError)?.kind, .empty)
      XCTAssertTrue("\(error)".contains(root), "\(error)")
      XCTAssertTrue("\(error)".contains("empty"), "\(error)")
    }
    try DataFixtures.text(root, "readme.txt", "no images here")
    try DataFixtures.notPNG(root, "broken.png")
    XCTAssertThrowsError(try ImageFolder(path: root)) { error in
      XCTAssertEqual((error as? VisionError)?.kind, .empty)
      XCTAssertTrue("\(error)".contains("readme.txt"), "names what it found: \(error)")
      XCTAssertTrue("\(error)".contains("1 unusable image file"), "\(error)")
    }
    try DataFixtures.text(root, "readme.md", "no images here")
    XCTAssertThrowsError(try ImageFolder(path: root + "/readme.md")) { error in
      XCTAssertEqual((error as? VisionError)?.kind, .wrongType)
      XCTAssertTrue("\(error)".contains("not a folder"), "\(error)")
    }
  }

  func testSymbolicLinkLoopsEndAndFilesAreListedOnce() throws {
    let root = try DataFixtures.makeFolder()
    defer { DataFixtures.remove(root) }
    try DataFixtures.png(root, "a/one.png")
    try DataFixtures.png(root, "b/two.png")
    let fm = FileManager.default
    try fm.createSymbolicLink(atPath: root + "/a/loop", withDestinationPath: "..")  // back to root
    try fm.createSymbolicLink(atPath: root + "/a/self", withDestinationPath: ".")
    try fm.createSymbolicLink(atPath: root + "/c", withDestinationPath: root + "/b")  // second path to b
    try fm.createSymbolicLink(atPath: root + "/dangling.png", withDestinationPath: root + "/missing.png")
    try fm.createSymbolicLink(atPath: root + "/linked.png", withDestinationPath: root + "/a/one.png")
    let folder = try ImageFolder(path: root)
    XCTAssertEqual(folder.files, ["a/one.png", "b/two.png", "linked.png"])
    XCTAssertEqual(folder.rejected.map(\.path), ["dangling.png"])
  }

  func testCorruptDataBehindAValidHeaderIsAClearReadError() throws {
    let root = try DataFixtures.makeFolder()
    defer { DataFixtures.remove(root) }
    try DataFixtures.png(root, "a.png")
    try DataFixtures.truncatedPNG(root, "b.png")
    try DataFixtures.flippedPNG(root, "c.png")
    // The scan checks headers only, so both pass it...
    let folder = try ImageFolder(path: root, options: ImageFolderOptions(strict: true))
    XCTAssertEqual(folder.files, ["a.png", "b.png", "c.png"])
    // ...and decoding names the file and the reason.
    for index in [1, 2] {
      XCTAssertThrowsError(try folder.image(at: index, options: ImageDecodeOptions())) { error in
        let e = error as? VisionError
        XCTAssertEqual(e?.kind, .unreadable)
        XCTAssertEqual(e?.path, folder.path(at: index))
        XCTAssertTrue("\(error)".hasPrefix(folder.path(at: index) + ": "), "\(error)")
        XCTAssertTrue("\(error)".contains("pretext data check"), "says what to do: \(error)")
      }
    }
    XCTAssertNoThrow(try folder.image(at: 0, options: ImageDecodeOptions()))
  }

  func testHeaderCheckCanBeTurnedOff() throws {
    let root = try DataFixtures.makeFolder()
    defer { DataFixtures.remove(root) }
    try DataFixtures.png(root, "a.png")
    try DataFixtures.notPNG(root, "b.png")
    let folder = try ImageFolder(path: root, options: ImageFolderOptions(checkHeaders: false))
    XCTAssertEqual(folder.files, ["a.png", "b.png"])
    XCTAssertThrowsError(try folder.loadImage(at: 1))
  }

  // MARK: Labeled: class folders

  func testClassFoldersAreSortedAndLabelThenImages() throws {
    let root = try DataFixtures.makeFolder()
    defer { DataFixtures.remove(root) }
    try DataFixtures.png(root, "dog/1.png", seed: 1)
    try DataFixtures.png(root, "cat/2.png", seed: 2)
    try DataFixtures.png(root, "cat/nested/3.png", seed: 3)
    try DataFixtures.png(root, "Zebra/4.png", seed: 4)
    try DataFixtures.png(root, "loose.png")  // no class
    try DataFixtures.text(root, "cat/info.txt", "")
    try DataFixtures.notPNG(root, "dog/bad.png")
    let set = try LabeledImageFolder(path: root)
    XCTAssertEqual(set.classes, ["Zebra", "cat", "dog"])
    XCTAssertEqual(set.files, ["Zebra/4.png", "cat/2.png", "cat/nested/3.png", "dog/1.png"])
    XCTAssertEqual(set.labels, [0, 1, 1, 2])
    XCTAssertEqual(set.classCounts, [1, 2, 1])
    XCTAssertEqual(set.skipped, ["cat/info.txt", "loose.png"])
    XCTAssertEqual(set.rejected.map(\.path), ["dog/bad.png"])
    XCTAssertEqual(try set.image(at: 3, options: ImageDecodeOptions()), DataFixtures.image(seed: 1))
    XCTAssertEqual(set.label(at: 3), 2)
  }

  func testEmptyClassFolderAndNoClassFoldersAreErrors() throws {
    let root = try DataFixtures.makeFolder()
    defer { DataFixtures.remove(root) }
    try DataFixtures.png(root, "flat.png")
    XCTAssertThrowsError(try LabeledImageFolder(path: root)) { error in
      XCTAssertEqual((error as? VisionError)?.kind, .empty)
      XCTAssertTrue("\(error)".contains("one subfolder per class"), "\(error)")
    }
    try DataFixtures.png(root, "cat/1.png")
    try DataFixtures.text(root, "dog/readme.txt", "")
    XCTAssertThrowsError(try LabeledImageFolder(path: root)) { error in
      XCTAssertEqual((error as? VisionError)?.path, root + "/dog")
    }
  }

  // MARK: Labeled: CSV

  func testCSVWithHeaderQuotesAndNumericLabels() throws {
    let root = try DataFixtures.makeFolder()
    defer { DataFixtures.remove(root) }
    try DataFixtures.png(root, "img/a.png", seed: 1)
    try DataFixtures.png(root, "img/b,c.png", seed: 2)
    try DataFixtures.png(root, "img/d.png", seed: 3)
    try DataFixtures.png(root, "e.png", seed: 4)
    let csv = "path,label\r\nimg/d.png,10\n\n\"img/b,c.png\",2\n ./img/a.png , 2 \ne.png,0\n"
    try DataFixtures.text(root, "labels.csv", csv)
    let set = try LabeledImageFolder(csv: root + "/labels.csv")
    XCTAssertEqual(set.root, root)
    XCTAssertEqual(set.classes, ["0", "2", "10"])  // numeric order, not "0", "10", "2"
    XCTAssertEqual(set.files, ["e.png", "img/a.png", "img/b,c.png", "img/d.png"])
    XCTAssertEqual(set.labels, [0, 1, 1, 2])
    XCTAssertEqual(try set.image(at: 2, options: ImageDecodeOptions()), DataFixtures.image(seed: 2))

    // Without a header, and with names: byte-wise order.
    try DataFixtures.text(root, "named.csv", "img/a.png,dog\nimg/d.png,Cat\ne.png,cat\n")
    let named = try LabeledImageFolder(csv: root + "/named.csv")
    XCTAssertEqual(named.classes, ["Cat", "cat", "dog"])
    XCTAssertEqual(named.files, ["e.png", "img/a.png", "img/d.png"])
    XCTAssertEqual(named.labels, [1, 2, 0])
  }

  func testCSVErrorsNameTheLine() throws {
    let root = try DataFixtures.makeFolder()
    defer { DataFixtures.remove(root) }
    try DataFixtures.png(root, "a.png")
    try DataFixtures.png(root, "b.png")
    func error(_ csv: String) -> String {
      let path = root + "/l.csv"
      try? FileManager.default.removeItem(atPath: path)
      try! DataFixtures.text(root, "l.csv", csv)
      do {
        _ = try LabeledImageFolder(csv: path)
        return "no error"
      } catch {
        XCTAssertTrue("\(error)".hasPrefix(path + ": "), "names the CSV: \(error)")
        return "\(error)"
      }
    }
    var e = error("path,label\na.png,x\nmissing.png,y\n")
    XCTAssertTrue(e.contains("line 3") && e.contains(root + "/missing.png"), e)
    XCTAssertTrue(e.contains("relative to the CSV's folder"), e)
    e = error("a.png,x\nb.png,y,z\n")
    XCTAssertTrue(e.contains("line 2") && e.contains("found 3"), e)
    e = error("a.png,x\nb.png\n")
    XCTAssertTrue(e.contains("line 2") && e.contains("found 1"), e)
    e = error("a.png,x\n\nb.png,\n")
    XCTAssertTrue(e.contains("line 3") && e.contains("label is empty"), e)
    e = error("a.png,x\nb.png,y\na.png,z\n")
    XCTAssertTrue(e.contains("line 3") && e.contains("line 1"), e)
    e = error("a.png,x\nnotes.txt,y\n")
    XCTAssertTrue(e.contains("line 2") && e.contains("not named like an image (.jpeg, .jpg or .png)"), e)
    e = error("a.png,x\n\"b.png,y\n")
    XCTAssertTrue(e.contains("line 2") && e.contains("quoted"), e)
    e = error("path,label\n")
    XCTAssertTrue(e.contains("lists no images"), e)
    XCTAssertThrowsError(try LabeledImageFolder(csv: root + "/none.csv")) { error in
      XCTAssertEqual((error as? VisionError)?.kind, .notFound)
    }
  }

  func testCSVRejectsCorruptFilesOrFailsInStrictMode() throws {
    let root = try DataFixtures.makeFolder()
    defer { DataFixtures.remove(root) }
    try DataFixtures.png(root, "a.png")
    try DataFixtures.notPNG(root, "b.png")
    try DataFixtures.text(root, "l.csv", "a.png,x\nb.png,y\n")
    let set = try LabeledImageFolder(csv: root + "/l.csv")
    XCTAssertEqual(set.files, ["a.png"])
    XCTAssertEqual(set.classes, ["x", "y"])
    XCTAssertEqual(set.rejected.map(\.path), ["b.png"])
    XCTAssertThrowsError(try LabeledImageFolder(csv: root + "/l.csv", options: ImageFolderOptions(strict: true)))
  }
}

final class MixedFormatFolderTests: XCTestCase {
  /// PNG and JPEG files of odd sizes side by side, nested, with upper-case and `.jpeg`
  /// names, plus a file that is not an image.
  func makeMixedFolder(_ root: String) throws {
    try DataFixtures.png(root, "a/1x1.png", width: 1, height: 1, seed: 1)
    try DataFixtures.png(root, "a/1x300.png", width: 1, height: 300, channels: 3, seed: 2)
    try DataFixtures.file(root, "photo.JPG", JPEGFixtures.bytes("photo-640x480.jpg"))
    try DataFixtures.file(root, "deep/x/1x1.jpeg", JPEGFixtures.bytes("odd-1x1.jpg"))
    try DataFixtures.file(root, "deep/1x300.jpg", JPEGFixtures.bytes("odd-1x300.jpg"))
    try DataFixtures.text(root, "notes.txt", "not an image")
  }

  func testMixedFolderIsListedCheckedAndDecoded() throws {
    let root = try DataFixtures.makeFolder()
    defer { DataFixtures.remove(root) }
    try makeMixedFolder(root)
    let folder = try ImageFolder(path: root, options: ImageFolderOptions(threads: 2))
    XCTAssertEqual(folder.files, ["a/1x1.png", "a/1x300.png", "deep/1x300.jpg", "deep/x/1x1.jpeg", "photo.JPG"])
    XCTAssertEqual(folder.skipped, ["notes.txt"])
    XCTAssertEqual(folder.rejected, [])
    XCTAssertEqual(
      folder.formats,
      ["1×1 gray": 1, "1×300 RGB": 1, "1×300 JPEG 4:2:0": 1, "1×1 JPEG 4:2:0": 1, "640×480 JPEG 4:2:0": 1])
    let shapes = try (0..<folder.count).map { try folder.loadImage(at: $0).shape }
    XCTAssertEqual(shapes, [[1, 1, 1], [300, 1, 3], [300, 1, 3], [1, 1, 3], [480, 640, 3]])
    // The JPEGs decode to their content (the 640×480 one is a gradient, not a flat fill).
    let photo = try folder.loadImage(at: 4)
    XCTAssertEqual(photo, try JPEG.decode(JPEGFixtures.bytes("photo-640x480.jpg")))
    XCTAssertGreaterThan(Set(photo.pixels).count, 100)
    XCTAssertEqual(try folder.loadImage(at: 3).pixels.count, 3)
    XCTAssertEqual(try folder.image(at: 4, options: ImageDecodeOptions(channels: .gray)).shape, [480, 640, 1])

    let report = try DataCheck.run(path: root, threads: 2)
    XCTAssertTrue(report.allUsable, report.text)
    XCTAssertEqual(report.imageFiles, 5)
    XCTAssertEqual(report.usable, 5)
    XCTAssertEqual(
      report.shapes.map(\.text),
      ["1×1 JPEG 4:2:0: 1", "1×1 gray: 1", "1×300 JPEG 4:2:0: 1", "1×300 RGB: 1", "640×480 JPEG 4:2:0: 1"])
  }

  func testClassFoldersAndCSVFilesListJPEGs() throws {
    let root = try DataFixtures.makeFolder()
    defer { DataFixtures.remove(root) }
    try DataFixtures.file(root, "cat/1.jpg", JPEGFixtures.bytes("pattern-420.jpg"))
    try DataFixtures.file(root, "cat/sub/2.JPEG", JPEGFixtures.bytes("pattern-gray.jpg"))
    try DataFixtures.png(root, "dog/3.png", seed: 3)
    let labeled = try LabeledImageFolder(path: root)
    XCTAssertEqual(labeled.classes, ["cat", "dog"])
    XCTAssertEqual(labeled.files, ["cat/1.jpg", "cat/sub/2.JPEG", "dog/3.png"])
    XCTAssertEqual(labeled.labels, [0, 0, 1])
    XCTAssertEqual(try labeled.loadImage(at: 1), try JPEGFixtures.pnm("pattern-gray.pgm"))

    // A CSV whose first path ends in .jpg is data, not a header.
    try DataFixtures.text(root, "labels.csv", "cat/1.jpg,a\ndog/3.png,b\ncat/sub/2.JPEG,a\n")
    let csv = try LabeledImageFolder(csv: root + "/labels.csv")
    XCTAssertEqual(csv.files, ["cat/1.jpg", "cat/sub/2.JPEG", "dog/3.png"])
    XCTAssertEqual(csv.labels, [0, 0, 1])
    XCTAssertEqual(try csv.loadImage(at: 0), try JPEGFixtures.pnm("pattern-420.ppm"))
  }

  func testBadJPEGsAreRejectedOrFailWhenReadAndDataCheckListsEachOne() throws {
    let root = try DataFixtures.makeFolder()
    defer { DataFixtures.remove(root) }
    let good = try JPEGFixtures.bytes("pattern-420.jpg")
    let scan = JPEGFixtures.scanDataOffset(good)
    try DataFixtures.file(root, "good.jpg", good)
    try DataFixtures.file(root, "empty.jpg", [])
    try DataFixtures.text(root, "text.jpg", "not a JPEG at all")
    try DataFixtures.file(root, "header-cut.jpg", Array(good.prefix(scan / 2)))
    try DataFixtures.file(root, "data-cut.jpg", Array(good.prefix((scan + good.count) / 2)))
    try DataFixtures.file(root, "bomb.jpg", JPEGFixtures.withFrameSize(good, width: 65000, height: 65000))
    try DataFixtures.file(root, "zero.jpg", JPEGFixtures.withFrameSize(good, width: 0, height: 29))
    var marker = good
    marker.insert(contentsOf: [0xFF, 0xD0], at: (scan + good.count) / 2)
    try DataFixtures.file(root, "corrupt.jpg", marker)

    // The header check leaves out what is wrong before the scan; files whose damage is in
    // the pixels pass it and fail when read, with the reason and what to do.
    let folder = try ImageFolder(path: root)
    XCTAssertEqual(folder.rejected.map(\.path), ["empty.jpg", "header-cut.jpg", "text.jpg", "zero.jpg"])
    XCTAssertEqual(folder.files, ["bomb.jpg", "corrupt.jpg", "data-cut.jpg", "good.jpg"])
    for index in 0..<3 {
      XCTAssertThrowsError(try folder.loadImage(at: index)) { error in
        XCTAssertTrue("\(error)".contains("pretext data check \(root)"), "\(error)")
      }
    }
    XCTAssertNoThrow(try folder.loadImage(at: 3))

    let report = try DataCheck.run(path: root)
    XCTAssertEqual(report.usable, 1)
    let reasons = Dictionary(uniqueKeysWithValues: report.rejected.map { ($0.path, $0.reason) })
    XCTAssertEqual(
      reasons.keys.sorted(),
      ["bomb.jpg", "corrupt.jpg", "data-cut.jpg", "empty.jpg", "header-cut.jpg", "text.jpg", "zero.jpg"])
    XCTAssertEqual(reasons["empty.jpg"], "empty file (0 bytes)")
    XCTAssertTrue(reasons["text.jpg"]!.hasPrefix("not a PNG or JPEG file"), reasons["text.jpg"]!)
    XCTAssertTrue(reasons["header-cut.jpg"]!.hasPrefix("truncated"), reasons["header-cut.jpg"]!)
    XCTAssertTrue(reasons["data-cut.jpg"]!.hasPrefix("truncated"), reasons["data-cut.jpg"]!)
    XCTAssertTrue(reasons["bomb.jpg"]!.hasPrefix("65000×65000 pixels exceeds the limit"), reasons["bomb.jpg"]!)
    XCTAssertTrue(reasons["zero.jpg"]!.contains("width or height of 0"), reasons["zero.jpg"]!)
    XCTAssertTrue(reasons["corrupt.jpg"]!.hasPrefix("corrupt image data"), reasons["corrupt.jpg"]!)
  }
}
