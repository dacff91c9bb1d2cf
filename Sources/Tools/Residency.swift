// `elfload residency FILE -o FILE.svg`: which pages of the program's address space were resident
// when it ended (elfload --residency FILE, or a native run's: --native FILE -- PROGRAM ARGS): a
// strip per segment of the program and its interpreter (however many mappings a pager split it
// into) and per other mapping, a cell per page, so that each strip is as long as it is large.
import ArgumentParser
import ElfloadCore

/// One row of a --residency CSV.
struct ResidencyRow {
  var start: UInt64
  var end: UInt64
  var perms: String
  var resident: Int
  var total: Int
  /// One character per page ('#' resident, '.' not), or empty for a mapping too large to picture.
  var pages: [UInt8]
  var name: String
}

/// A --residency file: its rows, and the segment table of its preamble (none in format 1).
struct ResidencyFile {
  var rows: [ResidencyRow]
  var segments: [TraceSegment]
}

enum ResidencyError: Error, CustomStringConvertible {
  case badHeader(String)
  case badRow(line: Int, String)
  case badSegment(line: Int, String)

  var description: String {
    switch self {
    case .badHeader(let header):
      return
        "not an elfload --residency file: the first line is \"\(header)\", expected \(ResidencyFormat.columns.joined(separator: ","))"
    case .badRow(let line, let text): return "line \(line) is not a residency row: \"\(text)\""
    case .badSegment(let line, let text): return "line \(line) is not a row of the segment table: \"\(text)\""
    }
  }
}

/// Parses a --residency CSV: format 2 (a `# ` preamble with the segment table, then the rows)
/// or format 1 (the rows alone).
func parseResidency(_ text: [UInt8]) throws(ResidencyError) -> ResidencyFile {
  let (lines, segments, preamble): ([String], [TraceSegment], Int)
  switch splitPreamble(text) {
  case .success(let split): (lines, segments, preamble) = split
  case .failure(let bad): throw .badSegment(line: bad.line, bad.text)
  }
  guard let header = lines.first, header == ResidencyFormat.columns.joined(separator: ",") else {
    throw .badHeader(lines.first ?? "")
  }
  func hex(_ s: Substring) -> UInt64? { s.hasPrefix("0x") ? UInt64(s.dropFirst(2), radix: 16) : nil }
  var rows: [ResidencyRow] = []
  for (index, line) in lines.dropFirst().enumerated() {
    let f = line.split(separator: ",", maxSplits: 6, omittingEmptySubsequences: false)
    guard f.count == 7, let start = hex(f[0]), let end = hex(f[1]), end > start, let resident = Int(f[3]),
      let total = Int(f[4]), UInt64(total) == (end - start) / pageSize, (0...total).contains(resident),
      f[5].isEmpty || f[5].utf8.count == total
    else { throw .badRow(line: preamble + index + 2, line) }
    rows.append(
      ResidencyRow(
        start: start, end: end, perms: String(f[2]), resident: resident, total: total, pages: Array(f[5].utf8),
        name: String(f[6])))
  }
  return ResidencyFile(rows: rows, segments: segments)
}

/// What a page of a strip was when the program ended.
enum PageState: Equatable {
  case resident, absent
  /// In a mapping too large to be pictured page by page, only counted (and neither all nor none resident).
  case unknown
  /// In the segment, but in no mapping (the program unmapped it).
  case unmapped
}

/// A segment of the program or its interpreter (its pieces merged), or another mapping.
struct Strip {
  var title: String
  /// Where it is (in grey after the title), and its file's whole path (its tooltip).
  var detail: String
  var path: String
  var start: UInt64
  var states: [PageState]
  /// Of the .unknown pages, how many are resident (the counts of the mappings not pictured).
  var unknownResident = 0
  var mappings = 0

  var resident: Int { states.filter { $0 == .resident }.count + unknownResident }
  var mapped: Int { states.filter { $0 != .unmapped }.count }
}

/// The strips of a residency file, and what of it is elfload's own memory (left out).
struct ResidencyPicture {
  var strips: [Strip]
  var own: (pages: Int, resident: Int, mappings: Int)
  var mappings: Int
}

/// A row's pages one by one: from its picture, or from its count when that says it (none or all
/// resident); nil when only the count is known.
func pageStates(_ row: ResidencyRow) -> [PageState]? {
  if !row.pages.isEmpty { return row.pages.map { $0 == UInt8(ascii: "#") ? .resident : .absent } }
  if row.resident == 0 { return Array(repeating: .absent, count: row.total) }
  if row.resident == row.total { return Array(repeating: .resident, count: row.total) }
  return nil
}

/// The strips: every page of a mapping in the segment table goes to its segment's strip (to the
/// later of two segments sharing a page, as the kernel maps them in order); the rest of each
/// mapping is a strip of its own; elfload's own memory is left out, and counted.
func residencyPicture(_ file: ResidencyFile) -> ResidencyPicture {
  let segments = file.segments.filter { $0.end > $0.start }
  var segmentStrips = segments.map { segment in
    let name = segment.path.split(separator: "/").last.map(String.init) ?? segment.path
    return Strip(
      title: "\(segment.imageName) \(segment.type) \(segment.segment) \(segment.flags)",
      detail: "\(name), 0x\(String(segment.start, radix: 16))-0x\(String(segment.end, radix: 16))", path: segment.path,
      start: segment.start, states: Array(repeating: .unmapped, count: Int((segment.end - segment.start) / pageSize)))
  }
  var others: [Strip] = []
  var own = (pages: 0, resident: 0, mappings: 0)
  var mappings = 0
  func alone(_ row: ResidencyRow, from start: UInt64, _ states: [PageState]?) -> Strip {
    let end = start + UInt64(states?.count ?? row.total) * pageSize
    return Strip(
      title: "\(row.name.isEmpty ? "[anonymous]" : row.name) \(row.perms)",
      detail: "0x\(String(start, radix: 16))-0x\(String(end, radix: 16))", path: row.name, start: start,
      states: states ?? Array(repeating: .unknown, count: row.total), unknownResident: states == nil ? row.resident : 0,
      mappings: 1)
  }
  for row in file.rows {
    if row.name.hasPrefix(ResidencyFormat.ownMemoryPrefix) {
      own.pages += row.total
      own.resident += row.resident
      own.mappings += 1
      continue
    }
    mappings += 1
    let overlapping = segments.indices.filter { segments[$0].start < row.end && row.start < segments[$0].end }
    guard !overlapping.isEmpty else {
      others.append(alone(row, from: row.start, pageStates(row)))
      continue
    }
    guard let states = pageStates(row) else {
      // Only counted: it can join a segment only if it lies wholly inside one.
      if overlapping.count == 1, let i = overlapping.first, segments[i].start <= row.start, row.end <= segments[i].end {
        let first = Int((row.start - segments[i].start) / pageSize)
        for p in 0..<row.total { segmentStrips[i].states[first + p] = .unknown }
        segmentStrips[i].unknownResident += row.resident
        segmentStrips[i].mappings += 1
      } else {
        others.append(alone(row, from: row.start, nil))
      }
      continue
    }
    var joined = Set<Int>()
    var outside: (start: UInt64, states: [PageState])?
    for (p, state) in states.enumerated() {
      let address = row.start + UInt64(p) * pageSize
      if let i = overlapping.last(where: { segments[$0].start <= address && address < segments[$0].end }) {
        segmentStrips[i].states[Int((address - segments[i].start) / pageSize)] = state
        joined.insert(i)
        if let run = outside { others.append(alone(row, from: run.start, run.states)) }
        outside = nil
      } else {
        outside = (outside?.start ?? address, (outside?.states ?? []) + [state])
      }
    }
    if let run = outside { others.append(alone(row, from: run.start, run.states)) }
    for i in joined { segmentStrips[i].mappings += 1 }
  }
  for i in segmentStrips.indices {
    let n = segmentStrips[i].mappings
    segmentStrips[i].detail += n == 1 ? "" : n == 0 ? ", not mapped when the program ended" : ", \(n) mappings"
  }
  return ResidencyPicture(strips: (segmentStrips + others).sorted { $0.start < $1.start }, own: own, mappings: mappings)
}

/// How a strip is drawn: a cell per page (per `pagesPerCell` pages when it has too many to fit
/// `maximumLines`), `cellsPerLine` to a line, left to right and then down.
enum StripLayout {
  static let left = 20.0
  static let cellsPerLine = 128
  static let cell = 7.0
  static let cellHeight = 8.0
  static let linePitch = 9.0
  static let maximumLines = 32
  static let titleHeight = 18.0
  static let gap = 10.0

  static func pagesPerCell(_ pages: Int) -> Int {
    let cells = cellsPerLine * maximumLines
    return max(1, (pages + cells - 1) / cells)
  }
  static func lines(_ pages: Int) -> Int {
    let cells = (pages + pagesPerCell(pages) - 1) / pagesPerCell(pages)
    return max(1, (cells + cellsPerLine - 1) / cellsPerLine)
  }
  static func height(_ pages: Int) -> Double { titleHeight + Double(lines(pages)) * linePitch + gap }
}

/// The picture: a strip per segment and per other mapping, in address order.
func residencySVG(_ picture: ResidencyPicture, title: String) -> String {
  typealias L = StripLayout
  let width = L.left * 2 + Double(L.cellsPerLine) * L.cell
  let headerHeight = 86.0
  let height = headerHeight + picture.strips.reduce(0) { $0 + L.height($1.states.count) }
  let fmt = svgNumber
  let resident = picture.strips.reduce(0) { $0 + $1.resident }
  let total = picture.strips.reduce(0) { $0 + $1.mapped }
  let own =
    picture.own.mappings == 0
    ? ""
    : "; elfload's own memory left out: \(counted(picture.own.pages, "page")) (\(picture.own.resident) resident) in \(counted(picture.own.mappings, "mapping"))"
  var svg = """
    <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" font-family="sans-serif" font-size="12">
    <rect width="100%" height="100%" fill="white"/>
    <text x="\(Int(L.left))" y="24" font-size="15">\(escapeXML(title))</text>
    <text class="totals" x="\(Int(L.left))" y="42" fill="#555">\(resident) of \(total) pages resident when the program ended, in \(counted(picture.mappings, "mapping"))\(own)</text>
    <text x="\(Int(L.left))" y="58" fill="#555">a strip per segment of the program and its interpreter (its mappings merged) and per other mapping; a cell per page,</text>
    <text x="\(Int(L.left))" y="72" fill="#555">\(L.cellsPerLine) to a line (512 KiB): dark resident, grey not, light counted but not pictured page by page, blank not mapped</text>

    """
  var top = headerHeight
  for strip in picture.strips {
    let pages = strip.states.count
    let perCell = L.pagesPerCell(pages)
    let scale = perCell == 1 ? "" : " (a cell: \(perCell) pages, as dark as its resident share)"
    let unknown = strip.states.filter { $0 == .unknown }.count
    let counts =
      unknown == 0
      ? "\(counted(strip.mapped, "page")), \(strip.resident) resident"
      : unknown == strip.mapped
        ? "\(counted(strip.mapped, "page")), \(strip.resident) resident (counted only: too large to picture page by page)"
        : "\(counted(strip.mapped, "page")), \(strip.resident) resident (\(unknown) of the pages counted only: too large to picture page by page)"
    svg += "<g class=\"strip\">\n"
    svg +=
      "<text class=\"strip-title\" x=\"\(fmt(L.left))\" y=\"\(fmt(top + 13))\"><title>\(escapeXML(strip.path))</title>\(escapeXML(strip.title)): \(counts)\(scale)<tspan dx=\"8\" fill=\"#777\">\(escapeXML(strip.detail))</tspan></text>\n"
    let cellsTop = top + L.titleHeight
    let cells = (pages + perCell - 1) / perCell
    for line in 0..<L.lines(pages) {
      let n = min(L.cellsPerLine, cells - line * L.cellsPerLine)
      svg +=
        "<rect class=\"line\" x=\"\(fmt(L.left))\" y=\"\(fmt(cellsTop + Double(line) * L.linePitch))\" width=\"\(fmt(Double(n) * L.cell))\" height=\"\(fmt(L.cellHeight))\" fill=\"none\" stroke=\"#ddd\"/>\n"
    }
    // Cells of one kind side by side on a line: one rectangle.
    var c = 0
    while c < cells {
      let (kind, fill, opacity) = cellKind(strip.states[(c * perCell)..<min((c + 1) * perCell, pages)])
      var d = c + 1
      while d < cells, d % L.cellsPerLine != 0,
        cellKind(strip.states[(d * perCell)..<min((d + 1) * perCell, pages)]) == (kind, fill, opacity)
      {
        d += 1
      }
      if kind != "unmapped" {
        let x = L.left + Double(c % L.cellsPerLine) * L.cell
        let y = cellsTop + Double(c / L.cellsPerLine) * L.linePitch
        svg +=
          "<rect class=\"\(kind)\" x=\"\(fmt(x))\" y=\"\(fmt(y))\" width=\"\(fmt(Double(d - c) * L.cell))\" height=\"\(fmt(L.cellHeight))\" fill=\"\(fill)\"\(opacity.map { " fill-opacity=\"\(fmt($0))\"" } ?? "")/>\n"
      }
      c = d
    }
    svg += "</g>\n"
    top += L.height(pages)
  }
  return svg + "</svg>\n"
}

/// A cell's class, colour and opacity: from the pages it stands for (one, or several in a
/// large strip: as dark as the share of them resident).
func cellKind(_ states: ArraySlice<PageState>) -> (String, String, Double?) {
  if states.allSatisfy({ $0 == .unmapped }) { return ("unmapped", "none", nil) }
  if states.contains(.unknown) { return ("unknown", "#fddbc7", nil) }
  let resident = states.filter { $0 == .resident }.count
  if resident == 0 { return ("absent", "#e4e4e4", nil) }
  if resident == states.count { return ("resident", "#b2182b", nil) }
  return ("partial", "#b2182b", (Double(resident) / Double(states.count) * 10).rounded(.up) / 10)
}

extension Elfload {
  public struct Residency: ParsableCommand {
    public static let configuration = CommandConfiguration(
      abstract:
        "Draw a --residency CSV as SVG: for each segment and mapping, which pages were resident when the program ended; or (--native) write one of a native run.",
      usage: """
        elfload residency <residency> -o <file.svg>
        elfload residency --native <file> -- <program> [<args> ...]
        """)

    @Argument(help: ArgumentHelp("A file written by elfload --residency (or --native) to draw.", valueName: "residency"))
    public var residency: String?

    @Option(name: [.short, .long], help: ArgumentHelp("Where to write the SVG.", valueName: "file.svg"))
    public var output: String?

    @Option(
      name: .long,
      help: ArgumentHelp(
        "Run PROGRAM natively (execve, no elfload) and write the same CSV as --residency when it exits: ptrace stops it at its exit (PTRACE_O_TRACEEXIT) to read /proc/PID/maps and pagemap. Its output and exit status are its own.",
        valueName: "file"))
    public var native: String?

    @Argument(
      parsing: .postTerminator,
      help: ArgumentHelp("With --native: the program and its arguments, after --.", valueName: "program"))
    public var command: [String] = []

    public init() {}

    public func validate() throws {
      if native != nil {
        guard !command.isEmpty else { throw ValidationError("--native FILE needs a program to run after --: elfload residency --native FILE -- PROGRAM ARGS") }
        guard residency == nil, output == nil else {
          throw ValidationError("--native records; draw the file afterwards: elfload residency FILE -o FILE.svg")
        }
      } else {
        guard residency != nil, output != nil else {
          throw ValidationError("give a residency file and -o FILE.svg to draw it, or --native FILE -- PROGRAM ARGS to record one")
        }
        guard command.isEmpty else { throw ValidationError("a program after -- is run only with --native FILE") }
        if let output { try checkSVGName(output, subcommand: "residency") }
      }
    }

    public func run() throws {
      if let native { NativeResidency.run(command, output: native) }
      guard let residency, let output else { return }
      let text = try readInput(residency)
      let file: ResidencyFile
      do { file = try parseResidency(text) } catch { throw ValidationError("\(residency): \(error)") }
      let picture = residencyPicture(file)
      try writeSVG(residencySVG(picture, title: "elfload residency: \(residency)"), to: output)
      let left = picture.own.mappings == 0 ? "" : "; elfload's own \(counted(picture.own.mappings, "mapping")) left out"
      print(
        "\(output): \(counted(picture.strips.count, "strip")) from \(counted(picture.mappings, "mapping")), \(picture.strips.reduce(0) { $0 + $1.resident }) pages resident\(left)"
      )
    }
  }
}
