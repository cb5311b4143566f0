import Autograd
import Backbones
import NN
import Vision

/// One image turned into a task's training example by the task's own augmentation:
/// views (all of one slot have the same size), integer labels, and per-sample indices
/// (e.g. MAE's visible patches).
public struct TaskSample: Sendable {
  public var views: [FloatImage]
  public var labels: [Int]
  public var indices: [Int]
  public init(views: [FloatImage], labels: [Int] = [], indices: [Int] = []) {
    self.views = views
    self.labels = labels
    self.indices = indices
  }
}

/// A batch of samples: view slot k of every sample stacked into `views[k]` [B, C, H, W];
/// `labels` and `indices` concatenated per sample ([B·L] and [B, K]).
///
/// In data-parallel training the batch is this process's slice of a global batch spread
/// over `group` (B = global batch / group.size; process r holds global samples
/// r·B ..< (r+1)·B). A loss that is a mean over samples needs nothing more (the trainer
/// averages gradients); a loss that couples the samples of a batch (contrastive
/// negatives) gathers them through `group`.
public struct TaskBatch: Sendable {
  public var views: [Tensor]
  public var labels: [Int]
  public var indices: [[Int]]
  public var count: Int
  public var group: any Communicator

  public init(
    views: [Tensor], labels: [Int] = [], indices: [[Int]] = [], count: Int, group: any Communicator = SingleProcess()
  ) {
    self.views = views
    self.labels = labels
    self.indices = indices
    self.count = count
    self.group = group
  }

  public static func collate(_ samples: [TaskSample], group: any Communicator = SingleProcess()) throws -> TaskBatch {
    guard let first = samples.first else { throw TaskError("empty batch") }
    let views = try (0..<first.views.count).map { slot in try makeBatch(samples.map { $0.views[slot] }) }
    return TaskBatch(
      views: views, labels: samples.flatMap(\.labels), indices: samples.map(\.indices), count: samples.count, group: group)
  }

  /// Images through the backbone in this batch (all views counted).
  public var imageCount: Int { views.reduce(0) { $0 + $1.shape[0] } }

  /// Rows of two views over the global batch: `rows` [2B, D] (this process's B first
  /// views, then its B second views) from every process, gathered through `group` and put
  /// in the one-process layout: [first views, second views], each [R·B, D] in global
  /// sample order. This process's samples are rows rank·B ..< (rank + 1)·B of each; a
  /// gradient flows back to this process's own rows only (see `allGathered`).
  public func globalViews(_ rows: Tensor) throws -> [Tensor] {
    let n = count
    let all = try rows.allGathered(over: group)
    return try [0, n].map { offset in
      try Tensor.concat(
        (0..<group.size).map { r in try all.sliced(axis: 0, (r * 2 * n + offset)..<(r * 2 * n + offset + n)) }, axis: 0)
    }
  }

  /// This process's samples among the global batch's: rank·B ..< (rank + 1)·B.
  public var globalRows: Range<Int> { (group.rank * count)..<((group.rank + 1) * count) }
}

/// Where training stands after an optimizer step, as the trainer plans it: the steps
/// done and the planned total (re-planned during a minutes budget). It is computed from
/// the run state saved in every checkpoint, so a resumed run, or one rolled back after a
/// non-finite loss, gives a task the same progress at the same step; a task keeps no
/// counter of its own.
public struct TrainingProgress: Sendable, Equatable {
  /// Optimizer steps done (1 after the first).
  public var step: Int
  public var totalSteps: Int
  public var stepsPerEpoch: Int
  public init(step: Int, totalSteps: Int, stepsPerEpoch: Int) {
    self.step = step
    self.totalSteps = totalSteps
    self.stepsPerEpoch = stepsPerEpoch
  }
  /// Epochs done, fractional.
  public var epoch: Double { Double(step) / Double(max(1, stepsPerEpoch)) }
  /// The share of the planned steps done, in [0, 1].
  public var fraction: Double { totalSteps > 0 ? min(1, Double(step) / Double(totalSteps)) : 1 }
}

/// The loss of a batch (a scalar tensor to back-propagate) and named metrics to log.
public struct TaskOutput {
  public var loss: Tensor
  public var metrics: [(name: String, value: Double)]
  public init(loss: Tensor, metrics: [(name: String, value: Double)] = []) {
    self.loss = loss
    self.metrics = metrics
  }
}

/// A pretext task: it owns its view recipe and its heads and turns a batch of unlabeled
/// images into a loss with the shared backbone. The trainer knows nothing else about it.
///
/// Adding a task is one new file with a type conforming to this protocol plus one entry
/// in `TaskRegistry`.
/// `sample` runs on the data loader's thread while `loss` runs on the training thread, so
/// `sample` must only read immutable settings (hence `Sendable`).
public protocol PretextTask: AnyObject, Sendable {
  /// The registry name (`simclr`, `byol`, `moco-v3`, `mae`, `rotation`, `relative-location`).
  var name: String { get }
  /// The task's heads, trained together with the backbone and saved in checkpoints.
  var heads: Module { get }
  /// The pixel normalization the task feeds the backbone with (saved with the backbone so
  /// that the probe prepares images the same way).
  var inputNormalization: InputNormalization { get }
  /// Builds one training example from a decoded image, drawing from `rng` only.
  func sample(_ image: Image, using rng: inout RandomGenerator) throws -> TaskSample
  /// Loss and metrics of a collated batch.
  func loss(_ batch: TaskBatch, backbone: any Backbone) throws -> TaskOutput
  /// Runs after each optimizer step (e.g. a momentum target network's update, from the
  /// progress's schedule). The default does nothing.
  func afterStep(_ progress: TrainingProgress) throws
  /// Writes the task's pictures (e.g. MAE reconstructions) for `batch` into `directory`;
  /// returns the files written.
  func writeArtifacts(_ batch: TaskBatch, backbone: any Backbone, directory: String, step: Int) throws -> [String]
}

extension PretextTask {
  public func afterStep(_ progress: TrainingProgress) throws {}
  public func writeArtifacts(_ batch: TaskBatch, backbone: any Backbone, directory: String, step: Int) throws -> [String] { [] }
}

public struct TaskError: Error, CustomStringConvertible, Sendable {
  public let description: String
  public init(_ description: String) { self.description = description }
}

/// Resizes any decoded image to the backbone's input: channel count, then size.
struct InputPreparation: Sendable {
  let channels: ConvertChannels
  let normalize: Normalize

  init(channels: Int, mean: [Float], std: [Float]) throws {
    self.channels = try ConvertChannels(to: channels)
    let expand = { (v: [Float]) in v.count == 1 ? [Float](repeating: v[0], count: channels) : v }
    guard expand(mean).count == channels, expand(std).count == channels else {
      throw TaskError("normalization needs 1 or \(channels) mean/std values, got \(mean.count)/\(std.count)")
    }
    normalize = try Normalize(mean: expand(mean), std: expand(std))
  }

  func float(_ image: Image, using rng: inout RandomGenerator) -> FloatImage {
    channels(FloatImage(image), using: &rng)
  }
}
