/// An error from the runtime environment (a missing library, an unusable file), told
/// to the user as its message.
public struct RuntimeError: Error, CustomStringConvertible, Sendable {
  public let description: String
  public init(_ description: String) { self.description = description }
}
