// `elfload residency FILE -o FILE.svg`, read back: the strips' cells decoded from their
// rectangles must give the pages of the CSV they were drawn from -- a segment's pieces merged into
// one strip however a pager split it, each strip as long as it has pages, named by the segment
// table, and elfload's own memory out of the strips and the totals.
import Foundation
import Testing

@Suite("Residency pictures")
struct ResidencyPictureTests {
  static let scratch = scratchDirectory("residency-picture")

  /// A strip as drawn: its title, and its cells decoded (in cells; a cell is a page unless the
  /// title says otherwise): per class, the cell numbers; the cells its outline spans; and where
  /// its first line of cells is drawn (px from the picture's top).
  struct DrawnStrip {
    var title: String
    var cells: [String: [Int]]
    var length: Int
    var top: Double
  }

  static let left = 20.0
  static let cell = 7.0
  static let pitch = 9.0
  static let perLine = 128

  static func strips(_ svg: String) throws -> [DrawnStrip] {
    let group = try NSRegularExpression(pattern: "<g class=\"strip\">(.*?)</g>", options: [.dotMatchesLineSeparators])
    let title = try NSRegularExpression(
      pattern: "class=\"strip-title\"[^>]*><title>[^<]*</title>([^<]*)<tspan[^>]*>([^<]*)</tspan>")
    let rect = try NSRegularExpression(
      pattern: "<rect class=\"([a-z]+)\" x=\"([0-9.]+)\" y=\"([0-9.]+)\" width=\"([0-9.]+)\"")
    return group.matches(in: svg, range: NSRange(svg.startIndex..., in: svg)).map { m in
      let body = String(svg[Range(m.range(at: 1), in: svg)!])
      func groups(_ r: NSTextCheckingResult) -> [String] {
        (1..<r.numberOfRanges).map { String(body[Range(r.range(at: $0), in: body)!]) }
      }
      let t = title.firstMatch(in: body, range: NSRange(body.startIndex..., in: body)).map(groups) ?? ["", ""]
      let rects = rect.matches(in: body, range: NSRange(body.startIndex..., in: body)).map(groups)
      // (A number that does not read as one is NaN: the expectations on it fail, nothing traps.)
      func n(_ text: String) -> Double { Double(text) ?? .nan }
      let top = rects.filter { $0[0] == "line" }.map { n($0[2]) }.min() ?? 0
      var cells: [String: [Int]] = [:]
      var length = 0
      for r in rects {
        let (x, y, w) = (n(r[1]), n(r[2]), n(r[3]))
        guard x.isFinite, y.isFinite, w.isFinite, w >= 0, x >= left else {
          Issue.record("a rectangle that is not a strip's: \(r)")
          continue
        }
        let first = Int(((y - top) / pitch).rounded()) * perLine + Int(((x - left) / cell).rounded())
        let count = Int((w / cell).rounded())
        // A line's cells are drawn on it: a run of one kind goes on at the next line's start.
        guard first % perLine + count <= perLine else {
          Issue.record("a rectangle past its line's end (\(perLine) cells): \(r)")
          continue
        }
        if r[0] == "line" { length += count } else { cells[r[0], default: []] += Array(first..<first + count) }
      }
      return DrawnStrip(title: t[0] + " | " + t[1], cells: cells, length: length, top: top)
    }
  }

  /// Draws `csv` and returns the outcome and the SVG.
  static func draw(_ name: String, _ csv: String) -> (Outcome, String) {
    let input = "\(scratch)/\(name).csv"
    let output = "\(scratch)/\(name).svg"
    FileManager.default.createFile(atPath: input, contents: Data(csv.utf8))
    let outcome = run([Paths.elfload, "residency", input, "-o", output])
    return (outcome, (try? String(contentsOfFile: output, encoding: .utf8)) ?? "")
  }

  static func pictured(_ pattern: [(Character, Int)]) -> String {
    pattern.map { String(repeating: $0.0, count: $0.1) }.joined()
  }

  @Test("a hand-made file: segments merged and named, strips as long as their pages, elfload's memory left out")
  func handMade() throws {
    let table = """
      # elfload residency, format 2
      # image,segment,type,flags,pages,start,end,path
      # 0,2,PT_LOAD,r-x,3,0x401000,0x404000,/opt/a;b/prog
      # 0,3,PT_LOAD,rw-,300,0x404000,0x530000,/opt/a;b/prog
      # 1,1,PT_LOAD,r-x,5,0x7f0000001000,0x7f0000006000,/lib64/ld-linux-x86-64.so.2

      """
    let libc = Self.pictured([("#", 40), (".", 100), ("#", 2), (".", 200)])
    let rows = [
      // The program's code, whole; its data and bss split by the signal pager into three pieces.
      "0x401000,0x404000,r-xp,2,3,#.#,/opt/a;b/prog",
      "0x404000,0x40e000,rw-p,10,10,\(String(repeating: "#", count: 10)),/opt/a;b/prog",
      "0x40e000,0x40f000,---p,0,1,.,",
      "0x40f000,0x530000,---p,0,289,,",
      // The interpreter's code as the userfaultfd pager leaves it: anonymous.
      "0x7f0000001000,0x7f0000006000,r-xp,3,5,##..#,",
      "0x7f0000010000,0x7f0000166000,r-xp,42,342,\(libc),/usr/lib/libc.so.6",
      // Too large to picture, partly resident: counted.
      "0x7f0000200000,0x7f0001588000,rw-p,100,5000,,[heap]",
      "0x7f1000000000,0x7f1004004000,rw-s,2,16388,,[elfload: shared with the supervisor]",
      "0x7f1005000000,0x7f1005001000,r-xp,1,1,#,[elfload: trampoline]",
    ]
    let (outcome, svg) = Self.draw(
      "hand-made", table + "start,end,perms,resident_pages,total_pages,pages,name\n" + rows.joined(separator: "\n") + "\n")
    #expect(outcome.ending == .exited(0), "\(outcome)")
    #expect(
      outcome.stdout.hasSuffix(": 5 strips from 7 mappings, 157 pages resident; elfload's own 2 mappings left out\n"),
      "\(outcome)")
    #expect(
      svg.contains(
        ">157 of 5650 pages resident when the program ended, in 7 mappings; elfload's own memory left out: 16389 pages (3 resident) in 2 mappings<"
      ))
    let strips = try Self.strips(svg)
    #expect(
      strips.map(\.title) == [
        "program PT_LOAD 2 r-x: 3 pages, 2 resident | prog, 0x401000-0x404000",
        "program PT_LOAD 3 rw-: 300 pages, 10 resident | prog, 0x404000-0x530000, 3 mappings",
        "interpreter PT_LOAD 1 r-x: 5 pages, 3 resident | ld-linux-x86-64.so.2, 0x7f0000001000-0x7f0000006000",
        "/usr/lib/libc.so.6 r-xp: 342 pages, 42 resident | 0x7f0000010000-0x7f0000166000",
        "[heap] rw-p: 5000 pages, 100 resident (counted only: too large to picture page by page) (a cell: 2 pages, as dark as its resident share) | 0x7f0000200000-0x7f0001588000",
      ], "\(strips.map(\.title))")
    try #require(strips.count == 5)
    // Each strip as long as its segment or mapping: a cell a page (the heap: a cell 2 pages).
    #expect(strips.map(\.length) == [3, 300, 5, 342, 2500])
    // A line of 128 cells at a time, each outlined once: 1, 3, 1, 3 and 20 lines; the picture as
    // tall as its header (86 px) and, per strip, its title (18), its lines (9 each) and a gap (10).
    #expect(svg.components(separatedBy: "<rect class=\"line\"").count - 1 == 28)
    #expect(svg.contains("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"936\" height=\"\(86 + 5 * 28 + 28 * 9)\" "), "\(svg.prefix(200))")
    // Each strip's lines under its title, below the strips before it: 86 + 18, then each strip's
    // title, lines and gap further down (37 px for a strip of one line, 55 for three).
    #expect(strips.map(\.top) == [104, 141, 196, 233, 288], "\(strips.map(\.top))")
    // The cells, from the CSV's pages.
    #expect(strips[0].cells["resident"] == [0, 2] && strips[0].cells["absent"] == [1])
    #expect(strips[1].cells["resident"] == Array(0..<10) && strips[1].cells["absent"] == Array(10..<300))
    #expect(strips[2].cells["resident"] == [0, 1, 4] && strips[2].cells["absent"] == [2, 3])
    #expect(strips[3].cells["resident"] == Array(0..<40) + [140, 141])
    #expect(strips[3].cells["absent"] == Array(40..<140) + Array(142..<342))
    #expect(strips[4].cells["unknown"] == Array(0..<2500))
  }

  /// A strip is at most 32 lines of 128 cells: a mapping of more than 4096 pages gets a cell for
  /// several pages, as few as fit (the pages divided by 4096, rounded up), at the edges too.
  @Test("a large mapping: a cell for as few pages as fit 32 lines, at 4096, 4097 and 8193 pages")
  func cellsOfLargeMappings() throws {
    let sizes = [4096, 4097, 8192, 8193]
    var start: UInt64 = 0x7f00_0000_0000
    let rows = sizes.enumerated().map { i, pages -> String in
      defer { start += UInt64(pages + 16) * 4096 }
      let end = start + UInt64(pages) * 4096
      return "0x\(String(start, radix: 16)),0x\(String(end, radix: 16)),rw-p,\(pages / 2),\(pages),,[anon:m\(i)]"
    }
    let (outcome, svg) = Self.draw("large", "start,end,perms,resident_pages,total_pages,pages,name\n" + rows.joined(separator: "\n") + "\n")
    #expect(outcome.ending == .exited(0), "\(outcome)")
    let strips = try Self.strips(svg)
    try #require(strips.count == 4, "\(strips.map(\.title))")
    let perCell = [1, 2, 2, 3]
    for (strip, (pages, per)) in zip(strips, zip(sizes, perCell)) {
      #expect(strip.length == (pages + per - 1) / per, "\(pages) pages: \(strip.title)")
      #expect(strip.title.contains(per == 1 ? "resident (counted only" : "(a cell: \(per) pages,") == true, "\(strip.title)")
      #expect(per > 1 || !strip.title.contains("(a cell:"), "\(strip.title)")
    }
  }

  /// A mapping only counted (too large to picture, partly resident) that lies inside its segment
  /// after another: its cells are the segment's from its own first page on, shaded as unknown.
  @Test("a counted-only mapping after a pictured one in a segment: its cells where its pages are")
  func countedAfterPictured() throws {
    let start: UInt64 = 0x500000
    func hex(_ page: UInt64) -> String { "0x" + String(start + page * 4096, radix: 16) }
    let csv = """
      # elfload residency, format 2
      # image,segment,type,flags,pages,start,end,path
      # 0,3,PT_LOAD,rw-,6000,\(hex(0)),\(hex(6000)),/opt/prog
      start,end,perms,resident_pages,total_pages,pages,name
      \(hex(0)),\(hex(1000)),rw-p,10,1000,\(Self.pictured([("#", 10), (".", 990)])),/opt/prog
      \(hex(1000)),\(hex(6000)),rw-p,100,5000,,

      """
    let (outcome, svg) = Self.draw("counted-after-pictured", csv)
    #expect(outcome.ending == .exited(0) && outcome.stdout.hasSuffix(": 1 strip from 2 mappings, 110 pages resident\n"), "\(outcome)")
    let strips = try Self.strips(svg)
    try #require(strips.count == 1, "\(strips.map(\.title))")
    #expect(strips[0].title.hasPrefix("program PT_LOAD 3 rw-: 6000 pages, 110 resident (5000 of the pages counted only"), "\(strips[0].title)")
    // A cell is 2 pages: the picture's 10 resident pages are cells 0-4, the counted pages 500-2999.
    #expect(strips[0].length == 3000)
    #expect(strips[0].cells["resident"] == Array(0..<5) && strips[0].cells["absent"] == Array(5..<500), "\(strips[0].cells.mapValues(\.count))")
    #expect(strips[0].cells["unknown"] == Array(500..<3000), "\(strips[0].cells.mapValues(\.count))")
  }

  /// Every strip of a real run's picture against the CSV it was drawn from: a strip spans the
  /// range its title names, a cell a page; a page is what the CSV's row holding it says (`#`
  /// resident, `.` not; a row without a picture all resident or all not when its counts say so,
  /// else counted only), blank when no row holds it -- and a page two segments share is drawn in
  /// the later one's strip only, as the kernel maps it.
  @Test(
    "a dynamic program's picture: every strip's cells are its range's pages in the CSV",
    arguments: [Policy.eager, .demand] + Policy.uffd.prefix(1))
  func everyStripFromItsRows(_ policy: Policy) throws {
    let program = Paths.sample("hello", .dynamic)
    let csv = "\(Self.scratch)/every-\(policy.rawValue.replacingOccurrences(of: " ", with: "")).csv"
    #expect(run([Paths.elfload] + policy.options + ["--residency", csv, program]).ending == .exited(0))
    let lines = try String(contentsOfFile: csv, encoding: .utf8).split(separator: "\n").map(String.init)
    let segments = lines.filter { $0.hasPrefix("# ") && $0.dropFirst(2).first?.isNumber == true }
      .map { $0.dropFirst(2).split(separator: ",").map(String.init) }
      .compactMap { f -> (UInt64, UInt64)? in
        guard f.count == 8, let s = UInt64(f[5].dropFirst(2), radix: 16), let e = UInt64(f[6].dropFirst(2), radix: 16) else { return nil }
        return (s, e)
      }
    let rows = lines.drop { $0.hasPrefix("#") }.dropFirst()
      .map { $0.split(separator: ",", maxSplits: 6, omittingEmptySubsequences: false).map(String.init) }
    try #require(rows.allSatisfy { $0.count == 7 } && !segments.isEmpty, "\(lines.prefix(12))")
    /// What the CSV says of the page at `address`: "resident", "absent", "unknown", or nil (no row, or elfload's own).
    func state(_ address: UInt64) -> String? {
      for r in rows where !r[6].hasPrefix("[elfload: ") {
        guard let start = UInt64(r[0].dropFirst(2), radix: 16), let end = UInt64(r[1].dropFirst(2), radix: 16),
          start <= address, address < end, let resident = Int(r[3]), let total = Int(r[4])
        else { continue }
        if !r[5].isEmpty {
          let k = Int((address - start) / 4096)
          return Array(r[5])[at: k] == "#" ? "resident" : "absent"
        }
        return resident == 0 ? "absent" : resident == total ? "resident" : "unknown"
      }
      return nil
    }
    let svgPath = csv.replacingOccurrences(of: ".csv", with: ".svg")
    let drawn = run([Paths.elfload, "residency", csv, "-o", svgPath])
    #expect(drawn.ending == .exited(0), "\(drawn)")
    let strips = try Self.strips(try String(contentsOfFile: svgPath, encoding: .utf8))
    #expect(strips.count > 8, "\(strips.map(\.title))")
    let range = try NSRegularExpression(pattern: "0x([0-9a-f]+)-0x([0-9a-f]+)")
    for strip in strips {
      let detail = strip.title.components(separatedBy: " | ").last ?? ""
      let m = try #require(range.firstMatch(in: detail, range: NSRange(detail.startIndex..., in: detail)), "\(strip.title)")
      let start = try #require(Range(m.range(at: 1), in: detail).flatMap { UInt64(detail[$0], radix: 16) })
      let end = try #require(Range(m.range(at: 2), in: detail).flatMap { UInt64(detail[$0], radix: 16) })
      let isSegment = strip.title.hasPrefix("program ") || strip.title.hasPrefix("interpreter ")
      let owner = segments.lastIndex { $0.0 == start && $0.1 == end }
      var expected: [String: [Int]] = [:]
      for k in 0..<Int((end - start) / 4096) {
        let address = start + UInt64(k) * 4096
        // A later segment sharing this page draws it; here it is blank.
        if isSegment, let owner, segments.indices.contains(where: { $0 > owner && segments[$0].0 <= address && address < segments[$0].1 }) {
          continue
        }
        if let s = state(address) { expected[s, default: []].append(k) }
      }
      #expect(strip.length == Int((end - start) / 4096), "\(strip.title): \(strip.length) cells")
      for kind in ["resident", "absent", "unknown"] {
        #expect((strip.cells[kind] ?? []) == (expected[kind] ?? []), "\(strip.title): \(kind) cells \(strip.cells[kind] ?? []), the CSV's \(expected[kind] ?? [])")
      }
    }
  }

  /// A real run's picture against its own CSV: the program's bss is one strip whatever the pager,
  /// its cells the CSV's pages, and the picture holds as many pages as a native run's.
  @Test(
    "touch_pages under every policy: one strip for its bss, its cells the CSV's, as many pages as natively",
    arguments: Policy.allCases)
  func realRun(_ policy: Policy) throws {
    let program = Paths.sample("touch_pages", .staticExec)
    let csv = "\(Self.scratch)/touch-\(policy.rawValue.replacingOccurrences(of: " ", with: "")).csv"
    let loaded = run([Paths.elfload] + policy.options + ["--residency", csv, program])
    #expect(loaded.ending == .exited(0), "\(loaded)")
    let rows = try ResidencyTests.rows(csv)
    let svgPath = csv.replacingOccurrences(of: ".csv", with: ".svg")
    let drawn = run([Paths.elfload, "residency", csv, "-o", svgPath])
    #expect(drawn.ending == .exited(0), "\(drawn)")
    let strips = try Self.strips(try String(contentsOfFile: svgPath, encoding: .utf8))
    // The bss segment, [0x402000, 0x4ca000): however many mappings, one strip, named.
    let bss = strips.filter { $0.title.contains("0x402000-0x4ca000") }
    try #require(bss.count == 1, "\(strips.map(\.title))")
    #expect(bss[0].title.hasPrefix("program PT_LOAD 2 rw-: 200 pages, "), "\(bss[0].title)")
    let pages = Array(rows.filter { $0.start >= 0x402000 && $0.start < 0x4ca000 }.map(\.pages).joined())
    #expect(bss[0].length == 200)
    #expect(bss[0].cells["resident"] ?? [] == pages.indices.filter { pages[$0] == "#" })
    // No strip of the program is anonymous (the userfaultfd pager's mappings have no file name), none elfload's.
    #expect(strips.filter { $0.title.hasPrefix("program PT_LOAD") }.count == 3, "\(strips.map(\.title))")
    #expect(!strips.contains { $0.title.hasPrefix("[anonymous]") || $0.title.contains("[elfload") }, "\(strips.map(\.title))")
    // As many pages as the native run's picture: elfload's own are not counted.
    let native = "\(Self.scratch)/touch-native-\(policy.rawValue.replacingOccurrences(of: " ", with: "")).csv"
    #expect(run([Paths.elfload, "residency", "--native", native, "--", program]).ending == .exited(0))
    let nativeSVG = native.replacingOccurrences(of: ".csv", with: ".svg")
    #expect(run([Paths.elfload, "residency", native, "-o", nativeSVG]).ending == .exited(0))
    let nativeStrips = try Self.strips(try String(contentsOfFile: nativeSVG, encoding: .utf8))
    #expect(strips.map(\.length).reduce(0, +) == nativeStrips.map(\.length).reduce(0, +))
    #expect(nativeStrips.filter { $0.title.hasPrefix("program PT_LOAD") }.map(\.length) == [1, 1, 200])
  }
}
