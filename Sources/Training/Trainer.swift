import Autograd
import Backbones
import Foundation
import Synchronization
import NN
import Tasks
import Vision

/// One logged training step (a line of `metrics.jsonl`).
public struct StepRecord: Codable, Sendable {
  public var step: Int
  public var epoch: Double
  public var loss: Double
  public var metrics: [String: Double]
  public var learningRate: Double
  public var imagesPerSecond: Double
  public var elapsedSeconds: Double

  enum CodingKeys: String, CodingKey {
    case step, epoch, loss, metrics, learningRate = "lr", imagesPerSecond = "images_per_second"
    case elapsedSeconds = "elapsed_seconds"
  }
}

/// What a finished (or stopped) run reports.
public struct TrainingSummary: Codable, Sendable {
  public var steps: Int
  public var totalSteps: Int
  public var finalLoss: Double
  public var seconds: Double
  public var imagesPerSecond: Double
  public var backbonePath: String
  public var resumedFromStep: Int?
  public var skippedImages: Int

  enum CodingKeys: String, CodingKey {
    case steps, totalSteps = "total_steps", finalLoss = "final_loss", seconds, imagesPerSecond = "images_per_second"
    case backbonePath = "backbone_path", resumedFromStep = "resumed_from_step", skippedImages = "skipped_images"
  }
}

/// The generic training loop: it asks the task for samples and losses and knows nothing
/// else about it. It owns the optimizer, the learning-rate schedule, logging,
/// checkpoints (full state for `resume`, and the backbone alone for the probe and for
/// PyTorch) and the task's periodic pictures.
public final class Trainer: @unchecked Sendable {
  public let task: any PretextTask
  public let backbone: any Backbone
  public let source: any ImageSource
  public let settings: TrainerSettings
  public let runDirectory: String
  /// Called with each progress line (already formatted). By default: on a terminal, one
  /// line updated in place; otherwise plain log lines.
  public var onProgress: (String) -> Void = Trainer.defaultProgress

  static let defaultProgress: @Sendable (String) -> Void = {
    let live = isatty(STDERR_FILENO) == 1
    let isStep = $0.hasPrefix("step ")
    let text = live && isStep ? "\r\u{1B}[K" + $0 : (live ? "\n" : "") + $0 + "\n"
    FileHandle.standardError.write(Data(text.utf8))
  }
  /// Set to stop after the current step (e.g. from a signal handler, on another thread).
  public var stopRequested: Bool {
    get { stopFlag.load(ordering: .relaxed) }
    set { stopFlag.store(newValue, ordering: .relaxed) }
  }
  private let stopFlag = Atomic<Bool>(false)

  let model = Module()
  let parameters: [OptimizedParameter]
  let optimizer: any Optimizer
  /// The exponential moving average of the backbone's weights (when `ema_decay` > 0).
  let average: WeightAverage?

  public init(
    task: any PretextTask, backbone: any Backbone, source: any ImageSource, settings: TrainerSettings, runDirectory: String
  ) throws {
    try settings.validate()
    self.task = task
    self.backbone = backbone
    self.source = source
    self.settings = settings
    self.runDirectory = runDirectory
    // One tree for names: backbone.* and heads.* (checkpoint and optimizer-state keys).
    model.register(child: "backbone", backbone)
    model.register(child: "heads", task.heads)
    parameters = model.optimizedParameters()
    average = settings.emaDecay > 0 ? WeightAverage(backbone, decay: settings.emaDecay) : nil
    switch settings.optimizer {
    case "sgd": optimizer = SGD(parameters, momentum: settings.momentum, weightDecay: settings.weightDecay)
    case "lars": optimizer = LARS(parameters, momentum: settings.momentum, weightDecay: settings.weightDecay)
    default:
      optimizer = AdamW(
        parameters, beta1: settings.betas[0], beta2: settings.betas[1], weightDecay: settings.weightDecay)
    }
  }

  var stepsPerEpoch: Int { max(1, source.count / settings.batchSize) }

  /// Steps of the budget (for a minutes budget: an estimate fixed after measuring speed).
  func plannedSteps() -> Int {
    if settings.steps > 0 { return settings.steps }
    return max(1, Int((settings.epochs * Double(stepsPerEpoch)).rounded()))
  }

  public var backbonePath: String { (runDirectory as NSString).appendingPathComponent("backbone.safetensors") }
  /// The averaged backbone (with `ema_decay`), beside `backbone.safetensors`.
  public var averagePath: String { (runDirectory as NSString).appendingPathComponent("backbone-ema.safetensors") }

  /// A full checkpoint (for `resume`) and the backbone files (for the probe and PyTorch).
  func saveCheckpoint(_ state: CheckpointState) throws {
    try Checkpoints.save(
      model: model, optimizer: optimizer, average: average, state: state, backbone: backbone, in: runDirectory,
      keep: settings.keepCheckpoints)
    try saveBackbone()
  }

  /// Writes the backbone (and its average) for the probe and for PyTorch.
  func saveBackbone() throws {
    try BackboneWeights.save(backbone, to: backbonePath, input: task.inputNormalization)
    if let average {
      let metadata = try BackboneWeights.metadata(config: backbone.config, input: task.inputNormalization)
      try SafeTensors(tensors: average.shadows, metadata: metadata).write(to: averagePath)
    }
  }

  /// Trains until the budget is spent (or `stopRequested`), resuming from the newest
  /// checkpoint in the run folder when `resume` is set.
  public func run(resume: Bool) throws -> TrainingSummary {
    try FileManager.default.createDirectory(atPath: runDirectory, withIntermediateDirectories: true)
    try checkWritable()
    // Temporary files of writes cut short by a crash or a kill (the files they were
    // replacing are intact: writes are atomic).
    for name in (try? FileManager.default.contentsOfDirectory(atPath: runDirectory)) ?? []
    where name.hasPrefix(".") && name.contains(".tmp-") {
      try? FileManager.default.removeItem(atPath: (runDirectory as NSString).appendingPathComponent(name))
    }
    var state = CheckpointState(step: 0, totalSteps: plannedSteps(), position: LoaderPosition(), elapsedSeconds: 0)
    var resumedFrom: Int? = nil
    if resume {
      guard let latest = try Checkpoints.latest(in: runDirectory) else {
        throw TrainingError("--resume: no checkpoint in \(runDirectory) (start without --resume)")
      }
      state = try Checkpoints.load(latest, model: model, optimizer: optimizer, average: average)
      resumedFrom = state.step
      onProgress("resuming from \(latest) at step \(state.step) of \(state.totalSteps)")
    }
    if settings.minutes > 0 && resumedFrom == nil { state.totalSteps = Int.max }  // set after measuring
    let loader = try DataLoader<TaskSample, TaskBatch>(
      source: source,
      options: LoaderOptions(batchSize: settings.batchSize, seed: settings.seed),
      startingAt: state.position,
      prepare: { [task] image, rng in try task.sample(image, using: &rng) },
      collate: { try TaskBatch.collate($0) })
    defer { loader.stop() }
    model.train()
    let lr = CosineSchedule.scaledLearningRate(base: settings.baseLearningRate, batchSize: settings.batchSize)
    let metricsURL = URL(fileURLWithPath: (runDirectory as NSString).appendingPathComponent("metrics.jsonl"))
    if let resumedFrom { try truncateMetrics(metricsURL, after: resumedFrom) }
    let metricsFile = try openAppending(metricsURL, truncate: resumedFrom == nil)
    defer { try? metricsFile.close() }
    let start = Date()
    let elapsedBefore = state.elapsedSeconds
    var imagesSinceLog = 0
    var lastLog = Date()
    var lastLoss = Double.nan
    var imagesTotal = 0
    var lastBatch: TaskBatch? = nil
    while state.step < state.totalSteps && !stopRequested {
      let (position, batch) = try loader.next()
      let stepsThisProcess = state.step - (resumedFrom ?? 0)
      if settings.minutes > 0 && stepsThisProcess >= 10 {
        // Stretch the schedule over the budget at the speed measured so far, re-planned
        // at every step: the speed changes (warm-up, other processes) and the budget is
        // wall-clock time. The cosine horizon moves a little each time and the run ends
        // on time, with the learning rate annealed.
        let elapsed = Date().timeIntervalSince(start)
        let perStep = elapsed / Double(stepsThisProcess)
        let remaining = settings.minutes * 60 - elapsedBefore - elapsed
        state.totalSteps = state.step + max(1, Int(remaining / perStep))
      }
      // Until a minutes budget has been converted into steps, plan with the epochs.
      let horizon = state.totalSteps == Int.max ? plannedSteps() : state.totalSteps
      let schedule = CosineSchedule(
        peak: lr, minimum: settings.minimumLearningRate, warmupSteps: Int(settings.warmupFraction * Double(horizon)),
        totalSteps: horizon)
      let rate = schedule.rate(at: state.step)
      let output = try task.loss(batch, backbone: backbone)
      let loss = Double(try output.loss.item())
      guard loss.isFinite else {
        throw TrainingError("step \(state.step): the loss is \(loss); the last checkpoint in \(runDirectory) is kept (lower base_lr or enable clip_grad_norm)")
      }
      model.zeroGrad()
      try output.loss.backward()
      if let bad = firstNonFinite(parameters.compactMap { p in p.tensor.grad.map { (p.name, $0) } }) {
        throw TrainingError("step \(state.step): the gradient of \(bad.name) has \(bad.report); the last checkpoint is kept")
      }
      if settings.clipGradientNorm > 0 { clipGradientNorm(parameters, maxNorm: settings.clipGradientNorm) }
      optimizer.step(lr: Float(rate))
      average?.update()
      state.step += 1
      state.position = LoaderPosition(epoch: position.epoch, batch: position.batch + 1)
      if state.position.batch >= loader.batchesPerEpoch { state.position = LoaderPosition(epoch: position.epoch + 1) }
      lastLoss = loss
      lastBatch = batch
      imagesSinceLog += batch.imageCount
      imagesTotal += batch.imageCount
      let elapsed = elapsedBefore + Date().timeIntervalSince(start)
      if state.step % settings.logEvery == 0 || state.step == state.totalSteps {
        let speed = Double(imagesSinceLog) / max(1e-9, Date().timeIntervalSince(lastLog))
        let record = StepRecord(
          step: state.step, epoch: Double(state.step) / Double(stepsPerEpoch), loss: loss,
          metrics: Dictionary(output.metrics.map { ($0.name, $0.value) }, uniquingKeysWith: { a, _ in a }),
          learningRate: rate, imagesPerSecond: speed, elapsedSeconds: elapsed)
        try metricsFile.write(contentsOf: JSONEncoder.compact.encode(record) + Data("\n".utf8))
        onProgress(progressLine(record, total: state.totalSteps))
        imagesSinceLog = 0
        lastLog = Date()
      }
      if state.step % settings.checkpointEvery == 0 && state.step < state.totalSteps {
        state.elapsedSeconds = elapsed
        try saveCheckpoint(state)
      }
      if settings.artifactsEvery > 0 && state.step % settings.artifactsEvery == 0 {
        _ = try task.writeArtifacts(batch, backbone: backbone, directory: runDirectory, step: state.step)
      }
    }
    state.elapsedSeconds = elapsedBefore + Date().timeIntervalSince(start)
    try saveCheckpoint(state)
    if let lastBatch {
      _ = try task.writeArtifacts(lastBatch, backbone: backbone, directory: runDirectory, step: state.step)
    }
    let seconds = Date().timeIntervalSince(start)
    return TrainingSummary(
      steps: state.step, totalSteps: state.totalSteps, finalLoss: lastLoss, seconds: state.elapsedSeconds,
      imagesPerSecond: Double(imagesTotal) / max(seconds, 1e-9), backbonePath: backbonePath,
      resumedFromStep: resumedFrom, skippedImages: loader.skipped.count)
  }

  /// Fails early (before any training) when the run folder cannot be written.
  func checkWritable() throws {
    let probe = (runDirectory as NSString).appendingPathComponent(".write-test-\(getpid())")
    guard FileManager.default.createFile(atPath: probe, contents: Data("ok".utf8)) else {
      throw TrainingError("cannot write to the run folder \(runDirectory) (permissions or a full disk?)")
    }
    try? FileManager.default.removeItem(atPath: probe)
  }

  func progressLine(_ r: StepRecord, total: Int) -> String {
    let metrics = r.metrics.keys.sorted().map { String(format: "%@ %.3f", $0, r.metrics[$0]!) }.joined(separator: " | ")
    let remaining = Double(total - r.step) * r.elapsedSeconds / Double(max(r.step, 1))
    return String(
      format: "step %d/%d | epoch %.2f | loss %.4f%@ | lr %.2e | %.0f img/s | ETA %@",
      r.step, total, r.epoch, r.loss, metrics.isEmpty ? "" : " | " + metrics, r.learningRate, r.imagesPerSecond,
      formatDuration(remaining))
  }
}

func formatDuration(_ s: Double) -> String {
  guard s.isFinite, s >= 0 else { return "?" }
  let t = Int(s)
  return t >= 3600 ? "\(t / 3600)h\(t % 3600 / 60)m" : t >= 60 ? "\(t / 60)m\(t % 60)s" : "\(t)s"
}

/// Keeps the records of steps up to `step` (the checkpoint resumed from): steps logged
/// after it are run again, and a line cut short by a crash is dropped.
func truncateMetrics(_ url: URL, after step: Int) throws {
  guard let data = FileManager.default.contents(atPath: url.path) else { return }
  var kept: [Substring] = []
  for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
    guard let record = try? JSONDecoder().decode(StepRecord.self, from: Data(line.utf8)) else { continue }
    if record.step <= step { kept.append(line) }
  }
  let text = kept.map { $0 + "\n" }.joined()
  try writeAtomically(Array(text.utf8), to: url.path)
}

func openAppending(_ url: URL, truncate: Bool) throws -> FileHandle {
  if truncate || !FileManager.default.fileExists(atPath: url.path) {
    guard FileManager.default.createFile(atPath: url.path, contents: nil) else {
      throw TrainingError("cannot create \(url.path)")
    }
  }
  let h = try FileHandle(forWritingTo: url)
  try h.seekToEnd()
  return h
}

extension JSONEncoder {
  static var compact: JSONEncoder {
    let e = JSONEncoder()
    e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return e
  }
}
