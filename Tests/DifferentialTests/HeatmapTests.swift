// `elfload heatmap` on hand-written traces: one time axis from the program's start shared by
// every band, a prefetched page in its fault's column, a mark no smaller than 4 pixels, band
// titles naming image and segment (with the segment table of a format 2 trace: its type,
// permissions and size, and a page axis spanning the whole segment), bands as tall as their
// segments with ticks on their page axes, and an empty trace said rather than drawn. And the
// segment table elfload --trace writes, against the ELF files.
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
      func g(_ i: Int) -> String { Range(m.range(at: i), in: svg).map { String(svg[$0]) } ?? "" }
      // (A number that does not read as one is NaN: the expectations on it fail, nothing traps.)
      func n(_ i: Int) -> Double { Double(g(i)) ?? .nan }
      return (g(1), n(2), n(3), n(4), n(5))
    }
  }

  /// The plot's left and right edges, where the shared axis begins and ends.
  static let plotLeft = 80.0
  static let plotRight = 940.0

  /// (y, height) of every band's area, in order.
  /// Every number the pattern's first group matches in `svg`.
  static func numbers(_ svg: String, _ pattern: String) -> [Double] {
    let regex = try! NSRegularExpression(pattern: pattern)
    return regex.matches(in: svg, range: NSRange(svg.startIndex..., in: svg)).compactMap { m in
      Range(m.range(at: 1), in: svg).flatMap { Double(svg[$0]) }
    }
  }

  static func bands(_ svg: String) -> [(Double, Double)] {
    let regex = try! NSRegularExpression(
      pattern: "<rect class=\"band-area\" x=\"[0-9.]+\" y=\"([0-9.]+)\" width=\"[0-9.]+\" height=\"([0-9.]+)\"")
    return regex.matches(in: svg, range: NSRange(svg.startIndex..., in: svg)).map { m in
      func n(_ i: Int) -> Double { Range(m.range(at: i), in: svg).flatMap { Double(svg[$0]) } ?? .nan }
      return (n(1), n(2))
    }
  }

  /// The heatmap reads the columns it draws (sequence, time, image, segment, page, kind): a trace
  /// whose other fields are empty (address, thread, pager: trimmed by another tool) draws the same.
  @Test func emptyUnreadFields() {
    let rows = [(0, 2, 0, 0.5, "fault"), (0, 2, 3, 1.0, "prefetch"), (0, 3, 1, 2.0, "fault")]
    let full = Self.trace(rows)
    let trimmed = full.split(separator: "\n").enumerated().map { i, line in
      guard i > 0 else { return String(line) }
      var f = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
      f[2] = ""; f[7] = ""; f[8] = ""
      return f.joined(separator: ",")
    }.joined(separator: "\n") + "\n"
    let (drawn, svg) = Self.draw("unread-full", full)
    let (trimmedDrawn, trimmedSVG) = Self.draw("unread-trimmed", trimmed)
    #expect(drawn.ending == .exited(0) && trimmedDrawn.ending == .exited(0), "\(drawn)\n\(trimmedDrawn)")
    // (The title names the file drawn.)
    let same = trimmedSVG?.replacingOccurrences(of: "unread-trimmed", with: "unread-full")
    #expect(svg != nil && Self.marks(svg ?? "").count == 3 && same == svg, "\(trimmedDrawn)")
  }

  /// A segment table row that does not read (pages not a number) is named by its line number in
  /// the file, counted from 1, by both tools that read the table.
  @Test("a bad segment table row: heatmap and residency name its line, counted from 1")
  func badSegmentRowLine() {
    let table = "# elfload trace, format 2\n# image,segment,type,flags,pages,start,end,path\n"
      + "# 0,2,PT_LOAD,r-x,10,0x401000,0x40b000,/opt/p\n"
    let bad = "# 0,3,PT_LOAD,rw-,x,0x40b000,0x40c000,/opt/p"
    let trace = "\(Self.scratch)/bad-row.csv", residency = "\(Self.scratch)/bad-row-residency.csv"
    FileManager.default.createFile(
      atPath: trace, contents: Data((table + bad + "\nsequence,time_ns,address,image,segment,page,kind,tid,pager,why\n").utf8))
    FileManager.default.createFile(
      atPath: residency,
      contents: Data(("# elfload residency, format 2\n# image,segment,type,flags,pages,start,end,path\n" + bad
        + "\nstart,end,perms,resident_pages,total_pages,pages,name\n").utf8))
    let drawn = run([Paths.elfload, "heatmap", trace, "-o", trace + ".svg"])
    #expect(drawn.ending == .exited(64) && drawn.stderr.hasPrefix("Error: \(trace): line 4 is not a row of the segment table: \"\(bad)\"\n"), "\(drawn)")
    let pictured = run([Paths.elfload, "residency", residency, "-o", residency + ".svg"])
    #expect(pictured.ending == .exited(64) && pictured.stderr.hasPrefix("Error: \(residency): line 3 is not a row of the segment table: \"\(bad)\"\n"), "\(pictured)")
  }

  @Test("with --time every band shares one axis from the program's start")
  func sharedTimeAxis() throws {
    // Program header 2: pages at 1 ms and 4 ms; program header 3: one page at 2 ms.
    let (outcome, svg) = Self.draw(
      "time", Self.trace([(0, 2, 0, 1, "fault"), (0, 3, 5, 2, "fault"), (0, 2, 1, 4, "fault")]), time: true)
    #expect(outcome.ending == .exited(0), "\(outcome)")
    let text = try #require(svg)
    #expect(XMLParser(data: Data(text.utf8)).parse())
    let m = Self.marks(text)
    try #require(m.count == 3)
    let (at1, at4, at2) = (m[0].1, m[1].1, m[2].1)  // bands are drawn in order: header 2, then 3
    // 0 ms is the plot's left edge, 4 ms (the trace's last) its right, less a mark's width, in both bands.
    #expect(at4 + m[1].3 == Self.plotRight, "\(m)")
    #expect(abs((at1 - Self.plotLeft) / (at4 - Self.plotLeft) - 0.25) < 0.01, "\(m)")
    #expect(abs((at2 - Self.plotLeft) / (at4 - Self.plotLeft) - 0.5) < 0.01, "\(m)")
    // The axis labelled above the first band and under the last.
    #expect(text.components(separatedBy: ">0 ms<").count - 1 == 2)
    #expect(text.components(separatedBy: ">4 ms<").count - 1 == 2)
  }

  @Test("in order of faults, a prefetched page is in its fault's column, not a staircase")
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
    #expect(m[1].1 == m[0].1 && m[2].1 == m[0].1, "\(m)")
    #expect(m[4].1 == m[3].1 && m[3].1 > m[0].1, "\(m)")
    // Downwards, the page: page 9 below page 0 by 9 pages' height.
    #expect(m[1].2 > m[0].2 && abs((m[3].2 - m[0].2) - 9 * (m[1].2 - m[0].2)) < 0.2, "\(m)")
  }

  /// Between 6 px (few faults) and the 4 px minimum (more than 215), a mark is as wide as the
  /// plot shared by the faults: 860 px over 160 faults is 5.375 px, each fault's mark one width
  /// to the right of the one before. (The SVG's numbers have one decimal: within 0.05.)
  @Test("marks of 160 faults share the plot's width exactly")
  func markWidthShared() throws {
    let rows = (0..<160).map { (0, 1, $0, Double($0) / 100, "fault") }
    let (outcome, svg) = Self.draw("shared-width", Self.trace(rows))
    #expect(outcome.ending == .exited(0), "\(outcome)")
    let m = Self.marks(try #require(svg))
    try #require(m.count == 160)
    let width = (Self.plotRight - Self.plotLeft) / 160
    for (i, mark) in m.enumerated() {
      #expect(abs(mark.3 - width) <= 0.051, "mark \(i): width \(mark.3), expected \(width)")
      let x = Self.plotLeft + Double(i) / 159 * (Self.plotRight - Self.plotLeft - width)
      #expect(abs(mark.1 - x) <= 0.051, "mark \(i): x \(mark.1), expected \(x)")
    }
  }

  @Test("a page of a large segment is still a mark of at least 4 by 4 pixels")
  func minimumMarkSize() throws {
    // 3000 pages tall, 400 faults wide: 0.2 by 2 pixels a page, unless held to the minimum.
    let rows = (0..<400).map { (0, 1, $0 * 7, Double($0) / 100, "fault") }
    let (outcome, svg) = Self.draw("large", Self.trace(rows + [(0, 1, 2999, 5, "fault")]))
    #expect(outcome.ending == .exited(0), "\(outcome)")
    let text = try #require(svg)
    let m = Self.marks(text)
    #expect(m.count == 401)
    #expect(
      m.allSatisfy { $0.3 >= 4 && $0.4 >= 4 }, "smallest: \(m.map(\.3).min() ?? 0) x \(m.map(\.4).min() ?? 0)"
    )
    // The last page's and the last fault's marks stay inside the band.
    let band = try #require(Self.bands(text).first)
    #expect(m.allSatisfy { $0.1 + $0.3 <= Self.plotRight + 0.01 && $0.2 + $0.4 <= band.0 + band.1 + 0.01 })
  }

  /// A format 2 trace: its `# ` preamble, then the rows.
  static func trace2(_ segments: [String], _ rows: [(Int, Int, Int, Double, String)]) -> String {
    "# elfload trace, format 2\n# image,segment,type,flags,pages,start,end,path\n"
      + segments.map { "# \($0)\n" }.joined() + trace(rows)
  }

  @Test("with the segment table, titles name image, type, permissions and size, and a band spans the segment")
  func segmentTableTitlesAndSpan() throws {
    let (outcome, svg) = Self.draw(
      "table",
      Self.trace2(
        [
          "0,2,PT_LOAD,r-x,10,0x401000,0x40b000,/opt/a,b/prog",
          "1,3,PT_LOAD,rw-,40,0x7f0000001000,0x7f0000029000,/lib64/ld-linux-x86-64.so.2",
        ],
        [(0, 2, 0, 1, "fault"), (0, 2, 4, 2, "fault"), (1, 3, 1, 3, "fault"), (1, 3, 2, 3.1, "prefetch")]))
    #expect(outcome.ending == .exited(0), "\(outcome)")
    let text = try #require(svg)
    #expect(XMLParser(data: Data(text.utf8)).parse())
    #expect(text.contains(">program PT_LOAD 2 r-x, 10 pages — 2 pages mapped (2 faults, 0 prefetched)<"), "\(text)")
    #expect(text.contains("<title>/opt/a,b/prog</title>") && text.contains(">prog, 0x401000-0x40b000<"))
    #expect(
      text.contains(">interpreter PT_LOAD 3 rw-, 40 pages — 2 pages mapped (1 fault, 1 prefetched)<"))
    #expect(text.contains(">ld-linux-x86-64.so.2, 0x7f0000001000-0x7f0000029000<"))
    // Down a band: the segment's first page to its last, not to the highest page mapped (4, 2):
    // 50 pages in all, 4 pixels each (the largest a page is drawn), so 40 and 160 pixels.
    let bands = Self.bands(text)
    try #require(bands.count == 2)
    #expect(bands[0].1 == 40 && bands[1].1 == 160, "\(bands)")
    #expect(text.contains("as tall as the segment (4 px a page; at least 8 px)"), "\(text)")
    #expect(text.contains(">9</text>") && text.contains(">39</text>"))
    let m = Self.marks(text)
    try #require(m.count == 4)
    #expect(m[0].2 == bands[0].0 && m[0].4 == 4 && m[1].2 == bands[0].0 + 4 * 4, "\(m)")
    #expect(m[2].2 == bands[1].0 + 4 && m[3].2 == bands[1].0 + 8, "\(m)")
  }

  static func svgHeight(_ svg: String) -> Double? {
    guard let open = svg.range(of: "<svg "), let close = svg[open.upperBound...].firstIndex(of: ">") else { return nil }
    let tag = svg[open.upperBound..<close]
    guard let h = tag.range(of: " height=\"") else { return nil }
    return Double(tag[h.upperBound...].prefix { $0 != "\"" })
  }

  /// python3 -c pass's eight segments (program and interpreter) as a trace's table, with a few
  /// faults in each: the picture the issue found 1200 by 3650 pixels, every band alike.
  static let pythonLike: [(image: Int, segment: Int, flags: String, pages: Int)] = [
    (0, 2, "r--", 31), (0, 3, "r-x", 691), (0, 4, "r--", 627), (0, 5, "rw-", 389),
    (1, 0, "r--", 1), (1, 1, "r-x", 38), (1, 2, "r--", 10), (1, 3, "rw-", 4),
  ]

  @Test("bands as tall as their segments, ticks on every page axis, a readable picture of eight segments")
  func bandsBySize() throws {
    var start: UInt64 = 0x400000
    let table = Self.pythonLike.map { s -> String in
      defer { start += UInt64(s.pages) * 4096 }
      return "\(s.image),\(s.segment),PT_LOAD,\(s.flags),\(s.pages),0x\(String(start, radix: 16)),0x\(String(start + UInt64(s.pages) * 4096, radix: 16)),/usr/bin/python3"
    }
    var rows: [(Int, Int, Int, Double, String)] = []
    for s in Self.pythonLike { for k in 0..<3 { rows.append((s.image, s.segment, (s.pages - 1) * k / 2, Double(rows.count), "fault")) } }
    let (outcome, svg) = Self.draw("python-like", Self.trace2(table, rows))
    #expect(outcome.ending == .exited(0), "\(outcome)")
    let text = try #require(svg)
    #expect(XMLParser(data: Data(text.utf8)).parse())
    let bands = Self.bands(text)
    try #require(bands.count == 8)
    // One scale for all: 560 pixels for the 1791 pages, a band at least 8 pixels.
    let scale = 560.0 / 1791
    for (band, s) in zip(bands, Self.pythonLike) {
      #expect(abs(band.1 - max(Double(s.pages) * scale, 8)) < 0.06, "\(s): \(band)")
    }
    // A page's mark where its page is: the last page of the 691-page band at its bottom.
    let m = Self.marks(text)
    try #require(m.count == 24)
    #expect(abs(m[5].2 + m[5].4 - (bands[1].0 + bands[1].1)) < 0.06, "\(m[5]) in \(bands[1])")
    #expect(abs(m[4].2 - (bands[1].0 + 345 * bands[1].1 / 691)) < 0.06, "\(m[4]) in \(bands[1])")
    // Page ticks on the 691-page band: 0, every 100 pages and the last page, each where its page is.
    let band = try #require(text.components(separatedBy: "<g class=\"band\">").dropFirst(2).first)
    let tick = try NSRegularExpression(pattern: "<text class=\"page-label\" x=\"[0-9.]+\" y=\"([0-9.]+)\"[^>]*>([0-9]+)<")
    let ticks = tick.matches(in: band, range: NSRange(band.startIndex..., in: band)).map { m in
      (Range(m.range(at: 2), in: band).flatMap { Int(band[$0]) } ?? -1,
       Range(m.range(at: 1), in: band).flatMap { Double(band[$0]) } ?? .nan)
    }
    #expect(ticks.map(\.0) == [0, 100, 200, 300, 400, 500, 600, 690], "\(ticks)")
    for (page, y) in ticks {
      #expect(abs(y - 4 - (bands[1].0 + (Double(page) + 0.5) * bands[1].1 / 691)) < 0.06, "page \(page) at \(y)")
    }
    // Every band's labels: 0, each 100th page and the last (the hundredth before it dropped when
    // closer than the 24 pixels labels need); a band too short for two labels has 0 alone.
    let labels = text.components(separatedBy: "<g class=\"band\">").dropFirst().map { band in
      tick.matches(in: band, range: NSRange(band.startIndex..., in: band)).map { m in
        Range(m.range(at: 2), in: band).flatMap { Int(band[$0]) } ?? -1
      }
    }
    #expect(labels == [[0], [0, 100, 200, 300, 400, 500, 600, 690], [0, 100, 200, 300, 400, 500, 626],
                       [0, 100, 200, 300, 388], [0], [0], [0], [0]], "\(labels)")
    // The fault-number axis has round ticks too, above and below the bands.
    #expect(text.contains(">5</text>") && text.contains(">20</text>"))
    // Eight segments fit a screen or two: under 1000 pixels tall, where every band alike took 3650.
    let height = try #require(Self.svgHeight(text))
    #expect(height < 1000, "\(height)")
  }

  /// PT_LOAD program headers as readelf reads the file: (index, flags as r-x, vaddr, memsz),
  /// and the interpreter it requests.
  static func loads(_ path: String) throws -> (loads: [(Int, String, UInt64, UInt64)], interpreter: String?) {
    let (headers, interpreter) = try Readelf.programHeaders(path)
    return (headers.filter { $0.type == "LOAD" }.map { ($0.index, $0.flags, $0.vaddr, $0.memsz) }, interpreter)
  }

  /// elfload --trace's segment table says what readelf says of the program and its interpreter:
  /// a row per PT_LOAD with its index, permissions and extent (at the image's load bias, one per
  /// image: 0 for ET_EXEC), and every traced page falls in its segment's row.
  @Test("elfload --trace carries the segment table of the program and its interpreter", arguments: [Flavour.staticExec, .dynamic])
  func traceCarriesSegmentTable(_ flavour: Flavour) throws {
    let program = Paths.sample(flavour == .dynamic ? "hello" : "touch_pages", flavour)
    let csv = "\(Self.scratch)/real-\(flavour.rawValue).csv"
    let native = run([program])
    let loaded = run([Paths.elfload, "--trace", csv, "--mode", "demand", program])
    #expect(loaded == native, "\(loaded)")
    let text = try String(contentsOfFile: csv, encoding: .utf8)
    let lines = text.split(separator: "\n").map(String.init)
    try #require(lines.count > 3 && lines[0] == "# elfload trace, format 3", "\(lines.prefix(3))")
    #expect(lines[1] == "# image,segment,type,flags,pages,start,end,path")
    let table = lines.dropFirst(2).prefix { $0.hasPrefix("# ") }.map { $0.dropFirst(2).split(separator: ",").map(String.init) }
    let (programLoads, interpreterPath) = try Self.loads(program)
    var images = [(0, program, programLoads)]
    if let interpreterPath { images.append((1, interpreterPath, try Self.loads(interpreterPath).loads)) }
    #expect((flavour == .dynamic) == (interpreterPath != nil))
    for (image, path, loads) in images {
      let rows = table.filter { $0[at: 0] == "\(image)" }
      try #require(rows.count == loads.count && !rows.isEmpty, "image \(image): \(rows) against readelf's \(loads)")
      let start = try #require(rows[0][at: 5].flatMap { UInt64($0.dropFirst(2), radix: 16) }, "\(rows[0])")
      let bias = start &- (loads[0].2 & ~0xfff)
      #expect(flavour == .dynamic || bias == 0)
      for (row, (index, flags, vaddr, memsz)) in zip(rows, loads) {
        let start = (vaddr &+ bias) & ~0xfff
        let end = (vaddr &+ memsz &+ bias + 0xfff) & ~0xfff
        #expect(
          row == ["\(image)", "\(index)", "PT_LOAD", flags, "\((end - start) / 4096)", "0x" + String(start, radix: 16), "0x" + String(end, radix: 16), path],
          "\(row)")
      }
    }
    // Every page traced is inside its segment's row.
    let body = lines.drop { $0.hasPrefix("#") }.dropFirst()
    #expect(body.count > 20)
    for line in body {
      let f = line.split(separator: ",").map(String.init)
      try #require(f.count == 10, "\(line)")
      let row = try #require(table.first { $0[at: 0] == f[3] && $0[at: 1] == f[4] && $0.count == 8 }, "\(line)")
      let address = try #require(UInt64(f[2].dropFirst(2), radix: 16), "\(line)")
      let (start, page, pages) = (UInt64(row[5].dropFirst(2), radix: 16), UInt64(f[5]), UInt64(row[4]))
      #expect(start != nil && page != nil && address == (start ?? 0) + (page ?? 0) * 4096, "\(line)")
      #expect((page ?? .max) < (pages ?? 0), "\(line)")
    }
  }

  /// A real run's trace, drawn by fault number and by time: every mark where its CSV row puts it.
  /// Bands in (image, segment) order, a row's mark in its band's order; down a band, the page at
  /// the scale the band's height and its segment's pages (the table's) give; across, the fault's
  /// number (a prefetched page takes its fault's) or the time since the fork, from the left edge
  /// to the right edge less a mark's width.
  @Test(
    "a real trace drawn: every mark where its row says, by fault number and by time",
    arguments: [Policy.hybrid4, .hybridAuto] + Policy.uffd.filter { $0 == .hybrid4Uffd })
  func realTraceMarks(_ policy: Policy) throws {
    let program = Paths.sample("hello", .dynamic)
    let csv = "\(Self.scratch)/marks-\(policy.rawValue.replacingOccurrences(of: " ", with: "")).csv"
    let loaded = run([Paths.elfload] + policy.options + ["--trace", csv, program])
    #expect(loaded == run([program]), "\(loaded)")
    let lines = try String(contentsOfFile: csv, encoding: .utf8).split(separator: "\n").map(String.init)
    let table = lines.filter { $0.hasPrefix("# ") && $0.dropFirst(2).first?.isNumber == true }
      .map { $0.dropFirst(2).split(separator: ",").map(String.init) }
    let rows = lines.drop { $0.hasPrefix("#") }.dropFirst().map { $0.split(separator: ",").map(String.init) }
    try #require(rows.count > 10 && rows.allSatisfy { $0.count == 10 } && table.allSatisfy { $0.count == 8 })
    struct Row { var key: Int; var page: Int; var time: Double; var fault: Bool; var faultNumber: Int; var pages: Int }
    var faults = 0
    var parsed: [Row] = []
    for r in rows {
      let (image, segment, page, time) = (Int(r[3]) ?? -1, Int(r[4]) ?? -1, Int(r[5]) ?? -1, Double(r[1]) ?? .nan)
      if r[6] == "fault" { faults += 1 }
      let pages = table.first { $0[0] == r[3] && $0[1] == r[4] }.flatMap { Int($0[4]) } ?? -1
      parsed.append(Row(key: image * 100_000 + segment, page: page, time: time, fault: r[6] == "fault", faultNumber: max(faults, 1), pages: pages))
    }
    // Marks are drawn band by band, each band's rows in the trace's order.
    let ordered = parsed.enumerated().sorted { ($0.element.key, $0.offset) < ($1.element.key, $1.offset) }.map(\.element)
    let keys = Array(Set(parsed.map(\.key))).sorted()
    for byTime in [false, true] {
      let (outcome, svg) = Self.draw("marks-\(byTime)-\(policy.rawValue.replacingOccurrences(of: " ", with: ""))", lines.joined(separator: "\n") + "\n", time: byTime)
      #expect(outcome.ending == .exited(0), "\(outcome)")
      let text = try #require(svg)
      let bands = Self.bands(text)
      let marks = Self.marks(text)
      try #require(bands.count == keys.count && marks.count == ordered.count, "\(bands.count) bands, \(marks.count) marks")
      // The picture ends under its last band by the gap and the axis's labels and caption (44 px), and
      // nothing is drawn below it; the axis is captioned once.
      let last = try #require(bands.last)
      let height = try #require(Self.numbers(text, "<svg [^>]*height=\"([0-9.]+)\"").first)
      #expect(height == (last.0 + last.1 + 44).rounded(.down), "height \(height), last band \(last)")
      #expect(Self.numbers(text, " y[12]?=\"(-?[0-9.]+)\"").allSatisfy { $0 < height }, "something drawn below the picture's height \(height)")
      let caption = byTime ? ">time since the program started</text>" : ">fault number</text>"
      #expect(text.components(separatedBy: caption).count == 2, "the axis caption \(caption) not once")
      #expect(!text.contains("no pages in the trace"))
      let plotWidth = Self.plotRight - Self.plotLeft
      let span = byTime ? (parsed.map(\.time).max() ?? 1) : Double(max(faults - 1, 1))
      let levels = byTime ? Double(parsed.count) : Double(max(faults, 1))
      let width = max(min(plotWidth / levels, 6), 4)
      for (row, mark) in zip(ordered, marks) {
        let band = bands[keys.firstIndex(of: row.key) ?? 0]
        let perPage = band.1 / Double(row.pages)
        let height = max(perPage, 4)
        let y = min(band.0 + Double(row.page) * perPage, band.0 + band.1 - height)
        let across = byTime ? row.time : Double(row.faultNumber - 1)
        let x = Self.plotLeft + across / span * (plotWidth - width)
        #expect(mark.0 == (row.fault ? "fault" : "prefetch"), "\(row)")
        #expect(abs(mark.1 - x) <= 0.15 && abs(mark.3 - width) <= 0.1, "\(byTime ? "time" : "fault") \(row): mark at x \(mark.1) width \(mark.3), expected \(x) width \(width)")
        #expect(abs(mark.2 - y) <= 0.15 && abs(mark.4 - height) <= 0.1, "\(row): mark at y \(mark.2) height \(mark.4), expected \(y) height \(height) in \(band)")
      }
    }
  }

  @Test("a malformed row is refused with its line number in the file, preamble counted")
  func badRowLine() {
    let rows: [(Int, Int, Int, Double, String)] = [(0, 1, 0, 0.1, "fault"), (0, 1, 1, 0.2, "fault")]
    // Format 1: the header is line 1, the rows from line 2; the bad row is line 4.
    let plain = Self.trace(rows) + "3,300000,0x400000,0,1,zero,fault,7,signal\n"
    // Format 2: two preamble lines and two segment lines first, so the same row is line 8.
    let table = Self.trace2(["0,1,PT_LOAD,r-x,4,0x400000,0x404000,/p", "0,2,PT_LOAD,rw-,4,0x404000,0x408000,/p"], rows)
      + "3,300000,0x400000,0,1,zero,fault,7,signal\n"
    for (name, text, line) in [("bad-row-1", plain, 4), ("bad-row-2", table, 8)] {
      let (outcome, svg) = Self.draw(name, text)
      #expect(outcome.ending == .exited(64), "\(outcome)")
      #expect(outcome.stderr.contains("line \(line) is not a trace row: \"3,300000,0x400000,0,1,zero,fault,7,signal\""), "\(outcome)")
      #expect(svg == nil)
    }
  }

  @Test("an empty trace is said, not drawn")
  func emptyTrace() {
    let (outcome, svg) = Self.draw("empty", Self.header)
    #expect(outcome.ending == .exited(0), "\(outcome)")
    #expect(svg == nil, "an SVG was written for an empty trace")
    #expect(outcome.stdout.contains("no pages in the trace"), "\(outcome)")
    #expect(outcome.stdout.contains("nothing written"), "\(outcome)")
  }

  /// A file cut after its `# ` preamble: no header line, refused as a usage error (64), never a
  /// crash; the same for residency's files, read by the same preamble reader.
  @Test("a file of only the preamble is refused, not a crash: heatmap and residency")
  func onlyPreamble() {
    let dir = scratchDirectory("only-preamble")
    let table = "# image,segment,type,flags,pages,start,end,path\n# 0,2,PT_LOAD,r-x,10,0x401000,0x40b000,/opt/prog\n"
    for (tool, format, what) in [("heatmap", "# elfload trace, format 3\n", "not an elfload trace"),
                                 ("residency", "# elfload residency, format 2\n", "not an elfload --residency file")] {
      let input = "\(dir)/\(tool).csv"
      FileManager.default.createFile(atPath: input, contents: Data((format + table).utf8))
      let outcome = run([Paths.elfload, tool, input, "-o", "\(dir)/\(tool).svg"])
      #expect(outcome.ending == .exited(64) && outcome.stdout.isEmpty, "\(tool): \(outcome)")
      #expect(outcome.stderr.hasPrefix("Error: \(input): \(what): the first line is \"\", expected "), "\(tool): \(outcome)")
      #expect(!FileManager.default.fileExists(atPath: "\(dir)/\(tool).svg"), "\(tool)")
    }
  }
}

/// The drawing subcommands write SVG only: a file named for another format is refused before
/// anything is written, and their usage errors -- found while parsing or while running -- show
/// the subcommand's usage, not the launcher's.
@Suite("Drawing subcommands: output format and usage errors")
struct DrawingUsageTests {
  static let scratch = scratchDirectory("drawing-usage")

  /// The first line of stderr, and the usage lines that follow "Usage:".
  static func refusal(_ outcome: Outcome) -> (first: String, usage: String) {
    let lines = outcome.stderr.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    let usage = lines.drop { !$0.hasPrefix("Usage: ") }.prefix { !$0.hasPrefix("  See ") }.joined(separator: "\n")
    return (lines.first ?? "", usage)
  }

  @Test("-o FILE.png is refused in one line with the subcommand's usage, and no file is written", arguments: ["heatmap", "residency"])
  func pngRefused(_ subcommand: String) throws {
    let input = "\(Self.scratch)/\(subcommand).csv"
    let header = subcommand == "heatmap" ? HeatmapTests.header + "1,5,0x400000,0,2,0,fault,7,signal\n" : "start,end,perms,resident_pages,total_pages,pages,name\n0x400000,0x401000,r--p,1,1,#,/prog\n"
    FileManager.default.createFile(atPath: input, contents: Data(header.utf8))
    for name in ["out.png", "out.PDF", "out.svg.tmp"] {
      let output = "\(Self.scratch)/\(name)"
      let outcome = run([Paths.elfload, subcommand, input, "-o", output])
      #expect(outcome.ending == .exited(64), "\(outcome)")
      let (first, usage) = Self.refusal(outcome)
      #expect(first == "Error: \(output): elfload \(subcommand) writes SVG only: name the file .svg (rsvg-convert FILE.svg -o FILE.png converts it)", "\(outcome)")
      #expect(usage.hasPrefix("Usage: elfload \(subcommand) "), "\(outcome)")
      #expect(outcome.stdout == "")
      #expect(!FileManager.default.fileExists(atPath: output))
    }
    // An .svg (any case) or a name without an extension is written.
    for name in ["out.svg", "out.SVG", "out"] {
      let outcome = run([Paths.elfload, subcommand, input, "-o", "\(Self.scratch)/\(name)"])
      #expect(outcome.ending == .exited(0), "\(name): \(outcome)")
    }
  }

  @Test("an input that cannot be read is a usage error of the subcommand, not of the launcher", arguments: ["heatmap", "residency"])
  func unreadableInput(_ subcommand: String) {
    let missing = "\(Self.scratch)/no-such-file.csv"
    let outcome = run([Paths.elfload, subcommand, missing, "-o", "\(Self.scratch)/x.svg"])
    #expect(outcome.ending == .exited(64), "\(outcome)")
    let (first, usage) = Self.refusal(outcome)
    #expect(first == "Error: \(missing): cannot read it", "\(outcome)")
    #expect(usage.hasPrefix("Usage: elfload \(subcommand) "), "\(outcome)")
    #expect(!usage.contains("--mode"), "the launcher's usage: \(outcome)")
    #expect(outcome.stderr.contains("  See 'elfload \(subcommand) --help' for more information.\n"), "\(outcome)")
  }
}
