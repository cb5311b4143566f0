import Autograd
import Foundation
import NN
import Tasks
import Vision

/// How much memory a training run will need at its peak, and whether the machine has it.
///
/// Two parts, measured where they can be and counted where they cannot:
/// - `baseBytes`: the process as it stands once the model is built, measured (resident
///   memory: code, libraries, BLAS buffers, the image index, parameters, their
///   gradients, averaged weights).
/// - `perSampleBytes` × batch: what one step's forward and backward pass allocate for
///   each sample (activations kept for backward, their gradients, kernel scratch),
///   measured by running the step on 2 and on 4 samples and taking the difference —
///   the memory of a step grows linearly with the batch, so the difference is the cost
///   of a sample, free of everything the batch does not change.
/// - counted from sizes: the optimizer state (made at the first step), the copy of the
///   state kept for rollbacks (`nan_retries`), the batches the loader prepares ahead,
///   the decoded-image cache, the gradients, and a checkpoint serialized in memory while it is saved
///   (twice its size: `SafeTensors.encode` holds the tensor data and the file image).
///   The step's memory is still resident then (its buffers idle in the pool), so the
///   parts add up.
///
/// The plan errs high rather than low: the pool's buffers are counted at their whole
/// size class (up to 19% above what a tensor touches), and kernel scratch that stops
/// growing with the batch (conv2d's images per GEMM) is counted as if it went on.
///
/// Configurations far beyond the machine are refused earlier, from formulas alone,
/// before anything is allocated (Experiments/MemoryCheck.swift).
public struct MemoryPlan: Codable, Sendable, Equatable {
  public var baseBytes: Double
  /// The parameters' gradients: made by every backward pass and dropped by `zeroGrad`,
  /// so in neither the base nor the per-sample difference.
  public var gradientBytes: Double
  public var optimizerBytes: Double
  public var rollbackBytes: Double
  public var perSampleBytes: Double
  /// Samples per step on this process.
  public var batch: Int
  /// The loader's batches in flight. (Decoded images are not the process's own memory:
  /// they live in the folder's memory-mapped cache file, whose pages the kernel
  /// reclaims under pressure; see Vision/DecodedImageCache.swift.)
  public var loaderBytes: Double
  public var checkpointBytes: Double
  /// The peak of an evaluation during training (TrainingMonitor: a forward pass of a
  /// chunk of its images without gradients). It runs between steps, but its buffers have
  /// other shapes than a step's, which the buffer pool keeps idle meanwhile: the plan
  /// adds both. Absent without a monitor and in older plans.
  public var evaluationBytes: Double?

  /// The estimate: the sum of the parts (stored, so that `pretrain.json` shows it).
  public var totalBytes: Double

  public init(
    baseBytes: Double, gradientBytes: Double, optimizerBytes: Double, rollbackBytes: Double, perSampleBytes: Double, batch: Int,
    loaderBytes: Double, checkpointBytes: Double, evaluationBytes: Double? = nil
  ) {
    self.baseBytes = baseBytes
    self.gradientBytes = gradientBytes
    self.optimizerBytes = optimizerBytes
    self.rollbackBytes = rollbackBytes
    self.perSampleBytes = perSampleBytes
    self.batch = batch
    self.loaderBytes = loaderBytes
    self.checkpointBytes = checkpointBytes
    self.evaluationBytes = evaluationBytes
    totalBytes =
      baseBytes + gradientBytes + optimizerBytes + rollbackBytes
      + perSampleBytes * Double(batch) + (evaluationBytes ?? 0) + loaderBytes + checkpointBytes
  }

  public var stepBytes: Double { perSampleBytes * Double(batch) }

  enum CodingKeys: String, CodingKey {
    case totalBytes = "total_bytes"
    case baseBytes = "base_bytes", gradientBytes = "gradient_bytes", optimizerBytes = "optimizer_bytes", rollbackBytes = "rollback_bytes"
    case perSampleBytes = "per_sample_bytes", batch, loaderBytes = "loader_bytes"
    case checkpointBytes = "checkpoint_bytes", evaluationBytes = "evaluation_bytes"
  }

  /// `1.42 GB (process and model 180 MB, one step of 256 samples 1.20 GB, …)`.
  public var summary: String {
    var parts = ["process and model \(formatBytes(baseBytes))", "a step of \(batch) samples \(formatBytes(stepBytes))"]
    if let evaluationBytes, evaluationBytes > 0 { parts.append("an evaluation \(formatBytes(evaluationBytes))") }
    parts.append("gradients \(formatBytes(gradientBytes))")
    if optimizerBytes > 0 { parts.append("optimizer state \(formatBytes(optimizerBytes))") }
    if rollbackBytes > 0 { parts.append("rollback copy \(formatBytes(rollbackBytes))") }
    parts.append("loader \(formatBytes(loaderBytes))")
    parts.append("checkpoint writes \(formatBytes(checkpointBytes))")
    return "\(formatBytes(totalBytes)) (\(parts.joined(separator: ", ")))"
  }

  /// Throws when the plan does not fit in `available` (see `MemoryLimit`).
  public func check(against available: MemoryLimit?) throws {
    guard let available, totalBytes > Double(available.bytes) else { return }
    throw TrainingError(
      "this run needs about \(summary) at its peak, more than the \(available.description); "
        + "lower train.batch_size (each sample costs \(formatBytes(perSampleBytes))), backbone.image_size or backbone.width"
    )
  }
}

/// The memory this process can still use: the system's MemAvailable, or a cgroup limit
/// (a container's) when that leaves less — plus what the process holds already, since
/// the plans count the whole process.
public struct MemoryLimit: Sendable, Equatable {
  public var bytes: Int
  /// Where the number comes from, for messages.
  public var source: String

  public var description: String { "\(formatBytes(Double(bytes))) available (\(source))" }

  public init(bytes: Int, source: String) {
    self.bytes = bytes
    self.source = source
  }

  public static func current() -> MemoryLimit? {
    let resident = residentBytes() ?? 0
    var best: MemoryLimit? = nil
    if let available = meminfo("MemAvailable") {
      best = MemoryLimit(bytes: available + resident, source: "MemAvailable in /proc/meminfo, with this process")
    }
    // cgroup v2, then v1 (the usage counts this process already).
    let groups: [(limit: String, usage: String)] = [
      ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
      ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
    ]
    for g in groups {
      guard let limit = readNumber(g.limit), let usage = readNumber(g.usage), limit < Int.max / 2 else { continue }
      let room = limit - usage + resident
      if best == nil || room < best!.bytes {
        best = MemoryLimit(bytes: room, source: "the cgroup limit \(formatBytes(Double(limit))) in \(g.limit)")
      }
      break
    }
    return best
  }

  static func meminfo(_ key: String) -> Int? {
    guard let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) else { return nil }
    for line in text.split(separator: "\n") where line.hasPrefix(key + ":") {
      let fields = line.split(separator: " ")
      guard fields.count >= 2, let kb = Int(fields[1]) else { return nil }
      return kb * 1024
    }
    return nil
  }

  static func readNumber(_ path: String) -> Int? {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
    return Int(text.trimmingCharacters(in: .whitespacesAndNewlines))  // "max" (no limit) gives nil
  }
}

/// Resident bytes of this process now (`VmRSS`), or at its peak (`VmHWM`).
public func residentBytes(peak: Bool = false) -> Int? {
  guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
  let key = peak ? "VmHWM:" : "VmRSS:"
  for line in text.split(separator: "\n") where line.hasPrefix(key) {
    return line.split(separator: " ").dropFirst().first.flatMap { Int($0) }.map { $0 * 1024 }
  }
  return nil
}

/// `180 MB`, `1.42 GB`, `14.4 TB` (powers of 10, as `df -H` shows them).
public func formatBytes(_ bytes: Double) -> String {
  guard bytes.isFinite else { return "\(bytes) bytes" }
  let units: [(Double, String)] = [(1e15, "PB"), (1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "kB")]
  for (scale, unit) in units where bytes >= scale {
    return bytes >= 1e18
      ? String(format: "%.3g %@", bytes / 1e15, "PB") : String(format: "%.3g %@", bytes / scale, unit)
  }
  return String(format: "%.0f bytes", bytes)
}

extension Trainer {
  /// Samples of the measuring steps: two sizes, for the per-sample difference. At 8
  /// samples and more, the tensors that grow with the batch are 4 KiB or more, so the
  /// pool counts them (it leaves smaller buffers to malloc); at 2 and 4 samples some are
  /// not, and the shipped MAE config measured 28% under its peak.
  static let measuringBatches = (8, 16)

  /// The plan of this run, from two measured steps (forward and backward, no update) on
  /// `measuringBatches` samples of the data. The model's state is as it was before
  /// (BatchNorm statistics restored, gradients cleared); nothing is written.
  public func memoryPlan() throws -> MemoryPlan {
    let saved = model.namedBuffers().map { $0.tensor.copy() }
    defer {
      for (t, s) in zip(model.namedBuffers().map(\.tensor), saved) { try? t.assign(s) }
      model.zeroGrad()
      BufferPool.shared.trim()
    }
    model.train()
    // A batch below 16 is measured at its own size (and half of it, at least 2 samples
    // for the BatchNorm of a head).
    let batch = settings.batchSize / group.size
    let large = max(4, min(Self.measuringBatches.1, batch))
    let small = min(Self.measuringBatches.0, large / 2)
    guard source.count >= large else {
      throw TrainingError(
        "the dataset has \(source.count) images, fewer than the \(large) a step's memory is measured on; add images")
    }
    // The samples come from a loader as in training (its thread, its skipping of
    // unreadable images, its decoded-image cache), so that what a loader thread leaves
    // resident is in the measured base. Its seed is apart from the run's draws.
    var samples: [TaskSample] = []
    do {
      let loader = try DataLoader<TaskSample, [TaskSample]>(
        source: source,
        options: LoaderOptions(
          batchSize: large, seed: settings.seed ^ 0x6D65_6D6F, prefetchBatches: 1, strict: source.isStrict),
        prepare: { [task] image, rng in try task.sample(image, using: &rng) }, collate: { $0 })
      defer { loader.stop() }
      samples = try loader.next().1
    }
    // The gradients are made by the first pass and kept: measure from there on.
    _ = try stepBytes(Array(samples.prefix(small)))
    let a = try stepBytes(Array(samples.prefix(small)))
    let b = try stepBytes(samples)
    let perSample = max(0, Double(b - a) / Double(large - small))
    let sampleTensors = Double(try TaskBatch.collate([samples[0]]).views.reduce(0) { $0 + $1.count } * 4)
    // The loader's queue holds `prefetchBatches` batches, its worker builds one more.
    let options = LoaderOptions(batchSize: settings.batchSize)
    let loader = Double(options.prefetchBatches + 1) * Double(batch) * sampleTensors
    // Counted from sizes, not from `stateTensors()`: asking the optimizer for its state
    // would make it (it is made at the first step).
    let parameterBytes = Double(parameters.reduce(0) { $0 + $1.tensor.count } * 4)
    let optimizerBytes = (settings.optimizer == "adamw" ? 2 : 1) * parameterBytes
    let modelBytes = Double(model.stateDict().reduce(0) { $0 + $1.tensor.count } * 4)
    let averageBytes = Double((average?.averages ?? []).reduce(0) { $0 + $1.tensor.count } * 4)
    let stateBytes = modelBytes + optimizerBytes + averageBytes
    let evaluation = try monitor.map { try evaluationBytes($0) }
    BufferPool.shared.trim()
    return MemoryPlan(
      baseBytes: Double(residentBytes() ?? 0), gradientBytes: parameterBytes, optimizerBytes: optimizerBytes,
      rollbackBytes: settings.nanRetries > 0 ? stateBytes : 0, perSampleBytes: perSample, batch: batch,
      loaderBytes: loader, checkpointBytes: 2 * stateBytes, evaluationBytes: evaluation.map(Double.init))
  }

  /// Bytes the monitor's largest evaluation piece took from the system at its peak.
  private func evaluationBytes(_ monitor: any TrainingMonitor) throws -> Int {
    BufferPool.shared.trim()
    BufferPool.shared.resetPeak()
    let before = BufferPool.shared.held.bytes
    try monitor.measureEvaluation(backbone: backbone)
    return BufferPool.shared.held.peak - before
  }

  /// Bytes that a forward and backward pass on `samples` took from the system at its
  /// peak, starting from an empty pool of idle buffers.
  private func stepBytes(_ samples: [TaskSample]) throws -> Int {
    BufferPool.shared.trim()
    BufferPool.shared.resetPeak()
    let before = BufferPool.shared.held.bytes
    let batch = try TaskBatch.collate(samples)
    let output = try task.loss(batch, backbone: backbone)
    model.zeroGrad()
    try output.loss.backward()
    return BufferPool.shared.held.peak - before
  }
}
