import ArgumentParser
import Autograd
import Backbones
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
  @OptionGroup var threadOptions: ThreadOptions

  func run() throws {
    try threadOptions.apply()
    let experiment = try ExperimentConfig.load(path: config, overrides: overrides)
    let runDirectory = experiment.runDirectory
    let configPath = PretrainingRun.configPath(in: runDirectory)
    if !resume && !Checkpoints.list(in: runDirectory).isEmpty {
      throw ValidationError(
        "\(runDirectory) already holds a run; add --resume to continue it, or choose another name (--set name=...)")
    }
    if resume, let saved = try? String(contentsOfFile: configPath, encoding: .utf8), saved != experiment.resolvedYAML {
      throw ValidationError("\(configPath) differs from the config given; resume with the same config and --set values")
    }
    let run = try PretrainingRun(experiment: experiment, sourcePath: config, progress: note)
    let backbone = run.trainer.backbone
    note(
      "pretraining \(backbone.config.name) (\(backbone.parameterCount) parameters) with \(run.trainer.task.name) on \(run.images.count) images → \(runDirectory)"
    )
    let signals = StopOnSignal { run.requestStop() }
    let summary = try run.run(resume: resume)
    withExtendedLifetime(signals) {}
    if summary.resumedFromStep == summary.totalSteps {
      print("the run was already complete (\(summary.steps) steps); backbone: \(summary.backbonePath)")
      return
    }
    if run.trainer.stopRequested && summary.steps < summary.totalSteps {
      print("stopped at step \(summary.steps) of \(summary.totalSteps); checkpoint saved. Resume with:")
      print("  pretext pretrain \(config)\(overrides.map { " --set \($0)" }.joined()) --resume")
      return
    }
    print(
      String(
        format: "done: %d steps in %.0f s (%.0f images/s), final loss %.4f; backbone: %@", summary.steps, summary.seconds,
        summary.imagesPerSecond, summary.finalLoss, summary.backbonePath))
  }
}

/// Turns SIGINT/SIGTERM into a stop request (the first time); a second signal exits.
final class StopOnSignal {
  let sources: [DispatchSourceSignal]
  init(_ stop: @escaping @Sendable () -> Void) {
    var sources: [DispatchSourceSignal] = []
    for sig in [SIGINT, SIGTERM] {
      signal(sig, SIG_IGN)
      let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
      var count = 0
      source.setEventHandler {
        count += 1
        if count > 1 { Foundation.exit(130) }
        FileHandle.standardError.write(Data("\nstopping after this step (again to quit at once)…\n".utf8))
        stop()
      }
      source.resume()
      sources.append(source)
    }
    self.sources = sources
  }
}
