import Foundation

// What the report shows of the evaluations made during pretraining (the `eval` section:
// OnlineEvaluation.swift): quality against training steps and minutes, not only at the
// end.
extension CompareReport {
  static let evaluationHeader = [
    "experiment", "evaluated at step", "minutes", "online probe top-1", "RankMe", "feature spread",
  ]

  /// One row per run that was evaluated during pretraining: its last evaluation.
  var evaluationRows: [[String]] {
    runs.compactMap { run in
      guard let last = run.evaluations.last else { return nil }
      return [
        run.name, "\(last.step)", String(format: "%.1f", last.seconds / 60), Self.percent(last.metrics["online_probe_top1"]),
        last.metrics["rankme"].map { String(format: "%.1f", $0) } ?? "",
        last.metrics["feature_spread"].map { String(format: "%.3f", $0) } ?? "",
      ]
    }
  }

  /// The section's charts: the online probe's held-out top-1 against steps and against
  /// minutes, RankMe and the feature spread against steps, each with one line per run;
  /// empty when no run was evaluated.
  func duringPretrainingHTML() -> String {
    let evaluated = runs.enumerated().filter { !$0.element.evaluations.isEmpty }
    guard !evaluated.isEmpty else { return "" }
    func series(_ metric: String, x: (RunRecord.Evaluation) -> Double) -> [SVG.Series] {
      evaluated.compactMap { i, run in
        let points = run.evaluations.compactMap { e in e.metrics[metric].map { (x: x(e), y: $0) } }
        return points.isEmpty ? nil : SVG.Series(name: run.name, points: points, color: SVG.color(i))
      }
    }
    let step = { (e: RunRecord.Evaluation) in Double(e.step) }
    let minutes = { (e: RunRecord.Evaluation) in e.seconds / 60 }
    var charts: [String] = []
    let online = series("online_probe_top1", x: step)
    if !online.isEmpty {
      charts.append(
        SVG.lineChart(
          title: "Online linear probe", series: online, xLabel: "training step", yLabel: "held-out top-1 (%)"))
      charts.append(
        SVG.lineChart(
          title: "Online linear probe against time", series: series("online_probe_top1", x: minutes),
          xLabel: "training minutes", yLabel: "held-out top-1 (%)"))
    }
    charts.append(
      SVG.lineChart(title: "RankMe", series: series("rankme", x: step), xLabel: "training step", yLabel: "effective rank"))
    charts.append(
      SVG.lineChart(
        title: "Feature spread", series: series("feature_spread", x: step), xLabel: "training step",
        yLabel: "std of normalized features × √width"))
    var s = "<h2>During pretraining</h2>\n"
    s += Self.htmlTable(Self.evaluationHeader, evaluationRows, numeric: [1, 2, 3, 4, 5])
    s += "<div class=\"charts\">\n" + charts.map { "<figure>\($0)</figure>\n" }.joined() + "</div>\n"
    s +=
      "<p class=\"note\">Measured while pretraining ran (the experiment's <code>eval</code> section). Online probe: a linear head (after a BatchNorm without affine parameters) trained with the backbone's optimizer on detached features of the labeled folder, tested on held-out images of it. RankMe (Garrido et al. 2023): the effective rank of the features of a fixed sample of the unlabeled images, at most the smaller of their number and the feature width; higher means more directions in use. Feature spread: the per-dimension standard deviation of those features after L2 normalization, times √width (about 1 when they fill the sphere; near 0 they collapse to a point, and the run warns on stderr).</p>\n"
    return s
  }
}
