import ArgumentParser
import Diagnostics
import Experiments
import Foundation

struct Compare: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Pretrain several experiments, probe each, and write a side-by-side report.",
    discussion: """
      FILES: one compare file (it has an `experiments:` list; see experiments/compare-fashion-mnist.yaml), \
      optionally followed by more experiment configs to add to it, or experiment configs alone (then the \
      comparison is named "compare" and probes data/fashion-mnist/train and test with all labels, unless set \
      with --set compare.KEY=VALUE).

      Each run goes to <output>/<name>/<experiment>-<hash8>, hash8 being the start of the experiment's resolved \
      config hash: running the same command again reuses finished runs and probes and resumes interrupted runs; \
      a changed config trains in a new folder. The report goes to <output>/<name>/: results.csv, report.md and \
      report.html. Ctrl-C stops the current pretraining after its step (with a checkpoint); run the same \
      command to go on.
      """)

  @Argument(help: "A compare file and/or experiment configs (YAML).") var files: [String]
  @Option(
    name: .customLong("set"),
    help:
      "Override an experiment value for every experiment (key.path=value), or a compare-file value with compare.key.path=value (repeatable)."
  )
  var overrides: [String] = []
  @Flag(
    name: .customLong("dry-run"),
    help:
      "Check every experiment as a run would (configs, data and label folders, run folders, free disk, memory), measure a few steps of each and print the plan; write nothing."
  )
  var dryRun = false
  @OptionGroup var threadOptions: ThreadOptions

  func run() throws {
    try threadOptions.apply()
    guard !files.isEmpty else { throw ValidationError("give a compare file or experiment configs") }
    for f in files where !FileManager.default.fileExists(atPath: f) {
      throw ValidationError("\(f): no such file")
    }
    let compareFiles = files.filter(CompareConfig.isCompareFile)
    guard compareFiles.count <= 1 else {
      throw ValidationError("one compare file at a time (got \(compareFiles.joined(separator: ", ")))")
    }
    if let first = compareFiles.first, first != files[0] {
      throw ValidationError("the compare file (\(first)) goes first, before experiment configs")
    }
    let compareOverrides = overrides.filter { $0.hasPrefix("compare.") }.map { String($0.dropFirst("compare.".count)) }
    let experimentOverrides = overrides.filter { !$0.hasPrefix("compare.") }
    let config = try CompareConfig.load(path: compareFiles.first, overrides: compareOverrides)
    let comparison = try CompareRun(
      config: config, extraExperiments: files.filter { !compareFiles.contains($0) }, overrides: experimentOverrides)
    comparison.commandLine = CommandLine.arguments
    comparison.version = PretextVersion.string
    if dryRun {
      print(try comparison.dryRun(progress: note))
      return
    }
    note("comparison \(config.name): \(comparison.planned.count) experiment(s) → \(config.directory)")
    let signals = StopOnSignal { comparison.requestStop() }
    let outcome = try comparison.run(progress: note)
    withExtendedLifetime(signals) {}
    if outcome.stopped {
      print("stopped before the comparison was complete; checkpoints are saved. Run the same command again to go on:")
      print("  " + CompareReport.shellCommand(CommandLine.arguments))
      throw ExitCode(130)
    }
    guard let report = outcome.report else { return }
    var counts = (trained: 0, resumed: 0, reused: 0)
    for (_, o) in outcome.pretraining {
      switch o {
      case .trained: counts.trained += 1
      case .resumed: counts.resumed += 1
      case .reused: counts.reused += 1
      case .stopped: break
      }
    }
    note(
      "pretraining: \(counts.trained) trained, \(counts.resumed) resumed, \(counts.reused) reused; probes: \(outcome.probesRun) run, \(outcome.probesReused) reused"
        + (outcome.finetunesRun + outcome.finetunesReused > 0 ? "; fine-tuning: \(outcome.finetunesRun) trained, \(outcome.finetunesReused) reused" : "")
    )
    print(report.resultsTable)
    if let baselines = report.baselinesTable { print("\nbaselines:\n" + baselines) }
    if let finetuning = report.finetuneTable { print("\nfine-tuning:\n" + finetuning) }
    print()
    for file in outcome.files { print("wrote \(file)") }
  }
}
