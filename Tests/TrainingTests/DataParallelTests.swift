import Autograd
import Backbones
import Foundation
import NN
import Tasks
import Training
import Vision
import XCTest

/// Data-parallel training inside one process: N trainers on N threads meet through
/// `ThreadGroup`, a `Communicator` over shared memory. Every rank and the single-process
/// reference run with one kernel thread, so that the batch split is the only difference,
/// and the whole averaged gradient of the first step can be compared with the
/// single-process one, parameter by parameter (the mpirun tests, DistributedTests.swift,
/// compare what the command line shows).
///
/// Tolerance: the two runs compute the same sums with the global batch split in two, so
/// they differ by float32 rounding only. Reordering a sum of n terms changes it by at
/// most (n − 1)·u·Σ|terms| (u = 2⁻²⁴, the unit roundoff). The backward pass goes through
/// the model's layers one after another, and each may add such a reordered batch sum of
/// its own (its weight gradient, BatchNorm's statistics, the NT-Xent negatives, the loss
/// mean), so a gradient may differ by about L·(n − 1)·u of the gradient's scale, with L
/// the model's layers (Linear, Conv2d, BatchNorm and LayerNorm modules, counted from the
/// model) and n the terms of the longest such sum: a weight gradient sums over every row
/// the layer saw, the views of the global batch × the tokens of a ViT or the positions of
/// a ResNet's first stage. The bound is taken against the norm of the
/// whole gradient: a parameter whose gradient is zero in exact arithmetic (the last
/// LayerNorm's bias, before the projection head's BatchNorm, which removes any constant
/// shift) holds only rounding noise, which has no relative precision. The bound is a
/// worst case (rounding errors of a long sum grow more like √n than n): measured rounding
/// differences are 1e-7 to 1.3e-6, more than 100 times below it; the mistakes this test
/// is for (gradients summed instead of averaged, BatchNorm statistics not synchronized)
/// give 0.14 to 0.7, more than 10 times above it.
final class DataParallelTests: XCTestCase {
  var threadsBefore = 1
  override func setUp() {
    threadsBefore = Parallel.threads
    Parallel.setThreads(1)
  }
  override func tearDown() { Parallel.setThreads(threadsBefore) }

  func makeTrainer(
    _ taskName: String, taskSettings: String, backbone: BackboneConfig, group: any Communicator,
    configure: (inout TrainerSettings) -> Void = { _ in }
  ) throws -> Trainer {
    var rng = RandomGenerator(seed: 1)
    let model: any Backbone
    switch backbone {
    case .vit(let c): model = try VisionTransformer(c, using: &rng)
    case .resnet(let c): model = try ResNet(c, using: &rng)
    }
    var taskRNG = RandomGenerator(seed: 2)
    let task = try TaskRegistry.make(
      taskName, settings: JSONDecoderBox.decoder(for: taskSettings), backbone: model, using: &taskRNG)
    var s = TrainerSettings()
    s.batchSize = 16
    s.steps = 1
    s.baseLearningRate = 0.01
    s.logEvery = 1
    s.artifactsEvery = 0
    s.syncBatchNorm = true
    configure(&s)
    let run = FileManager.default.temporaryDirectory.appendingPathComponent(
      "pretext-dp-\(UUID().uuidString)-\(group.rank)")
    addTeardownBlock { try? FileManager.default.removeItem(at: run) }
    let trainer = try Trainer(
      task: task, backbone: model, source: TrainerTests.dataset(ramp: true), settings: s, runDirectory: run.path,
      group: group)
    trainer.onProgress = { _ in }
    return trainer
  }

  /// Every trainable parameter's gradient after the run (its single step), by name.
  func gradients(_ trainer: Trainer) -> [String: [Float]] {
    var out: [String: [Float]] = [:]
    for (name, module) in [("backbone", trainer.backbone as Module), ("heads", trainer.task.heads)] {
      for (p, t) in module.namedParameters() {
        if let g = t.grad { out["\(name).\(p)"] = Array(UnsafeBufferPointer(start: g.data, count: g.count)) }
      }
    }
    return out
  }

  /// Runs each rank's trainer on a thread of its own; their summaries, in rank order.
  func runRanks(_ trainers: [Trainer]) throws -> [TrainingSummary] {
    let results = ResultBox<TrainingSummary>(count: trainers.count)
    let threads = trainers.enumerated().map { (r, t) in Thread { results.set(r, Result { try t.run(resume: false) }) } }
    threads.forEach { $0.stackSize = 8 << 20 }
    threads.forEach { $0.start() }
    return try XCTUnwrap(try results.wait(seconds: 300), "a rank did not finish").map { try $0.get() }
  }

  /// One step on one process and on `ranks` threads; the first step's losses and every
  /// averaged gradient must agree within the rounding bound above.
  func assertSameFirstStep(
    _ taskName: String, _ taskSettings: String, backbone: BackboneConfig, viewsPerImage: Int, ranks: Int = 2,
    file: StaticString = #filePath, line: UInt = #line
  ) throws {
    let single = try makeTrainer(taskName, taskSettings: taskSettings, backbone: backbone, group: SingleProcess())
    let one = try single.run(resume: false)
    let reference = gradients(single)
    let groups = ThreadGroup.make(size: ranks)
    let trainers = try groups.map {
      try makeTrainer(taskName, taskSettings: taskSettings, backbone: backbone, group: $0)
    }
    let summaries = try runRanks(trainers)
    // The terms of the longest batch sum: views × rows per view.
    let rowsPerView: Int
    switch backbone {
    case .vit(let c): rowsPerView = c.gridSize * c.gridSize + 1
    case .resnet(let c): rowsPerView = c.stem == .small ? c.imageSize * c.imageSize : (c.imageSize / 4) * (c.imageSize / 4)
    }
    let views = Double(16 * viewsPerImage * rowsPerView)
    let layers = [single.backbone as Module, single.task.heads].flatMap { $0.namedModules() }.filter {
      $0.module is Linear || $0.module is Conv2d || $0.module is BatchNorm || $0.module is LayerNorm
    }.count
    let bound = Double(layers) * (views - 1) * Double(Float.ulpOfOne / 2)
    XCTAssertEqual(summaries[0].finalLoss, one.finalLoss, accuracy: bound * abs(one.finalLoss), file: file, line: line)
    for rank in 0..<ranks {
      let averaged = gradients(trainers[rank])
      XCTAssertEqual(Set(averaged.keys), Set(reference.keys), "rank \(rank): the parameters with a gradient")
      let scale = reference.values.reduce(0.0) { $0 + $1.reduce(0) { $0 + Double($1 * $1) } }.squareRoot()
      XCTAssertGreaterThan(scale, 0, file: file, line: line)
      var worst = (name: "", difference: 0.0)
      for (name, g) in reference {
        let a = averaged[name] ?? []
        XCTAssertEqual(a.count, g.count, name, file: file, line: line)
        let d = zip(a, g).reduce(0.0) { $0 + Double(($1.0 - $1.1) * ($1.0 - $1.1)) }.squareRoot()
        if d > worst.difference { worst = (name, d) }
      }
      XCTAssertLessThanOrEqual(
        worst.difference / scale, bound,
        "rank \(rank): \(worst.name) differs by \(worst.difference / scale) of the gradient's norm", file: file,
        line: line)
    }
  }

  static let vit = BackboneConfig.vit(
    ViTConfig(name: "vit-test", imageSize: 16, patchSize: 4, inChannels: 1, width: 32, depth: 2, heads: 2))
  static let resnet = BackboneConfig.resnet(
    ResNetConfig(
      name: "resnet-test", block: .basic, layers: [1, 1, 1, 1], width: 4, inChannels: 1, stem: .small, imageSize: 16))

  func testSimCLRGradientsWithGatheredNegativesAndSyncBatchNorm() throws {
    try assertSameFirstStep(
      "simclr", #"{"projection_hidden": 32, "projection_output": 16}"#, backbone: Self.vit, viewsPerImage: 2)
  }

  func testSimCLRGradientsOnAResNetWithSyncBatchNorm() throws {
    try assertSameFirstStep(
      "simclr", #"{"projection_hidden": 32, "projection_output": 16}"#, backbone: Self.resnet,
      viewsPerImage: 2)
  }

  /// A minutes budget on two ranks whose clocks disagree (rank 1 sees its steps take twice
  /// as long): every rank takes rank 0's plan, so all take the same 60 steps and meet at
  /// every collective.
  func testMinutesBudgetIsRankZerosPlanOnEveryRank() throws {
    let groups = ThreadGroup.make(size: 2)
    let trainers = try groups.map { group in
      try makeTrainer(
        "simclr", taskSettings: #"{"projection_hidden": 32, "projection_output": 16}"#, backbone: Self.vit,
        group: group
      ) {
        $0.steps = 0
        $0.minutes = 0.0625
        $0.checkpointEvery = 1000
      }
    }
    for (rank, trainer) in trainers.enumerated() {
      let clock = SimulatedClock(tick: rank == 0 ? 1.0 / 16 : 1.0 / 8)
      trainer.clock = { clock.read() }
    }
    let summaries = try runRanks(trainers)
    XCTAssertEqual(summaries.map(\.steps), [60, 60])
    XCTAssertEqual(summaries.map(\.totalSteps), [60, 60])
  }

  func testMAEGradients() throws {
    try assertSameFirstStep(
      "mae", #"{"decoder_width": 32, "decoder_depth": 1, "decoder_heads": 2}"#, backbone: Self.vit,
      viewsPerImage: 1)
  }

  func testMoCoV3GradientsWithGatheredKeysAndSyncBatchNorm() throws {
    for backbone in [Self.vit, Self.resnet] {
      try assertSameFirstStep(
        "moco-v3", #"{"projection_hidden": 32, "projection_output": 16, "predictor_hidden": 32}"#, backbone: backbone,
        viewsPerImage: 2)
    }
  }

  func testBYOLGradients() throws {
    try assertSameFirstStep(
      "byol", #"{"projection_hidden": 32, "projection_output": 16, "predictor_hidden": 32}"#, backbone: Self.resnet,
      viewsPerImage: 2)
  }

  func testRelativeLocationGradients() throws {
    try assertSameFirstStep(
      "relative-location", #"{"resize": 32, "patch_size": 8, "gap": 2, "jitter": 1, "head_hidden": 32}"#,
      backbone: Self.resnet, viewsPerImage: 2)
  }
}

/// A group of `size` ranks in one process, one thread each: the collectives of
/// `Communicator` over shared memory. Each collective is three phases separated by
/// barriers: every rank posts its buffer; every rank computes its result from all the
/// posted buffers into a private copy; every rank writes its result. No rank writes a
/// buffer while another may still read it.
final class ThreadGroup: Communicator, @unchecked Sendable {
  final class Shared: @unchecked Sendable {
    let size: Int
    let condition = NSCondition()
    var arrived = 0
    var generation = 0
    /// One slot per rank, each written by its rank only (a raw buffer: ranks write their
    /// slots at the same time).
    let posted: UnsafeMutablePointer<UnsafeRawPointer?>
    init(size: Int) {
      self.size = size
      posted = .allocate(capacity: size)
      posted.initialize(repeating: nil, count: size)
    }
    deinit { posted.deallocate() }
    func barrier() {
      condition.lock()
      defer { condition.unlock() }
      let mine = generation
      arrived += 1
      if arrived == size {
        arrived = 0
        generation += 1
        condition.broadcast()
      } else {
        while generation == mine { condition.wait() }
      }
    }
  }

  let rank: Int
  var size: Int { shared.size }
  let shared: Shared

  init(rank: Int, shared: Shared) {
    self.rank = rank
    self.shared = shared
  }

  static func make(size: Int) -> [ThreadGroup] {
    let shared = Shared(size: size)
    return (0..<size).map { ThreadGroup(rank: $0, shared: shared) }
  }

  /// Posts `buffer`, waits for every rank's, runs `compute` on them, waits again, then
  /// runs `write` (which may change this rank's buffer) and waits for every rank to be
  /// done with the collective.
  func collective(_ buffer: UnsafeRawPointer, compute: ([UnsafeRawPointer]) -> Void, write: () -> Void) {
    shared.posted[rank] = buffer
    shared.barrier()
    compute((0..<size).map { shared.posted[$0]! })
    shared.barrier()
    write()
    shared.barrier()
  }

  /// Sums in rank order, so that every rank gets the same bits.
  func sum<T: BinaryFloatingPoint>(_ values: UnsafeMutablePointer<T>, count: Int) {
    var sums = [T](repeating: 0, count: count)
    collective(
      values,
      compute: { all in
        for p in all {
          let x = p.assumingMemoryBound(to: T.self)
          for i in 0..<count { sums[i] += x[i] }
        }
      }, write: { values.update(from: sums, count: count) })
  }

  func allReduceSum(_ values: UnsafeMutablePointer<Float>, count: Int) { sum(values, count: count) }
  func allReduceSum(_ values: UnsafeMutablePointer<Double>, count: Int) { sum(values, count: count) }

  func allGather(_ send: UnsafeRawPointer, bytes: Int, into receive: UnsafeMutableRawPointer) {
    collective(
      send,
      compute: { all in
        for (r, p) in all.enumerated() { (receive + r * bytes).copyMemory(from: p, byteCount: bytes) }
      }, write: {})
  }

  func broadcast(_ buffer: UnsafeMutableRawPointer, bytes: Int, root: Int) {
    var copy = [UInt8](repeating: 0, count: bytes)
    collective(
      buffer,
      compute: { all in copy.withUnsafeMutableBytes { $0.baseAddress!.copyMemory(from: all[root], byteCount: bytes) } },
      write: { if rank != root { copy.withUnsafeBytes { buffer.copyMemory(from: $0.baseAddress!, byteCount: bytes) } } })
  }
}

/// Results handed back from threads.
final class ResultBox<T>: @unchecked Sendable {
  private var values: [Result<T, any Error>?]
  private let condition = NSCondition()
  init(count: Int) { values = Array(repeating: nil, count: count) }
  func set(_ i: Int, _ r: Result<T, any Error>) {
    condition.lock()
    values[i] = r
    condition.broadcast()
    condition.unlock()
  }
  /// Every result once all are in; the first failure as soon as one rank fails (it
  /// leaves the others waiting at a collective); nil when some are still missing after
  /// `seconds`.
  func wait(seconds: Double) throws -> [Result<T, any Error>]? {
    let deadline = Date(timeIntervalSinceNow: seconds)
    condition.lock()
    defer { condition.unlock() }
    while values.contains(where: { $0 == nil }) {
      for case .failure(let error)? in values { throw error }
      if !condition.wait(until: deadline) { return nil }
    }
    return values.map { $0! }
  }
}
