// SVG charts for elfload-bench: small multiples of bars (one panel per workload, each with its
// own scale), the prefetch-depth curves, and start-up overhead against native.
import Foundation

enum Charts {
  static let colors: [String: String] = [
    "native": "#4d4d4d", "eager": "#2166ac", "demand-signal": "#b2182b", "hybrid16-signal": "#ef8a62",
    "ulexecve": "#7b3294", "demand-uffd": "#1b7837", "hybrid16-uffd": "#7fbf7b",
    "auto-signal": "#e7298a", "auto-uffd": "#c994c7", "replay-signal": "#8c510a", "replay-uffd": "#dfc27d",
  ]
  static func color(_ loader: String) -> String { colors[loader] ?? "#999999" }

  /// A loader's name with its pager. A run from before the names said it had "demand",
  /// "hybrid16", "auto", "replay" (and "hybridN" in the sweep) for the signal pager's.
  static func pagerNamed(_ name: String) -> String {
    if name.hasSuffix("-signal") || name.hasSuffix("-uffd") { return name }
    let paged = ["demand", "auto", "replay"].contains(name) || (name.hasPrefix("hybrid") && Int(name.dropFirst(6)) != nil)
    return paged ? name + "-signal" : name
  }

  static func f(_ v: Double) -> String { String(format: "%.1f", v) }
  static func label(_ v: Double) -> String {
    v >= 100 ? String(format: "%.0f", v) : v >= 10 ? String(format: "%.1f", v) : String(format: "%.2f", v)
  }
  static func esc(_ s: String) -> String {
    s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
      .replacingOccurrences(of: ">", with: "&gt;")
  }

  /// The distinct values, in the order they first appear.
  static func inOrder(_ values: [String]) -> [String] {
    var seen: [String] = []
    for v in values where !seen.contains(v) { seen.append(v) }
    return seen
  }

  /// The title, and under it what every chart must say to stand alone: how many
  /// runs each number is a median of, and on what machine.
  static func header(_ width: Int, _ height: Int, _ title: String, note: String) -> String {
    """
    <svg xmlns="http://www.w3.org/2000/svg" width="\(width)" height="\(height)" font-family="sans-serif" font-size="11">
    <rect width="100%" height="100%" fill="white"/>
    <text x="12" y="22" font-size="15">\(esc(title))</text>
    <text class="note" x="12" y="38" fill="#555">\(esc(note))</text>

    """
  }

  /// Round tick values (steps of 1, 2 or 5 times a power of ten) from 0 up to `top`, about `count` of them.
  static func ticks(_ top: Double, count: Int = 4) -> [Double] {
    guard top > 0, top.isFinite else { return [0] }
    let raw = top / Double(count)
    let magnitude = pow(10, floor(log10(raw)))
    let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? 10 * magnitude
    return Array(stride(from: 0, through: top * 1.000_001, by: step))
  }

  /// A tick's label: no trailing zeros.
  static func tickLabel(_ v: Double) -> String {
    v == v.rounded() && abs(v) < 1e9 ? String(Int(v)) : String(format: "%g", v)
  }

  /// A vertical axis at `x` from `base` up: a line, and per tick a mark, a faint grid line to `right` and a label.
  static func yAxis(x: Double, base: Double, right: Double, ticks: [(Double, String)]) -> String {
    var s = ""
    for (y, text) in ticks {
      s += "<line x1=\"\(f(x))\" y1=\"\(f(y))\" x2=\"\(f(right))\" y2=\"\(f(y))\" stroke=\"#eee\"/>"
      s +=
        "<line class=\"tick\" x1=\"\(f(x - 4))\" y1=\"\(f(y))\" x2=\"\(f(x))\" y2=\"\(f(y))\" stroke=\"#666\"/>"
      s += "<text x=\"\(f(x - 6))\" y=\"\(f(y + 4))\" text-anchor=\"end\" fill=\"#444\">\(esc(text))</text>\n"
    }
    let top = ticks.map(\.0).min() ?? base
    s += "<line x1=\"\(f(x))\" y1=\"\(f(base))\" x2=\"\(f(x))\" y2=\"\(f(top))\" stroke=\"#666\"/>\n"
    return s
  }

  /// A colour key per loader, from `x` to `right`, on as many lines of 16 pixels as it takes;
  /// the number of lines with it.
  static func legend(_ loaders: [String], x: Double, y: Double, right: Double) -> (String, Int) {
    var s = ""
    var lx = x
    var ly = y
    var lines = 1
    for loader in loaders {
      let itemWidth = 26 + 6.5 * Double(loader.count)  // each item as wide as its name
      if lx + itemWidth - 12 > right, lx > x {
        (lx, ly, lines) = (x, ly + 16, lines + 1)
      }
      s += "<rect x=\"\(f(lx))\" y=\"\(f(ly - 9))\" width=\"10\" height=\"10\" fill=\"\(color(loader))\"/>"
      s += "<text x=\"\(f(lx + 14))\" y=\"\(f(ly))\">\(esc(loader))</text>\n"
      lx += itemWidth
    }
    return (s, lines)
  }

  /// The top of a panel's scale: the largest value, unless one bar is far
  /// above the rest (ulexecve's 60 ms next to 1 ms): then 1.5 times the
  /// others' largest, and the tall bar is drawn cut, with its value.
  static func clippedTop(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    guard let largest = sorted.last, sorted.count > 1 else { return max(sorted.last ?? 1, 1e-9) }
    let others = sorted[sorted.count - 2]
    return largest > 3 * others && others > 0 ? others * 1.5 : max(largest, 1e-9)
  }

  /// Two white slashes across a bar cut short.
  static func breakMark(x: Double, width: Double, y: Double) -> String {
    "<path d=\"M\(f(x - 2)),\(f(y + 3)) L\(f(x + width + 2)),\(f(y - 3)) M\(f(x - 2)),\(f(y + 8)) L\(f(x + width + 2)),\(f(y + 2))\" stroke=\"white\" stroke-width=\"3\"/>\n"
  }

  /// One panel per workload; bars per loader; each panel scaled to its own maximum,
  /// with its own y-axis in `unit`. Each bar's value is written under it, below the axis, where
  /// it cannot be read as its whisker's.
  /// `counts`: the values are whole numbers, and the ticks carry no unit (the
  /// chart's title does): "16000 faults" does not fit left of the axis.
  static func panels(
    title: String, unit: String, note: String, cells: [Cell], counts: Bool = false,
    value: (Cell) -> (Double, Double?, Double?)
  ) -> String {
    func valueLabel(_ v: Double) -> String { counts ? String(Int(v.rounded())) : label(v) }
    let workloads = inOrder(cells.map(\.workload))
    let loaders = inOrder(cells.map(\.loader))
    let columns = 3
    let panelWidth = 300.0
    let panelHeight = 230.0
    let rows = (workloads.count + columns - 1) / columns
    let width = Int(panelWidth) * columns + 20
    let (key, keyLines) = legend(loaders, x: 12, y: 58, right: Double(width) - 12)
    let extra = Double(keyLines - 1) * 16
    let height = 90 + Int(extra) + rows * Int(panelHeight + 20)
    var s = header(width, height, title, note: note) + key
    s +=
      "<text x=\"12\" y=\"\(f(76 + extra))\" fill=\"#555\">under each bar, below its panel's axis: its value\(counts ? "" : " in \(unit)")\(cells.first.map { value($0).1 != nil } == true ? " (the median; the whisker spans p10 to p90)" : "")</text>\n"
    for (index, workload) in workloads.enumerated() {
      let px = 10 + Double(index % columns) * panelWidth
      let py = 90 + extra + Double(index / columns) * (panelHeight + 20)
      let group = loaders.compactMap { l in cells.first { $0.workload == workload && $0.loader == l } }
      let top = clippedTop(
        group.map { c -> Double in
          let v = value(c)
          return max(v.0, v.2 ?? 0)
        })
      // Room under the axis for the values, written upright.
      let labelRoom = 46.0
      let base = py + panelHeight - labelRoom
      let scale = (base - py - 30) / max(top, 1e-9)
      let axisX = px + 44
      let right = px + panelWidth - 12
      let barWidth = (right - axisX - 6) / Double(max(group.count, 1))
      s +=
        "<text class=\"panel-title\" x=\"\(f(axisX))\" y=\"\(f(py + 14))\" font-size=\"12\">\(esc(workload))</text>\n"
      s += yAxis(
        x: axisX, base: base, right: right,
        ticks: ticks(top).map { (base - $0 * scale, counts ? tickLabel($0) : "\(tickLabel($0)) \(unit)") })
      s +=
        "<line x1=\"\(f(axisX))\" y1=\"\(f(base))\" x2=\"\(f(right))\" y2=\"\(f(base))\" stroke=\"#666\"/>\n"
      for (i, c) in group.enumerated() {
        let (v, lowValue, highValue) = value(c)
        let clipped = v > top
        let low = lowValue.map { min($0, top) }
        let high = highValue.map { min($0, top) }
        let x = axisX + 6 + Double(i) * barWidth
        let h = min(v, top) * scale
        let cx = x + (barWidth - 6) / 2
        s +=
          "<rect class=\"bar\" x=\"\(f(x))\" y=\"\(f(base - h))\" width=\"\(f(barWidth - 6))\" height=\"\(f(h))\" fill=\"\(color(c.loader))\"\(c.ok ? "" : " fill-opacity=\"0.3\"")/>\n"
        if let low, let high {
          s +=
            "<line class=\"whisker\" x1=\"\(f(cx))\" y1=\"\(f(base - low * scale))\" x2=\"\(f(cx))\" y2=\"\(f(base - high * scale))\" stroke=\"black\"/>\n"
        }
        if clipped { s += breakMark(x: x, width: barWidth - 6, y: base - h + 12) }
        s +=
          "<text class=\"value\" transform=\"translate(\(f(cx + 3)),\(f(base + 5))) rotate(-90)\" text-anchor=\"end\" font-size=\"9\" fill=\"\(c.ok ? "#222" : "#b2182b")\">\(c.ok ? valueLabel(v) : "failed \(valueLabel(v))")</text>\n"
      }
    }
    return s + "</svg>\n"
  }

  /// Prefetch depth (log2 axis) against wall time and against faults, with
  /// native, eager, demand and auto (--prefetch auto: where the predictor
  /// lands against every fixed N) as reference lines, all with the sweep's
  /// pager (signal). The sweep's --prefetch 16 is the same command as the time chart's
  /// hybrid16-signal, measured in runs of its own: where the two differ, the chart says by how much.
  static func prefetch(sweep: [(depth: Int, cell: Cell)], reference: [Cell], note: String) -> String {
    let width = 900
    let height = 400
    var s = header(width, height, "hybrid --prefetch N --pager signal on the 64 MiB bss pass (bench3_bss)", note: note)
    let sweep16 = sweep.first { $0.depth == 16 }?.cell
    let other16 = reference.first { $0.loader == "hybrid16-signal" }
    if let sweep16, let other16 {
      s +=
        "<text class=\"same-command\" x=\"60\" y=\"374\" fill=\"#555\">○ at 16: the time chart's hybrid16-signal, the same command measured in runs of its own: \(label(other16.median)) ms (p10–p90 \(label(other16.p10))–\(label(other16.p90)))</text>\n"
      s +=
        "<text x=\"60\" y=\"390\" fill=\"#555\">against this sweep's \(label(sweep16.median)) ms (\(label(sweep16.p10))–\(label(sweep16.p90))): how far one cell moves between runs on this machine</text>\n"
    }
    let panels: [(String, (Cell) -> Double?, Bool)] = [
      ("wall time, ms (median)", { $0.median }, false),
      ("faults handled by elfload (log scale)", { $0.loaderFaults.map(Double.init) }, true),
    ]
    let depths = sweep.map { log2(Double($0.depth)) }
    let xMax = max(depths.max() ?? 1, 1)
    for (p, (title, metric, logScale)) in panels.enumerated() {
      let px = 60.0 + Double(p) * 440
      let py = 65.0
      let w = 370.0
      let h = 220.0
      var values = sweep.compactMap { metric($0.cell) }
      let refs = reference.filter { ["native", "eager", "demand-signal", "auto-signal"].contains($0.loader) }
        .compactMap { c in metric(c).map { (c.loader, $0) } }
      values += refs.map(\.1)
      // The time chart's run of the sweep's --prefetch 16, on the time panel: on its scale too.
      let sameCommand = p == 0 && sweep16.flatMap(metric) != nil ? other16.flatMap(metric) : nil
      values += sameCommand.map { [$0] } ?? []
      let positive = values.filter { $0 > 0 }
      let yMax = values.max() ?? 1
      let yMin = logScale ? (positive.min() ?? 1) / 2 : 0
      func y(_ v: Double) -> Double {
        if logScale {
          return py + h - (log10(max(v, yMin)) - log10(yMin)) / (log10(yMax * 1.2) - log10(yMin)) * h
        }
        return py + h - v / (yMax * 1.15) * h
      }
      func x(_ d: Double) -> Double { px + 16 + d / xMax * (w - 32) }
      s += "<text x=\"\(f(px))\" y=\"\(f(py - 8))\" font-size=\"12\">\(esc(title))</text>\n"
      s +=
        "<rect x=\"\(f(px))\" y=\"\(f(py))\" width=\"\(f(w))\" height=\"\(f(h))\" fill=\"none\" stroke=\"#ccc\"/>\n"
      let yTicks: [Double] =
        logScale
        ? (Int(ceil(log10(yMin)))...max(Int(floor(log10(yMax * 1.2))), Int(ceil(log10(yMin))))).map {
          pow(10, Double($0))
        }
        : ticks(yMax * 1.15).filter { $0 <= yMax * 1.15 }
      s += yAxis(
        x: px, base: py + h, right: px + w,
        ticks: yTicks.map { (y($0), logScale ? tickLabel($0) : "\(tickLabel($0)) ms") })
      // Reference lines are named in a key under the panel, in their colours: named inside
      // the plot, they ran into the curve's own labels.
      var keyX = px
      var keyY = py + h + 46
      for (loader, v) in refs.sorted(by: { $0.1 > $1.1 }) {
        s +=
          "<line x1=\"\(f(px))\" y1=\"\(f(y(v)))\" x2=\"\(f(px + w))\" y2=\"\(f(y(v)))\" stroke=\"\(color(loader))\" stroke-dasharray=\"5,4\"/>"
        let name = "\(loader) \(logScale ? String(Int(v)) : label(v))"
        let itemWidth = 24 + Double(name.count) * 6
        if keyX + itemWidth > px + w { (keyX, keyY) = (px, keyY + 14) }
        s += "<line x1=\"\(f(keyX))\" y1=\"\(f(keyY))\" x2=\"\(f(keyX + 14))\" y2=\"\(f(keyY))\" stroke=\"\(color(loader))\" stroke-dasharray=\"5,4\"/>"
        s +=
          "<text x=\"\(f(keyX + 17))\" y=\"\(f(keyY + 3))\" fill=\"\(color(loader))\" font-size=\"9\">\(esc(name))</text>\n"
        keyX += itemWidth
      }
      if let v = sameCommand {
        s +=
          "<circle class=\"same-command\" cx=\"\(f(x(4)))\" cy=\"\(f(y(v)))\" r=\"4\" fill=\"white\" stroke=\"#ef8a62\" stroke-width=\"1.5\"/>\n"
      }
      var points: [String] = []
      for (d, entry) in zip(depths, sweep) {
        guard let v = metric(entry.cell) else { continue }
        points.append("\(f(x(d))),\(f(y(v)))")
        s += "<circle cx=\"\(f(x(d)))\" cy=\"\(f(y(v)))\" r=\"3\" fill=\"#ef8a62\"/>"
        s +=
          // (A white halo: a reference line passing behind a value leaves it legible.)
          "<text x=\"\(f(x(d)))\" y=\"\(f(y(v) - 7))\" text-anchor=\"middle\" font-size=\"9\" stroke=\"white\" stroke-width=\"3\" paint-order=\"stroke\">\(logScale ? String(Int(v)) : label(v))</text>\n"
        s += "<text x=\"\(f(x(d)))\" y=\"\(f(py + h + 14))\" text-anchor=\"middle\">\(entry.depth)</text>\n"
      }
      s +=
        "<polyline points=\"\(points.joined(separator: " "))\" fill=\"none\" stroke=\"#ef8a62\" stroke-width=\"2\"/>\n"
      s +=
        "<text x=\"\(f(px + w / 2))\" y=\"\(f(py + h + 30))\" text-anchor=\"middle\">--prefetch N (pages after each faulting page)</text>\n"
    }
    return s + "</svg>\n"
  }

  /// Start-up: each loader's median over native's, per program, on a logarithmic axis in
  /// multiples of native (a 20× bar does not flatten the 1.2× ones), each bar drawn from the
  /// native = 1× line, named in the right margin, clear of the bars.
  static func startup(_ cells: [Cell], note: String) -> String {
    let programs = inOrder(cells.map(\.workload))
    let loaders = inOrder(cells.map(\.loader))
    let width = 900
    let (key, keyLines) = legend(loaders, x: 12, y: 58, right: Double(width) - 12)
    let extra = Double(keyLines - 1) * 16
    let height = 330 + Int(extra)
    var s = header(
      width, height, "Start-up: time to run a tiny program, relative to running it natively (log scale)", note: note)
    s += key
    let base = 275.0 + extra
    let plotTop = 85.0 + extra
    let left = 60.0
    let right = 810.0
    let ratios = cells.map { c -> Double in
      let native = cells.first { $0.workload == c.workload && $0.loader == "native" }?.median ?? 1
      return max(c.median, 1e-9) / max(native, 1e-9)
    }
    // From a little under the smallest ratio (1× at most) to a little over the largest; the
    // room above the tallest bar is for its label.
    let low = min(ratios.min() ?? 1, 1) / 1.25
    let high = max(ratios.max() ?? 1, 2) * 1.6
    let perDecade = (base - plotTop) / (log10(high) - log10(low))
    func y(_ r: Double) -> Double { base - (log10(r) - log10(low)) * perDecade }
    let tickValues = logTicks(low, high)
    s += yAxis(x: left, base: base, right: right, ticks: tickValues.map { (y($0), "\(tickLabel($0))×") })
    s += "<line x1=\"\(f(left))\" y1=\"\(f(base))\" x2=\"\(f(right))\" y2=\"\(f(base))\" stroke=\"#666\"/>\n"
    let groupWidth = (right - left) / Double(max(programs.count, 1))
    let barWidth = (groupWidth - 20) / Double(max(loaders.count, 1))
    for (g, program) in programs.enumerated() {
      let gx = left + 10 + Double(g) * groupWidth
      for (i, loader) in loaders.enumerated() {
        guard let index = cells.firstIndex(where: { $0.workload == program && $0.loader == loader }) else {
          continue
        }
        let r = ratios[index]
        let x = gx + Double(i) * barWidth
        // From the 1× line up (slower than native) or down (faster).
        let (barTop, barBottom) = (min(y(r), y(1)), max(y(r), y(1)))
        s +=
          "<rect class=\"bar\" x=\"\(f(x))\" y=\"\(f(barTop))\" width=\"\(f(barWidth - 4))\" height=\"\(f(barBottom - barTop))\" fill=\"\(color(loader))\"/>"
        let labelY = r >= 1 ? barTop - 4 : barBottom + 4
        s +=
          // Narrow bars (many loaders): the label turned upright, so that neighbours' do not run together.
          (barWidth < 34
            ? "<text class=\"ratio\" transform=\"translate(\(f(x + (barWidth - 4) / 2 + 3)),\(f(labelY))) rotate(-90)\"\(r >= 1 ? "" : " text-anchor=\"end\"") font-size=\"10\">\(String(format: "%.1f×", r))</text>\n"
            : "<text class=\"ratio\" x=\"\(f(x + (barWidth - 4) / 2))\" y=\"\(f(r >= 1 ? labelY : labelY + 8))\" text-anchor=\"middle\" font-size=\"10\">\(String(format: "%.1f×", r))</text>\n")
      }
      let native = cells.first { $0.workload == program && $0.loader == "native" }
      s +=
        "<text x=\"\(f(gx + (groupWidth - 20) / 2))\" y=\"\(f(base + 16))\" text-anchor=\"middle\">\(esc(program))</text>\n"
      if let native {
        s +=
          "<text x=\"\(f(gx + (groupWidth - 20) / 2))\" y=\"\(f(base + 30))\" text-anchor=\"middle\" fill=\"#555\" font-size=\"10\">native: \(String(format: "%.2f", native.median)) ms</text>\n"
      }
    }
    s +=
      "<line x1=\"\(f(left))\" y1=\"\(f(y(1)))\" x2=\"\(f(right))\" y2=\"\(f(y(1)))\" stroke=\"#4d4d4d\" stroke-dasharray=\"3,3\"/>"
    s +=
      "<text class=\"native-label\" x=\"\(f(right + 6))\" y=\"\(f(y(1) + 4))\" fill=\"#4d4d4d\">native = 1×</text>\n"
    return s + "</svg>\n"
  }

  /// Ticks of a logarithmic axis between `low` and `high`: 1, 2 and 5 times the powers of ten.
  static func logTicks(_ low: Double, _ high: Double) -> [Double] {
    var values: [Double] = []
    var power = pow(10, floor(log10(low)))
    while power <= high {
      for m in [1.0, 2, 5] where m * power >= low && m * power <= high { values.append(m * power) }
      power *= 10
    }
    return values
  }
}
