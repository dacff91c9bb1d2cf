// What the drawing subcommands (heatmap, residency) share: reading their input, writing the SVG,
// and how a coordinate is written in it.
import ArgumentParser
import ElfloadCore

/// A coordinate for SVG: one decimal at most, none when it is whole.
func svgNumber(_ v: Double) -> String {
  let r = (v * 10).rounded() / 10
  return r == r.rounded() ? String(Int(r)) : String(r)
}

/// The whole input file named on the command line, or a usage error saying it cannot be read.
func readInput(_ path: String) throws -> [UInt8] {
  guard let bytes = Kernel.readWholeFile(Array(path.utf8)) else { throw ValidationError("\(path): cannot read it") }
  return bytes
}

/// A usage error unless `path` names an SVG file: its extension is .svg, or it has none
/// (/dev/stdout). Drawing SVG into a file named .png would leave a file no viewer opens as one.
func checkSVGName(_ path: String, subcommand: String) throws {
  let name = path.split(separator: "/").last.map(String.init) ?? path
  guard let dot = name.lastIndex(of: "."), dot != name.startIndex else { return }
  guard name[name.index(after: dot)...].lowercased() != "svg" else { return }
  throw ValidationError(
    "\(path): elfload \(subcommand) writes SVG only: name the file .svg (rsvg-convert FILE.svg -o FILE.png converts it)")
}

/// Writes `svg` to `path`, or a usage error naming the file.
func writeSVG(_ svg: String, to path: String) throws {
  do {
    let fd = try Kernel.createFile(Array(path.utf8))
    defer { Kernel.close(fd) }
    try Kernel.writeAll(fd, Array(svg.utf8))
  } catch {
    throw ValidationError("\(path): cannot write it: \(error)")
  }
}
