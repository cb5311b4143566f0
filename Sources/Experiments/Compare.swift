import Evaluation
import Foundation
import NN
import Support
import Training
import Vision

/// `pretext compare`: pretrains every experiment of a comparison, probes each run at
/// every label budget, projects its test features, and writes the report.
///
/// Runs live in `<output>/<compare name>/<experiment name>-<hash8>/`, where hash8 is the
/// first 8 hex digits of the experiment's resolved config hash (`ExperimentConfig.hash`,
/// which covers every setting, overrides included). So:
/// - the same config again finds its folder: a finished run is reused as it is, an
///   interrupted one (checkpoints, no `pretrain.json`) is resumed;
/// - a changed config (another `set:`, an edited file) gets a new folder and trains from
///   scratch; the old folder is left alone and is no longer in the report;
/// - a folder whose `config.yaml` differs from the config (only by hand-editing, or a
///   hash-prefix collision) is refused, never reused.
/// A probe report is reused when `Probe.reusableReport` finds the same weights, folders
/// and probe settings.
public final class CompareRun: @unchecked Sendable {
  /// One experiment of the comparison, loaded and placed.
  public struct Planned: Sendable {
    public var config: ExperimentConfig
    /// The experiment file (for errors about it).
    public var sourcePath: String
    public var runDirectory: String
    /// The backbone pretraining leaves.
    public var weights: String { PretrainingRun.backbonePath(in: runDirectory) }
  }

  /// What happened to one experiment's pretraining.
  public enum PretrainingOutcome: Sendable, Equatable {
    case reused(steps: Int)
    case resumed(fromStep: Int, steps: Int)
    case trained(steps: Int)
    case stopped(atStep: Int, of: Int)
  }

  public struct Outcome: Sendable {
    /// Experiment name → what its pretraining did.
    public var pretraining: [(name: String, outcome: PretrainingOutcome)]
    /// Probes run and probes reused.
    public var probesRun: Int
    public var probesReused: Int
    /// Fine-tuning runs (from-scratch baselines included) trained and reused.
    public var finetunesRun = 0
    public var finetunesReused = 0
    /// Set when a stop was requested during pretraining: nothing was probed or reported.
    public var stopped: Bool
    public var report: CompareReport?
    public var files: [String]
  }

  public let config: CompareConfig
  public let planned: [Planned]
  /// Recorded in the probe reports and the report.
  public var commandLine: [String] = []
  /// Recorded in the fine-tuning reports.
  public var version = ""
  private let lock = NSLock()
  private var current: PretrainingRun?
  private var stopFlag = false

  /// Loads every experiment: the compare file's entries, then `extraExperiments` (plain
  /// config files given beside it). Overrides apply in order: the compare file's shared
  /// `set`, the entry's own `set`, then `overrides` (the command line's `--set`).
  public init(config: CompareConfig, extraExperiments: [String] = [], overrides: [String] = []) throws {
    self.config = config
    var entries = config.experiments
    entries += extraExperiments.map { CompareConfig.Entry(path: $0, overrides: [], location: $0) }
    guard !entries.isEmpty else {
      throw ConfigError(
        "\(config.sourcePath.isEmpty ? "compare" : config.sourcePath): no experiments; list config files under experiments:"
      )
    }
    var planned: [Planned] = []
    for entry in entries {
      let experiment: ExperimentConfig
      do {
        experiment = try ExperimentConfig.load(
          path: entry.path, overrides: config.overrides + entry.overrides + overrides)
      } catch {
        throw ConfigError(
          entry.location == entry.path ? "\(error)" : "\(entry.location): experiment \(entry.path): \(error)")
      }
      if let twin = planned.first(where: { $0.config.name == experiment.name }) {
        throw ConfigError(
          "\(entry.location): two experiments are named \"\(experiment.name)\" (\(twin.sourcePath) and \(entry.path)); give one another name with set: [name=...]"
        )
      }
      let folder = "\(experiment.name)-\(experiment.hash.prefix(8))"
      planned.append(
        Planned(
          config: experiment, sourcePath: entry.path,
          runDirectory: (config.directory as NSString).appendingPathComponent(folder)))
    }
    self.planned = planned
  }

  /// Asks the running pretraining (if any) to stop after its step, and the comparison
  /// to stop before the next one. Safe from any thread (a signal handler).
  public func requestStop() {
    lock.lock()
    stopFlag = true
    let run = current
    lock.unlock()
    run?.requestStop()
  }

  var stopRequested: Bool {
    lock.lock()
    defer { lock.unlock() }
    return stopFlag
  }

  /// Pretrains (or reuses) every run, then probes and projects each, then writes the
  /// report. Stops early, without probing, when a stop is requested.
  public func run(progress: @escaping (String) -> Void = { _ in }) throws -> Outcome {
    try checkFolders()
    var outcome = Outcome(pretraining: [], probesRun: 0, probesReused: 0, stopped: false, report: nil, files: [])

    // 1. Pretraining.
    for (i, plan) in planned.enumerated() {
      let name = plan.config.name
      let tag = "[\(i + 1)/\(planned.count)] \(name)"
      let state = RunFolderState.of(plan.runDirectory, for: plan.config)
      let result: PretrainingOutcome
      switch state {
      case .otherConfig:
        throw ConfigError(
          "\(plan.runDirectory)/config.yaml is not the config of experiment \(name) (\(plan.sourcePath)); the folder is left as it is: move it away to train this config"
        )
      case .finished(let record):
        progress("\(tag): reusing the finished run \(plan.runDirectory) (\(record.steps) steps)")
        result = .reused(steps: record.steps)
      case .interrupted(let step, let total):
        progress("\(tag): resuming \(plan.runDirectory) at step \(step) of \(total)")
        result = try pretrain(plan, resume: true, from: step, progress: progress)
      case .empty:
        progress("\(tag): pretraining \(plan.config.taskName) → \(plan.runDirectory)")
        result = try pretrain(plan, resume: false, from: 0, progress: progress)
      }
      outcome.pretraining.append((name, result))
      if case .stopped = result {
        outcome.stopped = true
        return outcome
      }
      if stopRequested {
        outcome.stopped = true
        return outcome
      }
    }

    // 2. Probes and projections.
    let probeFiles = config.probe.budgets.map { "probe-\(CompareConfig.ProbeSection.fileStem($0)).json" }
    for (i, plan) in planned.enumerated() {
      let tag = "[\(i + 1)/\(planned.count)] \(plan.config.name)"
      let weights = plan.weights
      // `all` first: its features (the whole training folder) then serve every smaller
      // budget from the cache.
      let order = config.probe.budgets.filter { $0 == .all } + config.probe.budgets.filter { $0 != .all }
      var reports: [ProbeReport] = []
      for budget in order {
        var options = config.probe.options(weights: weights, runDirectory: plan.runDirectory, budget: budget)
        options.commandLine = commandLine
        if let reused = Probe.reusableReport(options) {
          progress("\(tag): reusing the probe with labels \(options.budgetText) (\(options.reportFileName))")
          outcome.probesReused += 1
          reports.append(reused)
          continue
        }
        progress("\(tag): probing with labels \(options.budgetText)")
        reports.append(try Probe.run(options, progress: { progress("  " + $0) }))
        outcome.probesRun += 1
      }
      if config.report.projection, let layerSource = reports.max(by: { $0.labels.used < $1.labels.used }) {
        try project(plan, layer: layerSource.backbone.layer, progress: { progress("\(tag): " + $0) })
      }
    }

    // 3. Fine-tuning, and training the same recipe from scratch.
    if let finetune = config.finetune {
      (outcome.finetunesRun, outcome.finetunesReused) = try finetuneRuns(finetune, progress: progress)
    }

    // 4. The report, from the run folders.
    let runs = try planned.map { plan in
      var record = try RunRecord.load(
        runDirectory: plan.runDirectory, probeFiles: probeFiles, projection: config.report.projection,
        name: plan.config.name)
      if let finetune = config.finetune {
        try record.loadFinetuning(finetune, scratchDirectory: { try self.scratchDirectory(weights: plan.weights, budget: $0) })
      }
      return record
    }
    let report = CompareReport(name: config.name, runs: runs, commandLine: CompareReport.shellCommand(commandLine))
    outcome.files = try report.write(to: config.directory)
    outcome.report = report
    return outcome
  }

  /// `--dry-run`: every check `run` makes before its first step (the probe's folders,
  /// each run folder, the data, memory, free disk), with a few measured steps per
  /// experiment to be trained; returns the plan. Nothing is written.
  public func dryRun(progress: @escaping (String) -> Void = { _ in }) throws -> String {
    try checkFolders()
    var lines: [String] = []
    for (i, plan) in planned.enumerated() {
      let tag = "[\(i + 1)/\(planned.count)] \(plan.config.name)"
      switch RunFolderState.of(plan.runDirectory, for: plan.config) {
      case .otherConfig:
        throw ConfigError(
          "\(plan.runDirectory)/config.yaml is not the config of experiment \(plan.config.name) (\(plan.sourcePath)); the folder is left as it is: move it away to train this config"
        )
      case .finished(let record):
        lines.append("\(tag): would reuse the finished run \(plan.runDirectory) (\(record.steps) steps)")
      case .interrupted(let step, let total):
        lines.append("\(tag): would resume \(plan.runDirectory) at step \(step) of \(total)")
      case .empty:
        progress("\(tag): checking \(plan.config.taskName) → \(plan.runDirectory)")
        let run = try PretrainingRun(
          experiment: plan.config, sourcePath: plan.sourcePath, runDirectory: plan.runDirectory, dryRun: true,
          progress: progress)
        let secondsPerStep = try run.trainer.measureSecondsPerStep()
        lines.append("\(tag): would pretrain \(plan.config.taskName); " + run.planText(secondsPerStep: secondsPerStep))
      }
    }
    let budgets = config.probe.budgets.map { CompareConfig.ProbeSection.fileStem($0) }.joined(separator: ", ")
    lines.append("then: probes with labels \(budgets) on \(config.probe.train) and \(config.probe.test)")
    if let finetune = config.finetune {
      let budgets = finetune.budgets.map { CompareConfig.ProbeSection.fileStem($0) }.joined(separator: ", ")
      lines.append(
        "then: fine-tuning with labels \(budgets) on \(finetune.train ?? config.probe.train) and \(finetune.test ?? config.probe.test)"
          + (finetune.fromScratch ? ", and the same from random init" : ""))
    }
    lines.append("then: the report in \(config.directory)")
    return lines.joined(separator: "\n")
  }

  /// Fails before any training when the probe's (or fine-tuning's) folders are missing.
  func checkFolders() throws {
    var folders = [("probe.train", config.probe.train), ("probe.test", config.probe.test)]
    if let train = config.finetune?.train { folders.append(("finetune.train", train)) }
    if let test = config.finetune?.test { folders.append(("finetune.test", test)) }
    for (key, path) in folders {
      var isDirectory: ObjCBool = false
      guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
        let origin = config.sourcePath.isEmpty ? "--set compare.\(key)" : "\(config.sourcePath): \(key)"
        throw ConfigError(
          "\(origin): no labeled folder at \(path) (for Fashion-MNIST: pretext data import fashion-mnist --out data/fashion-mnist)"
        )
      }
    }
  }

  func pretrain(_ plan: Planned, resume: Bool, from step: Int, progress: @escaping (String) -> Void) throws
    -> PretrainingOutcome
  {
    let run = try PretrainingRun(
      experiment: plan.config, sourcePath: plan.sourcePath, runDirectory: plan.runDirectory, progress: progress)
    lock.lock()
    current = run
    let stopEarly = stopFlag
    lock.unlock()
    defer {
      lock.lock()
      current = nil
      lock.unlock()
    }
    if stopEarly { run.requestStop() }
    let backbone = run.trainer.backbone
    progress(
      "  \(backbone.config.name) (\(backbone.parameterCount) parameters), \(run.trainer.task.name), \(run.images.count) images"
    )
    let summary = try run.run(resume: resume)
    if summary.steps < summary.totalSteps { return .stopped(atStep: summary.steps, of: summary.totalSteps) }
    progress(String(format: "  done: %ld steps, %.0f s of training in all", summary.steps, summary.seconds))
    return resume ? .resumed(fromStep: step, steps: summary.steps) : .trained(steps: summary.steps)
  }

  /// Writes the run's projection.json (a PCA of its test features at `layer`, and a
  /// t-SNE map) and its retrieval grid (retrieval.json, retrieval.png: Retrieval.swift),
  /// unless the files were made from the same features and settings (the t-SNE takes
  /// seconds).
  func project(_ plan: Planned, layer: String, progress: (String) -> Void) throws {
    let features = try Probe.folderFeatures(
      weights: PretrainingRun.backbonePath(in: plan.runDirectory), folder: config.probe.test, layer: layer,
      runDirectory: plan.runDirectory, batchSize: config.probe.extractionBatchSize, progress: progress)
    // What the files are made from: the features (their bytes) and the report settings.
    var identity = FNV1a()
    identity.update(UnsafeRawBufferPointer(start: features.values.data, count: 4 * features.values.count))
    identity.update("|\(layer)|\(config.probe.test)|\(config.report.projectionPointsPerClass)|\(config.report.tsne)")
    if let existing = readWholeFile(ProjectionFile.path(in: plan.runDirectory)),
      (try? JSONDecoder().decode(ProjectionFile.self, from: existing))?.source == identity.hex,
      FileManager.default.fileExists(atPath: RetrievalFile.path(in: plan.runDirectory)),
      FileManager.default.fileExists(atPath: RetrievalFile.picturePath(in: plan.runDirectory))
    {
      progress("reusing the projection and the retrieval grid (same features and settings)")
      return
    }
    var projection = try ProjectionFile.pca(
      features: features.values, labels: features.labels, classes: features.classes, layer: layer,
      folder: config.probe.test, perClass: config.report.projectionPointsPerClass, tsne: config.report.tsne)
    projection.source = identity.hex
    try writeAtomically(
      Array(try JSONEncoder.sortedKeys.encode(projection)) + [10], to: ProjectionFile.path(in: plan.runDirectory))
    progress(
      String(
        format: "projected %ld test images at %@ (PCA: %.1f%% + %.1f%% of the variance)", projection.images, layer,
        100 * projection.explainedVariance[0], 100 * projection.explainedVariance[1]))
    // The same features' nearest neighbours, for the report's retrieval grid.
    // Decoded at the grid's tile size: a folder of large photos costs a reduced decode.
    let folder = try LabeledImageFolder(
      path: config.probe.test, options: ImageFolderOptions(decode: ImageDecodeOptions(shorterSide: 48)))
    let retrieval = try RetrievalFile.nearest(
      features: features.values, labels: features.labels, classes: features.classes, folder: folder, layer: layer)
    try writeAtomically(PNG.encode(try retrieval.picture(folder: folder)), to: RetrievalFile.picturePath(in: plan.runDirectory))
    try writeAtomically(
      Array(try JSONEncoder.sortedKeys.encode(retrieval)) + [10], to: RetrievalFile.path(in: plan.runDirectory))
    progress(
      String(
        format: "nearest neighbours of %ld test images: %.0f%% of their %ld neighbours are of their class",
        retrieval.queries.count, 100 * retrieval.precision, retrieval.queries.first?.neighbours.count ?? 0))
  }
}
