// Parsing and validation of ELF files: valid synthetic and real programs, every malformed case, and random mutations.
import ElfloadCore
import Testing

// MARK: - Valid files

@Test func parsesSyntheticExecutable() throws {
  let builder = ELFBuilder.executable()
  let bytes = builder.build()
  let image = try Image(parsing: bytes)
  #expect(image.header.type == .executable)
  #expect(image.header.machine == 62)
  #expect(image.header.entry == 0x40_0100)
  #expect(image.header.phoff == 64)
  #expect(image.header.phentsize == 56)
  #expect(image.header.phnum == 3)
  #expect(image.programHeaders == builder.programHeaders)
  #expect(image.fileSize == UInt64(bytes.count))
  #expect(image.loadIndexes == [0, 1])
  #expect(image.loadSegments == Array(builder.programHeaders.prefix(2)))
  #expect(!image.isPositionIndependent)
  #expect(image.interpreter == nil)
  #expect(image.tls == nil)
  #expect(!image.executableStack)
  #expect(image.span.low == 0x40_0000)
  #expect(image.span.high == 0x40_5000)
  #expect(image.maximumAlignment == 0x1000)
  #expect(image.programHeaderAddress == 0x40_0040)
}

@Test func parsesSyntheticPositionIndependentExecutable() throws {
  let bytes = ELFBuilder.positionIndependent().build()
  let image = try Image(parsing: bytes)
  #expect(image.header.type == .sharedObject)
  #expect(image.isPositionIndependent)
  #expect(image.header.entry == 0x100)
  #expect(image.loadIndexes == [0, 1])
  #expect(image.span.low == 0)
  #expect(image.span.high == 0x5000)
  #expect(image.programHeaderAddress == 0x40)
}

/// A PIE's addresses are offsets, so vaddr 0 is where a PIE starts.
@Test func positionIndependentStartsAtZero() throws {
  let image = try Image(parsing: ELFBuilder.positionIndependent().build())
  #expect(image.span.low == 0)
}

@Test(arguments: [Samples.staticHello, Samples.staticPIEHello])
func parsesRealSample(_ name: String) throws {
  let bytes = try #require(Samples.load(name), "could not build or read Samples/build/\(name)")
  let image = try Image(parsing: bytes)
  #expect(image.header.type == (name == Samples.staticHello ? .executable : .sharedObject))
  #expect(image.header.machine == 62)
  #expect(image.header.phnum > 0)
  #expect(image.programHeaders.count == Int(image.header.phnum))
  #expect(!image.loadIndexes.isEmpty)
  #expect(image.interpreter == nil)
  #expect(image.programHeaderAddress == image.header.phoff + image.span.low, "the first PT_LOAD holds them")
  #expect(image.tls != nil, "glibc's static startup always has PT_TLS")
  let entry = image.header.entry
  let holder = image.loadSegments.first {
    $0.flags.contains(.execute) && entry >= $0.vaddr && entry < $0.vaddr + $0.memsz
  }
  #expect(holder != nil)
  // PT_LOADs are sorted and every one is mappable.
  let loads = image.loadSegments
  for (a, b) in zip(loads, loads.dropFirst()) { #expect(a.vaddr + a.memsz <= b.vaddr) }
  for ph in loads { #expect(ph.vaddr % pageSize == ph.offset % pageSize) }
}

// MARK: - Malformed files

/// One malformed file, the exact error it must give, and words its
/// description must contain (so a person reading it knows which field).
struct Malformed: Sendable, CustomTestStringConvertible {
  var name: String
  var bytes: [UInt8]
  var error: ELFError
  var mentions: [String]
  var testDescription: String { name }
}

/// `executable()` with one change applied; `error` is computed from the built
/// bytes, so it can depend on the file size.
func malformed(
  _ name: String, mentions: [String],
  _ change: (inout ELFBuilder) -> Void, error: ([UInt8]) -> ELFError
) -> Malformed {
  var b = ELFBuilder.executable()
  change(&b)
  let bytes = b.build()
  return Malformed(
    name: name, bytes: bytes, error: error(bytes), mentions: mentions)
}

let valid = ELFBuilder.executable().build()

let headerCases: [Malformed] = [
  Malformed(name: "empty file", bytes: [], error: .badMagic([]), mentions: ["e_ident"]),
  Malformed(
    name: "3-byte file", bytes: [0x7f, 0x45, 0x4c], error: .badMagic([0x7f, 0x45, 0x4c]),
    mentions: ["e_ident"]),
  Malformed(
    name: "truncated header (40 bytes)", bytes: Array(valid.prefix(40)),
    error: .truncated(what: "the ELF header", offset: 0, needed: 64, fileSize: 40),
    mentions: ["ELF header", "truncated"]),
  malformed("bad magic", mentions: ["e_ident", "7f 45 4c 46"], { $0.magic = [0x7f, 0x45, 0x4c, 0x47] }) {
    _ in .badMagic([0x7f, 0x45, 0x4c, 0x47])
  },
  // A genuine 32-bit or big-endian file: refused, and the message says what it is.
  malformed(
    "32-bit i386 file", mentions: ["EI_CLASS", "32-bit"],
    {
      $0.elfClass = 1
      $0.machine = 3
    }
  ) { _ in .unsupportedClass(1) },
  malformed(
    "big-endian file", mentions: ["EI_DATA", "big-endian"],
    {
      $0.encoding = 2
      $0.machine = 0x3e00
    }
  ) { _ in .unsupportedEncoding(2) },
  malformed("ET_NONE", mentions: ["e_type", "ET_NONE"], { $0.type = 0 }) { _ in .unsupportedType(0) },
  malformed("ET_REL", mentions: ["e_type", "ET_REL"], { $0.type = 1 }) { _ in .unsupportedType(1) },
  malformed("ET_CORE", mentions: ["e_type", "ET_CORE"], { $0.type = 4 }) { _ in .unsupportedType(4) },
  malformed("i386", mentions: ["e_machine", "i386"], { $0.machine = 3 }) { _ in .unsupportedMachine(3) },
  malformed("AArch64", mentions: ["e_machine", "AArch64"], { $0.machine = 183 }) { _ in
    .unsupportedMachine(183)
  },
  malformed("e_phentsize 32", mentions: ["e_phentsize", "32"], { $0.phentsize = 32 }) {
    _ in .badProgramHeaderSize(32)
  },
  malformed("e_phnum 0", mentions: ["e_phnum"], { $0.phnum = 0 }) { _ in .badProgramHeaderCount(0) },
  malformed("e_phnum 1171", mentions: ["e_phnum", "1171"], { $0.phnum = 1171 }) {
    _ in .badProgramHeaderCount(1171)
  },
  malformed(
    "e_phoff past the end of the file", mentions: ["e_phoff", "truncated"],
    {
      $0.phoff = 0x10000
      $0.fileSize = 0x1110
    }
  ) { _ in .truncated(what: "3 program headers at e_phoff", offset: 0x10000, needed: 168, fileSize: 0x1110)
  },
  malformed("e_phoff + table size overflows", mentions: ["e_phoff"], { $0.phoff = UInt64.max - 100 }) {
    .truncated(
      what: "3 program headers at e_phoff", offset: UInt64.max - 100, needed: 168, fileSize: UInt64($0.count))
  },
]

/// Changes to program header 1, the data segment at 0x402010 (file 0x1010).
let segmentCases: [Malformed] = [
  malformed(
    "PT_LOAD p_filesz > p_memsz", mentions: ["p_filesz", "p_memsz"],
    {
      $0.programHeaders[1].filesz = 0x3000
      $0.fileSize = 0x1110
    }
  ) { _ in .segment(index: 1, .fileSizeExceedsMemorySize(filesz: 0x3000, memsz: 0x2500)) },
  malformed(
    "PT_LOAD past the end of the file", mentions: ["p_offset", "p_filesz"],
    {
      $0.programHeaders[1].filesz = 0x2000
      $0.fileSize = 0x1110
    }
  ) { _ in .segment(index: 1, .pastEndOfFile(offset: 0x1010, filesz: 0x2000, fileSize: 0x1110)) },
  malformed(
    "PT_LOAD p_offset + p_filesz overflows", mentions: ["p_offset"],
    {
      $0.programHeaders[1].offset = UInt64.max - 0xfef  // ...f010: still congruent with p_vaddr
    }
  ) {
    .segment(index: 1, .pastEndOfFile(offset: UInt64.max - 0xfef, filesz: 0x100, fileSize: UInt64($0.count)))
  },
  malformed(
    "p_vaddr and p_offset not congruent mod 4096", mentions: ["p_vaddr", "p_offset", "4096"],
    {
      $0.programHeaders[1].offset = 0x1000
    }
  ) { _ in .segment(index: 1, .misaligned(vaddr: 0x40_2010, offset: 0x1000)) },
  malformed(
    "p_vaddr + p_memsz overflows", mentions: ["p_vaddr", "p_memsz", "overflows"],
    {
      $0.programHeaders[1].vaddr = 0xffff_ffff_ffff_f010
    }
  ) { _ in .segment(index: 1, .addressOverflow(vaddr: 0xffff_ffff_ffff_f010, memsz: 0x2500)) },
  // The end itself fits in 64 bits but rounding it up to a page does not.
  malformed(
    "p_vaddr + p_memsz cannot be page aligned", mentions: ["p_vaddr", "p_memsz"],
    {
      $0.programHeaders[1].vaddr = 0xffff_ffff_ffff_f010
      $0.programHeaders[1].memsz = 0xfef
    }
  ) { _ in .segment(index: 1, .addressOverflow(vaddr: 0xffff_ffff_ffff_f010, memsz: 0xfef)) },
  malformed(
    "ET_EXEC segment above user space", mentions: ["user space"],
    {
      $0.programHeaders[1].vaddr = 0x7fff_ffff_f000
      $0.programHeaders[1].offset = 0x1000
      $0.programHeaders[1].memsz = 0x1000
    }
  ) { _ in .segment(index: 1, .outsideUserSpace(start: 0x7fff_ffff_f000, end: 0x8000_0000_0000)) },
  malformed(
    "a later non-executable PT_LOAD over the entry point's page", mentions: ["e_entry", "program header 1"],
    {
      // Overlapping segments are fine (the later one wins the pages), but not this.
      $0.programHeaders[1].vaddr = 0x40_0100
      $0.programHeaders[1].offset = 0x100
    }
  ) { _ in .entryNotExecutable(entry: 0x40_0100, index: 1) },
  malformed(
    "no PT_LOAD", mentions: ["PT_LOAD"],
    {
      $0.programHeaders.removeFirst(2)
    }
  ) { _ in .noLoadableSegments },
  malformed("entry in a non-executable segment", mentions: ["e_entry"], { $0.entry = 0x40_2010 }) {
    _ in .entryOutsideSegments(entry: 0x40_2010)
  },
  malformed("entry just past the text segment", mentions: ["e_entry"], { $0.entry = 0x40_0200 }) {
    _ in .entryOutsideSegments(entry: 0x40_0200)
  },
  malformed("entry below every segment", mentions: ["e_entry"], { $0.entry = 0x1000 }) {
    _ in .entryOutsideSegments(entry: 0x1000)
  },
]

let interpreterPath = Array("/lib64/ld-linux-x86-64.so.2".utf8) + [0]

/// The PT_INTERP is appended as program header 3.
let interpreterCases: [Malformed] = [
  malformed("PT_INTERP too short", mentions: ["p_filesz"], { $0.addInterpreter([0]) }) {
    _ in .badInterpreter(index: 3, .badLength(1))
  },
  malformed(
    "PT_INTERP too long", mentions: ["p_filesz", "4096"], { $0.addInterpreter(interpreterPath, filesz: 5000) }
  ) {
    _ in .badInterpreter(index: 3, .badLength(5000))
  },
  malformed("PT_INTERP not NUL-terminated", mentions: ["NUL"], { $0.addInterpreter(Array("/lib64/ld".utf8)) })
  {
    _ in .badInterpreter(index: 3, .notTerminated)
  },
  malformed("PT_INTERP empty string", mentions: ["empty"], { $0.addInterpreter([0, 0]) }) {
    _ in .badInterpreter(index: 3, .empty)
  },
  malformed(
    "PT_INTERP past the end of the file", mentions: ["p_offset", "p_filesz"],
    {
      $0.addInterpreter(interpreterPath, offset: 0x1100)
      $0.fileSize = 0x1110
    }
  ) { _ in .badInterpreter(index: 3, .pastEndOfFile(offset: 0x1100, filesz: 28, fileSize: 0x1110)) },
  malformed(
    "PT_INTERP p_offset + p_filesz overflows", mentions: ["p_offset"],
    {
      $0.programHeaders.append(
        ProgramHeader(
          type: .interp, flags: [.read], offset: UInt64.max - 5, vaddr: 0, filesz: 28, memsz: 28, align: 1))
    }
  ) {
    .badInterpreter(index: 3, .pastEndOfFile(offset: UInt64.max - 5, filesz: 28, fileSize: UInt64($0.count)))
  },
]

/// The kernel never reads PT_TLS (the program's C library does): a strange one
/// refuses nothing, as execve refuses nothing (found by scripts/mutate: a
/// p_align of 3 runs natively).
@Test(arguments: [(UInt64(0x20), UInt64(0x10), UInt64(8)), (0x10, 0x20, 3)])
func strangeTLSIsNotRefused(_ filesz: UInt64, _ memsz: UInt64, _ align: UInt64) throws {
  var b = ELFBuilder.executable()
  b.programHeaders.append(
    ProgramHeader(type: .tls, flags: [.read], offset: 0x1010, vaddr: 0x40_2010, filesz: filesz, memsz: memsz, align: align))
  let image = try Image(parsing: b.build())
  #expect(image.tls?.align == align)
}

@Test(arguments: headerCases + segmentCases + interpreterCases)
func rejectsMalformed(_ c: Malformed) {
  #expect(throws: c.error) { try Image(parsing: c.bytes) }
  for word in c.mentions {
    #expect(c.error.description.contains(word), "\(c.error.description)")
  }
}

// MARK: - Edge cases that must be accepted

@Test func acceptsSegmentsSharingAPage() throws {
  var b = ELFBuilder.executable()
  // The text ends at 0x401200; the data starts right there, in the same page.
  b.programHeaders[0].filesz = 0x1200
  b.programHeaders[0].memsz = 0x1200
  b.programHeaders[1].vaddr = 0x40_1200
  b.programHeaders[1].offset = 0x1200
  let image = try Image(parsing: b.build())
  #expect(image.loadIndexes == [0, 1])
}

@Test func acceptsSegmentsSharingBytes() throws {
  // As the kernel does: the later one in the table wins the pages.
  var b = ELFBuilder.executable()
  b.programHeaders[0].filesz = 0x4000
  b.programHeaders[0].memsz = 0x4000
  b.programHeaders[1].vaddr = 0x40_2010
  b.programHeaders[1].offset = 0x2010
  let image = try Image(parsing: b.build())
  #expect(image.loadIndexes == [0, 1])
}

@Test func acceptsSegmentEndingExactlyAtUserSpaceEnd() throws {
  var b = ELFBuilder.executable()
  b.programHeaders[1].vaddr = userSpaceEnd - 0x1000
  b.programHeaders[1].offset = 0x1000
  b.programHeaders[1].memsz = 0x1000
  let image = try Image(parsing: b.build())
  #expect(image.span.high == userSpaceEnd)
}

/// An ET_EXEC segment at address 0, below vm.mmap_min_addr, is the kernel's
/// mmap to judge when it is mapped (root may map page 0), not the parser's.
@Test func acceptsFixedSegmentAtAddressZero() throws {
  var b = ELFBuilder.executable()
  b.programHeaders[0].vaddr = 0
  b.entry = 0x100
  let image = try Image(parsing: b.build())
  #expect(image.span.low == 0)
  #expect(LoadPlan(image: image, bias: 0).extent.start == 0)
}

/// What load_elf_binary does not check, it does not refuse: a file that is
/// right in every other way runs natively (the corpus tests check that), so
/// it parses here.
@Test(arguments: ["EI_CLASS 1", "EI_DATA 2", "EI_VERSION 0", "e_version 0", "PT_LOADs out of order"])
func acceptsWhatTheKernelAccepts(_ oddity: String) throws {
  var b = ELFBuilder.executable()
  switch oddity {
  case "EI_CLASS 1": b.elfClass = 1
  case "EI_DATA 2": b.encoding = 2
  case "EI_VERSION 0": b.identVersion = 0
  case "e_version 0": b.version = 0
  default: b.programHeaders.swapAt(0, 1)
  }
  let image = try Image(parsing: b.build())
  #expect(image.loadIndexes.count == 2)
}

@Test func acceptsMaximumProgramHeaderCount() throws {
  var b = ELFBuilder.executable()
  // 1170 * 56 = 65520 bytes, the most elf_read_phdrs reads.
  b.programHeaders += Array(
    repeating: ProgramHeader(type: .null, flags: [], offset: 0, vaddr: 0, filesz: 0, memsz: 0, align: 0),
    count: 1167)
  b.phoff = 0x2000
  let image = try Image(parsing: b.build())
  #expect(image.header.phnum == 1170)
  #expect(image.loadIndexes == [0, 1])
  // The table is outside every PT_LOAD's file bytes: load_bias + 0.
  #expect(image.programHeaderAddress == 0)
}

@Test func parsesValidInterpreter() throws {
  var b = ELFBuilder.executable()
  b.addInterpreter(interpreterPath)
  let image = try Image(parsing: b.build())
  #expect(image.interpreter == Array("/lib64/ld-linux-x86-64.so.2".utf8))
}

/// Bytes after the first NUL are ignored, as the kernel's string use does.
/// load_elf_binary uses the first PT_INTERP and does not read the others,
/// malformed or not.
@Test func theFirstPTInterpIsTheInterpreter() throws {
  var b = ELFBuilder.executable()
  b.addInterpreter(interpreterPath)
  b.addInterpreter(Array("/x".utf8), offset: 0x380)
  b.programHeaders[b.programHeaders.count - 1].filesz = 1 << 40
  let image = try Image(parsing: b.build())
  #expect(image.interpreter == Array("/lib64/ld-linux-x86-64.so.2".utf8))
}

@Test func interpreterStopsAtFirstNUL() throws {
  var b = ELFBuilder.executable()
  b.addInterpreter(Array("/a".utf8) + [0] + Array("junk".utf8) + [0])
  #expect(try Image(parsing: b.build()).interpreter == Array("/a".utf8))
}

@Test func parsesValidTLS() throws {
  var b = ELFBuilder.executable()
  let tls = ProgramHeader(
    type: .tls, flags: [.read], offset: 0x1010, vaddr: 0x40_2010, filesz: 0x18, memsz: 0x60, align: 8)
  b.programHeaders.append(tls)
  #expect(try Image(parsing: b.build()).tls == tls)
}

@Test(arguments: [0, 1] as [UInt64])
func acceptsTLSWithTrivialAlignment(_ align: UInt64) throws {
  var b = ELFBuilder.executable()
  b.programHeaders.append(
    ProgramHeader(
      type: .tls, flags: [.read], offset: 0x1010, vaddr: 0x40_2010, filesz: 0x18, memsz: 0x60, align: align))
  #expect(try Image(parsing: b.build()).tls?.align == align)
}

/// The kernel ignores a p_align that is not a power of two, so the file
/// loads, and maximumAlignment must not use it.
@Test func acceptsLoadAlignmentThatIsNotAPowerOfTwo() throws {
  var b = ELFBuilder.positionIndependent()
  b.programHeaders[0].align = 3
  b.programHeaders[1].align = 3
  let image = try Image(parsing: b.build())
  #expect(image.maximumAlignment == pageSize)
}

@Test(
  arguments: [
    ([0x1000, 0x1000], 0x1000),
    ([0x20_0000, 0x1000], 0x20_0000),
    ([0, 1], 0x1000),
    ([3, 0x4000], 0x4000),
    ([0x30_0000, 0x10], 0x1000),
  ] as [([UInt64], UInt64)])
func maximumAlignment(_ aligns: [UInt64], _ expected: UInt64) throws {
  var b = ELFBuilder.positionIndependent()
  b.programHeaders[0].align = aligns[0]
  b.programHeaders[1].align = aligns[1]
  #expect(try Image(parsing: b.build()).maximumAlignment == expected)
}

@Test(
  arguments: [
    ([.read, .write], false),
    ([.read, .write, .execute], true),
    ([.execute], true),
  ] as [(SegmentFlags, Bool)])
func gnuStackFlags(_ flags: SegmentFlags, _ executable: Bool) throws {
  var b = ELFBuilder.executable()
  b.programHeaders[2].flags = flags
  #expect(try Image(parsing: b.build()).executableStack == executable)
}

@Test func noGNUStackMeansNonExecutableStack() throws {
  var b = ELFBuilder.executable()
  b.programHeaders.removeLast()
  #expect(try Image(parsing: b.build()).executableStack == false)
}

/// A zero-size PT_LOAD at address 0 maps nothing.
@Test func zeroSizeLoadAtAddressZeroIsAccepted() throws {
  var b = ELFBuilder.executable()
  b.programHeaders.insert(
    ProgramHeader(type: .load, flags: [.read], offset: 0, vaddr: 0, filesz: 0, memsz: 0, align: 0x1000), at: 0
  )
  let image = try Image(parsing: b.build())
  #expect(image.loadIndexes == [0, 1, 2])
  // span counts it anyway, as the kernel's total_mapping_size does.
  #expect(image.span.low == 0)
}

// MARK: - Random mutations never trap

/// A trap would kill the test process, so reaching the end is the test:
/// every input either parses or throws an ELFError.
@Test(arguments: MutationCorpus.names)
func randomMutationsNeverTrap(_ name: String) throws {
  let original = try #require(MutationCorpus.original(name), "could not build or read \(name)")
  var rng = SplitMix64(seed: MutationCorpus.seed(name))
  var accepted = 0
  for _ in 0..<2000 {
    let bytes = mutate(original, &rng)
    let image: Image
    do {
      image = try Image(parsing: bytes)
    } catch is ELFError {
      continue
    } catch {
      Issue.record("unexpected error type: \(error)")
      continue
    }
    accepted += 1
    // Whatever was accepted must be as valid as the parser promises.
    #expect(!image.loadIndexes.isEmpty)
    #expect(image.header.machine == 62)
    _ = image.programHeaderAddress
    _ = image.maximumAlignment
    for index in image.loadIndexes { #expect(image.programHeaders[index].type == .load) }
  }
  // Enough mutants must parse for the accepting paths to be exercised too.
  #expect(accepted > 20, "only \(accepted) of 2000 mutations parsed")
}
