import ArgumentParser
import Autograd
import Experiments
import Foundation
import Vision

/// `pretext data …`: check image folders and import datasets. The work is in Vision
/// (DataCheck, FashionMNIST); this file only parses arguments and prints.
struct DataCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "data",
    abstract: "Check image folders, cache their decoded images, and import datasets.",
    subcommands: [DataCheckCommand.self, DataCacheCommand.self, DataImportCommand.self])
}

struct DataCheckCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "check",
    abstract:
      "Decode every PNG or JPEG image under a folder; report usable images, their sizes and formats, and the "
      + "rejected files.",
    discussion: "Exits with status 0 when every image file is usable, 1 otherwise.")

  @Argument(help: "The folder to check (searched recursively).") var directory: String
  @Flag(help: "Print JSON instead of text.") var json = false
  @OptionGroup var threadOptions: ThreadOptions

  func run() throws {
    try threadOptions.apply()
    let report = try DataCheck.run(path: directory, threads: Parallel.threads)
    printWhole(json ? try jsonString(report) : report.text)
    if !report.allUsable { throw ExitCode(1) }
  }
}

struct DataCacheCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "cache",
    abstract: "Decode every image of a folder into its decoded-image cache, ahead of training.",
    discussion: """
      TARGET is an experiment config (its data.unlabeled, decoded at its data.decode_size for its \
      backbone), or a folder or .txt image list with --decode-size. Training fills the same cache \
      during its first epoch; building it ahead saves that epoch's decoding, and lets a run on \
      several processes (mpirun) use it. The cache is kept in the folder's hidden .pretext/ \
      folder (or the user's cache folder when the data folder cannot be written) and rebuilt \
      when an image is added, removed or changed. Exits with status 1 when some image cannot \
      be decoded (the others are cached).
      """)

  @Argument(help: "An experiment config (.yaml), or a folder or .txt list of images.") var target: String
  @Option(help: "With a folder: the shorter side to reduce images to, in pixels, or `full`.")
  var decodeSize: String?
  @Option(name: .customLong("set"), help: "With a config: override a key (key.path=value), as pretrain does.")
  var overrides: [String] = []
  @OptionGroup var threadOptions: ThreadOptions

  func run() throws {
    try threadOptions.apply()
    let folder: ImageFolder
    if target.hasSuffix(".yaml") || target.hasSuffix(".yml") {
      guard decodeSize == nil else {
        throw ValidationError("--decode-size is for a folder; a config's data.decode_size says it (or use --set)")
      }
      folder = try ExperimentConfig.load(path: target, overrides: overrides).openUnlabeledImages()
    } else {
      guard overrides.isEmpty else { throw ValidationError("--set is for a config file") }
      guard let decodeSize else {
        throw ValidationError(
          "give --decode-size (pixels, or full) for a folder, or pass the experiment config to cache what it trains on")
      }
      let side: Int?
      if decodeSize == "full" {
        side = nil
      } else if let n = Int(decodeSize), (1...ExperimentConfig.DecodeSize.maximum).contains(n) {
        side = n
      } else {
        throw ValidationError(
          "--decode-size must be full or a size from 1 to \(ExperimentConfig.DecodeSize.maximum) pixels, got \(decodeSize)"
        )
      }
      folder = try ImageFolder(path: target, options: ImageFolderOptions(decode: ImageDecodeOptions(shorterSide: side)))
    }
    note(folder.summary)
    let cached = try CachedImageFolder(folder: folder)
    let size = DecodedImageCache.sizeText(cached.cache.byteCount)
    let start = Date()
    let unreadable = try cached.fill(threads: Parallel.threads) { done, total in
      let seconds = Date().timeIntervalSince(start)
      let rate = seconds > 0 ? Double(done) / seconds : 0
      let eta = rate > 0 && done < total ? String(format: ", ETA %.0fs", Double(total - done) / rate) : ""
      let line = String(
        format: "\rcache: %ld/%ld images (%.0f%%), %.0f images/s", done, total,
        100 * Double(done) / Double(max(total, 1)),
        rate)
      FileHandle.standardError.write(Data((line + eta).utf8))
    }
    FileHandle.standardError.write(Data("\n".utf8))
    for issue in unreadable { note("unreadable: \(issue.path): \(issue.reason)") }
    let state = cached.cache.isComplete ? "complete" : "incomplete"
    print(
      "\(cached.cache.path): \(folder.count) images (\(size)), \(state) in "
        + String(format: "%.1f s", Date().timeIntervalSince(start)))
    if !unreadable.isEmpty { throw ExitCode(1) }
  }
}

struct DataImportCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "import",
    abstract: "Convert a dataset's files into PNG folders (unlabeled/, train/<class>/, test/<class>/).",
    discussion: """
      Re-running is safe: a complete import is detected (from its .import-complete manifest) \
      and left alone; an interrupted one is completed.
      """)

  enum Dataset: String, ExpressibleByArgument, CaseIterable {
    case fashionMNIST = "fashion-mnist"
  }

  @Argument(help: "The dataset to import.") var dataset: Dataset
  @Option(help: "The folder holding the dataset's IDX files (.gz or plain).")
  var source = FashionMNIST.defaultSource
  @Option(help: "The output folder.") var out = "data/fashion-mnist"
  @OptionGroup var threadOptions: ThreadOptions

  func run() throws {
    try threadOptions.apply()
    switch dataset {
    case .fashionMNIST:
      let summary = try FashionMNIST.importDataset(
        source: source, output: out, threads: Parallel.threads,
        progress: { line in
          FileHandle.standardError.write(Data("\(line)\n".utf8))
        })
      print(summary.text)
    }
  }
}
