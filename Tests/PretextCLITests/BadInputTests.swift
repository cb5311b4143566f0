import Foundation
import XCTest

/// Bad inputs, as a user meets them on the command line: each test gives `pretext` one
/// kind of bad input and checks the message it prints (the README's "Bad input" section lists them
/// with these tests), and that nothing is lost or half-written.
final class BadInputTests: XCTestCase {
  var dir: URL!
  var data: String { dir.appendingPathComponent("fm/unlabeled").path }
  var runs: String { dir.appendingPathComponent("runs").path }

  override func setUpWithError() throws {
    dir = try makeImportedTinyFashionMNIST(prefix: "pretext-bad", train: 32, test: 10) { i, y, x in
      UInt8(((y * 28 + x) * 7 + i * 13) % 251)
    }
  }

  override func tearDownWithError() throws {
    try? FileManager.default.removeItem(at: dir)
  }

  /// A tiny MAE experiment (16-px ViT, 4 steps, checkpoints every 2) with `extra` lines.
  func config(_ extra: String = "", name: String = "exp.yaml") throws -> String {
    let path = dir.appendingPathComponent(name).path
    try """
    name: tiny
    output: \(runs)
    data: {unlabeled: \(data)}
    backbone: {preset: vit-cpu, image_size: 16, patch_size: 4, in_channels: 1}
    task: {name: mae, decoder_width: 32, decoder_depth: 1, decoder_heads: 2}
    train:
      batch_size: 8
      steps: 4
      log_every: 1
      checkpoint_every: 2
    \(extra)
    """.write(toFile: path, atomically: true, encoding: .utf8)
    return path
  }

  func pretrain(_ args: [String], environment: [String: String?] = [:]) throws -> (
    status: Int32, out: String, err: String
  ) {
    try runPretext(["pretrain"] + args + ["--threads", "1"], environment: environment)
  }

  /// Asserts a failed run whose standard error holds `expected`.
  func assertFails(
    _ r: (status: Int32, out: String, err: String), _ expected: String, file: StaticString = #filePath,
    line: UInt = #line
  ) {
    XCTAssertNotEqual(r.status, 0, "expected a failure", file: file, line: line)
    XCTAssertTrue(r.err.contains(expected), "expected \"\(expected)\" in:\n\(r.err)", file: file, line: line)
    XCTAssertFalse(r.err.contains("Usage:"), "no usage text for a bad input:\n\(r.err)", file: file, line: line)
  }

  /// A folder that `pretext` sees as a disk of its own of `megabytes` (MB of 10^6 bytes),
  /// read-only if asked: the environment that loads Tests/DiskFaults/disk_faults.c
  /// into the process (no mount, so it runs without privileges on any machine).
  func smallDisk(megabytes: Double, readOnly: Bool = false, folder: String? = nil) throws -> (
    path: String, environment: [String: String?]
  ) {
    let made = folder ?? dir.appendingPathComponent("disk-\(UUID().uuidString.prefix(8))").path
    try FileManager.default.createDirectory(atPath: made, withIntermediateDirectories: true)
    // Resolved (the temporary folder may sit behind a symlink), as the messages show it.
    let path = URL(fileURLWithPath: made).resolvingSymlinksInPath().path
    let library = try pretextExecutable().deletingLastPathComponent().appendingPathComponent("libPretextDiskFaults.so")
    guard FileManager.default.fileExists(atPath: library.path) else {
      throw MissingExecutable(near: library.path)
    }
    return (
      path,
      [
        "LD_PRELOAD": library.path, "PRETEXT_FAULT_DISK": path,
        "PRETEXT_FAULT_DISK_BYTES": String(Int(megabytes * 1e6)), "PRETEXT_FAULT_DISK_READONLY": readOnly ? "1" : "0",
      ]
    )
  }

  // MARK: Data folders

  func testMissingEmptyOrWrongDataFolder() throws {
    let config = try config()
    assertFails(
      try pretrain([config, "--set", "data.unlabeled=\(dir.path)/nothing"]),
      "Error: \(dir.path)/nothing: no such folder; expected a folder of PNG or JPEG images (searched recursively)")
    let empty = dir.appendingPathComponent("empty").path
    try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
    assertFails(
      try pretrain([config, "--set", "data.unlabeled=\(empty)"]),
      "Error: \(empty): no usable PNG or JPEG images (it is empty); expected .jpeg, .jpg or .png files in it or its "
        + "subfolders")
    try Data("x".utf8).write(to: URL(fileURLWithPath: empty + "/notes.txt"))
    assertFails(
      try pretrain([config, "--set", "data.unlabeled=\(empty)"]),
      "Error: \(empty): no usable PNG or JPEG images (found only 1 other file (notes.txt)); expected .jpeg, .jpg or "
        + ".png files")
    assertFails(
      try pretrain([config, "--set", "data.unlabeled=\(config)"]),
      "Error: \(config): is a file, not a folder; expected a folder of PNG or JPEG images")
    XCTAssertFalse(FileManager.default.fileExists(atPath: runs), "nothing is written for a bad folder")
  }

  func testFewerImagesThanOneBatch() throws {
    assertFails(
      try pretrain([try config(), "--set", "train.batch_size=64"]),
      "Error: the dataset has 32 images, fewer than one batch of 64 (lower train.batch_size)")
    XCTAssertFalse(FileManager.default.fileExists(atPath: runs), "the run folder is not created")
  }

  func testCorruptPNGIsSkippedOrStopsAStrictRun() throws {
    // Cut one PNG after its header (the folder scan accepts it; decoding fails) and put
    // a text file named .png beside it (the scan leaves it out).
    let png = data + "/00003.png"
    try Data(try Data(contentsOf: URL(fileURLWithPath: png)).prefix(60)).write(to: URL(fileURLWithPath: png))
    try Data("not an image".utf8).write(to: URL(fileURLWithPath: data + "/fake.png"))
    let r = try pretrain([try config()])
    XCTAssertEqual(r.status, 0, r.err)
    XCTAssertTrue(r.err.contains("left out 1 unusable file:\n  fake.png: "), r.err)
    XCTAssertTrue(
      r.err.contains(
        "pretext: skipping unreadable image \(png): truncated: the data ends after 60 bytes, inside the PNG stream; "
          + "remove or replace the file"), r.err)
    XCTAssertTrue(r.out.contains("done: 4 steps"), r.out)

    try Data(try Data(contentsOf: URL(fileURLWithPath: png)).prefix(60)).write(to: URL(fileURLWithPath: png))
    try FileManager.default.removeItem(atPath: data + "/fake.png")
    let strict = try pretrain([try config(), "--set", "data.strict=true", "--set", "name=strict"])
    assertFails(strict, "Error: \(png): truncated: the data ends after 60 bytes, inside the PNG stream")
  }

  func testJPEGFolderTrainsAndBadJPEGsAreSkippedOrStopAStrictRun() throws {
    // JPEGs of every kind (gray, each subsampling, progressive, CMYK, EXIF-rotated, 1×1,
    // 1×300, 640×480) in a folder of their own, one cut inside its pixel data (the scan
    // accepts it; decoding fails) and a text file named .jpg (the scan leaves it out).
    let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .appendingPathComponent("VisionTests/Fixtures/jpeg")
    let folder = dir.appendingPathComponent("photos").path
    try FileManager.default.createDirectory(atPath: folder + "/sub", withIntermediateDirectories: true)
    // 15 files and the cut one: two batches of 8 per epoch, so every run reads each file.
    let names =
      ["gray", "444", "422", "420", "progressive", "progressive-gray"].map { "pattern-\($0).jpg" }
      + [1, 5, 6, 8].map { "orient-\($0).jpg" }
      + ["cmyk.jpg", "ycck.jpg", "odd-1x1.jpg", "odd-1x300.jpg", "photo-640x480.jpg"]
    for name in names {
      try FileManager.default.copyItem(atPath: fixtures.path + "/" + name, toPath: folder + "/sub/" + name.uppercased())
    }
    let good = try Data(contentsOf: fixtures.appendingPathComponent("pattern-420.jpg"))
    let cut = folder + "/cut.jpg"
    try good.prefix(good.count - 300).write(to: URL(fileURLWithPath: cut))
    try Data("not an image".utf8).write(to: URL(fileURLWithPath: folder + "/fake.jpg"))
    let r = try pretrain([try config(), "--set", "data.unlabeled=\(folder)", "--set", "backbone.in_channels=3"])
    XCTAssertEqual(r.status, 0, r.err)
    XCTAssertTrue(r.err.contains("left out 1 unusable file:\n  fake.jpg: not a PNG or JPEG file"), r.err)
    XCTAssertTrue(
      r.err.contains(
        "pretext: skipping unreadable image \(cut): truncated: the data ends before the JPEG image does "
          + "(libjpeg: Premature end of JPEG file); remove or replace the file"), r.err)
    XCTAssertTrue(r.err.contains("\(folder): 16 images\nmixed sizes and formats (32×16 JPEG 4:4:4: 4, "), r.err)
    XCTAssertTrue(r.out.contains("done: 4 steps"), r.out)

    try FileManager.default.removeItem(atPath: folder + "/fake.jpg")
    let strict = try pretrain([
      try config(), "--set", "data.unlabeled=\(folder)", "--set", "data.strict=true", "--set", "name=strict",
    ])
    assertFails(strict, "Error: \(cut): truncated: the data ends before the JPEG image does")
  }

  func testMixedSizesAndChannelsAreConverted() throws {
    // RGB, 16-bit RGBA, palette and 1×1 images from PngSuite beside the 28×28 gray ones.
    let suite = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .appendingPathComponent("VisionTests/Fixtures/pngsuite/png")
    for name in ["basn2c08.png", "basn6a16.png", "s01n3p01.png", "s39i3p04.png"] {
      try FileManager.default.copyItem(
        at: suite.appendingPathComponent(name), to: URL(fileURLWithPath: data).appendingPathComponent(name))
    }
    for channels in [1, 3] {
      let r = try pretrain([try config(), "--set", "backbone.in_channels=\(channels)", "--set", "name=c\(channels)"])
      XCTAssertEqual(r.status, 0, r.err)
      XCTAssertTrue(
        r.err.contains(
          "mixed sizes and formats (28×28 gray: 32, 1×1 palette: 1, 32×32 RGB: 1, 32×32 RGBA 16-bit: 1, …): "
            + "each image is converted to the backbone's channels and cropped or resized to its input"), r.err)
      XCTAssertTrue(r.out.contains("done: 4 steps"), r.out)
    }
  }

  // MARK: Run folder

  func testRunFolderThatCannotBeCreatedOrWritten() throws {
    let file = dir.appendingPathComponent("a-file").path
    try Data().write(to: URL(fileURLWithPath: file))
    assertFails(
      try pretrain([try config(), "--set", "output=\(file)"]),
      "Error: cannot create the run folder \(file): a file has that name")
    // A read-only disk: the folder exists but cannot be written (root ignores permissions,
    // so the test uses a simulated read-only disk).
    let (disk, readOnly) = try smallDisk(megabytes: 100, readOnly: true)
    try FileManager.default.createDirectory(atPath: disk + "/tiny", withIntermediateDirectories: true)
    assertFails(
      try pretrain([try config(), "--set", "output=\(disk)"], environment: readOnly),
      "Error: cannot write to the run folder \(disk)/tiny: Read-only file system")
    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: disk + "/tiny"), [], "nothing is written")
  }

  func testFullDiskIsRefusedBeforeTrainingAndMidRunKeepsTheCheckpoints() throws {
    let (tiny, tinyDisk) = try smallDisk(megabytes: 2.1)
    assertFails(
      try pretrain([try config(), "--set", "output=\(tiny)"], environment: tinyDisk),
      "Error: the run folder \(tiny)/tiny has 2.1 MB free, less than the 43.2 MB a checkpoint needs; "
        + "free some space or set `output` to another disk")
    XCTAssertFalse(FileManager.default.fileExists(atPath: tiny + "/tiny/config.yaml"))

    // Room for one checkpoint (32 MB) and the backbone (11 MB), not for the second
    // checkpoint: a warning at the start, a clear stop at step 4, step 2 kept.
    let (small, smallEnvironment) = try smallDisk(megabytes: 62.9)
    let r = try pretrain([try config(), "--set", "output=\(small)"], environment: smallEnvironment)
    XCTAssertTrue(
      r.err.contains(
        "warning: the run folder \(small)/tiny has 62.9 MB free, and this run's checkpoints may need up to"), r.err)
    assertFails(
      r,
      "Error: step 4: the checkpoint could not be saved (\(small)/tiny/checkpoint-00000004.safetensors: write failed: "
        + "No space left on device (nothing was replaced)); the earlier checkpoints in \(small)/tiny are intact: "
        + "make room (or fix the folder), then continue with --resume")
    let files = try FileManager.default.contentsOfDirectory(atPath: small + "/tiny")
    XCTAssertTrue(files.contains("checkpoint-00000002.safetensors"), "\(files)")
    XCTAssertFalse(files.contains { $0.contains(".tmp-") }, "no temporary file is left: \(files)")
    // Once there is room, the run resumes from step 2 and finishes.
    let (_, larger) = try smallDisk(megabytes: 200, folder: small)
    let resumed = try pretrain([try config(), "--set", "output=\(small)", "--resume"], environment: larger)
    XCTAssertEqual(resumed.status, 0, resumed.err)
    XCTAssertTrue(
      resumed.err.contains("resuming from \(small)/tiny/checkpoint-00000002.safetensors at step 2 of 4"), resumed.err)
  }

  func testADecodedImageCacheThatDoesNotFitIsLeftOutAndTrainingGoesOn() throws {
    // The data folder on a disk with 8 kB free: its 26 kB cache cannot be reserved.
    let (disk, environment) = try smallDisk(megabytes: 1)
    let folder = disk + "/images"
    try FileManager.default.copyItem(atPath: data, toPath: folder)
    let used = try FileManager.default.contentsOfDirectory(atPath: folder).reduce(0) {
      $0 + ((try FileManager.default.attributesOfItem(atPath: folder + "/" + $1)[.size] as? Int) ?? 0)
    }
    var limited = environment
    limited["PRETEXT_FAULT_DISK_BYTES"] = String(used + 8192)
    let r = try pretrain([try config(), "--set", "data.unlabeled=\(folder)"], environment: limited)
    XCTAssertEqual(r.status, 0, r.err)
    XCTAssertTrue(
      r.err.contains(
        "decoded-image cache not used: \(folder)/.pretext/decoded-full-natural.cache: cannot reserve 26 kB for the "
          + "decoded-image cache (No space left on device, 8 kB free); free some space, lower data.decode_size, or set "
          + "data.cache: false"), r.err)
    XCTAssertTrue(r.out.contains("done: 4 steps"), r.out)
    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder + "/.pretext"), [], "no partial file is left")
    // Turned off, no cache is planned at all.
    let off = try pretrain([try config(), "--set", "data.unlabeled=\(folder)", "--set", "data.cache=false", "--set", "name=off"], environment: limited)
    XCTAssertEqual(off.status, 0, off.err)
    XCTAssertFalse(off.err.contains("decoded-image cache"), off.err)
  }

  func testExistingRunsAndResume() throws {
    let config = try config()
    assertFails(
      try pretrain([config, "--resume"]),
      "Error: --resume: no checkpoint in \(runs)/tiny (start without --resume)")
    XCTAssertFalse(FileManager.default.fileExists(atPath: runs + "/tiny"), "nothing is written")
    XCTAssertEqual(try pretrain([config]).status, 0)
    assertFails(
      try pretrain([config]),
      "Error: \(runs)/tiny already holds a run; add --resume to continue it, or choose another name (--set name=...)")
    assertFails(
      try pretrain([config, "--resume", "--set", "train.steps=6"]),
      "Error: \(runs)/tiny/config.yaml differs from the config given; resume with the same config and --set values")
  }

  // MARK: Config files

  func testConfigErrorsNameTheFileAndLine() throws {
    assertFails(try pretrain([dir.appendingPathComponent("none.yaml").path]), "none.yaml: no such config file")
    let yaml = dir.appendingPathComponent("broken.yaml").path
    try "name: [unclosed\n".write(toFile: yaml, atomically: true, encoding: .utf8)
    assertFails(
      try pretrain([yaml]), "Error: \(yaml): not valid YAML (2:1: error: parser: while parsing a flow sequence")

    let unknown = try config("  epoch: 3")
    assertFails(
      try pretrain([unknown]),
      "Error: \(unknown):11: train.epoch: unknown key \"epoch\" (known: artifacts_every, base_lr")
    assertFails(
      try pretrain([try config("  seed: many", name: "type.yaml")]),
      "type.yaml:11: train.seed must be an integer, got \"many\"")
    assertFails(
      try pretrain([try config("  keep_checkpoints: 0", name: "range.yaml")]),
      "range.yaml:11: train.keep_checkpoints must be in [1, 10000], got 0")
    assertFails(
      try pretrain([try config("  steps: 8", name: "twice.yaml")]),
      "twice.yaml: not valid YAML (Parser: expected all keys to be unique but found the following duplicated key(s): 'steps'"
    )
    assertFails(
      try pretrain([try config(), "--set", "train.batch_size=1"]),
      "Error: --set train.batch_size=1: train.batch_size must be in [2, 1048576], got 1")
    assertFails(
      try pretrain([try config("  nan_lr_factor: 2", name: "nan.yaml")]),
      "nan.yaml:11: train.nan_lr_factor must be in (0, 1), got 2.0")
    assertFails(
      try pretrain([try config(), "--set", "train.betas=fast"]),
      "Error: --set train.betas=fast: train.betas must be a list, got \"fast\"")
    let c = try config()
    assertFails(
      try pretrain([c, "--set", "task.mask_ratio=1.5"]),
      "Error: --set task.mask_ratio=1.5: mae.mask_ratio must be in (0, 1), got 1.5")
    assertFails(
      try pretrain([c, "--set", "backbone.patch_size=5"]),
      "Error: \(c):4 (or --set backbone.patch_size=5): vit-cpu: image size 16 must be a positive multiple of the patch size 5"
    )
    assertFails(
      try pretrain([c, "--set", "backbone.preset=resnet18-small"]),
      "Error: \(c):5: mae needs a ViT backbone (it encodes visible patches only), got resnet18-small")
    assertFails(try pretrain([c, "--set", "nokey"]), "Error: --set nokey: expected key.path=value")
    // Relative location's patches at their own size: a ViT takes its image size only.
    let patches = dir.appendingPathComponent("patches.yaml").path
    try """
    name: tiny
    output: \(runs)
    data: {unlabeled: \(data)}
    backbone: {preset: vit-cpu, image_size: 16, patch_size: 4, in_channels: 1}
    task: {name: relative-location, resize: 32, patch_size: 8, gap: 2, jitter: 1, patch_input_size: 8}
    train: {batch_size: 8, steps: 4}
    """.write(toFile: patches, atomically: true, encoding: .utf8)
    assertFails(
      try pretrain([patches]),
      "relative-location: patch_input_size 8 differs from the backbone's image size 16, and this backbone (a ViT, with one position embedding per patch of its image) only takes that size; set patch_input_size: 0"
    )
    assertFails(
      try pretrain([patches, "--set", "task.patch_input_size=4"]),
      "Error: --set task.patch_input_size=4: relative-location.patch_input_size must be 0 (the backbone's image size) or in [8, 16384], got 4")
  }

  // MARK: Checkpoints and weights

  func testDamagedCheckpointsFallBackToTheOneBefore() throws {
    let config = try config()
    XCTAssertEqual(try pretrain([config]).status, 0)
    let run = runs + "/tiny"
    let newest = run + "/checkpoint-00000004.safetensors", older = run + "/checkpoint-00000002.safetensors"
    let bytes = try Data(contentsOf: URL(fileURLWithPath: newest))
    try bytes.prefix(5000).write(to: URL(fileURLWithPath: newest))
    let r = try pretrain([config, "--resume"])
    XCTAssertEqual(r.status, 0, r.err)
    XCTAssertTrue(r.err.contains("\(newest): header length "), r.err)
    XCTAssertTrue(
      r.err.contains(
        "is invalid for a file of 5000 bytes (truncated or not safetensors); "
          + "renamed to checkpoint-00000004.safetensors.damaged, trying the checkpoint before it"), r.err)
    XCTAssertTrue(r.err.contains("resuming from \(older) at step 2 of 4"), r.err)
    XCTAssertTrue(FileManager.default.fileExists(atPath: newest + ".damaged"), "the damaged file is kept aside")

    // A flipped bit fails the checksum; when every checkpoint is damaged, resume refuses.
    for path in [newest, older] {
      var b = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
      b[b.count - 100] ^= 1
      try Data(b).write(to: URL(fileURLWithPath: path))
    }
    let none = try pretrain([config, "--resume"])
    XCTAssertTrue(none.err.contains("\(newest): checksum mismatch (stored "), none.err)
    XCTAssertTrue(
      none.err.contains("the file is damaged (its data changed after it was written); renamed to"), none.err)
    assertFails(
      none,
      "Error: --resume: every checkpoint in \(run) is damaged (checkpoint-00000004.safetensors, checkpoint-00000002.safetensors, "
        + "renamed *.damaged); start the run again without --resume")
  }

  func testDamagedOrForeignWeightsForTheProbe() throws {
    let weights = dir.appendingPathComponent("w.safetensors").path
    let saved = try runPretext([
      "inspect", "vit-cpu", "--in-channels", "1", "--image-size", "16", "--patch-size", "4", "--save-weights", weights,
    ])
    XCTAssertEqual(saved.status, 0, saved.err)
    let train = dir.appendingPathComponent("fm/train").path, test = dir.appendingPathComponent("fm/test").path
    func probe(_ file: String, _ extra: [String] = []) throws -> (status: Int32, out: String, err: String) {
      try runPretext(["probe", "--weights", file, "--train", train, "--test", test, "--threads", "1"] + extra)
    }
    let expected =
      "; expected a backbone weights file (backbone.safetensors of a run, or `pretext inspect MODEL --save-weights FILE`)"
    assertFails(
      try probe(weights, ["--backbone", "resnet18-small", "--in-channels", "1"]),
      "Error: \(weights): holds weights of vit-cpu (16 px, 1 channel(s)) but --backbone asks for resnet18-small "
        + "(32 px, 1 channel(s)); drop --backbone to use the file's own architecture")
    let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: weights)))
    let truncated = dir.appendingPathComponent("truncated.safetensors").path
    try Data(bytes.prefix(100_000)).write(to: URL(fileURLWithPath: truncated))
    assertFails(try probe(truncated), "are outside the 92776 bytes of data (truncated file?)" + expected)
    var flipped = bytes
    flipped[flipped.count - 100] ^= 1
    let damaged = dir.appendingPathComponent("damaged.safetensors").path
    try Data(flipped).write(to: URL(fileURLWithPath: damaged))
    assertFails(try probe(damaged), "the file is damaged (its data changed after it was written)" + expected)
    let notWeights = try config()
    assertFails(try probe(notWeights), "(truncated or not safetensors)" + expected)
  }

  func testLabeledFoldersForTheProbe() throws {
    let weights = dir.appendingPathComponent("w.safetensors").path
    let saved = try runPretext([
      "inspect", "vit-cpu", "--in-channels", "1", "--image-size", "16", "--patch-size", "4", "--save-weights", weights,
    ])
    XCTAssertEqual(saved.status, 0, saved.err)
    let train = dir.appendingPathComponent("fm/train").path, test = dir.appendingPathComponent("fm/test").path
    func probe(train: String, test: String) throws -> (status: Int32, out: String, err: String) {
      try runPretext([
        "probe", "--weights", weights, "--train", train, "--test", test, "--threads", "1", "--no-baselines",
      ])
    }
    assertFails(
      try probe(train: data, test: test),
      "Error: \(data): no class folders found; expected one subfolder per class, each holding that class's PNG or "
        + "JPEG images")
    let extra = dir.appendingPathComponent("extra").path
    try FileManager.default.copyItem(atPath: test, toPath: extra)
    try FileManager.default.createDirectory(atPath: extra + "/Extra", withIntermediateDirectories: true)
    assertFails(
      try probe(train: train, test: extra),
      "Error: \(extra)/Extra: class folder holds no usable PNG or JPEG image; add images or remove the folder (every subfolder of \(extra) is a class)"
    )
    let bag = try XCTUnwrap(try FileManager.default.contentsOfDirectory(atPath: test + "/Bag").first)
    try FileManager.default.copyItem(atPath: test + "/Bag/" + bag, toPath: extra + "/Extra/1.png")
    assertFails(
      try probe(train: train, test: extra),
      "Error: \(extra): has class folder(s) \"Extra\" that the training folder \(train) lacks (its classes: Ankle_boot, Bag, "
    )
  }

  // MARK: Dataset import

  func testDamagedIDXFilesAreRefusedOnImport() throws {
    let source = dir.appendingPathComponent("idx")
    let images = source.appendingPathComponent("train-images-idx3-ubyte")
    let labels = source.appendingPathComponent("train-labels-idx1-ubyte")
    let goodImages = try Data(contentsOf: images), goodLabels = try Data(contentsOf: labels)
    func importing() throws -> (status: Int32, out: String, err: String) {
      try runPretext([
        "data", "import", "fashion-mnist", "--source", source.path, "--out", dir.appendingPathComponent("fm2").path,
      ])
    }
    try goodImages.prefix(1000).write(to: images)
    assertFails(
      try importing(),
      "Error: \(images.path): the header declares 32 × 28 × 28 unsigned bytes (25088 bytes of data) but 984 follow the "
        + "16-byte header: the file is truncated")
    try goodImages.write(to: images)
    var magic = [UInt8](goodImages)
    magic[0] = 0x1F
    try Data(magic).write(to: images)
    assertFails(try importing(), "Error: \(images.path): magic number 0x1F000803 is not an IDX header")
    try goodImages.write(to: images)
    var fewer = [UInt8](goodLabels.dropLast())
    fewer[7] = 31
    try Data(fewer).write(to: labels)
    assertFails(
      try importing(),
      "Error: \(labels.path): 31 labels for the 32 images of \(images.path): the files do not belong together")
    var wrong = [UInt8](goodLabels)
    wrong[9] = 42
    try Data(wrong).write(to: labels)
    assertFails(
      try importing(),
      "Error: \(labels.path): label 42 at index 1 is not a Fashion-MNIST class (0…9); the file is corrupt or from another dataset"
    )
    XCTAssertFalse(
      FileManager.default.fileExists(atPath: dir.appendingPathComponent("fm2/.import-complete").path),
      "a refused import is not marked complete")
  }
}
