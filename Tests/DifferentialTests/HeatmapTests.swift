// `elfload heatmap` on hand-written traces: one time axis from the program's start shared by
// every panel, a prefetched page on its fault's row, a mark no smaller than 4 pixels, panel
// titles naming image and segment, and an empty trace said rather than drawn.
import Foundation
import FoundationXML
import Testing

@Suite("Heatmap")
struct HeatmapTests {
  static let scratch = scratchDirectory("heatmap")
  static let header = "sequence,time_ns,address,image,segment,page,kind,tid,pager\n"

  /// (image, segment, page, time in ms, kind) rows, numbered in order.
  static func trace(_ rows: [(Int, Int, Int, Double, String)]) -> String {
    var text = header
    for (i, r) in rows.enumerated() {
      text +=
        "\(i + 1),\(Int(r.3 * 1e6)),0x\(String(0x40_0000 + r.2 * 4096, radix: 16)),\(r.0),\(r.1),\(r.2),\(r.4),7,signal\n"
    }
    return text
  }

  /// Draws `text` as a trace; the outcome and the SVG (nil when none was written).
  static func draw(_ name: String, _ text: String, time: Bool = false) -> (Outcome, String?) {
    let csv = "\(scratch)/\(name).csv"
    let svg = "\(scratch)/\(name).svg"
    try? FileManager.default.removeItem(atPath: svg)
    FileManager.default.createFile(atPath: csv, contents: Data(text.utf8))
    let outcome = run([Paths.elfload, "heatmap", csv, "-o", svg] + (time ? ["--time"] : []))
    return (outcome, try? String(contentsOfFile: svg, encoding: .utf8))
  }

  /// (class, x, y, width, height) of every page mark, in the order drawn.
  static func marks(_ svg: String) -> [(String, Double, Double, Double, Double)] {
    let regex = try! NSRegularExpression(
      pattern:
        "<rect class=\"(fault|prefetch)\" x=\"([0-9.]+)\" y=\"([0-9.]+)\" width=\"([0-9.]+)\" height=\"([0-9.]+)\""
    )
    return regex.matches(in: svg, range: NSRange(svg.startIndex..., in: svg)).map { m in
      func g(_ i: Int) -> String { String(svg[Range(m.range(at: i), in: svg)!]) }
      return (g(1), Double(g(2))!, Double(g(3))!, Double(g(4))!, Double(g(5))!)
    }
  }

  @Test("with --time every panel shares one axis from the program's start")
  func sharedTimeAxis() throws {
    // Program header 2: pages at 1 ms and 4 ms; program header 3: one page at 2 ms.
    let (outcome, svg) = Self.draw(
      "time", Self.trace([(0, 2, 0, 1, "fault"), (0, 3, 5, 2, "fault"), (0, 2, 1, 4, "fault")]), time: true)
    #expect(outcome.ending == .exited(0), "\(outcome)")
    let text = try #require(svg)
    #expect(XMLParser(data: Data(text.utf8)).parse())
    let m = Self.marks(text)
    try #require(m.count == 3)
    let (at1, at4, at2) = (m[0].2, m[1].2, m[2].2)  // panels are drawn in order: header 2, then 3
    let panelStep = 320.0  // panel height 260 + 60
    let plotTop = 97.0
    // 0 ms is the top of each panel, 4 ms (the trace's last) its bottom, in both panels.
    #expect(abs((at1 - plotTop) / (at4 - plotTop) - 0.25) < 0.01, "\(m)")
    #expect(abs((at2 - panelStep - plotTop) / (at4 - plotTop) - 0.5) < 0.01, "\(m)")
    #expect(text.components(separatedBy: ">0 ms<").count - 1 == 2)
    #expect(text.components(separatedBy: ">4 ms<").count - 1 == 2)
  }

  @Test("in order of faults, a prefetched page is on its fault's row, not a staircase")
  func prefetchOnItsFaultsRow() throws {
    let (outcome, svg) = Self.draw(
      "order",
      Self.trace([
        (0, 2, 0, 1, "fault"), (0, 2, 1, 1.01, "prefetch"), (0, 2, 2, 1.02, "prefetch"),
        (0, 2, 9, 2, "fault"),
        (0, 2, 10, 2.01, "prefetch"),
      ]))
    #expect(outcome.ending == .exited(0), "\(outcome)")
    let m = Self.marks(try #require(svg))
    try #require(m.count == 5)
    #expect(m[1].2 == m[0].2 && m[2].2 == m[0].2, "\(m)")
    #expect(m[4].2 == m[3].2 && m[3].2 > m[0].2, "\(m)")
  }

  @Test("a page of a large segment is still a mark of at least 4 by 4 pixels")
  func minimumMarkSize() throws {
    // 3000 pages wide, 400 faults deep: 0.3 by 0.65 pixels a page, unless held to the minimum.
    let rows = (0..<400).map { (0, 1, $0 * 7, Double($0) / 100, "fault") }
    let (outcome, svg) = Self.draw("large", Self.trace(rows + [(0, 1, 2999, 5, "fault")]))
    #expect(outcome.ending == .exited(0), "\(outcome)")
    let m = Self.marks(try #require(svg))
    #expect(m.count == 401)
    #expect(
      m.allSatisfy { $0.3 >= 4 && $0.4 >= 4 }, "smallest: \(m.map(\.3).min() ?? 0) x \(m.map(\.4).min() ?? 0)"
    )
    // The last page's mark stays inside the plot (80 + 800).
    #expect(m.allSatisfy { $0.1 + $0.3 <= 880.01 })
  }

  @Test("panel titles name the image and the segment")
  func panelTitles() throws {
    let (outcome, svg) = Self.draw(
      "titles", Self.trace([(0, 2, 0, 1, "fault"), (1, 4, 3, 2, "fault"), (1, 4, 4, 2.1, "prefetch")]))
    #expect(outcome.ending == .exited(0), "\(outcome)")
    let text = try #require(svg)
    #expect(
      text.contains(">image: program, segment: program header 2 — 1 pages mapped (1 faults, 0 prefetched)<"))
    #expect(
      text.contains(
        ">image: interpreter, segment: program header 4 — 2 pages mapped (1 faults, 1 prefetched)<"))
  }

  @Test("an empty trace is said, not drawn")
  func emptyTrace() {
    let (outcome, svg) = Self.draw("empty", Self.header)
    #expect(outcome.ending == .exited(0), "\(outcome)")
    #expect(svg == nil, "an SVG was written for an empty trace")
    #expect(outcome.stdout.contains("no pages in the trace"), "\(outcome)")
    #expect(outcome.stdout.contains("nothing written"), "\(outcome)")
  }
}
