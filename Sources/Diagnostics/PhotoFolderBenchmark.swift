import Autograd
import Backbones
import Dispatch
import Foundation
import Support
import Tasks
import Vision

/// `pretext bench data --folder DIR`: how fast a folder of real photos reaches a
/// trainer, in three measurements on the same files and threads:
///
/// 1. decode + resize: every file read and reduced to `size` px on its shorter side, as
///    `data.decode_size` does (RGB out; the figure benchmarks/pil_data.py measures for
///    PIL's `Image.open(p).convert("RGB").resize(...)`, torchvision's ImageFolder path);
/// 2. cached: the same images copied out of the folder's decoded-image cache (built
///    first, not timed);
/// 3. feeding SimCLR: views/s that one loader thread prepares from the cache for a
///    `size / 2` px input (the `decode_size: auto` rule), against the views/s a SimCLR
///    step of ResNet-18 (ImageNet stem, width 32, batch 128) consumes at that size on all
///    threads. A ratio above 1 means training never waits for data.
public struct PhotoFolderBenchmarkReport: Codable, Sendable {
  public var folder: String
  public var images: Int
  public var size: Int
  public var threads: Int
  public var decodeImagesPerSecond: Double
  public var cachedImagesPerSecond: Double
  public var cacheSpeedup: Double
  public var loaderViewsPerSecond: Double
  public var stepViewsPerSecond: Double
  public var feedRatio: Double

  enum CodingKeys: String, CodingKey {
    case folder, images, size, threads, decodeImagesPerSecond = "decode_images_per_second"
    case cachedImagesPerSecond = "cached_images_per_second", cacheSpeedup = "cache_speedup"
    case loaderViewsPerSecond = "loader_views_per_second", stepViewsPerSecond = "step_views_per_second"
    case feedRatio = "feed_ratio"
  }

  public var text: String {
    String(
      format: """
        %@: %ld images, shorter side to %ld px, %ld threads
          decode + resize:   %8.1f images/s
          cached:            %8.1f images/s (%.0f× decode)
          SimCLR at %ld px:   loader %.0f views/s on one thread, ResNet-18 step %.0f views/s: feed ratio %.2f
        """, folder, images, size, threads, decodeImagesPerSecond, cachedImagesPerSecond, cacheSpeedup, size / 2,
      loaderViewsPerSecond, stepViewsPerSecond, feedRatio)
  }
}

public enum PhotoFolderBenchmark {
  public static func run(folder path: String, size: Int, seconds: Double = 5) throws -> PhotoFolderBenchmarkReport {
    let options = ImageDecodeOptions(channels: .rgb, shorterSide: size)
    let folder = try ImageFolder(path: path, options: ImageFolderOptions(strict: true, decode: options))
    let threads = Parallel.threads

    // 1. Decode + resize, whole passes over the folder until `seconds` have passed.
    let decodeRate = try imagesPerSecond(count: folder.count, threads: threads, seconds: seconds) {
      _ = try folder.loadImage(at: $0)
    }
    // 2. The cache, built in a folder of its own so the benchmark leaves nothing behind.
    let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("pretext-bench-cache-\(getpid())")
    defer { try? FileManager.default.removeItem(at: scratch) }
    let cached = try CachedImageFolder(folder: folder, path: scratch.appendingPathComponent("decoded.cache").path)
    _ = try cached.fill(threads: threads)
    let cachedRate = try imagesPerSecond(count: folder.count, threads: threads, seconds: seconds) {
      _ = try cached.loadImage(at: $0)
    }
    // 3. The loader (one thread, as in training) against the step that consumes it.
    let input = max(8, size / 2)
    var rng = RandomGenerator(seed: 3)
    let config = try BackbonePreset.config("resnet18", imageSize: input, inChannels: 3, width: 32)
    let backbone = try config.make(using: &rng)
    var settings = Contrastive.Settings()
    settings.augmentation.colorJitter = [0.4, 0.4, 0.4, 0.1]
    let task = try Contrastive(settings, backbone: backbone, using: &rng)
    let batch = min(128, folder.count)
    let loader = try DataLoader<TaskSample, TaskBatch>(
      source: cached, options: LoaderOptions(batchSize: batch, seed: 1),
      prepare: { image, rng in try task.sample(image, using: &rng) }, collate: { try TaskBatch.collate($0) })
    defer { loader.stop() }
    var batches = [try loader.next().batch]  // warm-up
    let t0 = DispatchTime.now().uptimeNanoseconds
    var views = 0
    while Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9 < seconds {
      let next = try loader.next().batch
      views += next.imageCount
      if batches.count < 2 { batches.append(next) }
    }
    let loaderRate = Double(views) / (Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
    loader.stop()
    let stepRate = try stepViewsPerSecond(task: task, backbone: backbone, batches: batches)
    return PhotoFolderBenchmarkReport(
      folder: path, images: folder.count, size: size, threads: threads, decodeImagesPerSecond: decodeRate,
      cachedImagesPerSecond: cachedRate, cacheSpeedup: cachedRate / decodeRate, loaderViewsPerSecond: loaderRate,
      stepViewsPerSecond: stepRate, feedRatio: loaderRate / stepRate)
  }

  /// `body(i)` for every index, on `threads` threads (contiguous chunks), in whole passes
  /// until `seconds` have passed; images per second over those passes.
  static func imagesPerSecond(
    count: Int, threads: Int, seconds: Double, _ body: @escaping @Sendable (Int) throws -> Void
  ) throws
    -> Double
  {
    let failure = FirstError()
    let t0 = DispatchTime.now().uptimeNanoseconds
    var done = 0
    repeat {
      _ = concurrentMap(count, threads: threads) { i in
        do { try body(i) } catch { failure.record(error) }
      }
      if let error = failure.error { throw error }
      done += count
    } while Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9 < seconds
    return Double(done) / (Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
  }

  /// Views per second of SimCLR training steps (forward, backward) on `batches`.
  static func stepViewsPerSecond(task: Contrastive, backbone: any Backbone, batches: [TaskBatch]) throws -> Double {
    func step(_ batch: TaskBatch) throws {
      try task.loss(batch, backbone: backbone).loss.backward()
    }
    try step(batches[0])  // warm-up
    let t0 = DispatchTime.now().uptimeNanoseconds
    var views = 0
    for batch in batches {
      try step(batch)
      views += batch.imageCount
    }
    return Double(views) / (Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
  }
}
