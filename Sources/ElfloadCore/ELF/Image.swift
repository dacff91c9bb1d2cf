// A validated ELF executable: everything the loader needs to know about a file, checked.

/// The page size of x86-64 Linux; ELF_MIN_ALIGN in the kernel.
public let pageSize: UInt64 = 4096

/// TASK_SIZE for 4-level paging: the end of user space.
public let userSpaceEnd: UInt64 = 0x7fff_ffff_f000

/// Rounds down to a page boundary.
@inlinable public func pageStart(_ address: UInt64) -> UInt64 { address & ~(pageSize - 1) }

/// Rounds up to a page boundary, or nil when that overflows.
@inlinable public func pageAlign(_ address: UInt64) -> UInt64? {
  let (sum, overflow) = address.addingReportingOverflow(pageSize - 1)
  return overflow ? nil : sum & ~(pageSize - 1)
}

/// An ELF executable whose every field the loader relies on has been checked:
/// after `init(parsing:)` succeeds, planning a load cannot fail on the file's
/// account and no arithmetic on its values can overflow.
public struct Image: Sendable {
  public var header: ELFHeader
  public var programHeaders: [ProgramHeader]
  public var fileSize: UInt64
  /// PT_INTERP's path, when the program asks for a dynamic linker.
  public var interpreter: [UInt8]?
  /// Indexes into `programHeaders` of the PT_LOAD entries, in file order.
  public var loadIndexes: [Int]
  /// PT_GNU_STACK asks for an executable stack.
  public var executableStack: Bool
  public var tls: ProgramHeader?

  public var isPositionIndependent: Bool { header.type == .sharedObject }
  public var loadSegments: [ProgramHeader] { loadIndexes.map { programHeaders[$0] } }

  /// Reads the header, the program headers and the interpreter path from
  /// `source`, and validates them. A fixed (ET_EXEC) segment below
  /// vm.mmap_min_addr is not refused here: the kernel's mmap judges it when
  /// the segment is mapped (root may map page 0; see `Execve.elfMapFailed`).
  public init(parsing source: some ByteSource) throws(ELFError) {
    let headerBytes = try source.bytes(
      at: 0, count: min(ELFHeader.size, Int(clamping: source.size)), for: "the ELF header")
    header = try ELFHeader(parsing: headerBytes)
    fileSize = source.size
    let table = try source.bytes(
      at: header.phoff, count: header.programHeaderTableSize,
      for: "\(header.phnum) program headers at e_phoff")
    let reader = LittleEndianReader(bytes: table)
    let headers = (0..<Int(header.phnum)).map {
      ProgramHeader(reading: reader, at: $0 * ProgramHeader.size)
    }
    programHeaders = headers
    loadIndexes = headers.indices.filter { headers[$0].type == .load }
    executableStack = false
    interpreter = nil
    tls = nil

    var interpreterIndex: Int?
    for (index, ph) in programHeaders.enumerated() {
      switch ph.type {
      case .load:
        try Self.validate(load: ph, index: index, fileSize: fileSize, fixed: header.type == .executable)
      case .interp:
        // load_elf_binary takes the first PT_INTERP and never looks at another.
        guard interpreterIndex == nil else { continue }
        interpreterIndex = index
        interpreter = try Self.interpreterPath(ph, index: index, source: source)
      case .gnuStack:
        executableStack = ph.flags.contains(.execute)
      case .tls:
        // The kernel never reads PT_TLS (the program's C library does), so a
        // strange one refuses nothing: `inspect` just shows what is there.
        tls = ph
      default:
        break
      }
    }
    guard !loadIndexes.isEmpty else { throw .noLoadableSegments }
    try validateLayout()
  }

  /// What load_elf_binary reads before it maps anything: the ELF header, the
  /// program headers, and the first PT_INTERP's path (nil when there is none).
  public static func interpreterPath(in source: some ByteSource) throws(ELFError) -> [UInt8]? {
    let headerBytes = try source.bytes(
      at: 0, count: min(ELFHeader.size, Int(clamping: source.size)), for: "the ELF header")
    let header = try ELFHeader(parsing: headerBytes)
    let table = try source.bytes(
      at: header.phoff, count: header.programHeaderTableSize, for: "\(header.phnum) program headers at e_phoff")
    let reader = LittleEndianReader(bytes: table)
    for index in 0..<Int(header.phnum) {
      let ph = ProgramHeader(reading: reader, at: index * ProgramHeader.size)
      if ph.type == .interp { return try interpreterPath(ph, index: index, source: source) }
    }
    return nil
  }

  /// The per-segment checks of `load_elf_binary` and `elf_map`, plus the ones
  /// the kernel leaves to a failed mmap or a crash after the point of no return.
  static func validate(
    load ph: ProgramHeader, index: Int, fileSize: UInt64, fixed: Bool
  ) throws(ELFError) {
    func fail(_ problem: ELFError.SegmentProblem) -> ELFError {
      .segment(index: index, problem)
    }
    guard ph.filesz <= ph.memsz else {
      throw fail(.fileSizeExceedsMemorySize(filesz: ph.filesz, memsz: ph.memsz))
    }
    let (fileEnd, fileOverflow) = ph.offset.addingReportingOverflow(ph.filesz)
    guard !fileOverflow, fileEnd <= fileSize else {
      throw fail(.pastEndOfFile(offset: ph.offset, filesz: ph.filesz, fileSize: fileSize))
    }
    guard ph.vaddr % pageSize == ph.offset % pageSize else {
      throw fail(.misaligned(vaddr: ph.vaddr, offset: ph.offset))
    }
    let (end, overflow) = ph.vaddr.addingReportingOverflow(ph.memsz)
    guard !overflow, pageAlign(end) != nil else {
      throw fail(.addressOverflow(vaddr: ph.vaddr, memsz: ph.memsz))
    }
    // An ET_DYN's addresses are offsets from a base chosen later; only the
    // span is checked, in validateLayout.
    if fixed {
      guard end <= userSpaceEnd else { throw fail(.outsideUserSpace(start: ph.vaddr, end: end)) }
    }
  }

  static func interpreterPath(_ ph: ProgramHeader, index: Int, source: some ByteSource) throws(ELFError)
    -> [UInt8]
  {
    guard ph.filesz >= 2, ph.filesz <= 4096 else {
      throw .badInterpreter(index: index, .badLength(ph.filesz))
    }
    let (end, overflow) = ph.offset.addingReportingOverflow(ph.filesz)
    guard !overflow, end <= source.size else {
      throw .badInterpreter(
        index: index, .pastEndOfFile(offset: ph.offset, filesz: ph.filesz, fileSize: source.size))
    }
    let bytes = try source.bytes(at: ph.offset, count: Int(ph.filesz), for: "PT_INTERP")
    guard bytes.last == 0 else { throw .badInterpreter(index: index, .notTerminated) }
    let path = bytes.prefix { $0 != 0 }
    guard !path.isEmpty else { throw .badInterpreter(index: index, .empty) }
    return Array(path)
  }

  /// Span and entry point across all PT_LOADs. They may overlap: the kernel
  /// maps them in table order, each over what is there (MAP_FIXED), so a page
  /// belongs to the last PT_LOAD in the table that maps it (LoadPlan does the same).
  mutating func validateLayout() throws(ELFError) {
    let (low, high) = span
    if isPositionIndependent, high - low > userSpaceEnd {
      throw .segment(index: loadIndexes[0], .outsideUserSpace(start: low, end: high))
    }
    let entry = header.entry
    let inside = loadSegments.contains {
      $0.flags.contains(.execute) && entry >= $0.vaddr && entry - $0.vaddr < $0.memsz
    }
    guard inside else { throw .entryOutsideSegments(entry: entry) }
    // The page of the entry point is the last mapper's: without execute
    // permission the program dies on its first instruction.
    let page = pageStart(entry)
    let owner = loadIndexes.last {
      let ph = programHeaders[$0]
      return ph.memsz > 0 && pageStart(ph.vaddr) <= page && page < (pageAlign(ph.vaddr + ph.memsz) ?? userSpaceEnd)
    }
    if let owner, !programHeaders[owner].flags.contains(.execute) {
      throw .entryNotExecutable(entry: entry, index: owner)
    }
  }

  /// Page-aligned [lowest, highest) link-time address of all PT_LOADs, empty
  /// ones included, as the kernel's total_mapping_size counts them; validated
  /// not to overflow.
  public var span: (low: UInt64, high: UInt64) {
    let low = loadSegments.map { pageStart($0.vaddr) }.min() ?? 0
    let high = loadSegments.map { pageAlign($0.vaddr + $0.memsz) ?? userSpaceEnd }.max() ?? 0
    return (low, high)
  }

  /// The largest power-of-two p_align of the PT_LOADs, at least a page; the
  /// kernel's maximum_alignment() ignores values that are not powers of two.
  public var maximumAlignment: UInt64 {
    loadSegments.reduce(pageSize) { result, ph in
      guard ph.align > 1, ph.align & (ph.align - 1) == 0 else { return result }
      return max(result, ph.align)
    }
  }

  /// The link-time address of the program headers in memory, as load_elf_binary
  /// computes AT_PHDR since 5.18: the PT_LOAD whose file range [p_offset,
  /// p_offset + p_filesz) holds e_phoff (the last such, as its loop has no
  /// break); 0 when none does (its phdr_addr starts at 0), whatever p_memsz
  /// covers or PT_PHDR says.
  public var programHeaderAddress: UInt64 {
    let holders = loadSegments.filter { $0.offset <= header.phoff && header.phoff - $0.offset < $0.filesz }
    guard let ph = holders.last else { return 0 }
    return header.phoff - ph.offset + ph.vaddr
  }
}
