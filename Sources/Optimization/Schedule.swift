import Foundation

/// Learning rate over training: linear warmup from 0 to the peak, then cosine decay to
/// `minimum` (Loshchilov & Hutter 2017; the schedule of MAE, SimCLR, DINO).
public struct CosineSchedule: Sendable, Equatable, Codable {
  public var peak: Double
  public var minimum: Double
  /// Fractional for a plan that is an estimate (a minutes budget, TrainingPlan.swift).
  public var warmupSteps: Double
  public var totalSteps: Int

  public init(peak: Double, minimum: Double = 0, warmupSteps: Double, totalSteps: Int) {
    self.peak = peak
    self.minimum = minimum
    self.warmupSteps = warmupSteps
    self.totalSteps = totalSteps
  }

  /// The linear scaling rule (Goyal et al. 2017): lr = base_lr × batch / 256.
  public static func scaledLearningRate(base: Double, batchSize: Int) -> Double {
    base * Double(batchSize) / 256
  }

  /// The rate for step `step` (0-based).
  public func rate(at step: Int) -> Double {
    let step = Double(step)
    if step < warmupSteps { return peak * min(1, (step + 1) / warmupSteps) }
    let span = max(1, Double(totalSteps) - warmupSteps)
    let progress = min(1, (step - warmupSteps) / span)
    return minimum + (peak - minimum) * 0.5 * (1 + cos(Double.pi * progress))
  }
}
