// elfload-tools: the companion the launcher runs for everything but running a program -- help,
// version, inspect, heatmap, and the explanation of a usage error. Full Swift and ArgumentParser.
import ArgumentParser
import ElfloadCore
import Foundation

@main
struct Elfload: ParsableCommand {
  static let version = "0.2.0"

  /// The usage line, from the option table.
  static var runUsage: String { Help.usageWords.joined(separator: " ") }

  static let configuration = CommandConfiguration(
    commandName: "elfload",
    abstract: "Run a Linux x86-64 ELF program the way execve would, from user space.",
    usage: ([runUsage] + Help.otherUsages).joined(separator: "\n"),
    discussion: "'elfload --help' shows the most used options; 'elfload --help-all', all of it.",
    version: version,
    subcommands: [Run.self, Record.self, Inspect.self, Heatmap.self, Residency.self])

  static func main() {
    let raw = CommandLine.arguments.map { Array($0.utf8) }
    switch CommandLineParse.parse(raw) {
    case .usageError(let message):
      FileHandle.standardError.write(
        Data("Error: \(message)\n\(Help.usage(lead: "Usage: ", indent: 15))\n  See 'elfload --help' for more information.\n".utf8))
      Foundation.exit(ExitCode.validationFailure.rawValue)
    case .run:
      // Asked to run a program: that is the launcher's job.
      Run.execLauncher(Array(CommandLine.arguments.dropFirst()))
    case .tool:
      // The root's help is laid out here (Help), not by ArgumentParser: a first screen, and the
      // whole reference with wrapped lines indented.
      let arguments = toolArguments(Array(CommandLine.arguments.dropFirst()))
      if arguments == ["--help"] || arguments == ["help"] {
        print(Help.firstScreen, terminator: "")
        return
      }
      if arguments == ["--help-all"] || arguments == ["help", "all"] {
        print(Help.reference, terminator: "")
        return
      }
      if arguments == ["help", "run"] {
        print(Help.run, terminator: "")
        return
      }
      var command: any ParsableCommand
      do {
        command = try parseAsRoot(arguments)
      } catch {
        exit(withError: error)
      }
      do {
        try command.run()
      } catch let error as ValidationError {
        // A usage error found while running (an input that cannot be read): the subcommand's
        // usage, as ArgumentParser shows for one found while parsing.
        let name = type(of: command)._commandName
        let usage = usageString(for: type(of: command)).split(separator: "\n").joined(separator: "\n       ")
        FileHandle.standardError.write(
          Data("Error: \(error.message)\nUsage: \(usage)\n  See 'elfload \(name) --help' for more information.\n".utf8))
        Foundation.exit(ExitCode.validationFailure.rawValue)
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
    let asked = arguments.dropFirst(word == nil ? 0 : 1).first { ["--help", "-h", "--help-all", "--version"].contains($0) }
    if asked == "--version" { return ["--version"] }
    if asked == "--help-all" && word == nil { return ["--help-all"] }
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
      discussion: "Options: 'elfload --help-all'.")

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
      do {
        let path = try OpenExec.resolve(given, searchPath: ProcessInfo.processInfo.environment["PATH"].map { Array($0.utf8) })
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
