// Why an ELF file cannot be loaded: one case per rule, each naming the field and its value.

/// An error found while parsing or validating an ELF file. Its description is
/// one sentence a person can act on, naming the field and the value found.
public enum ELFError: Error, Sendable, CustomStringConvertible {
  case truncated(what: String, offset: UInt64, needed: UInt64, fileSize: UInt64)
  /// Reading the file failed (an I/O error, not the file's content).
  case unreadable(what: String, SystemCallError)
  case badMagic([UInt8])
  case unsupportedClass(UInt8)
  case unsupportedEncoding(UInt8)
  case unsupportedType(UInt16)
  case unsupportedMachine(UInt16)
  case badProgramHeaderSize(UInt16)
  case badProgramHeaderCount(UInt16)
  case noLoadableSegments
  case segment(index: Int, SegmentProblem)
  /// The page of e_entry belongs (as the last PT_LOAD in the table that maps
  /// it) to a segment without execute permission: the first instruction faults.
  case entryNotExecutable(entry: UInt64, index: Int)
  case badInterpreter(index: Int, InterpreterProblem)
  case entryOutsideSegments(entry: UInt64)

  public enum SegmentProblem: Equatable, Sendable {
    case fileSizeExceedsMemorySize(filesz: UInt64, memsz: UInt64)
    case pastEndOfFile(offset: UInt64, filesz: UInt64, fileSize: UInt64)
    case misaligned(vaddr: UInt64, offset: UInt64)
    case addressOverflow(vaddr: UInt64, memsz: UInt64)
    case outsideUserSpace(start: UInt64, end: UInt64)
  }

  public enum InterpreterProblem: Equatable, Sendable {
    case badLength(UInt64)
    case pastEndOfFile(offset: UInt64, filesz: UInt64, fileSize: UInt64)
    case notTerminated
    case empty
  }

  public var description: String {
    switch self {
    case .truncated(let what, let offset, let needed, let fileSize):
      return
        "file is truncated: \(what) needs bytes \(hex(offset))..\(hex(offset &+ needed)) but the file has \(hex(fileSize))"
    case .unreadable(let what, let error):
      return "cannot read \(what): \(error)"
    case .badMagic(let bytes):
      let shown = bytes.prefix(4).map { hex($0, width: 2) }.joined(separator: " ")
      return "not an ELF file (e_ident starts \(shown), expected 7f 45 4c 46)"
    case .unsupportedClass(let c):
      return
        "e_ident[EI_CLASS] is \(c) (32-bit) and this is not an x86-64 executable; elfload runs 64-bit x86-64 programs"
    case .unsupportedEncoding(let e):
      return
        "e_ident[EI_DATA] is \(e) (big-endian) and this is not an x86-64 executable; elfload runs little-endian x86-64 programs"
    case .unsupportedType(let t):
      return
        "e_type is \(t) (\(ObjectType.name(t))); only executables (ET_EXEC) and position-independent executables (ET_DYN) can be run"
    case .unsupportedMachine(let m):
      return "e_machine is \(m) (\(machineName(m))); elfload runs x86-64 programs (62)"
    case .badProgramHeaderSize(let s):
      return "e_phentsize is \(s); a 64-bit program header is 56 bytes"
    case .badProgramHeaderCount(let n):
      return "e_phnum is \(n); the kernel accepts 1 to 1170 program headers (at most 64 KiB)"
    case .noLoadableSegments:
      return "no PT_LOAD segment: nothing to load"
    case .segment(let index, let problem):
      return "program header \(index): \(problem.description)"
    case .entryNotExecutable(let entry, let index):
      return
        "e_entry \(hex(entry)) is in a page that program header \(index), the last PT_LOAD to map it, maps without execute permission: the first instruction would fault"
    case .badInterpreter(let index, let problem):
      return "program header \(index) (PT_INTERP): \(problem.description)"
    case .entryOutsideSegments(let entry):
      return "e_entry \(hex(entry)) is not inside any executable PT_LOAD segment"
    }
  }
}

extension ELFError.SegmentProblem: CustomStringConvertible {
  public var description: String {
    switch self {
    case .fileSizeExceedsMemorySize(let filesz, let memsz):
      return "p_filesz \(hex(filesz)) is larger than p_memsz \(hex(memsz))"
    case .pastEndOfFile(let offset, let filesz, let fileSize):
      return
        "p_offset \(hex(offset)) + p_filesz \(hex(filesz)) is past the end of the file (size \(hex(fileSize)))"
    case .misaligned(let vaddr, let offset):
      return
        "p_vaddr \(hex(vaddr)) and p_offset \(hex(offset)) differ modulo the page size (4096), so the segment cannot be mapped"
    case .addressOverflow(let vaddr, let memsz):
      return "p_vaddr \(hex(vaddr)) + p_memsz \(hex(memsz)) overflows 64 bits"
    case .outsideUserSpace(let start, let end):
      return
        "p_vaddr..p_vaddr+p_memsz is \(hex(start))..\(hex(end)), outside user space (which ends at \(hex(userSpaceEnd)))"
    }
  }
}

extension ELFError.InterpreterProblem: CustomStringConvertible {
  public var description: String {
    switch self {
    case .badLength(let n):
      return "p_filesz is \(n); an interpreter path is 2 to 4096 bytes including its NUL"
    case .pastEndOfFile(let offset, let filesz, let fileSize):
      return
        "p_offset \(hex(offset)) + p_filesz \(hex(filesz)) is past the end of the file (size \(hex(fileSize)))"
    case .notTerminated:
      return "the interpreter path is not NUL-terminated"
    case .empty:
      return "the interpreter path is empty"
    }
  }
}

/// `0x…` in lower case, as readelf prints addresses; with a width, bare
/// zero-padded digits, as a hex dump shows bytes.
public func hex<T: BinaryInteger>(_ value: T, width: Int = 0) -> String {
  let digits = String(value, radix: 16)
  guard width > 0 else { return "0x" + digits }
  return String(repeating: "0", count: max(0, width - digits.utf8.count)) + digits
}

func machineName(_ m: UInt16) -> String {
  switch m {
  case 3: return "i386"
  case 8: return "MIPS"
  case 20: return "PowerPC"
  case 21: return "PowerPC64"
  case 40: return "ARM"
  case 62: return "x86-64"
  case 183: return "AArch64"
  case 243: return "RISC-V"
  default: return "unknown"
  }
}

extension ELFError {
  /// Whether the kernel finds this only after it has read PT_INTERP and
  /// opened the interpreter (load_elf_binary maps the segments later): for
  /// such a file with an interpreter that cannot be opened, execve reports
  /// the interpreter.
  public var comesAfterTheInterpreter: Bool {
    switch self {
    case .noLoadableSegments, .segment, .entryNotExecutable, .entryOutsideSegments: return true
    default: return false
    }
  }
}

// String == needs Unicode tables the launcher does not link; tests compare these.
#if !hasFeature(Embedded)
  extension ELFError: Equatable {}
#endif
