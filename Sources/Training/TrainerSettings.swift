import Foundation
import Tasks

/// How to train: batch, budget, optimizer, schedule, checkpoints. Every field has a
/// default; a config section may set any subset.
public struct TrainerSettings: Codable, Sendable, Equatable {
  public var batchSize = 256
  /// The budget: one of steps, minutes or epochs is used, in that order of precedence
  /// (steps when positive, else minutes when positive, else epochs; a run that sets both
  /// steps and minutes says so). With minutes, the schedule is stretched to the step
  /// count the measured speed allows (TrainingPlan.swift).
  public var epochs: Double = 1
  public var steps: Int = 0
  public var minutes: Double = 0
  public var optimizer = "adamw"
  /// Learning rate for a batch of 256; scaled linearly with the batch size.
  public var baseLearningRate: Double = 1.5e-4
  /// Where the cosine ends, for a batch of 256 too (scaled like base_lr).
  public var minimumLearningRate: Double = 0
  /// Warmup as a fraction of the total steps.
  public var warmupFraction: Double = 0.05
  public var weightDecay: Float = 0.05
  public var momentum: Float = 0.9
  public var betas: [Float] = [0.9, 0.95]
  /// Global gradient-norm clipping; 0 turns it off.
  public var clipGradientNorm: Float = 0
  /// Decay of an exponential moving average of the weights saved beside them; 0 = off.
  public var emaDecay: Float = 0
  public var seed: UInt64 = 0
  public var logEvery = 10
  public var checkpointEvery = 200
  public var keepCheckpoints = 2
  /// Task pictures (MAE reconstructions) every N steps and at the end; 0 = only at the end.
  public var artifactsEvery = 200
  /// Automatic recovery from a NaN or infinite loss or gradient: up to this many times
  /// per run the trainer rolls back to the last checkpoint (kept in memory) and goes on
  /// with the learning rate multiplied by `nanLearningRateFactor`; 0 stops at the first
  /// non-finite value (the last checkpoint on disk is kept).
  public var nanRetries = 0
  /// The learning-rate multiplier applied at each rollback, for the rest of the run.
  public var nanLearningRateFactor: Double = 0.5
  /// Data-parallel runs (`mpirun`): BatchNorm statistics over the global batch (every
  /// process's slice) instead of each process's own slice. Off: per-process statistics,
  /// as PyTorch's DistributedDataParallel without SyncBatchNorm.
  public var syncBatchNorm = false

  public init() {}

  enum CodingKeys: String, CodingKey, CaseIterable {
    case batchSize = "batch_size", epochs, steps, minutes, optimizer
    case baseLearningRate = "base_lr", minimumLearningRate = "min_lr", warmupFraction = "warmup_fraction"
    case weightDecay = "weight_decay", momentum, betas, clipGradientNorm = "clip_grad_norm", emaDecay = "ema_decay"
    case seed, logEvery = "log_every", checkpointEvery = "checkpoint_every", keepCheckpoints = "keep_checkpoints"
    case artifactsEvery = "artifacts_every", nanRetries = "nan_retries", nanLearningRateFactor = "nan_lr_factor"
    case syncBatchNorm = "sync_batchnorm"
  }

  public init(from decoder: Decoder) throws {
    try decoder.rejectUnknownKeys(CodingKeys.self, allowing: [])
    let c = try decoder.container(keyedBy: CodingKeys.self)
    let d = TrainerSettings()
    batchSize = try c.value(.batchSize, or: d.batchSize)
    epochs = try c.value(.epochs, or: d.epochs)
    steps = try c.value(.steps, or: d.steps)
    minutes = try c.value(.minutes, or: d.minutes)
    optimizer = try c.value(.optimizer, or: d.optimizer)
    baseLearningRate = try c.value(.baseLearningRate, or: d.baseLearningRate)
    minimumLearningRate = try c.value(.minimumLearningRate, or: d.minimumLearningRate)
    warmupFraction = try c.value(.warmupFraction, or: d.warmupFraction)
    weightDecay = try c.value(.weightDecay, or: d.weightDecay)
    momentum = try c.value(.momentum, or: d.momentum)
    betas = try c.value(.betas, or: d.betas)
    clipGradientNorm = try c.value(.clipGradientNorm, or: d.clipGradientNorm)
    emaDecay = try c.value(.emaDecay, or: d.emaDecay)
    seed = try c.value(.seed, or: d.seed)
    logEvery = try c.value(.logEvery, or: d.logEvery)
    checkpointEvery = try c.value(.checkpointEvery, or: d.checkpointEvery)
    keepCheckpoints = try c.value(.keepCheckpoints, or: d.keepCheckpoints)
    artifactsEvery = try c.value(.artifactsEvery, or: d.artifactsEvery)
    nanRetries = try c.value(.nanRetries, or: d.nanRetries)
    nanLearningRateFactor = try c.value(.nanLearningRateFactor, or: d.nanLearningRateFactor)
    syncBatchNorm = try c.value(.syncBatchNorm, or: d.syncBatchNorm)
  }

  /// Checks ranges; the error names the key (`SettingError.key`, so that a config file
  /// can point at the line that sets it).
  public func validate() throws {
    func check(_ key: CodingKeys, _ ok: Bool, _ message: String) throws {
      if !ok { throw SettingError(key: key.rawValue, message: message) }
    }
    try check(.batchSize, batchSize >= 2, "batch_size must be at least 2, got \(batchSize)")
    // Far above a CPU batch; the memory check bounds what a run can hold.
    try check(.batchSize, batchSize <= 1 << 20, "batch_size must be at most 1048576, got \(batchSize)")
    try check(.steps, epochs > 0 || steps > 0 || minutes > 0, "one of epochs, steps or minutes must be positive")
    try check(.steps, steps >= 0, "steps cannot be negative, got \(steps)")
    try check(
      .steps, steps <= TrainingPlan.maximumSteps, "steps must be at most \(TrainingPlan.maximumSteps), got \(steps)")
    try check(.minutes, minutes >= 0, "minutes cannot be negative, got \(minutes)")
    // Upper bounds far beyond any run, so that planning arithmetic stays in range.
    try check(.minutes, minutes <= 525_960, "minutes must be at most 525960 (a year), got \(minutes)")
    try check(.epochs, epochs >= 0, "epochs cannot be negative, got \(epochs)")
    try check(.epochs, epochs <= 1e9, "epochs must be at most 1000000000, got \(epochs)")
    try check(
      .optimizer, ["adamw", "sgd", "lars"].contains(optimizer), "optimizer must be adamw, sgd or lars, got \"\(optimizer)\"")
    try check(
      .baseLearningRate, baseLearningRate > 0 && baseLearningRate <= 1e3,
      "base_lr must be in (0, 1000], got \(baseLearningRate)")
    try check(
      .minimumLearningRate, minimumLearningRate >= 0 && minimumLearningRate <= baseLearningRate,
      "min_lr must be in [0, base_lr], got \(minimumLearningRate)")
    try check(
      .warmupFraction, warmupFraction >= 0 && warmupFraction < 1, "warmup_fraction must be in [0, 1), got \(warmupFraction)")
    try check(.weightDecay, weightDecay >= 0 && weightDecay <= 1e3, "weight_decay must be in [0, 1000], got \(weightDecay)")
    try check(.momentum, momentum >= 0 && momentum < 1, "momentum must be in [0, 1), got \(momentum)")
    try check(
      .betas, betas.count == 2 && betas.allSatisfy { $0 >= 0 && $0 < 1 }, "betas must be two numbers in [0, 1), got \(betas)")
    try check(
      .clipGradientNorm, clipGradientNorm >= 0 && clipGradientNorm.isFinite,
      "clip_grad_norm must be 0 (off) or a positive number, got \(clipGradientNorm)")
    try check(.emaDecay, emaDecay >= 0 && emaDecay < 1, "ema_decay must be in [0, 1), got \(emaDecay)")
    try check(.logEvery, logEvery > 0, "log_every must be positive, got \(logEvery)")
    try check(.checkpointEvery, checkpointEvery > 0, "checkpoint_every must be positive, got \(checkpointEvery)")
    try check(.keepCheckpoints, keepCheckpoints > 0, "keep_checkpoints must be positive, got \(keepCheckpoints)")
    try check(
      .keepCheckpoints, keepCheckpoints <= 10_000, "keep_checkpoints must be at most 10000, got \(keepCheckpoints)")
    try check(.artifactsEvery, artifactsEvery >= 0, "artifacts_every cannot be negative, got \(artifactsEvery)")
    try check(.nanRetries, nanRetries >= 0 && nanRetries <= 1000, "nan_retries must be in [0, 1000], got \(nanRetries)")
    try check(
      .nanLearningRateFactor, nanLearningRateFactor > 0 && nanLearningRateFactor < 1,
      "nan_lr_factor must be in (0, 1), got \(nanLearningRateFactor)")
  }
}

/// An out-of-range training setting: `key` is its name in the config's `train` section.
public struct SettingError: Error, CustomStringConvertible, Sendable {
  public let key: String
  public let message: String
  public var description: String { "train.\(message)" }
}

public struct TrainingError: Error, CustomStringConvertible, Sendable {
  public let description: String
  public init(_ description: String) { self.description = description }
}
