import Foundation
import Vision
import XCTest

/// Tiny synthetic IDX files (written by `IDX.write`, gzip-compressed with the system's
/// gzip when a test needs `.gz`).
enum IDXFixtures {
  /// Compresses `path` into `path.gz` (removing `path`), as Debian ships the files.
  static func gzip(_ path: String) throws {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["gzip", "-f", "-n", path]
    try p.run()
    p.waitUntilExit()
    guard p.terminationStatus == 0 else { throw XCTSkip("gzip is not available") }
  }

  /// Image `i` of a synthetic set: 28×28 bytes derived from `i`.
  static func pixels(_ i: Int) -> [UInt8] {
    (0..<28 * 28).map { UInt8(truncatingIfNeeded: i * 13 + $0 * 3) }
  }

  /// Writes a Fashion-MNIST-shaped set (labels `i % 10`) into `folder`, gzip-compressed
  /// or plain.
  static func fashion(in folder: String, train: Int = 12, test: Int = 5, compressed: Bool = true) throws {
    for (prefix, count) in [("train", train), ("t10k", test)] {
      let images = IDXArray(shape: [count, 28, 28], values: (0..<count).flatMap(pixels))
      let labels = IDXArray(shape: [count], values: (0..<count).map { UInt8($0 % 10) })
      let imagePath = "\(folder)/\(prefix)-images-idx3-ubyte"
      let labelPath = "\(folder)/\(prefix)-labels-idx1-ubyte"
      try IDX.write(images, to: imagePath)
      try IDX.write(labels, to: labelPath)
      if compressed {
        try gzip(imagePath)
        try gzip(labelPath)
      }
    }
  }
}

final class IDXTests: XCTestCase {
  func testRoundTripPlainAndGzip() throws {
    let dir = try DataFixtures.makeFolder()
    defer { DataFixtures.remove(dir) }
    let array = IDXArray(shape: [3, 2, 4], values: (0..<24).map { UInt8($0 * 10) })
    XCTAssertEqual(array.count, 3)
    XCTAssertEqual(array.itemShape, [2, 4])
    XCTAssertEqual(array.itemSize, 8)
    XCTAssertEqual(Array(array.item(1)), (8..<16).map { UInt8($0 * 10) })
    let bytes = IDX.encode(array)
    XCTAssertEqual(Array(bytes.prefix(8)), [0, 0, 8, 3, 0, 0, 0, 3])
    XCTAssertEqual(bytes.count, 4 + 12 + 24)

    let plain = dir + "/a-idx3-ubyte"
    try IDX.write(array, to: plain)
    XCTAssertEqual(try IDX.read(path: plain), array)
    let header = try IDX.header(path: plain)
    XCTAssertEqual(header.magic, 0x0000_0803)
    XCTAssertEqual(header.shape, [3, 2, 4])
    XCTAssertEqual(header.headerSize, 16)

    try IDXFixtures.gzip(plain)
    XCTAssertEqual(try IDX.read(path: plain + ".gz"), array)

    let labels = IDXArray(shape: [5], values: [0, 1, 2, 9, 4])
    XCTAssertEqual(try IDX.parse(IDX.encode(labels), path: "labels"), labels)
    XCTAssertEqual(try IDX.parse(IDX.encode(labels), path: "labels").itemSize, 1)
  }

  func testHeaderValidationErrorsNameFileAndProblem() throws {
    let good = IDX.encode(IDXArray(shape: [2, 3], values: [1, 2, 3, 4, 5, 6]))
    func failure(_ bytes: [UInt8]) -> VisionError? {
      do {
        _ = try IDX.parse(bytes, path: "x-idx")
        return nil
      } catch {
        XCTAssertTrue("\(error)".hasPrefix("x-idx: "), "\(error)")
        return error as? VisionError
      }
    }
    var e = failure([0x01, 0x02] + good.dropFirst(2))
    XCTAssertEqual(e?.kind, .badMagic)
    XCTAssertTrue(e?.reason.contains("0x01020802") ?? false, e?.reason ?? "")
    e = failure([0, 0, 0x07, 2] + good.dropFirst(4))  // unknown type code
    XCTAssertEqual(e?.kind, .badMagic)
    e = failure([0, 0, 8, 0])  // zero dimensions
    XCTAssertEqual(e?.kind, .badMagic)
    e = failure([0, 0, 0x0D] + good.dropFirst(3))
    XCTAssertEqual(e?.kind, .unsupported)
    XCTAssertTrue(e?.reason.contains("32-bit float") ?? false, e?.reason ?? "")
    e = failure(Array(good.dropLast()))
    XCTAssertEqual(e?.kind, .wrongLength)
    XCTAssertTrue(e?.reason.contains("truncated") ?? false, e?.reason ?? "")
    XCTAssertTrue(e?.reason.contains("2 × 3") ?? false, e?.reason ?? "")
    e = failure(good + [0])
    XCTAssertEqual(e?.kind, .wrongLength)
    XCTAssertTrue(e?.reason.contains("trailing") ?? false, e?.reason ?? "")
    e = failure(Array(good.prefix(6)))  // cut inside the dimensions
    XCTAssertEqual(e?.kind, .wrongLength)
    e = failure([0, 0])
    XCTAssertEqual(e?.kind, .wrongLength)
    e = failure([0, 0, 8, 2, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF])  // 2^64 values
    XCTAssertEqual(e?.kind, .wrongLength)
    XCTAssertNil(failure(good))
  }

  func testMissingAndCorruptGzipFiles() throws {
    let dir = try DataFixtures.makeFolder()
    defer { DataFixtures.remove(dir) }
    XCTAssertThrowsError(try IDX.read(path: dir + "/missing.gz")) { error in
      XCTAssertEqual((error as? VisionError)?.kind, .io)
      XCTAssertTrue("\(error)".hasPrefix(dir + "/missing.gz: "), "\(error)")
    }
    let path = dir + "/t-idx1-ubyte"
    try IDX.write(IDXArray(shape: [4000], values: (0..<4000).map { UInt8($0 % 251) }), to: path)
    try IDXFixtures.gzip(path)
    let gz = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path + ".gz")))
    try Data(gz.prefix(gz.count / 2)).write(to: URL(fileURLWithPath: path + ".gz"))
    XCTAssertThrowsError(try IDX.read(path: path + ".gz")) { error in
      XCTAssertTrue("\(error)".hasPrefix(path + ".gz: "), "\(error)")
    }
  }

  // MARK: Fashion-MNIST

  func testFashionSourceValidation() throws {
    let dir = try DataFixtures.makeFolder()
    defer { DataFixtures.remove(dir) }
    XCTAssertThrowsError(try FashionMNIST.inspect(source: dir + "/none")) { error in
      XCTAssertEqual((error as? VisionError)?.kind, .notFound)
      XCTAssertTrue("\(error)".contains("dataset-fashion-mnist"), "says how to get it: \(error)")
    }
    XCTAssertThrowsError(try FashionMNIST.inspect(source: dir)) { error in
      XCTAssertTrue("\(error)".contains("train-images-idx3-ubyte.gz"), "\(error)")
    }
    // Plain (uncompressed) files are accepted.
    try IDXFixtures.fashion(in: dir, train: 12, test: 5, compressed: false)
    let info = try FashionMNIST.inspect(source: dir)
    XCTAssertEqual(info.map(\.count), [12, 5])
    XCTAssertEqual(info[0].files.images, dir + "/train-images-idx3-ubyte")

    // Labels that do not match the images in count.
    try IDX.write(IDXArray(shape: [4], values: [0, 1, 2, 3]), to: dir + "/t10k-labels-idx1-ubyte")
    XCTAssertThrowsError(try FashionMNIST.inspect(source: dir)) { error in
      let e = error as? VisionError
      XCTAssertEqual(e?.kind, .unexpectedShape)
      XCTAssertEqual(e?.path, dir + "/t10k-labels-idx1-ubyte")
      XCTAssertTrue(e?.reason.contains("4 labels for the 5 images") ?? false, "\(error)")
    }
    // A label outside 0…9.
    try IDX.write(IDXArray(shape: [5], values: [0, 1, 12, 3, 4]), to: dir + "/t10k-labels-idx1-ubyte")
    XCTAssertThrowsError(try FashionMNIST.inspect(source: dir)) { error in
      XCTAssertTrue("\(error)".contains("label 12 at index 2"), "\(error)")
    }
    // Images of the wrong size.
    try IDX.write(
      IDXArray(shape: [5, 28, 27], values: [UInt8](repeating: 0, count: 5 * 28 * 27)),
      to: dir + "/t10k-images-idx3-ubyte")
    XCTAssertThrowsError(try FashionMNIST.inspect(source: dir)) { error in
      XCTAssertTrue("\(error)".contains("5 × 28 × 27"), "\(error)")
    }
    // A truncated image file.
    let bytes = IDX.encode(IDXArray(shape: [5, 28, 28], values: [UInt8](repeating: 0, count: 5 * 784)))
    try Data(bytes.dropLast(10)).write(to: URL(fileURLWithPath: dir + "/t10k-images-idx3-ubyte"))
    XCTAssertThrowsError(try FashionMNIST.importDataset(source: dir, output: dir + "/out")) { error in
      XCTAssertEqual((error as? VisionError)?.kind, .wrongLength)
      XCTAssertTrue("\(error)".hasPrefix(dir + "/t10k-images-idx3-ubyte: "), "\(error)")
    }
    XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/out/unlabeled"), "nothing written")
  }

  func testImportLayoutAndIdempotency() throws {
    let dir = try DataFixtures.makeFolder()
    defer { DataFixtures.remove(dir) }
    let source = dir + "/src"
    try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
    try IDXFixtures.fashion(in: source, train: 12, test: 5)
    let out = dir + "/out"
    let first = try FashionMNIST.importDataset(source: source, output: out, threads: 2)
    XCTAssertFalse(first.alreadyComplete)
    XCTAssertEqual(first.unlabeled, 12)
    XCTAssertEqual(first.trainPerClass, [2, 2, 1, 1, 1, 1, 1, 1, 1, 1])
    XCTAssertEqual(first.testPerClass, [1, 1, 1, 1, 1, 0, 0, 0, 0, 0])
    XCTAssertEqual(first.written, 12 * 2 + 5)
    XCTAssertTrue(first.text.contains("unlabeled/  12 images"), first.text)

    let fm = FileManager.default
    XCTAssertTrue(fm.fileExists(atPath: out + "/.import-complete"))
    XCTAssertEqual(
      try fm.contentsOfDirectory(atPath: out + "/unlabeled").sorted(), (0..<12).map { String(format: "%05d.png", $0) })
    XCTAssertEqual(try fm.contentsOfDirectory(atPath: out + "/train/Trouser").sorted(), ["00001.png", "00011.png"])
    XCTAssertEqual(try fm.contentsOfDirectory(atPath: out + "/test/Ankle_boot"), [])
    let trouser = try PNG.read(path: out + "/train/Trouser/00011.png")
    XCTAssertEqual(trouser, Image(width: 28, height: 28, channels: 1, pixels: IDXFixtures.pixels(11)))
    XCTAssertEqual(try PNG.read(path: out + "/unlabeled/00011.png"), trouser)
    XCTAssertEqual(try PNG.read(path: out + "/test/Coat/00004.png").pixels, IDXFixtures.pixels(4))

    // The folders open as datasets, classes in the dataset's own order.
    let train = try LabeledImageFolder(path: out + "/train")
    XCTAssertEqual(train.count, 12)
    XCTAssertEqual(Set(train.classes), Set(FashionMNIST.classNames))
    XCTAssertEqual(try ImageFolder(path: out + "/unlabeled").count, 12)

    // Complete: nothing is written, not even touched.
    let before = try fm.attributesOfItem(atPath: out + "/unlabeled/00003.png")[.modificationDate] as? Date
    let again = try FashionMNIST.importDataset(source: source, output: out)
    XCTAssertTrue(again.alreadyComplete)
    XCTAssertEqual(again.written, 0)
    XCTAssertEqual(again.train, 12)
    XCTAssertTrue(again.text.contains("already imported"), again.text)
    let after = try fm.attributesOfItem(atPath: out + "/unlabeled/00003.png")[.modificationDate] as? Date
    XCTAssertEqual(before, after)

    // Interrupted: a file missing, a temporary file left over, no manifest. Completed,
    // rewriting only what is missing.
    try fm.removeItem(atPath: out + "/unlabeled/00007.png")
    try fm.removeItem(atPath: out + "/.import-complete")
    try Data([1, 2, 3]).write(to: URL(fileURLWithPath: out + "/unlabeled/.00007.png.tmp-1-2"))
    try Data([1, 2, 3]).write(to: URL(fileURLWithPath: out + "/train/Bag/00003.png"))  // corrupt
    let completed = try FashionMNIST.importDataset(source: source, output: out)
    XCTAssertFalse(completed.alreadyComplete)
    XCTAssertEqual(completed.written, 1, "only the missing file is written")
    XCTAssertEqual(completed.unchanged, 12 * 2 + 5 - 1)
    XCTAssertEqual(completed.removed, 2, "the temporary file and the stray Bag/00003.png")
    XCTAssertFalse(fm.fileExists(atPath: out + "/unlabeled/.00007.png.tmp-1-2"))
    XCTAssertTrue(fm.fileExists(atPath: out + "/unlabeled/00007.png"))
    XCTAssertTrue(try FashionMNIST.importDataset(source: source, output: out).alreadyComplete)

    // A file gone although the manifest is there: detected and completed.
    try fm.removeItem(atPath: out + "/test/Dress/00003.png")
    let repaired = try FashionMNIST.importDataset(source: source, output: out)
    XCTAssertFalse(repaired.alreadyComplete)
    XCTAssertEqual(repaired.written, 1)

    // Another source: imported again (its different images replace the old ones).
    let other = dir + "/other"
    try fm.createDirectory(atPath: other, withIntermediateDirectories: true)
    try IDXFixtures.fashion(in: other, train: 10, test: 3, compressed: false)
    let replaced = try FashionMNIST.importDataset(source: other, output: out)
    XCTAssertFalse(replaced.alreadyComplete)
    XCTAssertEqual(replaced.unlabeled, 10)
    XCTAssertEqual(replaced.removed, 2 * 2 + 2, "train 10, 11 (twice) and test 3, 4 removed")
    XCTAssertEqual(try fm.contentsOfDirectory(atPath: out + "/unlabeled").count, 10)
  }

  /// The real dataset's headers (fast: decompression only, nothing written).
  func testRealFashionMNISTHeadersWhenInstalled() throws {
    guard FileManager.default.fileExists(atPath: FashionMNIST.defaultSource) else {
      throw XCTSkip("\(FashionMNIST.defaultSource) is not installed (apt install dataset-fashion-mnist)")
    }
    let info = try FashionMNIST.inspect()
    XCTAssertEqual(info.map(\.split), [.train, .test])
    XCTAssertEqual(info.map(\.count), [60000, 10000])
    for split in info {
      XCTAssertEqual(split.imageHeader.magic, 0x0000_0803)
      XCTAssertEqual(split.imageHeader.shape, [split.count, 28, 28])
      XCTAssertEqual(split.labelHeader.magic, 0x0000_0801)
      XCTAssertEqual(split.labelHeader.shape, [split.count])
    }
  }
}
