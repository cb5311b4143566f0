import Foundation

extension ProbeReport {
  /// The printed summary: one row per model (linear and kNN accuracy, gains over the
  /// baselines in top-1 points), the validation scores per depth, settings and timings.
  public var table: String {
    func pad(_ s: String, _ n: Int, right: Bool = false) -> String {
      if s.count >= n { return s }
      let fill = String(repeating: " ", count: n - s.count)
      return right ? fill + s : s + fill
    }
    func pct(_ v: Double) -> String { String(format: "%.2f", v) }
    func signed(_ v: Double) -> String { String(format: "%+.2f", v) }
    func gain(_ g: ModelResult.Gain?) -> String {
      g.map { "\(signed($0.linear)) / \($0.knn.map(signed) ?? "—")" } ?? "—"
    }

    var lines: [String] = []
    lines.append("probe of \(weights.path) (\(weights.architecture), sha256 \(weights.sha256.prefix(12))…)")
    let labelText = labels.budget == "all" ? "all \(labels.used) labels" : "\(labels.used) labels (\(labels.budget))"
    lines.append(
      "train \(train.path): \(labelText) of \(train.images) images, \(train.classes.count) classes; test \(test.path): \(test.images) images"
    )
    let c = classifier
    let classifierText: String
    switch c.method {
    case .sgd, .lars:
      classifierText =
        "\(c.method.rawValue): BatchNorm (no affine) + Linear, \(c.epochs) epochs (≥ \(c.minimumSteps) steps), batch \(c.batchSize), base lr \(c.baseLearningRate), weight decay \(c.weightDecay ?? 0)"
    case .lbfgs:
      classifierText =
        "lbfgs: logistic regression on standardized features, ≤ \(c.iterations) iterations, λ \(c.weightDecay.map { "\($0)" } ?? "1/N")"
    case .ridge:
      classifierText = "ridge: one-hot regression on standardized features, α \(c.weightDecay ?? 1e-3)"
    }
    let knnText = knn.map { "kNN: k \($0.k), T \($0.temperature), cosine, exp(sim/T) votes" } ?? "kNN: off"
    lines.append("linear probe: \(classifierText); \(knnText)")
    lines.append("preprocessing: \(preprocessing.summary) (normalization: \(preprocessing.normalizationSource))")
    if layerSelection.validationImages > 0 {
      lines.append(
        "layer: \(layerSelection.candidatesSummary); best validation top-1 on \(layerSelection.validationImages) held-out labels (\(Int(layerSelection.validationFraction * 100))%, class-balanced, seed \(seed)), then retrained on all \(labels.used)"
      )
    } else if let note = layerSelection.note {
      lines.append("layer: \(note)")
    } else {
      lines.append("layer: \(layerSelection.mode)")
    }
    lines.append("")
    // Concatenated depths ("layer1+layer2+layer3+layer4") widen the layer column.
    let layerWidth = Swift.max(10, (results.map(\.layer.count).max() ?? 0) + 2)
    let header =
      pad("model", 13) + pad("layer", layerWidth) + pad("dim", 6, right: true) + pad("linear top-1", 14, right: true)
      + pad("top-5", 8, right: true) + pad("kNN top-1", 11, right: true) + pad("top-5", 8, right: true) + "   "
      + pad("Δ random init (lin / kNN)", 28) + "Δ raw pixels (lin / kNN)"
    lines.append(header)
    for r in results {
      lines.append(
        pad(r.model.label, 13) + pad(r.layer, layerWidth) + pad("\(r.featureDimension)", 6, right: true)
          + pad(pct(r.linear.top1), 14, right: true) + pad(pct(r.linear.top5), 8, right: true)
          + pad(r.knn.map { pct($0.top1) } ?? "—", 11, right: true) + pad(r.knn.map { pct($0.top5) } ?? "—", 8, right: true)
          + "   "
          + pad(r.model == .randomInit ? "" : gain(r.gainOverRandomInit), 28)
          + (r.model == .rawPixels ? "" : gain(r.gainOverRawPixels)))
    }
    let scored = results.filter { !$0.layerScores.isEmpty }
    if !scored.isEmpty {
      lines.append("")
      lines.append("validation top-1 by depth:")
      for r in scored {
        lines.append(
          "  " + pad(r.model.label, 12)
            + r.layerScores.map { "\($0.layer) \(pct($0.validationTop1))" }.joined(separator: ", "))
      }
    }
    lines.append("")
    // Fits of different models run side by side, so their times overlap; the total is
    // wall-clock time.
    var timing = String(format: "time: %.1f s total (decoding images %.1f s", seconds.total, seconds.images)
    for r in results {
      timing += String(
        format: "; %@: features %.1f s%@, layer choice %.1f s, linear %.1f s, kNN %.1f s", r.model.label,
        r.seconds.features,
        r.seconds.featuresCached ? " (cached)" : "", r.seconds.layerSelection, r.seconds.linear, r.seconds.knn)
    }
    lines.append(timing + ")")
    return lines.joined(separator: "\n")
  }
}
