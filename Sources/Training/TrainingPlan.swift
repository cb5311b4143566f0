import Autograd
import Optimization
import Foundation

/// A run's budget (`train.steps`, `train.minutes` or `train.epochs`) as a number of
/// steps, and the learning-rate schedule over them.
///
/// Precedence: `steps` when set, else `minutes`, else `epochs` (as TrainerSettings says).
/// Steps and epochs fix the total before the first step.
///
/// A minutes budget is wall-clock time, spent on any machine: a machine twice as fast
/// takes twice the steps. After every step (its gradients computed, before the optimizer
/// uses the rate) the total is planned anew from the time left and the mean step time so
/// far, so a plan exists from the first step on. At the mean speed, steps taken / planned
/// total = time spent / budget, so the schedule follows the fraction of the budget spent:
/// the warmup starts at the first step, the rate does not jump when the plan changes, and
/// it is annealed when the time is up. Its warmup length is fractional for that reason
/// (`warmup_fraction` × the planned total, not rounded); a fixed budget's is the usual
/// whole number of steps (rounded down).
public struct TrainingPlan: Sendable, Equatable {
  public enum Budget: Sendable, Equatable {
    case steps(Int)
    case minutes(Double)
  }

  public let budget: Budget
  /// The peak and the final rate, after the linear scaling rule.
  public let peakLearningRate: Double
  public let minimumLearningRate: Double
  public let warmupFraction: Double

  /// The most steps a plan counts; beyond it, "unbounded" for any run a machine can take
  /// (2^40 steps at a microsecond each are 12 days), and far from Int overflow.
  public static let maximumSteps = 1 << 40

  public init(settings: TrainerSettings, stepsPerEpoch: Int) {
    if settings.steps > 0 {
      budget = .steps(settings.steps)
    } else if settings.minutes > 0 {
      budget = .minutes(settings.minutes)
    } else {
      let steps = (settings.epochs * Double(max(1, stepsPerEpoch))).rounded()
      budget = .steps(min(Self.maximumSteps, max(1, Int(saturating: steps))))
    }
    // Both rates are given for a batch of 256 and scaled alike, so that the floor stays
    // below the peak (TrainerSettings checks min_lr ≤ base_lr) at any batch size.
    peakLearningRate = CosineSchedule.scaledLearningRate(base: settings.baseLearningRate, batchSize: settings.batchSize)
    minimumLearningRate = CosineSchedule.scaledLearningRate(
      base: settings.minimumLearningRate, batchSize: settings.batchSize)
    warmupFraction = settings.warmupFraction
  }

  /// The total before any step is taken: the budget, or for minutes 1 (at least one step
  /// runs; the plan follows from its time).
  public var initialTotal: Int {
    switch budget {
    case .steps(let n): n
    case .minutes: 1
    }
  }

  public var isTimed: Bool { if case .minutes = budget { true } else { false } }

  /// The budget in seconds (nil for a step budget).
  public var seconds: Double? {
    if case .minutes(let m) = budget { m * 60 } else { nil }
  }

  /// The planned total once `step` steps are done (the one just computed included).
  /// - `elapsedSeconds`: the run's training time so far, over every resume;
  /// - `secondsPerStep`: the mean time of a step in this process so far (> 0).
  /// A step budget plans the budget. A minutes budget plans `step` + the whole steps the
  /// time left allows (0 when it is spent: the step just computed is the last).
  public func totalSteps(step: Int, elapsedSeconds: Double, secondsPerStep: Double) -> Int {
    guard let budget = seconds else { return initialTotal }
    let left = budget - elapsedSeconds
    guard left > 0 else { return step }
    // A step time of 0 (a clock too coarse to see it) or a non-number plans no further
    // than the cap.
    let more = secondsPerStep > 0 ? (left / secondsPerStep).rounded(.down) : .infinity
    return min(Self.maximumSteps, step + Int(saturating: min(Double(Self.maximumSteps), max(0, more))))
  }

  /// The schedule for a planned total.
  public func schedule(totalSteps: Int) -> CosineSchedule {
    let warmup = warmupFraction * Double(totalSteps)
    return CosineSchedule(
      peak: peakLearningRate, minimum: minimumLearningRate, warmupSteps: isTimed ? warmup : warmup.rounded(.down),
      totalSteps: totalSteps)
  }

  /// Seconds until the end: for a minutes budget the time left of it, for a step budget
  /// the steps left at the mean step time so far.
  public func secondsLeft(step: Int, totalSteps: Int, elapsedSeconds: Double, secondsPerStep: Double) -> Double {
    if let budget = seconds { return max(0, budget - elapsedSeconds) }
    return Double(max(0, totalSteps - step)) * secondsPerStep
  }

  /// `120` for a fixed total, `~120` for a minutes budget's estimate.
  public func describeTotal(_ totalSteps: Int) -> String { isTimed ? "~\(totalSteps)" : "\(totalSteps)" }
}

/// Monotonic seconds since an arbitrary start (not wall-clock time: immune to clock
/// changes), the trainer's default clock.
public func monotonicSeconds() -> Double {
  Double(DispatchTime.now().uptimeNanoseconds) / 1e9
}
