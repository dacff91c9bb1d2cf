// --stats-json's numbers against independent measures of the same things: what the kernel tells
// the program itself (Samples/measured.c: its peak RSS, its CPU clock, CLOCK_MONOTONIC around its
// page touches), a native run of it, the test's own clock, and the userfaultfd server's CPU read
// from /proc while it lives.
import Foundation
import Testing

/// What Samples/measured.c prints.
struct Measured {
  var earlyPage: UInt64
  var earlyNanoseconds: Int64
  var latePage: UInt64
  var lateNanoseconds: Int64
  var mainNanoseconds: Int64
  /// The process's CPU clock at main's start: what its start (elfload's included) cost it.
  var mainCPUNanoseconds: Int64
  var endNanoseconds: Int64
  var cpuNanoseconds: Int64
  var userTicks: Int64
  var systemTicks: Int64
  var ticksPerSecond: Int64
  var peakKiB: Int64

  init(_ outcome: Outcome) throws {
    var words: [String: [String]] = [:]
    for line in outcome.stdout.split(separator: "\n") {
      let w = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
      if let key = w.first { words[key] = Array(w.dropFirst()) }
    }
    func number(_ key: String, _ i: Int, radix: Int = 10) throws -> Int64 {
      let text = try #require(words[key].flatMap { i < $0.count ? $0[i] : nil }, "\(key) in \(outcome)")
      return try #require(Int64(text.hasPrefix("0x") ? String(text.dropFirst(2)) : text, radix: radix), "\(key): \(text)")
    }
    earlyPage = UInt64(try number("early", 0, radix: 16))
    earlyNanoseconds = try number("early", 1)
    latePage = UInt64(try number("late", 0, radix: 16))
    lateNanoseconds = try number("late", 1)
    mainNanoseconds = try number("main", 0)
    mainCPUNanoseconds = try number("main", 1)
    endNanoseconds = try number("end", 0)
    cpuNanoseconds = try number("cpu", 0)
    userTicks = try number("ticks", 0)
    systemTicks = try number("ticks", 1)
    ticksPerSecond = try number("ticks", 2)
    peakKiB = try number("VmHWM:", 0)
  }
}

@Suite("Stats against independent measures")
struct MeasuredStatsTests {
  static let scratch = scratchDirectory("measured")

  /// Runs measured under `policy` with --stats-json (and --trace), and returns what the program
  /// printed, the JSON, the trace's rows and the run as the test's clock saw it.
  static func measure(_ policy: Policy, _ flavour: Flavour, _ args: [String], trace: Bool = false, argv0: String? = nil)
    throws -> (Measured, [String: Any], [[String]], Outcome)
  {
    let name = "\(flavour.rawValue)-\(policy.rawValue.replacingOccurrences(of: " ", with: ""))-\(args.joined(separator: "-"))"
    let json = "\(scratch)/\(name).json"
    let csv = "\(scratch)/\(name).csv"
    let loaded = run(
      [Paths.elfload] + policy.options + (argv0.map { ["--argv0", $0] } ?? []) + ["--stats-json", json]
        + (trace ? ["--trace", csv] : []) + [Paths.sample("measured", flavour)] + args)
    try #require(loaded.ending == .exited(0) && loaded.stderr.isEmpty, "\(loaded)")
    let stats = try #require(
      try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any], "\(name)")
    let rows =
      trace
      ? try String(contentsOfFile: csv, encoding: .utf8).split(separator: "\n").filter { !$0.hasPrefix("#") }.dropFirst()
        .map { $0.split(separator: ",").map(String.init) } : []
    return (try Measured(loaded), stats, rows, loaded)
  }

  static func milliseconds(_ stats: [String: Any], _ key: String) throws -> Double {
    try #require((stats[key] as? NSNumber)?.doubleValue, "\(key) in \(stats)")
  }

  /// The kernel's RSS counters (file, anonymous, shared memory) are per CPU, folded into the
  /// total in batches of max(32, 2 x CPUs) pages (percpu_counter_batch), and a peak is taken from
  /// the folded total: two readings of one peak differ by up to that much a CPU a counter
  /// (768 KiB on 2 CPUs; measured: 664 at most, with a userfaultfd server installing the pages).
  static let rssSlackKiB: Int64 = {
    let cpus = Int64(ProcessInfo.processInfo.activeProcessorCount)
    return 3 * cpus * max(32, 2 * cpus) * 4
  }()

  @Test("max_rss_kb is the native run's peak RSS (VmHWM), at 0 and at 16 MiB of bss written", arguments: Policy.allCases)
  func peakRSS(_ policy: Policy) throws {
    for flavour in [Flavour.staticExec, .dynamic] {
      for mib in ["0", "16"] {
        let native = try Measured(run([Paths.sample("measured", flavour), mib, "0", "0"]))
        let (own, stats, _, _) = try Self.measure(policy, flavour, [mib, "0", "0"])
        let reported = try #require(stats["max_rss_kb"] as? Int, "\(stats)")
        #expect(
          abs(Int64(reported) - native.peakKiB) <= Self.rssSlackKiB,
          "\(flavour.rawValue), \(mib) MiB: max_rss_kb \(reported), native VmHWM \(native.peakKiB) KiB")
        #expect(
          abs(Int64(reported) - own.peakKiB) <= Self.rssSlackKiB,
          "\(flavour.rawValue), \(mib) MiB: max_rss_kb \(reported), the program's own VmHWM \(own.peakKiB) KiB")
      }
    }
  }

  @Test("cpu_ms, user_ms, sys_ms and wall_ms against the program's own clocks and the test's", arguments: Policy.allCases)
  func cpuAndWall(_ policy: Policy) throws {
    // 60 ms of CPU in user space, 100 ms asleep.
    let (m, stats, _, outcome) = try Self.measure(policy, .dynamic, ["0", "60", "100"])
    let cpu = try Self.milliseconds(stats, "cpu_ms")
    let user = try Self.milliseconds(stats, "user_ms")
    let sys = try Self.milliseconds(stats, "sys_ms")
    let startupCPU = try Self.milliseconds(stats, "startup_cpu_ms")
    let wall = try Self.milliseconds(stats, "wall_ms")
    let startup = try Self.milliseconds(stats, "startup_ms")
    // The child's CPU is elfload's before the jump and the program's after it; the program read
    // its process clock just before it ended: what is left is its exit (measured: 0.24-0.49 ms on
    // a quiet machine, up to 1 ms on a busy one).
    let ownCPU = Double(m.cpuNanoseconds) / 1e6
    #expect(
      cpu + startupCPU >= ownCPU - 0.01 && cpu + startupCPU <= ownCPU + 2,
      "cpu_ms \(cpu) + startup_cpu_ms \(startupCPU), the program's own CPU clock \(ownCPU) ms")
    #expect(abs(cpu - user - sys) < 0.0015, "\(stats)")
    // The kernel's split of the same time, in ticks, as the program read it: within a tick and a half.
    let tick = 1000.0 / Double(m.ticksPerSecond)
    #expect(abs(user - Double(m.userTicks) * tick) <= 1.5 * tick, "user_ms \(user), utime \(m.userTicks) ticks")
    #expect(abs(sys - Double(m.systemTicks) * tick) <= 1.5 * tick, "sys_ms \(sys), stime \(m.systemTicks) ticks")
    // From the fork to the end: elfload's loading, then the program from main to its last
    // reading (and its C library's start and its exit around them); no more than the test saw.
    let ownElapsed = Double(m.endNanoseconds - m.mainNanoseconds) / 1e6
    #expect(wall >= startup + ownElapsed, "wall_ms \(wall), startup_ms \(startup), main to end \(ownElapsed) ms")
    #expect(wall <= outcome.seconds * 1000, "wall_ms \(wall), the test's clock \(outcome.seconds * 1000) ms")
  }

  @Test(
    "trace time_ns: each fault between the program's own clock readings around it, the sleep between two as long",
    arguments: Policy.allCases.filter { $0 == .demand || $0 == .demandUffd })
  func traceTimes(_ policy: Policy) throws {
    let (m, stats, rows, _) = try Self.measure(policy, .staticExec, ["0", "0", "100"], trace: true)
    let wall = try Self.milliseconds(stats, "wall_ms") * 1e6
    let startup = try Self.milliseconds(stats, "startup_ms") * 1e6
    func faultTime(_ page: UInt64) throws -> Double {
      let row = try #require(rows.first { $0.count > 6 && $0[2] == "0x" + String(page, radix: 16) }, "no row for \(page)")
      #expect(row[6] == "fault")
      return try #require(Double(row[1]), "\(row)")
    }
    let early = try faultTime(m.earlyPage)
    let late = try faultTime(m.latePage)
    // The signal pager stamps a fault in the faulting thread, before it goes on; the userfaultfd
    // server once it has served it, after the thread was woken (a tick of its watcher later, or
    // more on a busy machine): by then the program may have gone on.
    let slack = policy.usesUffd ? 10e6 : 1e6
    // Since the fork: after elfload's loading and the program's time from main to the touch;
    // before the end, less the program's time from the touch to its last reading. (0.1 ms for
    // rounding to the microsecond and the clock line.)
    for (name, stamp, at) in [("early", early, m.earlyNanoseconds), ("late", late, m.lateNanoseconds)] {
      let low = startup + Double(at - m.mainNanoseconds)
      let high = wall - Double(m.endNanoseconds - at) + (policy.usesUffd ? slack : 0)
      #expect(stamp >= low - 1e5 && stamp <= high + 1e5, "\(name): time_ns \(stamp), between \(low) and \(high)")
    }
    // The 100 ms between them as the program measured it.
    let gap = Double(m.lateNanoseconds - m.earlyNanoseconds)
    #expect(abs((late - early) - gap) <= slack, "time_ns apart \(late - early), the program's clock \(gap)")
    let last = rows.compactMap { $0[at: 1].flatMap(Double.init) }.max() ?? 0
    #expect(last <= wall + (policy.usesUffd ? slack : 0), "the last stamp \(last) after wall_ms \(wall / 1e6)")
  }

  /// The CPU time of each thread of `pid` (/proc/PID/task/*/schedstat's first field), by thread id;
  /// empty when it is gone.
  static func threadsCPU(_ pid: String) -> [String: UInt64] {
    guard let tasks = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task") else { return [:] }
    var times: [String: UInt64] = [:]
    for task in tasks {
      if let text = try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/schedstat", encoding: .utf8),
        let first = text.split(separator: " ").first, let ns = UInt64(first)
      {
        times[task] = ns
      }
    }
    return times
  }

  /// A process's state letter (/proc/PID/stat's third field: R, S, Z, ...), or nil when it is gone.
  static func state(_ pid: String) -> String? {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return nil }
    return stat[close...].split(separator: " ").dropFirst().first.map(String.init)
  }

  @Test(
    "server_cpu_ms is the server's CPU as /proc/PID/task/*/schedstat says while it lives",
    .enabled(if: Policy.uffdAvailable), arguments: [Policy.demandUffd, .hybridAutoUffd])
  func serverCPU(_ policy: Policy) throws {
    let marker = "server-cpu-\(getpid())-\(policy.rawValue.replacingOccurrences(of: " ", with: "-"))"
    let json = "\(Self.scratch)/server-\(marker).json"
    // 4096 pages written (as many faults under demand), the output, then 400 ms without a fault
    // before the program ends: the server has stopped ticking 50 ms after the last fault (its
    // probes after that cost microseconds). Its threads are read every 5 ms from its start until
    // the program has ended (elfload reads the server's clock once it has), each thread's last
    // reading kept: a thread that has ended is gone from /proc/PID/task but not from the
    // process's CPU time, which server_cpu_ms is. (One reading 200 ms after the output was short
    // by 0.3-2 ms on a busy machine, whose server still ticked; one after the program's end was
    // over by what the server spent finding it gone.)
    let started = start(
      [Paths.elfload] + policy.options + [
        "--argv0", marker, "--stats-json", json, Paths.sample("measured", .staticExec), "16", "0", "0", "400",
      ])
    var threads: [String: UInt64] = [:]
    var pid: String?
    var program: String?
    let deadline = Date().addingTimeInterval(30)
    while Date() < deadline {
      // elfload's child, the program (the server is a process of its own, in a session of its own).
      program = program ?? (try? String(contentsOfFile: "/proc/\(started.pid)/task/\(started.pid)/children", encoding: .utf8))?
        .split(separator: " ").map(String.init).first { Self.state($0).map { $0 != "Z" } ?? false }
      pid = pid ?? DemandTests.liveServers(marker: marker).first
      if let program, Self.state(program).map({ $0 == "Z" }) ?? true { break }
      if let pid { threads.merge(Self.threadsCPU(pid)) { max($0, $1) } }
      usleep(5_000)
    }
    let outcome = started.finish()
    try #require(outcome.ending == .exited(0) && outcome.stdout.contains("VmHWM"), "\(outcome)")
    try #require(!threads.isEmpty, "the server was not found while it lived (\(pid ?? "no pid"))")
    let reading = threads.values.reduce(0, +)
    let stats = try #require(
      try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any])
    let reported = try Self.milliseconds(stats, "server_cpu_ms")
    // (The server's probes after the last reading cost it microseconds more by the supervisor's.)
    let read = Double(reading) / 1e6
    #expect(
      reported >= read - 0.01 && reported <= read + 0.3,
      "server_cpu_ms \(reported), its threads' schedstat \(read) ms, each at its last reading: \(threads)")
  }

  /// The start-up's CPU in whole seconds too: replayed from a profile of 2^21 lines, a program's
  /// start spends seconds before the jump reading it (3-3.5 s measured, a debug build). The split
  /// is the program's own: startup_cpu_ms is its CPU clock at main (measured.c reads it there)
  /// less its C library's start; and startup_cpu_ms + cpu_ms is the CPU bash counts for the
  /// elfload it ran (`times`: every process it waited for, and every one they waited for), less
  /// the supervisor's own (1-2 ms measured).
  @Test("startup_cpu_ms is the program's CPU clock at main, and with cpu_ms what the shell counts, over a second of start-up too")
  func startupCPUOverASecond() throws {
    let program = Paths.sample("measured", .staticExec), arguments = ["0", "0", "0"]
    let small = "\(Self.scratch)/startup-cpu.profile", large = small + ".large", json = small + ".json"
    #expect(run([Paths.elfload, "record", "--profile", small, program] + arguments).ending == .exited(0))
    try repeatProfile(small, lines: 1 << 21, to: large)
    let timed = run(
      ["/bin/bash", "-c", "\"$@\"; times", "bash", Paths.elfload, "--stats-json", json, "--mode", "replay",
       "--profile", large, program] + arguments, timeout: 120)
    try #require(timed.ending == .exited(0), "\(timed)")
    // `times`: the shell's own user and system time, then its children's: "0m2.969s 0m0.106s".
    let children = try #require(timed.stdout.split(separator: "\n").last, "\(timed)")
    let seconds = children.split(separator: " ").compactMap { field -> Double? in
      guard let m = field.firstIndex(of: "m"), field.hasSuffix("s"), let minutes = Double(field[..<m]),
        let rest = Double(field[field.index(after: m)...].dropLast())
      else { return nil }
      return minutes * 60 + rest
    }
    try #require(seconds.count == 2, "\(timed)")
    let total = (seconds[0] + seconds[1]) * 1000
    let measured = try Measured(timed)
    let atMain = Double(measured.mainCPUNanoseconds) / 1e6
    try #require(atMain > 1200, "a start-up of less than a second does not test this: \(atMain) ms")
    let stats = try #require(
      try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any])
    let startup = try Self.milliseconds(stats, "startup_cpu_ms")
    // The C library's start, between the jump and main: well under a millisecond (the replay
    // installed its pages; 5 ms leaves room for a busy machine).
    #expect(startup <= atMain && startup >= atMain - 5, "startup_cpu_ms \(startup), the CPU clock at main \(atMain) ms")
    let reported = try startup + Self.milliseconds(stats, "cpu_ms")
    #expect(reported <= total + 1 && reported >= total - 50, "startup_cpu_ms + cpu_ms \(reported), bash's times \(total) ms")
  }

  /// A start that fails in the child (no such program: the supervisor forks before the path is
  /// looked up) never reaches the jump: every fault of the child is the start-up's, none the
  /// program's, and so is all its time. The kernel's count for elfload and all it waited for (a
  /// parent's RUSAGE_CHILDREN) holds them and the supervisor's own (27-28 of 65-67 measured): more
  /// than none, no more than that.
  @Test("a start that fails after the fork: the child's faults are all the start-up's, within elfload's whole count")
  func failedStartFaults() throws {
    let json = "\(Self.scratch)/failed-start.json"
    let counting = [
      "/usr/bin/python3", "-c",
      "import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
        + "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_minflt)",
    ]
    let outcome = run(counting + [Paths.elfload, "--stats-json", json, "/nonexistent/program"])
    #expect(outcome.stderr == "elfload: /nonexistent/program: no such file or directory\n", "\(outcome)")
    let words = outcome.stdout.split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { Int($0) }
    try #require(words.count == 2 && words[0] == 127, "\(outcome)")
    let stats = try #require(
      try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any])
    let startup = try #require(stats["startup_minor_faults"] as? Int, "\(stats)")
    #expect(stats["minor_faults"] as? Int == 0 && stats["exit_status"] as? Int == 127, "\(stats)")
    // Nor any of the program's time or memory: it never ran.
    for key in ["user_ms", "sys_ms", "cpu_ms", "max_rss_kb", "major_faults"] {
      #expect((stats[key] as? NSNumber)?.doubleValue == 0, "\(key) in \(stats)")
    }
    #expect(startup > 0 && startup <= words[1], "startup_minor_faults \(startup), elfload's whole count \(words[1])")
  }
}
