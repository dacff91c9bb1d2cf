// The command line of `elfload [options] PROGRAM ARGS`: each run option defined once, here, for
// the launcher's parser and the companion's help and usage text alike.

/// How a program's pages come into memory: one closed set.
public enum PagingPolicy: Equatable, Sendable {
  /// Every PT_LOAD mapped up front, exactly as the kernel's execve maps it.
  case eager
  /// Nothing mapped up front: a page is mapped when the program first touches it.
  case demand
  /// Demand, and each fault also maps up to `prefetch` following pages.
  case hybrid(prefetch: Int)
  /// Hybrid with `--prefetch auto`: how many pages follow a fault, and how
  /// far apart, is predicted from the faults before it (predictor.h's rule).
  case predictive
  /// Every page a recorded run touched (a profile, written by `elfload
  /// record`) installed before the jump; the rest on demand.
  case replay(profile: [UInt8])

  /// Pages mapped after each faulting one under hybrid.
  public static let prefetchRange = 1...512

  /// The --mode word.
  public var mode: String {
    switch self {
    case .eager: return "eager"
    case .demand: return "demand"
    case .hybrid, .predictive: return "hybrid"
    case .replay: return "replay"
    }
  }

  /// Pages mapped after a faulting one: 0 unless hybrid with a number.
  public var prefetch: Int {
    if case .hybrid(let n) = self { return n }
    return 0
  }

  /// The --prefetch value: a number, "auto", or nil when the mode has none.
  public var prefetchValue: String? {
    switch self {
    case .hybrid(let n): return "\(n)"
    case .predictive: return "auto"
    default: return nil
    }
  }

  /// As options: "hybrid --prefetch 16", "hybrid --prefetch auto", "replay".
  public var description: String {
    prefetchValue.map { "\(mode) --prefetch \($0)" } ?? mode
  }
}

/// How faults reach elfload under demand and hybrid paging.
public enum Pager: Equatable, Sendable {
  /// A SIGSEGV handler in the program (the seed's mechanism).
  case signal
  /// userfaultfd: the kernel parks the faulting thread and asks a server process.
  case uffd

  public var name: String {
    switch self {
    case .signal: return "signal"
    case .uffd: return "uffd"
    }
  }
}

/// Where the userfaultfd server serves a fault (uffd_server.c says why).
public enum ServerPlacement: Equatable, Sendable {
  /// On the faulting thread's CPU, by a worker at SCHED_IDLE; a normal-priority watcher takes
  /// over when the CPUs are busy with other work.
  case workers
  /// By one thread at normal priority that moves to the faulting thread's CPU every 64 faults.
  case single

  /// The --uffd-server word.
  public var name: String { self == .workers ? "workers" : "single" }
}

/// What `elfload [options] PROGRAM` was asked to do, as values.
public struct RunSettings: Equatable, Sendable {
  public var policy: PagingPolicy = .eager
  /// --pager; nil: uffd where the kernel allows it, else signal.
  public var pager: Pager?
  /// --uffd-server; nil: workers.
  public var serverPlacement: ServerPlacement?
  public var argv0: [UInt8]?
  public var verbose = false
  /// --stats: a summary on stderr when the program ends.
  public var stats = false
  /// --stats-json FILE ("-": standard error).
  public var statsJSON: [UInt8]?
  /// --trace FILE: one CSV row per page mapped ("-": standard error).
  public var trace: [UInt8]?
  /// --residency FILE: when the program ends, which pages of each mapping are resident (CSV).
  public var residency: [UInt8]?
  /// `elfload record --profile FILE`: write the pages the run touched to FILE.
  public var record: [UInt8]?
  /// --cold: the program's and interpreter's pages dropped from the page cache first.
  public var cold = false
  /// --fd N: run the program open on descriptor N (fexecve); the PROGRAM word is only argv[0].
  public var fd: Int32?
  public init() {}

  /// Whether elfload supervises the run (forks, waits, reports).
  public var measures: Bool { stats || statsJSON != nil || trace != nil || residency != nil || record != nil }
}

/// One option of `elfload [options] PROGRAM`.
public struct RunOption: Sendable {
  public enum Name: Sendable { case mode, prefetch, profile, pager, uffdServer, cold, fd, argv0, verbose, stats, statsJSON, trace, residency }
  public var name: Name
  public var long: String
  public var short: String?
  /// The value's placeholder in help text, or nil for a flag.
  public var valueName: String?
  public var help: String

  /// Every run option, in the order --help lists them.
  public static let all: [RunOption] = [
    RunOption(
      name: .mode, long: "--mode", valueName: "policy",
      help: "how the program's pages come into memory: eager (also: all), demand, hybrid or replay (see Paging policies)"),
    RunOption(
      name: .prefetch, long: "--prefetch", valueName: "n|auto",
      help:
        "with --mode hybrid: pages to map after each faulting page (\(PagingPolicy.prefetchRange.lowerBound) to \(PagingPolicy.prefetchRange.upperBound), default 1), or auto: follow the faults' pattern (a window along a repeated stride that doubles while the program keeps to it, up to 512 pages, and closes when it strays)"),
    RunOption(
      name: .profile, long: "--profile", valueName: "file",
      help:
        "with --mode replay: the profile to install before the program starts (written by 'elfload record --profile FILE PROGRAM'); the pages it missed come on demand"),
    RunOption(
      name: .pager, long: "--pager", valueName: "uffd|signal",
      help:
        "with demand, hybrid or replay: how faults reach elfload: uffd (userfaultfd and a server process; the default where the kernel allows it) or signal (a SIGSEGV handler)"
    ),
    RunOption(
      name: .uffdServer, long: "--uffd-server", valueName: "workers|single",
      help:
        "with the userfaultfd pager, who serves a fault: workers (the default: a worker pinned to each CPU the program faults on, at SCHED_IDLE, so that no CPU halts on the way: ~8 us a fault on an idle 2-CPU VM; a normal-priority watcher takes over while other work keeps the CPUs busy) or single (one normal-priority server that moves to the faulting thread's CPU every 64 faults, the design before: ~40 us a fault on an idle VM, as good as workers on a busy one)"),
    RunOption(
      name: .cold, long: "--cold",
      help:
        "drop the program's and its interpreter's pages from the page cache first (posix_fadvise DONTNEED), to measure a cold start; says how many pages stay because another process maps them"),
    RunOption(
      name: .fd, long: "--fd", valueName: "n",
      help:
        "run the program open on descriptor N (a memfd, a file a parent opened) as fexecve(N) would; PROGRAM is then only its argv[0] (elfload --fd 3 echo hello 3</bin/echo)"
    ),
    RunOption(name: .argv0, long: "--argv0", valueName: "name", help: "give the program NAME as argv[0], like exec -a (NAME may be empty: --argv0 '')"),
    RunOption(name: .verbose, long: "--verbose", short: "-v", help: "say on stderr what is mapped where, before the program starts"),
    RunOption(
      name: .stats, long: "--stats",
      help: "when the program ends, print its time, memory and fault counts on stderr"),
    RunOption(name: .statsJSON, long: "--stats-json", valueName: "file", help: "write the same numbers as JSON to FILE (-: stderr)"),
    RunOption(
      name: .trace, long: "--trace", valueName: "file",
      help: "write one CSV row per page elfload maps (demand, hybrid) to FILE (-: stderr)"),
    RunOption(
      name: .residency, long: "--residency", valueName: "file",
      help:
        "when the program ends, write which pages of each of its mappings are resident (any policy) as CSV to FILE (-: stderr)"
    ),
  ]

  public var takesValue: Bool {
    if case .some = valueName { return true }
    return false
  }

  /// `--mode <policy>`, as usage lines and errors show it.
  public var synopsis: String { long + (valueName.map { " <\($0)>" } ?? "") }
}

#if !hasFeature(Embedded)
  extension RunOption {
    /// The options `elfload --help` shows on its first screen: the most used.
    public static let firstScreen: [RunOption] = [.mode, .prefetch, .pager, .stats, .verbose].compactMap { name in
      all.first { $0.name == name }
    }

    /// One line for the first screen (`help` is the reference's).
    public var brief: String {
      switch name {
      case .mode: return "eager (the default), demand, hybrid or replay"
      case .prefetch: return "with hybrid: pages brought in after each fault, or auto"
      case .profile: return "with replay: the profile written by elfload record"
      case .pager: return "uffd (userfaultfd) or signal (a SIGSEGV handler)"
      case .uffdServer: return "with uffd: workers on the faulting CPUs (default) or single"
      case .cold: return "drop the program's pages from the page cache first"
      case .fd: return "run the program open on descriptor N, as fexecve(N)"
      case .argv0: return "the program's argv[0], like exec -a"
      case .verbose: return "say on stderr what is mapped where"
      case .stats: return "time, memory and faults on stderr at the end"
      case .statsJSON: return "the same numbers as JSON"
      case .trace: return "a CSV row per page elfload maps"
      case .residency: return "which pages of each mapping are resident at the end"
      }
    }
  }
#endif

/// What the launcher should do with its command line.
public enum CommandLineParse: Sendable {
  /// Run argv[programIndex...] with these settings.
  case run(RunSettings, programIndex: Int)
  /// Help, version, a subcommand: the companion's business.
  case tool
  /// A mistake, said in one sentence.
  case usageError(String)
}

extension CommandLineParse {
  /// The words that name a companion subcommand when they come first.
  public static let subcommands = ["inspect", "heatmap", "residency", "help"]
  // (`record` is the launcher's own: it runs the program.)
  // (compared as bytes: the launcher has no Unicode tables for String ==)

  /// Parses `elfload [run] [options] [--] PROGRAM ARGS...` (argv[0] is elfload).
  public static func parse(_ argv: [[UInt8]]) -> CommandLineParse {
    var settings = RunSettings()
    var mode = PagingPolicy.eager
    var prefetch: PagingPolicy?
    var profile: [UInt8]?
    var recording = false
    var i = 1
    if i < argv.count && argv[i] == Array("run".utf8) { i += 1 }
    if i < argv.count && argv[i] == Array("record".utf8) {
      i += 1
      recording = true
    }
    func finish(_ i: Int) -> CommandLineParse {
      CommandLineParse.finish(argv, i, settings, mode, prefetch, profile: profile, recording: recording)
    }
    while i < argv.count {
      let arg = argv[i]
      if arg == Array("--".utf8) { return finish(i + 1) }
      guard arg.count > 1, arg[0] == UInt8(ascii: "-") else { break }
      if arg == Array("--help".utf8) || arg == Array("-h".utf8) || arg == Array("--help-all".utf8)
        || arg == Array("--version".utf8)
      {
        return .tool
      }
      // --name=value or --name [value]
      var name = arg
      var inlineValue: [UInt8]?
      if arg.starts(with: Array("--".utf8)), let eq = arg.firstIndex(of: UInt8(ascii: "=")) {
        name = Array(arg[..<eq])
        inlineValue = Array(arg[(eq + 1)...])
      }
      guard let option = RunOption.all.first(where: { Array($0.long.utf8) == name || $0.short.map { Array($0.utf8) } == name })
      else {
        return .usageError("unrecognized option '\(text(arg))'")
      }
      var value: [UInt8] = []
      if option.takesValue {
        if let inlineValue {
          value = inlineValue
        } else if i + 1 < argv.count {
          i += 1
          value = argv[i]
        } else {
          return .usageError("missing value for '\(option.synopsis)'")
        }
        // (An empty argv[0] is a real one: exec -a '' gives it.)
        if value.isEmpty && option.name != .argv0 { return .usageError("empty value for '\(option.synopsis)'") }
      } else if inlineValue != nil {
        return .usageError("'\(option.long)' takes no value")
      }
      switch option.name {
      case .mode:
        if value == Array("eager".utf8) || value == Array("all".utf8) {
          mode = .eager
        } else if value == Array("demand".utf8) {
          mode = .demand
        } else if value == Array("hybrid".utf8) {
          mode = .hybrid(prefetch: 1)
        } else if value == Array("replay".utf8) {
          mode = .replay(profile: [])
        } else {
          return .usageError(
            "the value '\(text(value))' is invalid for '--mode <policy>'; use one of 'eager', 'all', 'demand', 'hybrid' or 'replay'")
        }
      case .prefetch:
        if value == Array("auto".utf8) {
          prefetch = .predictive
        } else {
          guard value.count <= 4, value.allSatisfy({ $0 >= 48 && $0 <= 57 }),
            let n = Int(text(value)), PagingPolicy.prefetchRange.contains(n)
          else {
            return .usageError(
              "--prefetch must be from \(PagingPolicy.prefetchRange.lowerBound) to \(PagingPolicy.prefetchRange.upperBound) pages or auto, not '\(text(value))'")
          }
          prefetch = .hybrid(prefetch: n)
        }
      case .profile: profile = value
      case .cold: settings.cold = true
      case .pager:
        if value == Array("uffd".utf8) {
          settings.pager = .uffd
        } else if value == Array("signal".utf8) {
          settings.pager = .signal
        } else {
          return .usageError("the value '\(text(value))' is invalid for '--pager <uffd|signal>'; use 'uffd' or 'signal'")
        }
      case .uffdServer:
        if value == Array("workers".utf8) {
          settings.serverPlacement = .workers
        } else if value == Array("single".utf8) {
          settings.serverPlacement = .single
        } else {
          return .usageError(
            "the value '\(text(value))' is invalid for '--uffd-server <workers|single>'; use 'workers' or 'single'")
        }
      case .fd:
        guard value.count <= 10, value.allSatisfy({ $0 >= 48 && $0 <= 57 }), let n = Int(text(value)), n <= Int(Int32.max) else {
          return .usageError("--fd must be an open descriptor's number, not '\(text(value))'")
        }
        settings.fd = Int32(n)
      case .argv0: settings.argv0 = value
      case .verbose: settings.verbose = true
      case .stats: settings.stats = true
      case .statsJSON: settings.statsJSON = value
      case .trace: settings.trace = value
      case .residency: settings.residency = value
      }
      i += 1
    }
    // A first word that names a subcommand is the companion's.
    if i == 1, i < argv.count, subcommands.contains(where: { Array($0.utf8) == argv[i] }) { return .tool }
    return finish(i)
  }

  static func finish(
    _ argv: [[UInt8]], _ i: Int, _ settings: RunSettings, _ mode: PagingPolicy, _ prefetch: PagingPolicy?,
    profile: [UInt8]?, recording: Bool
  ) -> CommandLineParse {
    var settings = settings
    settings.policy = mode
    if recording {
      // A record is a demand-paged run: every page's first touch is a fault.
      guard profile != nil else { return .usageError("record needs --profile FILE: where to write the pages the run touches") }
      switch mode {
      case .eager, .demand: settings.policy = .demand  // (eager: no --mode given)
      default: return .usageError("record runs the program under --mode demand (every first touch a fault), not \(mode.mode)")
      }
      settings.record = profile
    } else if case .replay = mode {
      guard let profile else { return .usageError("--mode replay needs --profile FILE (written by 'elfload record --profile FILE PROGRAM')") }
      settings.policy = .replay(profile: profile)
    } else if profile != nil {
      return .usageError("--profile applies to --mode replay and to record (the mode is \(mode.mode))")
    }
    if let prefetch {
      guard case .hybrid = mode else {
        return .usageError("--prefetch applies to --mode hybrid (the mode is \(mode.mode))")
      }
      settings.policy = prefetch
    }
    if settings.pager != nil, case .eager = settings.policy {
      return .usageError("--pager applies to --mode demand, hybrid and replay (the mode is eager)")
    }
    if settings.serverPlacement != nil {
      if case .eager = settings.policy {
        return .usageError("--uffd-server applies to --mode demand, hybrid and replay (the mode is eager)")
      }
      if settings.pager == .signal { return .usageError("--uffd-server applies to the userfaultfd pager, not --pager signal") }
    }
    guard i < argv.count else {
      if settings.fd != nil { return .usageError("--fd N needs the program's argv[0] after it: elfload --fd N NAME [ARGS...]") }
      return .usageError("Missing the program to run: elfload PROGRAM [ARGS...]")
    }
    return .run(settings, programIndex: i)
  }
}

// String == needs Unicode tables the launcher does not link; tests compare these.
#if !hasFeature(Embedded)
  extension CommandLineParse: Equatable {}
#endif
