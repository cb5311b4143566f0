/// A misuse of a tensor operation: wrong shapes, bad arguments. The message names the
/// op and the shapes involved, e.g. `matmul: [256, 192] × [128, 64]: inner dimensions
/// differ (192 vs 128)`.
public struct TensorError: Error, CustomStringConvertible, Equatable, Sendable {
  public let op: String
  public let message: String
  public init(_ op: String, _ message: String) {
    self.op = op
    self.message = message
  }
  public var description: String { "\(op): \(message)" }
}

/// `[2, 3, 4]` — the way shapes appear in error messages.
@inline(__always) func fmt(_ shape: [Int]) -> String {
  "[" + shape.map(String.init).joined(separator: ", ") + "]"
}

/// Normalizes a possibly negative axis against `rank`, or throws naming the op.
@inline(__always)
func normalizeAxis(_ axis: Int, rank: Int, op: String) throws -> Int {
  let a = axis < 0 ? axis + rank : axis
  guard a >= 0 && a < rank else {
    throw TensorError(op, "axis \(axis) is out of range for a tensor of rank \(rank)")
  }
  return a
}
