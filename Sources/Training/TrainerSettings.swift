import Foundation
import Optimization
import Support
import Tasks

/// How to train: batch, budget, optimizer, schedule, checkpoints. Every field has a
/// default; a config section may set any subset.
public struct TrainerSettings: SettingsSchema, Equatable {
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

  public static let section = "train"
  public static let options: [SettingOption<TrainerSettings>] = [
    // Far above a CPU batch; the memory check bounds what a run can hold.
    .integer("batch_size", \.batchSize, in: 2...(1 << 20), "images per optimizer step (over all processes)"),
    // Upper bounds far beyond any run, so that planning arithmetic stays in range.
    .number("epochs", \.epochs, in: 0...1e9, "passes over the data (when steps and minutes are 0)"),
    .integer("steps", \.steps, in: 0...TrainingPlan.maximumSteps, "optimizer steps; takes precedence when positive"),
    .number("minutes", \.minutes, in: 0...525_960, "wall-clock budget (at most a year), when steps is 0"),
    .choice("optimizer", \.optimizer, OptimizerKind.allCases.map(\.rawValue), "the update rule"),
    .number("base_lr", \.baseLearningRate, in: 0...1e3, openBelow: true, "learning rate for a batch of 256 (scaled linearly)"),
    .number("min_lr", \.minimumLearningRate, in: 0...1e3, "where the cosine ends, for a batch of 256 (at most base_lr)"),
    .number("warmup_fraction", \.warmupFraction, in: 0...1, openAbove: true, "linear warmup, as a share of the steps"),
    .number("weight_decay", \.weightDecay, in: 0...1e3, "decoupled (AdamW) or L2 (SGD, LARS) weight decay"),
    .number("momentum", \.momentum, in: 0...1, openAbove: true, "SGD and LARS momentum"),
    .numbers("betas", \.betas, count: 2, in: 0...1, openAbove: true, "AdamW's β1, β2"),
    .number("clip_grad_norm", \.clipGradientNorm, in: 0...1e9, "global gradient-norm clipping; 0 turns it off"),
    .number("ema_decay", \.emaDecay, in: 0...1, openAbove: true, "an EMA of the weights saved beside them; 0 = off"),
    .value("seed", \.seed, accepts: "an integer ≥ 0", "seeds initialization, augmentation and data order"),
    .integer("log_every", \.logEvery, in: 1...1_000_000_000, "steps between lines of metrics.jsonl and the console"),
    .integer("checkpoint_every", \.checkpointEvery, in: 1...1_000_000_000, "steps between checkpoints"),
    .integer("keep_checkpoints", \.keepCheckpoints, in: 1...10_000, "checkpoints kept on disk (the newest)"),
    .integer("artifacts_every", \.artifactsEvery, in: 0...1_000_000_000, "steps between task pictures; 0 = only at the end"),
    .integer("nan_retries", \.nanRetries, in: 0...1000, "rollbacks after a non-finite loss before the run stops"),
    .number(
      "nan_lr_factor", \.nanLearningRateFactor, in: 0...1, openBelow: true, openAbove: true,
      "learning-rate multiplier at each rollback"),
    .flag("sync_batchnorm", \.syncBatchNorm, "BatchNorm statistics over the global batch under mpirun"),
  ]

  public func checkTogether() throws {
    if !(epochs > 0 || steps > 0 || minutes > 0) {
      throw Self.error("steps", "or epochs or minutes must be positive (one budget is needed)")
    }
    if minimumLearningRate > baseLearningRate {
      throw Self.error("min_lr", "must be in [0, base_lr], got \(minimumLearningRate) with base_lr \(baseLearningRate)")
    }
  }
}

public struct TrainingError: Error, CustomStringConvertible, Sendable {
  public let description: String
  public init(_ description: String) { self.description = description }
}
