// The load plan: where each page of a program goes and with what, computed without mapping anything.

/// A half-open range of addresses, page aligned where the plan says so.
public struct AddressRange: Equatable, Sendable, CustomStringConvertible {
  public var start: UInt64
  public var end: UInt64
  public init(_ start: UInt64, _ end: UInt64) {
    self.start = start
    self.end = max(start, end)
  }
  public var count: UInt64 { end - start }
  public var isEmpty: Bool { end == start }
  public var pageCount: UInt64 { count / pageSize }
  public func contains(_ address: UInt64) -> Bool { address >= start && address < end }
  public var description: String { "\(hex(start))-\(hex(end))" }
}

/// How one PT_LOAD becomes memory, the way the kernel's `elf_load` does it:
/// a private file mapping of the pages holding file bytes, the tail of the
/// last file page zeroed, and anonymous zero pages for the rest of p_memsz.
public struct SegmentMapping: Equatable, Sendable {
  /// Index of the PT_LOAD in the program header table.
  public var programHeaderIndex: Int
  /// The segment's own bytes in memory: [p_vaddr, p_vaddr + p_memsz) + bias.
  public var memory: AddressRange
  /// Pages mapped from the file (empty when p_filesz is 0).
  public var filePages: AddressRange
  /// Page-aligned file offset that `filePages.start` maps.
  public var fileOffset: UInt64
  public var protection: Protection
  /// Bytes of the last file page after p_filesz that are set to zero
  /// (`padzero`); empty unless the segment is writable and has a bss.
  public var zeroFill: AddressRange
  /// Anonymous zero pages after the file pages (the bss).
  public var anonymousPages: AddressRange
  /// The kernel maps the bss with `vm_brk_flags`, which gives read and write
  /// (and execute when the segment has it) whatever p_flags says.
  public var anonymousProtection: Protection

  /// This mapping without the pages in `taken`: nothing, itself, or the
  /// parts before and after `taken` (a later segment inside this one cuts it
  /// in two). The part that keeps the last file page keeps its zero fill.
  func without(_ taken: AddressRange) -> [SegmentMapping] {
    let pages = [filePages, anonymousPages].filter { !$0.isEmpty }
    guard pages.contains(where: { taken.start < $0.end && taken.end > $0.start }) else { return [self] }
    func part(_ low: UInt64, _ high: UInt64) -> SegmentMapping? {
      func clip(_ range: AddressRange) -> AddressRange {
        let start = min(max(range.start, low), range.end)
        return AddressRange(start, min(range.end, high))
      }
      var part = self
      part.filePages = clip(filePages)
      part.anonymousPages = clip(anonymousPages)
      guard !part.filePages.isEmpty || !part.anonymousPages.isEmpty else { return nil }
      part.fileOffset = fileOffset + (part.filePages.start - filePages.start)
      if !part.filePages.contains(zeroFill.start) { part.zeroFill = AddressRange(zeroFill.end, zeroFill.end) }
      return part
    }
    return [part(0, taken.start), part(taken.end, UInt64.max)].compactMap { $0 }
  }

  /// The file offset of the byte at `address`, which must be in `filePages`.
  public func fileOffset(of address: UInt64) -> UInt64 {
    fileOffset + (address - filePages.start)
  }
}

/// Everything the loader will do to memory and tell the program, as a value:
/// `elfload inspect` prints it, tests check it, policies carry it out.
public struct LoadPlan: Equatable, Sendable {
  /// Added to every p_vaddr: 0 for ET_EXEC, the chosen base minus the lowest
  /// p_vaddr page for ET_DYN.
  public var bias: UInt64
  public var segments: [SegmentMapping]
  /// Where the program starts (AT_ENTRY).
  public var entry: UInt64
  /// The program headers in memory (AT_PHDR), with AT_PHENT and AT_PHNUM.
  public var programHeaderAddress: UInt64
  public var programHeaderCount: Int
  /// Before randomisation: the page after the highest segment for ET_EXEC;
  /// ELF_ET_DYN_BASE for a static PIE, whose heap the kernel moves there.
  public var brkBase: UInt64
  /// The kernel leaves a one-page gap after the bss before randomising brk,
  /// except when it moved brk to ELF_ET_DYN_BASE.
  public var brkGapPage: Bool
  public var startCode: UInt64
  public var endCode: UInt64
  public var startData: UInt64
  public var endData: UInt64
  public var executableStack: Bool
  /// Every page any segment maps: [lowest, highest).
  public var extent: AddressRange

  /// ELF_ET_DYN_BASE on x86-64: two thirds of the 47-bit address space.
  public static let dynamicBase: UInt64 = 0x7fff_ffff_f000 / 3 * 2

  /// Plans the load of `image` with `bias` added to its addresses. The image
  /// is validated, so nothing here can overflow for a bias that keeps the
  /// image in user space; `LoadPlan.check(bias:for:)` says whether it does.
  public init(image: Image, bias: UInt64) {
    self.bias = bias
    var mappings: [SegmentMapping] = []
    var startCode = UInt64.max
    var endCode: UInt64 = 0
    var startData: UInt64 = 0
    var endData: UInt64 = 0
    var elfBrk: UInt64 = 0
    for index in image.loadIndexes {
      let ph = image.programHeaders[index]
      let vaddr = ph.vaddr &+ bias
      let fileEnd = vaddr + ph.filesz
      let memEnd = vaddr + ph.memsz
      let protection = Protection(ph.flags)

      var filePages = AddressRange(pageStart(vaddr), pageStart(vaddr))
      var zeroFill = AddressRange(fileEnd, fileEnd)
      var anonymous = AddressRange(pageStart(vaddr), pageStart(vaddr))
      if ph.filesz > 0 {
        filePages = AddressRange(pageStart(vaddr), pageAlign(fileEnd) ?? fileEnd)
        if ph.memsz > ph.filesz {
          // padzero() fails silently on a page that is not writable.
          if protection.contains(.write) { zeroFill = AddressRange(fileEnd, filePages.end) }
          anonymous = AddressRange(filePages.end, pageAlign(memEnd) ?? memEnd)
        }
      } else if ph.memsz > 0 {
        anonymous = AddressRange(pageStart(vaddr), pageAlign(memEnd) ?? memEnd)
      }
      var anonymousProtection: Protection = [.read, .write]
      if protection.contains(.execute) { anonymousProtection.insert(.execute) }
      mappings.append(
        SegmentMapping(
          programHeaderIndex: index, memory: AddressRange(vaddr, memEnd), filePages: filePages,
          fileOffset: pageStart(ph.offset), protection: protection, zeroFill: zeroFill,
          anonymousPages: anonymous, anonymousProtection: anonymousProtection))

      if ph.flags.contains(.execute) {
        startCode = min(startCode, ph.vaddr)
        endCode = max(endCode, ph.vaddr + ph.filesz)
      }
      startData = max(startData, ph.vaddr)
      endData = max(endData, ph.vaddr + ph.filesz)
      elfBrk = max(elfBrk, ph.vaddr + ph.memsz)
    }
    // A page belongs to the last segment in the table that maps it: the
    // kernel maps them in table order, MAP_FIXED over what is there. We never
    // map over anything, so an earlier segment gives up every page of a later
    // one: at its start, at its end, or in its middle (it is cut in two), or
    // all of them.
    var pieces: [SegmentMapping] = []
    for i in mappings.indices {
      var parts = [mappings[i]]
      for later in mappings[(i + 1)...] {
        for taken in [later.filePages, later.anonymousPages] where !taken.isEmpty {
          parts = parts.flatMap { $0.without(taken) }
        }
      }
      if parts.isEmpty {
        // Nothing of it is left: it stays in the plan, mapping nothing.
        var gone = mappings[i]
        gone.filePages = AddressRange(gone.filePages.start, gone.filePages.start)
        gone.anonymousPages = AddressRange(gone.anonymousPages.start, gone.anonymousPages.start)
        gone.zeroFill = AddressRange(gone.zeroFill.end, gone.zeroFill.end)
        parts = [gone]
      }
      pieces += parts
    }
    mappings = pieces
    segments = mappings
    entry = image.header.entry &+ bias
    programHeaderAddress = image.programHeaderAddress &+ bias
    programHeaderCount = Int(image.header.phnum)
    self.startCode = startCode &+ bias
    self.endCode = endCode &+ bias
    self.startData = startData &+ bias
    self.endData = endData &+ bias
    executableStack = image.executableStack
    let pages = mappings.flatMap { [$0.filePages, $0.anonymousPages] }.filter { !$0.isEmpty }
    extent = AddressRange(pages.map { $0.start }.min() ?? 0, pages.map { $0.end }.max() ?? 0)
    if image.isPositionIndependent && image.interpreter == nil {
      brkBase = pageAlign(Self.dynamicBase) ?? Self.dynamicBase
      brkGapPage = false
    } else {
      let end = elfBrk &+ bias
      brkBase = pageAlign(end) ?? end
      brkGapPage = true
    }
  }

  /// Whether `bias` keeps every segment of `image` inside user space.
  public static func fits(_ image: Image, bias: UInt64) -> Bool {
    let (low, high) = image.span
    let (start, o1) = low.addingReportingOverflow(bias)
    let (end, o2) = high.addingReportingOverflow(bias)
    // Page 0 is never chosen for a PIE; an ET_EXEC's own addresses are the
    // kernel's mmap to judge (below vm.mmap_min_addr only CAP_SYS_RAWIO maps).
    let lowest = image.isPositionIndependent ? pageSize : 0
    return !o1 && !o2 && start >= lowest && end <= userSpaceEnd
  }
}
