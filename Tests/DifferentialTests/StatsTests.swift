// --stats, --stats-json and --trace: the numbers, checked against a program whose page touches are
// known exactly (Samples/touch_pages.S: one code page, 100 bss pages).
import Foundation
import FoundationXML
import Testing

@Suite("Stats and traces")
struct StatsTests {
  static let scratch = scratchDirectory("stats")

  struct Expected: Sendable, CustomTestStringConvertible {
    var policy: Policy
    var faults: Int
    var mapped: Int
    /// nil: not known (the userfaultfd pager has no watcher to count it).
    var unused: Int?
    var testDescription: String { policy.rawValue }
  }

  /// The code page, then bss pages 0-99 touched in order. Under hybrid N the
  /// faults come at bss pages 0, N+1, 2(N+1)...; the last one's prefetch may
  /// run past page 99. Under eager every page is mapped at once, by no
  /// fault: pages_mapped (the pager's) is 0.
  static let expectations: [Expected] = [
    Expected(policy: .eager, faults: 0, mapped: 0, unused: 0),
    Expected(policy: .demand, faults: 101, mapped: 101, unused: 0),
    Expected(policy: .hybrid1, faults: 51, mapped: 101, unused: 0),
    Expected(policy: .hybrid4, faults: 21, mapped: 101, unused: 0),
    Expected(policy: .hybrid64, faults: 3, mapped: 131, unused: 30),
  ] + (Policy.uffdAvailable
    ? [
      // The userfaultfd server counts the same faults and pages.
      Expected(policy: .demandUffd, faults: 101, mapped: 101, unused: 0),
      Expected(policy: .hybrid1Uffd, faults: 51, mapped: 101, unused: nil),
      Expected(policy: .hybrid4Uffd, faults: 21, mapped: 101, unused: nil),
      Expected(policy: .hybrid64Uffd, faults: 3, mapped: 131, unused: nil),
    ] : [])

  @Test(
    "counters, unused prefetches and trace of a program whose page touches are known",
    arguments: expectations,
    [Flavour.staticExec, .staticPIE])
  func exactCounts(_ expected: Expected, _ flavour: Flavour) throws {
    let name = "\(flavour.rawValue)-\(expected.policy.rawValue.replacingOccurrences(of: " ", with: ""))"
    let json = "\(Self.scratch)/\(name).json"
    let trace = "\(Self.scratch)/\(name).csv"
    let loaded = run(
      [Paths.elfload] + expected.policy.options + [
        "--stats-json", json, "--trace", trace, Paths.sample("touch_pages", flavour),
      ])
    #expect(loaded == Outcome(stdout: "", stderr: "", ending: .exited(0), seconds: 0), "\(loaded)")

    let data = try Data(contentsOf: URL(fileURLWithPath: json))
    let stats = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    #expect(stats["schema"] as? Int == 6, "\(stats)")
    // The segments' pages, the same under every policy: the header page, the
    // code page, the 200 bss pages (and in the PIE a page of dynamic-section data).
    #expect(stats["segment_pages"] as? Int == 202 + (flavour == .staticPIE ? 1 : 0), "\(stats)")
    #expect(stats["loader_faults"] as? Int == expected.faults, "\(stats)")
    #expect(stats["pages_mapped"] as? Int == expected.mapped, "\(stats)")
    #expect(stats["mode"] as? String == expected.policy.options[1], "\(stats)")
    let prefetchOption = expected.policy.options.firstIndex(of: "--prefetch").map { Int(expected.policy.options[$0 + 1]) }
    #expect(stats["prefetch"] as? Int == (prefetchOption ?? 0), "\(stats)")
    let prefetched = expected.policy == .eager ? 0 : expected.mapped - expected.faults
    #expect(stats["pages_prefetched"] as? Int == prefetched, "\(stats)")
    if let unused = expected.unused {
      #expect(stats["prefetched_unused"] as? Int == unused, "\(stats)")
    } else {
      #expect(stats["prefetched_unused"] is NSNull, "\(stats)")
    }
    #expect(stats["pager"] as? String == (expected.policy.onDemand ? (expected.policy.usesUffd ? "uffd" : "signal") : nil), "\(stats)")
    #expect(stats["exit_status"] as? Int == 0)
    #expect(stats["signal"] is NSNull)
    for key in [
      "wall_ms", "startup_ms", "cpu_ms", "user_ms", "sys_ms", "startup_cpu_ms", "max_rss_kb", "minor_faults",
      "major_faults", "startup_minor_faults", "startup_major_faults",
    ] {
      #expect(stats[key] is NSNumber, "\(key) in \(stats)")
    }
    // The program's own faults: touch_pages touches 101 pages after the jump
    // (104-117 measured; with elfload's own 31-35 they would be 135 or more); elfload's own
    // start-up faults are apart.
    let minor = try #require(stats["minor_faults"] as? Int)
    let startupMinor = try #require(stats["startup_minor_faults"] as? Int)
    #expect(minor >= 100 && minor < 128, "\(stats)")
    #expect(startupMinor > 10, "\(stats)")
    let wall = try #require(stats["wall_ms"] as? Double)
    let startup = try #require(stats["startup_ms"] as? Double)
    #expect(startup > 0 && startup < wall, "\(stats)")
    let cpu = try #require(stats["cpu_ms"] as? Double)
    let user = try #require(stats["user_ms"] as? Double)
    let sys = try #require(stats["sys_ms"] as? Double)
    #expect(abs(cpu - user - sys) < 0.0015, "\(stats)")

    // One row per page the handler mapped; the 100 bss pages each once.
    let rows = try String(contentsOfFile: trace, encoding: .utf8).split(separator: "\n").filter { !$0.hasPrefix("#") }.dropFirst()
      .map { $0.split(separator: ",").map(String.init) }
    #expect(rows.count == (expected.policy == .eager ? 0 : expected.mapped))
    guard expected.policy != .eager else { return }
    try #require(rows.allSatisfy { $0.count == 10 }, "\(rows.filter { $0.count != 10 })")
    #expect(rows.map { $0[0] } == (0..<expected.mapped).map(String.init))
    #expect(rows.filter { $0[6] == "fault" }.count == expected.faults)
    #expect(rows.allSatisfy { $0[8] == (expected.policy.usesUffd ? "uffd" : "signal") }, "the trace names its pager")
    #expect(rows.allSatisfy { $0[9] == ($0[6] == "fault" ? "touched" : "fixed") }, "why each page came: touched, or --prefetch N")
    let times = rows.compactMap { UInt64($0[1]) }
    #expect(times == times.sorted(), "time_ns goes forward")
    // Each bss page once, consecutive (in the PIE the segment's first page is
    // its dynamic section, so they start at 1).
    let bss = rows.filter { $0[4] != rows.first?[4] }.compactMap { Int($0[5]) }
    let first = bss.min() ?? 0
    #expect(
      Set(bss) == Set(first..<(first + expected.mapped - 1)) && bss.count == expected.mapped - 1, "\(bss)")
  }

  /// A student read the kernel's 2111/2158/2116 minor faults under eager/demand/hybrid, printed
  /// beside the pager's, as "paging made no difference". The two counts are named apart, each
  /// followed by a line saying what it counts, and each is the JSON's number from the same run.
  @Test("--stats names the kernel's page faults apart from elfload's pager's, and says what each counts", arguments: [Policy.eager, .demand])
  func faultsNamedApart(_ policy: Policy) throws {
    let json = "\(Self.scratch)/named-\(policy.rawValue).json"
    let loaded = run([Paths.elfload] + policy.options + ["--stats", "--stats-json", json, Paths.sample("touch_pages", .staticExec)])
    #expect(loaded.ending == .exited(0), "\(loaded)")
    let stats = try #require(
      try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any])
    let lines = loaded.stderr.split(separator: "\n").map(String.init)
    func line(after label: String) -> (String, String)? {
      guard let i = lines.firstIndex(where: { $0.hasPrefix("  \(label):") }), i + 1 < lines.count else { return nil }
      return (lines[i], lines[i + 1])
    }
    let (kernel, kernelMeaning) = try #require(line(after: "kernel faults"), "\(loaded.stderr)")
    let number = { (key: String) in stats[key] as? Int ?? -1 }
    #expect(
      kernel.hasSuffix(
        ": \(number("minor_faults")) minor, \(number("major_faults")) major in the program; \(number("startup_minor_faults")) minor, \(number("startup_major_faults")) major in elfload before the jump"),
      "\(kernel)\n\(stats)")
    #expect(kernelMeaning.contains("(the kernel's count: ") && kernelMeaning.contains("any memory"), "\(kernelMeaning)")
    let (pager, pagerMeaning) = try #require(line(after: "pager faults"), "\(loaded.stderr)")
    #expect(pager.contains(":  \(number("loader_faults")) served, \(number("pages_mapped")) pages mapped"), "\(pager)\n\(stats)")
    #expect(number("loader_faults") == (policy == .eager ? 0 : 101), "\(stats)")
    #expect(pagerMeaning.contains("(elfload's pager's count: ") && pagerMeaning.contains("0 under eager"), "\(pagerMeaning)")
    // No other line counts faults: the two are not printed side by side unnamed.
    #expect(lines.filter { $0.contains("page faults") }.isEmpty, "\(loaded.stderr)")
  }

  @Test(
    "--stats leaves the program's output alone, reports on stderr, and ends as the program did",
    arguments: Policy.allCases)
  func summary(_ policy: Policy) {
    let program = Paths.sample("exit_code", .staticExec)
    let native = run([program, "5"])
    let loaded = run([Paths.elfload] + policy.options + ["--stats", program, "5"])
    #expect(loaded.stdout == native.stdout)
    #expect(loaded.ending == .exited(5))
    #expect(loaded.stderr.hasPrefix(native.stderr + "elfload stats: \(program) ("), "\(loaded.stderr)")
    #expect(
      loaded.stderr.contains("peak RSS") && loaded.stderr.contains("  pager faults:  "), "\(loaded.stderr)")

    let null = run([Paths.elfload] + policy.options + ["--stats", Paths.sample("null", .staticExec)])
    #expect(null.ending == .signaled(SIGSEGV), "\(null)")
    #expect(null.stderr.contains("signal 11"), "\(null.stderr)")
  }

  @Test("every --stats-json field is defined once: in --help-all and in the README, and no other")
  func fieldsAreDefined() throws {
    let json = "\(Self.scratch)/fields.json"
    let loaded = run([
      Paths.elfload, "--mode", "hybrid", "--stats-json", json, Paths.sample("touch_pages", .staticExec),
    ])
    #expect(loaded.ending == .exited(0), "\(loaded)")
    let object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any]
    let keys = Array((object ?? [:]).keys)
    #expect(keys.count > 20)
    let help = run([Paths.elfload, "--help-all"]).stdout
    let section = try #require(help.components(separatedBy: "Statistics: ").dropFirst().first, "\(help)")
      .components(separatedBy: "\n\n").first ?? ""
    // "  name   meaning", a field's name in the first column (its wrapped lines are indented further).
    let listed = Set(section.split(separator: "\n").compactMap { line -> String? in
      guard line.hasPrefix("  "), !line.hasPrefix("   "), let name = line.split(separator: " ").first else { return nil }
      return name.allSatisfy { $0.isLowercase || $0 == "_" } ? String(name) : nil
    })
    #expect(Set(keys) == listed, "in the JSON, not in --help: \(Set(keys).subtracting(listed)); in --help, not in the JSON: \(listed.subtracting(keys))")
    let readme = try String(contentsOfFile: Paths.root.appendingPathComponent("README.md").path, encoding: .utf8)
    let readmeSection = try #require(readme.components(separatedBy: "#### The statistics' fields").dropFirst().first)
      .components(separatedBy: "\n#").first ?? ""
    for key in keys { #expect(readmeSection.contains("| `\(key)` |"), "README does not define \(key)") }
  }

  /// A program refused in the child (after the fork, before anything is mapped): the report
  /// says nothing was loaded, faulted or mapped, and the refusal's status.
  @Test("a program refused after the fork: its statistics count nothing loaded", arguments: [Policy.eager, .demand] + Policy.uffd.prefix(1))
  func refusedProgram(_ policy: Policy) throws {
    let truncated = "\(Self.scratch)/truncated-\(policy.rawValue.replacingOccurrences(of: " ", with: ""))"
    FileManager.default.createFile(atPath: truncated, contents: Data([0x7f, 0x45, 0x4c, 0x46]), attributes: [.posixPermissions: 0o755])
    let json = truncated + ".json"
    let loaded = run([Paths.elfload] + policy.options + ["--stats-json", json, truncated])
    #expect(loaded.ending == .exited(126), "\(loaded)")
    let stats = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any])
    #expect(stats["exit_status"] as? Int == 126, "\(stats)")
    for field in ["segment_pages", "loader_faults", "pages_mapped", "pages_prefetched", "max_rss_kb", "minor_faults", "trace_records"] {
      #expect(stats[field] as? Int == 0, "\(field): \(stats)")
    }
  }

  @Test("a trace that cannot be written is reported; the program's own run is untouched")
  func unwritableTrace() {
    let loaded = run([
      Paths.elfload, "--mode", "demand", "--trace", "/dev/full", Paths.sample("exit_code", .staticExec), "4",
    ])
    #expect(loaded.ending == .exited(4), "\(loaded)")
    #expect(loaded.stdout == "to stdout: exiting with status 4\n")
    #expect(
      loaded.stderr.contains(
        "elfload: writing the statistics or the trace failed: write: No space left on device"), "\(loaded)")
  }

  @Test(
    "peak RSS is the program's: elfload's own memory before the jump is not counted",
    arguments: Policy.allCases)
  func peakRSSIsTheProgramsOwn(_ policy: Policy) throws {
    // touch_pages has no C library and touches 400 KiB; elfload itself peaks
    // at several MiB before the jump (the high-water mark is reset there).
    let json = "\(Self.scratch)/rss-\(policy.rawValue.replacingOccurrences(of: " ", with: "")).json"
    let loaded = run(
      [Paths.elfload] + policy.options + ["--stats-json", json, Paths.sample("touch_pages", .staticExec)])
    #expect(loaded.ending == .exited(0), "\(loaded)")
    let stats = try #require(
      try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any])
    let rss = try #require(stats["max_rss_kb"] as? Int)
    #expect(rss < 2048, "max_rss_kb \(rss): elfload's own pages were counted")
  }

  @Test("an output file that cannot be created: one line, before the program runs")
  func unwritableOutput() {
    let loaded = run([
      Paths.elfload, "--stats-json", "/nonexistent/dir/s.json", Paths.sample("hello", .staticExec),
    ])
    #expect(loaded.ending == .exited(126), "\(loaded)")
    #expect(loaded.stdout == "")
    // The path at fault is the output file's, not the program's.
    #expect(loaded.stderr.hasPrefix("elfload: --stats-json /nonexistent/dir/s.json: cannot create it"), "\(loaded)")
    #expect(loaded.stderr.split(separator: "\n").count == 1, "\(loaded)")
  }
}

@Test("heatmap draws every traced page, faults and prefetches apart, as well-formed SVG")
func heatmapOfAKnownTrace() throws {
  let dir = StatsTests.scratch
  let trace = "\(dir)/heatmap.csv"
  let svg = "\(dir)/heatmap.svg"
  let loaded = run(
    [
      Paths.elfload, "--mode", "hybrid", "--prefetch", "4", "--trace", trace,
      Paths.sample("touch_pages", .staticExec),
    ])
  #expect(loaded.ending == .exited(0), "\(loaded)")
  let drawn = run([Paths.elfload, "heatmap", trace, "-o", svg])
  #expect(drawn.ending == .exited(0), "\(drawn)")
  #expect(drawn.stdout == "\(svg): 101 pages in 2 segments\n", "\(drawn)")
  let text = try String(contentsOfFile: svg, encoding: .utf8)
  #expect(text.components(separatedBy: "class=\"fault\"").count - 1 == 21)
  #expect(text.components(separatedBy: "class=\"prefetch\"").count - 1 == 80)
  let parser = XMLParser(data: Data(text.utf8))
  #expect(parser.parse(), "not well-formed: \(String(describing: parser.parserError))")

  let bad = run([Paths.elfload, "heatmap", "/etc/hostname", "-o", svg])
  #expect(bad.ending != .exited(0))
  #expect(bad.stderr.contains("not an elfload trace"), "\(bad)")
}
