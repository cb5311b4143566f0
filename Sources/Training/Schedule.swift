import Foundation

/// Learning rate over training: linear warmup from 0 to the peak, then cosine decay to
/// `minimum` (Loshchilov & Hutter 2017; the schedule of MAE, SimCLR, DINO).
public struct CosineSchedule: Sendable, Equatable, Codable {
  public var peak: Double
  public var minimum: Double
  public var warmupSteps: Int
  public var totalSteps: Int

  public init(peak: Double, minimum: Double = 0, warmupSteps: Int, totalSteps: Int) {
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
    if step < warmupSteps { return peak * Double(step + 1) / Double(warmupSteps) }
    let span = max(1, totalSteps - warmupSteps)
    let progress = min(1, Double(step - warmupSteps) / Double(span))
    return minimum + (peak - minimum) * 0.5 * (1 + cos(Double.pi * progress))
  }
}
