import ArgumentParser
import Evaluation

/// The labeled folders and the label budget, as `pretext probe` and `pretext finetune`
/// take them (the same seed picks the same subset in both).
struct LabeledSetOptions: ParsableArguments {
  @Option(help: "Labeled training folder (one subfolder per class).") var train: String
  @Option(help: "Labeled test folder (classes must be training classes).") var test: String
  @Option(help: "Use N labeled images per class (a seeded, class-balanced subset).") var labelsPerClass: Int?
  @Option(help: "Use this fraction of each class's labeled images.") var labelFraction: Double?

  /// The budget asked for (all labels when neither option is given).
  func budget() throws -> LabelSubset.Budget {
    guard labelsPerClass == nil || labelFraction == nil else {
      throw ValidationError("give --labels-per-class or --label-fraction, not both")
    }
    if let labelsPerClass { return .perClass(labelsPerClass) }
    if let labelFraction { return .fraction(labelFraction) }
    return .all
  }
}
