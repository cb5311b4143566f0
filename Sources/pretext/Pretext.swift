import ArgumentParser
import Autograd
import Diagnostics
import Distributed
import Foundation
import Support

@main
struct Pretext: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "pretext",
    abstract: "Self-supervised pretraining of image backbones on CPU.",
    version: PretextVersion.string,
    subcommands: [
      Doctor.self, DataCommand.self, Pretrain.self, Inspect.self, Bench.self, Probe.self, Finetune.self, Embed.self,
      Predict.self, Compare.self, Options.self,
    ])

}

/// Options every compute-heavy command takes.
struct ThreadOptions: ParsableArguments {
  @Option(help: "Threads for Pretext's kernels and OpenBLAS (default: all cores, or PRETEXT_THREADS).")
  var threads: Int?

  func apply() throws {
    try BLAS.load()
    // The processes mpirun started on this machine share its cores.
    Parallel.shareCores(among: MPILaunch.current?.localSize ?? 1)
    if let threads {
      guard threads > 0 else { throw ValidationError("--threads must be positive, got \(threads)") }
      Parallel.setThreads(threads)
    } else {
      Parallel.setThreads(Parallel.threads)
    }
  }
}

struct Doctor: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Show the BLAS, core type, threads and CPU features in use, with a measured sgemm rate.")

  @Flag(help: "Print JSON instead of text.") var json = false
  @Flag(help: "Also train a small network on synthetic images to check that the engine learns.")
  var trainingCheck = false
  @OptionGroup var threadOptions: ThreadOptions

  func run() throws {
    try threadOptions.apply()
    let report = try SystemReport.collect(version: PretextVersion.string)
    let check = trainingCheck ? try TrainingCheck.run() : nil
    if json {
      printWhole(try jsonString(DoctorOutput(system: report, trainingCheck: check)))
    } else {
      print(report.text)
      if let check { print(check.text) }
    }
    if let check, !check.passed { throw ExitCode(1) }
  }
}

/// `doctor --json`: the system report's keys at the top level, plus the training check.
struct DoctorOutput: Encodable {
  let system: SystemReport
  let trainingCheck: TrainingCheckReport?
  enum CodingKeys: String, CodingKey { case trainingCheck = "training_check" }
  func encode(to encoder: Encoder) throws {
    try system.encode(to: encoder)
    var c = encoder.container(keyedBy: CodingKeys.self)
    try c.encodeIfPresent(trainingCheck, forKey: .trainingCheck)
  }
}

struct Bench: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Measure Pretext's speed.", subcommands: [BenchOps.self, BenchData.self, BenchTrain.self])
}

struct BenchOps: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "ops",
    abstract: "GFLOP/s (or GB/s) of the engine's main kernels beside the sgemm rate of the same run.")

  @Flag(help: "Print JSON instead of a table.") var json = false
  @Option(help: "Timed repetitions per kernel (the median is reported).") var repeats = 5
  @OptionGroup var threadOptions: ThreadOptions

  func run() throws {
    try threadOptions.apply()
    guard repeats > 0 else { throw ValidationError("--repeats must be positive") }
    let report = try OpBenchmarks.run(repeats: repeats)
    printWhole(json ? try jsonString(report) : report.table)
  }
}

/// A progress or status line on standard error (where the trainer's progress goes too,
/// so they interleave in order; standard output stays for results).
func note(_ line: String) {
  FileHandle.standardError.write(Data((line + "\n").utf8))
}

func jsonString<T: Encodable>(_ value: T) throws -> String {
  String(decoding: try JSONEncoder.sortedKeysPretty.encode(value), as: UTF8.self)
}

struct BenchData: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "data",
    abstract: "How fast data reaches training: the SimCLR pipeline on generated 32×32 PNGs, or a folder of photos.",
    discussion: """
      Without --folder: augmented views per second of the SimCLR pipeline on 32×32 PNGs (decode + two \
      views) and the CPU it uses. With --folder: decode + resize to --size px (shorter side) on all \
      threads, the same from the decoded-image cache, and whether one loader thread keeps a SimCLR \
      ResNet-18 step fed at --size/2 px (benchmarks/data_vs_pil.sh runs PIL beside it).
      """)

  @Flag(help: "Print JSON instead of text.") var json = false
  @Option(help: "Seconds to measure (each measurement).") var seconds: Double = 5
  @Option(help: "PNG files to generate for the run (without --folder).") var images = 2048
  @Option(help: "A folder (or .txt list) of photos to measure.") var folder: String?
  @Option(help: "With --folder: the shorter side images are reduced to, in pixels.") var size = 64
  @OptionGroup var threadOptions: ThreadOptions

  func run() throws {
    try threadOptions.apply()
    guard seconds > 0 else { throw ValidationError("--seconds must be positive") }
    if let folder {
      guard (16...4096).contains(size) else { throw ValidationError("--size must be from 16 to 4096 pixels, got \(size)") }
      let report = try PhotoFolderBenchmark.run(folder: folder, size: size, seconds: seconds)
      printWhole(json ? try jsonString(report) : report.text)
      return
    }
    guard images >= 256 else { throw ValidationError("--images must be at least 256") }
    let report = try DataBenchmark.run(images: images, seconds: seconds)
    printWhole(json ? try jsonString(report) : report.text)
  }
}

struct BenchTrain: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "train",
    abstract: "Images/s, step time, peak memory and GFLOP/s of a full training step (forward + backward + AdamW).",
    discussion: "Workloads: \(TrainBenchmarks.workloads.joined(separator: ", ")) (see benchmarks/pytorch_train.py for the same in PyTorch).")

  @Option(help: "The workload.") var workload: String
  @Option(help: "Images per step before views (default: 256, or 128 for simclr-resnet18).") var batch: Int?
  @Option(help: "Timed steps (the median is reported).") var steps = 5
  @Flag(help: "Print JSON instead of text.") var json = false
  @OptionGroup var threadOptions: ThreadOptions

  func run() throws {
    try threadOptions.apply()
    guard steps > 0, (batch ?? 2) >= 2 else { throw ValidationError("--steps must be positive and --batch at least 2") }
    let report = try TrainBenchmarks.run(workload: workload, batch: batch, steps: steps)
    printWhole(json ? try jsonString(report) : report.text)
  }
}

/// Prints a report in one write(2) (after what `print` has buffered), so that under
/// mpirun, which forwards each process's output as it reads it, one process's report is
/// not cut into pieces between another's lines.
func printWhole(_ text: String) {
  fflush(nil)  // every stdio stream, stdout among them
  FileHandle.standardOutput.write(Data((text + "\n").utf8))
}
