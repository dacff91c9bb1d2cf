// --residency: which pages of every mapping are resident when the program ends, under every
// policy and pager, checked against programs whose page touches are known; and the same
// picture of a native run (elfload residency --native FILE -- PROGRAM), checked the same way.
import Foundation
import FoundationXML
import Testing

@Suite("Residency")
struct ResidencyTests {
  static let scratch = scratchDirectory("residency")

  struct Row {
    var start: UInt64
    var perms: String
    var resident: Int
    var total: Int
    var pages: String
    var name: String
  }

  static func rows(_ path: String) throws -> [Row] {
    let all = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
    // (A format 2 file: the `# ` preamble with the segment table first.)
    #expect(all.first == "# elfload residency, format 2")
    let lines = all.drop { $0.hasPrefix("#") }
    #expect(lines.first == "start,end,perms,resident_pages,total_pages,pages,name")
    return lines.dropFirst().compactMap { line in
      let f = line.split(separator: ",", maxSplits: 6, omittingEmptySubsequences: false).map(String.init)
      guard f.count == 7, let start = UInt64(f[0].dropFirst(2), radix: 16), let resident = Int(f[3]),
        let total = Int(f[4])
      else {
        Issue.record("not a residency row: \(line)")
        return nil
      }
      return Row(start: start, perms: f[2], resident: resident, total: total, pages: f[5], name: f[6])
    }
  }

  static func residency(_ policy: Policy, _ program: [String], _ name: String) throws -> [Row] {
    let file = "\(scratch)/\(name)-\(policy.rawValue.replacingOccurrences(of: " ", with: "")).csv"
    let loaded = run([Paths.elfload] + policy.options + ["--residency", file] + program)
    #expect(loaded.ending == .exited(0), "\(loaded)")
    #expect(loaded.stderr == "", "\(loaded)")
    return try rows(file)
  }

  /// touch_pages touches bss pages 0-99 of 200: exactly those are resident,
  /// under every policy -- but under hybrid 64 and auto with userfaultfd, whose
  /// prefetched pages are copied in (resident) where the signal pager's are
  /// only made accessible (not present until touched).
  /// A segment of no pages in the file's segment table (a PT_LOAD whose memsz is 0: legal, and
  /// mapped by nothing) gets no strip: the picture is the one drawn without it.
  @Test func emptySegmentNotDrawn() throws {
    let file = "\(Self.scratch)/empty-segment.csv", withEmpty = "\(Self.scratch)/empty-segment-2.csv"
    let program = Paths.sample("hello", .staticExec)
    #expect(run([Paths.elfload, "--residency", file, program]).ending == .exited(0))
    var lines = try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
    let last = try #require(lines.lastIndex { $0.hasPrefix("# 0,") }, "\(lines.prefix(8))")
    let fields = lines[last].split(separator: ",")
    try #require(fields.count == 8, "\(lines[last])")
    lines.insert("# 0,9,PT_LOAD,rw-,0,\(fields[6]),\(fields[6]),\(fields[7])", at: last + 1)
    FileManager.default.createFile(atPath: withEmpty, contents: Data(lines.joined(separator: "\n").utf8))
    let drawn = run([Paths.elfload, "residency", file, "-o", file + ".svg"])
    let drawnWithEmpty = run([Paths.elfload, "residency", withEmpty, "-o", withEmpty + ".svg"])
    #expect(drawn.ending == .exited(0) && drawnWithEmpty.ending == .exited(0), "\(drawnWithEmpty)")
    let svg = try String(contentsOfFile: file + ".svg", encoding: .utf8)
    let svgWithEmpty = try String(contentsOfFile: withEmpty + ".svg", encoding: .utf8)
    #expect(svgWithEmpty.replacingOccurrences(of: withEmpty, with: file) == svg, "\(drawnWithEmpty)")
  }

  /// A mapping that runs past its segment at both ends (the code segment's table entry made two
  /// pages shorter at each end): the pages outside are strips of their own, drawn exactly as the
  /// same pages are when they come as mappings of their own (the row cut in three).
  @Test func mappingPastItsSegment() throws {
    let file = "\(Self.scratch)/past.csv", shrunk = "\(Self.scratch)/past-shrunk.csv", cut = "\(Self.scratch)/past-cut.csv"
    #expect(run([Paths.elfload, "--residency", file, Paths.sample("hello", .staticExec)]).ending == .exited(0))
    let lines = try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n").map(String.init)
    func hex(_ s: Substring) -> UInt64? { s.hasPrefix("0x") ? UInt64(s.dropFirst(2), radix: 16) : nil }
    func address(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }
    // The code segment's entry: `# image,segment,type,flags,pages,start,end,path`.
    let entry = try #require(lines.firstIndex { $0.hasPrefix("# 0,") && $0.contains(",r-x,") }, "\(lines.prefix(8))")
    let e = lines[entry].split(separator: ",", maxSplits: 7).map(String.init)
    let start = try #require(hex(e[5][...])), end = try #require(hex(e[6][...]))
    let rowAt = try #require(lines.firstIndex { $0.hasPrefix("\(address(start)),\(address(end)),") }, "\(lines)")
    let r = lines[rowAt].split(separator: ",", maxSplits: 6, omittingEmptySubsequences: false).map(String.init)
    let pages = Array(r[5])
    try #require(pages.count == Int((end - start) / 4096) && pages.count > 4, "\(lines[rowAt])")
    let inner = (start + 2 * 4096, end - 2 * 4096)
    var shrunkLines = lines, cutLines = lines
    let entryShrunk = "\(e[0]),\(e[1]),\(e[2]),\(e[3]),\(pages.count - 4),\(address(inner.0)),\(address(inner.1)),\(e[7])"
    shrunkLines[entry] = entryShrunk
    cutLines[entry] = entryShrunk
    func row(_ from: UInt64, _ to: UInt64) -> String {
      let part = pages[Int((from - start) / 4096)..<Int((to - start) / 4096)]
      return "\(address(from)),\(address(to)),\(r[2]),\(part.filter { $0 == "#" }.count),\(part.count),\(String(part)),\(r[6])"
    }
    cutLines[rowAt...rowAt] = [row(start, inner.0), row(inner.0, inner.1), row(inner.1, end)]
    FileManager.default.createFile(atPath: shrunk, contents: Data(shrunkLines.joined(separator: "\n").utf8))
    FileManager.default.createFile(atPath: cut, contents: Data(cutLines.joined(separator: "\n").utf8))
    let drawnShrunk = run([Paths.elfload, "residency", shrunk, "-o", shrunk + ".svg"])
    let drawnCut = run([Paths.elfload, "residency", cut, "-o", cut + ".svg"])
    #expect(drawnShrunk.ending == .exited(0) && drawnCut.ending == .exited(0), "\(drawnShrunk) \(drawnCut)")
    // Two strips more than the unchanged file's, each two pages of the row's own.
    let drawn = run([Paths.elfload, "residency", file, "-o", file + ".svg"])
    let strips = { (o: Outcome) in o.stdout.split(separator: " ").dropFirst().first.flatMap { Int($0) } }
    #expect(strips(drawnShrunk) == strips(drawn).map { $0 + 2 }, "\(drawn) \(drawnShrunk)")
    let svgShrunk = try String(contentsOfFile: shrunk + ".svg", encoding: .utf8)
    #expect(svgShrunk.contains("\(address(start))-\(address(inner.0))") && svgShrunk.contains("\(address(inner.1))-\(address(end))"))
    // The same picture as the cut file's, but for its name and its two mappings more.
    let mappings = lines.count { $0.hasPrefix("0x") && !$0.contains(",[elfload: ") }
    let svgCut = try String(contentsOfFile: cut + ".svg", encoding: .utf8)
      .replacingOccurrences(of: cut, with: shrunk)
      .replacingOccurrences(of: " in \(mappings + 2) mappings;", with: " in \(mappings) mappings;")
    #expect(svgShrunk == svgCut, "\(drawnShrunk) \(drawnCut)")
  }

  @Test("the bss of a program whose touches are known: exactly the touched pages", arguments: Policy.allCases)
  func touchedPages(_ policy: Policy) throws {
    let rows = try Self.residency(policy, [Paths.sample("touch_pages", .staticExec)], "touch")
    // The bss segment, [0x402000, 0x4ca000): one mapping, or (under the
    // signal pager, which makes touched pages accessible by mprotect) a
    // run of accessible pages and a run of PROT_NONE ones.
    let bss = rows.filter { $0.start >= 0x402000 && $0.start < 0x4ca000 }
    #expect(bss.reduce(0) { $0 + $1.total } == 200, "\(bss)")
    // (--prefetch auto's last window, 64 pages from page 67 on, ends at page 130.)
    let expected = policy == .hybrid64Uffd ? 130 : policy == .hybridAutoUffd ? 131 : 100
    #expect(bss.reduce(0) { $0 + $1.resident } == expected, "\(bss)")
    #expect(
      bss.map(\.pages).joined() == String(repeating: "#", count: expected) + String(repeating: ".", count: 200 - expected))
    // The code page was run; every row's picture agrees with its count.
    #expect(rows.contains { $0.perms == "r-xp" && $0.total == 1 && $0.resident == 1 && $0.start == 0x401000 })
    #expect(rows.contains { $0.name == "[stack]" && $0.resident > 0 })
    for row in rows where !row.pages.isEmpty {
      #expect(row.pages.count == row.total && row.pages.filter { $0 == "#" }.count == row.resident, "\(row)")
    }
  }

  /// The signal pager's `prefetched_unused` (its watcher's count over the demand regions' page
  /// states) against the same run's trace and residency picture, written by other code: the
  /// pages the trace says were prefetched that the picture shows absent at the end. Programs
  /// whose regions touch (a segment's file pages and its bss, text and rodata), where a count that
  /// strays one page past a region counts its neighbour's first page again.
  @Test(
    "prefetched_unused: the trace's prefetched pages the residency picture shows absent",
    arguments: [Policy.hybrid4, .hybrid64, .hybridAuto])
  func prefetchedUnusedAgainstPicture(_ policy: Policy) throws {
    let programs = [
      ("hello", Flavour.staticExec), ("hello", .dynamic), ("around_pages", .staticExec), ("around_pages", .staticPIE),
      ("sparse", .dynamic), ("measured", .staticPIE),
    ]
    for (sample, flavour) in programs {
      let name = "unused-\(sample)-\(flavour.rawValue)-\(policy.rawValue.replacingOccurrences(of: " ", with: ""))"
      let (csv, trace, json) = ("\(Self.scratch)/\(name).csv", "\(Self.scratch)/\(name)-trace.csv", "\(Self.scratch)/\(name).json")
      let program = Paths.sample(sample, flavour)
      let loaded = run(
        [Paths.elfload] + policy.options + ["--residency", csv, "--trace", trace, "--stats-json", json, program])
      #expect(loaded.ending == run([program]).ending, "\(name): \(loaded)")
      let rows = try Self.rows(csv)
      let traceRows = try String(contentsOfFile: trace, encoding: .utf8).split(separator: "\n")
        .filter { !$0.hasPrefix("#") }.dropFirst().map { $0.split(separator: ",") }
      let prefetched: [UInt64] = traceRows.filter { $0.count > 6 && $0[6] == "prefetch" }
        .compactMap { UInt64($0[2].dropFirst(2), radix: 16) }
      // Each prefetched page in its row's picture: '#' resident, '.' not.
      func picture(_ page: UInt64) -> Character? {
        for row in rows where !row.pages.isEmpty && row.start <= page {
          let index = Int((page - row.start) / 4096)
          if index < row.pages.count { return Array(row.pages)[index] }
        }
        return nil
      }
      let seen: [Character] = prefetched.compactMap(picture)
      #expect(seen.count == prefetched.count, "\(name): prefetched pages outside every pictured mapping")
      let stats = try #require(
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any])
      #expect(stats["pages_prefetched"] as? Int == prefetched.count, "\(name): \(stats)")
      #expect(stats["prefetched_unused"] as? Int == seen.filter { $0 == "." }.count, "\(name): \(stats)")
    }
  }

  /// A mapping too large to picture page by page (bench3_bss's 64 MiB bss,
  /// 1 MiB of it touched) still has its count.
  /// The watcher's first act is a pidfd for the program; if the program has already ended and
  /// been reaped (ESRCH), it reads what the address space it still holds has left at once. The
  /// watcher almost always wins that race; `Samples/late_pidfd_open` holds its pidfd_open until
  /// the program is gone, so it always loses: the same rows and prefetched_unused as without it.
  @Test("the program gone before the watcher looks: the same residency and prefetched_unused",
        arguments: [Policy.demand, .hybrid4] + Policy.uffd.prefix(1))
  func programGoneFirst(_ policy: Policy) throws {
    // touch_pages: the pages it touches are known (touchedPages), so every count is the same each run.
    let program = Paths.sample("touch_pages", .staticExec)
    let loads = try Readelf.programHeaders(program).headers.filter { $0.type == "LOAD" }
    let image = try #require(loads.first).vaddr..<(try #require(loads.last.map { $0.vaddr + $0.memsz }))
    let name = policy.rawValue.replacingOccurrences(of: " ", with: "")
    var seen: [(rows: [String], unused: String)] = []
    for late in [false, true] {
      let json = "\(Self.scratch)/gone-first-\(name)-\(late).json", file = "\(Self.scratch)/gone-first-\(name)-\(late).csv"
      let outcome = run(
        (late ? [Paths.samples + "/late_pidfd_open"] : []) + [Paths.elfload] + policy.options
          + ["--stats-json", json, "--residency", file, program])
      #expect(outcome == run([program]), "late \(late): \(outcome)")
      // The program's own mappings (at its fixed addresses, as readelf says): elfload's and the stack's move.
      let rows = try Self.rows(file).filter { image.contains($0.start) }.map { "\($0.start) \($0.perms) \($0.resident)/\($0.total)" }
      let stats = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any])
      seen.append((rows, "\(stats["prefetched_unused"] ?? "none")"))
    }
    #expect(seen[0].rows.count >= loads.count && seen[1].rows == seen[0].rows, "\(seen)")
    #expect(seen[1].unused == seen[0].unused, "\(seen)")
    if !policy.usesUffd { #expect(Int(seen[0].unused) != nil, "\(seen)") }
  }

  @Test("a large bss: counted, not pictured", arguments: [Policy.eager, .demand] + Policy.uffd.prefix(1))
  func largeBss(_ policy: Policy) throws {
    let rows = try Self.residency(policy, [Paths.sample("bench3_bss", .staticExec), "1"], "bench3")
    // The program's writable data and bss (a static executable, from 0x400000 on):
    // however the pager split it, 256 pages touched, and a few of .data's.
    let data = rows.filter { $0.start < 0x1000_0000 && !$0.perms.hasPrefix("r-") }
    #expect(data.contains { $0.total > 4096 && $0.pages == "" }, "\(data)")
    let resident = data.reduce(0) { $0 + $1.resident }
    #expect(resident >= 256 && resident < 256 + 32, "\(data)")
  }

  /// ld.so's libraries are in the picture, under every policy.
  @Test("a dynamic program's libraries, heap and stack appear", arguments: Policy.allCases)
  func libraries(_ policy: Policy) throws {
    let rows = try Self.residency(policy, [Paths.sample("hello", .dynamic)], "hello")
    let libc = rows.filter { $0.name.hasSuffix("/libc.so.6") }
    #expect(!libc.isEmpty && libc.contains { $0.resident > 0 }, "\(rows.map(\.name))")
    #expect(rows.contains { $0.name == "[stack]" && $0.resident > 0 })
    #expect(rows.contains { $0.name == "[elfload: handler and watcher]" })
    if policy == .eager || policy.signalPaged {
      // The interpreter elfload mapped (the userfaultfd pager's copies are anonymous).
      #expect(rows.contains { $0.name.hasSuffix("ld-linux-x86-64.so.2") && $0.resident > 0 }, "\(rows.map(\.name))")
    }
  }

  @Test("the program's output and status are its own")
  func unchanged() {
    let program = Paths.sample("exit_code", .staticExec)
    let native = run([program, "5"])
    let loaded = run([Paths.elfload, "--residency", "\(Self.scratch)/exit.csv", program, "5"])
    #expect(loaded == native, "\(loaded)")
  }

  /// The watcher that writes the rows is a process beside the program, in its process group: a
  /// signal the program sends its whole group reaches it too, and must neither end it (the rows
  /// would be lost) nor run the program's handler a second time in the memory they share.
  @Test("a signal to the program's whole group: the program's handler runs once, the rows are written", arguments: [Policy.demand, .hybrid64] + Policy.uffd.prefix(1))
  func groupSignal(_ policy: Policy) throws {
    // setsid: a group of its own, elfload's and the program's, not the test runner's.
    let script = "trap 'echo handled' USR1; kill -USR1 0; kill -TERM 0; echo done"
    let program = ["/usr/bin/busybox", "sh", "-c", "trap 'echo terminated' TERM; " + script]
    let native = run(["/usr/bin/setsid", "-w"] + program)
    #expect(native.stdout == "handled\nterminated\ndone\n" && native.stderr == "" && native.ending == .exited(0), "\(native)")
    let file = "\(Self.scratch)/group-signal-\(policy.rawValue.replacingOccurrences(of: " ", with: "")).csv"
    // The signals come in the program's first milliseconds: before the watcher (and the
    // userfaultfd server) had run at all, on a busy machine, until they were started with every
    // signal blocked (1 run of the suite in a few lost the rows): ten runs each.
    for attempt in 1...10 {
      let loaded = run(["/usr/bin/setsid", "-w", Paths.elfload] + policy.options + ["--residency", file] + program)
      #expect(loaded == native, "run \(attempt): \(loaded)")
      #expect(try Self.rows(file).contains { $0.name == "[stack]" && $0.resident > 0 }, "run \(attempt)")
    }
  }

  /// The largest mapping drawn page by page is 4096 pages; one page more is counted only: the same
  /// in elfload's rows (its watcher) and in a native run's (residency --native), two writers. And
  /// a mapping of 1000 pages, two of them written, drawn page by page to its end.
  @Test("a mapping of 4096 pages is pictured, of 4097 counted only, by both writers", .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/python3.11")))
  func picturedUpTo4096Pages() throws {
    // Two private anonymous mappings, not merged (their permissions differ), held to the end.
    let script = """
      import mmap, os
      a = mmap.mmap(-1, 4096 * 4096, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ)
      b = mmap.mmap(-1, 4097 * 4096, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ | mmap.PROT_EXEC)
      c = mmap.mmap(-1, 1000 * 4096, flags=mmap.MAP_PRIVATE | 0x4000)  # MAP_NORESERVE: merged with no heap
      c[0] = 1
      c[999 * 4096] = 1
      os._exit(0)
      """
    let program = ["/usr/bin/python3.11", "-c", script]
    let (outcome, file) = Self.nativeResidency(program, "pictured")
    #expect(outcome.ending == .exited(0) && outcome.stderr == "", "\(outcome)")
    for (who, rows) in [("native", try Self.rows(file)), ("elfload", try Self.residency(.eager, program, "pictured"))] {
      let a = rows.filter { $0.perms == "r--p" && $0.total == 4096 && $0.name == "" }
      let b = rows.filter { $0.perms == "r-xp" && $0.total == 4097 && $0.name == "" }
      #expect(a.count == 1 && a.first?.pages == String(repeating: ".", count: 4096), "\(who): \(a)")
      #expect(b.count == 1 && b.first?.pages == "" && b.first?.resident == 0, "\(who): \(b)")
      // Not a multiple of the 512 pages pagemap is read in at a time: its first and last written.
      let c = rows.filter { $0.perms == "rw-p" && $0.total == 1000 && $0.name == "" }
      #expect(c.count == 1 && c.first?.pages == "#" + String(repeating: ".", count: 998) + "#" && c.first?.resident == 2, "\(who): \(c)")
    }
  }

  /// A native run's residency (no elfload in the program's process), and its outcome.
  static func nativeResidency(_ program: [String], _ name: String) -> (Outcome, String) {
    let file = "\(scratch)/native-\(name).csv"
    try? FileManager.default.removeItem(atPath: file)
    return (run([Paths.elfload, "residency", "--native", file, "--"] + program), file)
  }

  @Test("--native: a native run's bss holds exactly the touched pages, as under elfload")
  func nativeTouchedPages() throws {
    let program = Paths.sample("touch_pages", .staticExec)
    let (outcome, file) = Self.nativeResidency([program], "touch")
    #expect(outcome == run([program]), "\(outcome)")
    let rows = try Self.rows(file)
    // The kernel's own mapping of the segments: the bss segment [0x402000, 0x4ca000), 100 of its 200 pages touched.
    let bss = rows.filter { $0.start >= 0x402000 && $0.start < 0x4ca000 }
    #expect(bss.reduce(0) { $0 + $1.total } == 200, "\(bss)")
    #expect(bss.map(\.pages).joined() == String(repeating: "#", count: 100) + String(repeating: ".", count: 100))
    #expect(rows.contains { $0.perms == "r-xp" && $0.start == 0x401000 && $0.resident == 1 && $0.name == program })
    #expect(rows.contains { $0.name == "[stack]" && $0.resident > 0 })
    #expect(!rows.contains { $0.name.hasPrefix("[elfload") }, "\(rows.map(\.name))")
    for row in rows where !row.pages.isEmpty {
      #expect(row.pages.count == row.total && row.pages.filter { $0 == "#" }.count == row.resident, "\(row)")
    }
    // The program's own mappings as elfload's eager policy leaves them.
    let loaded = try Self.residency(.eager, [program], "touch-against-native")
    func image(_ rows: [Row]) -> [String] {
      rows.filter { $0.name == program }.map { "\($0.start) \($0.perms) \($0.resident)/\($0.total) \($0.pages)" }
    }
    #expect(image(rows) == image(loaded))
  }

  @Test("--native: the program's output and status are its own, a signal's death included; 127 and 126 as elfload's")
  func nativeUnchanged() throws {
    for program in [[Paths.sample("exit_code", .staticExec), "5"], [Paths.sample("null", .dynamic)], ["/bin/echo", "a,b"]] {
      let (outcome, file) = Self.nativeResidency(program, "unchanged")
      #expect(outcome == run(program), "\(program): \(outcome)")
      #expect(try Self.rows(file).contains { $0.name == "[stack]" }, "\(program)")
    }
    let missing = run([Paths.elfload, "residency", "--native", "\(Self.scratch)/missing.csv", "--", "/nonexistent/program"])
    #expect(missing.ending == .exited(127), "\(missing)")
    #expect(missing.stderr == "elfload: /nonexistent/program: no such file or directory\n", "\(missing)")
    // A file execve refuses (no execute permission: EACCES, for root too): 126, as elfload says it.
    let plain = "\(Self.scratch)/not-executable"
    FileManager.default.createFile(atPath: plain, contents: Data("x".utf8), attributes: [.posixPermissions: 0o644])
    let refused = run([Paths.elfload, "residency", "--native", "\(Self.scratch)/refused.csv", "--", plain])
    #expect(refused == Outcome(stdout: "", stderr: "elfload: \(plain): cannot be run (execve failed)\n", ending: .exited(126), seconds: 0), "\(refused)")
    #expect(run([Paths.elfload, plain]).ending == .exited(126))
  }

  @Test("--native: the program holds exactly the descriptors it holds when run natively")
  func nativeDescriptors() {
    // (The pipe the child waits on until it is traced is closed, both ends, before the exec.)
    let program = ["/bin/ls", "/proc/self/fd"]
    let (outcome, _) = Self.nativeResidency(program, "descriptors")
    let native = run(program)
    #expect(native.ending == .exited(0) && native.stdout.hasPrefix("0\n1\n2\n"), "\(native)")
    #expect(outcome == native, "\(outcome)")
  }

  /// The pipe the child waits on is closed in the parent too, both ends, once the child is traced:
  /// every pipe `residency --native` holds while the program runs is one the program holds as well
  /// (its output, when that is a pipe), as the program sees them in /proc/PPID/fd and /proc/self/fd.
  @Test("--native: the parent keeps no pipe of its own while the program runs")
  func nativeParentDescriptors() {
    let script = """
      d=$(mktemp -d)
      for f in /proc/$PPID/fd/*; do readlink "$f"; done | grep '^pipe:' | sort -u > "$d/parent"
      for f in /proc/$$/fd/*; do readlink "$f"; done | grep '^pipe:' | sort -u > "$d/own"
      comm -23 "$d/parent" "$d/own"
      rm -r "$d"
      """
    let (outcome, _) = Self.nativeResidency(["/bin/sh", "-c", script], "parent-descriptors")
    #expect(outcome.stdout == "" && outcome.stderr == "" && outcome.ending == .exited(0), "\(outcome)")
  }

  @Test("--native when ptrace is refused: a clear error, and the program never runs")
  func nativeUntraceable() {
    // deny_ptrace (Samples/deny_ptrace.c) refuses ptrace with EPERM, and ends only when every
    // process it started has: a child left to become the program would write "ran".
    let file = "\(Self.scratch)/native-untraceable.csv"
    let refused = run([
      Paths.samples + "/deny_ptrace", Paths.elfload, "residency", "--native", file, "--", "/bin/echo", "ran",
    ])
    #expect(refused.ending == .exited(71), "\(refused)")
    #expect(refused.stdout == "", "the program ran untraced: \(refused)")
    #expect(refused.stderr == "elfload residency: cannot trace the program (ptrace: Operation not permitted)\n", "\(refused)")
    // The helper itself leaves a traceable command alone.
    #expect(run([Paths.samples + "/deny_ptrace", "/bin/echo", "ran"]) == run(["/bin/echo", "ran"]))
  }

  /// Traced, a program that stops itself (SIGSTOP to its own process) stays stopped, as natively,
  /// until something sends it SIGCONT: here a child of it that reads its state in /proc first.
  @Test("--native: a program that stops itself stays stopped until continued")
  func nativeGroupStop() {
    let script = "(sleep 0.5; read -r s < /proc/$$/stat; set -- $s; echo \"state $3\"; kill -CONT $$) & kill -STOP $$; wait; echo resumed"
    let program = ["/usr/bin/busybox", "sh", "-c", script]
    let native = run(program)
    #expect(native.stdout == "state T\nresumed\n" && native.stderr == "" && native.ending == .exited(0), "\(native)")
    // Traced, the stop is a ptrace stop: "t" in /proc, the program still not running.
    let (outcome, _) = Self.nativeResidency(program, "group-stop")
    #expect(outcome.stdout == "state t\nresumed\n" && outcome.stderr == "" && outcome.ending == .exited(0), "\(outcome)")
  }

  @Test("--native: a dynamic program's libraries, its interpreter and stack, drawn as the others")
  func nativeLibraries() throws {
    let (outcome, file) = Self.nativeResidency([Paths.sample("hello", .dynamic)], "hello")
    #expect(outcome.ending == .exited(0) && outcome.stdout == "hello, world\n", "\(outcome)")
    let rows = try Self.rows(file)
    #expect(rows.contains { $0.name.hasSuffix("/libc.so.6") && $0.resident > 0 }, "\(rows.map(\.name))")
    #expect(rows.contains { $0.name.hasSuffix("ld-linux-x86-64.so.2") && $0.resident > 0 }, "\(rows.map(\.name))")
    let svg = "\(Self.scratch)/native-hello.svg"
    let drawn = run([Paths.elfload, "residency", file, "-o", svg])
    #expect(drawn.stdout.hasPrefix("\(svg): ") && drawn.stdout.hasSuffix(" from \(rows.count) mappings, \(rows.reduce(0) { $0 + $1.resident }) pages resident\n"), "\(drawn)")
    #expect(XMLParser(data: try Data(contentsOf: URL(fileURLWithPath: svg))).parse())
  }

  @Test("residency draws a strip per mapping as well-formed SVG")
  func drawn() throws {
    let csv = "\(Self.scratch)/drawn.csv"
    let svg = "\(Self.scratch)/drawn.svg"
    let loaded = run(
      [Paths.elfload, "--residency", csv, Paths.sample("hello", .dynamic)])
    #expect(loaded.ending == .exited(0), "\(loaded)")
    let rows = try Self.rows(csv)
    let drawn = run([Paths.elfload, "residency", csv, "-o", svg])
    #expect(drawn.ending == .exited(0), "\(drawn)")
    // elfload's own memory is left out of the strips and the totals, and said.
    let own = rows.filter { $0.name.hasPrefix("[elfload: ") }
    let program = rows.filter { !$0.name.hasPrefix("[elfload: ") }
    #expect(!own.isEmpty)
    #expect(
      drawn.stdout.hasSuffix(
        " from \(program.count) mappings, \(program.reduce(0) { $0 + $1.resident }) pages resident; elfload's own \(own.count) mappings left out\n"),
      "\(drawn)")
    let text = try String(contentsOfFile: svg, encoding: .utf8)
    #expect(text.contains("libc.so.6"))
    #expect(!text.contains(">[elfload: "))
    let parser = XMLParser(data: Data(text.utf8))
    #expect(parser.parse(), "not well-formed: \(String(describing: parser.parserError))")

    let bad = run([Paths.elfload, "residency", "/etc/hostname", "-o", svg])
    #expect(bad.ending != .exited(0))
    #expect(bad.stderr.contains("not an elfload --residency file"), "\(bad)")
  }
}
