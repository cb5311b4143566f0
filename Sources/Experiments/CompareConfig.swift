import Evaluation
import Foundation
import Support
import Tasks
import Yams

/// A comparison of experiments: which experiment configs to pretrain, with which shared
/// and per-experiment overrides, and how to probe them. Decoded from YAML as strictly as
/// an experiment config (an unknown key, a wrong type or a bad value is an error naming
/// the file and line).
///
/// ```yaml
/// name: fashion-mnist            # runs/fashion-mnist/ holds the runs and the report
/// output: runs                   # default
/// experiments:                   # experiment configs, relative to this file
///   - mae.yaml
///   - path: simclr.yaml
///     set: [train.base_lr=1e-3]  # this experiment only
///   - relative-location.yaml
/// set: [train.minutes=5]         # every experiment (before its own set)
/// probe:
///   train: data/fashion-mnist/train      # labeled folders, relative to the working directory
///   test: data/fashion-mnist/test
///   labels_per_class: [100, all]         # one probe per budget
///   knn: true
///   baselines: true
/// finetune:                              # optional: fine-tune each run, and train from scratch
///   labels_per_class: [100]
///   epochs: 20                           # recipe keys as `pretext finetune`'s options
/// report:
///   projection_points_per_class: 200
/// ```
public struct CompareConfig: Sendable {
  /// One experiment entry: a config file and its own overrides.
  public struct Entry: Sendable, Equatable {
    /// The config file, resolved against the compare file's folder.
    public var path: String
    public var overrides: [String]
    /// Where the entry is written (`file:line`), for errors about it.
    public var location: String
  }

  public var name: String
  public var output: String
  public var experiments: [Entry]
  /// Overrides applied to every experiment, before the entry's own.
  public var overrides: [String]
  public var probe: ProbeSection
  /// Nil when the file has no `finetune:` section (no fine-tuning).
  public var finetune: FinetuneSection?
  public var report: ReportSection
  /// The compare file ("" when the comparison is made of plain experiment files).
  public var sourcePath: String

  /// The comparison's folder: `<output>/<name>`, holding one folder per run and the report.
  public var directory: String { (output as NSString).appendingPathComponent(name) }

  static let topLevelKeys: Set<String> = ["name", "output", "experiments", "set", "probe", "finetune", "report"]

  /// Whether a YAML file is a compare file (it has an `experiments` list) rather than an
  /// experiment config.
  public static func isCompareFile(_ path: String) -> Bool {
    guard let data = try? readConfigFile(path),
      let node = try? composeBounded(String(decoding: data, as: UTF8.self), source: path), let mapping = node.mapping
    else { return false }
    return mapping["experiments"] != nil
  }

  /// Loads a compare file, or (with `path` nil) the defaults of a comparison of plain
  /// experiment files; then applies `overrides` (`key.path=value` on this file's keys,
  /// e.g. `probe.labels_per_class=[100]`).
  public static func load(path: String?, overrides: [String] = []) throws -> CompareConfig {
    var root = Node.Mapping([])
    if let path {
      root = try ConfigSections.readMapping(
        path, kind: "compare", sections: ["name", "output", "experiments", "set", "probe", "finetune", "report"])
    }
    let fileNode = Node.mapping(root)
    for o in overrides { try ExperimentConfig.applyOverride(o, to: &root) }
    let source = path ?? "compare"
    let locate = { (codingPath: [CodingKey]) -> String in
      if let mark = Self.mark(of: codingPath, in: fileNode) { return "\(source):\(mark.line)" }
      let keys = codingPath.map(\.stringValue).joined(separator: ".")
      return path == nil ? "--set compare.\(keys)" : "\(source) (or --set)"
    }
    let sections = ConfigSections(root: root, locate: locate)
    try sections.rejectUnknownKeys(topLevelKeys)
    func section<T: Decodable>(_ key: String, _ fallback: T) throws -> T { try sections.decode(key, fallback) }
    let defaultName = path.map { ($0 as NSString).lastPathComponent.replacingOccurrences(of: ".yaml", with: "") }
    let name = try section("name", defaultName ?? "compare")
    guard !name.isEmpty, !name.contains("/"), name != ".", name != ".." else {
      throw ConfigError("\(locate([AnyCodingKey("name")])): name must be a folder name (no \"/\"), got \"\(name)\"")
    }
    let output = try section("output", "runs")
    let entries = try section("experiments", [EntryText]())
    let folder = path.map { ($0 as NSString).deletingLastPathComponent } ?? ""
    var experiments: [Entry] = []
    for (i, e) in entries.enumerated() {
      let resolved =
        e.path.hasPrefix("/") || folder.isEmpty ? e.path : (folder as NSString).appendingPathComponent(e.path)
      experiments.append(
        Entry(
          path: resolved, overrides: e.set, location: locate([AnyCodingKey("experiments"), AnyCodingKey(intValue: i)!]))
      )
    }
    let shared = try section("set", [String]())
    let probe = try section("probe", ProbeSection())
    let finetune = root["finetune"] == nil ? nil : try section("finetune", FinetuneSection())
    let report = try section("report", ReportSection())
    return CompareConfig(
      name: name, output: output, experiments: experiments, overrides: shared, probe: probe, finetune: finetune,
      report: report, sourcePath: path ?? "")
  }

  /// The position of the innermost node of `path` that the file has (list items by
  /// index), or nil when even the first key is absent (it came from --set).
  static func mark(of path: [CodingKey], in root: Node) -> Mark? {
    var node = root
    var mark: Mark? = nil
    for key in path {
      if let mapping = node.mapping, let pair = mapping.first(where: { $0.key.string == key.stringValue }) {
        mark = pair.key.mark ?? pair.value.mark
        node = pair.value
      } else if let sequence = node.sequence, let i = key.intValue, i >= 0, i < sequence.count {
        node = sequence[i]
        mark = node.mark ?? mark
      } else {
        return mark
      }
    }
    return mark
  }

  /// An `experiments:` item: a path, or `{path:, set: [...]}`.
  struct EntryText: Decodable {
    var path: String
    var set: [String] = []
    enum CodingKeys: String, CodingKey, CaseIterable { case path, set }
    init(from decoder: Decoder) throws {
      if let single = try? decoder.singleValueContainer(), let text = try? single.decode(String.self) {
        path = text
        return
      }
      guard (try? decoder.container(keyedBy: AnyCodingKey.self)) != nil else {
        throw DecodingError.typeMismatch(
          String.self,
          DecodingError.Context(
            codingPath: decoder.codingPath,
            debugDescription: "an experiment is a config path or {path: ..., set: [...]}"))
      }
      try decoder.rejectUnknownKeys(CodingKeys.self, allowing: [])
      let c = try decoder.container(keyedBy: CodingKeys.self)
      path = try c.decode(String.self, forKey: .path)
      set = try c.value(.set, or: [])
    }
  }

  // MARK: Sections

  /// How every run is probed (the options of `pretext probe`). Each label budget is one
  /// probe of each run, written to `probe-<budget>.json` in the run folder.
  public struct ProbeSection: SettingsSchema, Equatable {
    /// Labeled folders (one subfolder per class), relative to the working directory like
    /// an experiment's `data.unlabeled`.
    public var train = "data/fashion-mnist/train"
    public var test = "data/fashion-mnist/test"
    /// Label budgets: N per class, or `all`.
    public var labelsPerClass: [LabelCount] = [.all]
    /// More label budgets, as fractions of each class (0 < f ≤ 1).
    public var labelFractions: [Double] = []
    public var knn = true
    public var k = 20
    public var temperature = 0.07
    public var baselines = true
    public var classifier = "sgd"
    /// sgd/lars settings; nil: the probe's defaults for the classifier.
    public var epochs: Int? = nil
    public var batchSize: Int? = nil
    public var learningRate: Double? = nil
    public var weightDecay: Double? = nil
    public var iterations = 500
    /// `all` (chosen on a validation split), `last`, or a depth name.
    public var layers = "all"
    /// With `layers: all`, the deepest 2…N depths also compete concatenated.
    public var concatDepths = 4
    public var validationFraction = 0.1
    public var seed: UInt64 = 0
    public var extractionBatchSize = 256

    public init() {}

    public static let section = "probe"
    // Upper bounds far above any probe, so that every count derived from them stays in
    // range (the labeled folders bound what is really used).
    public static let options: [SettingOption<ProbeSection>] = [
      .value("train", \.train, accepts: "a folder of class folders", "labeled images the classifiers are fitted on"),
      .value("test", \.test, accepts: "a folder of class folders", "labeled images they are scored on"),
      .list("labels_per_class", \.labelsPerClass, accepts: "counts ≥ 1 or all", "label budgets: N per class"),
      .list("label_fractions", \.labelFractions, accepts: "numbers in (0, 1]", "more label budgets, as shares of each class") {
        $0.allSatisfy { $0 > 0 && $0 <= 1 } ? nil : "must be in (0, 1], got \($0)"
      },
      .flag("knn", \.knn, "also score a weighted kNN classifier"),
      .integer("k", \.k, in: 1...1_000_000, "neighbours of the kNN classifier"),
      .number("temperature", \.temperature, in: 0...100, openBelow: true, "kNN vote weight exp(similarity / T)"),
      .flag("baselines", \.baselines, "also probe a random-init backbone and raw pixels"),
      .choice(
        "classifier", \.classifier, LinearProbeSettings.Method.allCases.map(\.rawValue), "how the linear classifier is fitted"),
      .integer("epochs", \.epochs, in: 1...1_000_000, "sgd/lars epochs (the classifier's default when absent)"),
      .integer("batch_size", \.batchSize, in: 2...(1 << 20), "sgd/lars batch (the classifier's default when absent)"),
      .number("lr", \.learningRate, in: 0...1000, openBelow: true, "sgd/lars learning rate (the classifier's default when absent)"),
      .number("weight_decay", \.weightDecay, in: 0...1000, "weight decay (the classifier's default when absent)"),
      .integer("iterations", \.iterations, in: 1...10_000_000, "lbfgs iterations"),
      .value("layers", \.layers, accepts: "all, last or a depth name", "which depths' features (all: chosen on a validation split)"),
      .integer("concat_depths", \.concatDepths, in: 1...64, "with layers: all, the deepest 2…N depths also compete concatenated"),
      .number(
        "validation_fraction", \.validationFraction, in: 0...1, openBelow: true, openAbove: true,
        "share of the training labels held out to choose the depth"),
      .value("seed", \.seed, accepts: "an integer ≥ 0", "seeds the label subsets and the fits"),
      .integer("extraction_batch_size", \.extractionBatchSize, in: 1...(1 << 20), "images per feature-extraction batch"),
    ]

    public func checkTogether() throws {
      if labelsPerClass.isEmpty && labelFractions.isEmpty {
        throw Self.error("labels_per_class", "needs at least one label budget (or label_fractions)")
      }
      if Set(budgets.map(Self.fileStem)).count != budgets.count {
        throw Self.error("labels_per_class", "and label_fractions repeat one another: \(budgets.map(Self.fileStem))")
      }
      do { try classifierSettings.validate() } catch { throw Self.error("classifier", "settings: \(error)") }
    }

    /// Every label budget, in the order written (per-class counts, then fractions).
    public var budgets: [LabelSubset.Budget] {
      labelsPerClass.map { $0.budget } + labelFractions.map { .fraction($0) }
    }

    public var classifierSettings: LinearProbeSettings {
      LinearProbeSettings(
        method: LinearProbeSettings.Method(rawValue: classifier) ?? .sgd, epochs: epochs, batchSize: batchSize,
        baseLearningRate: learningRate, weightDecay: weightDecay, iterations: iterations)
    }

    /// The probe of `weights` at one budget; its report goes into `runDirectory`.
    public func options(weights: String, runDirectory: String, budget: LabelSubset.Budget) -> ProbeOptions {
      var o = ProbeOptions(weights: weights, train: train, test: test)
      o.budget = budget
      o.layers = LayerChoice(layers)
      o.concatenatedDepths = concatDepths
      o.validationFraction = validationFraction
      o.classifier = classifierSettings
      o.knn = KNNSettings(k: k, temperature: temperature)
      o.knnEnabled = knn
      o.seed = seed
      o.baselines = baselines
      o.extractionBatchSize = extractionBatchSize
      o.outputDirectory = runDirectory
      o.reportFileName = "probe-\(Self.fileStem(budget)).json"
      return o
    }

    /// `all`, `100-per-class`, `fraction-0.1`: the budget's part of a file name.
    public static func fileStem(_ budget: LabelSubset.Budget) -> String {
      switch budget {
      case .all: return "all"
      case .perClass(let n): return "\(n)-per-class"
      case .fraction(let f): return "fraction-\(f)"
      }
    }
  }

  /// A `labels_per_class` entry: a positive count or `all`.
  public enum LabelCount: Codable, Sendable, Equatable {
    case all
    case perClass(Int)

    public init(from decoder: Decoder) throws {
      let c = try decoder.singleValueContainer()
      if let n = try? c.decode(Int.self) {
        guard n >= 1 else {
          throw DecodingError.dataCorrupted(
            .init(codingPath: decoder.codingPath, debugDescription: "labels per class must be at least 1, got \(n)"))
        }
        self = .perClass(n)
      } else if let s = try? c.decode(String.self), s == "all" {
        self = .all
      } else {
        throw DecodingError.dataCorrupted(
          .init(codingPath: decoder.codingPath, debugDescription: "a label budget is a positive integer or all"))
      }
    }

    public func encode(to encoder: Encoder) throws {
      var c = encoder.singleValueContainer()
      switch self {
      case .all: try c.encode("all")
      case .perClass(let n): try c.encode(n)
      }
    }

    public var budget: LabelSubset.Budget {
      switch self {
      case .all: return .all
      case .perClass(let n): return .perClass(n)
      }
    }
  }

  /// What the report shows besides the table.
  public struct ReportSection: SettingsSchema, Equatable {
    /// Draw the 2-D PCA projection of each run's test features.
    public var projection = true
    /// Points drawn per class in the projection (the PCA itself uses every test image).
    public var projectionPointsPerClass = 200
    /// Beside the PCA, a t-SNE map of the same points.
    public var tsne = true

    public init() {}

    public static let section = "report"
    public static let options: [SettingOption<ReportSection>] = [
      .flag("projection", \.projection, "draw the 2-D PCA map of each run's test features"),
      .integer(
        "projection_points_per_class", \.projectionPointsPerClass, in: 1...1_000_000,
        "points drawn per class in the map (the PCA uses every test image)"),
      .flag("tsne", \.tsne, "beside the PCA, a t-SNE map of the same points (exact: about 15 s for 2,000 points on 2 cores)"),
    ]
  }
}
