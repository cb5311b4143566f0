import Foundation

/// One logged training step (a line of `metrics.jsonl`).
public struct StepRecord: Codable, Sendable {
  public var step: Int
  public var epoch: Double
  public var loss: Double
  public var metrics: [String: Double]
  public var learningRate: Double
  public var imagesPerSecond: Double
  public var elapsedSeconds: Double
  /// The global L2 norm of the step's gradient (averaged over the processes, before
  /// clipping); absent from logs written before it was recorded.
  public var gradientNorm: Double?
  /// The share of wall time since the previous record that the step waited for the
  /// loader's batch (0: data never held training back); absent from older logs.
  public var dataWait: Double?

  enum CodingKeys: String, CodingKey {
    case step, epoch, loss, metrics, learningRate = "lr", imagesPerSecond = "images_per_second"
    case elapsedSeconds = "elapsed_seconds", gradientNorm = "grad_norm", dataWait = "data_wait"
  }
}

/// A rollback after a non-finite loss or gradient (a line of `metrics.jsonl`, told apart
/// from step records by its `event` key).
public struct RollbackEvent: Codable, Sendable {
  public var event = "nan_rollback"
  /// The step whose loss or gradient was not finite.
  public var step: Int
  /// The checkpoint step training went back to.
  public var restoredStep: Int
  public var reason: String
  /// The factor on the scheduled learning rate from now on.
  public var learningRateFactor: Double
  /// Which rollback this is, of `retries` allowed.
  public var rollback: Int
  public var retries: Int

  public init(step: Int, restoredStep: Int, reason: String, learningRateFactor: Double, rollback: Int, retries: Int) {
    self.step = step
    self.restoredStep = restoredStep
    self.reason = reason
    self.learningRateFactor = learningRateFactor
    self.rollback = rollback
    self.retries = retries
  }

  enum CodingKeys: String, CodingKey {
    case event, step, restoredStep = "restored_step", reason, learningRateFactor = "lr_factor", rollback, retries
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
  /// Seconds this session's steps waited for the loader, after its first batch (which
  /// also waits for the pipeline to start).
  public var dataWaitSeconds: Double

  enum CodingKeys: String, CodingKey {
    case steps, totalSteps = "total_steps", finalLoss = "final_loss", seconds, imagesPerSecond = "images_per_second"
    case backbonePath = "backbone_path", resumedFromStep = "resumed_from_step", skippedImages = "skipped_images"
    case dataWaitSeconds = "data_wait_seconds"
  }
}
