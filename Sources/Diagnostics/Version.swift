/// The version of Pretext (semantic versioning; see CHANGELOG.md).
public enum PretextVersion {
  public static let string = "0.1.0"
}
