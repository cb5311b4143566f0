import Foundation
import XCTest

/// `pretext pretrain` and `pretext inspect` as a user runs them.
final class PretrainCLITests: XCTestCase {
  var dir: URL!

  override func setUpWithError() throws {
    dir = FileManager.default.temporaryDirectory.appendingPathComponent("pretext-cli-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    // The images come from `pretext data import` run on a tiny synthetic IDX set.
    try makeIDX(dir.appendingPathComponent("idx"))
    let r = try runPretext(["data", "import", "fashion-mnist", "--source", dir.appendingPathComponent("idx").path, "--out", dir.appendingPathComponent("fm").path])
    XCTAssertEqual(r.status, 0, r.err)
  }

  override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

  /// Tiny Fashion-MNIST-shaped IDX files: 32 training and 10 test images of 28×28.
  func makeIDX(_ folder: URL) throws {
    try writeTinyFashionMNIST(to: folder, train: 32, test: 10) { i, y, x in UInt8(((y * 28 + x) * 7 + i * 13) % 251) }
  }

  func writeConfig(_ extra: String = "") throws -> String {
    let path = dir.appendingPathComponent("exp.yaml").path
    try """
      name: tiny
      output: \(dir.appendingPathComponent("runs").path)
      data: {unlabeled: \(dir.appendingPathComponent("fm/unlabeled").path)}
      backbone: {preset: vit-cpu, image_size: 16, patch_size: 4, in_channels: 1}
      task: {name: mae, decoder_width: 32, decoder_depth: 1, decoder_heads: 2}
      train: {batch_size: 8, steps: 4, log_every: 1, checkpoint_every: 2}
      \(extra)
      """.write(toFile: path, atomically: true, encoding: .utf8)
    return path
  }

  func testPretrainWritesTheRunAndRefusesToOverwrite() throws {
    let config = try writeConfig()
    let r = try runPretext(["pretrain", config, "--threads", "1"])
    XCTAssertEqual(r.status, 0, r.err)
    let run = dir.appendingPathComponent("runs/tiny")
    let files = try FileManager.default.contentsOfDirectory(atPath: run.path)
    for f in ["config.yaml", "metrics.jsonl", "backbone.safetensors", "checkpoint-00000004.safetensors"] {
      XCTAssertTrue(files.contains(f), "\(f) in \(files)")
    }
    XCTAssertTrue(files.contains { $0.hasPrefix("reconstruction-") })
    let lines = try String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n")
    XCTAssertEqual(lines.count, 4)
    // A second start without --resume would overwrite the run: refused.
    let again = try runPretext(["pretrain", config])
    XCTAssertNotEqual(again.status, 0)
    XCTAssertTrue(again.err.contains("--resume"), again.err)
    // --resume of a finished run: nothing left to do, it says done.
    let resumed = try runPretext(["pretrain", config, "--resume"])
    XCTAssertEqual(resumed.status, 0, resumed.err)
    XCTAssertTrue(resumed.err.contains("resuming from"), resumed.err)
  }

  /// Starts `pretext ARGS`, waits until `metrics` holds a few steps (beyond its first
  /// `bytes`), sends SIGINT (Ctrl-C) and returns the exit status and standard output.
  func interrupt(_ args: [String], metrics: URL, beyond bytes: Int = 0) throws -> (status: Int32, out: String) {
    let p = Process()
    p.executableURL = try pretextExecutable()
    p.arguments = args
    let out = Pipe()
    p.standardOutput = out
    p.standardError = FileHandle.nullDevice
    try p.run()
    let deadline = Date().addingTimeInterval(120)
    while ((try? Data(contentsOf: metrics))?.count ?? 0) < bytes + 300 {
      guard Date() < deadline, p.isRunning else {
        if p.isRunning { p.terminate() }
        p.waitUntilExit()
        XCTFail("training did not start within 120 s (\(args))")
        return (p.terminationStatus, "")
      }
      usleep(20_000)
    }
    kill(p.processIdentifier, SIGINT)
    let printed = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    return (p.terminationStatus, printed)
  }

  /// Ctrl-C on `pretrain` stops after the current step with a checkpoint of that step and
  /// says how to resume; the resumed run goes on from that step.
  func testCtrlCStopsPretrainWithACheckpoint() throws {
    let config = try writeConfig()
    let run = dir.appendingPathComponent("runs/tiny")
    let args = [
      "pretrain", config, "--set", "train.steps=100000", "--set", "train.checkpoint_every=100000", "--threads", "1",
    ]
    let stopped = try interrupt(args, metrics: run.appendingPathComponent("metrics.jsonl"))
    XCTAssertEqual(stopped.status, 0, stopped.out)
    let step = try XCTUnwrap(
      Int(stopped.out.components(separatedBy: "stopped at step ").last?.prefix { $0.isNumber } ?? ""), stopped.out)
    XCTAssertTrue(stopped.out.contains("--resume"), stopped.out)
    XCTAssertTrue(
      FileManager.default.fileExists(
        atPath: run.appendingPathComponent(String(format: "checkpoint-%08ld.safetensors", step)).path), stopped.out)
    // Resumed (and stopped again once it logged more): the log holds steps 1, 2, … in
    // order, beyond the first stop.
    let before = try Data(contentsOf: run.appendingPathComponent("metrics.jsonl")).count
    let again = try interrupt(args + ["--resume"], metrics: run.appendingPathComponent("metrics.jsonl"), beyond: before)
    XCTAssertEqual(again.status, 0, again.out)
    let steps = try String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
      .split(separator: "\n").map {
        try XCTUnwrap((try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["step"] as? Int)
      }
    XCTAssertEqual(steps, Array(1...steps.count))
    XCTAssertGreaterThan(steps.count, step)
  }

  /// Ctrl-C on `compare` stops the running experiment with a checkpoint (exit 130) and
  /// says to run the same command again, which resumes it.
  func testCtrlCStopsCompareAndTheSameCommandGoesOn() throws {
    let config = try writeConfig()
    let compare = dir.appendingPathComponent("compare.yaml").path
    try """
    name: stop
    output: \(dir.appendingPathComponent("runs").path)
    experiments: [\(config)]
    set: [train.steps=100000, train.checkpoint_every=100000]
    probe: {train: \(dir.appendingPathComponent("fm/train").path), test: \(dir.appendingPathComponent("fm/test").path)}
    """.write(toFile: compare, atomically: true, encoding: .utf8)
    let runs = dir.appendingPathComponent("runs/stop")
    // The experiment's folder name carries its config hash: wait for any metrics file.
    let p = Process()
    p.executableURL = try pretextExecutable()
    p.arguments = ["compare", compare, "--threads", "1"]
    let out = Pipe()
    p.standardOutput = out
    p.standardError = FileHandle.nullDevice
    try p.run()
    let deadline = Date().addingTimeInterval(120)
    func metrics() -> Int {
      let folders = (try? FileManager.default.contentsOfDirectory(atPath: runs.path)) ?? []
      return folders.map { (try? Data(contentsOf: runs.appendingPathComponent("\($0)/metrics.jsonl")))?.count ?? 0 }
        .max() ?? 0
    }
    while metrics() < 300 && p.isRunning && Date() < deadline { usleep(20_000) }
    XCTAssertTrue(p.isRunning, "compare ended before the interrupt")
    kill(p.processIdentifier, SIGINT)
    let printed = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    XCTAssertEqual(p.terminationStatus, 130, printed)
    XCTAssertTrue(printed.contains("Run the same command again to go on"), printed)
    let folders = try FileManager.default.contentsOfDirectory(atPath: runs.path)
    XCTAssertTrue(
      folders.contains { f in
        ((try? FileManager.default.contentsOfDirectory(atPath: runs.appendingPathComponent(f).path)) ?? [])
          .contains { $0.hasPrefix("checkpoint-") }
      }, "a checkpoint of the stopped experiment: \(folders)")
  }

  /// PRETEXT_THREADS sets the kernel threads when --threads is not given.
  func testPretextThreadsSetsTheThreadCount() throws {
    for n in [1, 3] {
      let r = try runPretext(["doctor", "--json"], environment: ["PRETEXT_THREADS": "\(n)"])
      XCTAssertEqual(r.status, 0, r.err)
      let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any])
      XCTAssertEqual(report["threads"] as? Int, n)
    }
  }

  func testConfigErrorsNameFileAndLine() throws {
    let config = try writeConfig("extra_section: 1")
    let r = try runPretext(["pretrain", config])
    XCTAssertNotEqual(r.status, 0)
    XCTAssertTrue(r.err.contains("exp.yaml:7") && r.err.contains("unknown key \"extra_section\""), r.err)
    let bad = try runPretext(["pretrain", try writeConfig(), "--set", "train.batch_size=zero"])
    XCTAssertTrue(bad.err.contains("train.batch_size"), bad.err)
    let missing = try runPretext(["pretrain", try writeConfig(), "--set", "data.unlabeled=/nonexistent/folder"])
    XCTAssertNotEqual(missing.status, 0)
    XCTAssertTrue(missing.err.contains("/nonexistent/folder"), missing.err)
  }

  func testInspectReferenceCounts() throws {
    let r = try runPretext(["inspect", "resnet18", "--json"])
    XCTAssertEqual(r.status, 0, r.err)
    let obj = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any])
    XCTAssertEqual(obj["total_parameters"] as? Int, 11_176_512)
    let unknown = try runPretext(["inspect", "resnet19"])
    XCTAssertNotEqual(unknown.status, 0)
    XCTAssertTrue(unknown.err.contains("known:"), unknown.err)
  }
}
