// Why a program could not be started, and the exit status that says so.
import CElfload
import ELF
import Glibc

/// Every way `elfload` can refuse to start a program. Each happens before the
/// first byte of the program is mapped, or undoes nothing because the
/// process then exits: there is never a jump into a half-loaded program.
public enum LoadError: Error, CustomStringConvertible {
  case notFound
  case open(SystemCallError)
  case notRegularFile(String)
  case notExecutable
  case invalid(ELFError)
  /// The program's PT_INTERP names a file that cannot serve as its interpreter.
  indirect case interpreter(path: String, LoadError)
  case nestedInterpreter(path: String, itsInterpreter: String)
  case interpreterNotPositionIndependent(path: String)
  case script(ScriptProblem)
  /// An output file of --stats-json or --trace cannot be created.
  case output(option: String, path: String, SystemCallError)
  /// The interpreter a `#!` line names cannot be run.
  indirect case scriptInterpreter(path: String, LoadError)
  case addressInUse(segment: Int, range: AddressRange, occupant: String?)
  case noRoom(size: UInt64, alignment: UInt64, SystemCallError)
  case mapping(segment: Int, range: AddressRange, SystemCallError)
  /// The anonymous pages of a segment's p_memsz beyond p_filesz.
  case bss(segment: Int, memsz: UInt64, range: AddressRange, SystemCallError)
  case system(SystemCallError)
  case noStartupStack
  case tooManySegments(limit: Int)

  /// 127 when the file does not exist, 126 when it cannot be run: the shell's
  /// convention, which `env`, `nohup` and `timeout` follow too.
  public var exitStatus: Int32 {
    switch self {
    case .notFound, .interpreter(_, .notFound), .scriptInterpreter(_, .notFound): return 127
    case .scriptInterpreter(_, let inner): return inner.exitStatus
    default: return 126
    }
  }

  public var description: String {
    switch self {
    case .notFound:
      return "no such file or directory"
    case .open(let e):
      return "cannot open: \(String(cString: strerror(e.errno)))"
    case .notRegularFile(let kind):
      return "is \(kind), not a program"
    case .notExecutable:
      return "permission denied: the file is not executable (execve would refuse it too; chmod +x it)"
    case .invalid(let e):
      return e.description
    case .interpreter(let path, let problem):
      return "its interpreter \(path) (PT_INTERP): \(problem)"
    case .nestedInterpreter(let path, let its):
      return
        "its interpreter \(path) (PT_INTERP) has a PT_INTERP itself (\(its)); an interpreter must not need another, and the kernel does not load one"
    case .script(let problem):
      return problem.description
    case .output(let option, let path, let e):
      return "\(option) \(path): cannot create it: \(e)"
    case .scriptInterpreter(let path, let problem):
      return "its #! interpreter \(path): \(problem)"
    case .interpreterNotPositionIndependent(let path):
      return
        "its interpreter \(path) (PT_INTERP) is ET_EXEC; elfload loads position-independent (ET_DYN) interpreters, as every dynamic linker is"
    case .addressInUse(let segment, let range, let occupant):
      let what = occupant.map { " by \($0)" } ?? ""
      return
        "program header \(segment) wants \(range), which is already in use\(what); elfload itself lives at \(hex(loaderRange.start))-\(hex(loaderRange.end))"
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
    }
  }
}

/// When a mapping failed for want of memory under a finite RLIMIT_AS, says
/// so, with what elfload itself takes of it (its image is mapped too).
func addressSpaceNote(_ error: SystemCallError) -> String {
  guard error.errno == ENOMEM else { return "" }
  let limit = Kernel.softLimit(Int32(RLIMIT_AS.rawValue))
  guard limit != UInt64.max else { return "" }
  return
    "; RLIMIT_AS is \(limit >> 20) MiB, of which elfload's own image takes \(loaderRange.count >> 20) MiB"
}

/// Where the loader's own image is: from the linker's `__executable_start` to `_end`.
public var loaderRange: AddressRange {
  AddressRange(UInt64(UInt(bitPattern: elfloadImageStart())), UInt64(UInt(bitPattern: elfloadImageEnd())))
}
