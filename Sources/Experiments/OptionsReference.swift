import Evaluation
import Support
import Tasks
import Training

/// Every option of experiment configs and compare files, by section, as Markdown: the
/// README's tables and `pretext options` are this text, made from the settings'
/// declarations, so they cannot drift from what the loaders accept.
public enum OptionsReference {
  /// (heading, table) for each section, in the order of a config file.
  public static var sections: [(heading: String, table: String)] {
    [
      ("`data`", ExperimentConfig.DataSection.optionsTable()),
      ("`backbone`", ExperimentConfig.BackboneSection.optionsTable()),
      ("`train`", TrainerSettings.optionsTable()),
      ("`eval`", OnlineEvaluationSettings.optionsTable()),
    ]
      + TaskRegistry.tasks.sorted { $0.registryName < $1.registryName }.map { ("`task` with `name: \($0.registryName)`", $0.optionsTable()) }
      + [
        ("compare files: `probe`", CompareConfig.ProbeSection.optionsTable()),
        ("compare files: `finetune`", CompareConfig.FinetuneSection.optionsTable()),
        ("compare files: `report`", CompareConfig.ReportSection.optionsTable()),
      ]
  }

  public static func markdown() -> String {
    sections.map { "#### \($0.heading)\n\n\($0.table)\n" }.joined(separator: "\n")
  }
}
