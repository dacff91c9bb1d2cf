// What a program may be started with that elfload must not trip over, each compared with a native
// run: standard input, output or error closed (elfload's own descriptors then take their numbers),
// and core dumps on (the wait status then carries the core-dump bit beside the signal).
import Foundation
import Testing

@Suite("Descriptors 0, 1 and 2 closed at the start")
struct ClosedDescriptorTests {
  /// Each of them closed, and all three: elfload opens the program (and its interpreter, and a
  /// userfaultfd) at the lowest free numbers, which are then these.
  static let closings: [Set<Int32>] = [[0], [1], [2], [0, 1, 2]]

  @Test("the program runs as natively, under every policy and pager", arguments: Policy.allCases)
  func closedAtStart(_ policy: Policy) {
    for flavour in [Flavour.staticExec, .dynamic] {
      let program = Paths.sample("exit_code", flavour)
      for closed in Self.closings {
        let native = run([program, "7"], closed: closed)
        let loaded = run([Paths.elfload] + policy.options + [program, "7"], closed: closed)
        #expect(native.ending == .exited(7) && native.stdout.isEmpty == closed.contains(1), "\(flavour.rawValue), \(closed.sorted()) closed: \(native)")
        #expect(loaded == native, "\(flavour.rawValue), \(closed.sorted()) closed:\nnative:\n\(native)\nunder elfload:\n\(loaded)")
      }
    }
  }

  @Test("--stats, --trace and record with descriptors closed: the program as natively, the numbers as with them open")
  func closedWhileMeasured() throws {
    let dir = scratchDirectory("closed-measured")
    let program = Paths.sample("touch_pages", .staticExec)
    for policy in [Policy.demand] + Policy.uffd.prefix(1) {
      for closed in Self.closings {
        let name = "\(policy.rawValue.replacingOccurrences(of: " ", with: ""))-\(closed.sorted().map(String.init).joined())"
        let json = "\(dir)/\(name).json"
        let loaded = run(
          [Paths.elfload] + policy.options + ["--stats-json", json, "--trace", "\(dir)/\(name).csv", program],
          closed: closed)
        #expect(loaded.ending == .exited(0) && loaded.stdout.isEmpty, "\(name): \(loaded)")
        let stats = try #require(
          try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any], "\(name)")
        // touch_pages: its code page and 100 bss pages, each a fault (StatsTests).
        #expect(stats["loader_faults"] as? Int == 101 && stats["pages_mapped"] as? Int == 101, "\(name): \(stats)")
        let rows = try String(contentsOfFile: "\(dir)/\(name).csv", encoding: .utf8).split(separator: "\n")
          .filter { !$0.hasPrefix("#") }.dropFirst()
        #expect(rows.count == 101, "\(name)")
      }
    }
  }
}

@Suite("The files elfload writes for a run are not the program's")
struct OutputDescriptorTests {
  /// --stats-json, --trace, --residency and record's profile are open in elfload from before the
  /// fork to the program's end, in the parent; the program holds what it holds natively, also with
  /// standard input closed (the first of them then takes descriptor 0 in elfload).
  @Test("/proc/self/fd as natively with every output file, under every pager and with record",
        arguments: [Policy.eager, .demand] + Policy.uffd.prefix(1))
  func notInherited(_ policy: Policy) {
    let dir = scratchDirectory("output-descriptors")
    let name = policy.rawValue.replacingOccurrences(of: " ", with: "")
    let program = ["/bin/ls", "/proc/self/fd"]
    let outputs = ["--stats-json", "\(dir)/\(name).json", "--trace", "\(dir)/\(name).csv", "--residency", "\(dir)/\(name).res"]
    for closed in [[], [0]] as [Set<Int32>] {
      let native = run(program, closed: closed)
      // ls's own descriptor for the directory is the lowest free one: 3, or 0 when 0 is closed.
      #expect(native.ending == .exited(0) && native.stdout == (closed.isEmpty ? "0\n1\n2\n3\n" : "0\n1\n2\n"), "\(native)")
      let measured = run([Paths.elfload] + policy.options + outputs + program, closed: closed)
      #expect(measured == native, "\(closed.sorted()) closed:\nnative:\n\(native)\nunder elfload:\n\(measured)")
      if policy == .eager { continue }
      let pager = ["--pager", policy.usesUffd ? "uffd" : "signal"]
      let recorded = run([Paths.elfload, "record", "--profile", "\(dir)/\(name).profile"] + pager + outputs + program, closed: closed)
      #expect(recorded == native, "record, \(closed.sorted()) closed:\nnative:\n\(native)\nunder elfload:\n\(recorded)")
    }
  }
}

@Suite("Core dumps on and off")
struct CoreDumpTests {
  /// `ulimit -c` for one run: prlimit sets RLIMIT_CORE, then execs the rest.
  static func withCoreLimit(_ limit: String, _ argv: [String]) -> [String] {
    ["/usr/bin/prlimit", "--core=\(limit)"] + argv
  }

  @Test(
    "a death by SIGSEGV is signal 11 with core dumps off and on (the core-dump bit is not the signal)",
    .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/prlimit")),
    arguments: [Policy.eager, .demand] + Policy.uffd.prefix(1))
  func coreDumps(_ policy: Policy) throws {
    let program = Paths.sample("null", .staticExec)
    for limit in ["0", "unlimited"] {
      // Cores are written into the working directory (core_pattern "core" here): a scratch one.
      let dir = scratchDirectory("core-\(policy.rawValue.replacingOccurrences(of: " ", with: ""))-\(limit)")
      defer { try? FileManager.default.removeItem(atPath: dir) }
      let json = "\(dir)/stats.json"
      let native = run(Self.withCoreLimit(limit, [program]), directory: dir)
      #expect(native.ending == .signaled(SIGSEGV), "core \(limit): \(native)")
      let plain = run(Self.withCoreLimit(limit, [Paths.elfload] + policy.options + [program]), directory: dir)
      #expect(plain == native, "core \(limit):\nnative:\n\(native)\nunder elfload:\n\(plain)")
      let measured = run(
        Self.withCoreLimit(limit, [Paths.elfload] + policy.options + ["--stats", "--stats-json", json, program]),
        directory: dir)
      #expect(measured.ending == .signaled(SIGSEGV), "core \(limit): \(measured)")
      #expect(measured.stderr.contains(", signal 11\n"), "core \(limit): \(measured.stderr)")
      #expect(!measured.stderr.contains("signal 139"), "core \(limit): \(measured.stderr)")
      let stats = try #require(
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any],
        "core \(limit)")
      #expect(stats["signal"] as? Int == 11 && stats["exit_status"] is NSNull, "core \(limit): \(stats)")
    }
  }
}
