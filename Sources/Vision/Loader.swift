import Autograd
import Foundation
import Synchronization

/// Anything that can hand out decoded images by index: image folders, in-memory sets.
public protocol ImageSource: Sendable {
  var count: Int { get }
  /// A human-readable name for sample `index` (its path), for messages.
  func name(of index: Int) -> String
  /// Decodes sample `index`; throws an error naming the file and the reason.
  func loadImage(at index: Int) throws -> Image
  /// Whether an unreadable image must stop training (the user asked for strict data)
  /// instead of being skipped. False unless a source says otherwise.
  var isStrict: Bool { get }
  /// Called when a loader has stopped reading (its thread has returned): a source that
  /// keeps state on disk saves it now.
  func readingStopped()
}

extension ImageSource {
  public var isStrict: Bool { false }
  public func readingStopped() {}
}

/// Images held in memory (tests, benchmarks, small datasets).
public struct InMemoryImages: ImageSource {
  public let images: [Image]
  public init(_ images: [Image]) { self.images = images }
  public var count: Int { images.count }
  public func name(of index: Int) -> String { "image #\(index)" }
  public func loadImage(at index: Int) throws -> Image { images[index] }
}

public struct LoaderOptions: Sendable {
  public var batchSize: Int
  /// Shuffle each epoch (a permutation from the seed and the epoch number).
  public var shuffle: Bool
  /// Drop the last incomplete batch of an epoch.
  public var dropLast: Bool
  public var seed: UInt64
  /// Batches prepared ahead of the consumer: bounds the memory in flight. (Decoded
  /// images are not kept here: a folder's cache is `CachedImageFolder`, a memory map.)
  public var prefetchBatches: Int
  /// Fail on the first unreadable image instead of skipping it.
  public var strict: Bool
  /// Data-parallel training: this loader prepares slice `shard` of `shards` equal slices
  /// of every batch of `batchSize` (the global batch): samples shard·b ..< (shard+1)·b of
  /// it, b = batchSize / shards. The epoch order and each sample's augmentation do not
  /// depend on the split, so the shards of a batch together are the one-process batch.
  public var shard: Int
  public var shards: Int

  public init(
    batchSize: Int, shuffle: Bool = true, dropLast: Bool = true, seed: UInt64 = 0,
    prefetchBatches: Int = 2, strict: Bool = false, shard: Int = 0, shards: Int = 1
  ) {
    self.batchSize = batchSize
    self.shuffle = shuffle
    self.dropLast = dropLast
    self.seed = seed
    self.prefetchBatches = prefetchBatches
    self.strict = strict
    self.shard = shard
    self.shards = shards
  }

  /// Samples this loader prepares per batch.
  public var shardSize: Int { batchSize / shards }
}

/// Where a loader is in its stream: the epoch and the batch within it. Saving it with a
/// checkpoint and passing it back to a new loader resumes the exact same batches.
public struct LoaderPosition: Codable, Sendable, Equatable, Comparable {
  public var epoch: Int
  public var batch: Int
  public init(epoch: Int = 0, batch: Int = 0) {
    self.epoch = epoch
    self.batch = batch
  }
  public static func < (a: Self, b: Self) -> Bool { (a.epoch, a.batch) < (b.epoch, b.batch) }
}

/// An unreadable image met while loading (reported once per file).
public struct SkippedImage: Sendable, Equatable {
  public let index: Int
  public let name: String
  public let reason: String
}

/// Shuffled, augmented batches prepared on a background thread while the training step
/// runs (one thread: data preparation costs at most one core).
///
/// Determinism: the epoch order comes from (seed, epoch) and each sample's augmentation
/// from its own generator seeded by (seed, epoch, position in the epoch), so the batches
/// are the same whatever the timing, the prefetch depth or the cache, and a loader
/// started at a saved `LoaderPosition` continues the same stream. An unreadable image is
/// reported once and its slot is filled by the next readable image in the epoch order.
public final class DataLoader<Sample: Sendable, Batch: Sendable>: @unchecked Sendable {
  public typealias Prepare = @Sendable (Image, inout RandomGenerator) throws -> Sample
  public typealias Collate = @Sendable ([Sample]) throws -> Batch

  public var source: any ImageSource { pipeline.source }
  public var options: LoaderOptions { pipeline.options }
  /// Batches per epoch.
  public var batchesPerEpoch: Int { pipeline.batchesPerEpoch }
  // The background thread owns the pipeline, never the loader: when the loader goes
  // away, its deinit stops the pipeline and waits for the thread.
  private let pipeline: LoaderPipeline<Sample, Batch>

  public init(
    source: any ImageSource, options: LoaderOptions, startingAt start: LoaderPosition = LoaderPosition(),
    prepare: @escaping Prepare, collate: @escaping Collate
  ) throws {
    guard options.batchSize > 0 else { throw LoaderError("batch size must be positive, got \(options.batchSize)") }
    guard options.shards >= 1, (0..<options.shards).contains(options.shard) else {
      throw LoaderError("shard \(options.shard) of \(options.shards) does not exist")
    }
    guard options.batchSize % options.shards == 0 else {
      throw LoaderError("a batch of \(options.batchSize) cannot be split into \(options.shards) equal shards")
    }
    guard options.shards == 1 || options.dropLast else {
      throw LoaderError("sharded loading needs dropLast (every shard of every batch full)")
    }
    guard source.count > 0 else { throw LoaderError("the dataset is empty") }
    guard !options.dropLast || source.count >= options.batchSize else {
      throw LoaderError(
        "the dataset has \(source.count) images, fewer than one batch of \(options.batchSize) (lower the batch size)")
    }
    pipeline = LoaderPipeline(source: source, options: options, prepare: prepare, collate: collate)
    let p = pipeline
    let thread = Thread {
      p.produce(from: start)
      p.finished.signal()
    }
    thread.name = "pretext.loader"
    thread.start()
  }

  deinit { pipeline.stop() }

  /// Stops the background thread and waits for it to return (also done on deinit), so
  /// no file is read after `stop()`.
  public func stop() { pipeline.stop() }

  /// Images skipped so far because they could not be read.
  public var skipped: [SkippedImage] { pipeline.skipped }

  /// The next batch and its position (blocks until it is ready). Throws the error that
  /// stopped preparation (e.g. an unreadable image in strict mode).
  public func next() throws -> (position: LoaderPosition, batch: Batch) { try pipeline.next() }

  /// The sample order of `epoch`.
  public func order(epoch: Int) -> [Int] { pipeline.order(epoch: epoch) }
}

/// The state shared by a loader and its background thread.
final class LoaderPipeline<Sample: Sendable, Batch: Sendable>: @unchecked Sendable {
  let source: any ImageSource
  let options: LoaderOptions
  let prepare: DataLoader<Sample, Batch>.Prepare
  let collate: DataLoader<Sample, Batch>.Collate
  let batchesPerEpoch: Int

  private struct Queue {
    var ready: [(LoaderPosition, Result<Batch, Error>)] = []
    var stopped = false
    var skipped: [SkippedImage] = []
  }
  private let queue = Mutex(Queue())
  private let condition = NSCondition()
  /// Signalled when the background thread has returned.
  let finished = DispatchSemaphore(value: 0)
  // Worker-thread state (touched only by the worker).
  private var bad = Set<Int>()

  init(
    source: any ImageSource, options: LoaderOptions, prepare: @escaping DataLoader<Sample, Batch>.Prepare,
    collate: @escaping DataLoader<Sample, Batch>.Collate
  ) {
    self.source = source
    self.options = options
    self.prepare = prepare
    self.collate = collate
    let n = source.count
    batchesPerEpoch = options.dropLast ? n / options.batchSize : (n + options.batchSize - 1) / options.batchSize
  }

  func stop() {
    condition.lock()
    let already = queue.withLock { q -> Bool in
      defer { q.stopped = true }
      return q.stopped
    }
    condition.broadcast()
    condition.unlock()
    if !already {
      finished.wait()
      source.readingStopped()
    }
  }

  private var isStopped: Bool { queue.withLock { $0.stopped } }

  var skipped: [SkippedImage] { queue.withLock { $0.skipped } }

  func next() throws -> (position: LoaderPosition, batch: Batch) {
    condition.lock()
    defer { condition.unlock() }
    while true {
      let item: (LoaderPosition, Result<Batch, Error>)? = queue.withLock { q in
        q.ready.isEmpty ? nil : q.ready.removeFirst()
      }
      if let (position, result) = item {
        condition.broadcast()
        return (position, try result.get())
      }
      if isStopped { throw LoaderError("stopped") }
      condition.wait()
    }
  }

  func order(epoch: Int) -> [Int] {
    guard options.shuffle else { return Array(0..<source.count) }
    var rng = RandomGenerator(seed: mix(options.seed, UInt64(epoch), 0x5EED))
    return rng.permutation(source.count)
  }

  func produce(from start: LoaderPosition) {
    var position = start
    while true {
      let order = self.order(epoch: position.epoch)
      while position.batch < batchesPerEpoch {
        let result = Result { try makeBatch(order: order, position: position) }
        if isStopped || !enqueue(position, result) { return }
        if case .failure = result { return }
        position.batch += 1
      }
      position = LoaderPosition(epoch: position.epoch + 1, batch: 0)
    }
  }

  /// Waits for room in the queue, then appends. Returns false when stopped.
  private func enqueue(_ position: LoaderPosition, _ result: Result<Batch, Error>) -> Bool {
    condition.lock()
    defer { condition.unlock() }
    while true {
      let (stopped, full) = queue.withLock { ($0.stopped, $0.ready.count >= max(1, options.prefetchBatches)) }
      if stopped { return false }
      if !full { break }
      condition.wait()
    }
    queue.withLock { $0.ready.append((position, result)) }
    condition.broadcast()
    return true
  }

  private func makeBatch(order: [Int], position: LoaderPosition) throws -> Batch {
    let n = order.count
    // Positions in the epoch order: this shard's slice of the global batch.
    let first = position.batch * options.batchSize + options.shard * options.shardSize
    let size = min(options.shardSize, n - first)
    var samples: [Sample] = []
    samples.reserveCapacity(size)
    for slot in 0..<size {
      if isStopped { throw LoaderError("stopped") }
      let p = first + slot
      var rng = RandomGenerator(seed: mix(options.seed, UInt64(position.epoch), UInt64(p)))
      // The image at position p, or the next readable one in the epoch order.
      var image: Image? = nil
      for offset in 0..<n {
        let index = order[(p + offset) % n]
        if let loaded = try load(index) {
          image = loaded
          break
        }
      }
      guard let image else { throw LoaderError("no image in \(n) could be read (see the skipped files above)") }
      samples.append(try prepare(image, &rng))
    }
    return try collate(samples)
  }

  /// The decoded image at `index`, or nil if it is unreadable (reported once).
  private func load(_ index: Int) throws -> Image? {
    if bad.contains(index) { return nil }
    do {
      return try source.loadImage(at: index)
    } catch let error as VisionError where error.kind == .cache {
      throw error  // the cache itself failed (its file), not this image
    } catch {
      if options.strict { throw error }
      bad.insert(index)
      let skip = SkippedImage(index: index, name: source.name(of: index), reason: "\(error)")
      queue.withLock { $0.skipped.append(skip) }
      FileHandle.standardError.write(Data("pretext: skipping unreadable image \(error)\n".utf8))
      return nil
    }
  }
}

public struct LoaderError: Error, CustomStringConvertible, Sendable {
  public let description: String
  public init(_ description: String) { self.description = "loader: " + description }
}

/// Mixes three numbers into one seed (SplitMix64 finalizer over a combination), so
/// nearby (epoch, position) pairs give unrelated generators.
@inline(__always)
func mix(_ a: UInt64, _ b: UInt64, _ c: UInt64) -> UInt64 {
  var z = a &+ 0x9E37_79B9_7F4A_7C15 &* (b &+ 1) &+ 0xD1B5_4A32_D192_ED03 &* (c &+ 1)
  z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
  z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
  return z ^ (z >> 31)
}
