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

/// A trace's or residency file's lines after its `# ` preamble (format 2), the preamble's
/// segment table, and how many lines the preamble took.
func splitPreamble(_ text: [UInt8]) -> Result<([String], [TraceSegment], Int), BadSegmentRow> {
  let lines = text.split(separator: 10, omittingEmptySubsequences: true).map { String(decoding: $0, as: UTF8.self) }
  var preamble = 0
  while preamble < lines.count, lines[preamble].hasPrefix("#") { preamble += 1 }
  return parseSegmentTable(lines[..<preamble]).map { (Array(lines[preamble...]), $0, preamble) }
}

/// Parses a --trace CSV: format 3 (a `# ` preamble with the segment table, then the rows, each
/// saying why its page came), format 2 (the same without `why`) or format 1 (no preamble).
func parseTrace(_ text: [UInt8]) throws(TraceError) -> Trace {
  let (lines, segments, preamble): ([String], [TraceSegment], Int)
  switch splitPreamble(text) {
  case .success(let split): (lines, segments, preamble) = split
  case .failure(let bad): throw .badSegment(line: bad.line, bad.text)
  }
  guard let header = lines.first,
    let columns = [TraceFormat.columns, TraceFormat.formerColumns].first(where: { header == $0.joined(separator: ",") })
  else {
    throw .badHeader(lines.first ?? "")
  }
  var rows: [TraceRow] = []
  for (index, line) in lines.dropFirst().enumerated() {
    let f = line.split(separator: ",", omittingEmptySubsequences: false)
    guard f.count == columns.count, let sequence = Int(f[0]), let time = UInt64(f[1]), let image = Int(f[3]),
      let segment = Int(f[4]), let page = Int(f[5]), f[6] == TraceFormat.fault || f[6] == TraceFormat.prefetch
    else { throw .badRow(line: preamble + index + 2, line) }
    rows.append(
      TraceRow(
        sequence: sequence, time: time, image: image, segment: segment, page: page, fault: f[6] == TraceFormat.fault))
  }
  return Trace(rows: rows, segments: segments)
}

/// How the heatmap is laid out: the fault's number (or the time) across, shared by every band;
/// a band per segment, its pages downwards, as tall as the segment at one scale for all bands.
enum HeatmapLayout {
  static let width = 960.0
  static let plotLeft = 80.0
  static let plotRight = 940.0
  /// The header: the title, two lines of legend, and the shared axis's labels above the bands.
  static let header = 104.0
  /// Above each band: its title line; after it, a gap.
  static let bandTitle = 20.0
  static let bandGap = 10.0
  /// The bottom axis's labels under the last band.
  static let footer = 34.0
  /// The pixels the bands may share when their segments are large...
  static let bandBudget = 560.0
  /// ...and a page's height at most, when they are small.
  static let largestPage = 4.0
  /// The least a band is drawn, a segment of one page included.
  static let smallestBand = 8.0
  /// The smallest a page's mark is drawn, in pixels, however many pages or faults there are.
  static let minimumMark = 4.0
  /// Page labels on a band's axis are at least this far apart.
  static let labelSpacing = 24.0

  /// Pixels per page, the same in every band: the bands fill the budget, a page at most 4 pixels.
  static func pixelsPerPage(_ pages: [Int]) -> Double {
    min(largestPage, bandBudget / Double(max(pages.reduce(0, +), 1)))
  }
  static func bandHeight(_ pages: Int, _ scale: Double) -> Double { max(Double(pages) * scale, smallestBand) }

  /// The pages labelled on a band's axis: every `step` pages (1, 2 or 5 times a power of ten, the
  /// smallest that leaves room between labels), and the last page, the step before it dropped if too close.
  static func pageTicks(pages: Int, height: Double) -> [Int] {
    let perPage = height / Double(max(pages, 1))
    var step = 1
    var power = 1
    search: while true {
      for m in [1, 2, 5] where Double(m * power) * perPage >= labelSpacing {
        step = m * power
        break search
      }
      power *= 10
    }
    var ticks = Array(stride(from: 0, to: max(pages, 1), by: step))
    let last = pages - 1
    if let previous = ticks.last, previous != last {
      if Double(last - previous) * perPage >= labelSpacing {
        ticks.append(last)
      } else if ticks.count > 1 {
        ticks[ticks.count - 1] = last
      }
    }
    return ticks
  }
}

/// The heatmap as SVG: a band per (image, segment), titled with the image, the segment's type,
/// permissions and size when the trace has its segment table; downwards in a band, its pages from
/// the first to the last (to the highest page mapped without the table), the band as tall as the
/// segment at one scale for all; across, shared by every band, the order of the faults or
/// (`byTime`) the time since the program's start. Dark marks are faults, light ones pages
/// prefetched, in the column of the fault that brought them. `trace` has rows (an empty trace
/// is said by the subcommand, not drawn).
func heatmapSVG(_ trace: Trace, byTime: Bool, title: String) -> String {
  typealias L = HeatmapLayout
  let rows = trace.rows
  let plotWidth = L.plotRight - L.plotLeft
  let groups = Dictionary(grouping: rows.indices) { rows[$0].image * 100_000 + rows[$0].segment }
    .sorted { $0.key < $1.key }
  // Each band's segment (from the table), and its pages.
  let bands = groups.map { _, members -> (members: [Int], segment: TraceSegment?, pages: Int) in
    let first = rows[members[0]]
    let segment = trace.segment(image: first.image, first.segment)
    let highest = (members.map { rows[$0].page }.max() ?? 0) + 1
    return (members, segment, max(segment?.pages ?? highest, highest))
  }
  let scale = L.pixelsPerPage(bands.map(\.pages))
  let bandsHeight = bands.reduce(0) { $0 + L.bandTitle + L.bandHeight($1.pages, scale) + L.bandGap }
  let height = L.header + max(bandsHeight, 40) + L.footer
  let fmt = svgNumber
  // One position across per row, on an axis shared by all bands: the time since the program
  // started (the trace's time_ns counts from the fork), or the number of the fault (a prefetched
  // page takes its fault's number).
  var xs = [Double](repeating: 0, count: rows.count)
  if byTime {
    for i in rows.indices { xs[i] = Double(rows[i].time) }
  } else {
    var faults = 0
    for i in rows.indices.sorted(by: { rows[$0].sequence < rows[$1].sequence }) {
      if rows[i].fault { faults += 1 }
      xs[i] = Double(max(faults, 1))
    }
  }
  let xMin = byTime ? 0 : 1.0
  let xMax = max(xs.max() ?? 1, xMin)
  let xSpan = max(xMax - xMin, 1)
  let levels = byTime ? Double(rows.count) : xSpan + 1
  let markWidth = max(min(plotWidth / max(levels, 1), 6), L.minimumMark)
  func xOf(_ v: Double) -> Double { L.plotLeft + (v - xMin) / xSpan * (plotWidth - markWidth) }
  // Round ticks: 1, 2 or 5 times a power of ten (ms, or faults), about eight of them.
  let unit = byTime ? 1e6 : 1.0
  let raw = xSpan / unit / 8
  let magnitude = pow10(raw)
  let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? 10 * magnitude
  var tickValues: [Double] = []
  var t = byTime ? 0 : step
  while t <= xMax / unit * 1.000_001 {
    if t * unit >= xMin { tickValues.append(t) }
    t += step
  }
  if !byTime, !tickValues.contains(1) { tickValues.insert(1, at: 0) }
  let pageRule =
    scale >= L.largestPage
    ? "\(fmt(scale)) px a page"
    : "\(fmt(1 / scale)) pages a pixel"
  var svg = """
    <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(L.width))" height="\(Int(height))" font-family="sans-serif" font-size="12">
    <rect width="100%" height="100%" fill="white"/>
    <text x="\(Int(L.plotLeft))" y="24" font-size="15">\(escapeXML(title))</text>
    <text x="\(Int(L.plotLeft))" y="41" fill="#555">each mark: a page mapped (dark: on a fault, light: prefetched, in the column of the fault that brought it)</text>
    <text x="\(Int(L.plotLeft))" y="56" fill="#555">a band per segment, its pages downwards from its first, as tall as the segment (\(pageRule); at least \(Int(L.smallestBand)) px)</text>
    <text x="\(Int(L.plotLeft))" y="71" fill="#555">across, one axis for every band: \(byTime ? "the time since the program started" : "the fault's number")</text>

    """
  // The shared axis: its labels above the first band and under the last, a faint line through all.
  let bandsTop = L.header
  let bandsBottom = L.header + bandsHeight - L.bandGap
  for value in tickValues {
    let x = xOf(value * unit) + markWidth / 2
    let label = byTime ? "\(fmtTick(value)) ms" : "\(fmtTick(value))"
    svg +=
      "<line class=\"grid\" x1=\"\(fmt(x))\" y1=\"\(fmt(bandsTop - 4))\" x2=\"\(fmt(x))\" y2=\"\(fmt(bandsBottom + 4))\" stroke=\"#eee\"/>"
    svg +=
      "<text class=\"x-tick\" x=\"\(fmt(x))\" y=\"\(fmt(bandsTop - 8))\" text-anchor=\"middle\" fill=\"#555\">\(label)</text>"
    svg +=
      "<text class=\"x-tick\" x=\"\(fmt(x))\" y=\"\(fmt(bandsBottom + 16))\" text-anchor=\"middle\" fill=\"#555\">\(label)</text>\n"
  }
  svg +=
    "<text x=\"\(fmt(L.plotLeft + plotWidth / 2))\" y=\"\(fmt(bandsBottom + 30))\" text-anchor=\"middle\" fill=\"#555\">\(byTime ? "time since the program started" : "fault number")</text>\n"
  var top = bandsTop
  for band in bands {
    let members = band.members
    let first = rows[members[0]]
    let pages = band.pages
    let faults = members.filter { rows[$0].fault }.count
    let mapped = "\(counted(members.count, "page")) mapped (\(counted(faults, "fault")), \(members.count - faults) prefetched)"
    svg += "<g class=\"band\">\n"
    if let segment = band.segment {
      svg +=
        "<text class=\"panel-title\" x=\"\(fmt(L.plotLeft))\" y=\"\(fmt(top + 14))\"><title>\(escapeXML(segment.path))</title>\(segment.imageName) \(escapeXML(segment.type)) \(segment.segment) \(escapeXML(segment.flags)), \(counted(segment.pages, "page")) — \(mapped)<tspan class=\"panel-path\" dx=\"8\" fill=\"#555\">\(escapeXML(segment.path.split(separator: "/").last.map(String.init) ?? segment.path)), 0x\(String(segment.start, radix: 16))-0x\(String(segment.end, radix: 16))</tspan></text>\n"
    } else {
      svg +=
        "<text class=\"panel-title\" x=\"\(fmt(L.plotLeft))\" y=\"\(fmt(top + 14))\">image: \(first.image == 0 ? "program" : "interpreter"), segment: program header \(first.segment) — \(mapped)<tspan dx=\"8\" fill=\"#555\">(pages up to the highest mapped)</tspan></text>\n"
    }
    let bandTop = top + L.bandTitle
    let bandHeight = L.bandHeight(pages, scale)
    let perPage = bandHeight / Double(pages)
    let markHeight = max(perPage, L.minimumMark)
    svg +=
      "<rect class=\"band-area\" x=\"\(fmt(L.plotLeft))\" y=\"\(fmt(bandTop))\" width=\"\(fmt(plotWidth))\" height=\"\(fmt(bandHeight))\" fill=\"#f7f7f7\" fill-opacity=\"0.6\" stroke=\"#ccc\"/>\n"
    for page in L.pageTicks(pages: pages, height: bandHeight) {
      let y = bandTop + (Double(page) + 0.5) * perPage
      svg +=
        "<line class=\"page-tick\" x1=\"\(fmt(L.plotLeft - 4))\" y1=\"\(fmt(y))\" x2=\"\(fmt(L.plotLeft))\" y2=\"\(fmt(y))\" stroke=\"#666\"/>"
      svg +=
        "<text class=\"page-label\" x=\"\(fmt(L.plotLeft - 6))\" y=\"\(fmt(y + 4))\" text-anchor=\"end\" fill=\"#555\">\(page)</text>\n"
    }
    for i in members {
      let row = rows[i]
      let y = min(bandTop + Double(row.page) * perPage, bandTop + bandHeight - markHeight)
      svg +=
        "<rect class=\"\(row.fault ? "fault" : "prefetch")\" x=\"\(fmt(xOf(xs[i])))\" y=\"\(fmt(y))\" width=\"\(fmt(markWidth))\" height=\"\(fmt(markHeight))\" fill=\"\(row.fault ? "#b2182b" : "#f4a582")\"/>\n"
    }
    svg += "</g>\n"
    top += L.bandTitle + bandHeight + L.bandGap
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
