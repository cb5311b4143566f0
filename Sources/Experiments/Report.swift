import Autograd
import Evaluation
import Foundation
import NN
import Support
import Vision

/// The comparison's outputs, from the run records: `results.csv` (every probe result, for
/// machines), `report.md` (the tables) and `report.html` (one self-contained page: the
/// tables, loss curves, probe accuracy bars, MAE reconstruction grids and feature
/// projections; SVG inline, pictures as data URIs, no script and no external file).
public struct CompareReport: Sendable {
  public var name: String
  public var runs: [RunRecord]
  /// The command that produced the report (shown at the bottom).
  public var commandLine: String
  public var date: String

  public init(name: String, runs: [RunRecord], commandLine: String = "", date: Date = Date()) {
    self.name = name
    self.runs = runs
    self.commandLine = commandLine
    self.date = ISO8601DateFormatter().string(from: date)
  }

  /// Writes results.csv, report.md and report.html into `directory`; returns their paths.
  @discardableResult
  public func write(to directory: String) throws -> [String] {
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    var paths: [String] = []
    for (name, text) in [("results.csv", csv()), ("report.md", markdown()), ("report.html", try html())] {
      let path = (directory as NSString).appendingPathComponent(name)
      try writeAtomically(Array(text.utf8), to: path)
      paths.append(path)
    }
    return paths
  }

  // MARK: Shared pieces

  /// The label budgets, in the order the runs list them ("all", "100 per class", …):
  /// the probes' budgets, then any budget only fine-tuned.
  var budgets: [String] {
    var seen: [String] = []
    for run in runs {
      for p in run.probes where !seen.contains(p.labels.budget) { seen.append(p.labels.budget) }
    }
    for run in runs {
      for f in run.finetunes + run.scratch where !seen.contains(f.labels) { seen.append(f.labels) }
    }
    return seen
  }

  /// Whether any run was fine-tuned (the tables then have fine-tuning columns).
  var hasFinetuning: Bool { runs.contains { !$0.finetunes.isEmpty || !$0.scratch.isEmpty } }

  /// The from-scratch baselines at one budget, each once (runs of one architecture share
  /// one), with the runs' names.
  func scratchBaselines(budget: String) -> [(label: String, report: FinetuneReport)] {
    var found: [FinetuneReport] = []
    for run in runs {
      for r in run.scratch where r.labels == budget && !found.contains(where: { $0.classifier == r.classifier }) {
        found.append(r)
      }
    }
    return found.map { (found.count == 1 ? "from scratch" : "from scratch (\($0.backbone.name))", $0) }
  }

  /// "84.02 (420 steps)".
  static func finetuneText(_ r: FinetuneReport?) -> String {
    r.map { "\(percent($0.top1)) (\(grouped($0.steps)) steps)" } ?? "—"
  }

  /// A baseline's results at one budget: one entry when every run's probe measured the
  /// same numbers (same architecture and preprocessing: the usual case), else one per run.
  func baselines(_ model: ModelResult.Model, budget: String) -> [(label: String, result: ModelResult, used: Int)] {
    var found: [(run: String, result: ModelResult, used: Int)] = []
    for run in runs {
      guard let probe = run.probes.first(where: { $0.labels.budget == budget }), let r = probe.result(model) else {
        continue
      }
      found.append((run.name, r, probe.labels.used))
    }
    guard let first = found.first else { return [] }
    let same = found.allSatisfy {
      $0.result.linear == first.result.linear && $0.result.knn == first.result.knn && $0.used == first.used
    }
    if same { return [(model.label, first.result, first.used)] }
    return found.map { ("\(model.label) (\($0.run))", $0.result, $0.used) }
  }

  /// Arguments joined into a command a POSIX shell reads back the same (quoted where
  /// needed: `--set 'compare.probe.labels_per_class=[10]'`).
  public static func shellCommand(_ arguments: [String]) -> String {
    let plain = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./=:,+@%")
    return arguments.map { a in
      !a.isEmpty && a.allSatisfy(plain.contains) ? a : "'" + a.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }.joined(separator: " ")
  }

  static func percent(_ v: Double?) -> String { v.map { String(format: "%.2f", $0) } ?? "" }
  static func signed(_ v: Double?) -> String { v.map { String(format: "%+.2f", $0) } ?? "" }

  /// `5m 12s`, `1h 03m`, `42.0 s`.
  static func duration(_ s: Double?) -> String {
    guard let s, s.isFinite else { return "—" }
    if s < 60 { return String(format: "%.1f s", s) }
    let t = Int(saturating: s.rounded())
    return t >= 3600
      ? String(format: "%ldh %02ldm", t / 3600, t % 3600 / 60) : String(format: "%ldm %02lds", t / 60, t % 60)
  }

  static func grouped(_ n: Int) -> String {
    let digits = String(n)
    var out = ""
    for (i, ch) in digits.reversed().enumerated() {
      if i > 0 && i % 3 == 0 { out.append(",") }
      out.append(ch)
    }
    return String(out.reversed())
  }

  /// "100 per class (1,000 labels)", "all (60,000 labels)".
  static func labelText(_ probe: ProbeReport) -> String {
    "\(probe.labels.budget) (\(grouped(probe.labels.used)) labels)"
  }

  /// One line about how the probe was run (from the first probe report).
  var protocolText: String {
    guard let p = runs.lazy.flatMap(\.probes).first else { return "No probe has run yet." }
    let c = p.classifier
    let classifier: String
    switch c.method {
    case .sgd, .lars:
      classifier =
        "\(c.method.rawValue) linear classifier (BatchNorm without affine + Linear, \(c.epochs) epochs, batch \(c.batchSize), base lr \(c.baseLearningRate))"
    case .lbfgs: classifier = "logistic regression by L-BFGS (≤ \(c.iterations) iterations)"
    case .ridge: classifier = "ridge regression onto one-hot targets"
    }
    let knn = p.knn.map { "kNN: k = \($0.k), T = \($0.temperature), cosine similarity, weighted votes" } ?? "kNN: off"
    let depth =
      p.layerSelection.mode == .all
      ? "the features chosen among \(p.layerSelection.candidatesSummary) on a class-balanced \(Int(p.layerSelection.validationFraction * 100))% validation split of the labels"
      : "depth \(p.layerSelection.mode)"
    return
      "Frozen features of \(p.train.path) (\(Self.grouped(p.train.images)) images, \(p.train.classes.count) classes) and \(p.test.path) (\(Self.grouped(p.test.images)) test images), \(p.preprocessing.summary), at \(depth); \(classifier); \(knn); seed \(p.seed)."
  }

  // MARK: CSV

  public static let csvColumns = [
    "experiment", "task", "model", "backbone", "parameters", "config_hash", "pretrain_steps", "pretrain_seconds",
    "pretrain_images_per_second", "final_loss", "label_budget", "labels_used", "layer", "linear_top1", "linear_top5",
    "knn_top1", "knn_top5", "gain_linear_over_random_init", "gain_knn_over_random_init", "gain_linear_over_raw_pixels",
    "gain_knn_over_raw_pixels", "finetune_top1", "finetune_top5", "finetune_steps", "run_directory",
  ]

  /// One row per run, label budget and model (the backbone and each baseline); the
  /// pretraining columns are empty on baseline rows, accuracies are percentages, gains
  /// are top-1 differences in points. The fine-tuning columns hold, on the backbone's
  /// row, the fine-tuned backbone, and on the random-init row the same recipe trained
  /// from scratch; a budget only fine-tuned has those two rows with the probe's columns
  /// empty.
  public func csv() -> String {
    var lines = [Self.csvColumns.joined(separator: ",")]
    for run in runs {
      for budget in budgets {
        let probe = run.probes.first { $0.labels.budget == budget }
        let tuned = run.finetunes.first { $0.labels == budget }
        let scratch = run.scratch.first { $0.labels == budget }
        var models: [ModelResult.Model] = probe?.results.map(\.model) ?? []
        if probe == nil {
          if tuned != nil { models.append(.backbone) }
          if scratch != nil { models.append(.randomInit) }
        }
        for model in models {
          let r = probe?.result(model)
          let f = model == .backbone ? tuned : model == .randomInit ? scratch : nil
          let isBackbone = model == .backbone
          let fields: [String] = [
            run.name, run.task, model.rawValue, run.backbone.name,
            model == .rawPixels ? "" : String(run.parameters), run.configHash,
            isBackbone ? String(run.steps) : "", isBackbone ? run.seconds.map { String(format: "%.1f", $0) } ?? "" : "",
            isBackbone ? run.imagesPerSecond.map { String(format: "%.1f", $0) } ?? "" : "",
            isBackbone ? run.finalLoss.map { String(format: "%.5f", $0) } ?? "" : "",
            budget, (probe?.labels.used ?? f?.labeledImages).map(String.init) ?? "", r?.layer ?? f?.depth ?? "",
            Self.percent(r?.linear.top1), Self.percent(r?.linear.top5), Self.percent(r?.knn?.top1),
            Self.percent(r?.knn?.top5),
            Self.signed(r?.gainOverRandomInit?.linear), Self.signed(r?.gainOverRandomInit?.knn ?? nil),
            Self.signed(r?.gainOverRawPixels?.linear), Self.signed(r?.gainOverRawPixels?.knn ?? nil),
            Self.percent(f?.top1), Self.percent(f?.top5), f.map { String($0.steps) } ?? "", run.runDirectory,
          ]
          lines.append(fields.map(csvField).joined(separator: ","))
        }
      }
    }
    return lines.joined(separator: "\n") + "\n"
  }

  // MARK: Tables (shared by Markdown and HTML)

  static let resultHeader = [
    "experiment", "task", "backbone", "parameters", "pretraining", "images/s", "labels", "linear top-1", "linear top-5",
    "kNN top-1", "Δ random init (linear / kNN)", "Δ raw pixels (linear / kNN)",
  ]
  static let finetuneColumns = ["fine-tune top-1", "from scratch top-1", "Δ from scratch"]

  /// The main table's columns: the probe's, then fine-tuning's when any run has it.
  var resultColumns: [String] { Self.resultHeader + (hasFinetuning ? Self.finetuneColumns : []) }

  /// Rows of the main table: one per run and label budget (a run without probes gets
  /// one row with its pretraining columns).
  var resultRows: [[String]] {
    var rows: [[String]] = []
    let unevaluated = { (run: RunRecord) in run.probes.isEmpty && run.finetunes.isEmpty }
    for budget in budgets + (runs.contains(where: unevaluated) ? [""] : []) {
      for run in runs {
        let probe = run.probes.first { $0.labels.budget == budget }
        let tuned = run.finetunes.first { $0.labels == budget }
        if budget.isEmpty ? !unevaluated(run) : probe == nil && tuned == nil { continue }
        let r = probe?.backbone
        func gain(_ g: ModelResult.Gain?) -> String {
          guard let g else { return "—" }
          return Self.signed(g.linear) + " / " + (g.knn.map { Self.signed($0) } ?? "—")
        }
        let labels: String =
          probe.map(Self.labelText) ?? tuned.map { "\($0.labels) (\(Self.grouped($0.labeledImages)) labels)" }
          ?? "not probed"
        let finetuning: [String] = hasFinetuning ? finetuneCells(run: run, budget: budget) : []
        let cells: [String] = [
          run.name, run.task, run.backboneSummary, Self.grouped(run.parameters),
          "\(Self.duration(run.seconds)) (\(Self.grouped(run.steps)) steps)",
          run.imagesPerSecond.map { String(format: "%.0f", $0) } ?? "—", labels,
          r.map { Self.percent($0.linear.top1) } ?? "—", r.map { Self.percent($0.linear.top5) } ?? "—",
          r.map { $0.knn.map { Self.percent($0.top1) } ?? "—" } ?? "—",
          gain(r?.gainOverRandomInit), gain(r?.gainOverRawPixels),
        ]
        rows.append(cells + finetuning)
      }
    }
    return rows
  }

  /// Fine-tuned, from scratch and their difference, for the main table.
  func finetuneCells(run: RunRecord, budget: String) -> [String] {
    let tuned = run.finetunes.first { $0.labels == budget }
    let scratch = run.scratch.first { $0.labels == budget }
    let gain = tuned.flatMap { t in scratch.map { Self.signed(t.top1 - $0.top1) } } ?? "—"
    return [Self.finetuneText(tuned), Self.finetuneText(scratch), gain]
  }

  static let finetuneHeader = [
    "experiment", "labels", "start", "steps", "recipe", "top-1", "top-5", "last weights top-1", "time",
  ]

  /// One row per fine-tuning run: each run's, then each from-scratch baseline once.
  var finetuneRows: [[String]] {
    var rows: [[String]] = []
    func row(_ name: String, _ r: FinetuneReport) -> [String] {
      [
        name, "\(r.labels) (\(Self.grouped(r.labeledImages)) labels)",
        r.initialization == "pretrained" ? "pretrained" : r.initialization,
        "\(Self.grouped(r.steps)) (\(r.recipe.epochs) epochs of \(r.stepsPerEpoch))", Finetuning.summary(r.recipe),
        Self.percent(r.top1), Self.percent(r.top5), Self.percent(r.lastWeights.top1), Self.duration(r.trainingSeconds),
      ]
    }
    for budget in budgets {
      for run in runs {
        if let r = run.finetunes.first(where: { $0.labels == budget }) { rows.append(row(run.name, r)) }
      }
      for b in scratchBaselines(budget: budget) { rows.append(row("\(b.label): \(b.report.backbone.name)", b.report)) }
    }
    return rows
  }

  /// The fine-tuning runs, as Markdown (nil when none ran).
  public var finetuneTable: String? {
    finetuneRows.isEmpty ? nil : Self.markdownTable(Self.finetuneHeader, finetuneRows)
  }

  static let baselineHeader = ["labels", "model", "layer", "linear top-1", "linear top-5", "kNN top-1"]

  var baselineRows: [[String]] {
    var rows: [[String]] = []
    for budget in budgets {
      for model in [ModelResult.Model.randomInit, .rawPixels] {
        for b in baselines(model, budget: budget) {
          rows.append([
            "\(budget) (\(Self.grouped(b.used)) labels)", b.label, b.result.layer, Self.percent(b.result.linear.top1),
            Self.percent(b.result.linear.top5), b.result.knn.map { Self.percent($0.top1) } ?? "—",
          ])
        }
      }
    }
    return rows
  }

  static let notes = [
    "pretraining: training time over all sessions (a resumed run counts each session once) and the steps trained.",
    "images/s: unlabeled images consumed per second of pretraining (steps × batch size / time); a SimCLR or relative-location image makes two views.",
    "Accuracies are percentages on the test folder; Δ columns are top-1 differences in points against the same probe of the baseline.",
    "random init: the same architecture at a seeded random initialization; raw pixels: the preprocessed image, flattened.",
  ]

  // MARK: Markdown

  static func markdownTable(_ header: [String], _ rows: [[String]]) -> String {
    func row(_ cells: [String]) -> String {
      "| " + cells.map { $0.replacingOccurrences(of: "|", with: "\\|") }.joined(separator: " | ") + " |"
    }
    return ([row(header), row(header.map { _ in "---" })] + rows.map(row)).joined(separator: "\n")
  }

  /// The main table (one row per run and label budget), as Markdown.
  public var resultsTable: String { Self.markdownTable(resultColumns, resultRows) }

  /// The baselines' results per label budget, as Markdown (nil without baselines).
  public var baselinesTable: String? {
    baselineRows.isEmpty ? nil : Self.markdownTable(Self.baselineHeader, baselineRows)
  }

  public func markdown() -> String {
    var s = "# Comparison: \(name)\n\n"
    s += "\(runs.count) experiment(s), written \(date).\n\n"
    s += "## Results\n\n" + resultsTable + "\n\n"
    if let baselinesTable { s += "## Baselines\n\n" + baselinesTable + "\n\n" }
    if let finetuneTable { s += "## Fine-tuning\n\n" + finetuneTable + "\n\n" }
    if !evaluationRows.isEmpty {
      s += "## During pretraining\n\n" + Self.markdownTable(Self.evaluationHeader, evaluationRows) + "\n\n"
    }
    s += "## Runs\n\n"
    for run in runs {
      s +=
        "- **\(run.name)** (\(run.task)): `\(run.runDirectory)`, config hash `\(run.configHash)`, batch \(run.batchSize)"
      if let loss = run.finalLoss { s += String(format: ", final loss %.4f", loss) }
      s += "\n"
    }
    s += "\n## How these numbers were measured\n\n" + protocolText + "\n\n"
    s += Self.notes.map { "- \($0)" }.joined(separator: "\n") + "\n"
    if !commandLine.isEmpty { s += "\nCommand: `\(commandLine)`\n" }
    return s
  }

  // MARK: HTML

  static let style = """
    body { font-family: Helvetica, Arial, sans-serif; margin: 24px auto; max-width: 1180px; color: #222; padding: 0 16px; }
    h1 { font-size: 24px; margin-bottom: 4px; }
    h2 { font-size: 18px; margin-top: 32px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
    p.meta, p.note, figcaption { color: #555; font-size: 13px; }
    table { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
    th, td { border: 1px solid #d6d6d6; padding: 4px 8px; text-align: left; vertical-align: top; }
    th { background: #f3f3f3; }
    td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
    .charts { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
    figure { margin: 0; }
    .charts figure { flex: 0 0 auto; max-width: 560px; }
    img.grid { image-rendering: pixelated; border: 1px solid #ddd; }
    code { background: #f5f5f5; padding: 0 3px; }
    ul.notes { color: #555; font-size: 13px; }
    """

  /// An HTML table; the columns in `numeric` are right-aligned.
  static func htmlTable(_ header: [String], _ rows: [[String]], numeric: Set<Int>) -> String {
    var t = "<table>\n<tr>" + header.map { "<th>\(SVG.escape($0))</th>" }.joined() + "</tr>\n"
    for row in rows {
      t += "<tr>"
      for (i, cell) in row.enumerated() {
        t += numeric.contains(i) ? "<td class=\"num\">\(SVG.escape(cell))</td>" : "<td>\(SVG.escape(cell))</td>"
      }
      t += "</tr>\n"
    }
    return t + "</table>\n"
  }

  /// The report page. Pictures are read from the run folders and embedded.
  public func html() throws -> String {
    func esc(_ s: String) -> String { SVG.escape(s) }
    func table(_ header: [String], _ rows: [[String]], numeric: Set<Int>) -> String {
      Self.htmlTable(header, rows, numeric: numeric)
    }

    var s = """
      <!DOCTYPE html>
      <html lang="en">
      <head>
      <meta charset="utf-8"/>
      <meta name="viewport" content="width=device-width, initial-scale=1"/>
      <title>Pretext comparison: \(esc(name))</title>
      <style>
      \(Self.style)
      </style>
      </head>
      <body>
      <h1>Comparison: \(esc(name))</h1>
      <p class="meta">\(runs.count) experiment(s) · written \(esc(date))</p>

      """
    s += "<h2>Results</h2>\n" + table(resultColumns, resultRows, numeric: [3, 5, 7, 8, 9, 10, 11, 12, 13, 14])
    if !baselineRows.isEmpty {
      s += "<h2>Baselines</h2>\n" + table(Self.baselineHeader, baselineRows, numeric: [3, 4, 5])
    }
    if !finetuneRows.isEmpty {
      s += "<h2>Fine-tuning</h2>\n" + table(Self.finetuneHeader, finetuneRows, numeric: [3, 5, 6, 7, 8])
      s +=
        "<p class=\"note\">Every layer and a linear head trained on the labeled images; from scratch: the same recipe and steps from random init, the supervised baseline on the same labels. top-1/top-5: the classifier kept (the weights' moving average when the recipe keeps one); last weights: the final step's.</p>\n"
    }

    // Probe accuracy: one chart per label budget.
    if !budgets.isEmpty {
      s += "<h2>Probe accuracy</h2>\n<div class=\"charts\">\n"
      for budget in budgets {
        s += "<figure>" + accuracyChart(budget: budget) + "</figure>\n"
      }
      s +=
        "</div>\n<p class=\"note\">Test top-1 accuracy (%) of each backbone and of the baselines at each label budget\(hasFinetuning ? "; fine-tune: the whole network trained on the labels (from scratch: the same recipe from random init)" : "").</p>\n"
    }

    s += duringPretrainingHTML()

    // Loss curves, one per run (each task's loss has its own scale).
    s += "<h2>Pretraining loss</h2>\n<div class=\"charts\">\n"
    for (i, run) in runs.enumerated() {
      let series = SVG.Series(
        name: run.name, points: run.loss.map { (Double($0.step), $0.loss) }, color: SVG.color(i))
      s += "<figure>"
      s += SVG.lineChart(
        title: run.name == run.task ? run.name : "\(run.name) (\(run.task))", series: [series], xLabel: "training step",
        yLabel: "\(run.task) training loss")
      s += "</figure>\n"
    }
    s += "</div>\n"

    // Projections of the test features.
    let projected = runs.filter { $0.projection != nil }
    if !projected.isEmpty {
      s += "<h2>Test features in two dimensions</h2>\n<div class=\"charts\">\n"
      for run in projected {
        let p = run.projection!
        let axis = { (i: Int) -> String in
          let share =
            i < p.explainedVariance.count ? String(format: " (%.1f%% of variance)", 100 * p.explainedVariance[i]) : ""
          return "principal component \(i + 1)\(share)"
        }
        func figure(_ title: String, _ points: [ProjectionFile.Point], x: String, y: String, caption: String) {
          s += "<figure>"
          s += SVG.scatter(
            title: title, points: points.map { ($0.x, $0.y, $0.label) }, classes: p.classes, xLabel: x, yLabel: y)
          s += "<figcaption>\(caption)</figcaption></figure>\n"
        }
        figure(
          "\(run.name): \(p.layer) features [\(p.featureDimension)], PCA", p.points, x: axis(0), y: axis(1),
          caption:
            "\(esc(run.name)): \(p.points.count) of \(SVG.escape(Self.grouped(p.images))) test images of \(esc(p.folder)), features at \(esc(p.layer)) (the depth the linear probe chose with the most labels), each dimension standardized (as the linear probe's BatchNorm does), projected on the first two principal components of all \(Self.grouped(p.images)).")
        if let map = p.tsne {
          figure(
            "\(run.name): \(p.layer) features, t-SNE", map, x: "t-SNE 1", y: "t-SNE 2",
            caption:
              "\(esc(run.name)): the same \(map.count) images mapped by t-SNE (perplexity 30, exact, started from the PCA), which keeps neighbourhoods rather than variance, so clusters the PCA overlaps come apart; distances between clusters mean little.")
        }
      }
      s += "</div>\n"
    }

    // Nearest neighbours in feature space, one grid per run.
    let retrieved = runs.filter { $0.retrieval != nil }
    if !retrieved.isEmpty {
      s += "<h2>Nearest neighbours in feature space</h2>\n<div class=\"charts\">\n"
      for run in retrieved {
        let r = run.retrieval!
        s += try pictureFigure(
          path: RetrievalFile.picturePath(in: run.runDirectory), alt: "\(run.name) nearest neighbours",
          caption: String(
            format: "%@: %ld test images (left) and their nearest neighbours among all %@ by cosine similarity at %@; %.0f%% share the query's class",
            run.name, r.queries.count, Self.grouped(r.images), r.layer, 100 * r.precision))
      }
      s += "</div>\n"
      s +=
        "<p class=\"note\">No label is used to find the neighbours; the frames show them: green, the neighbour is of the query's class; red, of another.</p>\n"
    }

    // The task's pictures (MAE reconstructions): the first and the last.
    let pictured = runs.filter { !$0.pictures.isEmpty }
    if !pictured.isEmpty {
      s += "<h2>MAE reconstructions</h2>\n<div class=\"charts\">\n"
      for run in pictured {
        let shown = run.pictures.count > 1 ? [run.pictures.first!, run.pictures.last!] : run.pictures
        for path in shown {
          s += try pictureFigure(run: run, path: path)
        }
      }
      s += "</div>\n"
      s +=
        "<p class=\"note\">Each row is one training image: original | masked input (hidden patches blanked) | reconstruction (visible patches pasted back), at the step named.</p>\n"
    }

    s += "<h2>Runs</h2>\n<ul>\n"
    for run in runs {
      s +=
        "<li><b>\(esc(run.name))</b> (\(esc(run.task))): <code>\(esc(run.runDirectory))</code>, config hash <code>\(esc(run.configHash))</code>, batch \(run.batchSize)\(run.finalLoss.map { String(format: ", final loss %.4f", $0) } ?? "")</li>\n"
    }
    s +=
      "</ul>\n<h2>How these numbers were measured</h2>\n<p class=\"note\">\(esc(protocolText))</p>\n<ul class=\"notes\">\n"
    s += Self.notes.map { "<li>\(esc($0))</li>\n" }.joined()
    s += "</ul>\n"
    if !commandLine.isEmpty { s += "<p class=\"note\">Command: <code>\(esc(commandLine))</code></p>\n" }
    return s + "</body>\n</html>\n"
  }

  /// Bars of linear, kNN and fine-tuned top-1 for every run and baseline at one label
  /// budget (the from-scratch baseline is the random init's fine-tuning bar's group).
  func accuracyChart(budget: String) -> String {
    var groups: [SVG.BarGroup] = []
    var used: Int?
    for run in runs {
      let probe = run.probes.first { $0.labels.budget == budget }
      let tuned = run.finetunes.first { $0.labels == budget }
      guard probe != nil || tuned != nil else { continue }
      used = used ?? probe?.labels.used ?? tuned?.labeledImages
      groups.append(
        .init(label: run.name, values: [probe?.backbone.linear.top1, probe?.backbone.knn?.top1, tuned?.top1]))
    }
    for model in [ModelResult.Model.randomInit, .rawPixels] {
      for b in baselines(model, budget: budget) {
        groups.append(.init(label: b.label, values: [b.result.linear.top1, b.result.knn?.top1, nil]))
      }
    }
    for b in scratchBaselines(budget: budget) { groups.append(.init(label: b.label, values: [nil, nil, b.report.top1])) }
    let all = [
      (name: "linear top-1", color: "#4e79a7"), (name: "kNN top-1", color: "#f28e2b"),
      (name: "fine-tune top-1", color: "#59a14f"),
    ]
    // Only the series some group has a value for.
    let kept = all.indices.filter { k in groups.contains { $0.values[k] != nil } }
    let labels = used.map { " (\(Self.grouped($0)) labels)" } ?? ""
    return SVG.barChart(
      title: "Labels: \(budget)\(labels)",
      groups: groups.map { g in .init(label: g.label, values: kept.map { g.values[$0] }) },
      series: kept.map { all[$0] }, yLabel: "test accuracy (%)",
      domain: (Self.accuracyFloor(groups.flatMap { $0.values.compactMap { $0 } }), 100))
  }

  /// Where the accuracy axis starts: 10 points (rounded down to a multiple of 10) below
  /// the lowest bar, so that differences of a point or two between bars near 80% stay
  /// visible; 0 when a bar is below 10%.
  public static func accuracyFloor(_ values: [Double]) -> Double {
    guard let lowest = values.min(), lowest.isFinite else { return 0 }
    return max(0, ((lowest - 10) / 10).rounded(.down) * 10)
  }

  /// A task picture as an embedded PNG, shown at a whole multiple of its size.
  func pictureFigure(run: RunRecord, path: String) throws -> String {
    let step = (path as NSString).lastPathComponent.filter(\.isNumber).drop { $0 == "0" }
    return try pictureFigure(
      path: path, alt: "\(run.name) reconstructions", caption: "\(run.name), step \(step.isEmpty ? "0" : String(step))")
  }

  /// A PNG file embedded as a data URI, enlarged (pixelated) up to about 360 px wide.
  func pictureFigure(path: String, alt: String, caption: String) throws -> String {
    let data: [UInt8]
    do {
      data = try readFileBytes(path)
    } catch {
      throw ConfigError("\(path): \(error)")
    }
    let header = try PNG.header(of: data, path: path)
    let scale = max(1, min(4, 360 / max(1, header.width)))
    return """
      <figure><img class="grid" alt="\(SVG.escape(alt))" width="\(header.width * scale)" \
      height="\(header.height * scale)" src="data:image/png;base64,\(Data(data).base64EncodedString())"/>\
      <figcaption>\(SVG.escape(caption))</figcaption></figure>

      """
  }
}
