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
