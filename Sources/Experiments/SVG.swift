import Foundation

/// Inline SVG charts for the comparison report: line charts (loss curves), grouped bar
/// charts (probe accuracy) and scatter plots (feature projections). Each returns one
/// self-contained `<svg>` element (no scripts, no external fonts or files), written as
/// well-formed XML so it can sit inside HTML or stand alone.
///
/// Coordinates: the chart's pixel box is `width × height`; the plot area sits inside
/// margins (`Frame`), data map onto it linearly, y growing upwards.
public enum SVG {
  /// Ten distinct colours (Tableau 10), then generated hues.
  public static func color(_ i: Int) -> String {
    let palette = [
      "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
    ]
    if i < palette.count { return palette[i] }
    return "hsl(\((i * 137) % 360), 55%, 50%)"
  }

  /// Text for XML content and attribute values.
  public static func escape(_ s: String) -> String {
    var out = ""
    out.reserveCapacity(s.count)
    for ch in s {
      switch ch {
      case "&": out += "&amp;"
      case "<": out += "&lt;"
      case ">": out += "&gt;"
      case "\"": out += "&quot;"
      case "'": out += "&#39;"
      default: out.append(ch)
      }
    }
    return out
  }

  /// A coordinate with one decimal (enough at screen resolution, and compact).
  static func n(_ v: Double) -> String {
    let r = (v * 10).rounded() / 10
    return r == r.rounded() ? String(Int(r)) : String(format: "%.1f", r)
  }

  // MARK: Scales and axes

  /// "Nice" tick values (1, 2 or 5 × 10^k apart) covering [lo, hi], about `count` of them.
  public static func ticks(_ lo: Double, _ hi: Double, count: Int = 5) -> [Double] {
    guard hi > lo, lo.isFinite, hi.isFinite else { return [lo] }
    let raw = (hi - lo) / Double(max(1, count))
    let magnitude = pow(10, floor(log10(raw)))
    let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? 10 * magnitude
    // Multiples of the step, rounded to the step's decimals (3 × 0.2 is 0.6, not 0.6000000000000001).
    let scale = pow(10, max(0, -floor(log10(step))) + 1)
    let first = Int((lo / step - 1e-9).rounded(.up)), last = Int((hi / step + 1e-9).rounded(.down))
    guard first <= last else { return [lo] }
    return (first...last).map { k in ((Double(k) * step) * scale).rounded() / scale }
  }

  /// A tick label with as many decimals as the tick spacing needs.
  static func tickLabel(_ v: Double, step: Double) -> String {
    let decimals = step >= 1 ? 0 : min(6, Int(-floor(log10(step))))
    if decimals == 0 && abs(v) < 0x1p52 { return String(Int(v.rounded())) }
    return String(format: "%.\(decimals)f", v)
  }

  /// Extends [lo, hi] to nice tick values (and makes it non-empty).
  static func niceDomain(_ lo: Double, _ hi: Double) -> (Double, Double) {
    var (a, b) = (lo, hi)
    if !(b > a) {
      let pad = max(abs(a) * 0.05, 1e-6)
      (a, b) = (a - pad, b + pad)
    }
    let t = ticks(a, b)
    let step = t.count > 1 ? t[1] - t[0] : (b - a)
    return ((a / step).rounded(.down) * step, (b / step).rounded(.up) * step)
  }

  /// The plot area inside a chart and the linear maps from data to pixels.
  struct Frame {
    let width: Double, height: Double
    let left: Double, right: Double, top: Double, bottom: Double
    let x: (lo: Double, hi: Double)
    let y: (lo: Double, hi: Double)

    var plotWidth: Double { width - left - right }
    var plotHeight: Double { height - top - bottom }
    func px(_ v: Double) -> Double { left + (v - x.lo) / (x.hi - x.lo) * plotWidth }
    func py(_ v: Double) -> Double { top + plotHeight - (v - y.lo) / (y.hi - y.lo) * plotHeight }
  }

  static func open(width: Double, height: Double, title: String) -> String {
    """
    <svg xmlns="http://www.w3.org/2000/svg" width="\(n(width))" height="\(n(height))" \
    viewBox="0 0 \(n(width)) \(n(height))" role="img" aria-label="\(escape(title))" \
    font-family="Helvetica, Arial, sans-serif" font-size="11"><title>\(escape(title))</title>
    <rect x="0" y="0" width="\(n(width))" height="\(n(height))" fill="#ffffff"/>

    """
  }

  static func text(
    _ s: String, x: Double, y: Double, anchor: String = "start", size: Double? = nil, weight: String? = nil,
    rotate: Bool = false, fill: String = "#222"
  ) -> String {
    var attrs = "x=\"\(n(x))\" y=\"\(n(y))\" text-anchor=\"\(anchor)\" fill=\"\(fill)\""
    if let size { attrs += " font-size=\"\(n(size))\"" }
    if let weight { attrs += " font-weight=\"\(weight)\"" }
    if rotate { attrs += " transform=\"rotate(-90 \(n(x)) \(n(y)))\"" }
    return "<text \(attrs)>\(escape(s))</text>\n"
  }

  static func line(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, stroke: String, width: Double = 1) -> String
  {
    "<line x1=\"\(n(x1))\" y1=\"\(n(y1))\" x2=\"\(n(x2))\" y2=\"\(n(y2))\" stroke=\"\(stroke)\" stroke-width=\"\(n(width))\"/>\n"
  }

  /// Title, grid lines, ticks with labels, axis lines and axis titles.
  static func axes(
    _ f: Frame, title: String, xLabel: String, yLabel: String, xTicks: [Double]?, yTicks: [Double]
  ) -> String {
    var s = text(title, x: f.left, y: 16, size: 12, weight: "bold")
    let yStep = yTicks.count > 1 ? yTicks[1] - yTicks[0] : 1
    for t in yTicks {
      let y = f.py(t)
      s += line(f.left, y, f.left + f.plotWidth, y, stroke: "#e6e6e6")
      s += text(tickLabel(t, step: yStep), x: f.left - 6, y: y + 4, anchor: "end", fill: "#444")
    }
    if let xTicks {
      let xStep = xTicks.count > 1 ? xTicks[1] - xTicks[0] : 1
      for t in xTicks {
        let x = f.px(t)
        s += line(x, f.top + f.plotHeight, x, f.top + f.plotHeight + 4, stroke: "#444")
        s += text(tickLabel(t, step: xStep), x: x, y: f.top + f.plotHeight + 16, anchor: "middle", fill: "#444")
      }
    }
    s += line(f.left, f.top + f.plotHeight, f.left + f.plotWidth, f.top + f.plotHeight, stroke: "#444")
    s += line(f.left, f.top, f.left, f.top + f.plotHeight, stroke: "#444")
    s += text(xLabel, x: f.left + f.plotWidth / 2, y: f.height - 8, anchor: "middle")
    s += text(yLabel, x: 14, y: f.top + f.plotHeight / 2, anchor: "middle", rotate: true)
    return s
  }

  // MARK: Charts

  /// A line chart of one or more series (a legend when there are several).
  public struct Series {
    public var name: String
    public var points: [(x: Double, y: Double)]
    public var color: String
    public init(name: String, points: [(x: Double, y: Double)], color: String) {
      self.name = name
      self.points = points
      self.color = color
    }
  }

  public static func lineChart(
    title: String, series: [Series], xLabel: String, yLabel: String, width: Double = 380, height: Double = 250
  ) -> String {
    let all = series.flatMap(\.points).filter { $0.x.isFinite && $0.y.isFinite }
    var s = open(width: width, height: height, title: title)
    guard !all.isEmpty else {
      s += text(title, x: 12, y: 16, size: 12, weight: "bold")
      s += text("no data", x: width / 2, y: height / 2, anchor: "middle", fill: "#888")
      return s + "</svg>"
    }
    let x = niceDomain(all.map(\.x).min()!, all.map(\.x).max()!)
    let y = niceDomain(all.map(\.y).min()!, all.map(\.y).max()!)
    let f = Frame(width: width, height: height, left: 58, right: 14, top: 26, bottom: 42, x: x, y: y)
    s += axes(f, title: title, xLabel: xLabel, yLabel: yLabel, xTicks: ticks(x.0, x.1), yTicks: ticks(y.0, y.1))
    for (i, one) in series.enumerated() {
      let pts = one.points.filter { $0.x.isFinite && $0.y.isFinite }
      let path = pts.map { "\(n(f.px($0.x))),\(n(f.py($0.y)))" }.joined(separator: " ")
      s += "<polyline fill=\"none\" stroke=\"\(one.color)\" stroke-width=\"1.6\" points=\"\(path)\"/>\n"
      if pts.count == 1 {
        s += "<circle cx=\"\(n(f.px(pts[0].x)))\" cy=\"\(n(f.py(pts[0].y)))\" r=\"3\" fill=\"\(one.color)\"/>\n"
      }
      if series.count > 1 {
        let ly = f.top + 6 + Double(i) * 14
        s += line(f.left + f.plotWidth - 90, ly, f.left + f.plotWidth - 74, ly, stroke: one.color, width: 2)
        s += text(one.name, x: f.left + f.plotWidth - 70, y: ly + 4)
      }
    }
    return s + "</svg>"
  }

  /// One group of bars (one bar per series; nil: no bar).
  public struct BarGroup {
    public var label: String
    public var values: [Double?]
    public init(label: String, values: [Double?]) {
      self.label = label
      self.values = values
    }
  }

  /// Grouped vertical bars with their values written above them, over `domain`.
  public static func barChart(
    title: String, groups: [BarGroup], series: [(name: String, color: String)], yLabel: String,
    domain: (Double, Double) = (0, 100), width: Double? = nil, height: Double = 280
  ) -> String {
    let barWidth = 22.0, gap = 4.0, groupGap = 22.0
    let groupWidth = Double(series.count) * barWidth + Double(max(0, series.count - 1)) * gap
    let left = 52.0, right = 14.0
    let w = width ?? max(360, left + right + Double(groups.count) * (groupWidth + groupGap) + groupGap)
    let f = Frame(width: w, height: height, left: left, right: right, top: 44, bottom: 58, x: (0, 1), y: domain)
    var s = open(width: w, height: height, title: title)
    s += axes(f, title: title, xLabel: "", yLabel: yLabel, xTicks: nil, yTicks: ticks(domain.0, domain.1))
    // Legend under the title.
    var lx = f.left
    for (name, color) in series {
      s += "<rect x=\"\(n(lx))\" y=\"24\" width=\"10\" height=\"10\" fill=\"\(color)\"/>\n"
      s += text(name, x: lx + 14, y: 33)
      lx += 24 + Double(name.count) * 6.2
    }
    let slot = f.plotWidth / Double(max(1, groups.count))
    for (g, group) in groups.enumerated() {
      let x0 = f.left + slot * Double(g) + (slot - groupWidth) / 2
      for (k, value) in group.values.enumerated() {
        guard let value, k < series.count else { continue }
        let x = x0 + Double(k) * (barWidth + gap)
        let clamped = min(max(value, domain.0), domain.1)
        let top = f.py(clamped), bottom = f.py(domain.0)
        s += "<rect x=\"\(n(x))\" y=\"\(n(top))\" width=\"\(n(barWidth))\" height=\"\(n(bottom - top))\" "
        s += "fill=\"\(series[k].color)\"><title>\(escape("\(group.label) — \(series[k].name): "))"
        s += String(format: "%.2f", value) + "</title></rect>\n"
        s += text(
          String(format: "%.1f", value), x: x + barWidth / 2, y: top - 3, anchor: "middle", size: 9, fill: "#333")
      }
      // Group labels may be long: wrap at spaces onto two lines.
      let lines = wrap(group.label, width: max(8, Int(slot / 6.2)))
      for (i, l) in lines.prefix(2).enumerated() {
        s += text(l, x: x0 + groupWidth / 2, y: f.top + f.plotHeight + 16 + Double(i) * 13, anchor: "middle")
      }
    }
    return s + "</svg>"
  }

  /// A scatter plot of points coloured by class, with a legend of class names.
  public static func scatter(
    title: String, points: [(x: Double, y: Double, label: Int)], classes: [String], xLabel: String, yLabel: String,
    width: Double = 560, height: Double = 400
  ) -> String {
    let legendWidth = 20 + Double(classes.map(\.count).max() ?? 0) * 6.4
    var s = open(width: width, height: height, title: title)
    let finite = points.filter { $0.x.isFinite && $0.y.isFinite }
    guard !finite.isEmpty else {
      s += text(title, x: 12, y: 16, size: 12, weight: "bold")
      s += text("no points", x: width / 2, y: height / 2, anchor: "middle", fill: "#888")
      return s + "</svg>"
    }
    let x = niceDomain(finite.map(\.x).min()!, finite.map(\.x).max()!)
    let y = niceDomain(finite.map(\.y).min()!, finite.map(\.y).max()!)
    let f = Frame(width: width, height: height, left: 58, right: 14 + legendWidth, top: 26, bottom: 42, x: x, y: y)
    s += axes(f, title: title, xLabel: xLabel, yLabel: yLabel, xTicks: ticks(x.0, x.1), yTicks: ticks(y.0, y.1))
    // One group per class, so that the colour is written once per class.
    for c in classes.indices {
      let members = finite.filter { $0.label == c }
      if members.isEmpty { continue }
      s += "<g fill=\"\(color(c))\" fill-opacity=\"0.7\">"
      for p in members { s += "<circle cx=\"\(n(f.px(p.x)))\" cy=\"\(n(f.py(p.y)))\" r=\"2.2\"/>" }
      s += "</g>\n"
    }
    let lx = f.left + f.plotWidth + 16
    for (c, name) in classes.enumerated() {
      let ly = f.top + 8 + Double(c) * 16
      s += "<circle cx=\"\(n(lx + 4))\" cy=\"\(n(ly - 4))\" r=\"4\" fill=\"\(color(c))\"/>\n"
      s += text(name, x: lx + 14, y: ly)
    }
    return s + "</svg>"
  }

  /// Splits text at spaces into lines of at most about `width` characters.
  static func wrap(_ text: String, width: Int) -> [String] {
    var lines: [String] = []
    var current = ""
    for word in text.split(separator: " ") {
      if current.isEmpty {
        current = String(word)
      } else if current.count + 1 + word.count <= width {
        current += " " + word
      } else {
        lines.append(current)
        current = String(word)
      }
    }
    if !current.isEmpty { lines.append(current) }
    return lines
  }
}
