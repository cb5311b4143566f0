import Autograd
import Foundation
import Support

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

// Fashion-MNIST (Xiao, Rasul & Vollgraf 2017, https://github.com/zalandoresearch/fashion-mnist):
// 70k grayscale 28×28 photos of clothing in 10 classes, shipped as IDX files (Debian
// package `dataset-fashion-mnist`, /usr/share/datasets/fashion-mnist).
//
// The import turns them into PNG folders the rest of Pretext reads:
//
//   <out>/unlabeled/00000.png …          the 60k training images, no labels (pretraining)
//   <out>/train/<class>/00001.png …      the same 60k, by class (linear probe, kNN)
//   <out>/test/<class>/00000.png …       the 10k test images, by class (evaluation)
//   <out>/.import-complete               JSON manifest with the counts, written last
//
// File names are the index in the source file, zero-padded to 5 digits, so any PNG can be
// traced back to its IDX record. Re-running is idempotent: with the manifest present and
// the folders holding the counts it lists, nothing is done; otherwise the import runs
// again and completes what is missing (files already identical are left untouched; an
// interrupted run's temporary files are removed).

public enum FashionMNIST {
  public static let datasetName = "fashion-mnist"
  /// Where Debian's `dataset-fashion-mnist` package installs the IDX files.
  public static let defaultSource = "/usr/share/datasets/fashion-mnist"
  /// The official class names made safe for file names ("T-shirt/top" → "T-shirt_top",
  /// spaces → "_"), indexed by label.
  public static let classNames = [
    "T-shirt_top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
    "Ankle_boot",
  ]
  /// Images are `imageSize`×`imageSize`, one channel.
  public static let imageSize = 28
  /// The manifest file, written last: its presence means the import finished.
  public static let manifestName = ".import-complete"

  public enum Split: String, Sendable, CaseIterable, Codable {
    case train, test

    /// The IDX file name prefix (`t10k` is the test set's name in the original release).
    var filePrefix: String { self == .train ? "train" : "t10k" }
  }

  /// The IDX files of one split.
  public struct SourceFiles: Sendable, Hashable {
    public let images: String
    public let labels: String
  }

  /// What the IDX files of one split hold (headers validated, labels in range).
  public struct SplitInfo: Sendable, Hashable {
    public let split: Split
    public let files: SourceFiles
    public let count: Int
    public let imageHeader: IDXHeader
    public let labelHeader: IDXHeader
  }

  /// The IDX files of `split` under `source`: `<prefix>-images-idx3-ubyte.gz` (or without
  /// `.gz`) and `<prefix>-labels-idx1-ubyte.gz` (or without `.gz`).
  ///
  /// - Throws: `VisionError` naming the folder and the missing file, and how to get it.
  public static func sourceFiles(_ split: Split, in source: String) throws -> SourceFiles {
    var info = stat()
    guard stat(source, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else {
      throw VisionError(
        kind: .notFound, path: source,
        reason: "no such folder; expected the Fashion-MNIST IDX files here. Install them with "
          + "`apt install dataset-fashion-mnist` (they go to \(defaultSource)) or pass --source")
    }
    func find(_ base: String) throws -> String {
      for name in [base + ".gz", base] {
        let path = FolderScan.join(source, name)
        if stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG { return path }
      }
      throw VisionError(
        kind: .invalidSource, path: source,
        reason: "\(base).gz (or \(base)) is missing; expected the four Fashion-MNIST IDX files "
          + "(train/t10k images and labels). Reinstall `dataset-fashion-mnist` or pass --source")
    }
    return SourceFiles(
      images: try find("\(split.filePrefix)-images-idx3-ubyte"),
      labels: try find("\(split.filePrefix)-labels-idx1-ubyte"))
  }

  /// Validates the four IDX files under `source` without writing anything: magic numbers,
  /// dimensions (N × 28 × 28 images, N labels), exact lengths, matching counts and labels
  /// in 0…9. Each file is decompressed once (about a second for the whole set).
  public static func inspect(source: String = defaultSource) throws -> [SplitInfo] {
    try Split.allCases.map { split in
      let files = try sourceFiles(split, in: source)
      let imageHeader = try IDX.header(path: files.images)
      try checkImageShape(imageHeader, path: files.images)
      let labels = try IDX.read(path: files.labels)
      try checkLabels(labels, path: files.labels, imageCount: imageHeader.shape[0], imagePath: files.images)
      return SplitInfo(
        split: split, files: files, count: imageHeader.shape[0], imageHeader: imageHeader,
        labelHeader: IDXHeader(typeCode: IDX.unsignedByte, shape: labels.shape))
    }
  }

  /// What an import did (or found already done).
  public struct ImportSummary: Sendable, Codable, Hashable {
    public let output: String
    public let source: String
    /// True when the output was already complete and nothing was written.
    public let alreadyComplete: Bool
    public let unlabeled: Int
    /// Images per class, indexed like `classNames`.
    public let trainPerClass: [Int]
    public let testPerClass: [Int]
    /// PNG files written, and files found already identical (left untouched).
    public let written: Int
    public let unchanged: Int
    /// Stale files removed: temporary files of an interrupted run, and numbered PNGs that
    /// the source does not produce (an earlier import from different files).
    public let removed: Int
    public let seconds: Double

    public var train: Int { trainPerClass.reduce(0, +) }
    public var test: Int { testPerClass.reduce(0, +) }

    public var text: String {
      let classes = "\(classNames.count) class folders"
      if alreadyComplete {
        return "\(output): Fashion-MNIST is already imported (unlabeled \(unlabeled), train \(train), "
          + "test \(test) in \(classes)); nothing to do. Delete \(FolderScan.join(output, manifestName)) "
          + "to import again."
      }
      let time = String(format: "%.1f", seconds)
      return """
        Imported Fashion-MNIST from \(source) into \(output) in \(time) s:
          unlabeled/  \(unlabeled) images
          train/      \(train) images in \(classes) (\(perClassText(trainPerClass)))
          test/       \(test) images in \(classes) (\(perClassText(testPerClass)))
          \(written) PNG files written, \(unchanged) already up to date\(removed > 0 ? ", \(removed) stale file\(removed == 1 ? "" : "s") removed" : "")
        """
    }

    func perClassText(_ counts: [Int]) -> String {
      Set(counts).count == 1 ? "\(counts[0]) each" : counts.map(String.init).joined(separator: "/")
    }
  }

  /// Imports the IDX files under `source` into PNG folders under `output` (see the top of
  /// this file for the layout), writing on `threads` threads. `progress` receives a few
  /// short lines (on the calling thread).
  ///
  /// - Throws: `VisionError`: an IDX kind (`.badMagic`, `.wrongLength`, `.unexpectedShape`,
  ///   …) for a malformed source file, `.notFound` or `.invalidSource` for missing source
  ///   files, `.io` for output that cannot be written.
  public static func importDataset(
    source: String = defaultSource, output: String, threads: Int = Parallel.threads,
    progress: (String) -> Void = { _ in }
  ) throws -> ImportSummary {
    let start = DispatchTime.now()
    let output = FolderScan.normalize(output)
    let sourcePath = canonicalPath(FolderScan.normalize(source))
    let manifestPath = FolderScan.join(output, manifestName)

    if let manifest = ImportManifest.read(manifestPath) {
      if manifest.source != sourcePath {
        progress("\(output) was imported from \(manifest.source); importing again from \(sourcePath)")
      } else if let problem = manifest.missing(in: output) {
        progress("\(output): the previous import is incomplete (\(problem)); completing it")
      } else {
        return ImportSummary(
          output: output, source: sourcePath, alreadyComplete: true, unlabeled: manifest.unlabeled,
          trainPerClass: manifest.train, testPerClass: manifest.test, written: 0, unchanged: 0,
          removed: 0, seconds: elapsed(since: start))
      }
    }

    // Read and validate everything before writing anything.
    var splits: [(split: Split, images: IDXArray, labels: [Int])] = []
    for split in Split.allCases {
      let files = try sourceFiles(split, in: sourcePath)
      progress("reading \(files.images)")
      let images = try IDX.read(path: files.images)
      try checkImageShape(IDXHeader(typeCode: IDX.unsignedByte, shape: images.shape), path: files.images)
      let labels = try IDX.read(path: files.labels)
      try checkLabels(labels, path: files.labels, imageCount: images.count, imagePath: files.images)
      splits.append((split, images, labels.values.map(Int.init)))
    }

    // The manifest goes first, so that a run interrupted from here on is not mistaken
    // for a complete one.
    if unlink(manifestPath) != 0 && errno != ENOENT {
      throw VisionError(
        kind: .io, path: manifestPath, reason: "cannot remove: \(String(cString: strerror(errno)))")
    }
    var folders = ["unlabeled"]
    for split in Split.allCases { folders += classNames.map { "\(split.rawValue)/\($0)" } }
    for folder in folders { try makeFolder(FolderScan.join(output, folder)) }

    var written = 0
    var unchanged = 0
    var expected = Dictionary(uniqueKeysWithValues: folders.map { ($0, Set<String>()) })
    var perClass: [Split: [Int]] = [:]
    for (split, images, labels) in splits {
      let width = max(5, String(max(0, images.count - 1)).count)
      let names = (0..<images.count).map { paddedName($0, width: width) }
      var counts = [Int](repeating: 0, count: classNames.count)
      for (i, label) in labels.enumerated() {
        counts[label] += 1
        expected["\(split.rawValue)/\(classNames[label])", default: []].insert(names[i])
        if split == .train { expected["unlabeled", default: []].insert(names[i]) }
      }
      perClass[split] = counts
      // Destinations of image i, relative to `output`.
      let targets: (Int) -> [String] = { i in
        let labeled = "\(split.rawValue)/\(classNames[labels[i]])/\(names[i])"
        return split == .train ? ["unlabeled/\(names[i])", labeled] : [labeled]
      }
      let what = split == .train ? "train + unlabeled" : "test"
      var nextQuarter = 1
      let batch = 4096
      for first in stride(from: 0, to: images.count, by: batch) {
        let range = first..<min(first + batch, images.count)
        let results: [WriteResult] = concurrentMap(range.count, threads: threads) { k in
          let i = range.lowerBound + k
          return writeImage(
            images.item(i), to: targets(i).map { FolderScan.join(output, $0) })
        }
        for result in results {
          if let failure = result.failure { throw failure }
          written += result.written
          unchanged += result.unchanged
        }
        // A line at each quarter: brief, but shows that a long import is moving.
        let done = range.upperBound
        if done * 4 / images.count >= nextQuarter {
          progress("\(what): \(done)/\(images.count)")
          nextQuarter = done * 4 / images.count + 1
        }
      }
    }

    let removed = try removeStale(in: output, expected: expected)
    let manifest = ImportManifest(
      dataset: datasetName, format: ImportManifest.currentFormat, source: sourcePath,
      classes: classNames, unlabeled: perClass[.train]!.reduce(0, +), train: perClass[.train]!,
      test: perClass[.test]!)
    try manifest.write(manifestPath)
    return ImportSummary(
      output: output, source: sourcePath, alreadyComplete: false, unlabeled: manifest.unlabeled,
      trainPerClass: manifest.train, testPerClass: manifest.test, written: written,
      unchanged: unchanged, removed: removed, seconds: elapsed(since: start))
  }

  // MARK: Implementation

  static func checkImageShape(_ header: IDXHeader, path: String) throws {
    guard header.shape.count == 3, header.shape[1] == imageSize, header.shape[2] == imageSize else {
      throw VisionError(
        kind: .unexpectedShape, path: path,
        reason: "holds \(header.shapeText) values; Fashion-MNIST images are N × \(imageSize) × "
          + "\(imageSize) (magic 0x00000803). Check that this is an image file of the dataset")
    }
  }

  static func checkLabels(_ labels: IDXArray, path: String, imageCount: Int, imagePath: String) throws {
    guard labels.shape.count == 1 else {
      throw VisionError(
        kind: .unexpectedShape, path: path,
        reason: "holds \(labels.shape.map(String.init).joined(separator: " × ")) values; a label "
          + "file is one-dimensional (magic 0x00000801). Check that this is a label file of the dataset")
    }
    guard labels.count == imageCount else {
      throw VisionError(
        kind: .unexpectedShape, path: path,
        reason: "\(labels.count) labels for the \(imageCount) images of \(imagePath): the files do "
          + "not belong together; reinstall the dataset or fix --source")
    }
    if let bad = labels.values.firstIndex(where: { Int($0) >= classNames.count }) {
      throw VisionError(
        kind: .unexpectedShape, path: path,
        reason: "label \(labels.values[bad]) at index \(bad) is not a Fashion-MNIST class "
          + "(0…\(classNames.count - 1)); the file is corrupt or from another dataset")
    }
  }

  struct WriteResult {
    var written = 0
    var unchanged = 0
    var failure: VisionError?
  }

  /// Encodes one 28×28 gray image once and puts it at every path, skipping paths that
  /// already hold exactly these bytes (the encoder is deterministic, so a file from a
  /// completed earlier run compares equal and is not rewritten).
  static func writeImage(_ pixels: ArraySlice<UInt8>, to paths: [String]) -> WriteResult {
    var result = WriteResult()
    do {
      let image = Image(width: imageSize, height: imageSize, channels: 1, pixels: Array(pixels))
      let bytes = try PNG.encode(image)
      for path in paths {
        if let existing = try? ImageFile.readFile(path), existing == bytes {
          result.unchanged += 1
          continue
        }
        try PNG.writeAtomically(bytes, to: path)
        result.written += 1
      }
    } catch let error as VisionError {
      result.failure = VisionError(
        kind: .io, path: error.path ?? paths[0],
        reason: error.reason + "; check free space and permissions, then run the import again")
    } catch {
      result.failure = VisionError(kind: .io, path: paths[0], reason: "\(error)")
    }
    return result
  }

  /// Removes, in the import's own folders, temporary files of interrupted writes and
  /// numbered PNGs that this import does not produce. Other files are left alone.
  static func removeStale(in output: String, expected: [String: Set<String>]) throws -> Int {
    var removed = 0
    for (folder, keep) in expected.sorted(by: { $0.key < $1.key }) {
      let path = FolderScan.join(output, folder)
      for name in try listNames(path) {
        let temporary = name.hasPrefix(".") && name.contains(".png.tmp-")
        let stray = isNumberedPNG(name) && !keep.contains(name)
        guard temporary || stray else { continue }
        let file = FolderScan.join(path, name)
        guard unlink(file) == 0 else {
          throw VisionError(
            kind: .io, path: file, reason: "cannot remove a stale file: \(String(cString: strerror(errno)))")
        }
        removed += 1
      }
    }
    return removed
  }

  /// `00042.png`: the names the import writes.
  static func isNumberedPNG(_ name: String) -> Bool {
    let utf8 = Array(name.utf8)
    guard utf8.count > 4, name.hasSuffix(".png") else { return false }
    return utf8.dropLast(4).allSatisfy { (48...57).contains($0) }
  }

  static func paddedName(_ index: Int, width: Int) -> String {
    let digits = String(index)
    return String(repeating: "0", count: max(0, width - digits.count)) + digits + ".png"
  }

  /// Entry names of a folder (including hidden ones), or [] when it does not exist.
  static func listNames(_ path: String) throws -> [String] {
    guard let directory = opendir(path) else {
      if errno == ENOENT { return [] }
      throw VisionError(
        kind: .unreadable, path: path, reason: "cannot open folder: \(String(cString: strerror(errno)))")
    }
    defer { closedir(directory) }
    var names: [String] = []
    while let entry = readdir(directory) {
      let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
        String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
      }
      if name != "." && name != ".." { names.append(name) }
    }
    return names
  }

  static func makeFolder(_ path: String) throws {
    do {
      try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    } catch {
      throw VisionError(
        kind: .io, path: path,
        reason: "cannot create the folder (\(error.localizedDescription)); check the --out path and its permissions")
    }
  }

  /// The absolute path with symbolic links resolved (so the manifest's source compares
  /// equal however the folder was named), or `path` itself when it does not exist.
  static func canonicalPath(_ path: String) -> String {
    guard let resolved = realpath(path, nil) else { return path }
    defer { free(resolved) }
    return String(cString: resolved)
  }

  static func elapsed(since start: DispatchTime) -> Double {
    Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
  }
}

/// `<out>/.import-complete`: what a finished import wrote. JSON, e.g.
/// `{"dataset":"fashion-mnist","format":1,"source":"/usr/share/datasets/fashion-mnist",
///   "classes":[…],"unlabeled":60000,"train":[6000,…],"test":[1000,…]}`.
struct ImportManifest: Codable, Equatable {
  static let currentFormat = 1

  var dataset: String
  var format: Int
  var source: String
  var classes: [String]
  var unlabeled: Int
  /// Images per class folder.
  var train: [Int]
  var test: [Int]

  /// The manifest at `path`, or nil when it is missing, unreadable or from another
  /// dataset or format (any of which means: import again).
  static func read(_ path: String) -> ImportManifest? {
    guard let bytes = try? ImageFile.readFile(path),
      let manifest = try? JSONDecoder().decode(ImportManifest.self, from: Data(bytes)),
      manifest.dataset == FashionMNIST.datasetName, manifest.format == currentFormat,
      manifest.classes == FashionMNIST.classNames,
      manifest.train.count == manifest.classes.count, manifest.test.count == manifest.classes.count
    else { return nil }
    return manifest
  }

  func write(_ path: String) throws {
    do {
      try PNG.writeAtomically([UInt8](try JSONEncoder.sortedKeys.encode(self)) + [10], to: path)
    } catch {
      throw VisionError(kind: .io, path: path, reason: "cannot write the import manifest: \(error)")
    }
  }

  /// Why the folders under `output` do not match the manifest (a folder whose count of
  /// numbered PNGs differs), or nil when they do. Lists names only: no file is opened.
  func missing(in output: String) -> String? {
    var folders: [(String, Int)] = [("unlabeled", unlabeled)]
    for (i, name) in classes.enumerated() {
      folders.append(("train/\(name)", train[i]))
      folders.append(("test/\(name)", test[i]))
    }
    for (folder, count) in folders {
      let names = (try? FashionMNIST.listNames(FolderScan.join(output, folder))) ?? []
      let found = names.filter(FashionMNIST.isNumberedPNG).count
      if found != count { return "\(folder) holds \(found) of \(count) images" }
    }
    return nil
  }
}
