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

enum TraceError: Error, CustomStringConvertible {
  case unreadable(String)
  case badHeader(String)
  case badRow(line: Int, String)

  var description: String {
    switch self {
    case .unreadable(let path): return "\(path): cannot read it"
    case .badHeader(let header):
      return
        "not an elfload trace: the first line is \"\(header)\", expected \(TraceFormat.columns.joined(separator: ","))"
    case .badRow(let line, let text): return "line \(line) is not a trace row: \"\(text)\""
    }
  }
}

/// Parses a --trace CSV.
func parseTrace(_ text: [UInt8]) throws(TraceError) -> [TraceRow] {
  let lines = text.split(separator: 10, omittingEmptySubsequences: true).map {
    String(decoding: $0, as: UTF8.self)
  }
  guard let header = lines.first, header == TraceFormat.columns.joined(separator: ",") else {
    throw .badHeader(lines.first ?? "")
  }
  var rows: [TraceRow] = []
  for (index, line) in lines.dropFirst().enumerated() {
    let f = line.split(separator: ",", omittingEmptySubsequences: false)
    guard f.count == TraceFormat.columns.count, let sequence = Int(f[0]), let time = UInt64(f[1]), let image = Int(f[3]),
      let segment = Int(f[4]), let page = Int(f[5]), f[6] == TraceFormat.fault || f[6] == TraceFormat.prefetch
    else { throw .badRow(line: index + 2, line) }
    rows.append(
      TraceRow(
        sequence: sequence, time: time, image: image, segment: segment, page: page, fault: f[6] == TraceFormat.fault))
  }
  return rows
}

/// The heatmap as SVG: a panel per (image, segment); x is the page within the
/// segment, y the order of mapping (or the time); dark cells are faults,
/// light ones prefetched pages.
func heatmapSVG(_ rows: [TraceRow], byTime: Bool, title: String) -> String {
  let width = 900.0
  let plotLeft = 70.0
  let plotWidth = width - plotLeft - 20
  let panelHeight = 260.0
  let groups = Dictionary(grouping: rows) { $0.image * 100_000 + $0.segment }.sorted { $0.key < $1.key }
  let height = 50 + Double(max(groups.count, 1)) * (panelHeight + 60)
  func fmt(_ v: Double) -> String {
    let r = (v * 10).rounded() / 10
    return r == r.rounded() ? String(Int(r)) : String(r)
  }
  var svg = """
    <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" font-family="sans-serif" font-size="12">
    <rect width="100%" height="100%" fill="white"/>
    <text x="\(Int(plotLeft))" y="24" font-size="15">\(escapeXML(title))</text>
    <text x="\(Int(plotLeft))" y="40" fill="#555">each cell: a page mapped (dark: on a fault, light: prefetched); x: page in the segment; y: \(byTime ? "time since start" : "order of mapping"), downwards</text>

    """
  if rows.isEmpty {
    svg +=
      "<text x=\"\(Int(plotLeft))\" y=\"80\">no pages in the trace (eager maps everything up front: nothing faults)</text>\n"
  }
  var top = 60.0
  for (_, group) in groups {
    let first = group[0]
    let pages = (group.map(\.page).max() ?? 0) + 1
    let ys = group.map { byTime ? Double($0.time) : Double($0.sequence) }
    let yMin = ys.min() ?? 0
    let ySpan = max((ys.max() ?? 0) - yMin, 1)
    let cellWidth = max(plotWidth / Double(pages), 2)
    let cellHeight = max(min(panelHeight / Double(group.count), 6), 1)
    let faults = group.filter(\.fault).count
    svg += "<g>\n"
    svg +=
      "<text x=\"\(Int(plotLeft))\" y=\"\(fmt(top + 14))\">\(first.image == 0 ? "program" : "interpreter"), program header \(first.segment): \(group.count) pages mapped (\(faults) faults, \(group.count - faults) prefetched), pages 0-\(pages - 1)</text>\n"
    let plotTop = top + 22
    svg +=
      "<rect x=\"\(fmt(plotLeft))\" y=\"\(fmt(plotTop))\" width=\"\(fmt(plotWidth))\" height=\"\(fmt(panelHeight))\" fill=\"#f7f7f7\" stroke=\"#ccc\"/>\n"
    for (row, y) in zip(group, ys) {
      let x = plotLeft + Double(row.page) * plotWidth / Double(pages)
      let cy = plotTop + (y - yMin) / ySpan * (panelHeight - cellHeight)
      svg +=
        "<rect class=\"\(row.fault ? "fault" : "prefetch")\" x=\"\(fmt(x))\" y=\"\(fmt(cy))\" width=\"\(fmt(cellWidth))\" height=\"\(fmt(cellHeight))\" fill=\"\(row.fault ? "#b2182b" : "#f4a582")\"/>\n"
    }
    svg +=
      "<text x=\"\(fmt(plotLeft))\" y=\"\(fmt(plotTop + panelHeight + 14))\" fill=\"#555\">page 0</text>\n"
    svg +=
      "<text x=\"\(fmt(plotLeft + plotWidth))\" y=\"\(fmt(plotTop + panelHeight + 14))\" text-anchor=\"end\" fill=\"#555\">page \(pages - 1)</text>\n"
    svg +=
      "<text x=\"\(fmt(plotLeft - 6))\" y=\"\(fmt(plotTop + 10))\" text-anchor=\"end\" fill=\"#555\">\(byTime ? "0 ms" : "first")</text>\n"
    let last = byTime ? "\(fmt(ySpan / 1e6)) ms" : "last"
    svg +=
      "<text x=\"\(fmt(plotLeft - 6))\" y=\"\(fmt(plotTop + panelHeight))\" text-anchor=\"end\" fill=\"#555\">\(last)</text>\n"
    svg += "</g>\n"
    top += panelHeight + 60
  }
  return svg + "</svg>\n"
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

    @Flag(name: .long, help: "Put time (not the order of mapping) on the vertical axis.")
    public var time = false

    public init() {}

    public func run() throws {
      guard let text = Kernel.readWholeFile(Array(trace.utf8)) else {
        throw ValidationError(TraceError.unreadable(trace).description)
      }
      let rows: [TraceRow]
      do { rows = try parseTrace(text) } catch { throw ValidationError("\(trace): \(error)") }
      let svg = heatmapSVG(rows, byTime: time, title: "elfload page trace: \(trace)")
      do {
        let fd = try Kernel.createFile(Array(output.utf8))
        defer { Kernel.close(fd) }
        try Kernel.writeAll(fd, Array(svg.utf8))
      } catch {
        throw ValidationError("\(output): cannot write it: \(error)")
      }
      print(
        "\(output): \(rows.count) pages in \(Set(rows.map { $0.image * 100_000 + $0.segment }).count) segments"
      )
    }
  }
}
