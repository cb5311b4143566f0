import Autograd
import Evaluation
import XCTest

/// Gaussian clusters around well-separated centres: class c's centre is 6 on axis c (and
/// 0 elsewhere), noise std 0.5 — linearly separable with a wide margin.
func clusters(perClass: Int, classes: Int, dimension: Int, seed: UInt64) -> (Tensor, [Int]) {
  var rng = RandomGenerator(seed: seed)
  let n = perClass * classes
  let x = Tensor.zeros([n, dimension])
  var labels: [Int] = []
  for i in 0..<n {
    let c = i % classes
    labels.append(c)
    for j in 0..<dimension { x.data[i * dimension + j] = (j == c ? 6 : 0) + 0.5 * rng.nextNormal() + 1 }
  }
  return (x, labels)
}

final class ClassifierTests: XCTestCase {
  let methods: [LinearProbeSettings.Method] = [.sgd, .lars, .lbfgs, .ridge]

  func testSeparableClustersAreClassifiedPerfectly() throws {
    let (train, trainLabels) = clusters(perClass: 60, classes: 5, dimension: 12, seed: 1)
    let (test, testLabels) = clusters(perClass: 40, classes: 5, dimension: 12, seed: 2)
    for method in methods {
      // LARS as MAE (batch 16384 → its lr 6.4, whatever the set's size); here one step
      // per epoch, so more of them.
      let fit = try LinearProbe.train(
        features: train, labels: trainLabels, classes: 5,
        settings: LinearProbeSettings(method: method, minimumSteps: method == .lars ? 500 : 200), seed: 0)
      let accuracy = Accuracy.of(scores: try fit.scores(test), labels: testLabels)
      XCTAssertGreaterThanOrEqual(accuracy.top1, 99, "\(method)")
      XCTAssertEqual(accuracy.top5, 100, "\(method)")
    }
    let knn = try KNN.evaluate(
      memory: train, memoryLabels: trainLabels, queries: test, queryLabels: testLabels, classes: 5,
      settings: KNNSettings())
    XCTAssertGreaterThanOrEqual(knn.top1, 99)
  }

  /// Labels shuffled independently of the features: nothing to learn, so the test
  /// accuracy must sit at chance (10% for 10 classes; top-5 50%), for the linear probe
  /// and kNN. The features are noise with no cluster structure, so chance is reached
  /// image by image rather than cluster by cluster (which would make the score jump in
  /// steps of a whole cluster).
  func testShuffledLabelsGiveChance() throws {
    let classes = 10
    var rng = RandomGenerator(seed: 3)
    let train = Tensor.randn([2000, 16], using: &rng)
    let test = Tensor.randn([2000, 16], using: &rng)
    let ordered = (0..<2000).map { $0 % classes }
    let shuffled = rng.permutation(2000).map { ordered[$0] }
    for method in [LinearProbeSettings.Method.sgd, .lbfgs, .ridge] {
      let fit = try LinearProbe.train(
        features: train, labels: shuffled, classes: classes, settings: LinearProbeSettings(method: method, epochs: 20),
        seed: 0)
      let accuracy = Accuracy.of(scores: try fit.scores(test), labels: ordered)
      XCTAssertEqual(accuracy.top1, 10, accuracy: 2.5, "\(method)")
      XCTAssertEqual(accuracy.top5, 50, accuracy: 4, "\(method)")
      // The same classifier fits its (shuffled) training labels better than chance:
      // it learned something, just nothing that transfers.
      XCTAssertGreaterThan(Accuracy.of(scores: try fit.scores(train), labels: shuffled).top1, 12, "\(method)")
    }
    let knn = try KNN.evaluate(
      memory: train, memoryLabels: shuffled, queries: test, queryLabels: ordered, classes: classes,
      settings: KNNSettings())
    XCTAssertEqual(knn.top1, 10, accuracy: 2.5)
  }

  func testSameSeedSameClassifierAndDifferentSeedDiffers() throws {
    let (train, labels) = clusters(perClass: 30, classes: 4, dimension: 8, seed: 6)
    let settings = LinearProbeSettings(method: .sgd, epochs: 3, minimumSteps: 50, batchSize: 16)
    let a = try LinearProbe.train(features: train, labels: labels, classes: 4, settings: settings, seed: 7)
    let b = try LinearProbe.train(features: train, labels: labels, classes: 4, settings: settings, seed: 7)
    let c = try LinearProbe.train(features: train, labels: labels, classes: 4, settings: settings, seed: 8)
    XCTAssertEqual(a.weight.scalars, b.weight.scalars)
    XCTAssertEqual(a.bias, b.bias)
    XCTAssertEqual(a.mean, b.mean)
    XCTAssertNotEqual(a.weight.scalars, c.weight.scalars)
    for method in [LinearProbeSettings.Method.lbfgs, .ridge] {
      let x = try LinearProbe.train(
        features: train, labels: labels, classes: 4, settings: .init(method: method), seed: 1)
      let y = try LinearProbe.train(
        features: train, labels: labels, classes: 4, settings: .init(method: method), seed: 2)
      XCTAssertEqual(x.weight.scalars, y.weight.scalars, "\(method) does not depend on the seed")
    }
  }

  /// The SGD head folds its BatchNorm running statistics into the classifier: they
  /// track the data's mean and 1/std.
  func testBatchNormIsFoldedIntoTheClassifier() throws {
    let (train, labels) = clusters(perClass: 50, classes: 3, dimension: 4, seed: 9)
    let fit = try LinearProbe.train(
      features: train, labels: labels, classes: 3, settings: LinearProbeSettings(method: .sgd, minimumSteps: 300),
      seed: 0)
    for j in 0..<4 {
      let column = (0..<150).map { Double(train[$0, j]) }
      let mean = column.reduce(0, +) / 150
      let std = (column.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 150).squareRoot()
      XCTAssertEqual(Double(fit.mean[j]), mean, accuracy: 0.3)
      XCTAssertEqual(Double(fit.invStd[j]), 1 / std, accuracy: 0.3 / std)
    }
  }

  /// L-BFGS reaches the optimum: the gradient of the regularized loss is ~0 there.
  func testLogisticRegressionConverges() throws {
    let (train, labels) = clusters(perClass: 40, classes: 3, dimension: 5, seed: 10)
    // Overlapping classes (noise larger than the gap) so the optimum is finite.
    for i in 0..<train.count { train.data[i] *= 0.2 }
    let fit = try LinearProbe.train(
      features: train, labels: labels, classes: 3, settings: LinearProbeSettings(method: .lbfgs, weightDecay: 1e-2),
      seed: 0)
    XCTAssertLessThan(fit.steps, 500)
    // Finite differences of the objective along each weight are ~0.
    let xs = train.copy()
    for i in 0..<labels.count {
      for j in 0..<5 { xs.data[i * 5 + j] = (xs.data[i * 5 + j] - fit.mean[j]) * fit.invStd[j] }
    }
    func objective(_ w: [Float]) -> Double {
      var loss = 0.0
      for i in 0..<labels.count {
        var z = [Double](repeating: 0, count: 3)
        for c in 0..<3 {
          z[c] = Double(fit.bias[c])
          for j in 0..<5 { z[c] += Double(w[c * 5 + j]) * Double(xs.data[i * 5 + j]) }
        }
        let m = z.max()!
        let lse = m + Foundation.log(z.map { Foundation.exp($0 - m) }.reduce(0, +))
        loss += lse - z[labels[i]]
      }
      return loss / Double(labels.count) + 0.5 * 1e-2 * w.reduce(0) { $0 + Double($1 * $1) }
    }
    let w = fit.weight.scalars
    for k in 0..<w.count {
      var plus = w, minus = w
      plus[k] += 1e-2
      minus[k] -= 1e-2
      XCTAssertEqual((objective(plus) - objective(minus)) / 2e-2, 0, accuracy: 2e-3)
    }
  }

  /// Ridge weights satisfy the normal equations (XᵀX/N + αI)·W = XᵀY/N on the
  /// standardized features, and the bias is the class frequencies.
  func testRidgeSolvesTheNormalEquations() throws {
    let (train, labels) = clusters(perClass: 20, classes: 3, dimension: 4, seed: 13)
    let alpha = 0.1
    let fit = try LinearProbe.train(
      features: train, labels: labels, classes: 3, settings: LinearProbeSettings(method: .ridge, weightDecay: alpha),
      seed: 0)
    let n = labels.count
    var xs = [[Double]](repeating: [Double](repeating: 0, count: 4), count: n)
    for i in 0..<n {
      for j in 0..<4 { xs[i][j] = Double((train[i, j] - fit.mean[j]) * fit.invStd[j]) }
    }
    for k in 0..<3 {
      XCTAssertEqual(Double(fit.bias[k]), 1.0 / 3, accuracy: 1e-6)
      for j in 0..<4 {
        var lhs = alpha * Double(fit.weight[k, j])
        for l in 0..<4 {
          var g = 0.0
          for i in 0..<n { g += xs[i][j] * xs[i][l] }
          lhs += g / Double(n) * Double(fit.weight[k, l])
        }
        var rhs = 0.0
        for i in 0..<n where labels[i] == k { rhs += xs[i][j] }
        XCTAssertEqual(lhs, rhs / Double(n), accuracy: 1e-4)
      }
    }
  }

  func testKNNVotesMatchABruteForceReference() throws {
    var rng = RandomGenerator(seed: 11)
    let memory = Tensor.randn([50, 6], using: &rng)
    let queries = Tensor.randn([7, 6], using: &rng)
    let labels = (0..<50).map { _ in rng.nextInt(below: 4) }
    let settings = KNNSettings(k: 5, temperature: 0.1)
    let votes = try KNN.votes(memory: memory, labels: labels, queries: queries, classes: 4, settings: settings)
    func normalized(_ t: Tensor, _ i: Int) -> [Double] {
      let row = (0..<6).map { Double(t.data[i * 6 + $0]) }
      let norm = row.map { $0 * $0 }.reduce(0, +).squareRoot()
      return row.map { $0 / norm }
    }
    for q in 0..<7 {
      let a = normalized(queries, q)
      let sims = (0..<50).map { j in zip(a, normalized(memory, j)).map(*).reduce(0, +) }
      let top = sims.indices.sorted { sims[$0] > sims[$1] }.prefix(5)
      var expected = [Double](repeating: 0, count: 4)
      for j in top { expected[labels[j]] += Foundation.exp(sims[j] / 0.1) }
      // Votes are exp(sim/T) up to the common factor exp(−1/T).
      for c in 0..<4 {
        XCTAssertEqual(Double(votes[q, c]), expected[c] * Foundation.exp(-1 / 0.1), accuracy: 1e-4 * expected.max()!)
      }
    }
    // k larger than the memory: every image votes.
    let all = try KNN.votes(memory: memory, labels: labels, queries: queries, classes: 4, settings: KNNSettings(k: 500))
    XCTAssertEqual(all.shape, [7, 4])
    XCTAssertThrowsError(
      try KNN.votes(memory: memory, labels: labels, queries: queries, classes: 4, settings: KNNSettings(k: 0)))
  }

  func testAccuracyRanksWithDeterministicTies() throws {
    let scores = try Tensor(
      shape: [3, 6],
      [
        1, 2, 3, 4, 5, 6,  // label 5: rank 0
        1, 1, 1, 1, 1, 1,  // label 0: rank 0 (ties: lower index first); label 5 would be rank 5
        6, 5, 4, 3, 2, 1,  // label 5: rank 5 → not in top-5
      ])
    let a = Accuracy.of(scores: scores, labels: [5, 0, 5])
    XCTAssertEqual(a.top1, 200.0 / 3, accuracy: 1e-9)
    XCTAssertEqual(a.top5, 200.0 / 3, accuracy: 1e-9)
    let b = Accuracy.of(scores: scores, labels: [0, 5, 4])
    XCTAssertEqual(b.top1, 0)
    XCTAssertEqual(b.top5, 100.0 / 3, accuracy: 1e-9)
  }

  func testBadSettingsAreRejected() {
    let (x, y) = clusters(perClass: 5, classes: 2, dimension: 3, seed: 12)
    XCTAssertThrowsError(try LinearProbe.train(features: x, labels: y, classes: 2, settings: .init(epochs: 0), seed: 0))
    XCTAssertThrowsError(
      try LinearProbe.train(features: x, labels: Array(y.dropFirst()), classes: 2, settings: .init(), seed: 0))
    XCTAssertThrowsError(
      try LinearProbe.train(features: x, labels: y.map { $0 + 5 }, classes: 2, settings: .init(), seed: 0))
  }
}
