import Foundation
import Vision
import XCTest

/// `pretext compare` off the Fashion-MNIST track: a folder of a few hundred small PNGs of
/// mixed sizes, a minutes budget of a few seconds (fewer steps than a plan used to need
/// to measure the speed), a progress line at every step. The run must finish, probe and
/// report, and every progress line must hold a real total and the time left.
final class MinutesBudgetCLITests: XCTestCase {
  var dir: URL!

  override func setUpWithError() throws {
    dir = FileManager.default.temporaryDirectory.appendingPathComponent("pretext-minutes-\(UUID().uuidString)")
    let unlabeled = dir.appendingPathComponent("photos")
    try FileManager.default.createDirectory(at: unlabeled, withIntermediateDirectories: true)
    var rng = SeededGenerator(seed: 11)
    let sizes = [(28, 28), (9, 40), (64, 48), (1, 1), (33, 17)]
    for i in 0..<300 {
      let (w, h) = sizes[i % sizes.count]
      let pixels = (0..<(w * h)).map { _ in UInt8.random(in: 0...255, using: &rng) }
      try PNG.write(
        Image(width: w, height: h, channels: 1, pixels: pixels), to: unlabeled.appendingPathComponent("\(i).png").path)
    }
    try writeTinyFashionMNIST(to: dir.appendingPathComponent("idx"), train: 40, test: 20) { i, y, x in
      UInt8((x * 13 + y * 7 + i * 29) % 256)
    }
    let imported = try runPretext([
      "data", "import", "fashion-mnist", "--source", dir.appendingPathComponent("idx").path, "--out",
      dir.appendingPathComponent("fm").path,
    ])
    XCTAssertEqual(imported.status, 0, imported.err)
  }

  override func tearDownWithError() throws { if let dir { try? FileManager.default.removeItem(at: dir) } }

  func testCompareWithASecondsBudgetOnAFewHundredImages() throws {
    try """
    name: simclr
    data: {unlabeled: \(dir.appendingPathComponent("photos").path)}
    backbone: {preset: resnet18-small, image_size: 28, width: 8, in_channels: 1}
    task: {name: simclr, projection_hidden: 32, projection_output: 16}
    train: {batch_size: 32, minutes: 0.1, log_every: 1}
    """.write(to: dir.appendingPathComponent("simclr.yaml"), atomically: true, encoding: .utf8)
    try """
    name: seconds
    output: \(dir.appendingPathComponent("runs").path)
    experiments: [simclr.yaml]
    probe:
      train: \(dir.appendingPathComponent("fm/train").path)
      test: \(dir.appendingPathComponent("fm/test").path)
      labels_per_class: [2]
    """.write(to: dir.appendingPathComponent("compare.yaml"), atomically: true, encoding: .utf8)
    let r = try runPretext(["compare", dir.appendingPathComponent("compare.yaml").path, "--threads", "2"])
    XCTAssertEqual(r.status, 0, r.err)
    XCTAssertTrue(
      FileManager.default.fileExists(atPath: dir.appendingPathComponent("runs/seconds/report.html").path), r.out)
    // Progress lines: `step N/~T | … | ETA 4s`, with N ≤ T and the ETA within the 6 s.
    let lines = (r.out + r.err).split(whereSeparator: { $0 == "\n" || $0 == "\r" }).map(String.init)
    let steps = lines.compactMap { line -> (step: Int, total: Int, eta: Int)? in
      guard let m = line.firstMatch(of: /step (\d+)\/~(\d+) \|.*\| ETA (\d+)s$/) else { return nil }
      return (Int(m.1)!, Int(m.2)!, Int(m.3)!)
    }
    let stepLines = lines.filter { $0.contains("step ") && $0.contains(" | epoch ") }
    XCTAssertFalse(steps.isEmpty, r.err)
    XCTAssertEqual(steps.count, stepLines.count, "every progress line has a total: \(stepLines.prefix(3))")
    XCTAssertEqual(steps.map(\.step), Array(1...steps.count), "a line at every step")
    for s in steps {
      XCTAssertLessThanOrEqual(s.step, s.total)
      XCTAssertLessThanOrEqual(s.eta, 6)
    }
    XCTAssertEqual(steps.last!.step, steps.last!.total, "the last line is the last planned step")
  }
}
