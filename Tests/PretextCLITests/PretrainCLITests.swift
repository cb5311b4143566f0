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
