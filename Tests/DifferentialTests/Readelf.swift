// What readelf -lW reads of a file's program headers: the independent measure the tests hold
// elfload's own readings (inspect, --verbose, the trace's segment table) against.
import Testing

struct ReadelfHeader: Equatable, CustomStringConvertible {
  var index: Int
  var type: String  // as readelf names it: LOAD, GNU_STACK, ...
  var offset: UInt64
  var vaddr: UInt64
  var filesz: UInt64
  var memsz: UInt64
  var flags: String  // as elfload writes them: r-x
  var align: UInt64
  var description: String { "\(index) \(type) \(flags) offset \(offset) vaddr \(vaddr) filesz \(filesz) memsz \(memsz) align \(align)" }
}

enum Readelf {
  /// Every program header of `path`, in order, and the interpreter it requests.
  static func programHeaders(_ path: String) throws -> (headers: [ReadelfHeader], interpreter: String?) {
    let out = run(["/usr/bin/readelf", "-lW", path])
    try #require(out.ending == .exited(0), "\(out)")
    let lines = out.stdout.split(separator: "\n").map(String.init)
    let first = try #require(lines.firstIndex { $0.hasPrefix("  Type ") }) + 1
    var headers: [ReadelfHeader] = []
    var interpreter: String?
    for line in lines[first...] {
      if !line.hasPrefix("  ") { break }
      if line.contains("[Requesting program interpreter: ") {
        interpreter = line.split(separator: ": ").last.map { String($0.dropLast()) }
        continue
      }
      // TYPE OFFSET VIRTADDR PHYSADDR FILESIZ MEMSIZ FLG(one to three words: "R E") ALIGN
      let f = line.split(separator: " ").map(String.init)
      try #require(f.count >= 8, "\(line)")
      func hex(_ s: String) throws -> UInt64 { try #require(UInt64(s.dropFirst(2), radix: 16), "\(line)") }
      let flagText = f[6..<(f.count - 1)].joined()
      let flags = (flagText.contains("R") ? "r" : "-") + (flagText.contains("W") ? "w" : "-") + (flagText.contains("E") ? "x" : "-")
      headers.append(
        ReadelfHeader(
          index: headers.count, type: f[0], offset: try hex(f[1]), vaddr: try hex(f[2]), filesz: try hex(f[4]),
          memsz: try hex(f[5]), flags: flags, align: try hex(f[f.count - 1])))
    }
    return (headers, interpreter)
  }
}
