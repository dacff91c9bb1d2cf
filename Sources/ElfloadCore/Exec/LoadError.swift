// Why a program could not be started, and the exit status that says so.

/// Every way `elfload` can refuse to start a program. Each happens before the
/// first byte of the program is mapped, or undoes nothing because the
/// process then exits: there is never a jump into a half-loaded program.
public enum LoadError: Error, Sendable, CustomStringConvertible {
  case notFound
  case open(SystemCallError)
  case notRegularFile(String)
  case notExecutable
  /// Open for writing by some process: execve's ETXTBSY.
  case textBusy
  /// 0 bytes: execve's ENOEXEC (a shell runs such a file as a script of its own).
  case empty
  /// Not ELF, no #! line, and it reads as text.
  case textWithoutInterpreter(ELFError)
  case invalid(ELFError)
  /// The program's PT_INTERP names a file that cannot serve as its interpreter.
  indirect case interpreter(path: [UInt8], LoadError)
  case nestedInterpreter(path: [UInt8], itsInterpreter: [UInt8])
  case interpreterNotPositionIndependent(path: [UInt8])
  case script(ScriptProblem)
  /// An output file of --stats-json or --trace cannot be created.
  case output(option: String, path: [UInt8], SystemCallError)
  /// The interpreter a `#!` line names cannot be run.
  indirect case scriptInterpreter(path: [UInt8], LoadError)
  case addressInUse(segment: Int, range: AddressRange, occupant: String?)
  case noRoom(size: UInt64, alignment: UInt64, SystemCallError)
  case mapping(segment: Int, range: AddressRange, SystemCallError)
  /// The anonymous pages of a segment's p_memsz beyond p_filesz.
  case bss(segment: Int, memsz: UInt64, range: AddressRange, SystemCallError)
  case system(SystemCallError)
  case noStartupStack
  case tooManySegments(limit: Int)
  /// --pager uffd, and the kernel will not give this user what it needs.
  case pagerUnavailable(SystemCallError)
  /// --mode replay's profile cannot be read or is malformed.
  case profile(path: [UInt8], ProfileError)
  /// `elfload -` with a terminal for standard input: a person typing, not a program.
  case streamIsTerminal
  /// `elfload -`: standard input cannot be read.
  case stream(SystemCallError)
  /// `elfload -`: the stream goes on past the limit (1 GiB, or RLIMIT_FSIZE).
  case streamTooLarge(limit: UInt64, byFileSizeLimit: Bool)
  /// `elfload -`: the kernel gives no memfd (vm.memfd_noexec=2 forbids executable ones).
  case memfd(SystemCallError)
  /// A `#!` script on a close-on-exec descriptor: fexecve's ENOENT.
  case scriptCloseOnExec(descriptor: Int32)
  /// `elfload record` of a program with no name (a memfd, a deleted file): a profile names files.
  case recordInMemory

  /// 127 when the file does not exist, 126 when it cannot be run: the shell's
  /// convention, which `env`, `nohup` and `timeout` follow too.
  public var exitStatus: Int32 {
    switch self {
    case .notFound, .interpreter(_, .notFound), .scriptInterpreter(_, .notFound): return 127
    case .scriptInterpreter(_, let inner): return inner.exitStatus
    case .streamIsTerminal: return 64
    default: return 126
    }
  }

  public var description: String {
    switch self {
    case .notFound:
      return "no such file or directory"
    case .open(let e):
      return "cannot open: \(e.errno)"
    case .notRegularFile(let kind):
      // (Compared as bytes: the launcher has no Unicode tables for String ==.)
      let pipe = [FileType.fifo, FileType.socket].contains { Array(FileType.name($0).utf8) == Array(kind.utf8) }
      return "is \(kind), not a program\(pipe ? " (execve refuses it too; a program that comes through one runs with: elfload - ARGS < it)" : "")"
    case .notExecutable:
      return "permission denied: the file is not executable (execve would refuse it too; chmod +x it)"
    case .invalid(let e):
      return e.description
    case .textBusy:
      return "text file busy: a process has it open for writing (execve refuses it too, with ETXTBSY)"
    case .empty:
      return "an empty file (0 bytes), not a program (execve refuses it with ENOEXEC)"
    case .textWithoutInterpreter(let e):
      return
        "\(e.description); it reads as text with no #! line: if it is a script, run it with its interpreter (sh FILE, python3 FILE...) or begin it with a #! line"
    case .interpreter(let path, let problem):
      return "its interpreter \(text(path)) (PT_INTERP): \(problem)"
    case .nestedInterpreter(let path, let its):
      return
        "its interpreter \(text(path)) (PT_INTERP) has a PT_INTERP itself (\(text(its))); an interpreter must not need another, and the kernel does not load one"
    case .script(let problem):
      return problem.description
    case .output(let option, let path, let e):
      return "\(option) \(text(path)): cannot create it: \(e)"
    case .scriptInterpreter(let path, let problem):
      return "its #! interpreter \(text(path)): \(problem)"
    case .interpreterNotPositionIndependent(let path):
      return
        "its interpreter \(text(path)) (PT_INTERP) is ET_EXEC; elfload loads position-independent (ET_DYN) interpreters, as every dynamic linker is"
    case .addressInUse(let segment, let range, let occupant):
      let what = occupant.map { " by \($0)" } ?? ""
      let loader = LoaderImage.range.map { "; elfload itself lives at \(hex($0.start))-\(hex($0.end))" } ?? ""
      return "program header \(segment) wants \(range), which is already in use\(what)\(loader)"
    case .noRoom(let size, let alignment, let e):
      return "no room for \(hex(size)) bytes aligned to \(hex(alignment)): \(e)"
    case .mapping(let segment, let range, let e):
      return "program header \(segment): mapping \(range) failed: \(e)\(addressSpaceNote(e))"
    case .bss(let segment, let memsz, let range, let e):
      return
        "program header \(segment): p_memsz \(hex(memsz)) asks for a bss at \(range) (\(range.count >> 20) MiB), which cannot be mapped: \(e)\(addressSpaceNote(e))"
    case .system(let e):
      return e.description
    case .noStartupStack:
      return
        "the kernel gave elfload no AT_EXECFN, so the top of its stack is unknown (Linux 2.6.26 or later gives one)"
    case .tooManySegments(let limit):
      return "more than \(limit) regions to page on demand; use --mode eager"
    case .profile(let path, let e):
      return "--profile \(text(path)): \(e)"
    case .streamIsTerminal:
      return "standard input is a terminal; pipe the program in: cat PROGRAM | elfload - ARGS"
    case .stream(let e):
      return "cannot read the program from standard input: \(e)"
    case .streamTooLarge(let limit, let byFileSizeLimit):
      return
        "the program on standard input is larger than \(limit) bytes, the most elfload reads (\(byFileSizeLimit ? "RLIMIT_FSIZE, ulimit -f" : "1 GiB; a lower ulimit -f lowers it")); nothing was run"
    case .memfd(let e):
      return
        "no memfd to hold the program: \(e)\(e.errno == .EACCES ? " (vm.memfd_noexec=2 forbids executable memfds)" : "")"
    case .scriptCloseOnExec(let fd):
      return
        "a #! script on a close-on-exec descriptor: its interpreter could not open /dev/fd/\(Int(fd)) once exec closed it, so the kernel refuses it too (ENOENT); clear FD_CLOEXEC"
    case .recordInMemory:
      return
        "record: the program is in memory (a memfd or a deleted file), which a profile cannot name (it names files by device, inode, size and mtime); record it from a file"
    case .pagerUnavailable(let e):
      return
        "--pager uffd: \(e); the kernel gives a userfaultfd that follows forks (UFFD_FEATURE_EVENT_FORK) only to a process with CAP_SYS_PTRACE (root), whatever vm.unprivileged_userfaultfd says: use --pager signal"
    }
  }
}

/// When a mapping failed for want of memory under a finite RLIMIT_AS, says
/// so, with what elfload itself takes of it (its image is mapped too).
func addressSpaceNote(_ error: SystemCallError) -> String {
  guard error.errno == .ENOMEM else { return "" }
  let limit = Kernel.softLimit(Resource.addressSpace)
  guard limit != UInt64.max else { return "" }
  let loader = LoaderImage.range.map { ", of which elfload's own image takes \($0.count >> 10) KiB" } ?? ""
  return "; RLIMIT_AS is \(limit >> 20) MiB\(loader)"
}

/// Where the running loader's own image is, when the loader says so (the
/// tools run no program and leave it nil): for messages about collisions.
public enum LoaderImage {
  nonisolated(unsafe) public static var range: AddressRange?
}

/// Bytes as text for a message (a path need not be UTF-8; invalid bytes show as U+FFFD).
public func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }
