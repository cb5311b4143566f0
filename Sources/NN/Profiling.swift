import Autograd

/// One row of a model's layer table (`pretext inspect`).
public struct LayerRecord: Sendable, Codable, Equatable {
  public var name: String
  public var type: String
  public var outputShape: [Int]
  /// Parameters owned directly by this layer (not by its children).
  public var parameters: Int
  /// Multiply-accumulates of this layer's forward pass for the profiled input.
  public var macs: Int

  public init(name: String, type: String, outputShape: [Int], parameters: Int, macs: Int) {
    self.name = name
    self.type = type
    self.outputShape = outputShape
    self.parameters = parameters
    self.macs = macs
  }

  enum CodingKeys: String, CodingKey { case name, type, outputShape = "output_shape", parameters, macs }
}

/// Collects `LayerRecord`s while a forward pass runs inside `Profiler.run`. Layers report
/// themselves at the end of their forward pass with the standard counts: convolution
/// K²·Cin/groups·Cout·Hout·Wout, linear in·out per token, attention the Q·Kᵀ and
/// attention·V products.
public final class Profiler: @unchecked Sendable {
  @TaskLocal static var current: Profiler?
  public private(set) var records: [LayerRecord] = []

  /// Runs `body` (a forward pass) and returns what the layers reported.
  public static func run(_ body: () throws -> Void) rethrows -> [LayerRecord] {
    let profiler = Profiler()
    try $current.withValue(profiler) { try withoutGradients(body) }
    return profiler.records
  }
}

extension Module {
  /// Reports this layer's output to the active profiler, if any.
  @inline(__always)
  public func profile(_ output: Tensor, macs: Int, parameters: Int? = nil) {
    guard let profiler = Profiler.current else { return }
    let own = parameters ?? namedParameters().filter { !$0.name.contains(".") }.reduce(0) { $0 + $1.tensor.count }
    profiler.recordLayer(LayerRecord(name: path, type: typeName, outputShape: output.shape, parameters: own, macs: macs))
  }
}

extension Profiler {
  fileprivate func recordLayer(_ r: LayerRecord) { records.append(r) }
}
