import Foundation
import Tasks

/// The figures of a training session: its time on the budget's clock, its mean step
/// time, its speed between log lines, and the time it waited for the loader.
///
/// The budget's clock (`Trainer.clock`, simulated in tests) is read once per pass; the
/// data wait is measured on the machine's own clock.
struct StepMeter {
  let start: Double
  /// Seconds of training before this session (a resumed run).
  let elapsedBefore: Double
  private(set) var now: Double
  /// Forward and backward passes run by this process (rolled-back ones included): the
  /// denominator of its mean step time.
  private(set) var passes = 0
  private var imagesSinceLog = 0
  private var imagesTotal = 0
  private var lastLog: Double
  private(set) var waitTotal = 0.0
  private var waitSinceLog = 0.0
  private var wallSinceLog = DispatchTime.now().uptimeNanoseconds

  init(start: Double, elapsedBefore: Double) {
    self.start = start
    self.elapsedBefore = elapsedBefore
    now = start
    lastLog = start
  }

  /// Seconds of training so far, this session and the earlier ones.
  var elapsed: Double { elapsedBefore + (now - start) }
  var secondsPerStep: Double { (now - start) / Double(max(1, passes)) }
  var imagesPerSecond: Double { Double(imagesTotal) / max(now - start, 1e-9) }

  /// Runs `next` (the loader's next batch), counting its time as data wait after the
  /// first pass (the first batch also waits for the pipeline to start).
  mutating func waitingForData<T>(_ next: () throws -> T) rethrows -> T {
    let waitStart = DispatchTime.now().uptimeNanoseconds
    let value = try next()
    if passes > 0 {
      let waited = Double(DispatchTime.now().uptimeNanoseconds - waitStart) / 1e9
      waitTotal += waited
      waitSinceLog += waited
    }
    return value
  }

  mutating func passDone(at time: Double) {
    passes += 1
    now = time
  }

  /// A step applied, with the images of its global batch.
  mutating func stepDone(images: Int) {
    imagesSinceLog += images
    imagesTotal += images
  }

  /// The log record of the step just done; the speed and the data wait are since the
  /// previous record.
  mutating func record(
    step: Int, epoch: Double, loss: Double, metrics: [(name: String, value: Double)], learningRate: Double,
    gradientNorm: Double
  ) -> StepRecord {
    let wall = Double(DispatchTime.now().uptimeNanoseconds - wallSinceLog) / 1e9
    let record = StepRecord(
      step: step, epoch: epoch, loss: loss,
      metrics: Dictionary(metrics.map { ($0.name, $0.value) }, uniquingKeysWith: { a, _ in a }),
      learningRate: learningRate, imagesPerSecond: Double(imagesSinceLog) / max(1e-9, now - lastLog),
      elapsedSeconds: elapsed, gradientNorm: gradientNorm, dataWait: waitSinceLog / max(1e-9, wall))
    imagesSinceLog = 0
    lastLog = now
    waitSinceLog = 0
    wallSinceLog = DispatchTime.now().uptimeNanoseconds
    return record
  }
}
