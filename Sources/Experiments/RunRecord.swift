import Autograd
import Backbones
import Evaluation
import Foundation
import Support
import Training
import Vision

/// What the comparison report shows about one experiment, read from its run folder:
/// `config.yaml` (task, backbone, batch), `metrics.jsonl` (the loss curve, steps and
/// time), `pretrain.json` (total training time), the probe reports, the task's pictures
/// (`reconstruction-*.png`) and `projection.json`. Nothing here runs the model, so the
/// report can be written again from the folders alone.
public struct RunRecord: Sendable {
  /// The experiment's name (its config's `name`).
  public var name: String
  public var task: String
  public var backbone: BackboneConfig
  public var parameters: Int
  /// `ExperimentConfig.hash` of the run's config.
  public var configHash: String
  public var runDirectory: String
  public var batchSize: Int
  /// Steps trained (the last logged step).
  public var steps: Int
  /// Training time in seconds over all sessions; nil when nothing was logged.
  public var seconds: Double?
  /// Training loss at each logged step.
  public var loss: [(step: Int, loss: Double)]
  /// The evaluations during pretraining (the `eval` section): at each evaluated step,
  /// the training time so far and the monitor's metrics (`online_probe_top1`, `rankme`,
  /// `feature_spread`).
  public var evaluations: [Evaluation] = []
  public struct Evaluation: Sendable {
    public var step: Int
    public var seconds: Double
    public var metrics: [String: Double]
  }
  /// The metric names an evaluation record holds.
  public static let evaluationMetrics = ["online_probe_top1", "rankme", "feature_spread"]
  /// One report per label budget, in the comparison's order.
  public var probes: [ProbeReport]
  /// The task's pictures (MAE: original | masked | reconstruction), oldest first.
  public var pictures: [String]
  public var projection: ProjectionFile?
  /// The nearest-neighbour grid of the test images (retrieval.json; its picture is
  /// retrieval.png beside it).
  public var retrieval: RetrievalFile?
  /// Fine-tuning reports of this run's backbone, one per label budget, and the matching
  /// from-scratch baselines (shared by the runs of one architecture); empty without a
  /// `finetune:` section or before it has run.
  public var finetunes: [FinetuneReport] = []
  public var scratch: [FinetuneReport] = []

  /// Unlabeled images consumed per second of training (a SimCLR or relative-location
  /// image counts once, though it makes two views).
  public var imagesPerSecond: Double? {
    guard let seconds, seconds > 0, steps > 0 else { return nil }
    return Double(steps * batchSize) / seconds
  }

  public var finalLoss: Double? { loss.last?.loss }

  /// Reads a run folder.
  ///
  /// - Parameters:
  ///   - probeFiles: report file names in the folder, one per label budget (a missing
  ///     file is skipped: that probe has not run).
  ///   - projection: read `projection.json` (when present).
  ///   - name: the experiment's name (default: config.yaml's `name`, which is absent
  ///     when the experiment file had none and was named after the file).
  public static func load(
    runDirectory: String, probeFiles: [String], projection: Bool = true, name: String? = nil
  ) throws -> RunRecord {
    func file(_ name: String) -> String { (runDirectory as NSString).appendingPathComponent(name) }
    let configPath = file("config.yaml")
    guard FileManager.default.fileExists(atPath: configPath) else {
      throw ConfigError("\(runDirectory): not a run folder (no config.yaml)")
    }
    let config = try ExperimentConfig.load(path: configPath)
    let backbone = try config.backbone.config()
    var rng = RandomGenerator(seed: 0)
    let parameters = try backbone.make(using: &rng).parameterCount

    var loss: [(step: Int, loss: Double)] = []
    var evaluations: [Evaluation] = []
    var lastRecord: StepRecord?
    if let data = readWholeFile(file("metrics.jsonl")) {
      let decoder = JSONDecoder()
      for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
        // A NaN rollback went back to an earlier step: the steps logged after it were
        // trained again, so the curve keeps only the second attempt.
        if let rollback = try? decoder.decode(RollbackEvent.self, from: Data(line.utf8)) {
          loss.removeAll { $0.step > rollback.restoredStep }
          evaluations.removeAll { $0.step > rollback.restoredStep }
          continue
        }
        guard let r = try? decoder.decode(StepRecord.self, from: Data(line.utf8)) else { continue }
        loss.append((r.step, r.loss))
        let evaluated = r.metrics.filter { Self.evaluationMetrics.contains($0.key) }
        if !evaluated.isEmpty { evaluations.append(Evaluation(step: r.step, seconds: r.elapsedSeconds, metrics: evaluated)) }
        lastRecord = r
      }
    }
    let record = PretrainingRecord.read(from: PretrainingRecord.path(in: runDirectory))
    let finished = record?.configHash == config.hash ? record : nil

    var probes: [ProbeReport] = []
    for name in probeFiles {
      guard let data = readWholeFile(file(name)) else { continue }
      do {
        probes.append(try JSONDecoder().decode(ProbeReport.self, from: data))
      } catch {
        throw ConfigError("\(file(name)): not a probe report (\(error))")
      }
    }
    let names = (try? FileManager.default.contentsOfDirectory(atPath: runDirectory)) ?? []
    let pictures = names.filter { $0.hasPrefix("reconstruction-") && $0.hasSuffix(".png") }.sorted().map(file)
    var projectionFile: ProjectionFile?
    if projection, let data = readWholeFile(ProjectionFile.path(in: runDirectory)) {
      projectionFile = try? JSONDecoder().decode(ProjectionFile.self, from: data)
    }
    var retrieval: RetrievalFile?
    if projection, let data = readWholeFile(RetrievalFile.path(in: runDirectory)),
      FileManager.default.fileExists(atPath: RetrievalFile.picturePath(in: runDirectory))
    {
      retrieval = try? JSONDecoder().decode(RetrievalFile.self, from: data)
    }
    return RunRecord(
      name: name ?? config.name, task: config.taskName, backbone: backbone, parameters: parameters,
      configHash: config.hash,
      runDirectory: runDirectory, batchSize: config.train.batchSize,
      steps: finished?.steps ?? lastRecord?.step ?? 0, seconds: finished?.seconds ?? lastRecord?.elapsedSeconds,
      loss: loss, evaluations: evaluations, probes: probes, pictures: pictures, projection: projectionFile,
      retrieval: retrieval)
  }

  /// Reads the fine-tuning reports of `section`'s budgets: `<run>/finetune-<budget>/` and
  /// the from-scratch folder `scratchDirectory` names (a missing report is skipped).
  mutating func loadFinetuning(
    _ section: CompareConfig.FinetuneSection, scratchDirectory: (LabelSubset.Budget) throws -> String
  ) throws {
    func read(_ folder: String) throws -> FinetuneReport? {
      let path = (folder as NSString).appendingPathComponent("finetune.json")
      guard let data = readWholeFile(path) else { return nil }
      do {
        return try JSONDecoder().decode(FinetuneReport.self, from: data)
      } catch {
        throw ConfigError("\(path): not a fine-tuning report (\(error))")
      }
    }
    finetunes = []
    scratch = []
    for budget in section.budgets {
      if let r = try read((runDirectory as NSString).appendingPathComponent(CompareConfig.FinetuneSection.folder(budget))) {
        finetunes.append(r)
      }
      if section.fromScratch, let r = try read(try scratchDirectory(budget)) { scratch.append(r) }
    }
  }

  /// The backbone in a few words: `vit-cpu (ViT 192 wide, 6 blocks, 32 px, 4 px patches)`.
  public var backboneSummary: String {
    switch backbone {
    case .vit(let c):
      return "\(c.name) (ViT \(c.width) wide, \(c.depth) blocks, \(c.imageSize) px, \(c.patchSize) px patches)"
    case .resnet(let c):
      let blocks = c.layers.map(String.init).joined(separator: "-")
      return "\(c.name) (ResNet \(blocks), width \(c.width), \(c.imageSize) px)"
    }
  }

  /// The probe of the largest label budget (the one the projection's depth comes from).
  public var largestProbe: ProbeReport? { probes.max { $0.labels.used < $1.labels.used } }
}
