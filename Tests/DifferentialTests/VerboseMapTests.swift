// --verbose's account of what was mapped, segment by segment, against the program headers
// readelf reads: the page ranges, protections, file offsets, the zeroed tail and the bss.
import Foundation
import Testing

@Suite("--verbose: each segment's mapping as the program headers give it")
struct VerboseMapTests {
  /// (offset, vaddr, filesz, memsz, protection) of each PT_LOAD, from readelf -lW.
  static func loads(_ program: String) throws -> [(UInt64, UInt64, UInt64, UInt64, String)] {
    try Readelf.programHeaders(program).headers.filter { $0.type == "LOAD" }.map { ($0.offset, $0.vaddr, $0.filesz, $0.memsz, $0.flags) }
  }

  static func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }

  /// The lines --verbose must print for each PT_LOAD of a static executable (fixed addresses).
  static func expected(_ program: String, demand: Bool) throws -> [String] {
    let page: UInt64 = 4096
    var lines: [String] = []
    for (offset, vaddr, filesz, memsz, protection) in try loads(program) {
      let start = vaddr & ~(page - 1)
      let fileEnd = vaddr + filesz
      let filePagesEnd = (fileEnd + page - 1) & ~(page - 1)
      let end = (vaddr + memsz + page - 1) & ~(page - 1)
      let fileOffset = offset & ~(page - 1)
      let range = "\(hex(start))-\(hex(filePagesEnd)) \(protection)"
      let tail = fileEnd < filePagesEnd && memsz > filesz ? "\(hex(fileEnd))-\(hex(filePagesEnd))" : nil
      if filePagesEnd == start {
        // No file bytes (a segment all bss): no file mapping.
      } else if !demand {
        lines.append("map \(range) file offset \(hex(fileOffset))" + (tail.map { ", zero \($0)" } ?? ""))
      } else if protection == "r--" {
        lines.append("map \(range) file offset \(hex(fileOffset)): read-only data, readable up front")
      } else {
        lines.append(
          "reserve \(range) on demand, file offset \(hex(fileOffset))"
            + (tail.map { ", page \(hex(filePagesEnd - page)) staged with \($0) zeroed" } ?? ""))
      }
      if end > filePagesEnd {
        lines.append(demand ? "reserve \(hex(filePagesEnd))-\(hex(end)) \(protection) on demand, anonymous (bss)" : "map \(hex(filePagesEnd))-\(hex(end)) \(protection) anonymous (bss)")
      }
    }
    return lines
  }

  @Test("eager and the signal pager's demand: a line per mapping, exactly", arguments: ["bss_tail", "touch_pages", "hello"])
  func segments(_ sample: String) throws {
    let program = Paths.sample(sample, .staticExec)
    for (options, demand) in [(["--mode", "eager"], false), (["--mode", "demand", "--pager", "signal"], true)] {
      let loaded = run([Paths.elfload, "--verbose"] + options + [program])
      #expect(loaded.ending == run([program]).ending, "\(loaded)")
      let said = loaded.stderr.split(separator: "\n").map(String.init).filter { $0.hasPrefix("elfload: map 0x") || $0.hasPrefix("elfload: reserve 0x") }
        .map { String($0.dropFirst("elfload: ".count)) }
      let expected = try Self.expected(program, demand: demand)
      #expect(expected.count >= 3)
      #expect(said == expected, "\(options)")
    }
  }

  /// The interpreter's line: its path as PT_INTERP names it, its base where the program's own
  /// /proc/self/maps finds its first mapping, its entry that base plus its e_entry (readelf -h).
  @Test("-v names the interpreter, its base and entry: where the program's maps find it, plus its e_entry")
  func interpreterLine() throws {
    let program = "/bin/cat"
    let interpreter = try #require(try Readelf.programHeaders(program).interpreter)
    let file = URL(fileURLWithPath: interpreter).resolvingSymlinksInPath().path
    let loaded = run([Paths.elfload, "--mode", "eager", "-v", program, "/proc/self/maps"])
    #expect(loaded.ending == .exited(0), "\(loaded)")
    let first = loaded.stdout.split(separator: "\n").first { $0.hasSuffix(" " + file) }
    let base = try #require(first.flatMap { UInt64($0.prefix { $0 != "-" }, radix: 16) }, "\(file) in \(loaded.stdout)")
    let header = run(["/usr/bin/readelf", "-hW", interpreter]).stdout
    let entryLine = try #require(header.split(separator: "\n").first { $0.contains("Entry point address:") }, "\(header)")
    let entry = try #require(entryLine.split(separator: " ").last.flatMap { UInt64($0.dropFirst(2), radix: 16) }, "\(entryLine)")
    let line = "elfload: interpreter \(interpreter), base \(Self.hex(base)), entry \(Self.hex(base + entry))\n"
    #expect(loaded.stderr.contains(line), "\(line) not in:\n\(loaded.stderr)")
  }
}
