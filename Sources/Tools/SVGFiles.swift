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
