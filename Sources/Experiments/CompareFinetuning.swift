import Backbones
import Evaluation
import Foundation
import NN
import Optimization
import Support

// How a comparison fine-tunes its runs: the compare file's `finetune:` section and the
// stage of `pretext compare` that runs it, after the probes.
//
// Each run is fine-tuned at every label budget into `<run>/finetune-<budget>/`. The
// baseline, the same recipe from random init, depends only on the architecture and the
// input normalization, not on what pretraining learned, so it is trained once per
// architecture into `<comparison>/from-scratch-<backbone>-<hash8>-<budget>/` and shared by
// every run with that architecture. Reuse follows the probe's rule: a report is kept when
// it answers the same question (`Finetuning.reusableReport`), otherwise it is trained again.

extension CompareConfig {
  /// `finetune:` in a compare file: the options of `pretext finetune`, applied to every
  /// run at every label budget. Absent: no fine-tuning. Recipe keys left out take the
  /// defaults `pretext finetune` chooses for the backbone and the label count.
  public struct FinetuneSection: SettingsSchema, Equatable {
    /// Labeled folders; nil: the probe's.
    public var train: String? = nil
    public var test: String? = nil
    /// Fine-tuning takes minutes per thousand labels on a CPU, so the default budget is
    /// small, not `all`.
    public var labelsPerClass: [LabelCount] = [.perClass(100)]
    public var labelFractions: [Double] = []
    public var fromScratch = true
    /// The recipe values set here (nil: `pretext finetune`'s default for the backbone
    /// and the label count).
    public var settings = FinetuneSettings()
    public var seed: UInt64 = 0

    public init() {}

    public static let section = "finetune"
    public static let options: [SettingOption<FinetuneSection>] = [
      .value("train", \.train, accepts: "a folder of class folders", "labeled training images (default: the probe's)"),
      .value("test", \.test, accepts: "a folder of class folders", "labeled test images (default: the probe's)"),
      .list("labels_per_class", \.labelsPerClass, accepts: "counts ≥ 1 or all", "label budgets: N per class"),
      .list("label_fractions", \.labelFractions, accepts: "numbers in (0, 1]", "more label budgets, as shares of each class") {
        $0.allSatisfy { $0 > 0 && $0 <= 1 } ? nil : "must be in (0, 1], got \($0)"
      },
      .flag("from_scratch", \.fromScratch, "also train the same recipe from random init (once per architecture)"),
      SettingOption("optimizer", \.settings.optimizer, accepts: "adamw, sgd", "optimizer (default: adamw)") {
        $0 == .lars ? "must be adamw or sgd (LARS is for large-batch pretraining), got lars" : nil
      },
      .integer("epochs", \.settings.epochs, in: 1...1_000_000, "passes over the labeled images (default: by label count)"),
      .integer("batch_size", \.settings.batchSize, in: 2...(1 << 20), "images per step (default: by label count)"),
      .number("lr", \.settings.baseLearningRate, in: 0...1000, openBelow: true, "peak learning rate per 256 images (default: by backbone)"),
      .number("warmup_epochs", \.settings.warmupEpochs, in: 0...1_000_000, "linear warmup, in epochs (default: min(5, epochs / 10))"),
      .number("weight_decay", \.settings.weightDecay, in: 0...1000, "weight decay (default: 0.05)"),
      .number("layer_decay", \.settings.layerDecay, in: 0...1, openBelow: true, "ViT layer-wise lr decay (default: 0.75; ResNet 1)"),
      .number("drop_path", \.settings.dropPath, in: 0...0.99, "drop path at the last residual block (default: ViT 0.1, ResNet 0)"),
      .number("label_smoothing", \.settings.labelSmoothing, in: 0...0.99, "label smoothing (default: 0.1)"),
      .integer("rand_augment_ops", \.settings.randAugmentOperations, in: 0...14, "RandAugment ops per image, 0: off (default: 0)"),
      .integer("rand_augment_magnitude", \.settings.randAugmentMagnitude, in: 0...30, "RandAugment magnitude (default: 9)"),
      .number("mixup", \.settings.mixupAlpha, in: 0...1000, "Mixup α, 0: off (default: 0.8)"),
      .number("cutmix", \.settings.cutmixAlpha, in: 0...1000, "CutMix α, 0: off (default: 1.0)"),
      .number("ema", \.settings.emaMomentum, in: 0...0.999999, "momentum of the weights' average kept, 0: off (default: 1 − 10/steps)"),
      SettingOption("crop_scale", \.settings.cropScale, accepts: "[low, high] in (0, 1], low ≤ high", "crop area range (default: [0.25, 1])") {
        v in
        guard let v else { return nil }
        return v.count == 2 && v[0] > 0 && v[0] <= v[1] && v[1] <= 1
          ? nil : "takes two numbers [low, high] in (0, 1] with low ≤ high, got \(v)"
      },
      SettingOption("horizontal_flip", \.settings.horizontalFlip, accepts: "true or false", "random horizontal flips (default: true)"),
      .value("seed", \.seed, accepts: "an integer ≥ 0", "seeds the label subsets, the head, the random init and the batches"),
    ]

    public func checkTogether() throws {
      if labelsPerClass.isEmpty && labelFractions.isEmpty {
        throw Self.error("labels_per_class", "needs at least one label budget (or label_fractions)")
      }
      if Set(budgets.map(ProbeSection.fileStem)).count != budgets.count {
        throw Self.error("labels_per_class", "and label_fractions repeat one another: \(budgets.map(ProbeSection.fileStem))")
      }
    }

    /// Every label budget, in the order written (per-class counts, then fractions).
    public var budgets: [LabelSubset.Budget] {
      labelsPerClass.map { $0.budget } + labelFractions.map { .fraction($0) }
    }

    /// `pretext finetune` of `weights` at one budget, written into `outputDirectory`.
    public func options(
      weights: String, fromScratch: Bool, budget: LabelSubset.Budget, probe: ProbeSection, outputDirectory: String
    ) -> FinetuneOptions {
      var o = FinetuneOptions(
        weights: weights, train: train ?? probe.train, test: test ?? probe.test, outputDirectory: outputDirectory)
      o.fromScratch = fromScratch
      o.budget = budget
      o.settings = settings
      o.seed = seed
      return o
    }

    /// A run's fine-tuning folder for one budget: `finetune-100-per-class`.
    public static func folder(_ budget: LabelSubset.Budget) -> String { "finetune-\(ProbeSection.fileStem(budget))" }
  }
}

extension CompareRun {
  /// Where the from-scratch baseline for the architecture of `weights` goes: one folder
  /// per architecture, input normalization and budget, in the comparison's folder.
  func scratchDirectory(weights: String, budget: LabelSubset.Budget) throws -> String {
    let file = try SafeTensors.read(path: weights)
    let architecture = try BackboneWeights.config(of: file, source: weights)
    let encoder = JSONEncoder.sortedKeys
    let key =
      String(decoding: try encoder.encode(architecture), as: UTF8.self)
      + String(decoding: try encoder.encode(BackboneWeights.input(of: file) ?? .standard), as: UTF8.self)
    let stem = CompareConfig.ProbeSection.fileStem(budget)
    let folder = "from-scratch-\(architecture.name)-\(SHA256.hex(Array(key.utf8)).prefix(8))-\(stem)"
    return (config.directory as NSString).appendingPathComponent(folder)
  }

  /// Fine-tunes every run at every budget of `section` (and trains each architecture's
  /// from-scratch baseline once), reusing the reports that answer the same question.
  /// Returns (trained, reused).
  func finetuneRuns(_ section: CompareConfig.FinetuneSection, progress: @escaping (String) -> Void) throws -> (Int, Int)
  {
    var trained = 0
    var reused = 0
    func finetune(_ options: FinetuneOptions, tag: String, what: String) throws {
      if Finetuning.reusableReport(options) != nil {
        progress("\(tag): reusing \(what) with labels \(options.budget.text) (\(options.reportPath))")
        reused += 1
        return
      }
      progress("\(tag): \(what) with labels \(options.budget.text) → \(options.outputDirectory)")
      var options = options
      options.commandLine = commandLine
      options.version = version
      let report = try Finetuning.run(options, progress: { progress("  " + $0) })
      progress(String(format: "  test top-1 %.2f%% after %ld steps", report.top1, report.steps))
      trained += 1
    }
    for (i, plan) in planned.enumerated() {
      let tag = "[\(i + 1)/\(planned.count)] \(plan.config.name)"
      let weights = plan.weights
      for budget in section.budgets {
        let folder = (plan.runDirectory as NSString).appendingPathComponent(CompareConfig.FinetuneSection.folder(budget))
        try finetune(
          section.options(
            weights: weights, fromScratch: false, budget: budget, probe: config.probe, outputDirectory: folder),
          tag: tag, what: "fine-tuning")
        if section.fromScratch {
          let scratch = try scratchDirectory(weights: weights, budget: budget)
          try finetune(
            section.options(
              weights: weights, fromScratch: true, budget: budget, probe: config.probe, outputDirectory: scratch),
            tag: tag, what: "training the same recipe from random init")
        }
      }
    }
    return (trained, reused)
  }
}
