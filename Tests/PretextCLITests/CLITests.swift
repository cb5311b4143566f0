import Diagnostics
import Foundation
import XCTest

/// Runs the built `pretext` executable as a user would.
final class CLITests: XCTestCase {
  func run(_ args: [String], environment: [String: String?] = [:]) throws -> (status: Int32, out: String, err: String) {
    try runPretext(args, environment: environment)
  }

  func testVersionAndHelp() throws {
    let v = try run(["--version"])
    XCTAssertEqual(v.status, 0)
    XCTAssertTrue(v.out.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ".").count == 3, v.out)
    let h = try run(["--help"])
    XCTAssertEqual(h.status, 0)
    for sub in ["doctor", "bench"] { XCTAssertTrue(h.out.contains(sub), "help lists \(sub): \(h.out)") }
  }

  func testDoctorJSONReportsFastCoreAndMeasuredSgemm() throws {
    let r = try run(["doctor", "--json"], environment: ["OPENBLAS_CORETYPE": nil])
    XCTAssertEqual(r.status, 0, r.err)
    let obj = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any])
    let core = try XCTUnwrap(obj["openblas_core"] as? String)
    XCTAssertFalse(core.isEmpty)
    let ext = obj["vector_extensions"] as? [String] ?? []
    if ext.contains("avx2") {
      // On any AVX2 machine a generic core (Prescott, Core2, …) means the choice failed.
      XCTAssertFalse(["prescott", "core2", "atom", "nehalem", "generic"].contains(core.lowercased()), core)
    }
    let best = obj["openblas_best_core"] as? String ?? ""
    XCTAssertEqual(obj["openblas_core_source"] as? String, best.isEmpty ? "openblas" : "pretext")
    XCTAssertGreaterThan(try XCTUnwrap(obj["threads"] as? Int), 0)
    XCTAssertGreaterThan(try XCTUnwrap(obj["sgemm_gflops"] as? Double), 1)
  }

  func testUserCoreTypeIsRespected() throws {
    // Haswell's kernels need AVX2 (and x86-64): forcing them elsewhere would crash OpenBLAS.
    let probe = try run(["doctor", "--json"], environment: ["OPENBLAS_CORETYPE": nil])
    let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(probe.out.utf8)) as? [String: Any])
    guard (report["vector_extensions"] as? [String] ?? []).contains("avx2") else {
      throw XCTSkip("this CPU has no AVX2, which the forced Haswell core needs")
    }
    let r = try run(["doctor", "--json"], environment: ["OPENBLAS_CORETYPE": "Haswell"])
    XCTAssertEqual(r.status, 0, r.err)
    let obj = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any])
    XCTAssertEqual(obj["openblas_core_source"] as? String, "user")
    XCTAssertEqual(obj["openblas_core_env"] as? String, "Haswell")
    XCTAssertEqual((obj["openblas_core"] as? String)?.lowercased(), "haswell")
  }

  func testBadThreadsIsAClearError() throws {
    let r = try run(["doctor", "--threads", "0"])
    XCTAssertNotEqual(r.status, 0)
    XCTAssertTrue(r.err.contains("--threads"), r.err)
  }
}

/// `pretext bench` and `doctor --training-check` as a user runs them, with short
/// settings: each prints its JSON with positive, self-consistent figures (speeds are
/// checked by benchmarks, not here).
final class BenchCLITests: XCTestCase {
  func json(_ args: [String]) throws -> [String: Any] {
    let r = try runPretext(args)
    XCTAssertEqual(r.status, 0, "\(args): \(r.err)")
    return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any], "\(args): \(r.out)")
  }

  func testBenchOpsDataAndTrain() throws {
    let ops = try json(["bench", "ops", "--json", "--repeats", "1", "--threads", "1"])
    let rows = try XCTUnwrap(ops["rows"] as? [[String: Any]])
    XCTAssertFalse(rows.isEmpty)
    for row in rows {
      let name = row["name"] as? String ?? "?"
      let seconds = try XCTUnwrap(row["seconds"] as? Double, name)
      XCTAssertGreaterThan(seconds, 0, name)
      XCTAssertGreaterThan(try XCTUnwrap(row["gflops"] as? Double ?? row["gb_per_second"] as? Double, name), 0, name)
    }
    let data = try json(["bench", "data", "--json", "--seconds", "0.3", "--images", "256"])
    XCTAssertEqual(data["images"] as? Int, 256)
    XCTAssertGreaterThan(try XCTUnwrap(data["views_per_second"] as? Double), 0)
    let train = try json([
      "bench", "train", "--workload", "simclr-resnet18", "--batch", "4", "--steps", "1", "--json", "--threads", "1",
    ])
    XCTAssertEqual(train["workload"] as? String, "simclr-resnet18")
    XCTAssertEqual(train["images_per_step"] as? Int, 8, "two views of each of the 4 images")
    let step = try XCTUnwrap(train["median_step_seconds"] as? Double)
    // Images through the backbone (views) per second.
    XCTAssertEqual(try XCTUnwrap(train["images_per_second"] as? Double), 8 / step, accuracy: 1e-6 * 8 / step)
    XCTAssertGreaterThan(try XCTUnwrap(train["peak_resident_mb"] as? Double), 10)
    let bad = try runPretext(["bench", "train", "--workload", "jigsaw"])
    XCTAssertNotEqual(bad.status, 0)
    XCTAssertTrue(bad.err.contains("jigsaw"), bad.err)
  }

  /// The check passes here; too few steps fail it, which `doctor` turns into exit 1.
  func testDoctorTrainingCheck() throws {
    let report = try json(["doctor", "--training-check", "--json", "--threads", "1"])
    let check = try XCTUnwrap(report["training_check"] as? [String: Any])
    XCTAssertEqual(check["passed"] as? Bool, true, "\(check)")
    XCTAssertLessThan(try XCTUnwrap(check["final_loss"] as? Double), try XCTUnwrap(check["initial_loss"] as? Double))
    XCTAssertFalse(try TrainingCheck.run(steps: 1).passed, "one step cannot pass the check")
  }
}

/// Test tier 4 for the engine: a small network's loss falls and it generalizes.
final class TrainingCheckTests: XCTestCase {
  func testSmallNetworkLearns() throws {
    let report = try TrainingCheck.run()
    XCTAssertTrue(report.passed, report.text)
    XCTAssertLessThan(report.finalLoss, 0.5 * report.initialLoss, report.text)
  }

  func testSameSeedSameRun() throws {
    let a = try TrainingCheck.run(steps: 10), b = try TrainingCheck.run(steps: 10)
    XCTAssertEqual(a.finalLoss, b.finalLoss)
    XCTAssertEqual(a.heldOutAccuracy, b.heldOutAccuracy)
  }
}
