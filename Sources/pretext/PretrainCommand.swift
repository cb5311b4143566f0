import ArgumentParser
import Autograd
import Backbones
import Distributed
import Experiments
import Foundation
import Training
import Vision

struct Pretrain: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Pretrain a backbone on an unlabeled image folder with a pretext task.",
    discussion: """
      Writes runs/<name>/: config.yaml (resolved), metrics.jsonl, checkpoints, backbone.safetensors \
      and the task's pictures. Ctrl-C finishes the current step, saves a checkpoint and says how to resume.
      """)

  @Argument(help: "Experiment config (YAML).") var config: String
  @Option(name: .customLong("set"), help: "Override a config value: key.path=value (repeatable).")
  var overrides: [String] = []
  @Flag(help: "Continue the run from its newest checkpoint.") var resume = false
  @Flag(
    name: .customLong("dry-run"),
    help:
      "Check everything a run checks (config, data, run folder, free disk, memory), measure a few steps and print the plan; write nothing."
  )
  var dryRun = false
  @OptionGroup var threadOptions: ThreadOptions

  func run() throws {
    // Launched by `mpirun -np N` (N > 1): one process of a data-parallel run.
    let launch = MPILaunch.current.flatMap { $0.size > 1 ? $0 : nil }
    guard launch != nil else { return try pretrain(group: SingleProcess()) }
    let group = try MPIProcessGroup.initialize()
    do {
      try pretrain(group: group)
    } catch {
      // The other processes would wait for this one forever: end them all. An error that
      // every process meets (a bad config) is told once, by process 0: the others wait a
      // moment, so that its abort (a SIGTERM from mpirun, no longer a stop request now)
      // usually ends them before they repeat it.
      signal(SIGTERM, SIG_DFL)
      if !group.isLeader { sleep(2) }
      note((group.isLeader ? "Error: " : "Error (process \(group.rank)): ") + "\(error)")
      group.abort(code: 1)
    }
    group.finalize()
  }

  /// The run, on every process of `group`; process 0 checks and writes the run folder and
  /// prints (the others only read the data).
  func pretrain(group: any Communicator) throws {
    try threadOptions.apply()
    let leader = group.isLeader
    let experiment = try ExperimentConfig.load(path: config, overrides: overrides)
    let runDirectory = experiment.runDirectory
    // Everything that can be checked is checked before the run folder is touched.
    if leader { try RunFolderState.checkStart(runDirectory, for: experiment, resume: resume) }
    let run = try PretrainingRun(
      experiment: experiment, sourcePath: config, group: group, dryRun: dryRun, progress: note)
    let trainer = run.trainer
    if dryRun {
      let secondsPerStep = try trainer.measureSecondsPerStep()
      if leader { print(run.planText(secondsPerStep: secondsPerStep)) }
      return
    }
    if leader {
      let processes =
        group.size > 1
        ? " on \(group.size) processes (\(experiment.train.batchSize / group.size) images each per step, "
          + "\(Parallel.threads) thread(s) each, "
          + String(format: "%.1f MB of gradients averaged per step)", Double(trainer.gradientBytes) / 1e6) : ""
      note(
        "pretraining \(trainer.backbone.config.name) (\(trainer.backbone.parameterCount) parameters) with \(trainer.task.name) on \(run.images.count) images\(processes) → \(runDirectory)"
      )
    }
    let signals = StopOnSignal(announce: leader) { run.requestStop() }
    let summary = try run.run(resume: resume)
    withExtendedLifetime(signals) {}
    guard leader else { return }
    if summary.resumedFromStep == summary.totalSteps {
      print("the run was already complete (\(summary.steps) steps); backbone: \(summary.backbonePath)")
      return
    }
    if summary.steps < summary.totalSteps {
      print("stopped at step \(summary.steps) of \(summary.totalSteps); checkpoint saved. Resume with:")
      // Any number of processes can resume the run.
      let launcher = group.size > 1 ? "mpirun -np \(group.size) " : ""
      print("  \(launcher)pretext pretrain \(config)\(overrides.map { " --set \($0)" }.joined()) --resume")
      return
    }
    print(
      String(
        format: "done: %ld steps in %.0f s (%.0f images/s), final loss %.4f; backbone: %@", summary.steps, summary.seconds,
        summary.imagesPerSecond, summary.finalLoss, summary.backbonePath))
  }
}

/// Turns SIGINT/SIGTERM into a stop request (the first time); a second signal exits.
/// Under mpirun every process gets the signal; one (`announce`) says so.
final class StopOnSignal {
  let sources: [DispatchSourceSignal]
  init(announce: Bool = true, _ stop: @escaping @Sendable () -> Void) {
    var sources: [DispatchSourceSignal] = []
    for sig in [SIGINT, SIGTERM] {
      signal(sig, SIG_IGN)
      let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
      var count = 0
      source.setEventHandler {
        count += 1
        if count > 1 { Foundation.exit(130) }
        if announce {
          FileHandle.standardError.write(Data("\nstopping after this step (again to quit at once)…\n".utf8))
        }
        stop()
      }
      source.resume()
      sources.append(source)
    }
    self.sources = sources
  }
}

/// A command that cannot go on, with the reason and what to do (printed without the
/// usage text, unlike `ValidationError`: the command line itself was fine).
struct RunError: Error, CustomStringConvertible {
  let description: String
  init(_ description: String) { self.description = description }
}
