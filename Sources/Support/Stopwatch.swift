import Dispatch

// How long something took, for the timings of reports and progress lines.

/// Wall-clock seconds since creation, from the monotonic clock (a change of the system
/// time does not disturb it).
public struct Stopwatch: Sendable {
  private let start = DispatchTime.now().uptimeNanoseconds
  public init() {}
  public var seconds: Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }
}
