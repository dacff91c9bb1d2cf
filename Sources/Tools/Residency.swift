// `elfload residency FILE -o FILE.svg`: which pages of each mapping were resident when the
// program ended (elfload --residency FILE, or a native run's: --native FILE -- PROGRAM), one
// strip per mapping.
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

enum ResidencyFormat {
  /// The CSV's columns, as demand.c's watcher and NativeResidency write them.
  static let columns = ["start", "end", "perms", "resident_pages", "total_pages", "pages", "name"]
}

enum ResidencyError: Error, CustomStringConvertible {
  case badHeader(String)
  case badRow(line: Int, String)

  var description: String {
    switch self {
    case .badHeader(let header):
      return
        "not an elfload --residency file: the first line is \"\(header)\", expected \(ResidencyFormat.columns.joined(separator: ","))"
    case .badRow(let line, let text): return "line \(line) is not a residency row: \"\(text)\""
    }
  }
}

/// Parses a --residency CSV.
func parseResidency(_ text: [UInt8]) throws(ResidencyError) -> [ResidencyRow] {
  let lines = text.split(separator: 10, omittingEmptySubsequences: true).map { String(decoding: $0, as: UTF8.self) }
  guard let header = lines.first, header == ResidencyFormat.columns.joined(separator: ",") else {
    throw .badHeader(lines.first ?? "")
  }
  func hex(_ s: Substring) -> UInt64? { s.hasPrefix("0x") ? UInt64(s.dropFirst(2), radix: 16) : nil }
  var rows: [ResidencyRow] = []
  for (index, line) in lines.dropFirst().enumerated() {
    let f = line.split(separator: ",", maxSplits: 6, omittingEmptySubsequences: false)
    guard f.count == 7, let start = hex(f[0]), let end = hex(f[1]), let resident = Int(f[3]), let total = Int(f[4]),
      f[5].isEmpty || f[5].utf8.count == total
    else { throw .badRow(line: index + 2, line) }
    rows.append(
      ResidencyRow(
        start: start, end: end, perms: String(f[2]), resident: resident, total: total, pages: Array(f[5].utf8),
        name: String(f[6])))
  }
  return rows
}

/// The picture: a strip per mapping, resident pages dark.
func residencySVG(_ rows: [ResidencyRow], title: String) -> String {
  let width = 1000.0
  let plotLeft = 20.0
  let plotWidth = width - 2 * plotLeft
  let strip = 14.0
  let rowHeight = 40.0
  let height = 70 + Double(max(rows.count, 1)) * rowHeight
  let fmt = svgNumber
  let resident = rows.reduce(0) { $0 + $1.resident }
  let total = rows.reduce(0) { $0 + $1.total }
  var svg = """
    <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" font-family="sans-serif" font-size="12">
    <rect width="100%" height="100%" fill="white"/>
    <text x="\(Int(plotLeft))" y="24" font-size="15">\(escapeXML(title))</text>
    <text x="\(Int(plotLeft))" y="42" fill="#555">\(resident) of \(total) pages resident when the program ended; a strip per mapping, its pages left to right (dark: resident)</text>

    """
  var top = 60.0
  for row in rows {
    let label = row.name.isEmpty ? "[anonymous]" : row.name
    svg += "<g class=\"mapping\">\n"
    svg +=
      "<text x=\"\(fmt(plotLeft))\" y=\"\(fmt(top + 12))\">\(escapeXML(label)) \(row.perms) 0x\(String(row.start, radix: 16))-0x\(String(row.end, radix: 16)): \(row.resident) of \(row.total) pages resident\(row.pages.isEmpty && row.total > 0 ? " (too large to picture page by page)" : "")</text>\n"
    let y = top + 18
    svg +=
      "<rect x=\"\(fmt(plotLeft))\" y=\"\(fmt(y))\" width=\"\(fmt(plotWidth))\" height=\"\(fmt(strip))\" fill=\"#f0f0f0\" stroke=\"#ccc\"/>\n"
    if !row.pages.isEmpty {
      // Runs of resident pages, one rectangle each.
      let perPage = plotWidth / Double(row.total)
      var i = 0
      while i < row.pages.count {
        guard row.pages[i] == UInt8(ascii: "#") else {
          i += 1
          continue
        }
        var j = i
        while j < row.pages.count && row.pages[j] == UInt8(ascii: "#") { j += 1 }
        svg +=
          "<rect class=\"resident\" x=\"\(fmt(plotLeft + Double(i) * perPage))\" y=\"\(fmt(y))\" width=\"\(fmt(max(Double(j - i) * perPage, 0.5)))\" height=\"\(fmt(strip))\" fill=\"#b2182b\"/>\n"
        i = j
      }
    } else if row.total > 0 && row.resident > 0 {
      // Only the count is known: a bar as long as the resident share, lighter.
      svg +=
        "<rect class=\"resident-share\" x=\"\(fmt(plotLeft))\" y=\"\(fmt(y))\" width=\"\(fmt(plotWidth * Double(row.resident) / Double(row.total)))\" height=\"\(fmt(strip))\" fill=\"#f4a582\"/>\n"
    }
    svg += "</g>\n"
    top += rowHeight
  }
  return svg + "</svg>\n"
}

extension Elfload {
  public struct Residency: ParsableCommand {
    public static let configuration = CommandConfiguration(
      abstract:
        "Draw a --residency CSV as SVG: for each mapping, which pages were resident when the program ended; or (--native) write one of a native run.",
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
      let rows: [ResidencyRow]
      do { rows = try parseResidency(text) } catch { throw ValidationError("\(residency): \(error)") }
      let svg = residencySVG(rows, title: "elfload residency: \(residency)")
      try writeSVG(svg, to: output)
      print("\(output): \(rows.count) mappings, \(rows.reduce(0) { $0 + $1.resident }) pages resident")
    }
  }
}
