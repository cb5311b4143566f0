import Foundation
import Support

/// A task's settings: its section of the experiment config, which also holds the task's
/// `name`.
public protocol TaskSettings: SettingsSchema {}
extension TaskSettings {
  public static var otherKeys: Set<String> { ["name"] }
}

/// The range checks of a task's settings: each names the key, what it accepts and the
/// value given, as `TaskError("simclr.temperature must be in (0, 100], got inf")`. The
/// bounds say what is meaningful (a probability in [0, 1], a width a machine can hold)
/// and keep every size derived from them in range of an `Int`.
public struct SettingsRanges {
  let task: String
  public init(task: String) { self.task = task }

  /// A number in the closed range, or above `lower` only when `open` (NaN fails).
  public func check<T: BinaryFloatingPoint>(
    _ key: String, _ value: T, in range: ClosedRange<T>, openBelow: Bool = false
  ) throws {
    let ok = value.isFinite && range.contains(value) && !(openBelow && value == range.lowerBound)
    if !ok {
      let low = openBelow ? "(" : "["
      throw TaskError("\(task).\(key) must be in \(low)\(range.lowerBound), \(range.upperBound)], got \(value)")
    }
  }

  public func check<T: BinaryFloatingPoint>(_ key: String, _ values: [T], in range: ClosedRange<T>, openBelow: Bool = false)
    throws
  {
    for v in values {
      do { try check(key, v, in: range, openBelow: openBelow) } catch {
        throw TaskError("\(task).\(key) takes numbers in \(openBelow ? "(" : "[")\(range.lowerBound), \(range.upperBound)], got \(values)")
      }
    }
  }

  public func check(_ key: String, _ value: Int, in range: ClosedRange<Int>) throws {
    if !range.contains(value) {
      throw TaskError("\(task).\(key) must be in [\(range.lowerBound), \(range.upperBound)], got \(value)")
    }
  }

  /// A [low, high] pair with low ≤ high, each in `range`.
  public func checkPair<T: BinaryFloatingPoint>(_ key: String, _ values: [T], in range: ClosedRange<T>, openBelow: Bool = false)
    throws
  {
    try check(key, values, in: range, openBelow: openBelow)
    if values.count != 2 || values[0] > values[1] {
      throw TaskError("\(task).\(key) takes two numbers [low, high] with low ≤ high, got \(values)")
    }
  }
}

/// The largest layer width a task setting takes: far above any CPU model, and small
/// enough that products of a few widths stay in range.
public let maximumTaskWidth = 1 << 16

/// Options several tasks share, declared once.
extension SettingOption {
  /// The pixel mean subtracted before the backbone (the normalization is saved with it).
  public static func inputMean(_ field: WritableKeyPath<S, [Float]>) -> SettingOption {
    .numbers("mean", field, in: -1000...1000, "pixel mean subtracted: one value, or one per channel")
  }
  /// The pixel standard deviation divided by.
  public static func inputStd(_ field: WritableKeyPath<S, [Float]>) -> SettingOption {
    .numbers("std", field, in: 0...1000, openBelow: true, "pixel std divided by: one value, or one per channel")
  }
  /// A random resized crop's range of areas, as shares of the image.
  public static func cropScale(_ field: WritableKeyPath<S, [Double]>) -> SettingOption {
    .interval("crop_scale", field, in: 0...1, openBelow: true, "random resized crop: the range of areas kept")
  }
  /// The probability of a horizontal flip.
  public static func flip(_ field: WritableKeyPath<S, Float>) -> SettingOption {
    .number("flip", field, in: 0...1, "probability of a horizontal flip")
  }
}
