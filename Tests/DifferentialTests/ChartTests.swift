// elfload-bench's charts, redrawn from a small results.csv: each must stand alone (axes with
// ticks and units, the run count and the machine), and the start-up chart's native line must
// be named clear of the bars.
import Foundation
import FoundationXML
import Testing

@Suite("Benchmark charts")
struct ChartTests {
  static let scratch = scratchDirectory("charts")

  /// elfload-bench, built beside elfload.
  static var bench: String {
    URL(fileURLWithPath: Paths.elfload).deletingLastPathComponent().appendingPathComponent("elfload-bench")
      .path
  }

  static let note =
    "5 runs per cell after 1 warm-up runs, fresh processes; 2 CPUs, Linux 6.1.0-test x86_64 (Test)."

  /// Writes a results.csv (and, if asked, the results.md whose first sentence names the machine) and redraws it.
  /// The loaders are named as before they said their pager ("demand" for the signal pager's); `extra` rows are added.
  static func redraw(_ name: String, withMarkdown: Bool, extra: [String] = []) -> (Outcome, String) {
    let dir = "\(scratch)/\(name)"
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    var csv =
      "section,workload,loader,runs,median_ms,p10_ms,p90_ms,max_rss_kb,minor_faults,loader_faults,pages_prefetched,ok\n"
    for (workload, scale) in [("hello", 1.0), ("bench3 bss", 40.0)] {
      for (loader, ratio) in [
        ("native", 1.0), ("eager", 2.0), ("demand", 2.5), ("hybrid16", 3.0), ("auto", 2.2), ("replay", 2.1),
        ("demand-uffd", 2.4), ("hybrid16-uffd", 2.9),
      ] {
        let m = scale * ratio
        csv +=
          "workloads,\(workload),\(loader),5,\(m),\(m * 0.9),\(m * 1.1),\(Int(1024 * ratio)),100,10,5,true\n"
      }
    }
    for depth in [1, 4, 16] {
      csv +=
        "prefetch,bench3 bss,hybrid\(depth),5,\(80.0 / Double(depth)),1,100,2048,100,\(8000 / depth),\(depth * 100),true\n"
    }
    for program in ["static hello", "/bin/true"] {
      for (loader, ratio) in [("native", 1.0), ("eager", 3.0), ("demand", 4.0), ("hybrid16", 4.0)] {
        csv += "startup,\(program),\(loader),5,\(0.5 * ratio),0.4,0.6,600,30,,,true\n"
      }
    }
    csv += extra.map { $0 + "\n" }.joined()
    FileManager.default.createFile(atPath: "\(dir)/results.csv", contents: Data(csv.utf8))
    if withMarkdown {
      FileManager.default.createFile(
        atPath: "\(dir)/results.md",
        contents: Data("# elfload-bench results\n\n\(note)\n\n## Workloads\n".utf8))
    }
    return (run([bench, "--redraw", dir]), dir)
  }

  static func numbers(_ attribute: String, of element: String, in svg: String) -> [Double] {
    let regex = try! NSRegularExpression(pattern: "<\(element)[^>]*?\\s\(attribute)=\"([0-9.]+)\"")
    return regex.matches(in: svg, range: NSRange(svg.startIndex..., in: svg)).compactMap {
      Range($0.range(at: 1), in: svg).flatMap { Double(svg[$0]) }
    }
  }

  @Test("every chart has y ticks with units, the run count and the machine, and is well-formed")
  func chartsStandAlone() throws {
    let (outcome, dir) = Self.redraw("full", withMarkdown: true)
    #expect(outcome.ending == .exited(0), "\(outcome)")
    // --prefetch auto lands among the fixed depths as a reference line of its own; the others are not drawn there.
    let prefetch = try String(contentsOfFile: "\(dir)/prefetch.svg", encoding: .utf8)
    #expect(prefetch.contains(">auto-signal ") && !prefetch.contains(">replay") && !prefetch.contains(">hybrid16"))
    for name in ["time", "memory", "faults", "prefetch", "startup"] {
      let svg = try String(contentsOfFile: "\(dir)/\(name).svg", encoding: .utf8)
      #expect(XMLParser(data: Data(svg.utf8)).parse(), "\(name).svg is not well-formed")
      #expect(svg.contains(">\(Self.note)<"), "\(name).svg does not say the runs and machine")
      #expect(svg.components(separatedBy: "class=\"tick\"").count - 1 >= 3, "\(name).svg has no y ticks")
    }
    // hello: 1, 2, 2.5 and 3 ms: ticks every 1 ms up to 3, with the unit.
    let time = try String(contentsOfFile: "\(dir)/time.svg", encoding: .utf8)
    for tick in ["0 ms", "1 ms", "2 ms", "3 ms"] { #expect(time.contains(">\(tick)<"), "no \(tick) tick") }
    // Each loader its own colour, the userfaultfd pager's too.
    let legend = try NSRegularExpression(
      pattern: "<rect x=\"[0-9.]+\" y=\"[0-9.]+\" width=\"10\" height=\"10\" fill=\"(#[0-9a-f]+)\"")
    let fills = legend.matches(in: time, range: NSRange(time.startIndex..., in: time)).map {
      String(time[Range($0.range(at: 1), in: time)!])
    }
    #expect(fills.count == 8 && Set(fills).count == 8, "legend colours: \(fills)")
    let memory = try String(contentsOfFile: "\(dir)/memory.svg", encoding: .utf8)
    #expect(memory.contains(">3 MiB<"))
    let startup = try String(contentsOfFile: "\(dir)/startup.svg", encoding: .utf8)
    #expect(startup.contains(">5×<") && startup.contains(">4.0×<"))
  }

  @Test("the start-up chart draws hybrid, and names the native line to the right of every bar")
  func startupLabelClearOfBars() throws {
    let (outcome, dir) = Self.redraw("startup", withMarkdown: true)
    #expect(outcome.ending == .exited(0), "\(outcome)")
    let svg = try String(contentsOfFile: "\(dir)/startup.svg", encoding: .utf8)
    #expect(svg.contains(">hybrid16-signal<"))
    let xs = Self.numbers("x", of: "rect class=\"bar\"", in: svg)
    let widths = Self.numbers("width", of: "rect class=\"bar\"", in: svg)
    #expect(xs.count == 8 && widths.count == 8)
    let rightmost = zip(xs, widths).map { $0 + $1 }.max() ?? .infinity
    let label = Self.numbers("x", of: "text class=\"native-label\"", in: svg)
    #expect(label.count == 1 && label[0] > rightmost, "label at \(label), bars end at \(rightmost)")
  }

  @Test("a redraw without results.md says the machine is not recorded")
  func redrawWithoutMachine() throws {
    let (outcome, dir) = Self.redraw("bare", withMarkdown: false)
    #expect(outcome.ending == .exited(0), "\(outcome)")
    let svg = try String(contentsOfFile: "\(dir)/time.svg", encoding: .utf8)
    // (5 runs a cell: the chart says it is a quick look.)
    #expect(
      svg.contains(
        ">5 runs per cell; machine not recorded. A quick look: from so few runs a cell moves by tens of percent between runs.<"
      ))
  }

  /// The legend's names, in order.
  static func legend(_ svg: String) -> [String] {
    let regex = try! NSRegularExpression(
      pattern: "<rect x=\"[0-9.]+\" y=\"[0-9.]+\" width=\"10\" height=\"10\" fill=\"#[0-9a-f]+\"/><text x=\"[0-9.]+\" y=\"[0-9.]+\">([^<]+)<")
    return regex.matches(in: svg, range: NSRange(svg.startIndex..., in: svg)).map {
      String(svg[Range($0.range(at: 1), in: svg)!])
    }
  }

  /// (x, y, width, height) of every bar, and (x, y, text) of every value written under one, in order.
  static func bars(_ svg: String) -> (bars: [(Double, Double, Double, Double)], values: [(Double, Double, String)]) {
    let bar = try! NSRegularExpression(
      pattern: "<rect class=\"bar\" x=\"([0-9.]+)\" y=\"([0-9.]+)\" width=\"([0-9.]+)\" height=\"([0-9.]+)\"")
    let value = try! NSRegularExpression(
      pattern: "<text class=\"(?:value|ratio)\" transform=\"translate\\(([0-9.]+),([0-9.]+)\\) rotate\\(-90\\)\"[^>]*>([^<]+)<")
    func groups(_ m: NSTextCheckingResult) -> [String] {
      (1..<m.numberOfRanges).map { String(svg[Range(m.range(at: $0), in: svg)!]) }
    }
    // (A number that does not read as one is NaN: the expectations on it fail, nothing traps.)
    func n(_ text: String) -> Double { Double(text) ?? .nan }
    let b = bar.matches(in: svg, range: NSRange(svg.startIndex..., in: svg)).map(groups).map {
      (n($0[0]), n($0[1]), n($0[2]), n($0[3]))
    }
    let v = value.matches(in: svg, range: NSRange(svg.startIndex..., in: svg)).map(groups).map {
      (n($0[0]), n($0[1]), $0[2])
    }
    return (b, v)
  }

  @Test("every bar's value is written under it, below the axis, not over its whisker")
  func valuesUnderBars() throws {
    let (outcome, dir) = Self.redraw("values", withMarkdown: true)
    #expect(outcome.ending == .exited(0), "\(outcome)")
    let svg = try String(contentsOfFile: "\(dir)/time.svg", encoding: .utf8)
    let (bars, values) = Self.bars(svg)
    // hello then bench3 bss, 8 loaders each: the medians of the CSV, in its order.
    try #require(bars.count == 16 && values.count == 16, "\(bars.count) bars, \(values.count) values")
    let ratios = [1.0, 2.0, 2.5, 3.0, 2.2, 2.1, 2.4, 2.9]
    let medians = [1.0, 40.0].flatMap { scale in ratios.map { scale * $0 } }
    for ((x, y, w, h), ((vx, vy, text), median)) in zip(bars, zip(values, medians)) {
      // Centred under its bar (the upright text's baseline 3 pixels right of the centre), and
      // below the bar's foot, which is the axis.
      #expect(abs(vx - 3 - (x + w / 2)) < 0.15, "\(text) at \(vx), bar at \(x)+\(w)")
      #expect(vy > y + h, "\(text) at \(vy), bar from \(y) to \(y + h)")
      #expect(text == (median >= 100 ? String(format: "%.0f", median) : median >= 10 ? String(format: "%.1f", median) : String(format: "%.2f", median)))
    }
    // Nothing written above a whisker any more: no text between a bar's top and the panel's title.
    #expect(!svg.contains("text-anchor=\"middle\" font-size=\"10\">"), "a value over a bar")
  }

  @Test("start-up on a log axis: 23.7× does not flatten 1.2×, every bar from the 1× line")
  func startupLogAxis() throws {
    let rows = ["native 1", "eager 1.2", "demand-uffd 23.7", "ulexecve 60"].map { entry -> String in
      let f = entry.split(separator: " ")
      return "startup,tiny,\(f[0]),5,\(0.5 * Double(f[1])!),0.4,0.6,600,30,,,true"
    }
    let (outcome, dir) = Self.redraw("log", withMarkdown: false, extra: rows)
    #expect(outcome.ending == .exited(0), "\(outcome)")
    let svg = try String(contentsOfFile: "\(dir)/startup.svg", encoding: .utf8)
    // After the base rows' two programs (4 bars each), "tiny": native, eager, demand-uffd and
    // ulexecve; each bar's height is log10 of its ratio times one scale.
    let ratios = [1.0, 1.2, 23.7, 60]
    let (bars, _) = Self.bars(svg)
    try #require(bars.count == 12, "\(bars)")
    let group = Array(bars.suffix(4))
    let perDecade = group[3].3 / log10(60)
    for (bar, r) in zip(group, ratios) {
      #expect(abs(bar.3 - perDecade * log10(r)) < 0.15, "ratio \(r): height \(bar.3), \(perDecade) a decade")
    }
    // (From the 1× line on a linear axis, eager's 1.2× would be 0.2/59 of ulexecve's bar: half a pixel.)
    #expect(group[1].3 > 10 * group[3].3 * 0.2 / 59, "eager's 1.2× is \(group[1].3) pixels tall")
    // The ticks are 1, 2 and 5 times powers of ten, each where log10 puts it above the 1× line.
    let tick = try NSRegularExpression(pattern: "<text x=\"[0-9.]+\" y=\"([0-9.]+)\" text-anchor=\"end\" fill=\"#444\">([0-9.]+)×<")
    let ticks = tick.matches(in: svg, range: NSRange(svg.startIndex..., in: svg)).map {
      (number(svg, $0, 2), number(svg, $0, 1) - 4)
    }
    #expect(ticks.map(\.0) == [1, 2, 5, 10, 20, 50], "\(ticks)")
    let one = try #require(ticks.first?.1)
    #expect(abs(one - (group[1].1 + group[1].3)) < 0.06, "the 1× tick at \(one), bars start at \(group[1].1 + group[1].3)")
    for (value, y) in ticks { #expect(abs(one - y - perDecade * log10(value)) < 0.15, "\(value)× at \(y)") }
    #expect(svg.contains(">60.0×<") && svg.contains(">23.7×<"))
  }

  @Test("the prefetch chart says why its --prefetch 16 differs from the time chart's hybrid16")
  func sameCommandTwice() throws {
    let (outcome, dir) = Self.redraw("same-command", withMarkdown: true)
    #expect(outcome.ending == .exited(0), "\(outcome)")
    let svg = try String(contentsOfFile: "\(dir)/prefetch.svg", encoding: .utf8)
    // The CSV: hybrid16 on bench3 bss 120 ms (108–132) in the workloads, 5 ms (1–100) in the sweep.
    #expect(
      svg.contains(
        ">○ at 16: the time chart's hybrid16-signal, the same command measured in runs of its own: 120 ms (p10–p90 108–132)<"),
      "\(svg)")
    #expect(svg.contains(">against this sweep's 5.00 ms (1.00–100): how far one cell moves between runs on this machine<"))
    // The hollow mark in the sweep's column for 16, at 120 ms on the time panel's scale.
    let mark = try NSRegularExpression(pattern: "<circle class=\"same-command\" cx=\"([0-9.]+)\" cy=\"([0-9.]+)\"")
    let point = try NSRegularExpression(pattern: "<circle cx=\"([0-9.]+)\" cy=\"([0-9.]+)\" r=\"3\"")
    func xy(_ r: NSRegularExpression) -> [(Double, Double)] {
      r.matches(in: svg, range: NSRange(svg.startIndex..., in: svg)).map {
        (number(svg, $0, 1), number(svg, $0, 2))
      }
    }
    let marks = xy(mark)
    let points = xy(point)
    try #require(marks.count == 1 && points.count == 6, "\(marks) \(points)")
    // Depths 1, 4, 16 at 80, 20 and 5 ms: the 16's point, and the mark above it at 120 ms.
    #expect(marks[0].0 == points[2].0)
    let perMs = (points[2].1 - points[0].1) / (80 - 5)
    #expect(abs((points[2].1 - marks[0].1) - perMs * (120 - 5)) < 0.15, "\(marks) \(points)")
  }

  @Test("ulexecve, when the run has it, is in every chart it ran in; panels are titled by their workload alone")
  func ulexecveAndTitles() throws {
    let extra = [
      "workloads,hello (dynamic),native,5,1.0,0.9,1.1,1024,100,,,true",
      "workloads,hello (dynamic),ulexecve,5,60.0,55,65,9000,900,,,true",
      "workloads,hello,ulexecve,5,60.0,55,65,9000,900,,,true",
      "startup,/bin/true,ulexecve,5,30.0,29,31,9000,900,,,true",
    ]
    let (outcome, dir) = Self.redraw("ulexecve", withMarkdown: true, extra: extra)
    #expect(outcome.ending == .exited(0), "\(outcome)")
    let time = try String(contentsOfFile: "\(dir)/time.svg", encoding: .utf8)
    let startup = try String(contentsOfFile: "\(dir)/startup.svg", encoding: .utf8)
    #expect(Self.legend(time).contains("ulexecve") && Self.legend(startup).contains("ulexecve"))
    // hello's ulexecve, 60 ms beside 3 at most: cut short, with its value under it.
    #expect(time.contains(">60.0</text>") && time.contains("stroke=\"white\" stroke-width=\"3\""))
    // /bin/true under ulexecve: 30 ms against native's 0.5: 60×, drawn whole on the log axis.
    #expect(startup.contains(">60.0×<"))
    // A workload whose name has parentheses is the panel's whole title.
    #expect(time.contains("<text class=\"panel-title\" x=\"54\" y=\"354\" font-size=\"12\">hello (dynamic)</text>") || time.contains(">hello (dynamic)</text>"))
    #expect(!time.contains("(ms)<") && !time.contains(") (ms)"))
  }

  @Test("every loader of elfload's pagers names its pager, in every chart, from old and new results alike")
  func pagerNamed() throws {
    let renamed = ["demand-signal 2.5", "demand-uffd 2.4", "auto-uffd 2.2"].map { entry -> String in
      let f = entry.split(separator: " ")
      return "workloads,python3,\(f[0]),5,\(f[1]),1,3,1024,100,10,5,true"
    }
    let (outcome, dir) = Self.redraw("pagers", withMarkdown: true, extra: renamed)
    #expect(outcome.ending == .exited(0), "\(outcome)")
    for name in ["time", "memory", "faults", "startup"] {
      let names = Self.legend(try String(contentsOfFile: "\(dir)/\(name).svg", encoding: .utf8))
      #expect(!names.isEmpty)
      for loader in names where !["native", "eager", "ulexecve"].contains(loader) {
        #expect(loader.hasSuffix("-signal") || loader.hasSuffix("-uffd"), "\(name).svg: \(loader)")
      }
    }
    let time = Self.legend(try String(contentsOfFile: "\(dir)/time.svg", encoding: .utf8))
    #expect(time == ["native", "eager", "demand-signal", "hybrid16-signal", "auto-signal", "replay-signal", "demand-uffd", "hybrid16-uffd", "auto-uffd"])
  }
}
