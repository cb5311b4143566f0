import Autograd
import Backbones
import Foundation
import NN
import Tasks
import Vision
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
  // MARK: Relative location (Doersch et al. 2015)

  /// The paper's task, from the outside: the first view is the centre cell of a 3×3 grid,
  /// the second one of its 8 neighbours, and the label is that neighbour's place in reading
  /// order with the centre left out (0 1 2 / 3 · 4 / 5 6 7). The image is exactly the grid
  /// (no resize, no jitter, no grayscale), and each cell holds its own gray level, so a
  /// view's pixels tell which cell it was cut from.
  func testRelativeLocationViewsAndLabelsFollowThePaper() throws {
    let (patch, gap) = (8, 4)
    let stride = patch + gap, size = 3 * patch + 2 * gap
    var rng = RandomGenerator(seed: 1)
    let backbone = try VisionTransformer(
      ViTConfig(name: "vit-test", imageSize: patch, patchSize: 4, inChannels: 1, width: 16, depth: 1, heads: 2),
      using: &rng)
    let task = try TaskRegistry.make(
      "relative-location",
      settings: JSONDecoderBox.decoder(
        for: #"{"resize": 0, "patch_size": 8, "gap": 4, "jitter": 0, "grayscale_p": 0, "head_hidden": 8}"#),
      backbone: backbone, using: &rng)
    var image = Image(width: size, height: size, channels: 1)
    for y in 0..<size {
      for x in 0..<size where y % stride < patch && x % stride < patch {
        image[x, y] = UInt8(20 * ((y / stride) * 3 + x / stride) + 10)
      }
    }
    /// The cell a view shows: its gray level (mean 0.5, std 0.5 undone), which must be
    /// the same at every pixel.
    func cell(_ view: FloatImage) -> Int? {
      let levels = Set(view.pixels.map { Int(((Double($0) * 0.5 + 0.5) * 255).rounded()) })
      guard levels.count == 1, let level = levels.first, (level - 10) % 20 == 0 else { return nil }
      return (level - 10) / 20
    }
    var seen = Set<Int>()
    for _ in 0..<200 {
      let sample = try task.sample(image, using: &rng)
      XCTAssertEqual(sample.views.count, 2)
      XCTAssertEqual(cell(sample.views[0]), 4, "the first view is the centre")
      let neighbour = try XCTUnwrap(cell(sample.views[1]), "the second view is one cell")
      XCTAssertNotEqual(neighbour, 4)
      XCTAssertEqual(sample.labels, [neighbour < 4 ? neighbour : neighbour - 1])
      seen.insert(sample.labels[0])
    }
    XCTAssertEqual(seen, Set(0..<8), "every neighbour is drawn")
  }

  /// The loss: cross-entropy over the 8 places of the head's logits on the concatenated
  /// [centre, neighbour] features, fc → BatchNorm → ReLU → fc, written out in Double from
  /// the parameters (both networks in evaluation mode, so that every sample is computed
  /// alone: BatchNorm uses its running statistics).
  func testRelativeLocationLossIsTheCrossEntropyOfThePairHead() throws {
    var rng = RandomGenerator(seed: 2)
    let backbone = try VisionTransformer(
      ViTConfig(name: "vit-test", imageSize: 8, patchSize: 4, inChannels: 1, width: 16, depth: 1, heads: 2),
      using: &rng)
    let task = try TaskRegistry.make(
      "relative-location",
      settings: JSONDecoderBox.decoder(
        for: #"{"resize": 40, "patch_size": 8, "gap": 4, "jitter": 2, "head_hidden": 6}"#),
      backbone: backbone, using: &rng)
    // Running statistics away from 0 and 1, so that the oracle's BatchNorm is not a no-op.
    let buffers = Dictionary(uniqueKeysWithValues: task.heads.namedBuffers().map { ($0.name, $0.tensor) })
    for i in 0..<6 {
      buffers["bn.running_mean"]!.data[i] = Float(i) * 0.1 - 0.2
      buffers["bn.running_var"]!.data[i] = 0.5 + Float(i) * 0.3
    }
    backbone.eval()
    task.heads.eval()
    let images = (0..<5).map { k in
      var im = Image(width: 40, height: 40, channels: 1)
      for i in 0..<im.pixels.count { im.pixels[i] = UInt8((i * (7 + k) + k * 31) % 256) }
      return im
    }
    let samples = try images.map { try task.sample($0, using: &rng) }
    let batch = try TaskBatch.collate(samples)
    let loss = try Double(task.loss(batch, backbone: backbone).loss.item())

    let p = Dictionary(uniqueKeysWithValues: task.heads.namedParameters().map { ($0.name, $0.tensor.scalars.map(Double.init)) })
    let (w1, b1, gamma, beta, w2, b2) = (p["fc1.weight"]!, p["fc1.bias"]!, p["bn.weight"]!, p["bn.bias"]!, p["fc2.weight"]!, p["fc2.bias"]!)
    let mean = buffers["bn.running_mean"]!.scalars.map(Double.init), variance = buffers["bn.running_var"]!.scalars.map(Double.init)
    var total = 0.0
    for sample in samples {
      func features(_ view: FloatImage) throws -> [Double] {
        let x = try Tensor(shape: [1, view.channels, view.height, view.width], view.pixels)
        return try backbone.features(x).scalars.map(Double.init)
      }
      let pair = try features(sample.views[0]) + features(sample.views[1])
      let f = pair.count
      var hidden = [Double](repeating: 0, count: 6)
      for j in 0..<6 {
        var h = b1[j]
        for i in 0..<f { h += w1[j * f + i] * pair[i] }
        let normalized: Double = (h - mean[j]) / (variance[j] + 1e-5).squareRoot()
        hidden[j] = max(0, normalized * gamma[j] + beta[j])
      }
      var logits = [Double](repeating: 0, count: 8)
      for c in 0..<8 {
        var z = b2[c]
        for j in 0..<6 { z += w2[c * 6 + j] * hidden[j] }
        logits[c] = z
      }
      let top = logits.max()!
      let logSum = top + log(logits.map { exp($0 - top) }.reduce(0, +))
      total += logSum - logits[sample.labels[0]]
    }
    XCTAssertEqual(loss, total / Double(samples.count), accuracy: 1e-5 * max(1, loss))
  }
}

/// A `Decoder` positioned on a JSON object: task settings as a config section gives them.
enum JSONDecoderBox {
  struct Capture: Decodable {
    let decoder: Decoder
    init(from decoder: Decoder) throws { self.decoder = decoder }
  }
  static func decoder(for json: String) throws -> Decoder {
    try JSONDecoder().decode(Capture.self, from: Data(json.utf8)).decoder
  }
}
