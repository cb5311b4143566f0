import Autograd
import Foundation
import Tasks
import XCTest

/// Test tier 3: each task loss against a naive version written from the paper.
final class LossOracleTests: XCTestCase {
  /// SimCLR Algorithm 1, literally: ℓ(i, j) = −log exp(s_ij/τ) / Σ_{k≠i} exp(s_ik/τ),
  /// L = 1/2N Σ_k [ℓ(2k−1, 2k) + ℓ(2k, 2k−1)], with s the cosine similarity.
  func naiveNTXent(_ z1: [[Double]], _ z2: [[Double]], _ tau: Double) -> Double {
    let n = z1.count
    var z: [[Double]] = []
    for k in 0..<n {
      z.append(z1[k])
      z.append(z2[k])
    }
    func cos(_ a: [Double], _ b: [Double]) -> Double {
      let dot = zip(a, b).map(*).reduce(0, +)
      return dot / (a.map { $0 * $0 }.reduce(0, +).squareRoot() * b.map { $0 * $0 }.reduce(0, +).squareRoot())
    }
    func l(_ i: Int, _ j: Int) -> Double {
      let num = exp(cos(z[i], z[j]) / tau)
      var den = 0.0
      for k in 0..<(2 * n) where k != i { den += exp(cos(z[i], z[k]) / tau) }
      return -log(num / den)
    }
    var total = 0.0
    for k in 0..<n { total += l(2 * k, 2 * k + 1) + l(2 * k + 1, 2 * k) }
    return total / Double(2 * n)
  }

  func testNTXentMatchesAlgorithm1() throws {
    var rng = RandomGenerator(seed: 1)
    for (n, d, tau) in [(2, 3, 0.5), (5, 8, 0.1), (16, 4, 0.2)] {
      let z1 = Tensor.randn([n, d], using: &rng), z2 = Tensor.randn([n, d], using: &rng)
      let rows = { (t: Tensor) in (0..<n).map { i in (0..<d).map { Double(t.data[i * d + $0]) } } }
      let expected = naiveNTXent(rows(z1), rows(z2), tau)
      let (loss, _) = try ntXentLoss(z1, z2, temperature: Float(tau))
      XCTAssertEqual(Double(try loss.item()), expected, accuracy: 1e-4 * max(1, expected), "N=\(n) D=\(d) τ=\(tau)")
    }
  }

  /// Data-parallel NT-Xent: each process takes its own images as anchors against the
  /// whole gathered batch. With equal slices, the mean of those losses is the
  /// one-process loss, and so is the gradient of the mean (the gradient the processes'
  /// gathered backward passes and averaged gradients compute together).
  func testNTXentOverAnchorSlicesAveragesToTheFullLoss() throws {
    var rng = RandomGenerator(seed: 3)
    let (n, d) = (6, 5)
    let z1 = Tensor.randn([n, d], using: &rng, requiresGrad: true)
    let z2 = Tensor.randn([n, d], using: &rng, requiresGrad: true)
    let (full, fullTop1) = try ntXentLoss(z1, z2, temperature: 0.3)
    try full.backward()
    let fullGrad = try XCTUnwrap(z1.grad).scalars + (try XCTUnwrap(z2.grad)).scalars
    z1.zeroGrad()
    z2.zeroGrad()
    var mean = 0.0, top1 = 0.0
    for slice in [0..<2, 2..<4, 4..<6] {
      let (loss, t) = try ntXentLoss(z1, z2, temperature: 0.3, anchors: slice)
      try (loss * (1 / 3)).backward()
      mean += Double(try loss.item()) / 3
      top1 += t / 3
    }
    XCTAssertEqual(mean, Double(try full.item()), accuracy: 1e-6)
    XCTAssertEqual(top1, fullTop1, accuracy: 1e-12)
    let sliced = try XCTUnwrap(z1.grad).scalars + (try XCTUnwrap(z2.grad)).scalars
    for (a, b) in zip(sliced, fullGrad) { XCTAssertEqual(a, b, accuracy: 1e-6) }
  }

  func testNTXentClosedFormAndAccuracy() throws {
    // Two images with orthogonal embeddings and identical views: s(pos) = 1, the other
    // view of the other image has s = 0 (two candidates at 0). ℓ = −log(e^{1/τ}/(e^{1/τ} + 2)).
    let z = try Tensor(shape: [2, 2], [1, 0, 0, 1])
    let tau: Float = 0.5
    let (loss, top1) = try ntXentLoss(z, z, temperature: tau)
    let expected = -log(exp(2.0) / (exp(2.0) + 2))
    XCTAssertEqual(Double(try loss.item()), expected, accuracy: 1e-5)
    XCTAssertEqual(top1, 1)
    // Swapped views are symmetric.
    var rng = RandomGenerator(seed: 2)
    let a = Tensor.randn([4, 3], using: &rng), b = Tensor.randn([4, 3], using: &rng)
    XCTAssertEqual(try ntXentLoss(a, b, temperature: 0.2).loss.item(), try ntXentLoss(b, a, temperature: 0.2).loss.item(), accuracy: 1e-5)
    XCTAssertThrowsError(try ntXentLoss(a, b, temperature: 0))
  }

  func testMaskedReconstructionLossOnHandBuiltTensors() throws {
    // B=1, N=3 patches of P=2 values; patches 0 and 2 masked.
    let prediction = try Tensor(shape: [1, 3, 2], [1, 1, 5, 5, 0, 2])
    let target = try Tensor(shape: [1, 3, 2], [0, 0, 0, 0, 0, 0])
    let mask = try Tensor(shape: [1, 3], [1, 0, 1])
    // Per patch: (1+1)/2 = 1, (25+25)/2 = 25 (unmasked, ignored), (0+4)/2 = 2 → (1+2)/2.
    let loss = try maskedReconstructionLoss(prediction: prediction, target: target, mask: mask, normalizeTarget: false)
    XCTAssertEqual(try loss.item(), 1.5, accuracy: 1e-6)
    // Normalized targets: a patch [1, 3] becomes [−1/√2, 1/√2]·(1/√(1+1e-6))… (unbiased var 2).
    let t2 = try Tensor(shape: [1, 1, 2], [1, 3])
    let p2 = try Tensor(shape: [1, 1, 2], [0, 0])
    let l2 = try maskedReconstructionLoss(prediction: p2, target: t2, mask: Tensor(shape: [1, 1], [1]), normalizeTarget: true)
    XCTAssertEqual(try l2.item(), 0.5, accuracy: 1e-5)  // mean of (1/√2)² twice
    XCTAssertThrowsError(
      try maskedReconstructionLoss(prediction: prediction, target: target, mask: Tensor.zeros([1, 3]), normalizeTarget: false))
  }

  func testPatchifyOrderAndInverse() throws {
    var rng = RandomGenerator(seed: 3)
    let images = Tensor.uniform([2, 3, 8, 8], using: &rng)
    let p = try patchify(images, patchSize: 4)
    XCTAssertEqual(p.shape, [2, 4, 48])
    // Patch 1 (top-right), pixel (row 2, col 3) of the patch, channel 1 → image (1, 2, 7).
    XCTAssertEqual(p[1, 1, (2 * 4 + 3) * 3 + 1], images[1, 1, 2, 7])
    XCTAssertEqual(try unpatchify(p, patchSize: 4, channels: 3).scalars, images.scalars)
  }
}
