import Foundation
import XCTest

/// Data-parallel pretraining under `mpirun`: the same config and global batch on one
/// process and on two give the same losses, a checkpoint written by one number of
/// processes resumes on another, and only process 0 writes the run.
///
/// Tolerance: the two runs see the same samples with the same augmentations and start
/// from the same weights, and each process runs one kernel thread: what differs is the
/// order of float32 sums over the global batch (each process sums over its half, then
/// the halves are added; the same for BatchNorm statistics and the NT-Xent negatives).
/// The rounding model of DataParallelTests.swift (TrainingTests, where the whole first
/// gradient is compared in one process) bounds the first step's loss and gradient norm
/// by ρ = L·(n − 1)·u relative, with L = 50 layers (vit-cpu at depth 6 has 38 Linear,
/// Conv2d and LayerNorm modules; the heads here at most 9) and n = 32 views × 17 tokens
/// (16 px images in 4-px patches, and the class token) = 544 terms of the longest sum.
///
/// Later steps use SGD, whose update is linear in the gradient: the weights then differ
/// by ‖δw_k‖ ≤ Σ_{j<k} lr_j·ρ·‖g_j‖/(1 − β) (momentum β), which moves step k's loss by at
/// most ‖g_k‖·‖δw_k‖ to first order (×2 for the curvature), on top of the step's own
/// rounding ρ·|loss_k|; the learning rates and gradient norms are read from the run's
/// log. AdamW would not do: its update g/(√v + ε) turns the rounding noise on gradient
/// elements that are zero in exact arithmetic (the last LayerNorm's bias, before the
/// projection head's BatchNorm) into full ±lr steps of either sign, so that later losses
/// differ by an amount set by the machine's kernels (measured with AdamW: up to 4e-5
/// relative by step 6 on one machine, 6e-4 on another), not by a mistake. A mistake in the data
/// split, the gradient average, the gathered negatives or the synchronized statistics
/// changes the losses by 1e-2 or more from the first or second step. Accuracies are
/// argmax counts: a near-tie may flip once between the two runs (1/16 of the smallest
/// count).
final class DistributedTests: XCTestCase {
  var dir: URL!
  var mpirun: String!

  override func setUpWithError() throws {
    guard let found = ["/usr/bin/mpirun", "/usr/local/bin/mpirun"].first(where: FileManager.default.isExecutableFile)
    else {
      throw XCTSkip("MPI is absent: no mpirun (install it with `apt-get install openmpi-bin libopenmpi-dev`)")
    }
    mpirun = found
    let doctor = try runPretext(["doctor", "--json"])
    let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(doctor.out.utf8)) as? [String: Any])
    guard report["mpi_library"] is String else {
      throw XCTSkip("MPI is absent: \(report["mpi_problem"] as? String ?? "libmpi not found")")
    }
    dir = FileManager.default.temporaryDirectory.appendingPathComponent("pretext-mpi-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    try writeTinyFashionMNIST(to: dir.appendingPathComponent("idx"), train: 32, test: 10) { i, y, x in
      UInt8(((y * 28 + x) * 7 + i * 13 + (x / 7) * (i % 5) * 20) % 251)
    }
    let r = try runPretext([
      "data", "import", "fashion-mnist", "--source", dir.appendingPathComponent("idx").path, "--out",
      dir.appendingPathComponent("fm").path,
    ])
    XCTAssertEqual(r.status, 0, r.err)
  }

  override func tearDownWithError() throws {
    if let dir { try? FileManager.default.removeItem(at: dir) }
  }

  /// A tiny experiment: 32 images, global batch 16 (2 steps per epoch), 6 steps.
  func config(task: String, extra: String = "") throws -> String {
    let path = dir.appendingPathComponent("exp.yaml").path
    try """
    output: \(dir.appendingPathComponent("runs").path)
    data: {unlabeled: \(dir.appendingPathComponent("fm/unlabeled").path)}
    backbone: {preset: vit-cpu, image_size: 16, patch_size: 4, in_channels: 1, width: 48}
    task: \(task)
    train:
      batch_size: 16
      steps: 6
      optimizer: sgd
      momentum: 0.9
      base_lr: 0.01
      warmup_fraction: 0.2
      log_every: 1
      checkpoint_every: 3
      artifacts_every: 0
    \(extra)
    """.write(toFile: path, atomically: true, encoding: .utf8)
    return path
  }

  /// `pretext ARGS` on `processes` processes (through mpirun when more than one), with
  /// one kernel thread each.
  func pretext(_ processes: Int, _ args: [String]) throws -> (status: Int32, out: String, err: String) {
    if processes == 1 { return try runPretext(args + ["--threads", "1"]) }
    return try runProcess(
      URL(fileURLWithPath: mpirun),
      ["--oversubscribe", "--allow-run-as-root", "--timeout", "300", "-np", "\(processes)", try pretextExecutable().path]
        + args + ["--threads", "1"])
  }

  struct Record {
    let step: Int
    let loss: Double
    let learningRate: Double
    let gradientNorm: Double
    let metrics: [String: Double]
  }

  /// The step records of a run's metrics.jsonl.
  func records(_ name: String) throws -> [Record] {
    let text = try String(
      contentsOf: dir.appendingPathComponent("runs/\(name)/metrics.jsonl"), encoding: .utf8)
    return try text.split(separator: "\n").map {
      let o = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
      return Record(
        step: try XCTUnwrap(o["step"] as? Int), loss: try XCTUnwrap(o["loss"] as? Double),
        learningRate: try XCTUnwrap(o["lr"] as? Double), gradientNorm: try XCTUnwrap(o["grad_norm"] as? Double),
        metrics: o["metrics"] as? [String: Double] ?? [:])
    }
  }

  /// The rounding bound ρ of the header: L·(n − 1)·u.
  static let rounding = 50 * 543 * Double(Float.ulpOfOne / 2)

  func assertSameLosses(_ a: String, _ b: String, file: StaticString = #filePath, line: UInt = #line) throws {
    let ra = try records(a), rb = try records(b)
    XCTAssertEqual(ra.map(\.step), Array(1...6), file: file, line: line)
    XCTAssertEqual(ra.map(\.step), rb.map(\.step), file: file, line: line)
    let rho = Self.rounding, momentum = 0.9
    XCTAssertEqual(
      ra[0].gradientNorm, rb[0].gradientNorm, accuracy: rho * ra[0].gradientNorm, "\(a) vs \(b), step 1 gradient norm",
      file: file, line: line)
    var drift = 0.0  // the bound on ‖δw‖ so far
    for (x, y) in zip(ra, rb) {
      let tolerance = rho * abs(x.loss) + 2 * x.gradientNorm * drift
      XCTAssertEqual(x.loss, y.loss, accuracy: tolerance, "\(a) vs \(b), step \(x.step)", file: file, line: line)
      drift += x.learningRate * rho * x.gradientNorm / (1 - momentum)
      for (name, value) in x.metrics {
        XCTAssertEqual(
          value, y.metrics[name] ?? .nan, accuracy: 1.0 / 16 + 1e-9, "\(name), step \(x.step)", file: file, line: line)
      }
    }
  }

  func train(_ name: String, processes: Int, config: String, extra: [String] = []) throws {
    let r = try pretext(processes, ["pretrain", config, "--set", "name=\(name)"] + extra)
    XCTAssertEqual(r.status, 0, r.err)
    // Only process 0 prints the result and writes the run.
    XCTAssertEqual(r.out.components(separatedBy: "done: 6 steps").count - 1, 1, r.out)
  }

  func testMAELossesAreTheSameOnOneAndTwoProcesses() throws {
    let config = try config(task: "{name: mae, decoder_width: 32, decoder_depth: 1, decoder_heads: 2}")
    try train("one", processes: 1, config: config)
    try train("two", processes: 2, config: config)
    try assertSameLosses("one", "two")
    let files = try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("runs/two").path)
    XCTAssertEqual(
      Set(files),
      [
        "config.yaml", "metrics.jsonl", "backbone.safetensors", "checkpoint-00000003.safetensors",
        "checkpoint-00000006.safetensors", "reconstruction-0000006.png", "pretrain.json",
      ])
  }

  func testSimCLRWithGatheredNegativesIsTheSameOnOneAndTwoProcesses() throws {
    // The projection head's BatchNorm must see the global batch too: sync_batchnorm.
    let config = try config(
      task: "{name: simclr, projection_hidden: 32, projection_output: 16}", extra: "  sync_batchnorm: true")
    try train("one", processes: 1, config: config)
    try train("two", processes: 2, config: config)
    try assertSameLosses("one", "two")
  }

  func testRelativeLocationWithSyncBatchNormIsTheSameOnOneAndTwoProcesses() throws {
    let config = try config(
      task: "{name: relative-location, resize: 32, patch_size: 8, gap: 2, jitter: 1, head_hidden: 32}",
      extra: "  sync_batchnorm: true")
    try train("one", processes: 1, config: config)
    try train("two", processes: 2, config: config)
    try assertSameLosses("one", "two")
  }

  func testMoCoV3WithGatheredKeysIsTheSameOnOneAndTwoProcesses() throws {
    // The keys come from every process (all-gather); the heads' BatchNorm sees the
    // global batch with sync_batchnorm.
    let config = try config(
      task: "{name: moco-v3, projection_hidden: 32, projection_output: 16, predictor_hidden: 32}",
      extra: "  sync_batchnorm: true")
    try train("one", processes: 1, config: config)
    try train("two", processes: 2, config: config)
    try assertSameLosses("one", "two")
  }

  func testACheckpointResumesOnAnotherNumberOfProcesses() throws {
    let config = try config(task: "{name: mae, decoder_width: 32, decoder_depth: 1, decoder_heads: 2}")
    try train("one", processes: 1, config: config)
    // Steps 1-3 on two processes, then 4-6 on one from their checkpoint; and the reverse.
    for (name, first, second) in [("two-then-one", 2, 1), ("one-then-two", 1, 2)] {
      try train(name, processes: first, config: config)
      let run = dir.appendingPathComponent("runs/\(name)")
      try FileManager.default.removeItem(at: run.appendingPathComponent("checkpoint-00000006.safetensors"))
      let resumed = try pretext(second, ["pretrain", config, "--set", "name=\(name)", "--resume"])
      XCTAssertEqual(resumed.status, 0, resumed.err)
      XCTAssertTrue(resumed.err.contains("checkpoint-00000003.safetensors at step 3 of 6"), resumed.err)
      try assertSameLosses("one", name)
    }
  }

  func testBatchNotDivisibleByTheProcessesIsAClearError() throws {
    let config = try config(task: "{name: mae, decoder_width: 32, decoder_depth: 1, decoder_heads: 2}")
    let r = try pretext(3, ["pretrain", config, "--set", "name=three"])
    XCTAssertNotEqual(r.status, 0)
    XCTAssertTrue(
      r.err.contains(
        "Error: train.batch_size 16 (the global batch) cannot be split evenly among 3 processes; use a multiple of 3"),
      r.err)
    XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("runs/three").path))
  }

  func testProcessesStartedWithDifferentSettingsOrDataAreRefused() throws {
    let config = try config(task: "{name: mae, decoder_width: 32, decoder_depth: 1, decoder_heads: 2}")
    let pretext = try pretextExecutable().path
    // mpirun's MPMD form: one command line per process.
    func launch(_ first: [String], _ second: [String]) throws -> String {
      let p = Process()
      p.executableURL = URL(fileURLWithPath: mpirun)
      p.arguments =
        ["--oversubscribe", "--allow-run-as-root", "--timeout", "300", "-np", "1", pretext, "pretrain", config] + first
        + [":"]
        + ["-np", "1", pretext, "pretrain", config] + second
      let err = Pipe()
      p.standardOutput = FileHandle.nullDevice
      p.standardError = err
      try p.run()
      let data = err.fileHandleForReading.readDataToEndOfFile()
      p.waitUntilExit()
      XCTAssertNotEqual(p.terminationStatus, 0)
      return String(decoding: data, as: UTF8.self)
    }
    let seeds = try launch(["--set", "train.seed=1"], ["--set", "train.seed=2"])
    XCTAssertTrue(
      seeds.contains(
        "Error: process 1 was started with other train settings than process 0; start every process with the same "
          + "config and --set values"), seeds)
    let fewer = dir.appendingPathComponent("fewer").path
    try FileManager.default.copyItem(atPath: dir.appendingPathComponent("fm/unlabeled").path, toPath: fewer)
    try FileManager.default.removeItem(atPath: fewer + "/00000.png")
    let data = try launch([], ["--set", "data.unlabeled=\(fewer)"])
    XCTAssertTrue(
      data.contains(
        "Error: process 1 sees 31 images in its data folder, process 0 sees 32; each process reads data.unlabeled on "
          + "its own machine: the folders must hold the same files"), data)
  }

  func testCtrlCOnMpirunStopsEveryProcessWithACheckpoint() throws {
    let config = try config(task: "{name: mae, decoder_width: 32, decoder_depth: 1, decoder_heads: 2}")
    let p = Process()
    p.executableURL = URL(fileURLWithPath: mpirun)
    p.arguments = [
      "--oversubscribe", "--allow-run-as-root", "--timeout", "300", "-np", "2", try pretextExecutable().path,
      "pretrain", config,
      "--set", "name=stopped", "--set", "train.steps=100000", "--threads", "1",
    ]
    let out = Pipe()
    p.standardOutput = out
    p.standardError = FileHandle.nullDevice
    try p.run()
    // Once training runs, Ctrl-C: mpirun passes the signal on as SIGTERM to every process.
    let metrics = dir.appendingPathComponent("runs/stopped/metrics.jsonl").path
    let deadline = Date().addingTimeInterval(120)
    while ((try? Data(contentsOf: URL(fileURLWithPath: metrics)))?.count ?? 0) < 500 {
      guard Date() < deadline, p.isRunning else {
        if p.isRunning { p.terminate() }
        p.waitUntilExit()
        return XCTFail("training did not start within 120 s (exit status \(p.terminationStatus) if it ended)")
      }
      usleep(50_000)
    }
    kill(p.processIdentifier, SIGINT)
    let printed = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    XCTAssertTrue(printed.contains("stopped at step "), printed)
    XCTAssertTrue(printed.contains("  mpirun -np 2 pretext pretrain \(config) --set name=stopped"), printed)
    // The checkpoint of the step it stopped at.
    let step = try XCTUnwrap(
      Int(printed.components(separatedBy: "stopped at step ").last?.prefix { $0.isNumber } ?? ""))
    let checkpoint = dir.appendingPathComponent(String(format: "runs/stopped/checkpoint-%08ld.safetensors", step)).path
    XCTAssertTrue(FileManager.default.fileExists(atPath: checkpoint), checkpoint)
  }

  func testDoctorReportsTheLibraryAndTheLaunch() throws {
    // mpirun forwards both processes' output as it arrives, so their lines can interleave:
    // --tag-output prefixes each line with its rank ("[1,0]<stdout>:"), and the lines of
    // each rank form one JSON object.
    let r = try runProcess(
      URL(fileURLWithPath: mpirun),
      ["--oversubscribe", "--allow-run-as-root", "--timeout", "300", "--tag-output", "-np", "2",
       try pretextExecutable().path, "doctor", "--json", "--threads", "1"])
    XCTAssertEqual(r.status, 0, r.err)
    var linesByRank: [String: [String]] = [:]
    for line in r.out.split(separator: "\n", omittingEmptySubsequences: false) {
      guard let tagEnd = line.range(of: "<stdout>:") else { continue }
      linesByRank[String(line[..<tagEnd.lowerBound]), default: []].append(String(line[tagEnd.upperBound...]))
    }
    // Each rank's report runs from its "{" line to the first unindented "}" line.
    let reports = try linesByRank.keys.sorted().map { rank -> [String: Any] in
      let lines = linesByRank[rank]!
      let object = try XCTUnwrap(lines.firstIndex(of: "{").flatMap { start in
        lines[start...].firstIndex(of: "}").map { lines[start...$0].joined(separator: "\n") }
      }, r.out)
      return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(object.utf8)) as? [String: Any], r.out)
    }
    XCTAssertEqual(reports.count, 2, r.out)
    XCTAssertEqual(Set(reports.compactMap { $0["mpi_rank"] as? Int }), [0, 1])
    for report in reports {
      XCTAssertEqual(report["mpi_launched"] as? Bool, true)
      XCTAssertEqual(report["mpi_size"] as? Int, 2)
      XCTAssertTrue((report["mpi_version"] as? String)?.hasPrefix("Open MPI v") ?? false, "\(report)")
    }
    let alone = try runPretext(["doctor"])
    XCTAssertTrue(alone.out.contains("not launched by mpirun"), alone.out)
  }
}

/// What Pretext says about MPI when there is none: these run everywhere (the library is
/// pointed at a missing file).
final class MissingMPITests: XCTestCase {
  func testDoctorAndALaunchWithoutTheLibrary() throws {
    let missing = ["PRETEXT_MPI_LIBRARY": "/nonexistent/libmpi.so.40"]
    let doctor = try runPretext(["doctor"], environment: missing)
    XCTAssertEqual(doctor.status, 0, doctor.err)
    XCTAssertTrue(
      doctor.out.contains(
        "MPI                not available: Open MPI could not be loaded (/nonexistent/libmpi.so.40: cannot open shared object file"
      ),
      doctor.out)
    // As if mpirun had started this process as one of two.
    var launched = missing
    launched["OMPI_COMM_WORLD_SIZE"] = "2"
    launched["OMPI_COMM_WORLD_RANK"] = "0"
    let r = try runPretext(["pretrain", "/nonexistent.yaml"], environment: launched)
    XCTAssertNotEqual(r.status, 0)
    XCTAssertTrue(
      r.err.contains("Error: mpirun launched this process, but MPI cannot start: Open MPI could not be loaded"), r.err)
    XCTAssertTrue(r.err.contains("install it with `apt-get install openmpi-bin libopenmpi-dev`"), r.err)
  }
}
