import Backbones
import Foundation
import Tasks
import Training
import Yams

/// The memory check that comes before anything is allocated: a lower bound on what the
/// run needs, from the configuration alone (the backbone's exact parameter count, and
/// for each sample the inputs and the layer outputs a backward pass must read; see
/// Backbones/Footprint.swift). A run whose lower bound already exceeds the memory
/// available is refused here, with the numbers; one that passes is then measured
/// (Training/MemoryPlan.swift) before training starts.
extension ExperimentConfig {
  /// Bytes this run needs at the least on each of `processes` processes.
  public func memoryFloor(processes: Int = 1) throws -> (bytes: Double, parameters: Double, perSample: Double) {
    let config = try backboneConfig()
    let views = try taskBackboneInputs(config)
    let parameters = config.parameterCountFromConfig
    // The weights, their gradients and the optimizer's slots (AdamW: two).
    let slots: Double = train.optimizer == "adamw" ? 2 : 1
    let perSample = 4 * views.reduce(0) { $0 + config.activationFloatsFloor(inputSize: $1) }
    let batch = Double(train.batchSize / max(processes, 1))
    return (4 * parameters * (2 + slots) + batch * perSample, parameters, perSample)
  }

  /// Throws when even the lower bound does not fit in `limit`: the message gives the
  /// bound, the limit, the values that make it and where they are set.
  public func checkMemoryFloor(against limit: MemoryLimit?, processes: Int = 1) throws {
    guard let limit else { return }
    let floor = try memoryFloor(processes: processes)
    guard floor.bytes > Double(limit.bytes) else { return }
    let config = try backboneConfig()
    let batch = train.batchSize / max(processes, 1)
    throw ConfigError(
      "\(locator.locate(["backbone"])): this run needs at least \(formatBytes(floor.bytes)) of memory "
        + "(\(config.name) with \(String(format: "%.4g", floor.parameters)) parameters at \(config.imageSize) px, "
        + "\(formatBytes(floor.perSample)) per sample × \(batch) samples per step), more than the \(limit.description); "
        + "lower train.batch_size (\(locator.locate(["train", "batch_size"], orSection: true))), "
        + "backbone.image_size or backbone.width")
  }

  /// The image sides a sample pushes through the backbone (the task's views).
  func taskBackboneInputs(_ config: BackboneConfig) throws -> [Int] {
    try withTaskSection { try TaskRegistry.backboneInputs(taskName, settings: $0, backbone: config) }
  }
}
