import Autograd
import Foundation

/// `pretext bench ops`: the speed of the engine's main kernels, each beside the sgemm
/// rate measured in the same run (ratios are robust to machine noise and clock speed;
/// absolute figures are not).
public struct OpBenchmarkReport: Codable, Sendable {
  public struct Row: Codable, Sendable {
    public var name: String
    public var shape: String
    /// Median seconds per call (forward+backward where the name says so).
    public var seconds: Double
    /// GFLOP/s for compute-bound kernels, nil for memory-bound ones.
    public var gflops: Double?
    /// GB/s (bytes read + written) for memory-bound kernels, nil otherwise.
    public var gbPerSecond: Double?
    /// gflops / sgemm GFLOP/s, or GB/s / copy GB/s for memory-bound kernels.
    public var ratio: Double

    enum CodingKeys: String, CodingKey {
      case name, shape, seconds, gflops, gbPerSecond = "gb_per_second", ratio
    }
  }
  public var threads: Int
  public var sgemmGflops: Double
  public var copyGBPerSecond: Double
  public var rows: [Row]

  enum CodingKeys: String, CodingKey {
    case threads, sgemmGflops = "sgemm_gflops", copyGBPerSecond = "copy_gb_per_second", rows
  }

  public var table: String {
    var lines = [
      "threads: \(threads)   sgemm 1024³: \(String(format: "%.1f", sgemmGflops)) GFLOP/s   memory copy: \(String(format: "%.1f", copyGBPerSecond)) GB/s",
      "",
      pad("kernel", 30) + pad("shape", 34) + pad("ms", 10) + pad("rate", 16) + "vs reference",
    ]
    for r in rows {
      let rate = r.gflops.map { String(format: "%.1f GFLOP/s", $0) } ?? String(format: "%.1f GB/s", r.gbPerSecond ?? 0)
      let ref = r.gflops != nil ? "of sgemm" : "of copy"
      lines.append(
        pad(r.name, 30) + pad(r.shape, 34) + pad(String(format: "%.2f", r.seconds * 1000), 10) + pad(rate, 16)
          + String(format: "%3.0f%% %@", r.ratio * 100, ref))
    }
    return lines.joined(separator: "\n")
  }

  private func pad(_ s: String, _ n: Int) -> String {
    s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count)
  }
}

public enum OpBenchmarks {
  /// Median wall time of `body` over `repeats` runs after one warm-up.
  static func median(_ repeats: Int, _ body: () throws -> Void) rethrows -> Double {
    try body()
    var times: [Double] = []
    for _ in 0..<repeats {
      let t0 = DispatchTime.now().uptimeNanoseconds
      try body()
      times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
    }
    times.sort()
    return times[times.count / 2]
  }

  /// Forward + backward of `f` on leaves `inputs`, seeded with ones.
  static func forwardBackward(_ inputs: [Tensor], _ f: () throws -> Tensor) throws {
    for t in inputs { t.zeroGrad() }
    let y = try f()
    try y.backward(Tensor.ones(y.shape))
  }

  public static func run(repeats: Int = 5) throws -> OpBenchmarkReport {
    var rng = RandomGenerator(seed: 42)
    let sgemm = SystemReport.measureSgemm(size: 1024, repeats: repeats)

    // Memory bandwidth reference: a parallel copy of 64 MiB (larger than most caches).
    let big = Tensor.uniform([1 << 24], using: &rng)
    let dst = Tensor.zeros([1 << 24])
    let copyTime = median(repeats) {
      let (s, d) = (big.data, dst.data)
      Parallel.forChunks(big.count, minChunk: 1 << 16) { r in (d + r.lowerBound).update(from: s + r.lowerBound, count: r.count) }
    }
    let copyGB = Double(2 * 4 * big.count) / copyTime / 1e9

    var rows: [OpBenchmarkReport.Row] = []
    func compute(_ name: String, _ shape: String, flops: Double, _ body: () throws -> Void) throws {
      let s = try median(repeats, body)
      let g = flops / s / 1e9
      rows.append(.init(name: name, shape: shape, seconds: s, gflops: g, gbPerSecond: nil, ratio: g / sgemm))
    }
    func memory(_ name: String, _ shape: String, bytes: Double, _ body: () throws -> Void) throws {
      let s = try median(repeats, body)
      let gb = bytes / s / 1e9
      rows.append(.init(name: name, shape: shape, seconds: s, gflops: nil, gbPerSecond: gb, ratio: gb / copyGB))
    }

    // Matmul through the tensor API (a ViT MLP layer: 256 images × 65 tokens).
    do {
      let x = Tensor.uniform([256 * 65, 192], low: -1, high: 1, using: &rng)
      let w = Tensor.uniform([768, 192], low: -0.1, high: 0.1, using: &rng)
      try compute("linear forward", "[16640, 192]·[768, 192]ᵀ", flops: 2 * 16640 * 192 * 768) {
        _ = try withoutGradients { try linear(x, weight: w) }
      }
      let xg = x.copy().requiringGrad(), wg = w.copy().requiringGrad()
      try compute("linear forward+backward", "[16640, 192]·[768, 192]ᵀ", flops: 3 * 2 * 16640 * 192 * 768) {
        try forwardBackward([xg, wg]) { try linear(xg, weight: wg) }
      }
    }
    // ResNet-18 3×3 convolution, 64→64 channels, 32×32, batch 64.
    do {
      let x = Tensor.uniform([64, 64, 32, 32], low: -1, high: 1, using: &rng).requiringGrad()
      let w = Tensor.uniform([64, 64, 3, 3], low: -0.1, high: 0.1, using: &rng).requiringGrad()
      let macs = 64.0 * 64 * 32 * 32 * 64 * 9
      // Both algorithms side by side; the rate counts direct-convolution FLOPs for both.
      for algorithm in [ConvolutionAlgorithm.im2col, .winograd] {
        let options = Conv2dOptions(padding: 1, algorithm: algorithm)
        try compute("conv2d 3×3 forward, \(algorithm)", "[64, 64, 32, 32] * [64, 64, 3, 3]", flops: 2 * macs) {
          _ = try withoutGradients { try conv2d(x, weight: w, options: options) }
        }
        try compute("conv2d 3×3 fwd+bwd, \(algorithm)", "[64, 64, 32, 32] * [64, 64, 3, 3]", flops: 3 * 2 * macs) {
          try forwardBackward([x, w]) { try conv2d(x, weight: w, options: options) }
        }
      }
    }
    // ViT-Tiny attention: batch 256, 3 heads, 65 tokens, head dim 64.
    do {
      let qkv = Tensor.uniform([256, 65, 3 * 192], low: -1, high: 1, using: &rng).requiringGrad()
      let fwd = 2.0 * 2 * 256 * 3 * 65 * 65 * 64  // Q·Kᵀ and P·V
      try compute("attention forward", "B256 H3 T65 D64", flops: fwd) {
        _ = try withoutGradients { try packedSelfAttention(qkv, heads: 3) }
      }
      try compute("attention forward+backward", "B256 H3 T65 D64", flops: 3 * fwd) {
        try forwardBackward([qkv]) { try packedSelfAttention(qkv, heads: 3) }
      }
    }
    // Memory-bound kernels on ViT-Tiny activations.
    do {
      let x = Tensor.uniform([256 * 65, 192], low: -2, high: 2, using: &rng).requiringGrad()
      let w = Tensor.ones([192]).requiringGrad(), b = Tensor.zeros([192]).requiringGrad()
      let bytes = Double(x.count * 4)
      try memory("layer norm forward+backward", "[16640, 192]", bytes: 5 * bytes) {
        try forwardBackward([x, w, b]) { try layerNorm(x, weight: w, bias: b) }
      }
      let h = Tensor.uniform([256 * 65, 768], low: -3, high: 3, using: &rng).requiringGrad()
      let hb = Double(h.count * 4)
      try memory("gelu forward", "[16640, 768]", bytes: 2 * hb) {
        _ = withoutGradients { h.gelu() }
      }
      try memory("gelu forward+backward", "[16640, 768]", bytes: 5 * hb) {
        try forwardBackward([h]) { h.gelu() }
      }
      let a = Tensor.uniform([256 * 65, 768], using: &rng), a2 = Tensor.uniform([256 * 65, 768], using: &rng)
      try memory("add", "[16640, 768] + [16640, 768]", bytes: 3 * hb) {
        _ = try withoutGradients { try a + a2 }
      }
      let hs = Tensor.uniform([256 * 3 * 65, 65], low: -3, high: 3, using: &rng)
      try memory("softmax forward", "[49920, 65]", bytes: Double(2 * 4 * hs.count)) {
        _ = try withoutGradients { try hs.softmax() }
      }
    }
    return OpBenchmarkReport(threads: Parallel.threads, sgemmGflops: sgemm, copyGBPerSecond: copyGB, rows: rows)
  }
}
