import Evaluation
import Foundation
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
  public var report: ReportSection
  /// The compare file ("" when the comparison is made of plain experiment files).
  public var sourcePath: String

  /// The comparison's folder: `<output>/<name>`, holding one folder per run and the report.
  public var directory: String { (output as NSString).appendingPathComponent(name) }

  static let topLevelKeys: Set<String> = ["name", "output", "experiments", "set", "probe", "report"]

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
      let data = try readConfigFile(path, kind: "compare")
      let node: Node?
      do {
        node = try composeBounded(String(decoding: data, as: UTF8.self), source: path)
      } catch let e as ConfigError {
        throw e
      } catch {
        throw ConfigError("\(path): not valid YAML (\(error))")
      }
      guard let mapping = node?.mapping ?? (node == nil ? Node.Mapping([]) : nil) else {
        throw ConfigError("\(path): the top level must be a mapping (name, output, experiments, set, probe, report)")
      }
      root = mapping
    }
    let fileNode = Node.mapping(root)
    for o in overrides { try ExperimentConfig.applyOverride(o, to: &root) }
    let source = path ?? "compare"
    let locate = { (codingPath: [CodingKey]) -> String in
      if let mark = Self.mark(of: codingPath, in: fileNode) { return "\(source):\(mark.line)" }
      let keys = codingPath.map(\.stringValue).joined(separator: ".")
      return path == nil ? "--set compare.\(keys)" : "\(source) (or --set)"
    }
    for key in root.keys.compactMap(\.string) where !topLevelKeys.contains(key) {
      throw ConfigError(
        "\(locate([AnyCodingKey(key)])): unknown key \"\(key)\" (known: \(topLevelKeys.sorted().joined(separator: ", ")))"
      )
    }
    let decoder = YAMLDecoder()
    func section<T: Decodable>(_ key: String, _ fallback: T) throws -> T {
      guard let node = root[key] else { return fallback }
      do {
        return try decoder.decode(T.self, from: node)
      } catch let e as DecodingError {
        throw ConfigError(ExperimentConfig.describe(e, prefix: key, locate: locate))
      }
    }
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
    do { try probe.validate() } catch { throw ConfigError("\(locate([AnyCodingKey("probe")])): \(error)") }
    let report = try section("report", ReportSection())
    return CompareConfig(
      name: name, output: output, experiments: experiments, overrides: shared, probe: probe, report: report,
      sourcePath: path ?? "")
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
  public struct ProbeSection: Decodable, Sendable, Equatable {
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

    enum CodingKeys: String, CodingKey, CaseIterable {
      case train, test, labelsPerClass = "labels_per_class", labelFractions = "label_fractions", knn, k, temperature
      case baselines, classifier, epochs, batchSize = "batch_size", learningRate = "lr", weightDecay = "weight_decay"
      case iterations, layers, concatDepths = "concat_depths", validationFraction = "validation_fraction", seed
      case extractionBatchSize = "extraction_batch_size"
    }

    public init(from decoder: Decoder) throws {
      try decoder.rejectUnknownKeys(CodingKeys.self, allowing: [])
      let c = try decoder.container(keyedBy: CodingKeys.self)
      let d = Self()
      train = try c.value(.train, or: d.train)
      test = try c.value(.test, or: d.test)
      labelsPerClass = try c.oneOrMany(.labelsPerClass) ?? d.labelsPerClass
      labelFractions = try c.oneOrMany(.labelFractions) ?? d.labelFractions
      knn = try c.value(.knn, or: d.knn)
      k = try c.value(.k, or: d.k)
      temperature = try c.value(.temperature, or: d.temperature)
      baselines = try c.value(.baselines, or: d.baselines)
      classifier = try c.value(.classifier, or: d.classifier)
      epochs = try c.decodeIfPresent(Int.self, forKey: .epochs)
      batchSize = try c.decodeIfPresent(Int.self, forKey: .batchSize)
      learningRate = try c.decodeIfPresent(Double.self, forKey: .learningRate)
      weightDecay = try c.decodeIfPresent(Double.self, forKey: .weightDecay)
      iterations = try c.value(.iterations, or: d.iterations)
      layers = try c.value(.layers, or: d.layers)
      concatDepths = try c.value(.concatDepths, or: d.concatDepths)
      validationFraction = try c.value(.validationFraction, or: d.validationFraction)
      seed = try c.value(.seed, or: d.seed)
      extractionBatchSize = try c.value(.extractionBatchSize, or: d.extractionBatchSize)
    }

    /// Checks ranges; the message names the key.
    func validate() throws {
      func check(_ ok: Bool, _ message: String) throws { if !ok { throw ConfigError("probe.\(message)") } }
      try check(!labelsPerClass.isEmpty || !labelFractions.isEmpty, "labels_per_class: give at least one label budget")
      try check(
        labelFractions.allSatisfy { $0 > 0 && $0 <= 1 }, "label_fractions must be in (0, 1], got \(labelFractions)")
      try check(Set(budgets.map(Self.fileStem)).count == budgets.count, "the label budgets repeat one another")
      try check(
        LinearProbeSettings.Method(rawValue: classifier) != nil,
        "classifier must be one of sgd, lars, lbfgs, ridge; got \"\(classifier)\"")
      // Upper bounds far above any probe, so that every count derived from them stays in
      // range (the labeled folders bound what is really used).
      try check((1...1_000_000).contains(k), "k must be in [1, 1000000], got \(k)")
      try check(temperature > 0 && temperature <= 100, "temperature must be in (0, 100], got \(temperature)")
      try check(
        validationFraction > 0 && validationFraction < 1,
        "validation_fraction must be in (0, 1), got \(validationFraction)")
      try check(
        (1...(1 << 20)).contains(extractionBatchSize), "extraction_batch_size must be in [1, 1048576], got \(extractionBatchSize)")
      try check(
        (1...64).contains(concatDepths), "concat_depths must be in [1, 64] (1: single depths only), got \(concatDepths)")
      try check((1...10_000_000).contains(iterations), "iterations must be in [1, 10000000], got \(iterations)")
      try check(epochs.map { (1...1_000_000).contains($0) } ?? true, "epochs must be in [1, 1000000], got \(epochs ?? 0)")
      try check(batchSize.map { (2...(1 << 20)).contains($0) } ?? true, "batch_size must be in [2, 1048576], got \(batchSize ?? 0)")
      try check(learningRate.map { $0 > 0 && $0 <= 1000 } ?? true, "lr must be in (0, 1000], got \(learningRate ?? 0)")
      try check(
        weightDecay.map { $0 >= 0 && $0 <= 1000 } ?? true, "weight_decay must be in [0, 1000], got \(weightDecay ?? 0)")
      try classifierSettings.validate()
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
  public enum LabelCount: Decodable, Sendable, Equatable {
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

    public var budget: LabelSubset.Budget {
      switch self {
      case .all: return .all
      case .perClass(let n): return .perClass(n)
      }
    }
  }

  /// What the report shows besides the table.
  public struct ReportSection: Decodable, Sendable, Equatable {
    /// Draw the 2-D PCA projection of each run's test features.
    public var projection = true
    /// Points drawn per class in the projection (the PCA itself uses every test image).
    public var projectionPointsPerClass = 200

    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
      case projection, projectionPointsPerClass = "projection_points_per_class"
    }

    public init(from decoder: Decoder) throws {
      try decoder.rejectUnknownKeys(CodingKeys.self, allowing: [])
      let c = try decoder.container(keyedBy: CodingKeys.self)
      projection = try c.value(.projection, or: true)
      projectionPointsPerClass = try c.value(.projectionPointsPerClass, or: 200)
      guard projectionPointsPerClass >= 1 else {
        throw DecodingError.dataCorrupted(
          .init(
            codingPath: decoder.codingPath + [CodingKeys.projectionPointsPerClass],
            debugDescription: "must be at least 1, got \(projectionPointsPerClass)"))
      }
    }
  }
}

extension KeyedDecodingContainer {
  /// A list, or a single value taken as a list of one; nil when the key is absent.
  func oneOrMany<T: Decodable>(_ key: Key) throws -> [T]? {
    guard contains(key) else { return nil }
    if (try? nestedUnkeyedContainer(forKey: key)) != nil { return try decode([T].self, forKey: key) }
    return [try decode(T.self, forKey: key)]
  }
}
