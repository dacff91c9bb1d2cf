// elfload-tools: the companion the launcher runs for everything but running a program -- help,
// version, inspect, heatmap, and the explanation of a usage error. Full Swift and ArgumentParser.
import ArgumentParser
import ElfloadCore
import Foundation

@main
struct Elfload: ParsableCommand {
  static let version = "0.2.0"

  /// The usage line, from the option table.
  static var runUsage: String {
    let options = RunOption.all.map { "[\($0.short.map { "\($0)|" } ?? "")\($0.synopsis)]" }
    return "elfload " + options.joined(separator: " ") + " [--] <program>|- [<args> ...]"
  }

  /// The run options, from the option table, as help lists them.
  static var runOptionsHelp: String {
    RunOption.all.map { option in
      let names = (option.short.map { "\($0), " } ?? "") + option.synopsis
      return "  " + names.padding(toLength: max(24, names.count + 2), withPad: " ", startingAt: 0) + option.help
    }.joined(separator: "\n")
  }

  /// The --stats-json fields, from their one definition.
  static var statsFieldsHelp: String {
    Report.fields.map { "  \($0.name): \($0.meaning)" }.joined(separator: "\n")
  }

  static let configuration = CommandConfiguration(
    commandName: "elfload",
    abstract: "Run a Linux x86-64 ELF program the way execve would, from user space.",
    usage: """
      \(runUsage)
      elfload record --profile <file> [options] [--] <program> [<args> ...]
      elfload inspect <program>
      elfload inspect --profile <file> [<program>]
      elfload heatmap <trace> -o <file.svg>
      elfload residency <residency> -o <file.svg>
      elfload residency --native <file> -- <program> [<args> ...]
      """,
    discussion: """
      elfload PROGRAM ARGS... reads PROGRAM, maps its PT_LOAD segments, builds the \
      initial stack and auxiliary vector exactly as the kernel's execve does (on the \
      same stack the kernel gave elfload), and jumps to the program's entry point. \
      The program cannot tell the difference, apart from what user space cannot \
      change: set-uid bits are not honoured, and /proc/self/exe names the program \
      only with the privileges to change it (root has them).

      Runs static, static-PIE and dynamically linked x86-64 programs (loading \
      their PT_INTERP interpreter as the kernel does) and #! scripts. A PROGRAM \
      without a slash is looked up in PATH.

      A PROGRAM of - is read from standard input into a sealed memfd and run as \
      fexecve of it would (AT_EXECFN and argv[0] /dev/fd/N): an ELF program as far as \
      its headers reach, so what follows it on the stream is its standard input; a #! \
      script to the end of the stream. At most 1 GiB, or RLIMIT_FSIZE when lower. \
      --fd N runs the program open on descriptor N the same way.

      Options for running (before PROGRAM; -- ends them):
      \(runOptionsHelp)
      (--stats, --stats-json, --trace and --residency run the program in a child of elfload, which \
      passes on to it the signals it is sent -- not the terminal's Ctrl-C, which reaches \
      the program directly -- and which the program does not outlive)

      Statistics (--stats-json writes one JSON object with these fields; --stats shows the same):
      \(statsFieldsHelp)

      Paging policies (--mode):
        eager, all  every segment mapped at start, as execve maps it: a private
                    file mapping per segment, the bss tail zeroed, anonymous
                    zero pages for the rest; the kernel then pages the file in
                    lazily (the default)
        demand      nothing of code, data and bss in memory at start; each page
                    is brought in when the program first touches it, by a pager:
        hybrid      demand, and each fault also brings in up to N following
                    pages (--prefetch N, 1 to 512, default 1), or as many as
                    the faults' pattern predicts (--prefetch auto, below)
        replay      the pages a recorded run touched (--profile FILE, from
                    elfload record) brought in before the program starts, in
                    as few operations as there are runs of pages; the rest on
                    demand. A profile recorded for another build of the
                    program (device, inode, size or mtime differ) is ignored
                    with one line on stderr: the run is then demand.

      --prefetch auto, per segment (file pages and bss apart), as the kernel's
      readahead grows its window and Leap follows strides: two faults in a row
      the same distance apart (the stride: 1 page, or any number, either way)
      open a window of 4 pages along the stride after the faulting page; a
      fault exactly one stride past the window's last page (the program used
      it all) doubles the window, up to 512 pages; any other fault while a
      window is open closes it (a miss). Nothing past the segment's end. --stats
      counts the hits and misses.

      elfload record --profile FILE PROGRAM ARGS runs PROGRAM under demand paging
      (either pager) and writes the pages it touched, program's and
      interpreter's, in the order of first touch, with which files they belong
      to: a text file, 'elfload inspect --profile FILE' explains it.

      Pagers (--pager, for demand and hybrid):
        uffd        the segments are anonymous memory registered with a
                    userfaultfd; a server process (elfload-uffd, not the
                    program's child) fills each page from the file, or with
                    zeros. Serves everything natively runs, but needs root or
                    vm.unprivileged_userfaultfd=1; the program's segments show
                    in /proc/self/maps without their file name. The default
                    where the kernel allows it.
        signal      every page reserved with no access; elfload's SIGSEGV
                    handler, in the program, gives it its protection when
                    first touched (read-only data is mapped readable up front).

      Limits of --pager signal (use --pager uffd or --mode eager instead):
        - a system call that touches an untouched page fails with EFAULT
          (read() into a fresh .bss buffer, for example);
        - a program that installs its own SIGSEGV handler gets elfload's faults;
        - a fault while SIGSEGV is blocked kills the program, and glibc blocks
          every signal inside pthread_create and posix_spawn: a threaded or
          spawning program can die by SIGSEGV if that code was never run before.
        The program also sees a SIGSEGV handler it did not install.

      Exit status: the program's own; or, when elfload cannot start it, 127 if the \
      file does not exist and 126 if it cannot be run (not ELF, wrong machine, \
      malformed, not executable, addresses already in use), with one line on stderr: \
      elfload: PATH: what is wrong. A mistake in elfload's own options exits 64 \
      (EX_USAGE) with the reason and the usage line.

      elfload is two executables: the launcher (elfload, freestanding: no C library, \
      no runtime) runs programs; it hands everything else -- --help, --version, \
      inspect, heatmap, usage errors -- to elfload-tools beside it.

      Examples:
        elfload ./hello
        elfload --verbose -- ./prog --its-own-flag
        elfload --mode hybrid --prefetch 16 ./prog
        elfload --mode hybrid --prefetch auto --stats ./prog
        elfload record --profile prog.profile ./prog && elfload --mode replay --profile prog.profile ./prog
        elfload --cold --mode replay --profile prog.profile --stats ./prog
        elfload --argv0 sh ./busybox -c 'echo hi'
        elfload inspect ./prog
        elfload --mode demand --trace t.csv ./prog && elfload heatmap t.csv -o t.svg
        elfload --residency r.csv ./prog && elfload residency r.csv -o r.svg
        elfload residency --native n.csv -- ./prog   (the same picture of a native run)
      """,
    version: version,
    subcommands: [Run.self, Record.self, Inspect.self, Heatmap.self, Residency.self])

  static func main() {
    let raw = CommandLine.arguments.map { Array($0.utf8) }
    switch CommandLineParse.parse(raw) {
    case .usageError(let message):
      FileHandle.standardError.write(
        Data("Error: \(message)\nUsage: \(runUsage)\n  See 'elfload --help' for more information.\n".utf8))
      Foundation.exit(ExitCode.validationFailure.rawValue)
    case .run:
      // Asked to run a program: that is the launcher's job.
      Run.execLauncher(Array(CommandLine.arguments.dropFirst()))
    case .tool:
      do {
        var command = try parseAsRoot(toolArguments(Array(CommandLine.arguments.dropFirst())))
        try command.run()
      } catch {
        exit(withError: error)
      }
    }
  }
}

extension Elfload {
  /// What ArgumentParser is given when the launcher's parser found no
  /// program to run: a subcommand as it is; otherwise run options followed by
  /// --help, -h or --version, which mean the same wherever they stand
  /// (`elfload --mode demand --help`, `elfload run --help`).
  static func toolArguments(_ arguments: [String]) -> [String] {
    if let first = arguments.first, CommandLineParse.subcommands.contains(first) { return arguments }
    let word = arguments.first == "run" || arguments.first == "record" ? arguments.first : nil
    let asked = arguments.dropFirst(word == nil ? 0 : 1).first { ["--help", "-h", "--version"].contains($0) }
    if asked == "--version" { return ["--version"] }
    return word.map { ["help", $0] } ?? ["--help"]
  }

  struct Record: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract:
        "Run PROGRAM under demand paging and write the pages it touched to a profile, for --mode replay.",
      usage: "elfload record --profile <file> [options] [--] <program> [<args> ...]",
      discussion: """
        The profile is a text file (format in the README): which files it belongs to (device, \
        inode, size and mtime of the program and its interpreter), then one line per page \
        touched -- image (0 the program, 1 its interpreter), program-header index, page within \
        the segment -- in the order of first touch. The run is otherwise an ordinary one: the \
        program's output, exit status and signals are its own. 'elfload inspect --profile FILE' \
        explains a profile; 'elfload --mode replay --profile FILE PROGRAM' installs its pages \
        before the program starts.

        Options: those of run (--pager, --cold, --stats...); --mode, if given, must be demand.
        """)

    @Argument(
      parsing: .captureForPassthrough,
      help: ArgumentHelp("--profile FILE, run options, then the program and its arguments.", valueName: "program"))
    var command: [String] = []

    func run() throws { Run.execLauncher(["record"] + command) }
  }

  struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Run PROGRAM with ARGS (the default command; the word 'run' is optional).",
      usage: Elfload.runUsage,
      discussion: "Options:\n\(Elfload.runOptionsHelp)")

    @Argument(
      parsing: .captureForPassthrough,
      help: ArgumentHelp("The program to run, then its arguments, passed on untouched.", valueName: "program"))
    var command: [String] = []

    func run() throws { Run.execLauncher(["run"] + command) }

    /// The launcher beside this executable runs programs.
    static func execLauncher(_ arguments: [String]) -> Never {
      let launcher = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        .deletingLastPathComponent().appendingPathComponent("elfload").path
      let argv = ([launcher] + arguments).map { strdup($0) } + [nil]
      execv(launcher, argv)
      FileHandle.standardError.write(Data("elfload-tools: cannot run \(launcher): \(String(cString: strerror(errno)))\n".utf8))
      Foundation.exit(126)
    }
  }

  struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract:
        "Print PROGRAM's load plan (and its interpreter's, or a script's interpreter's): what elfload would map where, without running it."
    )

    @Option(
      help: ArgumentHelp(
        "Explain this profile (from elfload record): its files, and per segment the pages it holds, with the program's segment table when the files are there.",
        valueName: "file"))
    var profile: String?

    @Argument(help: ArgumentHelp("The program to inspect.", valueName: "program"))
    var program: String?

    func validate() throws {
      if program == nil && profile == nil { throw ValidationError("Missing the program to inspect (or --profile FILE).") }
    }

    func run() throws {
      if let profile {
        explainProfile(profile)
        if program == nil { return }
        print()
      }
      guard let program else { return }
      let given = Array(program.utf8)
      let path = OpenExec.resolve(given, searchPath: ProcessInfo.processInfo.environment["PATH"].map { Array($0.utf8) })
      do {
        // A #! script is described by what it runs; a dynamically linked
        // program, with its interpreter after it.
        let (programPath, arguments, opened) = try OpenExec.followScripts(path, [path], refuseWriters: false)
        if programPath != path {
          let line = arguments.map { text($0) }.joined(separator: " ")
          print("\(text(path)): a #! script; the kernel would run: \(line)\n")
        }
        print(describePlan(path: text(programPath), image: opened.image), terminator: "")
        if let interpreterPath = opened.image.interpreter {
          let interpreter = try OpenExec.openInterpreter(interpreterPath, refuseWriters: false)
          print("\ninterpreter (PT_INTERP), loaded where mmap puts it:\n")
          print(describePlan(path: text(interpreterPath), image: interpreter.image, asInterpreter: true), terminator: "")
        }
      } catch {
        FileHandle.standardError.write(Data("elfload: \(program): \(error.description)\n".utf8))
        Foundation.exit(error.exitStatus)
      }
    }

    /// The profile, explained; one line and 126 if it cannot be read.
    func explainProfile(_ path: String) {
      let parsed: Profile
      do {
        guard let bytes = FileManager.default.contents(atPath: path) else {
          throw ProfileError.unreadable(SystemCallError("open", errno: Errno(rawValue: Int32(errno))))
        }
        parsed = try Profile.parse([UInt8](bytes))
      } catch let error as ProfileError {
        FileHandle.standardError.write(Data("elfload: --profile \(path): \(error)\n".utf8))
        Foundation.exit(126)
      } catch {
        Foundation.exit(126)
      }
      print(describeProfile(parsed, path: path), terminator: "")
    }
  }
}
