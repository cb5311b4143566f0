import Autograd
import Backbones
import Foundation
import NN
import Optimization
import Support
import Vision

/// Where a run stands, saved with every checkpoint.
public struct CheckpointState: Codable, Sendable, Equatable {
  public var step: Int
  public var totalSteps: Int
  /// The loader position of the next batch.
  public var position: LoaderPosition
  public var elapsedSeconds: Double
  /// The factor on the scheduled learning rate: 1, times `nan_lr_factor` per rollback
  /// after a non-finite loss or gradient (`nan_retries`).
  public var learningRateFactor: Double = 1
  /// Rollbacks made so far in the run (at most `nan_retries`).
  public var rollbacks: Int = 0

  public init(step: Int, totalSteps: Int, position: LoaderPosition, elapsedSeconds: Double) {
    self.step = step
    self.totalSteps = totalSteps
    self.position = position
    self.elapsedSeconds = elapsedSeconds
  }

  enum CodingKeys: String, CodingKey { case step, totalSteps, position, elapsedSeconds, learningRateFactor, rollbacks }

  public init(from decoder: Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    step = try c.decode(Int.self, forKey: .step)
    totalSteps = try c.decode(Int.self, forKey: .totalSteps)
    position = try c.decode(LoaderPosition.self, forKey: .position)
    elapsedSeconds = try c.decode(Double.self, forKey: .elapsedSeconds)
    // Absent from checkpoints written before rollbacks existed.
    learningRateFactor = try c.decodeIfPresent(Double.self, forKey: .learningRateFactor) ?? 1
    rollbacks = try c.decodeIfPresent(Int.self, forKey: .rollbacks) ?? 0
  }
}

/// Full training checkpoints: `checkpoint-<step>.safetensors` holding the model
/// (`model.backbone.*`, `model.heads.*`), the optimizer state (`optimizer.*`), and the
/// run state as JSON metadata. Written atomically (temporary file, fsync, rename); the
/// newest `keep` are kept.
public enum Checkpoints {
  static let stateKey = "pretext.checkpoint"

  public static func path(step: Int, in directory: String) -> String {
    (directory as NSString).appendingPathComponent(String(format: "checkpoint-%08ld.safetensors", step))
  }

  /// Checkpoint files in the folder, oldest first.
  public static func list(in directory: String) -> [String] {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
    return names.filter { $0.hasPrefix("checkpoint-") && $0.hasSuffix(".safetensors") }.sorted()
      .map { (directory as NSString).appendingPathComponent($0) }
  }

  public static func latest(in directory: String) throws -> String? { list(in: directory).last }

  static func save(
    model: Module, optimizer: any Optimizer, average: MovingAverage?, state: CheckpointState, backbone: any Backbone,
    in directory: String, keep: Int
  ) throws {
    var tensors = model.stateDict().map { ("model." + $0.name, $0.tensor) }
    tensors += optimizer.state().map { ("optimizer." + $0.name, $0.tensor) }
    tensors += (average?.averages ?? []).map { ("ema." + $0.name, $0.tensor) }
    let metadata = [
      stateKey: String(decoding: try JSONEncoder.sortedKeys.encode(state), as: UTF8.self),
      "pretext.backbone": String(decoding: try JSONEncoder.sortedKeys.encode(backbone.config), as: UTF8.self),
    ]
    try SafeTensors(tensors: tensors, metadata: metadata).write(to: path(step: state.step, in: directory))
    for old in list(in: directory).dropLast(keep) { try? FileManager.default.removeItem(atPath: old) }
  }

  /// The run state saved in a checkpoint, from its header only (no tensors are read).
  public static func state(of path: String) throws -> CheckpointState {
    guard let text = try SafeTensors.readMetadata(path: path)[stateKey],
      let state = try? JSONDecoder().decode(CheckpointState.self, from: Data(text.utf8))
    else { throw TrainingError("\(path): not a Pretext checkpoint (no \(stateKey) metadata)") }
    return state
  }

  /// Restores model and optimizer tensors from `path`; returns the run state.
  static func load(_ path: String, model: Module, optimizer: any Optimizer, average: MovingAverage?) throws -> CheckpointState {
    try restore(SafeTensors.read(path: path), from: path, model: model, optimizer: optimizer, average: average)
  }

  /// Restores model and optimizer tensors from a checkpoint file already read (and so
  /// verified: sizes, checksum); `path` names it in errors. Returns the run state.
  static func restore(
    _ file: SafeTensors, from path: String, model: Module, optimizer: any Optimizer, average: MovingAverage?
  ) throws -> CheckpointState {
    guard let text = file.metadata[stateKey],
      let state = try? JSONDecoder().decode(CheckpointState.self, from: Data(text.utf8))
    else { throw TrainingError("\(path): not a Pretext checkpoint (no \(stateKey) metadata)") }
    let modelPart = SafeTensors(
      tensors: file.tensors.filter { $0.name.hasPrefix("model.") }.map { (String($0.name.dropFirst(6)), $0.tensor) })
    try model.load(modelPart, strict: true, source: path)
    let optimizerState = Dictionary(
      file.tensors.filter { $0.name.hasPrefix("optimizer.") }.map { (String($0.name.dropFirst(10)), $0.tensor) },
      uniquingKeysWith: { a, _ in a })
    try optimizer.load(state: optimizerState)
    if let average {
      for (name, t) in average.averages {
        guard let saved = file["ema." + name] else { throw TrainingError("\(path): no averaged weights for \(name) (was ema_decay changed?)") }
        try t.assign(saved)
      }
    }
    return state
  }
}
