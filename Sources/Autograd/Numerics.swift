/// Checks for NaN and ±Inf, for the trainer to stop a diverging run with a clear
/// message (which tensor, how many bad values, where the first one is).
public struct NonFiniteReport: Sendable, Equatable, CustomStringConvertible {
  public let nanCount: Int
  public let infCount: Int
  /// Flat index of the first non-finite value.
  public let firstIndex: Int
  public var description: String {
    "\(nanCount) NaN and \(infCount) infinite value(s), first at flat index \(firstIndex)"
  }
}

extension Tensor {
  /// Whether every element is finite.
  public var isFinite: Bool { nonFiniteReport() == nil }

  /// `nil` when all elements are finite, else counts and the first bad position.
  public func nonFiniteReport() -> NonFiniteReport? {
    // Fast pass: the sum of x·0 is NaN exactly when some x is NaN or infinite.
    var probe: Float = 0
    let p = data
    for i in 0..<count { probe += p[i] * 0 }
    if probe == 0 { return nil }
    var nan = 0, inf = 0, first = -1
    for i in 0..<count where !p[i].isFinite {
      if p[i].isNaN { nan += 1 } else { inf += 1 }
      if first < 0 { first = i }
    }
    return NonFiniteReport(nanCount: nan, infCount: inf, firstIndex: first)
  }
}

/// The first tensor among `named` with a non-finite value, with its name — e.g. to say
/// which parameter's gradient went bad.
public func firstNonFinite(_ named: [(String, Tensor)]) -> (name: String, report: NonFiniteReport)? {
  for (name, t) in named {
    if let r = t.nonFiniteReport() { return (name, r) }
  }
  return nil
}

extension Int {
  /// `value` rounded toward zero and clamped to Int's range; NaN gives 0. For numbers that
  /// come from measurement or from a user (speeds, budgets, durations), where `Int(_:)`
  /// would trap on a value out of range.
  @inlinable
  public init(saturating value: Double) {
    if value.isNaN {
      self = 0
    } else if value >= 0x1p63 {
      self = .max
    } else if value <= -0x1p63 {
      self = .min
    } else {
      self = Int(value)
    }
  }
}
