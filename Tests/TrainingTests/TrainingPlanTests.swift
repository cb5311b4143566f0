import Foundation
import Training
import XCTest

/// The budget arithmetic (TrainingPlan.swift): totals for every budget kind, at extreme
/// speeds and budgets, and a learning rate that follows the budget from the first step.
final class TrainingPlanTests: XCTestCase {
  func settings(steps: Int = 0, minutes: Double = 0, epochs: Double = 1, warmup: Double = 0.1) -> TrainerSettings {
    var s = TrainerSettings()
    s.batchSize = 256
    s.steps = steps
    s.minutes = minutes
    s.epochs = epochs
    s.baseLearningRate = 1
    s.warmupFraction = warmup
    return s
  }

  func testStepAndEpochBudgetsAreFixedWhateverTheSpeed() {
    let steps = TrainingPlan(settings: settings(steps: 7), stepsPerEpoch: 3)
    XCTAssertEqual(steps.budget, .steps(7))
    for perStep in [1e-12, 1, 1e9, 0, .nan] {
      XCTAssertEqual(steps.totalSteps(step: 3, elapsedSeconds: 1e6, secondsPerStep: perStep), 7)
    }
    // A 1-step epoch (a folder of one batch), and a fractional epoch count.
    XCTAssertEqual(TrainingPlan(settings: settings(epochs: 3), stepsPerEpoch: 1).budget, .steps(3))
    XCTAssertEqual(TrainingPlan(settings: settings(epochs: 0.5), stepsPerEpoch: 1).budget, .steps(1))
    XCTAssertEqual(TrainingPlan(settings: settings(epochs: 2.5), stepsPerEpoch: 4).budget, .steps(10))
    // Epochs too many to count are capped instead of trapping.
    XCTAssertEqual(
      TrainingPlan(settings: settings(epochs: 1e9), stepsPerEpoch: 1 << 40).budget, .steps(TrainingPlan.maximumSteps))
  }

  func testStepsComeBeforeMinutesAndMinutesBeforeEpochs() {
    XCTAssertEqual(TrainingPlan(settings: settings(steps: 5, minutes: 3, epochs: 9), stepsPerEpoch: 10).budget, .steps(5))
    XCTAssertEqual(
      TrainingPlan(settings: settings(minutes: 3, epochs: 9), stepsPerEpoch: 10).budget, .minutes(3))
  }

  func testMinutesBudgetAtExtremeSpeedsAndBudgets() {
    // 0.01 minutes (0.6 s) and a step of 100 s: the first step is the last.
    let short = TrainingPlan(settings: settings(minutes: 0.01), stepsPerEpoch: 1)
    XCTAssertEqual(short.initialTotal, 1)
    XCTAssertEqual(short.totalSteps(step: 1, elapsedSeconds: 100, secondsPerStep: 100), 1)
    XCTAssertEqual(short.secondsLeft(step: 1, totalSteps: 1, elapsedSeconds: 100, secondsPerStep: 100), 0)
    // The same budget at a very fast step: the steps that fit in the time left.
    XCTAssertEqual(short.totalSteps(step: 1, elapsedSeconds: 1e-4, secondsPerStep: 1e-4), 1 + 5999)
    // A huge budget at a step too fast for the clock to see: capped, no trap.
    let long = TrainingPlan(settings: settings(minutes: 1e7), stepsPerEpoch: 1)
    for perStep in [0, 1e-15, .nan] {
      XCTAssertEqual(long.totalSteps(step: 1, elapsedSeconds: 0, secondsPerStep: perStep), TrainingPlan.maximumSteps)
    }
    XCTAssertEqual(long.totalSteps(step: 10, elapsedSeconds: 5, secondsPerStep: 0.5), 10 + 1_199_999_990)
    // Time already spent (a resume after the end): no step beyond the one just taken.
    XCTAssertEqual(long.totalSteps(step: 4, elapsedSeconds: 7e8, secondsPerStep: 1), 4)
    XCTAssertEqual(long.describeTotal(12), "~12")
    XCTAssertEqual(TrainingPlan(settings: settings(steps: 12), stepsPerEpoch: 1).describeTotal(12), "12")
  }

  /// Simulates a minutes budget step by step, the way the trainer plans it: the rate of
  /// step k comes from the total planned once its gradients are computed.
  func simulate(_ plan: TrainingPlan, stepTimes: (Int) -> Double) -> (rates: [Double], elapsed: [Double]) {
    var step = 0, total = plan.initialTotal, elapsed = 0.0
    var rates: [Double] = [], times: [Double] = []
    while step < total {
      elapsed += stepTimes(step)
      total = plan.totalSteps(step: step + 1, elapsedSeconds: elapsed, secondsPerStep: elapsed / Double(step + 1))
      rates.append(plan.schedule(totalSteps: total).rate(at: step))
      times.append(elapsed)
      step += 1
    }
    return (rates, times)
  }

  func testMinutesScheduleWarmsUpFromTheFirstStepAndAnnealsAtTheEnd() throws {
    let plan = TrainingPlan(settings: settings(minutes: 1, warmup: 0.1), stepsPerEpoch: 1)
    let (rates, elapsed) = simulate(plan) { _ in 0.25 }
    XCTAssertEqual(rates.count, 240)  // 60 s at 0.25 s a step
    XCTAssertEqual(elapsed.last!, 60)
    // Warmup over the first 10% (24 steps), rising from the first step.
    XCTAssertEqual(rates[0], 1.0 / 24, accuracy: 1e-12)
    for k in 1..<24 { XCTAssertGreaterThan(rates[k], rates[k - 1], "step \(k + 1)") }
    XCTAssertEqual(rates[23], 1, accuracy: 1e-12)
    for k in 25..<240 { XCTAssertLessThan(rates[k], rates[k - 1], "step \(k + 1)") }
    XCTAssertLessThan(rates.last!, 1e-3)
  }

  /// Uneven step times (a slow first step, then alternating fast and slow ones): the plan
  /// changes at every step, and the rate still changes smoothly. It follows the fraction
  /// of the budget spent: each step moves that fraction by at most (its own time + the
  /// error of the plan's mean-speed estimate, under two mean step times) / budget, and the
  /// schedule's slope is at most 1/w in the warmup and π/(2(1 − w)) in the cosine.
  func testMinutesScheduleHasNoBreakWhenThePlanChanges() throws {
    let warmup = 0.1
    let plan = TrainingPlan(settings: settings(minutes: 1, warmup: warmup), stepsPerEpoch: 1)
    let times: (Int) -> Double = { $0 == 0 ? 2 : ($0 % 2 == 0 ? 0.1 : 0.4) }
    let (rates, elapsed) = simulate(plan, stepTimes: times)
    XCTAssertEqual(elapsed.last!, 60, accuracy: 0.4)  // ends within one step of the budget
    let slope = max(1 / warmup, Double.pi / (2 * (1 - warmup)))
    for k in 1..<rates.count {
      let meanStep = elapsed[k] / Double(k + 1)
      let bound = slope * (times(k) + 2 * max(meanStep, 0.4)) / 60
      XCTAssertLessThanOrEqual(abs(rates[k] - rates[k - 1]), bound, "step \(k + 1)")
    }
    // The first step's 2 s are 3.3% of the budget: a third of the warmup already.
    XCTAssertEqual(rates[0], (2.0 / 60) / warmup, accuracy: 0.02)
    XCTAssertLessThan(rates.last!, 1e-3)
  }

  func testFixedBudgetScheduleIsTheUsualWarmupAndCosine() {
    let plan = TrainingPlan(settings: settings(steps: 100, warmup: 0.05), stepsPerEpoch: 1)
    let schedule = plan.schedule(totalSteps: 100)
    XCTAssertEqual(schedule.rate(at: 0), 0.2, accuracy: 1e-12)
    XCTAssertEqual(schedule.rate(at: 4), 1, accuracy: 1e-12)
    XCTAssertEqual(schedule.rate(at: 5), 1, accuracy: 1e-12)
    XCTAssertEqual(schedule.rate(at: 52), 0.5 * (1 + cos(Double.pi * 47 / 95)), accuracy: 1e-12)
    // A fixed budget warms up for a whole number of steps, rounded down (30 × 0.05 = 1.5
    // gives 1): step 0 at the peak, the cosine from step 1.
    let rounded = TrainingPlan(settings: settings(steps: 30, warmup: 0.05), stepsPerEpoch: 1).schedule(totalSteps: 30)
    XCTAssertEqual(rounded.warmupSteps, 1)
    XCTAssertEqual(rounded.rate(at: 0), 1, accuracy: 1e-12)
    XCTAssertEqual(rounded.rate(at: 2), 0.5 * (1 + cos(Double.pi * 1 / 29)), accuracy: 1e-12)
    // A warmup shorter than one step: the first step is at the peak, never above it.
    let tiny = TrainingPlan(settings: settings(steps: 3, warmup: 0.05), stepsPerEpoch: 1).schedule(totalSteps: 3)
    XCTAssertEqual(tiny.rate(at: 0), 1, accuracy: 1e-12)
    // A minutes budget keeps the fraction: 0.05 × 30 = 1.5 steps.
    let timed = TrainingPlan(settings: settings(minutes: 1, warmup: 0.05), stepsPerEpoch: 1).schedule(totalSteps: 30)
    XCTAssertEqual(timed.rate(at: 0), 1 / 1.5, accuracy: 1e-12)
  }

  func testSettingsRefuseBudgetsBeyondAnyRun() {
    for (key, value) in [("minutes", 1e30), ("epochs", 1e30)] {
      var s = settings()
      if key == "minutes" { s.minutes = value } else { s.epochs = value }
      XCTAssertThrowsError(try s.validate()) { XCTAssertTrue("\($0)".contains("train.\(key) must be in [0, "), "\($0)") }
    }
  }
}
