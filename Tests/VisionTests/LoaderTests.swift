import Autograd
import Foundation
import Vision
import XCTest

/// A source with some unreadable images, counting how often each is decoded.
final class FlakySource: ImageSource, @unchecked Sendable {
  let images: [Image]
  let broken: Set<Int>
  private let lock = NSLock()
  private(set) var loads: [Int: Int] = [:]
  init(count: Int, broken: Set<Int> = []) {
    images = (0..<count).map { Image(width: 2, height: 2, channels: 1, filledWith: UInt8($0 % 256)) }
    self.broken = broken
  }
  var count: Int { images.count }
  func name(of index: Int) -> String { "img\(index).png" }
  func loadImage(at index: Int) throws -> Image {
    lock.lock()
    loads[index, default: 0] += 1
    lock.unlock()
    if broken.contains(index) { throw LoaderError("img\(index).png: corrupt") }
    return images[index]
  }
}

final class LoaderTests: XCTestCase {
  /// Batches of (image id, a random draw from the sample's generator).
  func makeLoader(_ source: any ImageSource, seed: UInt64 = 1, batch: Int = 4, start: LoaderPosition = .init(),
                  prefetch: Int = 2, strict: Bool = false) throws -> DataLoader<[Float], [[Float]]> {
    try DataLoader(
      source: source,
      options: LoaderOptions(batchSize: batch, seed: seed, prefetchBatches: prefetch, strict: strict),
      startingAt: start,
      prepare: { image, rng in [Float(image.pixels[0]), rng.nextFloat()] },
      collate: { $0 })
  }

  func testSameSeedSameBatchesAndEveryImageOncePerEpoch() throws {
    let source = FlakySource(count: 20)
    let a = try makeLoader(source), b = try makeLoader(source, prefetch: 5)
    XCTAssertEqual(a.batchesPerEpoch, 5)
    var seen: [Float] = []
    for i in 0..<10 {
      let (pa, ba) = try a.next()
      let (pb, bb) = try b.next()
      XCTAssertEqual(pa, pb)
      XCTAssertEqual(ba, bb)
      XCTAssertEqual(pa, LoaderPosition(epoch: i / 5, batch: i % 5))
      if i < 5 { seen += ba.map { $0[0] } }
    }
    XCTAssertEqual(seen.sorted(), (0..<20).map(Float.init))
    let c = try makeLoader(source, seed: 2)
    XCTAssertNotEqual(try c.next().batch, try makeLoader(source).next().batch)
  }

  func testEpochsHaveDifferentOrders() throws {
    let loader = try makeLoader(FlakySource(count: 40), batch: 40)
    XCTAssertNotEqual(try loader.next().batch.map { $0[0] }, try loader.next().batch.map { $0[0] })
  }

  func testResumeContinuesTheSameStream() throws {
    let source = FlakySource(count: 12)
    let full = try makeLoader(source, batch: 3)
    var stream: [[[Float]]] = []
    for _ in 0..<9 { stream.append(try full.next().batch) }
    let resumed = try makeLoader(source, batch: 3, start: LoaderPosition(epoch: 1, batch: 1))
    for i in 5..<9 { XCTAssertEqual(try resumed.next().batch, stream[i]) }
  }

  func testUnreadableImagesAreSkippedOnceAndReplaced() throws {
    let source = FlakySource(count: 10, broken: [3, 7])
    let loader = try makeLoader(source, batch: 5)
    for _ in 0..<6 {
      let batch = try loader.next().batch
      XCTAssertEqual(batch.count, 5)
      XCTAssertFalse(batch.contains { $0[0] == 3 || $0[0] == 7 })
    }
    XCTAssertEqual(Set(loader.skipped.map(\.index)), [3, 7])
    XCTAssertEqual(loader.skipped.count, 2)
    // An unreadable image is tried once, then left out of every later epoch.
    XCTAssertEqual(source.loads[3], 1)
    XCTAssertEqual(source.loads[7], 1)
  }

  func testStrictModeFailsWithTheFile() throws {
    let loader = try makeLoader(FlakySource(count: 8, broken: Set(0..<8)), strict: true)
    XCTAssertThrowsError(try loader.next()) { XCTAssertTrue("\($0)".contains("corrupt"), "\($0)") }
  }

  /// Data-parallel loading: the shards of a batch, concatenated in shard order, are the
  /// one-loader batch, sample for sample and augmentation draw for draw, in every epoch.
  func testShardsOfABatchTogetherAreTheOneLoaderBatch() throws {
    let source = FlakySource(count: 26)
    func loader(shard: Int, shards: Int) throws -> DataLoader<[Float], [[Float]]> {
      try DataLoader(
        source: source, options: LoaderOptions(batchSize: 6, seed: 3, shard: shard, shards: shards),
        prepare: { image, rng in [Float(image.pixels[0]), rng.nextFloat()] }, collate: { $0 })
    }
    let whole = try loader(shard: 0, shards: 1)
    let parts = try (0..<3).map { try loader(shard: $0, shards: 3) }
    XCTAssertEqual(parts[0].batchesPerEpoch, whole.batchesPerEpoch)
    for _ in 0..<(2 * whole.batchesPerEpoch + 1) {
      let (position, batch) = try whole.next()
      let pieces = try parts.map { try $0.next() }
      XCTAssertTrue(pieces.allSatisfy { $0.position == position })
      XCTAssertTrue(pieces.allSatisfy { $0.batch.count == 2 })
      XCTAssertEqual(pieces.flatMap(\.batch), batch, "batch \(position)")
    }
    XCTAssertThrowsError(try loader(shard: 0, shards: 4)) {
      XCTAssertTrue("\($0)".contains("a batch of 6 cannot be split into 4 equal shards"), "\($0)")
    }
  }

  func testBadConfigurationIsAClearError() {
    XCTAssertThrowsError(try makeLoader(FlakySource(count: 3), batch: 4)) {
      XCTAssertTrue("\($0)".contains("fewer than one batch"), "\($0)")
    }
    XCTAssertThrowsError(try makeLoader(FlakySource(count: 0)))
  }
}
