import ArgumentParser
import Autograd
import Foundation
import Vision

/// `pretext data …`: check image folders and import datasets. The work is in Vision
/// (DataCheck, FashionMNIST); this file only parses arguments and prints.
struct DataCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "data",
    abstract: "Check image folders and import datasets.",
    subcommands: [DataCheckCommand.self, DataImportCommand.self])
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
