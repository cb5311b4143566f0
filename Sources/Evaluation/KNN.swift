import Autograd
import Foundation

/// The weighted k-nearest-neighbour classifier of Wu et al. 2018, used by DINO
/// (`eval_knn.py`) and solo-learn: features L2-normalized, cosine similarity to every
/// labeled image, the k most similar vote for their class with weight exp(sim / T).
public struct KNNSettings: Codable, Sendable, Equatable {
  public var k: Int
  public var temperature: Double
  /// DINO's defaults: k = 20, T = 0.07.
  public init(k: Int = 20, temperature: Double = 0.07) {
    self.k = k
    self.temperature = temperature
  }

  func validate() throws {
    guard k >= 1 else { throw EvaluationError("--k", "must be at least 1, got \(k)") }
    guard temperature > 0 && temperature.isFinite else {
      throw EvaluationError("--temperature", "must be positive, got \(temperature)")
    }
  }
}

public enum KNN {
  /// Class votes [M, C] for `queries` [M, F] from the labeled `memory` [N, F].
  ///
  /// The similarity matrix is computed in blocks of query rows with one sgemm each
  /// (a block of 256 queries against 60,000 images is 61 MB), then each row keeps its k
  /// largest similarities (ties: the lower memory index first) and adds
  /// exp(sim / T) to its neighbours' classes. k is capped at N.
  public static func votes(
    memory: Tensor, labels: [Int], queries: Tensor, classes: Int, settings: KNNSettings
  ) throws -> Tensor {
    try settings.validate()
    guard memory.rank == 2, queries.rank == 2, memory.shape[1] == queries.shape[1] else {
      throw EvaluationError(
        "kNN", "memory \(memory.shape) and queries \(queries.shape) must be [N, F] and [M, F] with the same F")
    }
    let (n, f, m) = (memory.shape[0], memory.shape[1], queries.shape[0])
    guard labels.count == n, n > 0 else {
      throw EvaluationError("kNN", "needs one label per memory row and at least one row")
    }
    let bank = try memory.l2Normalized(axis: 1)
    let q = try queries.l2Normalized(axis: 1)
    let k = min(settings.k, n)
    let invT = Float(1 / settings.temperature)
    let out = Tensor.zeros([m, classes])
    let blockRows = 256
    let sims = Tensor.zeros([min(blockRows, m), n])
    let (pb, pq, ps, po) = (bank.data, q.data, sims.data, out.data)
    var start = 0
    while start < m {
      let rowsInBlock = min(blockRows, m - start)
      BLAS.sgemm(
        transB: true, m: rowsInBlock, n: n, k: f, a: pq + start * f, lda: f, b: pb, ldb: f, c: ps, ldc: n)
      let base = start
      labels.withUnsafeBufferPointer { lab in
        Parallel.forChunks(rowsInBlock, minChunk: 8) { r in
          var topSim = [Float](repeating: 0, count: k)
          var topIdx = [Int](repeating: 0, count: k)
          for row in r {
            let s = ps + row * n
            var filled = 0
            // Insertion into a sorted list (descending); a candidate enters only when it
            // beats the current k-th, so the scan is one comparison per image.
            for j in 0..<n {
              let v = s[j]
              if filled == k && !(v > topSim[k - 1]) { continue }
              var pos = filled == k ? k - 1 : filled
              while pos > 0 && topSim[pos - 1] < v {
                topSim[pos] = topSim[pos - 1]
                topIdx[pos] = topIdx[pos - 1]
                pos -= 1
              }
              topSim[pos] = v
              topIdx[pos] = j
              if filled < k { filled += 1 }
            }
            let o = po + (base + row) * classes
            for t in 0..<filled { o[lab[topIdx[t]]] += Foundation.exp((topSim[t] - 1) * invT) }
          }
        }
      }
      start += rowsInBlock
    }
    return out
  }

  /// Top-1/top-5 accuracy of the kNN classifier on labeled queries.
  public static func evaluate(
    memory: Tensor, memoryLabels: [Int], queries: Tensor, queryLabels: [Int], classes: Int, settings: KNNSettings
  ) throws -> Accuracy {
    Accuracy.of(
      scores: try votes(memory: memory, labels: memoryLabels, queries: queries, classes: classes, settings: settings),
      labels: queryLabels)
  }
}
