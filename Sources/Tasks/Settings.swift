import Foundation
import Support

/// A task's settings: its section of the experiment config, which also holds the task's
/// `name`.
public protocol TaskSettings: SettingsSchema {}
extension TaskSettings {
  public static var otherKeys: Set<String> { ["name"] }
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
