import Autograd
import Foundation
import Support

// How a probe scores each model on its features: the depth chosen on the validation
// split, a linear classifier on all the labels at that depth scored on the test set, kNN
// on the same features; and how the independent fits of a phase share the threads.

/// The path every model (backbone, random init, raw pixels) goes through:
/// 1. the depth: a classifier per candidate depth on the training part of the validation
///    split, scored on the held-out part (best top-1 wins; ties: the later candidate, i.e. the deeper or the concatenation);
/// 2. a classifier on all training labels at that depth, scored on the test set;
/// 3. kNN on the same features.
/// The fits of a phase are independent; sgd/lars fits are single-threaded and run side by
/// side on Pretext's threads, lbfgs/ridge fits use multi-threaded BLAS and run in turn.
struct ProbeFits {
  /// The class of each training row (the labeled subset).
  let labels: [Int]
  /// The class of each test row, as an index of the training classes.
  let testLabels: [Int]
  let classes: Int
  /// Positions in `labels` (see `DepthChoice.split`); nil: no depth is chosen.
  let split: (train: [Int], validation: [Int])?
  let classifier: LinearProbeSettings
  /// nil: no kNN.
  let knn: KNNSettings?
  let seed: UInt64

  struct Fit {
    let classifier: LinearClassifier
    let seconds: Double
  }

  /// Each model's chosen depth, its validation score per candidate (empty when nothing
  /// competed) and the seconds its candidates' fits took.
  struct Depths {
    var chosen: [String]
    var scores: [[ModelResult.LayerScore]]
    var seconds: [Double]
  }

  /// Trains one classifier per job: the rows `rows` (nil: all) of `features`, with
  /// `labels` (one per row used). Rows are copied inside the job, so only the jobs
  /// running hold a copy.
  func fit(_ jobs: [(features: Tensor, rows: [Int]?, labels: [Int])]) throws -> [Fit] {
    let work = { (i: Int) throws -> Fit in
      let clock = Stopwatch()
      let x = jobs[i].rows.map { rows(jobs[i].features, $0) } ?? jobs[i].features
      let c = try LinearProbe.train(
        features: x, labels: jobs[i].labels, classes: classes, settings: classifier, seed: seed)
      return Fit(classifier: c, seconds: clock.seconds)
    }
    switch classifier.method {
    case .sgd, .lars:
      // Heaviest first, so the last job to start is a short one.
      let order = jobs.indices.sorted { jobs[$0].features.count > jobs[$1].features.count }
      let done = try runSideBySide(jobs.count) { try work(order[$0]) }
      var out = [Fit?](repeating: nil, count: jobs.count)
      for (k, i) in order.enumerated() { out[i] = done[k] }
      return out.map { $0! }
    case .lbfgs, .ridge:
      return try jobs.indices.map(work)
    }
  }

  /// Phase 1: the depth of each model, all models' candidates fitted together. Without a
  /// split, or with one candidate, a model keeps its last candidate.
  func chooseDepths(_ inputs: [ModelInput], progress: (String) -> Void) throws -> Depths {
    var depths = Depths(
      chosen: inputs.map { $0.candidates.last! }, scores: inputs.map { _ in [] }, seconds: inputs.map { _ in 0 })
    guard let split else { return depths }
    var jobs: [(model: Int, layer: LayerFeatures)] = []
    for (m, input) in inputs.enumerated() where input.candidates.count > 1 {
      for name in input.candidates {
        jobs.append((m, try input.features(name, test: false)))
      }
    }
    guard !jobs.isEmpty else { return depths }
    progress(
      "choosing depths: \(jobs.count) classifiers on \(split.train.count) labels, scored on \(split.validation.count)"
    )
    let trainLabels = split.train.map { labels[$0] }
    let validationLabels = split.validation.map { labels[$0] }
    let fits = try fit(jobs.map { ($0.layer.values, split.train, trainLabels) })
    var best = inputs.map { _ in -1.0 }
    for (job, fit) in zip(jobs, fits) {
      let accuracy = Accuracy.of(
        scores: try fit.classifier.scores(rows(job.layer.values, split.validation)), labels: validationLabels)
      depths.scores[job.model].append(.init(layer: job.layer.name, validationTop1: accuracy.top1))
      depths.seconds[job.model] += fit.seconds
      if accuracy.top1 >= best[job.model] {
        best[job.model] = accuracy.top1
        depths.chosen[job.model] = job.layer.name
      }
    }
    for (m, input) in inputs.enumerated() where !depths.scores[m].isEmpty {
      progress(
        "  \(input.model.label): "
          + depths.scores[m].map { String(format: "%@ %.2f%%", $0.layer, $0.validationTop1) }.joined(separator: ", ")
          + " → \(depths.chosen[m])")
    }
    return depths
  }

  /// Each model's result (no gains yet) and its classifier on all the labels, in
  /// `inputs` order.
  func run(_ inputs: [ModelInput], progress: (String) -> Void) throws -> (
    results: [ModelResult], classifiers: [LinearClassifier]
  ) {
    let depths = try chooseDepths(inputs, progress: progress)
    let chosen = depths.chosen

    // 2. The classifier on all labels at the chosen depth.
    var layers: [(train: LayerFeatures, test: LayerFeatures)] = []
    for (m, input) in inputs.enumerated() {
      layers.append((try input.features(chosen[m], test: false), try input.features(chosen[m], test: true)))
    }
    progress("training \(inputs.count) linear classifier(s) on \(labels.count) labels")
    let fits = try fit(layers.map { ($0.train.values, nil, labels) })

    // 3. Test accuracy, and kNN on the same features.
    var results: [ModelResult] = []
    for (m, input) in inputs.enumerated() {
      let linear = Accuracy.of(scores: try fits[m].classifier.scores(layers[m].test.values), labels: testLabels)
      let knnClock = Stopwatch()
      let knnAccuracy = try knn.map {
        try KNN.evaluate(
          memory: layers[m].train.values, memoryLabels: labels, queries: layers[m].test.values,
          queryLabels: testLabels, classes: classes, settings: $0)
      }
      let knnSeconds = knnClock.seconds
      let knnText = knnAccuracy.map { String(format: ", kNN top-1 %.2f%% (%.1f s)", $0.top1, knnSeconds) } ?? ""
      progress(
        String(
          format: "  %@ at %@: linear top-1 %.2f%% (%.1f s)%@", input.model.label, chosen[m], linear.top1,
          fits[m].seconds, knnText))
      results.append(
        ModelResult(
          model: input.model, description: input.description, layer: chosen[m],
          featureDimension: layers[m].train.dimension, layerScores: depths.scores[m], linear: linear,
          knn: knnAccuracy, linearSteps: fits[m].classifier.steps, linearFinalLoss: fits[m].classifier.finalLoss,
          gainOverRandomInit: nil, gainOverRawPixels: nil,
          seconds: .init(
            features: input.featureSeconds, featuresCached: input.cached, layerSelection: depths.seconds[m],
            linear: fits[m].seconds, knn: knnSeconds)))
    }
    return (results, fits.map(\.classifier))
  }
}

/// Runs `count` independent jobs on Pretext's threads, each taking the next job when it
/// is free; results in job order. Jobs must not call multi-threaded kernels.
///
/// Not `concurrentMap` (Support): that splits the jobs into fixed contiguous chunks,
/// whereas fits differ widely in cost, so each thread here takes the next job when done.
func runSideBySide<T>(_ count: Int, _ body: (Int) throws -> T) throws -> [T] {
  let results = UnsafeMutablePointer<T?>.allocate(capacity: count)
  results.initialize(repeating: nil, count: count)
  defer {
    results.deinitialize(count: count)
    results.deallocate()
  }
  let failure = FirstError()
  let next = JobCounter()
  Parallel.forChunks(min(count, Parallel.threads), minChunk: 1) { workers in
    for _ in workers {
      while failure.error == nil, let i = next.take(below: count) {
        do {
          results[i] = try body(i)
        } catch {
          failure.record(error)
        }
      }
    }
  }
  if let error = failure.error { throw error }
  return (0..<count).map { results[$0]! }
}

/// A shared job index.
final class JobCounter: @unchecked Sendable {
  private let lock = NSLock()
  private var value = 0
  func take(below limit: Int) -> Int? {
    lock.lock()
    defer { lock.unlock() }
    guard value < limit else { return nil }
    value += 1
    return value - 1
  }
}
