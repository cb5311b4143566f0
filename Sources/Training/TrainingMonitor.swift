import Autograd
import Backbones
import NN

/// What watches the backbone during pretraining without changing it: the online linear
/// probe and the label-free quality signals (Evaluation/OnlineEvaluation.swift). The
/// trainer knows it through this protocol only.
///
/// Its `module` (e.g. a linear head) is registered in the trainer's model as `monitor.*`,
/// so checkpoints save it and a resume or a rollback restores it with the rest. It is
/// trained by the run's optimizer with the task's loss (solo-learn's online classifier):
/// `loss` works on detached features, so no gradient of it reaches the backbone.
public protocol TrainingMonitor: AnyObject {
  var module: Module { get }
  /// Evaluate (`evaluate`) every this many steps, and at the last step.
  var every: Int { get }
  /// The peak learning rate of the module's parameters under the run's `optimizer`
  /// (they follow the run's schedule, scaled to this peak).
  func peakLearningRate(optimizer: String) -> Double
  /// The monitor's own training loss at `step` (the step about to be taken), computed
  /// from features the backbone makes without recording; nil when it trains nothing.
  /// `group`: a data-parallel run's processes; each takes its share of the batch.
  func loss(step: Int, backbone: any Backbone, group: any Communicator) throws -> Tensor?
  /// Runs the largest piece of an evaluation (nothing is logged or kept), for the memory
  /// plan to measure.
  func measureEvaluation(backbone: any Backbone) throws
  /// Metrics of the backbone as it is after `step` (logged with that step's record),
  /// and warnings to show (e.g. collapsing features). Runs on process 0 only.
  func evaluate(step: Int, backbone: any Backbone) throws -> (metrics: [(name: String, value: Double)], warnings: [String])
}
