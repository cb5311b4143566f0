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

  /// `eval:` trains an online linear head on detached features and logs its held-out
  /// accuracy with RankMe and the feature spread every `every` steps and at the last;
  /// the head is in the checkpoints, so a resumed run logs the same values.
  func testOnlineProbeAndSignalsAreLoggedAndResumeExactly() throws {
    let labeled = dir.appendingPathComponent("fm/train").path
    // 32 images, 3 or 4 per class: 2 train the head, 1 per class (10) is held out.
    let config = try writeConfig(
      "eval: {online_probe: \(labeled), labels_per_class: 2, held_out_per_class: 1, batch_size: 8, every: 3, signal_images: 16}"
    )
    let r = try runPretext(["pretrain", config, "--threads", "1"])
    XCTAssertEqual(r.status, 0, r.err)
    XCTAssertTrue(r.err.contains("online probe: 20 training and 10 held-out images of 10 classes"), r.err)
    let run = dir.appendingPathComponent("runs/tiny")
    struct Line: Decodable {
      let step: Int
      let loss: Double
      let metrics: [String: Double]
    }
    func lines() throws -> [Line] {
      try String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n")
        .map { try JSONDecoder().decode(Line.self, from: Data($0.utf8)) }
    }
    let first = try lines()
    XCTAssertEqual(first.map(\.step), [1, 2, 3, 4])
    for line in first {
      XCTAssertTrue(line.metrics["online_probe_loss"]?.isFinite == true, "\(line.metrics)")
      // Evaluated at step 3 (every 3) and at the last step only.
      let evaluated = [3, 4].contains(line.step)
      for key in ["online_probe_top1", "rankme", "feature_spread"] {
        XCTAssertEqual(line.metrics[key] != nil, evaluated, "step \(line.step): \(key) in \(line.metrics)")
      }
      guard evaluated else { continue }
      // 10 held-out images: a multiple of 10 percent.
      let top1 = line.metrics["online_probe_top1"]!
      XCTAssertTrue((0...100).contains(top1) && top1.truncatingRemainder(dividingBy: 10) == 0, "\(top1)")
      // The effective rank of 16 images' 192-wide features is in [1, 16]; the spread in
      // [0, √192] (the per-dimension std of unit rows is at most 1).
      XCTAssertTrue((1...16).contains(line.metrics["rankme"]!), "\(line.metrics)")
      XCTAssertTrue((0...192.0.squareRoot()).contains(line.metrics["feature_spread"]!), "\(line.metrics)")
    }
    // The head is part of the checkpoint: resuming from step 2 logs steps 3 and 4 again,
    // the same to the bit.
    let checkpoint = try XCTUnwrap(
      try FileManager.default.contentsOfDirectory(atPath: run.path).first { $0 == "checkpoint-00000002.safetensors" })
    XCTAssertFalse(checkpoint.isEmpty)
    try FileManager.default.removeItem(at: run.appendingPathComponent("checkpoint-00000004.safetensors"))
    try FileManager.default.removeItem(at: run.appendingPathComponent("pretrain.json"))
    let resumed = try runPretext(["pretrain", config, "--threads", "1", "--resume"])
    XCTAssertEqual(resumed.status, 0, resumed.err)
    let second = try lines()
    XCTAssertEqual(second.map(\.step), [1, 2, 3, 4])
    for (a, b) in zip(first, second) {
      XCTAssertEqual(a.loss, b.loss, "step \(a.step)")
      XCTAssertEqual(a.metrics, b.metrics, "step \(a.step)")
    }
    // More labels than a class has: refused before training, naming the key's line.
    let tooMany = try writeConfig("eval: {online_probe: \(labeled), labels_per_class: 4, held_out_per_class: 1}")
    let refused = try runPretext(["pretrain", tooMany, "--set", "name=refused"])
    XCTAssertNotEqual(refused.status, 0)
    XCTAssertTrue(refused.err.contains("\(tooMany):7: eval.labels_per_class: class \""), refused.err)
    XCTAssertTrue(refused.err.contains("fewer than eval.labels_per_class + eval.held_out_per_class = 5"), refused.err)
    XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("runs/refused").path))
    // A labeled folder that is not there: the key's line and the folder.
    let missing = try writeConfig("eval: {online_probe: \(dir.path)/nowhere}")
    let absent = try runPretext(["pretrain", missing, "--set", "name=absent"])
    XCTAssertNotEqual(absent.status, 0)
    XCTAssertTrue(absent.err.contains("\(missing):7: eval.online_probe: \(dir.path)/nowhere"), absent.err)
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
