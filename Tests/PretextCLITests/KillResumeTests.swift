import Foundation
import XCTest

/// The kill test, short form: a small pretraining run is killed with SIGKILL at random
/// moments and resumed each time; its final weights must equal, bit for bit, those of an
/// uninterrupted run with the same seed.
///
/// The moments are drawn from a seeded generator and tied to the run's progress, not to
/// the clock: a kill waits for metrics line N to appear (N a few steps ahead), then for a
/// drawn fraction of a step, so that kills land mid-step and mid-checkpoint on a machine
/// of any speed. The seed is in every failure message; PRETEXT_KILL_SEED replays one.
final class KillResumeTests: XCTestCase {
  var dir: URL!
  override func setUpWithError() throws {
    dir = try makeImportedTinyFashionMNIST(prefix: "pretext-kill", train: 48, test: 10) { i, y, x in
      UInt8(((y * 28 + x) * 5 + i * 31) % 241)
    }
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
    let seed =
      ProcessInfo.processInfo.environment["PRETEXT_KILL_SEED"].flatMap { UInt64($0) } ?? UInt64.random(in: 0...9999)
    var rng = SeededGenerator(seed: seed)
    let run = dir.appendingPathComponent("runs/killed")
    func lines() -> Int {
      ((try? String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8)) ?? "")
        .filter { $0 == "\n" }.count
    }
    var kills = 0, finished = false
    for attempt in 0..<12 where !finished {
      let p = Process()
      p.executableURL = try pretextExecutable()
      let hasCheckpoint = ((try? FileManager.default.contentsOfDirectory(atPath: run.path)) ?? [])
        .contains { $0.hasPrefix("checkpoint-") }
      p.arguments = ["pretrain", killedConfig, "--threads", "2"] + (hasCheckpoint ? ["--resume"] : [])
      p.standardOutput = FileHandle.nullDevice
      p.standardError = FileHandle.nullDevice
      try p.run()
      // Four kills, each once line N is written (N up to 6 lines ahead; 0 ahead kills at
      // the start, before or while the resume loads), then a drawn fraction of a 50-ms
      // wait; after them the run is left to finish.
      let target = lines() + Int(rng.next() % 7)
      let pause = Double(rng.next() % 1000) / 1000 * 0.05
      let deadline = Date().addingTimeInterval(120)
      while p.isRunning && (kills >= 4 || lines() < target) {
        guard Date() < deadline else {
          p.terminate()
          p.waitUntilExit()
          return XCTFail("seed \(seed), attempt \(attempt): no progress within 120 s (\(lines()) lines)")
        }
        usleep(2_000)
      }
      if p.isRunning { usleep(UInt32(pause * 1e6)) }
      if p.isRunning {
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        kills += 1
      } else {
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0, "seed \(seed), attempt \(attempt) failed")
        finished = p.terminationStatus == 0
      }
    }
    XCTAssertTrue(finished, "seed \(seed): the killed run never completed")
    XCTAssertGreaterThan(kills, 0, "seed \(seed): no kill landed before the run finished")
    let a = try Data(contentsOf: dir.appendingPathComponent("runs/straight/backbone.safetensors"))
    let b = try Data(contentsOf: dir.appendingPathComponent("runs/killed/backbone.safetensors"))
    XCTAssertEqual(a, b, "seed \(seed): final weights differ after \(kills) kills")
    // The metrics hold each step once.
    let records = try String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
      .split(separator: "\n")
    XCTAssertEqual(records.count, 40, "seed \(seed)")
    let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("runs/killed").path)
      .filter { $0.contains(".tmp-") }
    XCTAssertLessThanOrEqual(leftovers.count, 1, "temporary files pile up: \(leftovers)")
  }
}

/// SplitMix64 (Vigna): a small seeded generator for the test's own draws.
struct SeededGenerator: RandomNumberGenerator {
  var state: UInt64
  init(seed: UInt64) { state = seed }
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}
