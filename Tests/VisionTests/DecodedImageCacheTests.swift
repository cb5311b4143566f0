import Foundation
import Vision
import XCTest

/// The memory-mapped decoded-image cache: planned from the headers, filled in any order,
/// continued by a later process, put in place atomically, rebuilt when a file changes.
final class DecodedImageCacheTests: XCTestCase {
  var root = ""

  override func setUpWithError() throws {
    root = try DataFixtures.makeFolder()
    // Sizes on both sides of the decode size (12), gray and RGB, a JPEG among PNGs, and
    // one PNG that passes the header check but cannot be decoded.
    try DataFixtures.png(root, "a.png", width: 40, height: 30, channels: 3, seed: 1)
    try DataFixtures.png(root, "b.png", width: 5, height: 7, channels: 1, seed: 2)
    try DataFixtures.png(root, "sub/c.png", width: 13, height: 64, channels: 1, seed: 3)
    let jpeg = Bundle.module.resourceURL!.appendingPathComponent("Fixtures/jpeg/photo-640x480.jpg")
    try FileManager.default.copyItem(atPath: jpeg.path, toPath: root + "/sub/d.jpg")
    try DataFixtures.truncatedPNG(root, "z.png")
  }

  override func tearDown() { DataFixtures.remove(root) }

  func folder() throws -> ImageFolder {
    try ImageFolder(path: root, options: ImageFolderOptions(decode: ImageDecodeOptions(shorterSide: 12)))
  }

  func testImagesComeOutAsDecodedAndTheFileAppearsOnlyWhenComplete() throws {
    let images = try folder()
    XCTAssertEqual(images.files, ["a.png", "b.png", "sub/c.png", "sub/d.jpg", "z.png"])
    let decoded = try (0..<4).map { try images.loadImage(at: $0) }
    XCTAssertEqual(decoded.map(\.shape), [[12, 16, 3], [7, 5, 1], [59, 12, 1], [12, 16, 3]])
    let cached = try CachedImageFolder(folder: images)
    let path = cached.cache.path
    XCTAssertEqual(path, root + "/.pretext/decoded-12-natural.cache")
    // Any order; the unreadable one is the decoder's own error.
    for i in [3, 1, 0] { XCTAssertEqual(try cached.loadImage(at: i), decoded[i]) }
    XCTAssertThrowsError(try cached.loadImage(at: 4)) { XCTAssertTrue("\($0)".contains("truncated"), "\($0)") }
    XCTAssertFalse(cached.cache.isComplete)
    XCTAssertFalse(FileManager.default.fileExists(atPath: path), "only the partial file exists while filling")
    XCTAssertTrue(FileManager.default.fileExists(atPath: DecodedImageCache.partialPath(of: path)))
    XCTAssertEqual(try cached.loadImage(at: 2), decoded[2])
    XCTAssertTrue(cached.cache.isComplete)
    XCTAssertTrue(FileManager.default.fileExists(atPath: path))
    XCTAssertFalse(FileManager.default.fileExists(atPath: DecodedImageCache.partialPath(of: path)))
    // A later reader never decodes: the files can be gone.
    for name in images.files where name != "z.png" { try FileManager.default.removeItem(atPath: root + "/" + name) }
    let reader = try CachedImageFolder(folder: images, create: false)
    XCTAssertTrue(reader.cache.isComplete)
    for i in 0..<4 { XCTAssertEqual(try reader.loadImage(at: i), decoded[i]) }
    XCTAssertEqual(reader.cache.status(at: 4), .unreadable)
    // The scan skips the hidden cache folder.
    XCTAssertEqual(try ImageFolder(path: root).files, ["z.png"])
  }

  func testAPartialFileIsContinuedAndOneProcessFillsIt() throws {
    let images = try folder()
    var first: CachedImageFolder? = try CachedImageFolder(folder: images)
    _ = try first!.loadImage(at: 0)
    _ = try first!.loadImage(at: 2)
    // While one holds the partial file, another cannot fill it (and says why).
    XCTAssertThrowsError(try CachedImageFolder(folder: images)) {
      XCTAssertTrue("\($0)".contains("another process is filling this decoded-image cache"), "\($0)")
    }
    first!.readingStopped()  // what a loader does when it stops
    first = nil
    let second = try CachedImageFolder(folder: images)
    XCTAssertEqual((0..<5).map { second.cache.status(at: $0) }, [.stored, .missing, .stored, .missing, .missing])
    XCTAssertEqual(try second.loadImage(at: 0), try images.loadImage(at: 0))
    var progress: [Int] = []
    let unreadable = try second.fill(threads: 2) { done, total in
      XCTAssertEqual(total, 5)
      progress.append(done)
    }
    XCTAssertEqual(progress.last, 5)
    XCTAssertEqual(progress, progress.sorted(), "progress only goes up")
    XCTAssertEqual(unreadable.map(\.path), ["z.png"])
    XCTAssertTrue(second.cache.isComplete)
    // A complete cache reports its unreadable images again when filled.
    XCTAssertEqual(try CachedImageFolder(folder: images).fill().map(\.path), ["z.png"])
  }

  func testAChangedAddedOrRemovedFileOrAnotherDecodeSizeStartsANewCache() throws {
    XCTAssertTrue(try CachedImageFolder(folder: try folder()).fill().count == 1)
    XCTAssertTrue(try CachedImageFolder(folder: try folder(), create: false).cache.isComplete)
    // Same name and size, other pixels and modification time.
    try DataFixtures.png(root, "b.png", width: 5, height: 7, channels: 1, seed: 9)
    var times = [timespec(tv_sec: 1_000_000, tv_nsec: 0), timespec(tv_sec: 1_000_000, tv_nsec: 0)]
    XCTAssertEqual(utimensat(AT_FDCWD, root + "/b.png", &times, 0), 0)
    XCTAssertThrowsError(try CachedImageFolder(folder: try folder(), create: false))
    let rebuilt = try CachedImageFolder(folder: try folder())
    _ = try rebuilt.fill()
    XCTAssertEqual(try rebuilt.loadImage(at: 1), DataFixtures.image(width: 5, height: 7, seed: 9))
    try DataFixtures.png(root, "new.png")
    XCTAssertThrowsError(try CachedImageFolder(folder: try folder(), create: false), "an added file")
    try FileManager.default.removeItem(atPath: root + "/new.png")
    XCTAssertTrue(try CachedImageFolder(folder: try folder(), create: false).cache.isComplete, "back as it was")
    let other = try ImageFolder(path: root, options: ImageFolderOptions(decode: ImageDecodeOptions(shorterSide: 6)))
    XCTAssertEqual(try CachedImageFolder(folder: other).cache.path, root + "/.pretext/decoded-6-natural.cache")
    // A decode size that reduces no image gives the full-size pixels: one cache for all such sizes.
    for side in [700, 4000] {
      let none = try ImageFolder(path: root, options: ImageFolderOptions(decode: ImageDecodeOptions(shorterSide: side)))
      XCTAssertEqual(CachedImageFolder.defaultPath(for: none), root + "/.pretext/decoded-full-natural.cache")
    }
    let full = try ImageFolder(path: root)
    XCTAssertEqual(CachedImageFolder.defaultPath(for: full), root + "/.pretext/decoded-full-natural.cache")
  }

  func testAListHasItsOwnCacheAndPRETEXTCACHEDIRMovesIt() throws {
    let userCache = try DataFixtures.makeFolder()
    defer { DataFixtures.remove(userCache) }
    let list = root + "/subset.txt"
    try DataFixtures.text(root, "subset.txt", "a.png\nb.png\n")
    let listed = try ImageFolder(path: list, options: ImageFolderOptions(decode: ImageDecodeOptions(shorterSide: 12)))
    XCTAssertEqual(CachedImageFolder.defaultPath(for: listed), root + "/.pretext/decoded-subset-12-natural.cache")
    setenv("PRETEXT_CACHE_DIR", userCache, 1)
    defer { unsetenv("PRETEXT_CACHE_DIR") }
    let path = CachedImageFolder.defaultPath(for: listed)
    XCTAssertTrue(path.hasPrefix(userCache + "/") && path.hasSuffix("-decoded-subset-12-natural.cache"), path)
    let cached = try CachedImageFolder(folder: listed)
    XCTAssertEqual(try cached.fill(), [])
    XCTAssertTrue(FileManager.default.fileExists(atPath: path))
  }
}
