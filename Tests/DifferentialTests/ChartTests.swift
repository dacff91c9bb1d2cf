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
  static func redraw(_ name: String, withMarkdown: Bool) -> (Outcome, String) {
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
    #expect(prefetch.contains(">auto ") && !prefetch.contains(">replay ") && !prefetch.contains(">hybrid16 "))
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
    #expect(startup.contains(">4×<"))
  }

  @Test("the start-up chart draws hybrid, and names the native line to the right of every bar")
  func startupLabelClearOfBars() throws {
    let (outcome, dir) = Self.redraw("startup", withMarkdown: true)
    #expect(outcome.ending == .exited(0), "\(outcome)")
    let svg = try String(contentsOfFile: "\(dir)/startup.svg", encoding: .utf8)
    #expect(svg.contains(">hybrid16<"))
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
    #expect(svg.contains(">5 runs per cell; machine not recorded.<"))
  }
}
