// The elfload command line: running a program, inspecting its load plan, help and version.
import ArgumentParser
import ELF
import Glibc
import Loader

extension PagingMode: ExpressibleByArgument {
  public init?(argument: String) {
    switch argument {
    case "eager", "all": self = .eager
    case "demand": self = .demand
    case "hybrid": self = .hybrid
    default: return nil
    }
  }
  public static var allValueStrings: [String] { ["eager", "all", "demand", "hybrid"] }
  public var defaultValueDescription: String { rawValue }
}

/// Options that shape how a program is started.
public struct RunOptions: ParsableArguments {
  @Option(
    name: .long,
    help: ArgumentHelp(
      "Paging policy: eager (also: all), demand or hybrid; see 'elfload --help'.",
      valueName: "policy"))
  public var mode: PagingMode = .eager

  @Option(
    name: .long,
    help: ArgumentHelp(
      "With --mode hybrid: pages to map after each faulting page (\(prefetchRange.lowerBound) to \(prefetchRange.upperBound), default 1).",
      valueName: "n"))
  public var prefetch: Int?

  @Option(name: .long, help: ArgumentHelp("Pass NAME as argv[0] (like exec -a).", valueName: "name"))
  public var argv0: String?

  @Flag(name: [.short, .long], help: "Say on stderr what is mapped where, before the program starts.")
  public var verbose = false

  @Flag(
    name: .long,
    help:
      "When the program ends, print its time, memory and fault counts on stderr (elfload then runs it in a child)."
  )
  public var stats = false

  @Option(
    name: .customLong("stats-json"),
    help: ArgumentHelp("Write the same numbers as JSON to FILE.", valueName: "file"))
  public var statsJSON: String?

  @Option(
    name: .long,
    help: ArgumentHelp("Write one CSV row per page elfload maps (demand, hybrid) to FILE.", valueName: "file")
  )
  public var trace: String?

  public init() {}

  public func validate() throws {
    if let message = RunSettings.check(mode: mode, prefetch: prefetch) { throw ValidationError(message) }
  }

  /// The parsed values: what the fast parser and ArgumentParser must agree on.
  public var settings: RunSettings {
    RunSettings(
      mode: mode, prefetch: prefetch ?? 1, argv0: argv0, verbose: verbose,
      measurement: Measurement(summary: stats, jsonPath: statsJSON, tracePath: trace))
  }
}

/// The run options as plain values.
public struct RunSettings: Equatable, Sendable {
  public var mode: PagingMode = .eager
  public var prefetch = 1
  public var argv0: String?
  public var verbose = false
  public var measurement = Measurement()
  public init(
    mode: PagingMode = .eager, prefetch: Int = 1, argv0: String? = nil, verbose: Bool = false,
    measurement: Measurement = Measurement()
  ) {
    self.mode = mode
    self.prefetch = prefetch
    self.argv0 = argv0
    self.verbose = verbose
    self.measurement = measurement
  }

  /// Why this combination is refused, or nil.
  static func check(mode: PagingMode, prefetch: Int?) -> String? {
    guard let prefetch else { return nil }
    if mode != .hybrid {
      return "--prefetch applies to --mode hybrid (the mode is \(mode.rawValue))"
    }
    if !prefetchRange.contains(prefetch) {
      return
        "--prefetch must be from \(prefetchRange.lowerBound) to \(prefetchRange.upperBound) pages, not \(prefetch)"
    }
    return nil
  }
}

public struct Elfload: ParsableCommand {
  public static let version = "0.1.0"

  public static let configuration = CommandConfiguration(
    commandName: "elfload",
    abstract: "Run a Linux x86-64 ELF program the way execve would, from user space.",
    usage: """
      elfload [--mode <policy>] [--prefetch <n>] [--argv0 <name>] [--verbose] [--] <program> [<args> ...]
      elfload inspect <program>
      elfload heatmap <trace> -o <file.svg>
      """,
    discussion: """
      elfload PROGRAM ARGS... reads PROGRAM, maps its PT_LOAD segments, builds the \
      initial stack and auxiliary vector exactly as the kernel's execve does (on the \
      same stack the kernel gave elfload), and jumps to the program's entry point. \
      The program cannot tell the difference, apart from what user space cannot \
      change: set-uid bits are not honoured, and /proc/self/exe names the program \
      only with the privileges to change it (root has them).

      Runs static, static-PIE and dynamically linked x86-64 programs (loading \
      their PT_INTERP interpreter as the kernel does) and #! scripts.

      Options for running (before PROGRAM; 'elfload run --help' has them all):
        --mode <policy>  how the program's pages come into memory (below)
        --prefetch <n>   with --mode hybrid: pages to map after each fault
        --argv0 <name>   give the program NAME as argv[0], like exec -a
        --stats          when it ends, print time, memory and loader faults on stderr
        --stats-json <file>, --trace <file>
                         the same numbers as JSON; one CSV row per page mapped
                         (these three run the program in a child of elfload)
        -v, --verbose    say on stderr what is mapped where
        --               end of elfload's options

      Paging policies (--mode):
        eager, all  every segment mapped at start, as execve maps it: a private
                    file mapping per segment, the bss tail zeroed, anonymous
                    zero pages for the rest; the kernel then pages the file in
                    lazily (the default)
        demand      code, data and bss reserved with no access; elfload's
                    SIGSEGV handler maps each page when the program first
                    touches it (read-only data is mapped readable up front)
        hybrid      demand, and each fault also maps up to N following pages
                    (--prefetch N, 1 to 512, default 1)

      Limits of demand and hybrid (signal-based paging; use eager instead):
        - a system call that touches an untouched page fails with EFAULT
          (read() into a fresh .bss buffer, for example);
        - a program that installs its own SIGSEGV handler gets elfload's faults;
        - a fault while SIGSEGV is blocked kills the program, and glibc blocks
          every signal inside pthread_create and posix_spawn: a threaded or
          spawning program can die by SIGSEGV if that code was never run before.
        The program also sees a SIGSEGV handler it did not install.

      Exit status: the program's own, or, when elfload cannot start it, 127 if the \
      file does not exist and 126 if it cannot be run (not ELF, wrong machine, \
      malformed, not executable, addresses already in use). Errors are one line: \
      elfload: PATH: what is wrong.

      Examples:
        elfload ./hello
        elfload --verbose -- ./prog --its-own-flag
        elfload --mode hybrid --prefetch 16 ./prog
        elfload --argv0 sh ./busybox -c 'echo hi'
        elfload inspect ./prog
        elfload --mode demand --trace t.csv ./prog && elfload heatmap t.csv -o t.svg
      """,
    version: version,
    subcommands: [Run.self, Inspect.self, Heatmap.self],
    defaultSubcommand: Run.self)

  public init() {}

  /// Entry point: the fast path for the common `elfload [options] PROGRAM ARGS`
  /// and ArgumentParser for everything else. ArgumentParser's parse costs
  /// about 0.9 ms on its own, more than the whole budget for starting a
  /// static hello; the fast parser accepts exactly the same run options and
  /// hands anything else (help, version, inspect, errors) to ArgumentParser.
  public static func main() {
    let raw = OriginalStack.read()?.arguments ?? CommandLine.arguments.map { Array($0.utf8) }
    if let parsed = FastParse.parse(raw) {
      Run.launch(settings: parsed.settings, raw: raw, programIndex: parsed.programIndex)
    }
    let arguments = Array(raw.dropFirst()).map { String(decoding: $0, as: UTF8.self) }
    do {
      var command = try parseAsRoot(arguments)
      if var run = command as? Run {
        run.programIndex = raw.count - run.programAndArguments.count
        run.raw = raw
        command = run
      }
      try command.run()
    } catch {
      exit(withError: error)
    }
  }
}

extension Elfload {
  public struct Run: ParsableCommand {
    public static let configuration = CommandConfiguration(
      abstract: "Run PROGRAM with ARGS (the default command; the word 'run' is optional).",
      usage:
        "elfload [--mode <policy>] [--prefetch <n>] [--argv0 <name>] [--verbose] [--] <program> [<args> ...]")

    @OptionGroup public var options: RunOptions

    @Argument(
      parsing: .captureForPassthrough,
      help: ArgumentHelp("The program to run, then its arguments, passed on untouched.", valueName: "program")
    )
    public var command: [String] = []

    /// Where PROGRAM is in the raw argv, and the raw argv itself.
    var programIndex = 0
    var raw: [[UInt8]] = []

    public init() {}

    enum CodingKeys: CodingKey { case options, command }

    /// PROGRAM and its arguments: `command` without the `--` that
    /// `.captureForPassthrough` keeps when it ends elfload's options.
    public var programAndArguments: [String] {
      command.first == "--" ? Array(command.dropFirst()) : command
    }

    public func validate() throws {
      guard !programAndArguments.isEmpty else {
        throw ValidationError("Missing the program to run: elfload PROGRAM [ARGS...]")
      }
    }

    public func run() throws {
      let raw =
        self.raw.isEmpty
        ? [[UInt8]]([Array("elfload".utf8)]) + programAndArguments.map { Array($0.utf8) } : self.raw
      let index = self.raw.isEmpty ? 1 : programIndex
      Run.launch(settings: options.settings, raw: raw, programIndex: index)
    }

    /// Starts the program at `raw[programIndex]`; never returns.
    static func launch(settings options: RunSettings, raw: [[UInt8]], programIndex: Int) -> Never {
      let given = raw[programIndex]
      let path = resolve(given)
      var arguments = Array(raw[programIndex...])
      if let argv0 = options.argv0 { arguments[0] = Array(argv0.utf8) }
      let environment = OriginalStack.read()?.environment ?? []
      var request = LaunchRequest(
        path: path, arguments: arguments, environment: environment, mode: options.mode,
        prefetch: options.prefetch, verbose: options.verbose)
      do {
        if !options.measurement.isEmpty {
          // From here on the parent only waits and reports.
          let policy =
            options.mode == .hybrid ? "hybrid --prefetch \(options.prefetch)" : options.mode.rawValue
          request.shared = try Supervisor.start(
            options.measurement, program: String(decoding: given, as: UTF8.self), policy: policy)
        }
        try Launcher.run(request)
      } catch {
        fail(path: given, error)
      }
    }
  }

  public struct Inspect: ParsableCommand {
    public static let configuration = CommandConfiguration(
      abstract:
        "Print PROGRAM's load plan (and its interpreter's, or a script's interpreter's): what elfload would map where, without running it."
    )

    @Argument(help: ArgumentHelp("The program to inspect.", valueName: "program"))
    public var program: String

    public init() {}

    public func run() throws {
      let path = resolve(Array(program.utf8))
      do {
        // A #! script is described by what it runs; a dynamically linked
        // program, with its interpreter after it.
        let (programPath, arguments, opened) = try Launcher.followScripts(path, [path])
        let name = String(decoding: programPath, as: UTF8.self)
        if programPath != path {
          let line = arguments.map { String(decoding: $0, as: UTF8.self) }.joined(separator: " ")
          print("\(String(decoding: path, as: UTF8.self)): a #! script; the kernel would run: \(line)\n")
        }
        print(describePlan(path: name, image: opened.image), terminator: "")
        if let interpreterPath = opened.image.interpreter {
          let interpreter = try Launcher.openInterpreter(interpreterPath)
          print("\ninterpreter (PT_INTERP), loaded where mmap puts it:\n")
          print(
            describePlan(path: interpreterPath, image: interpreter.image, asInterpreter: true), terminator: ""
          )
        }
      } catch {
        fail(path: Array(program.utf8), error)
      }
    }
  }
}

/// `elfload: PATH: reason` on stderr, then the conventional exit status.
func fail(path: [UInt8], _ error: LoadError) -> Never {
  let line = Array("elfload: ".utf8) + path + Array(": \(error.description)\n".utf8)
  _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
  exit(error.exitStatus)
}

/// A name without a slash is looked up in PATH, like `env`, `strace` or
/// `valgrind` do; execve itself would not, but a person typing
/// `elfload ls` means /bin/ls. A name with a slash is used as it is.
func resolve(_ name: [UInt8]) -> [UInt8] {
  guard !name.contains(UInt8(ascii: "/")), !name.isEmpty else { return name }
  let search = getenv("PATH").map { String(cString: $0) } ?? "/usr/local/bin:/usr/bin:/bin"
  for directory in search.split(separator: ":", omittingEmptySubsequences: false) {
    let dir = directory.isEmpty ? "." : String(directory)
    let candidate = Array(dir.utf8) + [UInt8(ascii: "/")] + name
    var st = stat()
    let ok = (candidate + [0]).withUnsafeBufferPointer {
      $0.withMemoryRebound(to: CChar.self) {
        stat($0.baseAddress!, &st) == 0 && access($0.baseAddress!, X_OK) == 0
      }
    }
    if ok && (st.st_mode & S_IFMT) == S_IFREG { return candidate }
  }
  return name
}
