import Autograd
import Backbones
import Foundation
import NN
import Optimization
import Tasks
import Training

/// `pretext bench train`: the speed of one full training step (forward + backward +
/// AdamW update) of the reference workloads, on random 3×32×32 inputs. The same
/// workloads are written in PyTorch in benchmarks/pytorch_train.py, and
/// benchmarks/compare_train.sh runs both alternately on the same machine.
///
/// Workloads (batch = images per step before views):
/// - `mae`: ViT-Tiny encoder (patch 4 → 64 patches, width 192, depth 12, 3 heads) on the
///   25% visible patches + class token; decoder width 128, depth 2, 4 heads on 65 tokens;
///   MSE on masked patches with per-patch normalized targets. Batch 256.
/// - `simclr`: the same ViT-Tiny on two views (512 images), class-token features,
///   projection 192→512→128 (ReLU), NT-Xent τ = 0.2. Batch 256.
/// - `relloc`: the same ViT-Tiny on 256 patch pairs (512 images), concatenated features
///   → 384→512→8 (ReLU), cross-entropy. Batch 256.
/// - `simclr-resnet18`: CIFAR-style ResNet-18 (3×3 stem, no max pool) on two views,
///   projection 512→512→128, NT-Xent. Batch 128 (256 images).
public struct TrainBenchmarkReport: Codable, Sendable {
  public var workload: String
  public var batch: Int
  public var imagesPerStep: Int
  public var threads: Int
  public var steps: Int
  public var medianStepSeconds: Double
  public var imagesPerSecond: Double
  public var peakResidentMB: Double
  /// FLOPs of one step (forward + backward ≈ 3 × forward), from the counted MACs.
  public var stepGFLOP: Double
  public var achievedGFLOPs: Double
  public var sgemmGFLOPs: Double
  public var shareOfSgemm: Double

  enum CodingKeys: String, CodingKey {
    case workload, batch, imagesPerStep = "images_per_step", threads, steps
    case medianStepSeconds = "median_step_seconds", imagesPerSecond = "images_per_second"
    case peakResidentMB = "peak_resident_mb", stepGFLOP = "step_gflop", achievedGFLOPs = "achieved_gflops"
    case sgemmGFLOPs = "sgemm_gflops", shareOfSgemm = "share_of_sgemm"
  }

  public var text: String {
    String(
      format: """
        workload %@: batch %ld (%ld images/step), %ld threads, %ld timed steps
          median step %.3f s, %.1f images/s, peak RSS %.0f MB
          %.1f GFLOP/step → %.1f GFLOP/s = %.0f%% of sgemm (%.1f GFLOP/s)
        """, workload, batch, imagesPerStep, threads, steps, medianStepSeconds, imagesPerSecond, peakResidentMB, stepGFLOP,
      achievedGFLOPs, shareOfSgemm * 100, sgemmGFLOPs)
  }
}

public enum TrainBenchmarks {
  public static let workloads = ["mae", "simclr", "relloc", "simclr-resnet18"]

  /// One workload: a step closure and the images it pushes through the backbone.
  struct Workload {
    let step: () throws -> Void
    let imagesPerStep: Int
    let forwardMACs: Int
  }

  static func vitTiny(_ rng: inout RandomGenerator) throws -> VisionTransformer {
    try VisionTransformer(
      ViTConfig(name: "vit-tiny-32", imageSize: 32, patchSize: 4, inChannels: 3, width: 192, depth: 12, heads: 3), using: &rng)
  }

  /// MACs of a forward pass, counted by the layers themselves.
  static func macs(_ body: () throws -> Void) rethrows -> Int {
    try Profiler.run(body).reduce(0) { $0 + $1.macs }
  }

  static func make(_ name: String, batch: Int, rng: inout RandomGenerator) throws -> Workload {
    let images = Tensor.uniform([batch, 3, 32, 32], using: &rng)
    let second = Tensor.uniform([batch, 3, 32, 32], using: &rng)
    func adamStep(_ modules: [Module], _ loss: @escaping () throws -> Tensor) -> () throws -> Void {
      let parameters = modules.enumerated().flatMap { $0.element.optimizedParameters(prefix: "m\($0.offset).") }
      let optimizer = AdamW(parameters, weightDecay: 0.05)
      return {
        for p in parameters { p.tensor.zeroGrad() }
        try loss().backward()
        optimizer.step(lr: 1e-4)
      }
    }
    switch name {
    case "mae":
      let vit = try vitTiny(&rng)
      var settings = MaskedAutoencoder.Settings()
      settings.decoderWidth = 128
      settings.decoderDepth = 2
      settings.decoderHeads = 4
      let task = try MaskedAutoencoder(settings, backbone: vit, using: &rng)
      // Random per-sample masks (25% visible), drawn once: the cost does not depend on them.
      let keep = (0..<batch).map { _ in Array(rng.permutation(64).prefix(16)).sorted() }
      let b = TaskBatch(views: [images], labels: [], indices: keep, count: batch)
      let step = adamStep([vit, task.heads]) { try task.loss(b, backbone: vit).loss }
      return Workload(step: step, imagesPerStep: batch, forwardMACs: try macs { _ = try task.loss(b, backbone: vit) })
    case "simclr", "simclr-resnet18":
      let backbone: any Backbone =
        name == "simclr"
        ? try vitTiny(&rng)
        : try ResNet(ResNetConfig(name: "resnet18-cifar", block: .basic, layers: [2, 2, 2, 2], stem: .small, imageSize: 32), using: &rng)
      let f = backbone.featureCount
      let head = Module()
      let fc1 = head.register(child: "fc1", Linear(f, 512, using: &rng))
      let fc2 = head.register(child: "fc2", Linear(512, 128, using: &rng))
      let loss = {
        let z = try fc2(fc1(backbone.features(Tensor.concat([images, second], axis: 0))).relu())
        return try ntXentLoss(z.sliced(axis: 0, 0..<batch), z.sliced(axis: 0, batch..<(2 * batch)), temperature: 0.2).loss
      }
      return Workload(step: adamStep([backbone, head], loss), imagesPerStep: 2 * batch, forwardMACs: try macs { _ = try loss() })
    case "relloc":
      let vit = try vitTiny(&rng)
      let head = Module()
      let fc1 = head.register(child: "fc1", Linear(2 * 192, 512, using: &rng))
      let fc2 = head.register(child: "fc2", Linear(512, 8, using: &rng))
      let targets = (0..<batch).map { _ in rng.nextInt(below: 8) }
      let loss = {
        let features = try vit.features(Tensor.concat([images, second], axis: 0))
        let pair = try Tensor.concat([features.sliced(axis: 0, 0..<batch), features.sliced(axis: 0, batch..<(2 * batch))], axis: 1)
        return try crossEntropy(fc2(fc1(pair).relu()), targets: targets)
      }
      return Workload(step: adamStep([vit, head], loss), imagesPerStep: 2 * batch, forwardMACs: try macs { _ = try loss() })
    default:
      throw TrainingError("unknown workload \"\(name)\"; known: \(workloads.joined(separator: ", "))")
    }
  }

  /// Default batch of each workload (as specified above).
  public static func defaultBatch(_ workload: String) -> Int { workload == "simclr-resnet18" ? 128 : 256 }

  public static func run(workload: String, batch: Int? = nil, steps: Int = 5, warmup: Int = 2) throws -> TrainBenchmarkReport {
    var rng = RandomGenerator(seed: 11)
    let b = batch ?? defaultBatch(workload)
    let w = try make(workload, batch: b, rng: &rng)
    for _ in 0..<warmup { try w.step() }
    var times: [Double] = []
    for _ in 0..<steps {
      let t0 = DispatchTime.now().uptimeNanoseconds
      try w.step()
      times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
    }
    times.sort()
    let median = times[times.count / 2]
    let stepGFLOP = 3 * 2 * Double(w.forwardMACs) / 1e9
    let sgemm = SystemReport.measureSgemm(size: 1024)
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return TrainBenchmarkReport(
      workload: workload, batch: b, imagesPerStep: w.imagesPerStep, threads: Parallel.threads, steps: steps,
      medianStepSeconds: median, imagesPerSecond: Double(w.imagesPerStep) / median,
      peakResidentMB: Double(usage.ru_maxrss) / 1024, stepGFLOP: stepGFLOP, achievedGFLOPs: stepGFLOP / median,
      sgemmGFLOPs: sgemm, shareOfSgemm: stepGFLOP / median / sgemm)
  }
}
