import Autograd
import Backbones
import Foundation
import NN
import Evaluation
import Support
import Tasks
import Training
import Vision

/// One experiment pretrained in one run folder: what `pretext pretrain` and
/// `pretext compare` both do. Opening it reads the unlabeled folder, builds the backbone
/// and the task, and writes the resolved config as `config.yaml`; `run` trains (or
/// resumes) and, when the budget is spent, writes `pretrain.json`, the mark of a finished
/// run.
///
/// A run folder belongs to one resolved config: its `config.yaml`. Whether a folder can
/// be used for a config is `RunFolderState.of(_:for:)`'s answer.
public final class PretrainingRun: @unchecked Sendable {
  public let experiment: ExperimentConfig
  public let runDirectory: String
  public let trainer: Trainer
  public let images: ImageFolder
  /// The memory this run needs at its peak (checked against what is available).
  public let memory: MemoryPlan

  /// - Parameters:
  ///   - sourcePath: the config file, named in errors about the task section.
  ///   - runDirectory: where the run goes (default: the config's `output/name`).
  ///   - group: the processes of a data-parallel run (`mpirun`); only process 0 touches
  ///     the run folder.
  ///   - dryRun: check everything a run checks (the run folder and its free space
  ///     included) but write nothing (`--dry-run`).
  public init(
    experiment: ExperimentConfig, sourcePath: String, runDirectory: String? = nil,
    group: any Communicator = SingleProcess(), dryRun: Bool = false, progress: (String) -> Void = { _ in }
  ) throws {
    self.experiment = experiment
    let directory = runDirectory ?? experiment.runDirectory
    self.runDirectory = directory
    images = try experiment.openUnlabeledImages()
    if group.isLeader { progress(images.summary) }
    // Memory: a lower bound from the config before the first tensor, then the plan from
    // two measured steps before training.
    let limit = MemoryLimit.current()
    try experiment.checkMemoryFloor(against: limit, processes: group.size)
    var rng = RandomGenerator(seed: experiment.train.seed)
    let backbone = try experiment.makeBackbone(using: &rng)
    let task = try experiment.makeTask(backbone: backbone, using: &rng, sourcePath: sourcePath)
    // The cache is opened (and its file started) only once the config is known to be good,
    // and never by a dry run, which writes nothing.
    let source = experiment.data.cache && !dryRun ? Self.cached(images, group: group, progress: progress) : images
    let monitor = try experiment.makeMonitor(
      backbone: backbone, task: task, unlabeled: source, using: &rng, progress: group.isLeader ? progress : { _ in })
    trainer = try Trainer(
      task: task, backbone: backbone, source: source, settings: experiment.train, runDirectory: directory, group: group,
      monitor: monitor)
    memory = try trainer.memoryPlan()
    try memory.check(against: limit)
    if group.isLeader {
      progress("memory: about \(memory.summary) at the peak" + (limit.map { "; \($0.description)" } ?? ""))
    }
    // Everything that can be checked is checked before the run folder is touched.
    if group.isLeader {
      if dryRun {
        try trainer.checkRunFolderWithoutWriting()
      } else {
        try trainer.prepareRunFolder()
        try writeAtomically(Array(experiment.resolvedYAML.utf8), to: Self.configPath(in: directory))
      }
    }
  }

  /// `images` read through their decoded-image cache, or `images` itself when the cache
  /// cannot be used (said in a progress line, never an error: it only costs speed).
  /// Processes of a data-parallel run each decode only their share of an epoch, so they
  /// use a cache only when it is complete (`pretext data cache` builds it ahead).
  static func cached(_ images: ImageFolder, group: any Communicator, progress: (String) -> Void) -> any ImageSource {
    let cached: CachedImageFolder
    do {
      cached = try CachedImageFolder(folder: images, create: group.size == 1)
    } catch {
      if group.isLeader {
        progress(
          group.size == 1
            ? "decoded-image cache not used: \(error)"
            : "decoded-image cache not used: \(group.size) processes each decode a share of an epoch; build it "
              + "first with `pretext data cache \(images.list ?? images.root)`")
      }
      return images
    }
    let size = DecodedImageCache.sizeText(cached.cache.byteCount)
    let filling = cached.cache.isComplete ? "" : ", filled during the first epoch"
    if group.isLeader { progress("decoded-image cache: \(cached.cache.path) (\(size)\(filling))") }
    return cached
  }

  /// Asks the trainer to stop after its current step (thread-safe).
  public func requestStop() { trainer.stopRequested = true }

  /// Trains until the budget is spent or a stop is requested; with `resume`, from the
  /// newest checkpoint. A finished run gets `pretrain.json`.
  public func run(resume: Bool) throws -> TrainingSummary {
    let summary = try trainer.run(resume: resume)
    if trainer.group.isLeader && summary.steps >= summary.totalSteps {
      let record = PretrainingRecord(
        configHash: experiment.hash, steps: summary.steps, seconds: summary.seconds,
        finished: ISO8601DateFormatter().string(from: Date()), memory: memory,
        peakResidentBytes: residentBytes(peak: true).map(Double.init))
      try record.write(to: PretrainingRecord.path(in: runDirectory))
    }
    return summary
  }

  /// What `--dry-run` prints: the budget in steps and epochs, the memory, the files and
  /// the time at `secondsPerStep` (measured on this machine).
  public func planText(secondsPerStep: Double) -> String {
    let plan = trainer.plan
    let perEpoch = max(1, images.count / experiment.train.batchSize)
    let steps: Int
    let budget: String
    if plan.isTimed {
      steps = plan.totalSteps(step: 0, elapsedSeconds: 0, secondsPerStep: secondsPerStep)
      budget = "~\(steps) (train.minutes \(experiment.train.minutes) at this speed)"
    } else {
      steps = plan.initialTotal
      budget = "\(steps)"
    }
    let epochs = Double(steps) / Double(perEpoch)
    let sizes = trainer.fileSizes()
    let (checkpoint, backboneFiles) = (sizes.checkpoint, sizes.backboneFiles)
    let disk = sizes.wholeRun(keep: experiment.train.keepCheckpoints)
    let time = plan.seconds ?? Double(steps) * secondsPerStep
    return [
      "plan for \(runDirectory) (dry run: nothing was written)",
      "  steps:       \(budget), \(String(format: "%.2f", epochs)) epochs of \(perEpoch) steps (batch \(experiment.train.batchSize), \(images.count) images)",
      "  memory:      about \(memory.summary) at the peak",
      "  checkpoints: \(formatBytes(Double(checkpoint))) each, every \(experiment.train.checkpointEvery) steps (\(experiment.train.keepCheckpoints) kept), backbone files \(formatBytes(Double(backboneFiles))); up to \(formatBytes(Double(disk))) on disk",
      "  time:        about \(formatDuration(time)) at \(String(format: "%.3g", secondsPerStep)) s per step (measured over 2 steps)",
    ].joined(separator: "\n")
  }

  public static func configPath(in runDirectory: String) -> String { RunFolder(runDirectory).config }
  public static func backbonePath(in runDirectory: String) -> String { RunFolder(runDirectory).backbone }
}

/// The online probe and signals are what the trainer's monitor does.
extension OnlineEvaluation: TrainingMonitor {}

extension ExperimentConfig {
  /// The `eval` section's monitor (nil when the section is off); errors name the key's
  /// file and line.
  func makeMonitor(
    backbone: any Backbone, task: any PretextTask, unlabeled: any ImageSource, using rng: inout RandomGenerator,
    progress: (String) -> Void
  ) throws -> OnlineEvaluation? {
    guard eval.isActive else { return nil }
    do {
      return try OnlineEvaluation(
        eval, unlabeled: unlabeled, backbone: backbone.config, featureCount: backbone.featureCount,
        normalization: task.inputNormalization, using: &rng, progress: progress)
    } catch let e as EvaluationError where e.subject.hasPrefix("eval.") {
      // About the section's settings or its labeled folder (the unlabeled folder's own
      // errors pass through as they are).
      throw ConfigError("\(locator.locate(["eval", String(e.subject.dropFirst(5))], orSection: true)): \(e)")
    }
  }

  /// The `data.unlabeled` folder (or list), scanned, decoding as `data` says: what a run
  /// trains on and what `pretext data cache CONFIG` caches.
  public func openUnlabeledImages() throws -> ImageFolder {
    // The decode size follows the input size; a backbone section that does not resolve
    // fails later, with its own error.
    let inputSize = (try? backbone.config())?.imageSize ?? 0
    return try ImageFolder(
      path: data.unlabeled,
      options: ImageFolderOptions(
        strict: data.strict, decode: ImageDecodeOptions(shorterSide: data.decodeSize.shorterSide(imageSize: inputSize))))
  }
}

/// `pretrain.json`: written when a run has spent its budget, so that a later command
/// can use the run without opening its checkpoints.
public struct PretrainingRecord: Codable, Sendable, Equatable {
  /// `ExperimentConfig.hash` of the config trained.
  public var configHash: String
  public var steps: Int
  /// Training time over all sessions (resumed runs included), in seconds.
  public var seconds: Double
  /// ISO 8601 date of the end of training.
  public var finished: String
  /// The memory plan checked before training (of the last session), and the process's
  /// peak resident memory measured at the end (`VmHWM`); absent in older records.
  public var memory: MemoryPlan?
  public var peakResidentBytes: Double?

  enum CodingKeys: String, CodingKey {
    case configHash = "config_hash", steps, seconds, finished, memory, peakResidentBytes = "peak_resident_bytes"
  }

  public init(
    configHash: String, steps: Int, seconds: Double, finished: String, memory: MemoryPlan? = nil,
    peakResidentBytes: Double? = nil
  ) {
    self.configHash = configHash
    self.steps = steps
    self.seconds = seconds
    self.finished = finished
    self.memory = memory
    self.peakResidentBytes = peakResidentBytes
  }

  public static func path(in runDirectory: String) -> String { RunFolder(runDirectory).record }

  public static func read(from path: String) -> PretrainingRecord? {
    guard let data = readWholeFile(path) else { return nil }
    return try? JSONDecoder().decode(PretrainingRecord.self, from: data)
  }

  func write(to path: String) throws {
    try writeAtomically(Array(try JSONEncoder.sortedKeysPretty.encode(self)) + [10], to: path)
  }
}

/// What a run folder holds, for a given config.
public enum RunFolderState: Equatable, Sendable {
  /// Nothing trained yet (no folder, or no checkpoint): start from step 0.
  case empty
  /// Checkpoints of this config but not finished: resume from the newest.
  case interrupted(step: Int, totalSteps: Int)
  /// Finished for this config (`pretrain.json` with its hash, and the backbone file).
  case finished(PretrainingRecord)
  /// The folder's `config.yaml` is another config: the folder must not be used for it.
  case otherConfig

  public static func of(_ runDirectory: String, for experiment: ExperimentConfig) -> RunFolderState {
    let saved = try? String(contentsOfFile: PretrainingRun.configPath(in: runDirectory), encoding: .utf8)
    let checkpoints = Checkpoints.list(in: runDirectory)
    if let saved, saved != experiment.resolvedYAML { return .otherConfig }
    if let record = PretrainingRecord.read(from: PretrainingRecord.path(in: runDirectory)),
      record.configHash == experiment.hash,
      FileManager.default.fileExists(atPath: PretrainingRun.backbonePath(in: runDirectory))
    {
      // A checkpoint newer than the record means training went on after it (a run whose
      // record is stale): trust the checkpoints. Checkpoints may also have been deleted
      // to save space, which leaves a finished run.
      let newest = checkpoints.last.flatMap { try? Checkpoints.state(of: $0) }
      if newest == nil || newest!.step <= record.steps { return .finished(record) }
    }
    guard let newest = checkpoints.last else { return .empty }
    // A checkpoint without a readable state is left to the trainer's own error on resume.
    let state = try? Checkpoints.state(of: newest)
    return .interrupted(step: state?.step ?? 0, totalSteps: state?.totalSteps ?? 0)
  }

  /// Whether `pretrain` may start (or, with `resume`, continue) a run of `experiment` in
  /// `runDirectory`: a folder holding checkpoints is continued only with `--resume`, and
  /// only with the config that wrote them.
  public static func checkStart(_ runDirectory: String, for experiment: ExperimentConfig, resume: Bool) throws {
    let folder = RunFolder(runDirectory)
    let hasCheckpoints = !folder.checkpoints.isEmpty
    if !resume && hasCheckpoints {
      throw ConfigError(
        "\(runDirectory) already holds a run; add --resume to continue it, or choose another name (--set name=...)")
    }
    if resume && !hasCheckpoints {
      throw ConfigError("--resume: no checkpoint in \(runDirectory) (start without --resume)")
    }
    if resume, of(runDirectory, for: experiment) == .otherConfig {
      throw ConfigError("\(folder.config) differs from the config given; resume with the same config and --set values")
    }
  }
}
