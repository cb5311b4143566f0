import Foundation
import XCTest

/// The kill test, short form: a small pretraining run is killed with SIGKILL at random
/// moments and resumed each time; its final weights must equal, bit for bit, those of an
/// uninterrupted run with the same seed.
final class KillResumeTests: XCTestCase {
  var dir: URL!
  override func setUpWithError() throws {
    dir = FileManager.default.temporaryDirectory.appendingPathComponent("pretext-kill-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    try writeTinyFashionMNIST(to: dir.appendingPathComponent("idx"), train: 48, test: 10) { i, y, x in
      UInt8(((y * 28 + x) * 5 + i * 31) % 241)
    }
    let r = try runPretext([
      "data", "import", "fashion-mnist", "--source", dir.appendingPathComponent("idx").path, "--out",
      dir.appendingPathComponent("fm").path,
    ])
    XCTAssertEqual(r.status, 0, r.err)
  }
  override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

  func config(_ name: String) throws -> String {
    let path = dir.appendingPathComponent("\(name).yaml").path
    try """
      name: \(name)
      output: \(dir.appendingPathComponent("runs").path)
      data: {unlabeled: \(dir.appendingPathComponent("fm/unlabeled").path)}
      backbone: {preset: vit-cpu, image_size: 16, patch_size: 4, in_channels: 1}
      task: {name: simclr, projection_hidden: 32, projection_output: 16}
      train: {batch_size: 8, steps: 40, log_every: 1, checkpoint_every: 1, artifacts_every: 0}
      """.write(toFile: path, atomically: true, encoding: .utf8)
    return path
  }

  func testKilledAndResumedRunEqualsUninterruptedRun() throws {
    let straight = try runPretext(["pretrain", try config("straight"), "--threads", "2"])
    XCTAssertEqual(straight.status, 0, straight.err)

    let killedConfig = try config("killed")
    var rng = SystemRandomNumberGenerator()
    var kills = 0, finished = false
    for attempt in 0..<40 where !finished {
      let p = Process()
      p.executableURL = try pretextExecutable()
      let started = FileManager.default.fileExists(
        atPath: dir.appendingPathComponent("runs/killed/config.yaml").path)
      let hasCheckpoint =
        ((try? FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("runs/killed").path)) ?? [])
        .contains { $0.hasPrefix("checkpoint-") }
      p.arguments = ["pretrain", killedConfig, "--threads", "2"] + (started && hasCheckpoint ? ["--resume"] : [])
      p.standardOutput = FileHandle.nullDevice
      p.standardError = FileHandle.nullDevice
      try p.run()
      // Kill at a random moment (the first attempts early, so some land mid-step or
      // mid-checkpoint), or let it finish after enough kills.
      let delay = kills >= 4 ? 30.0 : Double.random(in: 0.15...0.9, using: &rng)
      let deadline = Date().addingTimeInterval(delay)
      while p.isRunning && Date() < deadline { usleep(5_000) }
      if p.isRunning {
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        kills += 1
      } else {
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0, "attempt \(attempt) failed")
        finished = p.terminationStatus == 0
      }
    }
    XCTAssertTrue(finished, "the killed run never completed")
    XCTAssertGreaterThan(kills, 0, "no kill landed before the run finished")
    let a = try Data(contentsOf: dir.appendingPathComponent("runs/straight/backbone.safetensors"))
    let b = try Data(contentsOf: dir.appendingPathComponent("runs/killed/backbone.safetensors"))
    XCTAssertEqual(a, b, "final weights differ after \(kills) kills")
    // The metrics hold each step once.
    let lines = try String(contentsOf: dir.appendingPathComponent("runs/killed/metrics.jsonl"), encoding: .utf8)
      .split(separator: "\n")
    XCTAssertEqual(lines.count, 40)
    let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("runs/killed").path)
      .filter { $0.contains(".tmp-") }
    XCTAssertLessThanOrEqual(leftovers.count, 1, "temporary files pile up: \(leftovers)")
  }
}
