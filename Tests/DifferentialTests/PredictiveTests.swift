// Predictive paging: --prefetch auto's exact faults on programs whose touches are known, record and
// replay compared with native runs, stale, truncated and malformed profiles, and --cold.
import Foundation
import Testing

@Suite("Predictive paging")
struct PredictiveTests {
  static let scratch = scratchDirectory("predictive")
  static let pagers: [String] = ["signal"] + (Policy.uffdAvailable ? ["uffd"] : [])

  /// What --prefetch auto does on a sample, fault by fault (predictor.h's rule).
  struct Expected: Sendable, CustomTestStringConvertible {
    var sample: String
    /// The bss pages that fault, in order (the code page faults first, apart).
    var faultingPages: [Int]
    /// bss pages mapped (the code page apart).
    var mapped: Int
    var hits: Int
    var misses: Int
    /// Prefetched pages never touched (the signal pager's watcher counts them).
    var unused: Int
    var testDescription: String { sample }
  }

  static let expectations = [
    // bss pages 0-99 in order: the stride (1 page) is seen at page 2, which
    // opens a window of 4 (3-6); hits at 7, 16, 33, 66 double it to 8, 16,
    // 32, 64 (67-130: 31 of them never touched).
    Expected(sample: "touch_pages", faultingPages: [0, 1, 2, 7, 16, 33, 66], mapped: 131, hits: 4, misses: 0, unused: 31),
    // Every 4th page, 0-396: the stride (4 pages) is seen at page 8 (window
    // 12-24), hits at 28, 64, 132, 264 (whose window of 64 is cut to the 33
    // pages left: 268-396); then page 3 is a miss that closes the window,
    // page 2 a new candidate stride (-1), page 1 repeats it (its window holds
    // only page 0, mapped already).
    Expected(
      sample: "stride_pages", faultingPages: [0, 4, 8, 28, 64, 132, 264, 3, 2, 1], mapped: 103, hits: 4, misses: 1,
      unused: 0),
  ]

  /// A sample run under --prefetch auto with `pager`, compared with its native run: its name
  /// for messages, its --stats-json object, and its trace's lines and rows (the preamble apart).
  static func runAuto(_ sample: String, _ flavour: Flavour, _ pager: String) throws -> (
    name: String, stats: [String: Any], lines: [String], rows: [[String]]
  ) {
    let program = Paths.sample(sample, flavour)
    let name = "\(sample)-\(flavour.rawValue)-\(pager)"
    let json = "\(Self.scratch)/\(name).json"
    let trace = "\(Self.scratch)/\(name).csv"
    let native = run([program])
    let loaded = run(
      [Paths.elfload, "--mode", "hybrid", "--prefetch", "auto", "--pager", pager, "--stats-json", json, "--trace", trace, program])
    #expect(loaded == native, "native:\n\(native)\nunder elfload:\n\(loaded)")
    let stats = try #require(
      try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any])
    let lines = try String(contentsOfFile: trace, encoding: .utf8).split(separator: "\n").map(String.init)
    let rows = lines.filter { !$0.hasPrefix("#") }.dropFirst().map { $0.split(separator: ",").map(String.init) }
    return (name, stats, lines, rows)
  }

  @Test("--prefetch auto: the faults, hits and misses the rule predicts", arguments: expectations, pagers)
  func autoCounts(_ expected: Expected, _ pager: String) throws {
    try Self.checkAuto(expected, pager)
  }

  /// walk_pages (Samples/walk_pages.S) under --prefetch auto, fault by fault: forward through its
  /// 64 .data pages, file pages (the fault-around block around the first, then readahead runs
  /// of 2, 4, ... blocks, the last cut at the region's end), and backward through its 400 bss
  /// pages, a stride of -1 page (seen at the third fault from the end: a window of 4 below it,
  /// doubled at each hit, the last cut at the region's start). Where the block falls depends on
  /// the segment's address (a static PIE's moves from run to run): it is read from the trace's
  /// segment table, and the .data faults follow from it by the rule (predictor.h).
  @Test("--prefetch auto forward to a region's end and backward to its start, fault by fault", arguments: pagers)
  func autoBothWays(_ pager: String) throws {
    let block = pager == "uffd" ? 16 : 64
    for flavour in [Flavour.staticExec, .staticPIE] {
      let (name, stats, lines, rows) = try Self.runAuto("walk_pages", flavour, pager)
      try #require(rows.allSatisfy { $0.count == 10 }, "\(name): \(rows.filter { $0.count != 10 })")
      // The writable segment: the table's last row. Its file pages end where its bss begins:
      // 64 .data pages, after a page of the PIE's dynamic section (0x2f30 onwards).
      let table = lines.filter { $0.hasPrefix("# ") && $0.dropFirst(2).first?.isNumber == true }
        .map { $0.dropFirst(2).split(separator: ",").map(String.init) }
      let segment = try #require(table.last, "\(name): \(table)")
      try #require(segment.count == 8 && segment[3] == "rw-", "\(name): \(segment)")
      let start = try #require(UInt64(segment[5].dropFirst(2), radix: 16), "\(segment)") / 4096
      let pages = try #require(Int(segment[4]), "\(segment)")
      let firstData = flavour == .staticPIE ? 1 : 0
      let fileEnd = firstData + 64
      #expect(pages == fileEnd + 400, "\(name): \(segment)")

      // Forward: the block around the first .data page, then readahead from the page after it.
      let blockStart = Int(start + UInt64(firstData)) / block * block - Int(start)
      var next = min(blockStart + block, fileEnd)
      var dataFaults = [firstData]
      let around = next - max(blockStart, 0) - 1
      var (run, readaheadHits, readaheadPages) = (block, 0, 0)
      while next < fileEnd {
        dataFaults.append(next)
        run = min(run * 2, 512)
        let end = min(next + run, fileEnd)
        (readaheadHits, readaheadPages, next) = (readaheadHits + 1, readaheadPages + end - next - 1, end)
      }
      // Backward: pages 399, 398, 397 of the bss, then one past each window of 4, 8, ... 256.
      let bssFaults = [399, 398, 397, 392, 383, 366, 333, 268, 139].map { fileEnd + $0 }

      // In the PIE, page 0 (its dynamic section) is touched by nobody: it comes with the first
      // block unless that block starts at page 1 (the PIE placed so that page 1 is aligned).
      let untouched = max(blockStart, 0)
      let data = rows.filter { $0[4] == segment[1] }
      #expect(data.filter { $0[6] == "fault" }.compactMap { Int($0[5]) } == dataFaults + bssFaults, "\(name)")
      #expect(Set(data.map { $0[5] }).count == data.count && data.count == pages - untouched, "\(name): a page installed twice, or missing")
      let why = Dictionary(grouping: data, by: { $0[9] }).mapValues(\.count)
      #expect(
        why == ["touched": dataFaults.count + bssFaults.count, "around": around, "readahead": readaheadPages, "stride": 391]
          .filter { $0.value > 0 }, "\(name): \(why)")
      // Which mechanism brought each page: fault-around and readahead in the file pages, strides in the bss.
      #expect(data.allSatisfy { $0[9] != "stride" || Int($0[5]) ?? 0 >= fileEnd }, "\(name)")
      #expect(data.allSatisfy { !["around", "readahead"].contains($0[9]) || Int($0[5]) ?? .max < fileEnd }, "\(name)")
      #expect(stats["loader_faults"] as? Int == 1 + dataFaults.count + bssFaults.count, "\(name): \(stats)")
      #expect(stats["pages_mapped"] as? Int == 1 + pages - untouched, "\(name): \(stats)")
      #expect(stats["around_pages"] as? Int == around, "\(name): \(stats)")
      #expect(stats["readahead_hits"] as? Int == readaheadHits && stats["readahead_pages"] as? Int == readaheadPages, "\(name): \(stats)")
      #expect(stats["stride_hits"] as? Int == 6 && stats["stride_pages"] as? Int == 391, "\(name): \(stats)")
      #expect(stats["readahead_misses"] as? Int == 0 && stats["stride_misses"] as? Int == 0, "\(name): \(stats)")
      #expect(stats["predictor_hits"] as? Int == readaheadHits + 6, "\(name): \(stats)")
    }
  }

  /// Runs `expected.sample` in two flavours under --prefetch auto with `pager`, and checks its
  /// faults, hits and misses one by one against the rule's.
  static func checkAuto(_ expected: Expected, _ pager: String) throws {
    for flavour in [Flavour.staticExec, .staticPIE] {
      let (name, stats, _, rows) = try Self.runAuto(expected.sample, flavour, pager)
      #expect(stats["prefetch"] as? String == "auto", "\(stats)")
      #expect(stats["policy"] as? String == "hybrid --prefetch auto", "\(stats)")
      #expect(stats["loader_faults"] as? Int == 1 + expected.faultingPages.count, "\(name): \(stats)")
      #expect(stats["pages_mapped"] as? Int == 1 + expected.mapped, "\(name): \(stats)")
      #expect(stats["pages_prefetched"] as? Int == expected.mapped - expected.faultingPages.count, "\(name): \(stats)")
      #expect(stats["predictor_hits"] as? Int == expected.hits, "\(name): \(stats)")
      #expect(stats["predictor_misses"] as? Int == expected.misses, "\(name): \(stats)")
      if pager == "signal" { #expect(stats["prefetched_unused"] as? Int == expected.unused, "\(name): \(stats)") }
      // The trace: the bss pages that faulted, in order, and no page twice.
      let code = rows.first?[4]
      let bss = rows.filter { $0[4] != code }
      let firstPage = bss.compactMap { Int($0[5]) }.min() ?? 0
      #expect(
        bss.filter { $0[6] == "fault" }.compactMap { Int($0[5]) }.map { $0 - firstPage } == expected.faultingPages,
        "\(name)")
      #expect(Set(bss.map { $0[5] }).count == bss.count, "\(name): a page installed twice")
      // The bss has strides and nothing else.
      #expect(bss.allSatisfy { $0[9] == ($0[6] == "fault" ? "touched" : "stride") }, "\(name)")
      #expect(stats["stride_hits"] as? Int == expected.hits && stats["around_pages"] as? Int == 0, "\(name): \(stats)")
    }
  }

  /// What --prefetch auto does on a sample made for one of its mechanisms (predictor.h), under
  /// one pager, fault by fault. Each sample's segments are 256 KiB-aligned (p_align too), so the
  /// fault-around blocks -- 16 pages under userfaultfd, 64 under the signal pager -- fall at the
  /// same page numbers in both flavours.
  struct Mechanism: Sendable, CustomTestStringConvertible {
    var sample: String
    var pager: String
    /// The faults, in order: the faulting segment's permissions, as the trace's segment table
    /// writes them, and the page within it.
    var faults: [String]
    /// Pages mapped, the faulting ones included.
    var mapped: Int
    /// Pages each mechanism brought in besides the faulting ones, and its hits and misses.
    var around: Int
    var readahead = (hits: 0, misses: 0, pages: 0)
    var stride = (hits: 0, misses: 0, pages: 0)
    var testDescription: String { "\(sample), \(pager)" }
  }

  static let mechanisms = [
    // Code: calls to pages 100, 37, 200, 130, 60 (and _start on page 0): each fault's own
    // block, 16 pages each; 37 and 60 are in no block of another (6 x 16 = 96 pages). Read-only
    // data: 5, 77, 249, 20; 249's block is cut at the segment's end, page 250 (16 + 16 + 10 +
    // 16 = 58). Data: 3, 150, 90, 33, 200 (5 x 16 = 80). 234 in all, 219 of them around 15 faults.
    Mechanism(
      sample: "around_pages", pager: "uffd",
      faults: ["r-x 0", "r-x 100", "r-x 37", "r-x 200", "r-x 130", "r-x 60", "r-- 5", "r-- 77", "r-- 249", "r-- 20",
        "rw- 3", "rw- 150", "rw- 90", "rw- 33", "rw- 200"],
      mapped: 234, around: 219),
    // Blocks of 64: page 0's holds 37 and 60, data page 3's holds 33; read-only data is
    // readable up front under the signal pager (the kernel pages it). 8 blocks of 64.
    Mechanism(
      sample: "around_pages", pager: "signal",
      faults: ["r-x 0", "r-x 100", "r-x 200", "r-x 130", "rw- 3", "rw- 150", "rw- 90", "rw- 200"], mapped: 512, around: 504),
    // Each region read in order: page 0's block (0-15), then a fault on each first page past the
    // last run, which doubles: 16-47, 48-111, 112-239, 240 to the end (16 pages of code, 10 of
    // read-only data: 256 and 250 pages); the data from 0 to 99, then page 200: a miss, its own
    // block (192-207). 4 + 4 + 2 hits, 4 blocks (60 pages around), 560 pages read ahead.
    Mechanism(
      sample: "readahead_pages", pager: "uffd",
      faults: ["r-x 0", "r-x 16", "r-x 48", "r-x 112", "r-x 240", "r-- 0", "r-- 16", "r-- 48", "r-- 112", "r-- 240",
        "rw- 0", "rw- 16", "rw- 48", "rw- 200"],
      mapped: 634, around: 60, readahead: (hits: 10, misses: 1, pages: 560)),
    // Blocks of 64: code 0-63, then 64-191 and 192 to the end (a run of 256 cut at 256); data
    // 0-63, 64-191 (past page 99), then page 200 a miss with its block 192-255.
    Mechanism(
      sample: "readahead_pages", pager: "signal",
      faults: ["r-x 0", "r-x 64", "r-x 192", "rw- 0", "rw- 64", "rw- 200"], mapped: 512, around: 189,
      readahead: (hits: 3, misses: 1, pages: 317)),
    // Data pages 0, 72, 144: the stride (72 pages) is seen at 144, which opens a window of 4
    // along it (216-432); 504 is a hit, whose window of 8 is cut to the one page left (576);
    // page 300 is a miss. Every fault also brings its block: 0-15, 64-79, 144-159, 496-511, and
    // 288-303 but page 288, there already (4 x 15 + 14 = 74 around). The code page apart.
    Mechanism(
      sample: "stride_data", pager: "uffd", faults: ["r-x 0", "rw- 0", "rw- 72", "rw- 144", "rw- 504", "rw- 300"],
      mapped: 85, around: 74, stride: (hits: 1, misses: 1, pages: 5)),
    // The same faults; blocks of 64 (0-63, 64-127, 128-191, 448-511), and page 300's block,
    // 256-319, stops below at 288: 289-319 (4 x 63 + 30 = 282 around).
    Mechanism(
      sample: "stride_data", pager: "signal", faults: ["r-x 0", "rw- 0", "rw- 72", "rw- 144", "rw- 504", "rw- 300"],
      mapped: 293, around: 282, stride: (hits: 1, misses: 1, pages: 5)),
  ].filter { pagers.contains($0.pager) }

  @Test("--prefetch auto: fault-around, readahead and strides in file pages, fault by fault", arguments: mechanisms)
  func mechanismCounts(_ expected: Mechanism) throws {
    for flavour in [Flavour.staticExec, .staticPIE] {
      let (name, stats, lines, rows) = try Self.runAuto(expected.sample, flavour, expected.pager)
      let counted = [
        "loader_faults", "pages_mapped", "around_pages", "readahead_hits", "readahead_misses", "readahead_pages",
        "stride_hits", "stride_misses", "stride_pages",
      ].map { stats[$0] as? Int ?? -1 }
      let r = expected.readahead, s = expected.stride
      #expect(
        counted == [expected.faults.count, expected.mapped, expected.around, r.hits, r.misses, r.pages, s.hits, s.misses, s.pages],
        "\(name): \(stats)")
      // The totals over both mechanisms (a readahead miss and no stride one, or the reverse).
      #expect(stats["predictor_hits"] as? Int == r.hits + s.hits && stats["predictor_misses"] as? Int == r.misses + s.misses, "\(name): \(stats)")
      // The trace, an account of its own: the faults in order, where they were, and why every
      // other page came; no page twice.
      let flags = Dictionary(
        lines.filter { $0.hasPrefix("# ") && $0.dropFirst(2).first?.isNumber == true }
          .map { $0.dropFirst(2).split(separator: ",").map(String.init) }.map { ($0[0] + "," + $0[1], $0[3]) },
        uniquingKeysWith: { a, _ in a })
      #expect(
        rows.filter { $0[6] == "fault" }.map { "\(flags[$0[3] + "," + $0[4]] ?? "?") \($0[5])" } == expected.faults, "\(name)")
      let why = Dictionary(grouping: rows, by: { $0[9] }).mapValues(\.count)
      #expect(why["touched"] == expected.faults.count && rows.filter { $0[6] == "fault" && $0[9] != "touched" }.isEmpty, "\(why)")
      #expect(why["around", default: 0] == expected.around, "\(name): \(why)")
      #expect(why["readahead", default: 0] == r.pages && why["stride", default: 0] == s.pages, "\(name): \(why)")
      #expect(rows.count == expected.mapped, "\(name): \(why)")
      #expect(Set(rows.map { $0[3...5].joined(separator: ",") }).count == rows.count, "\(name): a page installed twice")
    }
  }

  /// Programs recorded, then replayed: each run as native.
  static let replayed: [[String]] = [
    [Paths.sample("touch_pages", .staticExec)],
    [Paths.sample("hello", .staticPIE)],
    // (A static PIE is placed where mmap finds a hole; a replay allocates enough to have put its
    // heap there too, before the hole was held from the moment it was chosen.)
    [Paths.sample("race", .staticPIE)],
    [Paths.sample("hello", .dynamic)],
    [Paths.sample("bench1_args", .dynamic), "one", "two"],
    // Children forked after the replay: they inherit its pages (and, under userfaultfd, the server).
    [Paths.sample("forks", .dynamic), "/bin/true"],
    [Paths.sample("stress", .staticPIE), "forks", "20"],
    ["/bin/true"],
  ] + [["/usr/bin/busybox", "sh", "-c", "echo hi; exit 3"], ["/usr/bin/gcc", "-dumpversion"], ["/usr/bin/python3", "-c", "print(6*7)"]]
    .filter { FileManager.default.isExecutableFile(atPath: $0[0]) }

  @Test("record, then replay: both runs as native, and the replay installs what the record saw", arguments: replayed, pagers)
  func recordThenReplay(_ argv: [String], _ pager: String) throws {
    let profile = "\(Self.scratch)/\(URL(fileURLWithPath: argv[0]).lastPathComponent)-\(argv.count)-\(pager).profile"
    let native = run(argv)
    let recorded = run([Paths.elfload, "record", "--profile", profile, "--pager", pager] + argv)
    #expect(recorded == native, "native:\n\(native)\nrecorded:\n\(recorded)")
    let lines = try String(contentsOfFile: profile, encoding: .utf8).split(separator: "\n")
    #expect(Array(lines.prefix(2)) == ["elfload profile 2", "pager \(pager)"])
    let dynamic = run([Paths.elfload, "inspect", argv[0]]).stdout.contains("interpreter (PT_INTERP)")
    #expect(lines.filter { $0.hasPrefix("image ") }.count == (dynamic ? 2 : 1), "\(lines.prefix(6))")
    #expect(lines.contains { $0.split(separator: " ").count == 3 && $0.first?.isNumber == true })
    let json = profile + ".json"
    let replay = run([Paths.elfload, "--mode", "replay", "--profile", profile, "--pager", pager, "--stats-json", json] + argv)
    #expect(replay == native, "native:\n\(native)\nreplayed:\n\(replay)")
    let stats = try #require(
      try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any])
    #expect(stats["mode"] as? String == "replay")
    let replayedPages = try #require(stats["pages_replayed"] as? Int)
    #expect(replayedPages > 0, "\(stats)")
    if argv[0].hasSuffix("touch_pages") {
      // Its touches are the same every run: all installed before the jump, no fault left.
      #expect(replayedPages == 101 && stats["loader_faults"] as? Int == 0, "\(stats)")
    }
  }

  /// A page faulted again (dropped by MADV_DONTNEED, then touched) is one line of the profile, at
  /// its first touch: the profile's pages are the trace's faults of the same run, each first one
  /// kept, in order (the trace writer is a different reader of the same records).
  @Test("record: the profile is the trace's faults, a page faulted again kept at its first touch", arguments: pagers)
  func recordKeepsFirstTouches(_ pager: String) throws {
    let program = Paths.sample("dontneed", .staticExec)
    let profile = "\(Self.scratch)/dontneed-\(pager).profile"
    let trace = "\(Self.scratch)/dontneed-\(pager).csv"
    let recorded = run([Paths.elfload, "record", "--profile", profile, "--pager", pager, "--trace", trace, program])
    #expect(recorded == run([program]), "\(recorded)")
    let rows = try String(contentsOfFile: trace, encoding: .utf8).split(separator: "\n").filter { !$0.hasPrefix("#") }.dropFirst()
    let faults = rows.map { $0.split(separator: ",", omittingEmptySubsequences: false) }.filter { $0[6] == "fault" }
      .map { "\($0[3]) \($0[4]) \($0[5])" }
    var seen: Set<String> = []
    let firsts = faults.filter { seen.insert($0).inserted }
    let pages = try String(contentsOfFile: profile, encoding: .utf8).split(separator: "\n")
      .filter { $0.first?.isNumber == true }.map(String.init)
    #expect(pages == firsts, "profile:\n\(pages)\ntrace's first touches:\n\(firsts)")
    // Under userfaultfd the dropped pages fault again: the case is there to be got wrong.
    if pager == "uffd" { #expect(faults.count >= firsts.count + 16, "\(faults.count) faults, \(firsts.count) pages") }
  }

  /// As a user without a userfaultfd (nobody, when the tests run as root): record and replay
  /// take the signal pager, and --cold cannot know what stayed cached of a file it does not own.
  @Test("record, replay and --cold as an unprivileged user")
  func unprivileged() throws {
    let dir = "\(Self.scratch)/nobody"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    try FileManager.default.setAttributes([.posixPermissions: 0o777], ofItemAtPath: dir)
    let profile = "\(dir)/bin-true.profile"
    let native = run(asNobody + ["/bin/ls", "/"])
    let recorded = run(asNobody + [Paths.elfload, "record", "--profile", profile, "/bin/ls", "/"])
    #expect(recorded == native, "native:\n\(native)\nrecorded:\n\(recorded)")
    let json = "\(dir)/replay.json"
    let replayed = run(asNobody + [Paths.elfload, "--mode", "replay", "--profile", profile, "--stats-json", json, "/bin/ls", "/"])
    #expect(replayed == native, "native:\n\(native)\nreplayed:\n\(replayed)")
    let stats = try String(contentsOfFile: json, encoding: .utf8)
    if getuid() == 0 { #expect(stats.contains("\"pager\": \"signal\""), "\(stats)") }
    #expect(!stats.contains("\"pages_replayed\": 0,"), "\(stats)")
    if getuid() == 0 {
      let cold = run(asNobody + [Paths.elfload, "--cold", "--verbose", "/bin/true"])
      #expect(cold.ending == .exited(0) && cold.stderr.contains("what stayed cannot be known"), "\(cold)")
      #expect(!cold.stderr.contains("stay in the page cache"), "\(cold)")
    }
  }

  @Test("a profile recorded for another file is ignored with one line, and the run is demand", arguments: pagers)
  func staleProfile(_ pager: String) throws {
    // A copy of a program, recorded; then the copy changes (its mtime): the
    // profile no longer applies. And a profile of another program altogether.
    let copy = "\(Self.scratch)/stale-hello-\(pager)"
    try? FileManager.default.removeItem(atPath: copy)
    try FileManager.default.copyItem(atPath: Paths.sample("hello", .staticExec), toPath: copy)
    let profile = copy + ".profile"
    #expect(run([Paths.elfload, "record", "--profile", profile, "--pager", pager, copy]).ending == .exited(0))
    try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -3600)], ofItemAtPath: copy)
    for program in [copy, Paths.sample("exit_code", .staticExec)] {
      let native = run([program])
      let json = "\(copy)-\(URL(fileURLWithPath: program).lastPathComponent).json"
      let loaded = run([Paths.elfload, "--mode", "replay", "--profile", profile, "--pager", pager, "--stats-json", json, program])
      #expect(loaded.stdout == native.stdout && loaded.ending == native.ending, "\(loaded)")
      let lines = loaded.stderr.split(separator: "\n")
      #expect(lines.count == 1 + native.stderr.split(separator: "\n").count, "\(loaded)")
      #expect(lines.first?.hasPrefix("elfload: --profile \(profile) was recorded for other files") == true, "\(loaded)")
      // The numbers are demand's, and say so: the policy that ran, and why not the one asked.
      let stats = try #require(
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any])
      #expect(stats["mode"] as? String == "demand" && stats["policy"] as? String == "demand", "\(stats)")
      #expect(stats["pages_replayed"] as? Int == 0, "\(stats)")
      let fallback = try #require(stats["fallback"] as? String, "\(stats)")
      #expect(fallback.contains("replay") && fallback.contains("recorded for other files"), "\(fallback)")
      let summary = run([Paths.elfload, "--mode", "replay", "--profile", profile, "--pager", pager, "--stats", program])
      let head = summary.stderr.split(separator: "\n").first { $0.hasPrefix("elfload stats: ") } ?? ""
      #expect(head.contains("(demand, \(pager) pager; replay asked: ") && head.contains("recorded for other files"), "\(summary)")
      #expect(!summary.stderr.contains("  replay: "), "\(summary)")
    }
  }

  /// The words of an `image` line: image INDEX dev D inode I size S mtime SECONDS.NANOSECONDS path PATH.
  static let identityFields = ["dev", "inode", "size", "mtime-seconds", "mtime-nanoseconds"]

  @Test(
    "every identity a profile holds is its file's (stat), and any one changed, of the program or its interpreter, is a profile ignored",
    arguments: pagers)
  func identities(_ pager: String) throws {
    let program = Paths.sample("hello", .dynamic)
    let profile = "\(Self.scratch)/identities-\(pager).profile"
    #expect(run([Paths.elfload, "record", "--profile", profile, "--pager", pager, program]).ending == .exited(0))
    let text = try String(contentsOfFile: profile, encoding: .utf8)
    let images = text.split(separator: "\n").filter { $0.hasPrefix("image ") }.map { $0.split(separator: " ").map(String.init) }
    let interpreter = "/lib64/ld-linux-x86-64.so.2"
    try #require(images.count == 2 && images.allSatisfy { $0.count == 12 }, "\(images)")
    for (index, (line, path)) in zip(images, [program, interpreter]).enumerated() {
      var st = stat()
      try #require(stat(path, &st) == 0, "\(path)")
      let mtime = "\(st.st_mtim.tv_sec).\(String(format: "%09d", st.st_mtim.tv_nsec))"
      #expect(
        line == ["image", "\(index)", "dev", "\(st.st_dev)", "inode", "\(st.st_ino)", "size", "\(st.st_size)", "mtime", mtime, "path", path],
        "image \(index): \(line)")
    }
    let native = run([program])
    func replay(_ contents: String, _ label: String) throws -> (Outcome, [String: Any]) {
      let path = "\(Self.scratch)/identities-\(pager)-\(label).profile"
      FileManager.default.createFile(atPath: path, contents: Data(contents.utf8))
      let json = path + ".json"
      let outcome = run([Paths.elfload, "--mode", "replay", "--profile", path, "--pager", pager, "--stats-json", json, program])
      let stats = try #require(
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any], "\(label)")
      return (outcome, stats)
    }
    let (same, sameStats) = try replay(text, "same")
    #expect(same == native, "\(same)")
    #expect((sameStats["pages_replayed"] as? Int ?? 0) > 0, "\(sameStats)")
    for image in 0..<2 {
      for (k, field) in Self.identityFields.enumerated() {
        // The field's value, one more: the words after "dev", "inode", "size", and either side of mtime's dot.
        var words = images[image]
        if k < 3 {
          words[3 + 2 * k] = String((UInt64(words[3 + 2 * k]) ?? 0) + 1)
        } else {
          let parts = words[9].split(separator: ".").map(String.init)
          let seconds = try #require(parts.count == 2 ? Int64(parts[0]) : nil, "\(words)")
          let nanoseconds = try #require(Int64(parts[1]), "\(words)")
          words[9] = k == 3 ? "\(seconds + 1).\(parts[1])" : "\(seconds).\(String(format: "%09d", (nanoseconds + 1) % 1_000_000_000))"
        }
        let changed = text.replacingOccurrences(of: images[image].joined(separator: " "), with: words.joined(separator: " "))
        let label = "\(image)-\(field)"
        let (loaded, stats) = try replay(changed, label)
        #expect(loaded.stdout == native.stdout && loaded.ending == native.ending, "\(label): \(loaded)")
        #expect(
          loaded.stderr.hasPrefix("elfload: --profile ") && loaded.stderr.contains("was recorded for other files")
            && loaded.stderr.split(separator: "\n").count == 1, "\(label): \(loaded)")
        #expect(stats["pages_replayed"] as? Int == 0 && stats["mode"] as? String == "demand", "\(label): \(stats)")
        #expect((stats["fallback"] as? String)?.contains("recorded for other files") == true, "\(label): \(stats)")
      }
    }
  }

  @Test("a malformed or truncated profile: refused with one line (126), or, cut at a line's end, replayed as far as it goes")
  func malformedProfiles() throws {
    let program = Paths.sample("hello", .dynamic)
    let profile = "\(Self.scratch)/good.profile"
    #expect(run([Paths.elfload, "record", "--profile", profile, program]).ending == .exited(0))
    let good = [UInt8](try Data(contentsOf: URL(fileURLWithPath: profile)))
    let native = run([program])
    func replay(_ bytes: [UInt8], _ label: String, stats: [String] = [], under prefix: [String] = []) -> Outcome {
      let path = "\(Self.scratch)/bad-\(label).profile"
      FileManager.default.createFile(atPath: path, contents: Data(bytes))
      return run([Paths.elfload, "--mode", "replay", "--profile", path, program])
    }
    let text = String(decoding: good, as: UTF8.self)
    let headers = try Readelf.programHeaders(program).headers
    let load = try #require(headers.first { $0.type == "LOAD" })
    let notLoad = try #require(headers.first { $0.type != "LOAD" })
    let loadPages = (load.vaddr + load.memsz + 4095) / 4096 - load.vaddr / 4096
    let bad: [(String, String)] = [
      ("empty", ""),
      ("binary", "\u{7f}ELF\u{2}\u{1}"),
      ("version", text.replacingOccurrences(of: "elfload profile 2", with: "elfload profile 99")),
      ("pager", text.replacingOccurrences(of: "\npager ", with: "\npager none-")),
      ("no-pager", text.split(separator: "\n", omittingEmptySubsequences: false).filter { !$0.hasPrefix("pager ") }.joined(separator: "\n")),
      ("huge-page", text + "0 1 99999999999999999999999\n"),
      ("page-outside", text + "0 \(load.index) 4000000\n"),
      ("not-load", text + "0 \(notLoad.index) 0\n"),
      ("no-segment", text + "0 77 0\n"),
      ("image-2", text + "2 0 0\n"),
      ("words", text + "0 1\n"),
      ("mtime", text.replacingOccurrences(of: ".", with: ",")),
    ]
    // The page named, by image, program header and page, with the segment's size in pages as
    // readelf gives it; a header that is not a PT_LOAD, and one the program does not have.
    let named = [
      "page-outside": "image 0 segment \(load.index) page 4000000: past the segment's \(loadPages) pages",
      "not-load": "image 0 segment \(notLoad.index) page 0: no such PT_LOAD",
      "no-segment": "image 0 segment 77 page 0: no such PT_LOAD",
    ]
    for (label, contents) in bad {
      let loaded = replay(Array(contents.utf8), label)
      #expect(loaded.ending == .exited(126) && loaded.stdout.isEmpty, "\(label): \(loaded)")
      #expect(
        loaded.stderr.hasPrefix("elfload: --profile ") && loaded.stderr.split(separator: "\n").count == 1, "\(label): \(loaded)")
      if let words = named[label] { #expect(loaded.stderr.hasSuffix(": \(words)\n"), "\(label): \(loaded)") }
    }
    // Cut anywhere: refused with one line, or (cut at a line's end, after
    // the image lines) replayed as far as it goes.
    for cut in stride(from: 0, to: good.count, by: max(1, good.count / 23)) {
      let loaded = replay(Array(good.prefix(cut)), "cut-\(cut)")
      let oneLine = loaded.stderr.hasPrefix("elfload: --profile ") && loaded.stderr.split(separator: "\n").count == 1
      if loaded.ending == .exited(126) {
        #expect(oneLine && loaded.stdout.isEmpty, "\(cut): \(loaded)")
      } else if loaded.stderr.contains("was recorded for other files") {
        // Cut inside the image lines: the files no longer match; demand.
        #expect(oneLine && loaded.stdout == native.stdout && loaded.ending == native.ending, "cut at \(cut): \(loaded)")
      } else {
        #expect(loaded == native, "cut at \(cut): \(loaded)")
      }
    }
  }

  /// The signal pager maps read-only data up front, so its record lacks those pages: the
  /// profile says which pager wrote it, inspect and --stats say what a replay will miss, and a
  /// replay under userfaultfd faults exactly on the pages the userfaultfd pager's record has and
  /// the signal pager's does not.
  @Test("a profile says which pager recorded it, and what the signal pager's misses")
  func profilePager() throws {
    try #require(Self.pagers.contains("uffd"), "needs the userfaultfd pager")
    let program = Paths.sample("hello", .dynamic)
    var pages: [String: Set<Substring>] = [:]
    for pager in ["signal", "uffd"] {
      let profile = "\(Self.scratch)/pager-\(pager).profile"
      #expect(run([Paths.elfload, "record", "--profile", profile, "--pager", pager, program]).ending == .exited(0))
      let lines = try String(contentsOfFile: profile, encoding: .utf8).split(separator: "\n")
      #expect(Array(lines.prefix(2)) == ["elfload profile 2", "pager \(pager)"], "\(lines.prefix(3))")
      pages[pager] = Set(lines.filter { $0.first?.isNumber == true })
      let inspect = run([Paths.elfload, "inspect", "--profile", profile])
      #expect(inspect.stdout.split(separator: "\n").dropFirst().first?.hasPrefix("recorded under the \(pager) pager") == true, "\(inspect)")
      #expect(inspect.stdout.contains("read-only data") == (pager == "signal"), "\(inspect)")
    }
    let missed = try #require(pages["uffd"]).subtracting(try #require(pages["signal"]))
    #expect(!missed.isEmpty)
    let json = "\(Self.scratch)/pager-signal-replayed.json"
    let replayed = run([
      Paths.elfload, "--mode", "replay", "--profile", "\(Self.scratch)/pager-signal.profile", "--pager", "uffd",
      "--stats-json", json, "--stats", program,
    ])
    #expect(replayed.stdout == "hello, world\n", "\(replayed)")
    #expect(replayed.stderr.squeezed.contains("replay: \(try #require(pages["signal"]).count) pages installed from the profile before the jump (recorded under the signal pager: read-only data"), "\(replayed)")
    let stats = try #require(
      try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any])
    #expect(stats["profile_pager"] as? String == "signal", "\(stats)")
    #expect(stats["loader_faults"] as? Int == missed.count, "\(missed.sorted()): \(stats)")
  }

  /// The distinct pages a profile names: what a replay installs.
  static func distinctPages(_ profile: String) throws -> Int {
    let lines = try String(contentsOfFile: profile, encoding: .utf8).split(separator: "\n")
    return Set(lines.filter { $0.first?.isNumber == true }).count
  }

  /// The sample that touches every other page of a 512 MiB bss (65 536 pages): the launcher's
  /// allocator once ran out reading its profile, and elfload died by SIGILL. Recorded under
  /// the userfaultfd pager where there is one: the signal pager's record misses the pages it
  /// maps a window at a time once the map-count budget is spent (README).
  @Test("a profile of 65 536 scattered pages replays as native, every page installed", arguments: pagers)
  func scatteredProfile(_ pager: String) throws {
    let program = Paths.sample("mapcount", .staticExec)
    let recorder = Self.pagers.last ?? "signal"
    let profile = "\(Self.scratch)/mapcount-\(recorder)-for-\(pager).profile"
    let native = run([program])
    let recorded = run([Paths.elfload, "record", "--profile", profile, "--pager", recorder, program])
    #expect(recorded == native, "native:\n\(native)\nrecorded:\n\(recorded)")
    let json = profile + ".json"
    let replayed = run([
      Paths.elfload, "--mode", "replay", "--profile", profile, "--pager", pager, "--stats-json", json, program,
    ])
    #expect(replayed == native, "native:\n\(native)\nreplayed:\n\(replayed)")
    let stats = try #require(
      try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any])
    let pages = try Self.distinctPages(profile)
    #expect(stats["pages_replayed"] as? Int == pages, "\(pages) pages in the profile: \(stats)")
    // The time the replay took: part of the start-up, and at least 100 ns a page (a page is 4 KiB
    // copied or mapped; 0.7 us here under userfaultfd, more under the signal pager).
    let replayMs = try #require(stats["replay_ms"] as? Double, "\(stats)")
    let startupMs = try #require(stats["startup_ms"] as? Double, "\(stats)")
    #expect(replayMs >= Double(pages) * 100e-6 && replayMs <= startupMs, "\(pages) pages: \(stats)")
    if recorder == "uffd" {
      #expect(pages > 65536 && stats["loader_faults"] as? Int == 0, "\(pages) pages in the profile: \(stats)")
    }
  }

  /// Where sparse.c's 16 MiB array is (nm's address of `data`), and the 2 MiB-aligned range
  /// [low, high) of the whole 2 MiB windows inside it.
  static func sparseWindows(_ program: String) throws -> (array: UInt64, low: UInt64, high: UInt64) {
    let symbols = run(["/usr/bin/nm", program])
    let lines: [[Substring]] = symbols.stdout.split(separator: "\n").map { $0.split(separator: " ") }
    let line = lines.first { $0.count == 3 && $0[1] == "d" && $0[2] == "data" }
    let array = try #require(line.flatMap { UInt64($0[0], radix: 16) }, "\(symbols)")
    let window: UInt64 = 2 << 20
    return (array, (array + window - 1) & ~(window - 1), (array + (16 << 20)) & ~(window - 1))
  }

  /// mprotect's ENOMEM where the map-count budget cannot explain it (as a sandbox could make it:
  /// Samples/refuse_mprotect's seccomp filter refuses every read-write change under 2 MiB in
  /// the middle 14 MiB of sparse's 16 MiB array, 2 MiB-aligned). From the first refusal the
  /// signal pager maps a whole 2 MiB window at a time: on a fault (a fault for each window of the
  /// range, the rest of its pages traced as "spread") and in a replay, whose refused page is installed again
  /// in its window, so every page of the profile is still installed before the jump.
  @Test("mprotect refused with ENOMEM: faults and a replay map 2 MiB windows there, every page installed, as native")
  func refusedWindows() throws {
    let program = Paths.sample("sparse", .staticExec)
    let (array, low, high) = try Self.sparseWindows(program)
    let window: UInt64 = 2 << 20
    let windows = Int((high - low) / window), rangePages = Int((high - low) / 4096)
    try #require(windows >= 4, "array at 0x\(String(array, radix: 16))")
    let refuse = [Paths.samples + "/refuse_mprotect", String(low, radix: 16), String(high, radix: 16)]
    let native = run([program])
    #expect(run(refuse + [program]) == native, "the filter changes nothing natively")

    let trace = "\(Self.scratch)/refused.trace"
    let faulted = run(refuse + [Paths.elfload, "--mode", "demand", "--pager", "signal", "--trace", trace, program])
    #expect(faulted == native, "native:\n\(native)\nrefused:\n\(faulted)")
    let rows = try String(contentsOfFile: trace, encoding: .utf8).split(separator: "\n")
      .filter { $0.first?.isNumber == true }.map { $0.split(separator: ",").map(String.init) }
    func inTheRange(_ row: [String]) -> Bool {
      guard row.count == 10, let address = UInt64(row[2].dropFirst(2), radix: 16) else { return false }
      return address >= low && address < high
    }
    let inRange = rows.filter(inTheRange)
    let pages = Set(inRange.map { $0[2] })
    #expect(pages.count == inRange.count && pages.count == rangePages, "\(inRange.count) rows")
    // A fault's own row says "touched"; the pages its window brought, "spread".
    let rangeFaults = inRange.filter { $0[6] == "fault" && $0[9] == "touched" }.count
    let spread = inRange.filter { $0[6] == "prefetch" && $0[9] == "spread" }.count
    #expect(rangeFaults == windows && spread == rangePages - windows, "\(rangeFaults) faults, \(spread) spread")

    let profile = "\(Self.scratch)/refused.profile"
    #expect(run([Paths.elfload, "record", "--profile", profile, "--pager", "signal", program]) == native)
    let profiled = try String(contentsOfFile: profile, encoding: .utf8).split(separator: "\n")
      .filter { $0.first?.isNumber == true }
    // Its lines are IMAGE SEGMENT PAGE: the range's pages, as the trace named them.
    let rangeLines = Set(inRange.map { "\($0[3]) \($0[4]) \($0[5])" })
    #expect(profiled.filter { rangeLines.contains(String($0)) }.count == 56, "\(profiled.count) lines")
    let json = profile + ".json"
    let replayed = run(refuse + [
      Paths.elfload, "--mode", "replay", "--profile", profile, "--pager", "signal", "--stats-json", json, program,
    ])
    #expect(replayed == native, "native:\n\(native)\nreplayed:\n\(replayed)")
    let stats = try #require(
      try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any])
    #expect(stats["pages_replayed"] as? Int == (try Self.distinctPages(profile)), "\(stats)")
  }

  /// A replay installs its pages, not just allows them: `sparse faults` counts the minor faults
  /// of its 64 reads itself (getrusage around them), none after a replay of its own profile under
  /// either pager; natively (and with the pages only made accessible) the kernel faults them in.
  @Test("a replayed program's reads of its profile's pages take no fault, by its own count", arguments: pagers)
  func replayedPagesArePresent(_ pager: String) throws {
    let program = Paths.sample("sparse", .staticExec)
    func faults(_ o: Outcome) -> Int? {
      o.stdout.split(separator: "\n").last.flatMap { $0.hasPrefix("faults: ") ? Int($0.dropFirst(8)) : nil }
    }
    let native = run([program, "faults"])
    #expect((faults(native) ?? 0) > 0, "the measure sees the kernel's faults: \(native)")
    let profile = "\(Self.scratch)/present-\(pager).profile"
    #expect(run([Paths.elfload, "record", "--profile", profile, "--pager", pager, program, "faults"]).ending == .exited(0))
    let replayed = run([Paths.elfload, "--mode", "replay", "--profile", profile, "--pager", pager, program, "faults"])
    #expect(replayed.ending == .exited(0) && faults(replayed) == 0, "\(replayed)")
    #expect(replayed.stdout.split(separator: "\n").prefix(2) == native.stdout.split(separator: "\n").prefix(2), "\(replayed)")
  }

  /// An mprotect refused with an error no full map count explains (EACCES, from the same filter)
  /// cannot be worked around: the signal pager says which page and what the kernel said, and the
  /// program dies of the fault, as it would with no page there. The page is sparse's first touch
  /// in the range (every 64th page of its array, from nm's address), the errno the filter's.
  @Test("mprotect refused with EACCES: one line names the page and errno 13, then SIGSEGV", arguments: ["demand", "hybrid"])
  func refusedForGood(_ mode: String) throws {
    let program = Paths.sample("sparse", .staticExec)
    let (array, low, high) = try Self.sparseWindows(program)
    let first = try #require((0..<UInt64(64)).map { array + $0 * 64 * 4096 }.first { $0 >= low })
    let refuse = [Paths.samples + "/refuse_mprotect", "-e", "13", String(low, radix: 16), String(high, radix: 16)]
    #expect(run(refuse + [program]) == run([program]), "the filter changes nothing natively")
    let refused = run(refuse + [Paths.elfload, "--mode", mode, "--pager", "signal", program])
    let message = "elfload: demand paging could not map the page at 0x\(String(first, radix: 16)): errno 13\n"
    #expect(refused == Outcome(stdout: "", stderr: message, ending: .signaled(SIGSEGV), seconds: 0), "\(refused)")
  }

  /// ENOMEM for every read-write change below 4 GiB, 2 MiB windows too (`refuse_mprotect -a`):
  /// nothing the pager does helps, and the line adds ENOMEM's hint. The page is the program's first
  /// fault in a writable segment, as the pager's own trace of a run without the filter orders them.
  @Test("mprotect refused with ENOMEM at every length: the line names the first writable page, with the map-count hint")
  func refusedEverywhere() throws {
    let program = Paths.sample("sparse", .staticExec)
    let trace = "\(Self.scratch)/refused-everywhere.trace"
    #expect(run([Paths.elfload, "--mode", "demand", "--pager", "signal", "--trace", trace, program]).ending == .exited(0))
    let lines = try String(contentsOfFile: trace, encoding: .utf8).split(separator: "\n")
    // Preamble rows "# image,segment,type,flags,...": the writable segments.
    let writable = Set(lines.filter { $0.hasPrefix("# 0,") }.map { $0.dropFirst(2).split(separator: ",") }
      .filter { $0.count == 8 && $0[3].contains("w") }.map { "\($0[0]),\($0[1])" })
    let first = try #require(
      lines.filter { $0.first?.isNumber == true }.map { $0.split(separator: ",") }
        .first { $0.count == 10 && writable.contains("\($0[3]),\($0[4])") }, "\(writable)")
    let refused = run([Paths.samples + "/refuse_mprotect", "-a", "1000", "fffff000", Paths.elfload, "--mode", "demand", "--pager", "signal", program])
    let message = "elfload: demand paging could not map the page at \(first[2]): errno 12 (out of memory or map count?)\n"
    #expect(refused == Outcome(stdout: "", stderr: message, ending: .signaled(SIGSEGV), seconds: 0), "\(refused)")
  }

  /// What the launcher allocated is unmapped at the jump, its own mapping of a large block too:
  /// a program replayed from a profile of 2^21 lines (a 48 MiB array of pages, a 12 MiB file)
  /// has the same anonymous mappings as with the profile it was made from, and those are the
  /// ones it has under demand paging with no profile (the replay's copy buffer is gone too).
  @Test("a large profile's memory is gone at the jump: the program's anonymous mappings are as with a small one, and with none", arguments: pagers)
  func largeBlocksUnmapped(_ pager: String) throws {
    let argv = ["/bin/cat", "/proc/self/maps"]
    let small = "\(Self.scratch)/maps-\(pager).profile"
    #expect(run([Paths.elfload, "record", "--profile", small, "--pager", pager] + argv).ending == .exited(0))
    let large = small + ".large"
    try repeatProfile(small, lines: 1 << 21, to: large)
    /// Anonymous mappings: how many, and their total size.
    func anonymous(_ profile: String?) -> [Int] {
      let mode = profile.map { ["--mode", "replay", "--profile", $0] } ?? ["--mode", "demand"]
      let maps = run([Paths.elfload] + mode + ["--pager", pager] + argv, timeout: 60)
      let rows = maps.stdout.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true) }
        .filter { $0.count == 5 }
      let bytes = rows.map { row -> Int in
        let bounds = row[0].split(separator: "-").compactMap { Int($0, radix: 16) }
        return bounds.count == 2 ? bounds[1] - bounds[0] : 0
      }
      return [rows.count, bytes.reduce(0, +)]
    }
    let withSmall = anonymous(small)
    #expect(withSmall[0] > 0, "\(withSmall)")
    #expect(anonymous(large) == withSmall)
    #expect(anonymous(nil) == withSmall)
  }

  /// README: a profile over 64 MiB or 2^22 pages is refused. One of exactly 2^22 pages (a
  /// recorded profile's pages over and over) in exactly 64 MiB is read and replayed; one page or
  /// one byte more is refused in one line.
  @Test("a profile at the limits (2^22 pages, 64 MiB) replays as native; one page or byte more is refused")
  func profileAtTheLimits() throws {
    let program = Paths.sample("hello", .staticExec)
    let recorded = "\(Self.scratch)/limits-hello.profile"
    #expect(run([Paths.elfload, "record", "--profile", recorded, program]).ending == .exited(0))
    let lines = try String(contentsOfFile: recorded, encoding: .utf8).split(separator: "\n").map(String.init)
    let head = lines.filter { $0.first?.isNumber != true }.joined(separator: "\n") + "\n"
    let pages = lines.filter { $0.first?.isNumber == true }
    var body = [UInt8]()
    body.reserveCapacity(Int(64 << 20))
    body += Array(head.utf8)
    for i in 0..<(1 << 22) { body += Array(pages[i % pages.count].utf8) + [10] }
    let full = body + Array("#".utf8) + [UInt8](repeating: UInt8(ascii: "x"), count: (64 << 20) - body.count - 2) + [10]
    #expect(full.count == 64 << 20)
    func replay(_ bytes: [UInt8], _ label: String, stats: [String] = [], under prefix: [String] = []) -> Outcome {
      let path = "\(Self.scratch)/limits-\(label).profile"
      FileManager.default.createFile(atPath: path, contents: Data(bytes))
      defer { unlink(path) }
      // (A debug build reads 2^22 lines in about 5 s.)
      return run(prefix + [Paths.elfload, "--mode", "replay", "--profile", path] + stats + [program], timeout: 60)
    }
    let native = run([program])
    let atLimit = replay(full, "full", stats: ["--stats"])
    #expect(atLimit.stdout == native.stdout && atLimit.ending == native.ending, "\(atLimit)")
    #expect(atLimit.stderr.squeezed.contains("replay: \(Set(pages).count) pages installed from the profile"), "\(atLimit)")
    // Memory elfload cannot have (RLIMIT_AS 60 MiB: it starts, the 64 MiB file does not fit).
    let starved = replay(full, "starved", under: ["/bin/sh", "-c", "ulimit -v 61440 && exec \"$@\"", "sh"])
    #expect(starved.ending == .exited(126) && starved.stdout.isEmpty, "\(starved)")
    #expect(
      starved.stderr.hasPrefix("elfload: out of memory: mmap of ") && starved.stderr.split(separator: "\n").count == 1,
      "\(starved)")
    let onePageMore = replay(body + Array((pages[0] + "\n").utf8), "page-more")
    #expect(onePageMore.ending == .exited(126) && onePageMore.stdout.isEmpty, "\(onePageMore)")
    #expect(
      onePageMore.stderr.hasPrefix("elfload: --profile ") && onePageMore.stderr.hasSuffix("more than 4194304 pages\n")
        && onePageMore.stderr.split(separator: "\n").count == 1, "\(onePageMore)")
    let oneByteMore = replay(full + [10], "byte-more")
    #expect(oneByteMore.ending == .exited(126) && oneByteMore.stdout.isEmpty, "\(oneByteMore)")
    #expect(
      oneByteMore.stderr.hasPrefix("elfload: --profile ")
        && oneByteMore.stderr.hasSuffix("67108865 bytes, more than a profile can be (64 MiB)\n")
        && oneByteMore.stderr.split(separator: "\n").count == 1, "\(oneByteMore)")
  }

  @Test("options: replay needs a profile, record needs demand, --profile needs one of them")
  func usage() {
    let program = Paths.sample("hello", .staticExec)
    for argv in [
      ["--mode", "replay", program],
      ["record", program],
      ["record", "--profile", "\(Self.scratch)/p", "--mode", "hybrid", program],
      ["--mode", "demand", "--profile", "\(Self.scratch)/p", program],
      ["--mode", "eager", "--prefetch", "auto", program],
      ["--mode", "hybrid", "--prefetch", "automatic", program],
    ] {
      let loaded = run([Paths.elfload] + argv)
      #expect(loaded.ending == .exited(64) && loaded.stdout.isEmpty, "\(argv): \(loaded)")
      #expect(loaded.stderr.hasPrefix("Error: "), "\(argv): \(loaded)")
    }
  }

  @Test("--cold drops the program's pages from the page cache, and says which stay because a process maps them")
  func cold() throws {
    let copy = "\(Self.scratch)/cold-sleep"
    try? FileManager.default.removeItem(atPath: copy)
    try FileManager.default.copyItem(atPath: Paths.sample("hello", .staticExec), toPath: copy)
    _ = try Data(contentsOf: URL(fileURLWithPath: copy))  // in the page cache now
    let native = run([copy])
    let loaded = run([Paths.elfload, "--cold", "--verbose", copy])
    #expect(loaded.stdout == native.stdout && loaded.ending == native.ending, "\(loaded)")
    #expect(loaded.stderr.contains("--cold: ") && loaded.stderr.contains("dropped from the page cache"), "\(loaded)")
    // A file another process maps keeps its mapped pages: said in one line
    // even without --verbose (the start is not as cold as asked).
    let sleeper = "\(Self.scratch)/cold-sleeper"
    try? FileManager.default.removeItem(atPath: sleeper)
    try FileManager.default.copyItem(atPath: "/bin/sleep", toPath: sleeper)
    let running = Process()
    running.executableURL = URL(fileURLWithPath: sleeper)
    running.arguments = ["30"]
    try running.run()
    defer { running.terminate() }
    Thread.sleep(forTimeInterval: 0.3)
    let busy = run([Paths.elfload, "--cold", sleeper, "0"])
    #expect(busy.ending == .exited(0), "\(busy)")
    // (Its interpreter too, mapped by every dynamically linked process.)
    #expect(busy.stderr.contains("elfload: --cold: ") && busy.stderr.contains("of \(sleeper) stay in the page cache"), "\(busy)")
  }
}

extension String {
  /// Runs of spaces made one (--stats aligns its values in columns).
  var squeezed: String { replacingOccurrences(of: " +", with: " ", options: .regularExpression) }
}
