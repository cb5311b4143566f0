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
  /// The width of a head's layer (`projection_hidden`, `predictor_hidden`, …).
  public static func width(_ key: String, _ field: WritableKeyPath<S, Int>, _ help: String) -> SettingOption {
    .integer(key, field, in: 1...maximumTaskWidth, help)
  }
  /// A softmax temperature; beyond 100 it flattens every similarity to the same logit.
  public static func temperature(_ field: WritableKeyPath<S, Float>, _ help: String) -> SettingOption {
    .number("temperature", field, in: 0...100, openBelow: true, help)
  }
  /// A momentum target network's starting momentum, rising to 1 along a cosine; 1
  /// freezes the target at its initial (random) weights.
  public static func targetMomentum(_ field: WritableKeyPath<S, Double>, _ help: String) -> SettingOption {
    .number("momentum", field, in: 0...1, help)
  }
  /// The probability of a horizontal flip.
  public static func flip(_ field: WritableKeyPath<S, Float>) -> SettingOption {
    .number("flip", field, in: 0...1, "probability of a horizontal flip")
  }
}
