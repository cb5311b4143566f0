import Autograd
import Backbones
import Foundation
import Tasks
import Vision

/// `pretext bench data`: how fast the data pipeline feeds a trainer. The SimCLR view
/// recipe (random resized crop, flip, colour jitter p=0.8, grayscale p=0.2, blur p=0.5)
/// runs on 32×32 RGB PNG files through the real loader (decoding every file, no cache:
/// the worst case), while the main thread only takes batches; CPU time is measured for
/// the whole process, so "cores used" includes everything the loader costs.
public struct DataBenchmarkReport: Codable, Sendable {
  public var images: Int
  public var batchSize: Int
  public var seconds: Double
  public var viewsPerSecond: Double
  /// Process CPU time / wall time over the measurement (1.0 = one core busy).
  public var coresUsed: Double

  enum CodingKeys: String, CodingKey {
    case images, batchSize = "batch_size", seconds, viewsPerSecond = "views_per_second", coresUsed = "cores_used"
  }

  public var text: String {
    String(
      format: "SimCLR pipeline on 32×32 PNGs (decode + 2 views, batch %ld): %.0f views/s using %.2f cores (%.1f s)",
      batchSize, viewsPerSecond, coresUsed, seconds)
  }
}

public enum DataBenchmark {
  public static func run(images: Int = 2048, seconds: Double = 5, batchSize: Int = 256) throws -> DataBenchmarkReport {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pretext-bench-data-\(getpid())")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    var rng = RandomGenerator(seed: 7)
    for i in 0..<images {
      var image = Image(width: 32, height: 32, channels: 3)
      for k in 0..<image.pixels.count { image.pixels[k] = UInt8(truncatingIfNeeded: rng.next()) }
      try PNG.write(image, to: dir.appendingPathComponent(String(format: "%05ld.png", i)).path)
    }
    let folder = try ImageFolder(path: dir.path)
    let backbone = try BackbonePreset.config("vit-cpu", imageSize: 32, patchSize: 4, inChannels: 3).make(using: &rng)
    let task = try TaskRegistry.make("simclr", backbone: backbone, using: &rng)
    let loader = try DataLoader<TaskSample, TaskBatch>(
      source: folder, options: LoaderOptions(batchSize: batchSize, seed: 1),
      prepare: { image, rng in try task.sample(image, using: &rng) }, collate: { try TaskBatch.collate($0) })
    defer { loader.stop() }
    _ = try loader.next()  // warm-up
    let cpu0 = cpuSeconds(), t0 = Date()
    var views = 0
    while Date().timeIntervalSince(t0) < seconds {
      views += try loader.next().batch.imageCount
    }
    let wall = Date().timeIntervalSince(t0)
    return DataBenchmarkReport(
      images: images, batchSize: batchSize, seconds: wall, viewsPerSecond: Double(views) / wall,
      coresUsed: (cpuSeconds() - cpu0) / wall)
  }

  static func cpuSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6 + Double(usage.ru_stime.tv_sec)
      + Double(usage.ru_stime.tv_usec) / 1e6
  }
}
