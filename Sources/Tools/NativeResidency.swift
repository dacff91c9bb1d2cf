// `elfload residency --native FILE -- PROGRAM ARGS`: the residency picture of a native run. The
// program is started by execve and traced (ptrace) only to be stopped as it exits, when
// /proc/PID/maps and /proc/PID/pagemap are read into the same CSV that --residency writes.
import ElfloadCore
import Foundation

enum NativeResidency {
  // ptrace requests and events (include/uapi/linux/ptrace.h).
  static let seize = 0x4206
  static let listen = 0x4208
  static let cont = 7
  static let exitKill = 1 << 20
  static let traceExec = 1 << 4
  static let traceExit = 1 << 6
  static let eventExec = 4
  static let eventExit = 6
  static let eventStop = 128
  /// The child's pid, for the signal handlers that pass signals on.
  nonisolated(unsafe) static var child: Int32 = 0

  /// Runs `command` (argv; a name without a slash is looked up in PATH) natively; writes its
  /// residency to `output` ("-": standard error) when it exits, and ends as it ended.
  static func run(_ command: [String], output: String) -> Never {
    let fd: FileDescriptor
    do {
      fd = output == "-" ? .standardError : try Kernel.createFile(Array(output.utf8))
    } catch {
      fail("--native \(output): cannot create it: \(error)", status: 73)
    }
    let searchPath = ProcessInfo.processInfo.environment["PATH"].map { Array($0.utf8) }
    // Not found in PATH: execve("") fails with ENOENT below, as execvp would.
    let path = (try? OpenExec.resolve(Array(command[0].utf8), searchPath: searchPath)) ?? []
    // Everything the child uses is made before the fork: after it, it makes only system calls.
    let argv = command.map { strdup($0) } + [nil]
    let cPath = strdup(text(path))
    // As elfload says it (exit 127 and 126, the shell's convention).
    let noSuchFile = Array("elfload: \(command[0]): no such file or directory\n".utf8)
    let cannotRun = Array("elfload: \(command[0]): cannot be run (execve failed)\n".utf8)
    // No program run, no file: what this run created goes with it.
    func failBeforeTheProgram(_ message: String) -> Never {
      if output != "-" { unlink(output) }
      fail(message, status: 71)
    }
    var pipe: [Int32] = [0, 0]
    guard Glibc.pipe(&pipe) == 0 else { failBeforeTheProgram("pipe: \(String(cString: strerror(errno)))") }
    let pid = Kernel.syscall(.fork)
    if pid < 0 { failBeforeTheProgram("fork: \(Errno(rawValue: Int32(-pid)))") }
    if pid == 0 {
      // Wait until the parent is tracing (it closes its end), then become the program.
      var byte: UInt8 = 0
      _ = Kernel.syscall(.close, Int(pipe[1]))
      _ = withUnsafeMutableBytes(of: &byte) { Kernel.syscall(.read, Int(pipe[0]), Int(bitPattern: $0.baseAddress), 1) }
      _ = Kernel.syscall(.close, Int(pipe[0]))
      let error = argv.withUnsafeBufferPointer {
        Kernel.syscall(.execve, Int(bitPattern: cPath), Int(bitPattern: $0.baseAddress), Int(bitPattern: environ))
      }
      let missing = error == -Int(Errno.ENOENT.rawValue)
      _ = (missing ? noSuchFile : cannotRun).withUnsafeBufferPointer {
        Kernel.syscall(.write, 2, Int(bitPattern: $0.baseAddress), $0.count)
      }
      _ = Kernel.syscall(.exitGroup, missing ? 127 : 126)
    }
    child = Int32(pid)
    let options = exitKill | traceExec | traceExit
    let seized = Kernel.syscall(.ptrace, seize, pid, 0, options)
    if seized < 0 {
      kill(child, SIGKILL)  // it never becomes the program
      fail("cannot trace the program (ptrace: \(Errno(rawValue: Int32(-seized))))", status: 71)
    }
    passSignalsOn()
    close(pipe[1])
    close(pipe[0])
    var recorded = false
    var status: Int32 = 0
    while true {
      let r = withUnsafeMutablePointer(to: &status) { Kernel.syscall(.wait4, pid, Int(bitPattern: $0), 0x4000_0000, 0) }
      if r == -Int(Errno.EINTR.rawValue) { continue }
      if r < 0 { fail("wait4: \(Errno(rawValue: Int32(-r)))", status: 71) }
      let low = status & 0x7f
      if low != 0x7f { break }  // exited, or killed
      let signal = (status >> 8) & 0xff
      let event = Int(status >> 16)
      switch event {
      case eventExit:
        // The last stop: the address space is whole until this thread goes on.
        if !recorded, let picture = residency(of: child) { try? Kernel.writeAll(fd, Array(picture.utf8)) }
        recorded = true
        _ = Kernel.syscall(.ptrace, cont, pid, 0, 0)
      case eventStop where [SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU].contains(signal):
        // A group stop: stay stopped, as natively, until a SIGCONT.
        _ = Kernel.syscall(.ptrace, listen, pid, 0, 0)
      case eventExec, eventStop:
        _ = Kernel.syscall(.ptrace, cont, pid, 0, 0)
      default:
        // A signal for the program: delivered as it would have been.
        _ = Kernel.syscall(.ptrace, cont, pid, 0, Int(signal))
      }
    }
    if !recorded {
      // Killed without an exit stop (SIGKILL): no picture, said.
      FileHandle.standardError.write(Data("elfload residency: the program was killed before its exit could be seen; \(output) has no rows\n".utf8))
      try? Kernel.writeAll(fd, Array((ResidencyFormat.columns.joined(separator: ",") + "\n").utf8))
    }
    if fd != .standardError { Kernel.close(fd) }
    exitLike(status)
  }

  /// The --residency CSV of process `pid` (stopped): every mapping of /proc/PID/maps, with how
  /// many of its pages are present or swapped in /proc/PID/pagemap, as demand.c writes it.
  static func residency(of pid: Int32) -> String? {
    guard let maps = Kernel.readWholeFile(Array("/proc/\(pid)/maps".utf8)),
      let pagemap = try? Kernel.open(Array("/proc/\(pid)/pagemap".utf8))
    else { return nil }
    defer { Kernel.close(pagemap) }
    var out = ResidencyFormat.formatLine + TraceFormat.segmentHeader + segmentTable(of: pid)
    out += ResidencyFormat.columns.joined(separator: ",") + "\n"
    for line in maps.split(separator: 10) {
      let fields = line.split(separator: 32, maxSplits: 5, omittingEmptySubsequences: true)
      guard fields.count >= 5, let dash = fields[0].firstIndex(of: UInt8(ascii: "-")),
        let start = UInt64(text(Array(fields[0][..<dash])), radix: 16),
        let end = UInt64(text(Array(fields[0][(dash + 1)...])), radix: 16),
        end > start, start < 1 << 47  // [vsyscall] is not in pagemap's range
      else { continue }
      let name = fields.count > 5 ? text(Array(fields[5].drop { $0 == 32 })) : ""
      let pages = Int((end - start) / pageSize)
      var picture = [UInt8]()
      var resident = 0
      var first = 0
      while first < pages {
        let n = min(pages - first, 512)
        let entries = (try? Kernel.read(pagemap, count: n * 8, at: (start / pageSize + UInt64(first)) * 8)) ?? []
        for i in 0..<n {
          var entry: UInt64 = 0
          if entries.count >= (i + 1) * 8 { for b in 0..<8 { entry |= UInt64(entries[i * 8 + b]) << (8 * b) } }
          let present = entry >> 62 != 0
          if present { resident += 1 }
          if pages <= ResidencyFormat.picturedPages { picture.append(present ? UInt8(ascii: "#") : UInt8(ascii: ".")) }
        }
        first += n
      }
      out += "0x\(String(start, radix: 16)),0x\(String(end, radix: 16)),\(text(Array(fields[1]))),\(resident),\(pages),"
      out += "\(text(picture)),\(name.replacingOccurrences(of: ",", with: ";"))\n"
    }
    return out
  }

  /// The segment table elfload writes in its preamble, of process `pid` (stopped): the PT_LOADs of
  /// its executable (/proc/PID/exe) and of its interpreter, at the load biases the kernel chose,
  /// known from its auxiliary vector (AT_PHDR, AT_BASE). Empty if any of it cannot be read.
  static func segmentTable(of pid: Int32) -> String {
    guard let auxv = Kernel.readWholeFile(Array("/proc/\(pid)/auxv".utf8)) else { return "" }
    var entries: [UInt64: UInt64] = [:]
    for pair in stride(from: 0, to: auxv.count - 15, by: 16) {
      func word(_ at: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(auxv[at + $1]) << (8 * $1) } }
      entries[word(pair)] = word(pair + 8)
    }
    let atPHDR: UInt64 = 3
    let atBase: UInt64 = 7
    let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/exe")) ?? ""
    guard let phdr = entries[atPHDR], let program = image(exe) else { return "" }
    let linked = program.programHeaderAddress
    var table = rows(0, program, bias: phdr &- linked, path: exe)
    if let interpreter = program.interpreter.map({ text($0) }), let base = entries[atBase], base != 0,
      let image = image(interpreter)
    {
      table += rows(1, image, bias: base, path: interpreter)
    }
    return table
  }

  static func image(_ path: String) -> Image? {
    guard let bytes = Kernel.readWholeFile(Array(path.utf8)) else { return nil }
    return try? Image(parsing: bytes)
  }

  /// The table's rows of one image, as elfload's TraceSegments writes them.
  static func rows(_ number: Int, _ image: Image, bias: UInt64, path: String) -> String {
    image.loadIndexes.map { index in
      let ph = image.programHeaders[index]
      let (start, end) = ph.pagesInMemory(bias: bias)
      let fields = [
        "\(number)", "\(index)", "PT_LOAD", ph.flags.description, "\((end - start) / pageSize)", "0x" + String(start, radix: 16),
        "0x" + String(end, radix: 16), path.replacingOccurrences(of: ",", with: ";"),
      ]
      return TraceFormat.commentPrefix + fields.joined(separator: ",") + "\n"
    }.joined()
  }

  /// Signals sent to elfload are the program's (as under --stats): passed on. The terminal's
  /// Ctrl-C and Ctrl-\ reach the program directly; elfload only ignores them.
  static func passSignalsOn() {
    signal(SIGINT, SIG_IGN)
    signal(SIGQUIT, SIG_IGN)
    for s in [SIGTERM, SIGHUP, SIGUSR1, SIGUSR2, SIGALRM, SIGWINCH] {
      signal(s) { kill(NativeResidency.child, $0) }
    }
  }

  /// Exits with the program's status, or dies by the signal that killed it.
  static func exitLike(_ status: Int32) -> Never {
    let signal = status & 0x7f
    if signal == 0 { exit((status >> 8) & 0xff) }
    Glibc.signal(signal, SIG_DFL)
    var set = sigset_t()
    sigemptyset(&set)
    sigaddset(&set, signal)
    sigprocmask(SIG_UNBLOCK, &set, nil)
    kill(getpid(), signal)
    exit(128 + signal)
  }

  static func fail(_ message: String, status: Int32) -> Never {
    FileHandle.standardError.write(Data("elfload residency: \(message)\n".utf8))
    exit(status)
  }
}
