// The ELF header and program headers (ELF64, little-endian), as the file has them.

/// `e_type`.
public enum ObjectType: UInt16, Sendable {
  case relocatable = 1
  case executable = 2
  case sharedObject = 3
  case core = 4

  static func name(_ raw: UInt16) -> String {
    switch raw {
    case 0: return "ET_NONE"
    case 1: return "ET_REL, an object file: link it first"
    case 2: return "ET_EXEC"
    case 3: return "ET_DYN"
    case 4: return "ET_CORE, a core dump"
    default: return "unknown"
    }
  }
}

/// The 64-byte ELF header.
public struct ELFHeader: Equatable, Sendable {
  public static let size = 64
  public var type: ObjectType
  public var machine: UInt16
  public var entry: UInt64
  public var phoff: UInt64
  public var phentsize: UInt16
  public var phnum: UInt16

  /// Parses and validates the header the way `load_elf_binary` and
  /// `load_elf_phdrs` do, so what the kernel refuses, this refuses.
  public init(parsing bytes: [UInt8]) throws(ELFError) {
    guard bytes.count >= 4 else { throw .badMagic(bytes) }
    guard bytes[0] == 0x7f, bytes[1] == 0x45, bytes[2] == 0x4c, bytes[3] == 0x46 else {
      throw .badMagic(Array(bytes.prefix(4)))
    }
    guard bytes.count >= Self.size else {
      throw .truncated(
        what: "the ELF header", offset: 0, needed: UInt64(Self.size), fileSize: UInt64(bytes.count))
    }
    let r = LittleEndianReader(bytes: bytes)
    // Like load_elf_binary: the magic, then e_type, then e_machine. The
    // kernel does not look at EI_CLASS, EI_DATA, EI_VERSION or e_version, and
    // runs a file whose only oddity is one of those; so do we. They only make
    // the message clearer when the file is refused anyway.
    let elfClass = r.u8(4)
    let encoding = r.u8(5)
    func foreign() -> ELFError? {
      if elfClass == 1 { return .unsupportedClass(elfClass) }
      if encoding == 2 { return .unsupportedEncoding(encoding) }
      return nil
    }
    let rawType = r.u16(16)
    guard let type = ObjectType(rawValue: rawType), type == .executable || type == .sharedObject
    else { throw foreign() ?? .unsupportedType(rawType) }
    let machine = r.u16(18)
    guard machine == 62 else { throw foreign() ?? .unsupportedMachine(machine) }
    self.type = type
    self.machine = machine
    self.entry = r.u64(24)
    self.phoff = r.u64(32)
    self.phentsize = r.u16(54)
    self.phnum = r.u16(56)
    guard phentsize == ProgramHeader.size else {
      throw .badProgramHeaderSize(phentsize)
    }
    // load_elf_phdrs: "size == 0 || size > 65536 || size > ELF_MIN_ALIGN".
    // elf_read_phdrs: at most 64 KiB of program headers.
    guard phnum >= 1, Int(phnum) * ProgramHeader.size <= 65536 else {
      throw .badProgramHeaderCount(phnum)
    }
  }

  /// Bytes of program headers that follow `phoff`.
  public var programHeaderTableSize: Int { Int(phnum) * ProgramHeader.size }
}

/// `p_type`.
public struct SegmentType: RawRepresentable, Equatable, Hashable, Sendable, CustomStringConvertible {
  public var rawValue: UInt32
  public init(rawValue: UInt32) { self.rawValue = rawValue }

  public static let null = SegmentType(rawValue: 0)
  public static let load = SegmentType(rawValue: 1)
  public static let dynamic = SegmentType(rawValue: 2)
  public static let interp = SegmentType(rawValue: 3)
  public static let note = SegmentType(rawValue: 4)
  public static let phdr = SegmentType(rawValue: 6)
  public static let tls = SegmentType(rawValue: 7)
  public static let gnuEHFrame = SegmentType(rawValue: 0x6474_e550)
  public static let gnuStack = SegmentType(rawValue: 0x6474_e551)
  public static let gnuRelro = SegmentType(rawValue: 0x6474_e552)
  public static let gnuProperty = SegmentType(rawValue: 0x6474_e553)

  public var description: String {
    switch self {
    case .null: return "NULL"
    case .load: return "LOAD"
    case .dynamic: return "DYNAMIC"
    case .interp: return "INTERP"
    case .note: return "NOTE"
    case .phdr: return "PHDR"
    case .tls: return "TLS"
    case .gnuEHFrame: return "GNU_EH_FRAME"
    case .gnuStack: return "GNU_STACK"
    case .gnuRelro: return "GNU_RELRO"
    case .gnuProperty: return "GNU_PROPERTY"
    default: return hex(rawValue)
    }
  }
}

/// `p_flags`: PF_X, PF_W, PF_R.
public struct SegmentFlags: OptionSet, Equatable, Hashable, Sendable, CustomStringConvertible {
  public var rawValue: UInt32
  public init(rawValue: UInt32) { self.rawValue = rawValue }
  public static let execute = SegmentFlags(rawValue: 1)
  public static let write = SegmentFlags(rawValue: 2)
  public static let read = SegmentFlags(rawValue: 4)

  /// `r-x`, as /proc/self/maps shows it.
  public var description: String {
    (contains(.read) ? "r" : "-") + (contains(.write) ? "w" : "-") + (contains(.execute) ? "x" : "-")
  }
}

/// One 56-byte program header.
public struct ProgramHeader: Equatable, Sendable {
  public static let size = 56
  public var type: SegmentType
  public var flags: SegmentFlags
  public var offset: UInt64
  public var vaddr: UInt64
  public var paddr: UInt64
  public var filesz: UInt64
  public var memsz: UInt64
  public var align: UInt64

  public init(
    type: SegmentType, flags: SegmentFlags, offset: UInt64, vaddr: UInt64, paddr: UInt64 = 0,
    filesz: UInt64, memsz: UInt64, align: UInt64
  ) {
    self.type = type
    self.flags = flags
    self.offset = offset
    self.vaddr = vaddr
    self.paddr = paddr
    self.filesz = filesz
    self.memsz = memsz
    self.align = align
  }

  /// Reads the header at `at`; the caller has checked that 56 bytes are there.
  init(reading r: LittleEndianReader, at base: Int) {
    type = SegmentType(rawValue: r.u32(base))
    flags = SegmentFlags(rawValue: r.u32(base + 4))
    offset = r.u64(base + 8)
    vaddr = r.u64(base + 16)
    paddr = r.u64(base + 24)
    filesz = r.u64(base + 32)
    memsz = r.u64(base + 40)
    align = r.u64(base + 48)
  }

  /// The 56 bytes of this header, for tests and the malformed-file corpus.
  public var encoded: [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(Self.size)
    func put<T: FixedWidthInteger>(_ v: T) {
      withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) }
    }
    put(type.rawValue)
    put(flags.rawValue)
    put(offset)
    put(vaddr)
    put(paddr)
    put(filesz)
    put(memsz)
    put(align)
    return out
  }
}
