// `elfload heatmap TRACE -o FILE.svg`: which pages of each segment were mapped, and when.
import ArgumentParser
import ElfloadCore

/// One row of a --trace CSV.
struct TraceRow {
  var sequence: Int
  var time: UInt64
  var image: Int
  var segment: Int
  var page: Int
  var fault: Bool
}

/// One row of a trace's segment table (format 2): a PT_LOAD as elfload loaded it.
struct TraceSegment: Equatable {
  var image: Int
  var segment: Int
  var type: String
  var flags: String
  var pages: Int
  var start: UInt64
  var end: UInt64
  var path: String

  /// What the panel title calls the image.
  var imageName: String { image == 0 ? "program" : "interpreter" }
}

/// A --trace CSV: its page rows, and its segment table (empty in a format 1 trace).
struct Trace {
  var rows: [TraceRow]
  var segments: [TraceSegment]

  func segment(image: Int, _ index: Int) -> TraceSegment? {
    segments.first { $0.image == image && $0.segment == index }
  }
}

enum TraceError: Error, CustomStringConvertible {
  case badHeader(String)
  case badRow(line: Int, String)
  case badSegment(line: Int, String)

  var description: String {
    switch self {
    case .badHeader(let header):
      return
        "not an elfload trace: the first line is \"\(header)\", expected \(TraceFormat.columns.joined(separator: ","))"
    case .badRow(let line, let text): return "line \(line) is not a trace row: \"\(text)\""
    case .badSegment(let line, let text): return "line \(line) is not a row of the segment table: \"\(text)\""
    }
  }
}

/// A row of a preamble's segment table that cannot be read: its line number and text.
struct BadSegmentRow: Error {
  var line: Int
  var text: String
}

/// The segment table in the `# ` preamble of a trace or a residency file (format 2): the rows
/// after the table's header; the format line and other comments are let be.
func parseSegmentTable(_ preamble: ArraySlice<String>) -> Result<[TraceSegment], BadSegmentRow> {
  var segments: [TraceSegment] = []
  var inTable = false
  for (index, line) in preamble.enumerated() {
    let content = line.dropFirst(TraceFormat.commentPrefix.count)
    if content == TraceFormat.segmentColumns.joined(separator: ",") { inTable = true }
    guard inTable, content.first?.isNumber == true else { continue }
    let f = content.split(separator: ",", maxSplits: TraceFormat.segmentColumns.count - 1, omittingEmptySubsequences: false)
    guard f.count == TraceFormat.segmentColumns.count, let image = Int(f[0]), let segment = Int(f[1]),
      let pages = Int(f[4]), let start = UInt64(f[5].dropFirst(2), radix: 16),
      let end = UInt64(f[6].dropFirst(2), radix: 16), start <= end
    else { return .failure(BadSegmentRow(line: index + 1, text: line)) }
    segments.append(
      TraceSegment(
        image: image, segment: segment, type: String(f[2]), flags: String(f[3]), pages: pages, start: start, end: end,
        path: String(f[7])))
  }
  return .success(segments)
}

/// Parses a --trace CSV: format 2 (a `# ` preamble with the segment table, then the rows) or
/// format 1 (the rows alone).
func parseTrace(_ text: [UInt8]) throws(TraceError) -> Trace {
  var lines = text.split(separator: 10, omittingEmptySubsequences: true).map {
    String(decoding: $0, as: UTF8.self)
  }
  var preamble = 0
  while preamble < lines.count, lines[preamble].hasPrefix("#") { preamble += 1 }
  let segments: [TraceSegment]
  switch parseSegmentTable(lines[..<preamble]) {
  case .success(let table): segments = table
  case .failure(let bad): throw .badSegment(line: bad.line, bad.text)
  }
  lines.removeFirst(preamble)
  guard let header = lines.first, header == TraceFormat.columns.joined(separator: ",") else {
    throw .badHeader(lines.first ?? "")
  }
  var rows: [TraceRow] = []
  for (index, line) in lines.dropFirst().enumerated() {
    let f = line.split(separator: ",", omittingEmptySubsequences: false)
    guard f.count == TraceFormat.columns.count, let sequence = Int(f[0]), let time = UInt64(f[1]), let image = Int(f[3]),
      let segment = Int(f[4]), let page = Int(f[5]), f[6] == TraceFormat.fault || f[6] == TraceFormat.prefetch
    else { throw .badRow(line: preamble + index + 2, line) }
    rows.append(
      TraceRow(
        sequence: sequence, time: time, image: image, segment: segment, page: page, fault: f[6] == TraceFormat.fault))
  }
  return Trace(rows: rows, segments: segments)
}

/// The heatmap as SVG: a panel per (image, segment), titled with the image, the segment's
/// type, permissions and size when the trace has its segment table; x is the page within the
/// segment, from its first page to its last (to the highest page mapped without the table), y
/// the time since the program's start (`byTime`) or the order of the faults, on one axis shared
/// by every panel; dark cells are faults, light ones pages prefetched on the row of the fault
/// that brought them.
func heatmapSVG(_ trace: Trace, byTime: Bool, title: String) -> String {
  let rows = trace.rows
  let width = 900.0
  let plotLeft = 80.0
  let plotWidth = width - plotLeft - 20
  let panelHeight = 260.0
  /// Between one panel's plot and the next: its title, its path line and its page labels.
  let panelSpacing = 74.0
  /// The smallest a page's mark is drawn, in pixels, however many pages the segment has.
  let minimumMark = 4.0
  let groups = Dictionary(grouping: rows.indices) { rows[$0].image * 100_000 + rows[$0].segment }
    .sorted { $0.key < $1.key }
  let height = 65 + Double(max(groups.count, 1)) * (panelHeight + panelSpacing)
  let fmt = svgNumber
  // One vertical position per row, on an axis shared by all panels: the time
  // since the program started (the trace's time_ns counts from the fork), or
  // the number of the fault (a prefetched page takes its fault's number).
  var ys = [Double](repeating: 0, count: rows.count)
  if byTime {
    for i in rows.indices { ys[i] = Double(rows[i].time) }
  } else {
    var faults = 0
    for i in rows.indices.sorted(by: { rows[$0].sequence < rows[$1].sequence }) {
      if rows[i].fault { faults += 1 }
      ys[i] = Double(max(faults, 1))
    }
  }
  let yMin = byTime ? 0 : 1.0
  let yMax = max(ys.max() ?? 1, yMin)
  let ySpan = max(yMax - yMin, 1)
  let levels = byTime ? Double(rows.count) : ySpan + 1
  let cellHeight = max(min(panelHeight / max(levels, 1), 6), minimumMark)
  // Round ticks: 1, 2 or 5 times a power of ten (ms, or faults), about five of them.
  let unit = byTime ? 1e6 : 1.0
  let raw = ySpan / unit / 5
  let magnitude = pow10(raw)
  let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? 10 * magnitude
  var tickValues: [Double] = []
  var t = byTime ? 0 : step
  while t <= yMax / unit * 1.000_001 {
    if t * unit >= yMin { tickValues.append(t) }
    t += step
  }
  if !byTime, !tickValues.contains(1) { tickValues.insert(1, at: 0) }
  var svg = """
    <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" font-family="sans-serif" font-size="12">
    <rect width="100%" height="100%" fill="white"/>
    <text x="\(Int(plotLeft))" y="24" font-size="15">\(escapeXML(title))</text>
    <text x="\(Int(plotLeft))" y="40" fill="#555">each cell: a page mapped (dark: on a fault, light: prefetched); x: the page in its segment</text>
    <text x="\(Int(plotLeft))" y="55" fill="#555">y, downwards, one axis for every panel: \(byTime ? "the time since the program started" : "the fault's number (a prefetched page on its fault's row)")</text>

    """
  if rows.isEmpty {
    svg +=
      "<text x=\"\(Int(plotLeft))\" y=\"95\">no pages in the trace (eager maps everything up front: nothing faults)</text>\n"
  }
  var top = 75.0
  for (_, members) in groups {
    let first = rows[members[0]]
    let segment = trace.segment(image: first.image, first.segment)
    let highest = (members.map { rows[$0].page }.max() ?? 0) + 1
    let pages = max(segment?.pages ?? highest, highest)
    let cellWidth = max(plotWidth / Double(pages), minimumMark)
    let faults = members.filter { rows[$0].fault }.count
    let mapped = "\(counted(members.count, "page")) mapped (\(counted(faults, "fault")), \(members.count - faults) prefetched)"
    svg += "<g>\n"
    if let segment {
      svg +=
        "<text class=\"panel-title\" x=\"\(Int(plotLeft))\" y=\"\(fmt(top + 14))\">\(segment.imageName) \(escapeXML(segment.type)) \(segment.segment) \(escapeXML(segment.flags)), \(counted(segment.pages, "page")) — \(mapped)</text>\n"
      svg +=
        "<text class=\"panel-path\" x=\"\(Int(plotLeft))\" y=\"\(fmt(top + 29))\" fill=\"#555\">\(escapeXML(segment.path)), 0x\(String(segment.start, radix: 16))-0x\(String(segment.end, radix: 16))</text>\n"
    } else {
      svg +=
        "<text class=\"panel-title\" x=\"\(Int(plotLeft))\" y=\"\(fmt(top + 14))\">image: \(first.image == 0 ? "program" : "interpreter"), segment: program header \(first.segment) — \(mapped)</text>\n"
    }
    let plotTop = top + 36
    svg +=
      "<rect x=\"\(fmt(plotLeft))\" y=\"\(fmt(plotTop))\" width=\"\(fmt(plotWidth))\" height=\"\(fmt(panelHeight))\" fill=\"#f7f7f7\" stroke=\"#ccc\"/>\n"
    func yOf(_ v: Double) -> Double { plotTop + (v - yMin) / ySpan * (panelHeight - cellHeight) }
    for value in tickValues {
      let y = yOf(value * unit) + cellHeight / 2
      svg +=
        "<line class=\"tick\" x1=\"\(fmt(plotLeft - 4))\" y1=\"\(fmt(y))\" x2=\"\(fmt(plotLeft))\" y2=\"\(fmt(y))\" stroke=\"#666\"/>"
      svg +=
        "<text x=\"\(fmt(plotLeft - 6))\" y=\"\(fmt(y + 4))\" text-anchor=\"end\" fill=\"#555\">\(byTime ? "\(fmtTick(value)) ms" : "fault \(fmtTick(value))")</text>\n"
    }
    for i in members {
      let row = rows[i]
      let x = min(plotLeft + Double(row.page) * plotWidth / Double(pages), plotLeft + plotWidth - cellWidth)
      svg +=
        "<rect class=\"\(row.fault ? "fault" : "prefetch")\" x=\"\(fmt(x))\" y=\"\(fmt(yOf(ys[i])))\" width=\"\(fmt(cellWidth))\" height=\"\(fmt(cellHeight))\" fill=\"\(row.fault ? "#b2182b" : "#f4a582")\"/>\n"
    }
    svg +=
      "<text x=\"\(fmt(plotLeft))\" y=\"\(fmt(plotTop + panelHeight + 14))\" fill=\"#555\">page 0</text>\n"
    svg +=
      "<text x=\"\(fmt(plotLeft + plotWidth))\" y=\"\(fmt(plotTop + panelHeight + 14))\" text-anchor=\"end\" fill=\"#555\">page \(pages - 1) (\(segment == nil ? "the highest mapped" : "the segment's last"))</text>\n"
    svg += "</g>\n"
    top += panelHeight + panelSpacing
  }
  return svg + "</svg>\n"
}

/// "1 page", "2 pages".
func counted(_ n: Int, _ noun: String) -> String { "\(n) \(noun)\(n == 1 ? "" : "s")" }

/// The power of ten at or below `v` (1 for anything not positive).
func pow10(_ v: Double) -> Double {
  guard v > 0, v.isFinite else { return 1 }
  var p = 1.0
  while p > v { p /= 10 }
  while p * 10 <= v { p *= 10 }
  return p
}

/// A tick value without trailing zeros.
func fmtTick(_ v: Double) -> String {
  let r = (v * 1000).rounded() / 1000
  return r == r.rounded() ? String(Int(r)) : String(r)
}

func escapeXML(_ s: String) -> String {
  var out = ""
  for c in s {
    switch c {
    case "&": out += "&amp;"
    case "<": out += "&lt;"
    case ">": out += "&gt;"
    case "\"": out += "&quot;"
    default: out.append(c)
    }
  }
  return out
}

extension Elfload {
  public struct Heatmap: ParsableCommand {
    public static let configuration = CommandConfiguration(
      abstract: "Draw a --trace CSV as an SVG heatmap: per segment, which pages were mapped, and when.")

    @Argument(help: ArgumentHelp("A trace written by elfload --trace.", valueName: "trace"))
    public var trace: String

    @Option(name: [.short, .long], help: ArgumentHelp("Where to write the SVG.", valueName: "file.svg"))
    public var output: String

    @Flag(
      name: .long,
      help: "Put the time since the program started (not the order of faults) on the vertical axis.")
    public var time = false

    public init() {}

    public func validate() throws { try checkSVGName(output, subcommand: "heatmap") }

    public func run() throws {
      let text = try readInput(trace)
      let parsed: Trace
      do { parsed = try parseTrace(text) } catch { throw ValidationError("\(trace): \(error)") }
      let rows = parsed.rows
      // Nothing paged in (eager maps everything up front): said, not drawn as an empty chart.
      if rows.isEmpty {
        print(
          "\(trace): no pages in the trace (nothing faulted: eager maps everything up front); nothing written to \(output)"
        )
        return
      }
      let svg = heatmapSVG(parsed, byTime: time, title: "elfload page trace: \(trace)")
      try writeSVG(svg, to: output)
      print(
        "\(output): \(rows.count) pages in \(Set(rows.map { $0.image * 100_000 + $0.segment }).count) segments"
      )
    }
  }
}
