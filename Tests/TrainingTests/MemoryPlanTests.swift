import Foundation
import Training
import XCTest

/// The memory plan's sum and its refusal (Sources/Training/MemoryPlan.swift); how close
/// it comes to real runs is `ImpossibleConfigTests.testTheMemoryPlanHoldsOnTheShippedConfigs`.
final class MemoryPlanTests: XCTestCase {
  let plan = MemoryPlan(
    baseBytes: 100e6, gradientBytes: 10e6, optimizerBytes: 20e6, rollbackBytes: 0, perSampleBytes: 5e6, batch: 256,
    loaderBytes: 3e6, checkpointBytes: 60e6)

  func testTheTotalIsTheSumOfItsParts() {
    let parts: [Double] = [100e6, 10e6, 20e6, 5e6 * 256, 3e6, 60e6]
    XCTAssertEqual(plan.totalBytes, parts.reduce(0, +))
    XCTAssertTrue(plan.summary.hasPrefix("1.47 GB (process and model 100 MB, a step of 256 samples 1.28 GB, "), plan.summary)
  }

  /// A plan above the limit is refused with the estimate, the limit and what to lower;
  /// one below it, or with no known limit, passes.
  func testAPlanAboveTheLimitIsRefusedWithWhatToLower() throws {
    let limit = MemoryLimit(bytes: 1_000_000_000, source: "the cgroup limit 1 GB in /sys/fs/cgroup/memory.max")
    XCTAssertThrowsError(try plan.check(against: limit)) { error in
      XCTAssertEqual(
        "\(error)",
        "this run needs about \(plan.summary) at its peak, more than the 1 GB available (the cgroup limit 1 GB in "
          + "/sys/fs/cgroup/memory.max); lower train.batch_size (each sample costs 5 MB), backbone.image_size or "
          + "backbone.width")
    }
    XCTAssertNoThrow(try plan.check(against: MemoryLimit(bytes: 2_000_000_000, source: "test")))
    XCTAssertNoThrow(try plan.check(against: nil))
  }

  /// The machine's limit is read from /proc/meminfo (and a cgroup when one is set): a
  /// positive number, at least what this process holds.
  func testTheCurrentLimitIsReadFromTheSystem() throws {
    let limit = try XCTUnwrap(MemoryLimit.current())
    XCTAssertGreaterThanOrEqual(limit.bytes, try XCTUnwrap(residentBytes()))
  }
}
