// elfload, the launcher: what runs when a user types `elfload [options] PROGRAM ARGS`. Built
// freestanding (Embedded Swift, no C library, no runtime; LauncherRuntime's _start relocates it
// and calls elfload_main). Anything but running a program goes to the companion, elfload-tools.
import LauncherRuntime

@_cdecl("elfload_main")
func elfloadMain(_ stack: UnsafeMutablePointer<UInt64>) -> Never {
  let stackLimit = StackLimit.raiseForLoader()
  let startup = StartupStack(UnsafePointer(stack))
  LoaderImage.range = AddressRange(elfload_image_start(), elfload_image_end())
  let argv = startup.arguments
  switch CommandLineParse.parse(argv) {
  case .tool, .usageError:
    Companion.exec(startup)
  case .run(let settings, let programIndex):
    // `--fd N NAME ARGS`: NAME is argv[0], as fexecve takes it; `-` reads the program from standard input.
    let fromStream = settings.fd == nil && argv[programIndex] == Array("-".utf8)
    let given = settings.fd.map { Array("--fd \(Int($0))".utf8) } ?? argv[programIndex]
    var arguments = Array(argv[programIndex...])
    if let argv0 = settings.argv0 { arguments[0] = argv0 }
    let descriptor = settings.fd.map { FileDescriptor(rawValue: $0) }
    do throws(LoadError) {
      // A profile names files by device and inode: a program with no name has no lasting identity.
      if settings.record != nil,
        fromStream || descriptor.flatMap({ try? Kernel.status($0) }).map({ $0.links == 0 }) == true
      {
        throw LoadError.recordInMemory
      }
      // From here on, with --stats and the like, the parent only waits and reports.
      let shared = settings.measures ? try Supervisor.start(settings, program: given) : nil
      var path = given
      if let descriptor {
        path = OpenExec.descriptorPath(descriptor)
      } else if !fromStream {
        path = try OpenExec.resolve(given, searchPath: startup.environmentValue("PATH"))
      }
      var request = ExecRequest(
        path: path, arguments: arguments, environment: startup.environment, policy: settings.policy,
        pager: settings.pager, serverPlacement: settings.serverPlacement ?? .workers, cold: settings.cold,
        shared: shared, log: Log(verbose: settings.verbose))
      request.descriptor = descriptor
      request.reopen = descriptor != nil
      if fromStream {
        let memfd = try ProgramStream.read(.standardInput, limit: ProgramStream.limit)
        request.descriptor = memfd
        request.path = OpenExec.descriptorPath(memfd)
        // argv[0] is the path, as for --fd: "-" would make a shell a login shell.
        if settings.argv0 == nil { request.arguments[0] = request.path }
      }
      try Execve.run(request, startup: startup, stackLimit: stackLimit)
    } catch {
      fail(path: given, error)
    }
  }
}

/// `elfload: PATH: reason` on stderr, then the conventional exit status. An
/// output file of elfload's own is named in the reason, without the program's path.
func fail(path: [UInt8], _ error: LoadError) -> Never {
  var line = Array("elfload: ".utf8) + path + Array(": \(error.description)\n".utf8)
  switch error {
  case .output, .profile: line = Array("elfload: \(error.description)\n".utf8)
  default: break
  }
  _ = try? Kernel.writeAll(.standardError, line)
  Kernel.exit(error.exitStatus)
}

/// The full-Swift companion beside the launcher: help, version, inspect,
/// heatmap and the explanation of usage errors.
enum Companion {
  static let name = Array("elfload-tools".utf8)

  /// Runs the companion with elfload's own argv and environment; says so in
  /// one line and exits 126 if it cannot.
  static func exec(_ startup: StartupStack) -> Never {
    var path = name
    if let exe = try? Kernel.readLink(Array("/proc/self/exe".utf8)), let slash = exe.lastIndex(of: UInt8(ascii: "/")) {
      path = Array(exe[...slash]) + name
    }
    let error = Kernel.execve(path, [path] + startup.arguments.dropFirst(), startup.environment)
    Kernel.writeError(
      "elfload: cannot run its companion \(text(path)) (\(error.errno)), which serves --help, --version, inspect, heatmap and usage errors; build it with 'swift build' beside elfload\n")
    Kernel.exit(126)
  }
}
