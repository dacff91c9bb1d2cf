// One run's numbers as --stats and --stats-json show them, and the --trace CSV's columns: one
// definition for the launcher that writes them and the tools that read them.

/// The pager's counters (demand.c's struct elfload_demand_counters), as Swift values.
public struct PagerCounters: Equatable, Sendable {
  public var faults: UInt64 = 0
  public var pagesMapped: UInt64 = 0
  public var pagesPrefetched: UInt64 = 0
  public var waits: UInt64 = 0
  /// Prefetched pages never touched, when a watcher counted them.
  public var prefetchedUnused: UInt64?
  /// --prefetch auto, per mechanism (predictor.h): faults where its pattern went on (hits) and
  /// faults that broke it (misses), and the pages it brought in besides the faulting ones.
  public var strideHits: UInt64 = 0
  public var strideMisses: UInt64 = 0
  public var stridePages: UInt64 = 0
  public var readaheadHits: UInt64 = 0
  public var readaheadMisses: UInt64 = 0
  public var readaheadPages: UInt64 = 0
  public var aroundPages: UInt64 = 0
  /// Every mechanism's hits and misses.
  public var predictorHits: UInt64 { strideHits &+ readaheadHits }
  public var predictorMisses: UInt64 { strideMisses &+ readaheadMisses }
  /// --mode replay: pages installed from the profile before the jump, and the time that took.
  public var pagesReplayed: UInt64 = 0
  public var replayNanoseconds: UInt64 = 0
  /// The userfaultfd server's CPU time up to the program's end (nil: no server ran).
  public var serverCPUNanoseconds: UInt64?
  /// Faults the server's normal-priority watcher served because no worker got to them (busy CPUs).
  public var servedByWatcher: UInt64 = 0
  /// The server's workers (CPUs served), its looks at where a faulting thread runs, its watcher's takeovers.
  public var serverWorkers: UInt64 = 0
  public var serverCPUChecks: UInt64 = 0
  public var serverTakeovers: UInt64 = 0
  /// --uffd-server, when a userfaultfd server ran.
  public var serverPlacement: ServerPlacement?
  public init() {}
}

/// How a process ended, from a wait status.
public enum Ending: Equatable, Sendable {
  case exited(Int32)
  case signaled(Int32)

  public init(waitStatus status: Int32) {
    let signal = status & 0x7f
    self = signal == 0 ? .exited((status >> 8) & 0xff) : .signaled(signal)
  }
}

/// What elfload itself cost in the child, from the fork to the jump (its loading).
public struct StartupCost: Sendable {
  public var wallNanoseconds: UInt64 = 0
  public var usage = ResourceUsage()
  public init() {}
}

/// One run's numbers. `usage` is the program's own: the child's, less what
/// elfload cost it before the jump (`startup`).
public struct Report: Sendable {
  /// The JSON's version: 2 added schema, cpu_ms, startup_*, segment_pages,
  /// and pages_mapped became the pager's alone (0 under eager); 3 added
  /// predictor_hits, predictor_misses, pages_replayed, the mode replay and
  /// the prefetch "auto"; 4 added server_cpu_ms, server_placement, server_workers,
  /// server_watcher_faults, replay_ms, fallback and profile_pager, and policy and mode became
  /// the policy that ran (demand, when replay's profile was for other files); 5 added each
  /// --prefetch auto mechanism's hits, misses and pages (around_pages, readahead_*, stride_*),
  /// and predictor_hits and predictor_misses became their sums; 6 added server_takeovers.
  public static let schema = 6
  public var program: String
  /// The policy that ran.
  public var policy: PagingPolicy
  /// Why the policy that ran is not the one asked, when it is not.
  public var fallback: String?
  /// Under replay: the pager that recorded the profile (.some(nil): the profile does not say);
  /// nil otherwise.
  public var profilePager: Pager??
  /// "uffd" or "signal" under demand and hybrid; nil under eager.
  public var pager: String?
  public var wallNanoseconds: UInt64
  public var usage: ResourceUsage
  public var ending: Ending
  public var counters: PagerCounters
  public var traced: UInt64
  public var dropped: UInt64
  /// Pages of the PT_LOAD segments (program and interpreter), the same under every policy.
  public var segmentPages: UInt64
  public var startup: StartupCost

  public init(
    program: String, policy: PagingPolicy, fallback: String? = nil, pager: String? = nil, wallNanoseconds: UInt64,
    usage: ResourceUsage, ending: Ending, counters: PagerCounters, traced: UInt64, dropped: UInt64,
    segmentPages: UInt64 = 0, startup: StartupCost = StartupCost()
  ) {
    self.fallback = fallback
    self.segmentPages = segmentPages
    self.startup = startup
    self.program = program
    self.policy = policy
    self.pager = pager
    self.wallNanoseconds = wallNanoseconds
    self.usage = usage
    self.ending = ending
    self.counters = counters
    self.traced = traced
    self.dropped = dropped
  }

  /// Milliseconds with three decimals, from an integer count of `unit`s per millisecond.
  public static func milliseconds(_ value: UInt64, perMillisecond unit: UInt64) -> String {
    let thousandths = (value &* 1000 &+ unit / 2) / unit
    let fraction = String(thousandths % 1000)
    return "\(thousandths / 1000)." + String(repeating: "0", count: 3 - fraction.utf8.count) + fraction
  }

  var wall: String { Self.milliseconds(wallNanoseconds, perMillisecond: 1_000_000) }
  var user: String { Self.milliseconds(usage.userMicroseconds, perMillisecond: 1000) }
  var system: String { Self.milliseconds(usage.systemMicroseconds, perMillisecond: 1000) }
  var cpu: String { Self.milliseconds(usage.userMicroseconds + usage.systemMicroseconds, perMillisecond: 1000) }
  var startupWall: String { Self.milliseconds(startup.wallNanoseconds, perMillisecond: 1_000_000) }
  var startupCPU: String {
    Self.milliseconds(startup.usage.userMicroseconds + startup.usage.systemMicroseconds, perMillisecond: 1000)
  }

  var endingText: String {
    switch ending {
    case .exited(let status): return "exit \(status)"
    case .signaled(let signal): return "signal \(signal)"
    }
  }

  /// What --stats prints. The kernel's page faults and elfload's pager's faults are two
  /// counts of different things, named apart, each with a line that says what it counts: the
  /// kernel's are every fault on any memory, and barely move between policies; the pager's are
  /// where paging policies differ.
  public var summary: String {
    let unused = counters.prefetchedUnused.map { "\($0) never touched" } ?? "unused unknown"
    return """
      elfload stats: \(program) (\(policy.description)\(pager.map { ", \($0) pager" } ?? "")\(fallback.map { "; \($0)" } ?? "")), \(endingText)
        time:          wall \(wall) ms from the fork, of which elfload's loading \(startupWall) ms
        program:       cpu \(cpu) ms (user \(user), sys \(system): split by timer-tick sampling); peak RSS \(usage.maxRSSKiB) KiB
        elfload:       cpu \(startupCPU) ms before the jump
        kernel faults: \(usage.minorFaults) minor, \(usage.majorFaults) major in the program; \(startup.usage.minorFaults) minor, \(startup.usage.majorFaults) major in elfload before the jump
                       (the kernel's count: a fault per page first touched, on any memory -- heap, stack, libraries -- whoever serves it, so policies barely move it)
        pager faults:  \(counters.faults) served, \(counters.pagesMapped) pages mapped, \(counters.pagesPrefetched) of them prefetched (\(unused)), \(counters.waits) waits; \(segmentPages) segment pages
                       (elfload's pager's count: the faults it served itself, on the program's and interpreter's segments; 0 under eager, where the kernel serves them: here policies differ)
      \(serverLine)\(policyLine)
      """
  }

  /// What the userfaultfd server cost, beside the program: its own process's CPU.
  var serverLine: String {
    guard let ns = counters.serverCPUNanoseconds else {
      return pager?.utf8.elementsEqual("signal".utf8) == true ? "  server:        none (faults are served in the program, by its SIGSEGV handler: their cost is in the program's cpu)\n" : ""
    }
    let cpu = Self.milliseconds(ns, perMillisecond: 1_000_000)
    if counters.serverPlacement == .single {
      return "  server:        cpu \(cpu) ms (the userfaultfd server's, beside the program's); one thread at normal priority following the faulting thread's CPU (--uffd-server single)\n"
    }
    return
      "  server:        cpu \(cpu) ms (the userfaultfd server's, beside the program's); \(counters.serverWorkers) workers (one per CPU faulted on), \(counters.serverCPUChecks) looks at a thread's CPU; \(counters.servedByWatcher) faults served by its normal-priority watcher in \(counters.serverTakeovers) takeovers (no worker got to them within a tick: busy CPUs)\n"
  }

  /// The predictor's or the replay's own line, when the policy has one.
  var policyLine: String {
    switch policy {
    case .predictive:
      let c = counters
      return
        "  predictor:     fault-around \(c.aroundPages) pages; readahead \(c.readaheadHits) hits, \(c.readaheadMisses) misses, \(c.readaheadPages) pages; strides \(c.strideHits) hits, \(c.strideMisses) misses, \(c.stridePages) pages (a hit: the pattern went on, its window doubled; a miss: it broke)\n"
    case .replay:
      let missed = profilePager.map { Profile.misses($0).map { " (\($0))" } ?? " (recorded under the uffd pager)" } ?? ""
      return "  replay:        \(counters.pagesReplayed) pages installed from the profile before the jump\(missed), in \(Self.milliseconds(counters.replayNanoseconds, perMillisecond: 1_000_000)) ms of elfload's loading\n"
    default:
      return ""
    }
  }

  public var json: String {
    let end: String
    switch ending {
    case .exited(let status): end = "\"exit_status\": \(status), \"signal\": null"
    case .signaled(let signal): end = "\"exit_status\": null, \"signal\": \(signal)"
    }
    let unused = counters.prefetchedUnused.map { "\($0)" } ?? "null"
    return """
      {"schema": \(Self.schema), "program": "\(Self.escape(program))", "policy": "\(policy.description)", \
      "mode": "\(policy.mode)", "fallback": \(fallback.map { "\"\(Self.escape($0))\"" } ?? "null"), "prefetch": \(policy == .predictive ? "\"auto\"" : "\(policy.prefetch)"), "pager": \(pager.map { "\"\($0)\"" } ?? "null"), \
      "wall_ms": \(wall), "startup_ms": \(startupWall), "cpu_ms": \(cpu), "user_ms": \(user), "sys_ms": \(system), \
      "startup_cpu_ms": \(startupCPU), "max_rss_kb": \(usage.maxRSSKiB), \
      "minor_faults": \(usage.minorFaults), "major_faults": \(usage.majorFaults), \
      "startup_minor_faults": \(startup.usage.minorFaults), "startup_major_faults": \(startup.usage.majorFaults), \
      "segment_pages": \(segmentPages), "loader_faults": \(counters.faults), "pages_mapped": \(counters.pagesMapped), \
      "pages_prefetched": \(counters.pagesPrefetched), "prefetched_unused": \(unused), \
      "waits": \(counters.waits), "predictor_hits": \(counters.predictorHits), "predictor_misses": \(counters.predictorMisses), \
      "around_pages": \(counters.aroundPages), "readahead_hits": \(counters.readaheadHits), \
      "readahead_misses": \(counters.readaheadMisses), "readahead_pages": \(counters.readaheadPages), \
      "stride_hits": \(counters.strideHits), "stride_misses": \(counters.strideMisses), "stride_pages": \(counters.stridePages), \
      "pages_replayed": \(counters.pagesReplayed), "profile_pager": \(profilePager.flatMap { $0 }.map { "\"\($0.name)\"" } ?? "null"), \
      "replay_ms": \(Self.milliseconds(counters.replayNanoseconds, perMillisecond: 1_000_000)), \
      "server_cpu_ms": \(counters.serverCPUNanoseconds.map { Self.milliseconds($0, perMillisecond: 1_000_000) } ?? "null"), \
      "server_placement": \(counters.serverPlacement.map { "\"\($0.name)\"" } ?? "null"), \
      "server_workers": \(counters.serverWorkers), "server_watcher_faults": \(counters.servedByWatcher), \
      "server_takeovers": \(counters.serverTakeovers), \
      "trace_records": \(traced), "trace_dropped": \(dropped), \(end)}

      """
  }

  /// A JSON string's contents.
  public static func escape(_ s: String) -> String {
    var out: [UInt8] = []
    let digits = Array("0123456789abcdef".utf8)
    for byte in s.utf8 {
      switch byte {
      case UInt8(ascii: "\""): out += Array("\\\"".utf8)
      case UInt8(ascii: "\\"): out += Array("\\\\".utf8)
      case 0..<0x20: out += Array("\\u00".utf8) + [digits[Int(byte >> 4)], digits[Int(byte & 15)]]
      default: out.append(byte)
      }
    }
    return String(decoding: out, as: UTF8.self)
  }
}

#if !hasFeature(Embedded)
  /// Every --stats-json field, defined once: --help lists these, the README
  /// has the same list, and a test checks both against what elfload writes.
  public struct StatsField: Sendable {
    public var name: String
    public var meaning: String
  }

  extension Report {
    public static let fields: [StatsField] = [
      StatsField(name: "schema", meaning: "this format's version: 6"),
      StatsField(name: "program", meaning: "PROGRAM as given"),
      StatsField(
        name: "policy",
        meaning: "the paging policy that ran, as options: \"eager\", \"demand\", \"hybrid --prefetch 16\" (see fallback)"),
      StatsField(name: "mode", meaning: "the --mode that ran: eager, demand, hybrid or replay"),
      StatsField(
        name: "fallback",
        meaning: "why the policy that ran is not the one asked (replay with a profile recorded for other files runs demand), or null"),
      StatsField(name: "prefetch", meaning: "pages mapped after each faulting one (hybrid), \"auto\" (hybrid --prefetch auto); 0 otherwise"),
      StatsField(name: "pager", meaning: "how faults were served under demand, hybrid and replay: \"uffd\" or \"signal\"; null under eager"),
      StatsField(name: "wall_ms", meaning: "wall time from the fork to the program's end (elfload's loading included)"),
      StatsField(name: "startup_ms", meaning: "of wall_ms, the time from the fork to the jump into the program: elfload's loading"),
      StatsField(
        name: "cpu_ms",
        meaning: "the program's CPU time (user + system) after the jump, with its waited-for children; exact to the microsecond"),
      StatsField(
        name: "user_ms",
        meaning: "of cpu_ms, user time: the kernel splits cpu_ms by timer-tick samples, so the split is exact only over many ticks"),
      StatsField(name: "sys_ms", meaning: "of cpu_ms, system time (split as user_ms)"),
      StatsField(name: "startup_cpu_ms", meaning: "elfload's own CPU time in the child before the jump"),
      StatsField(name: "max_rss_kb", meaning: "the program's peak resident set, KiB (counted from the jump)"),
      StatsField(
        name: "minor_faults",
        meaning: "the kernel's count of the program's minor page faults after the jump: every fault on any memory (heap, stack, libraries), those passed to elfload's pager included"),
      StatsField(name: "major_faults", meaning: "the kernel's count of the program's major page faults (read from disk) after the jump"),
      StatsField(name: "startup_minor_faults", meaning: "the kernel's count of elfload's own minor page faults in the child before the jump"),
      StatsField(name: "startup_major_faults", meaning: "the kernel's count of elfload's own major page faults in the child before the jump"),
      StatsField(
        name: "segment_pages",
        meaning: "pages of the PT_LOAD segments elfload set up, program and interpreter: the same under every policy"),
      StatsField(
        name: "loader_faults",
        meaning: "elfload's pager's count: first touches of the segments it served itself (demand, hybrid, replay; 0 under eager, where the kernel pages them); a part of minor_faults"),
      StatsField(
        name: "pages_mapped",
        meaning: "pages elfload's pager made accessible while the program ran, prefetched ones included (0 under eager, which maps every segment page at the start)"),
      StatsField(name: "pages_prefetched", meaning: "of pages_mapped, those mapped ahead of a fault on them (hybrid)"),
      StatsField(
        name: "prefetched_unused",
        meaning: "of pages_prefetched, those with no page-table entry when the program ended; null if unknown"),
      StatsField(name: "waits", meaning: "times a thread waited for another to finish mapping a page"),
      StatsField(
        name: "predictor_hits",
        meaning: "--prefetch auto: faults exactly where a predicted pattern said the next would land: readahead_hits + stride_hits"),
      StatsField(
        name: "predictor_misses",
        meaning: "--prefetch auto: faults elsewhere while a pattern's window was open: readahead_misses + stride_misses"),
      StatsField(
        name: "around_pages",
        meaning: "--prefetch auto: pages brought in by fault-around (the rest of each fault's aligned block of file pages)"),
      StatsField(
        name: "readahead_hits",
        meaning: "--prefetch auto: faults on the page right after the last run of file pages brought in (the run doubled)"),
      StatsField(name: "readahead_misses", meaning: "--prefetch auto: faults elsewhere in the region while such a run was open (it ended)"),
      StatsField(name: "readahead_pages", meaning: "--prefetch auto: pages brought in by readahead runs, the faulting ones apart"),
      StatsField(
        name: "stride_hits",
        meaning: "--prefetch auto: faults one stride past a stride window's last page, in writable data or the bss (the window doubled)"),
      StatsField(name: "stride_misses", meaning: "--prefetch auto: faults elsewhere while a stride window was open (it closed)"),
      StatsField(name: "stride_pages", meaning: "--prefetch auto: pages brought in along strides, the faulting ones apart"),
      StatsField(
        name: "pages_replayed",
        meaning: "--mode replay: pages installed from the profile before the jump (not in pages_mapped or loader_faults)"),
      StatsField(
        name: "profile_pager",
        meaning: "--mode replay: the pager that recorded the profile, \"uffd\" or \"signal\" (whose profiles lack read-only data: replay pages it on demand); null otherwise or if the profile does not say"),
      StatsField(
        name: "replay_ms", meaning: "--mode replay: of startup_ms, the time installing pages_replayed took; 0 otherwise"),
      StatsField(
        name: "server_cpu_ms",
        meaning:
          "the userfaultfd server's CPU time (all its threads) up to the program's end: what paging cost beside cpu_ms; null when no server ran (eager, the signal pager)"
      ),
      StatsField(
        name: "server_placement",
        meaning: "who served faults in the userfaultfd server (--uffd-server): \"workers\" or \"single\"; null when no server ran"),
      StatsField(
        name: "server_workers",
        meaning: "the userfaultfd server's workers: one per CPU the program faulted on (--uffd-server workers); 0 otherwise"),
      StatsField(
        name: "server_watcher_faults",
        meaning:
          "faults the server's normal-priority watcher served: when faults kept waiting for the SCHED_IDLE workers (CPUs busy with other work), for 100 ms at a time; all of them under --uffd-server single"
      ),
      StatsField(
        name: "server_takeovers",
        meaning:
          "times the watcher took the faults over from the workers (a fault waited a whole tick unserved, or no CPU was idle); 0 under --uffd-server single, whose watcher serves from the start, and when no server ran"
      ),
      StatsField(name: "trace_records", meaning: "rows written to --trace"),
      StatsField(name: "trace_dropped", meaning: "rows that did not fit in the trace buffer (2^21)"),
      StatsField(name: "exit_status", meaning: "the program's exit status, or null if a signal killed it"),
      StatsField(name: "signal", meaning: "the signal that killed the program, or null"),
    ]
  }
#endif

/// The --trace CSV: one row per page the pager makes accessible, after a preamble of `# `
/// lines (format 2 on): the format line, then the segment table, one row per PT_LOAD loaded.
public enum TraceFormat {
  /// The header line's columns, in order (format 3).
  public static let columns = ["sequence", "time_ns", "address", "image", "segment", "page", "kind", "tid", "pager", "why"]
  /// Format 1 and 2's columns: no `why`.
  public static let formerColumns = Array(columns.dropLast())
  public static var header: String { columns.joined(separator: ",") + "\n" }
  /// The `kind` column's words.
  public static let fault = "fault"
  public static let prefetch = "prefetch"
  /// The `why` column's words, by ELFLOAD_WHY_* (NoRuntimeZone.h): the faulting page was
  /// touched; the others came with it by a fixed --prefetch N, by --prefetch auto's
  /// fault-around, readahead or stride, or around it once the signal pager's map-count budget
  /// was spent.
  public static let why = ["touched", "fixed", "around", "readahead", "stride", "spread"]
  /// Lines that start with this are the preamble (CSV readers skip them as comments).
  public static let commentPrefix = "# "
  /// The first line of a format 3 trace (format 2 had no `why` column, format 1 no preamble).
  public static let formatLine = "# elfload trace, format 3\n"
  /// The segment table's columns: the image (0 program, 1 interpreter) and the program
  /// header's index (the rows' `image` and `segment`), its type, permissions (`r-x`), the
  /// pages it spans, [start, end) in memory, and the image's path (last; commas become `;`).
  public static let segmentColumns = ["image", "segment", "type", "flags", "pages", "start", "end", "path"]
  public static var segmentHeader: String { commentPrefix + segmentColumns.joined(separator: ",") + "\n" }
}

/// The --residency CSV (written by demand.c's watcher, and by `elfload residency --native`).
public enum ResidencyFormat {
  /// The first line of a format 2 file: a `# ` preamble with the trace's segment table (what
  /// each mapping of the program and its interpreter is), before the header. Format 1 had none.
  public static let formatLine = "# elfload residency, format 2\n"
  /// The header's columns (demand.c writes the same line).
  public static let columns = ["start", "end", "perms", "resident_pages", "total_pages", "pages", "name"]
  /// The names the watcher gives elfload's own memory, which a native run does not have.
  public static let ownMemoryPrefix = "[elfload: "
  /// A mapping of up to this many pages is pictured page by page in the `pages` column; a larger
  /// one is counted only (demand.c's ELFLOAD_RESIDENCY_PAGES; residency --native writes the same).
  public static let picturedPages = 4096
}

extension ProgramHeader {
  /// The pages the segment spans in memory at load bias `bias`, [start, end): what the trace's
  /// segment table says of it.
  public func pagesInMemory(bias: UInt64) -> (start: UInt64, end: UInt64) {
    let start = pageStart(vaddr &+ bias)
    return (start, pageAlign(vaddr &+ memsz &+ bias) ?? start)
  }
}
