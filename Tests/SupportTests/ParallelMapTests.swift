import Support
import XCTest

final class ParallelMapTests: XCTestCase {
  /// Results come back in index order whatever the thread count, also with more threads
  /// than items and with no items.
  func testConcurrentMapKeepsIndexOrder() {
    for threads in [1, 2, 3, 8] {
      XCTAssertEqual(concurrentMap(10, threads: threads) { $0 * $0 }, (0..<10).map { $0 * $0 })
    }
    XCTAssertEqual(concurrentMap(3, threads: 16) { "\($0)" }, ["0", "1", "2"])
    XCTAssertEqual(concurrentMap(0, threads: 4) { $0 }, [])
  }
}
