import Foundation
import XCTest

/// Colour JPEG folders as a user brings them: the shipped photo experiment, an image list
/// instead of a folder, the decoded-image cache (`pretext data cache`, and training
/// filling and then using it), and bad `data.decode_size` values.
final class PhotoFolderCLITests: XCTestCase {
  var dir = ""
  var photos: String { dir + "/photos" }
  static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

  override func setUpWithError() throws {
    dir = NSTemporaryDirectory() + "pretext-photos-cli-\(UUID().uuidString.prefix(8))"
    // 16 JPEGs of every kind (colour and gray, every subsampling, progressive, CMYK,
    // EXIF-rotated, 1×1, 1×300 and 640×480) in nested folders.
    let fixtures = Self.repository.appendingPathComponent("Tests/VisionTests/Fixtures/jpeg").path
    let names =
      ["gray", "444", "422", "420", "progressive", "progressive-gray", "arithmetic"].map { "pattern-\($0).jpg" }
      + [1, 5, 6, 8].map { "orient-\($0).jpg" }
      + ["cmyk.jpg", "ycck.jpg", "odd-1x1.jpg", "odd-1x300.jpg", "photo-640x480.jpg"]
    for (i, name) in names.enumerated() {
      let folder = photos + (i % 2 == 0 ? "/a" : "/b/c")
      try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
      try FileManager.default.copyItem(atPath: fixtures + "/" + name, toPath: folder + "/" + name)
    }
  }

  override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

  /// The shipped experiment, made tiny (32 px input, width 8, 2 steps of 8) for `folder`.
  func overrides(_ folder: String, name: String) -> [String] {
    [
      "--set", "data.unlabeled=\(folder)", "--set", "output=\(dir)/runs", "--set", "name=\(name)",
      "--set", "backbone.image_size=32", "--set", "backbone.width=8", "--set", "train.batch_size=8",
      "--set", "train.steps=2", "--set", "train.log_every=1", "--set", "task.projection_hidden=32",
      "--set", "task.projection_output=16",
    ]
  }

  var experiment: String { Self.repository.appendingPathComponent("experiments/photos-simclr.yaml").path }

  func testThePhotoExperimentFillsTheCacheThenReadsIt() throws {
    let cache = photos + "/.pretext/decoded-64-natural.cache"  // decode_size auto: 2 × 32
    let first = try runPretext(["pretrain", experiment, "--threads", "1"] + overrides(photos, name: "one"))
    XCTAssertEqual(first.status, 0, first.err)
    XCTAssertTrue(first.err.contains("\(photos): 16 images"), first.err)
    XCTAssertTrue(first.err.contains("decoded-image cache: \(cache) ("), first.err)
    XCTAssertTrue(first.err.contains(", filled during the first epoch)"), first.err)
    XCTAssertTrue(first.out.contains("done: 2 steps"), first.out)
    // Two batches of 8 read all 16 images: the cache is complete and the next run reads it.
    XCTAssertTrue(FileManager.default.fileExists(atPath: cache), first.err)
    let second = try runPretext(["pretrain", experiment, "--threads", "1"] + overrides(photos, name: "two"))
    XCTAssertEqual(second.status, 0, second.err)
    XCTAssertTrue(second.err.contains("decoded-image cache: \(cache) ("), second.err)
    XCTAssertFalse(second.err.contains("filled during"), second.err)
    // The same images either way: the losses agree to the last digit printed.
    func losses(_ log: String) -> [String] {
      log.split(separator: "\n").filter { $0.hasPrefix("step ") }.flatMap {
        $0.components(separatedBy: " | ").filter { $0.hasPrefix("loss ") }
      }
    }
    XCTAssertEqual(losses(first.err), losses(second.err))
    XCTAssertEqual(losses(first.err).count, 2, first.err)
  }

  func testAListFileTrainsAndDataCacheBuildsItsCacheAhead() throws {
    try
      (["a/pattern-gray.jpg", "b/c/pattern-444.jpg", "a/pattern-422.jpg", "b/c/pattern-420.jpg"]
      .joined(separator: "\n") + "\n").write(toFile: photos + "/few.txt", atomically: true, encoding: .utf8)
    let list = photos + "/few.txt"
    let built = try runPretext(["data", "cache", list, "--decode-size", "12", "--threads", "2"])
    XCTAssertEqual(built.status, 0, built.err)
    let cache = photos + "/.pretext/decoded-few-12-natural.cache"
    XCTAssertTrue(built.out.hasPrefix("\(cache): 4 images ("), built.out)
    XCTAssertTrue(built.out.contains("complete in"), built.out)
    XCTAssertTrue(built.err.contains("cache: 4/4 images (100%)"), built.err)
    // From a config: the data section and the backbone decide what is cached.
    let fromConfig = try runPretext(
      ["data", "cache", experiment, "--threads", "2"]
        + overrides(list, name: "x").filter { $0 != "--set" }.flatMap {
          ["--set", $0]
        })
    XCTAssertEqual(fromConfig.status, 0, fromConfig.err)
    XCTAssertTrue(
      fromConfig.out.hasPrefix(photos + "/.pretext/decoded-few-full-natural.cache: 4 images"), fromConfig.out)
    let run = try runPretext(
      ["pretrain", experiment, "--threads", "1"] + overrides(list, name: "list") + ["--set", "train.batch_size=4"])
    XCTAssertEqual(run.status, 0, run.err)
    XCTAssertTrue(run.err.contains("\(list): 4 images"), run.err)
    XCTAssertTrue(run.err.contains("decoded-image cache: \(photos)/.pretext/decoded-few-full-natural.cache ("), run.err)
    XCTAssertFalse(run.err.contains("filled during"), "built ahead: \(run.err)")
    // Bad uses of the command.
    let noSize = try runPretext(["data", "cache", photos])
    XCTAssertEqual(noSize.status, 64, noSize.err)
    XCTAssertTrue(
      noSize.err.contains(
        "give --decode-size (pixels, or full) for a folder, or pass the experiment config to cache what it trains on"),
      noSize.err)
    let badSize = try runPretext(["data", "cache", photos, "--decode-size", "0"])
    XCTAssertTrue(
      badSize.err.contains("--decode-size must be full or a size from 1 to 16384 pixels, got 0"), badSize.err)
  }

  func testBadDecodeSizesNameTheKey() throws {
    for (value, shown) in [("0", "0"), ("20000", "20000"), ("big", "big"), ("[1, 2]", "a list or a mapping")] {
      let r = try runPretext(
        ["pretrain", experiment] + overrides(photos, name: "bad") + ["--set", "data.decode_size=\(value)"])
      XCTAssertEqual(r.status, 1, r.err)
      XCTAssertTrue(
        r.err.contains(
          "Error: --set data.decode_size=\(value): data.decode_size: must be auto, full or a size"), r.err)
      XCTAssertTrue(r.err.contains("got \(shown)"), r.err)
      XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/runs"), "nothing is written")
    }
  }
}
