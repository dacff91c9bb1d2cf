// Load plans: which pages each PT_LOAD becomes, with what protection, and the addresses the kernel reports.
import ElfloadCore

import Testing

func parsed(_ builder: ELFBuilder) throws -> Image { try Image(parsing: builder.build()) }

extension LoadPlan {
  /// Segment `index`, stopping the test when the plan has too few (the lines after read it).
  func segment(_ index: Int) throws -> SegmentMapping {
    try #require(segments.indices.contains(index), "segment \(index) of \(segments.count)")
    return segments[index]
  }
}

extension Array {
  /// Element `index`, stopping the test when there are too few (the lines after read it).
  func element(_ index: Int) throws -> Element {
    try #require(indices.contains(index), "element \(index) of \(count)")
    return self[index]
  }
}

/// `executable()` with its data segment (program header 1) changed.
func withData(_ change: (inout ProgramHeader) -> Void) throws -> Image {
  var b = ELFBuilder.executable()
  change(&b.programHeaders[1])
  return try parsed(b)
}

// MARK: - One segment at a time

@Test func textSegmentIsFileBackedReadExecute() throws {
  let plan = LoadPlan(image: try parsed(.executable()), bias: 0)
  let text = try plan.segment(0)
  #expect(text.programHeaderIndex == 0)
  #expect(text.memory == AddressRange(0x40_0000, 0x40_0200))
  #expect(text.filePages == AddressRange(0x40_0000, 0x40_1000))
  #expect(text.fileOffset == 0)
  #expect(text.protection == [.read, .execute])
  #expect(text.protection.description == "r-x")
  #expect(text.zeroFill.isEmpty)
  #expect(text.anonymousPages.isEmpty)
  #expect(text.fileOffset(of: 0x40_0100) == 0x100)
}

@Test func dataSegmentWithBSS() throws {
  // p_vaddr 0x402010, p_offset 0x1010, p_filesz 0x100, p_memsz 0x2500.
  let plan = LoadPlan(image: try parsed(.executable()), bias: 0)
  let data = try plan.segment(1)
  #expect(data.programHeaderIndex == 1)
  #expect(data.memory == AddressRange(0x40_2010, 0x40_4510))
  #expect(data.filePages == AddressRange(0x40_2000, 0x40_3000))
  #expect(data.fileOffset == 0x1000)
  #expect(data.fileOffset(of: 0x40_2010) == 0x1010)
  #expect(data.protection == [.read, .write])
  // padzero: from the end of the file bytes to the end of their page.
  #expect(data.zeroFill == AddressRange(0x40_2110, 0x40_3000))
  // vm_brk_flags: the rest, up to the page holding the last bss byte.
  #expect(data.anonymousPages == AddressRange(0x40_3000, 0x40_5000))
  #expect(data.anonymousProtection == [.read, .write])
}

/// padzero() fails silently on a page that is not writable, so only a
/// writable segment gets its tail zeroed; the bss pages are always writable
/// (vm_brk_flags), and executable when the segment is.
@Test(
  arguments: [
    ([.read], false, [.read, .write]),
    ([.read, .execute], false, [.read, .write, .execute]),
    ([.read, .write], true, [.read, .write]),
    ([.read, .write, .execute], true, [.read, .write, .execute]),
  ] as [(SegmentFlags, Bool, Protection)])
func bssTailDependsOnFlags(_ flags: SegmentFlags, _ zeroed: Bool, _ anonymous: Protection) throws {
  let data = try LoadPlan(image: try withData { $0.flags = flags }, bias: 0).segment(1)
  #expect(data.protection == Protection(flags))
  #expect(data.zeroFill.isEmpty == !zeroed)
  if zeroed { #expect(data.zeroFill == AddressRange(0x40_2110, 0x40_3000)) }
  #expect(data.anonymousPages == AddressRange(0x40_3000, 0x40_5000))
  #expect(data.anonymousProtection == anonymous)
}

@Test func noBSSMeansNoZeroFillAndNoAnonymousPages() throws {
  let data = try LoadPlan(image: try withData { $0.memsz = $0.filesz }, bias: 0).segment(1)
  #expect(data.filePages == AddressRange(0x40_2000, 0x40_3000))
  #expect(data.zeroFill.isEmpty)
  #expect(data.anonymousPages.isEmpty)
}

/// File bytes ending on a page boundary leave nothing to zero.
@Test func fileBytesEndingOnAPageBoundary() throws {
  let data = try LoadPlan(image: try withData { $0.filesz = 0xff0 }, bias: 0).segment(1)
  #expect(data.filePages == AddressRange(0x40_2000, 0x40_3000))
  #expect(data.zeroFill.isEmpty)
  #expect(data.anonymousPages == AddressRange(0x40_3000, 0x40_5000))
}

@Test func segmentWithoutFileBytesIsAllAnonymous() throws {
  let data = try LoadPlan(image: try withData { $0.filesz = 0 }, bias: 0).segment(1)
  #expect(data.filePages.isEmpty)
  #expect(data.zeroFill.isEmpty)
  #expect(data.anonymousPages == AddressRange(0x40_2000, 0x40_5000))
  #expect(data.anonymousProtection == [.read, .write])
}

@Test func emptySegmentMapsNothing() throws {
  let data = try LoadPlan(
    image: try withData {
      $0.filesz = 0
      $0.memsz = 0
    }, bias: 0
  ).segment(1)
  #expect(data.filePages.isEmpty)
  #expect(data.zeroFill.isEmpty)
  #expect(data.anonymousPages.isEmpty)
}

// MARK: - Segments sharing a page

/// The later segment owns a shared page (the kernel maps it over the earlier
/// one with MAP_FIXED); the earlier one stops short of it.
/// Text at 0x400000..0x401200, data starting in the text's last page.
func textAndDataSharingAPage() -> ELFBuilder {
  var b = ELFBuilder.executable()
  b.programHeaders[0].filesz = 0x1200
  b.programHeaders[0].memsz = 0x1200
  b.programHeaders[1].vaddr = 0x40_1200
  b.programHeaders[1].offset = 0x1200
  return b
}

@Test func earlierSegmentStopsShortOfSharedPage() throws {
  let plan = LoadPlan(image: try parsed(textAndDataSharingAPage()), bias: 0)
  #expect(try plan.segment(0).filePages == AddressRange(0x40_0000, 0x40_1000))
  #expect(try plan.segment(0).memory == AddressRange(0x40_0000, 0x40_1200))
  #expect(try plan.segment(1).filePages == AddressRange(0x40_1000, 0x40_2000))
  #expect(try plan.segment(1).fileOffset == 0x1000)
  #expect(try plan.segment(1).zeroFill == AddressRange(0x40_1300, 0x40_2000))
  #expect(try plan.segment(1).anonymousPages == AddressRange(0x40_2000, 0x40_4000))
  #expect(plan.extent == AddressRange(0x40_0000, 0x40_4000))
}

/// A writable segment at 0x400000 (0x100 file bytes, `dataMemsz` in memory),
/// then an executable one of 0x10 bytes at `textAt`, in the same file order.
func dataThenText(dataMemsz: UInt64, textAt: UInt64) -> ELFBuilder {
  var b = ELFBuilder()
  b.entry = textAt
  b.programHeaders = [
    ProgramHeader(
      type: .load, flags: [.read, .write], offset: 0, vaddr: 0x40_0000, filesz: 0x100, memsz: dataMemsz,
      align: 0x1000),
    ProgramHeader(
      type: .load, flags: [.read, .execute], offset: textAt - 0x40_0000, vaddr: textAt, filesz: 0x10,
      memsz: 0x10, align: 0x1000),
  ]
  return b
}

/// An earlier segment's bss page that the later segment starts in is left
/// to the later one; its zero-fill (in an earlier page) still happens.
@Test func earlierBSSStopsShortOfSharedPage() throws {
  let plan = LoadPlan(image: try parsed(dataThenText(dataMemsz: 0x1100, textAt: 0x40_1100)), bias: 0)
  #expect(try plan.segment(0).filePages == AddressRange(0x40_0000, 0x40_1000))
  #expect(try plan.segment(0).zeroFill == AddressRange(0x40_0100, 0x40_1000))
  #expect(try plan.segment(0).anonymousPages.isEmpty)
  #expect(try plan.segment(1).filePages == AddressRange(0x40_1000, 0x40_2000))
}

/// When the whole earlier segment is inside the later one's first page,
/// nothing of it is mapped or zeroed: the later mapping replaces that page.
@Test func earlierSegmentEntirelyInSharedPage() throws {
  let plan = LoadPlan(image: try parsed(dataThenText(dataMemsz: 0x200, textAt: 0x40_0200)), bias: 0)
  #expect(try plan.segment(0).filePages.isEmpty)
  #expect(try plan.segment(0).zeroFill.isEmpty)
  #expect(try plan.segment(0).anonymousPages.isEmpty)
  #expect(try plan.segment(1).filePages == AddressRange(0x40_0000, 0x40_1000))
}

// MARK: - Bias

@Test(arguments: [0x1000, 0x5555_5555_4000, 0x7f00_0000_0000] as [UInt64])
func biasIsAddedEverywhere(_ bias: UInt64) throws {
  let image = try parsed(.positionIndependent())
  #expect(LoadPlan.fits(image, bias: bias))
  let plan = LoadPlan(image: image, bias: bias)
  let base = LoadPlan(image: image, bias: 0)
  #expect(plan.bias == bias)
  #expect(plan.entry == 0x100 + bias)
  #expect(plan.programHeaderAddress == 0x40 + bias)
  #expect(plan.programHeaderCount == 3)
  #expect(plan.startCode == bias)
  #expect(plan.endCode == 0x200 + bias)
  #expect(plan.startData == 0x2010 + bias)
  #expect(plan.endData == 0x2110 + bias)
  #expect(plan.extent == AddressRange(bias, bias + 0x5000))
  func shifted(_ r: AddressRange) -> AddressRange { AddressRange(r.start + bias, r.end + bias) }
  for (m, m0) in zip(plan.segments, base.segments) {
    #expect(m.memory == shifted(m0.memory))
    #expect(m.filePages == shifted(m0.filePages))
    #expect(m.zeroFill == shifted(m0.zeroFill))
    #expect(m.anonymousPages == shifted(m0.anonymousPages))
    #expect(m.fileOffset == m0.fileOffset, "file offsets do not move")
  }
  #expect(try plan.segment(1).memory == AddressRange(0x2010 + bias, 0x4510 + bias))
}

@Test(
  arguments: [
    (0, false),  // the first page would be page 0
    (0x1000, true),
    (userSpaceEnd - 0x5000, true),  // ends exactly at the end of user space
    (userSpaceEnd - 0x4000, false),
    (UInt64.max - 0x1000, false),  // wraps around
  ] as [(UInt64, Bool)])
func fitsKeepsTheImageInUserSpace(_ bias: UInt64, _ fits: Bool) throws {
  #expect(LoadPlan.fits(try parsed(.positionIndependent()), bias: bias) == fits)
}

/// An ET_EXEC's addresses are its own: one at page 0 fits (the kernel's mmap
/// judges it: root may map there), where a PIE is never placed.
@Test func fixedImageAtPageZeroFits() throws {
  var b = ELFBuilder.executable()
  b.programHeaders[0].vaddr = 0
  b.entry = 0x100
  #expect(LoadPlan.fits(try parsed(b), bias: 0))
}

/// The kernel's total_mapping_size spans every PT_LOAD of an ET_DYN, empty
/// ones included, so an empty PT_LOAD near the top of the address space
/// makes execve fail. Image.span skips empty segments, so `fits` says yes and
/// the plan's start_data and end_data wrap around 2^64.
@Test func emptyLoadFarAboveThePIEIsCountedInItsSpan() throws {
  var b = ELFBuilder.positionIndependent()
  b.programHeaders.insert(
    ProgramHeader(
      type: .load, flags: [.read], offset: 0, vaddr: 0xffff_ffff_ffff_0000, filesz: 0, memsz: 0, align: 0x1000
    ),
    at: 2)
  let bias: UInt64 = 0x7f00_0000_0000
  // Refusing it outright is right too; accepting it and planning it is not.
  guard let image = try? Image(parsing: b.build()) else { return }
  #expect(!LoadPlan.fits(image, bias: bias))
}

// MARK: - brk and the mm fields

@Test func brkForExecutableFollowsTheHighestSegment() throws {
  let plan = LoadPlan(image: try parsed(.executable()), bias: 0)
  #expect(plan.brkBase == 0x40_5000)  // pageAlign(0x402010 + 0x2500)
  #expect(plan.brkGapPage)
}

@Test func brkForStaticPIEIsTheDynamicBase() throws {
  let plan = LoadPlan(image: try parsed(.positionIndependent()), bias: 0x7f00_0000_0000)
  #expect(LoadPlan.dynamicBase == 0x5555_5555_4aaa)
  #expect(plan.brkBase == pageAlign(LoadPlan.dynamicBase))
  #expect(plan.brkBase == 0x5555_5555_5000)
  #expect(!plan.brkGapPage)
}

/// With a PT_INTERP the kernel does not move brk: it follows the bss.
@Test func brkForDynamicallyLinkedPIEFollowsTheBSS() throws {
  var b = ELFBuilder.positionIndependent()
  b.addInterpreter(Array("/lib64/ld-linux-x86-64.so.2".utf8) + [0])
  let plan = LoadPlan(image: try parsed(b), bias: 0x7f00_0000_0000)
  #expect(plan.brkBase == 0x7f00_0000_5000)
  #expect(plan.brkGapPage)
}

/// start_code is the lowest PF_X p_vaddr and end_code the highest PF_X
/// p_vaddr + p_filesz; start_data is the highest p_vaddr of any PT_LOAD and
/// end_data the highest p_vaddr + p_filesz (load_elf_binary).
@Test func codeAndDataBoundsAsTheKernelComputesThem() throws {
  var b = ELFBuilder()
  b.entry = 0x40_1000
  b.programHeaders = [
    ProgramHeader(
      type: .load, flags: [.read], offset: 0, vaddr: 0x40_0000, filesz: 0x100, memsz: 0x100, align: 0x1000),
    ProgramHeader(
      type: .load, flags: [.read, .execute], offset: 0x1000, vaddr: 0x40_1000, filesz: 0x500, memsz: 0x500,
      align: 0x1000),
    ProgramHeader(
      type: .load, flags: [.read, .execute], offset: 0x2000, vaddr: 0x40_2000, filesz: 0x80, memsz: 0x900,
      align: 0x1000),
    ProgramHeader(
      type: .load, flags: [.read], offset: 0x3000, vaddr: 0x40_3000, filesz: 0x300, memsz: 0x300,
      align: 0x1000),
    ProgramHeader(
      type: .load, flags: [.read, .write], offset: 0x4010, vaddr: 0x40_4010, filesz: 0x100, memsz: 0x2000,
      align: 0x1000),
  ]
  let plan = LoadPlan(image: try parsed(b), bias: 0)
  #expect(plan.startCode == 0x40_1000)
  #expect(plan.endCode == 0x40_2080)  // p_filesz, not p_memsz
  #expect(plan.startData == 0x40_4010)
  #expect(plan.endData == 0x40_4110)
  #expect(plan.brkBase == 0x40_7000)
  #expect(plan.extent == AddressRange(0x40_0000, 0x40_7000))
}

@Test func executableStackComesFromTheImage() throws {
  var b = ELFBuilder.executable()
  b.programHeaders[2].flags = [.read, .write, .execute]
  #expect(LoadPlan(image: try parsed(b), bias: 0).executableStack)
  #expect(!LoadPlan(image: try parsed(.executable()), bias: 0).executableStack)
}

// MARK: - AT_PHDR

/// AT_PHDR comes from the PT_LOAD whose file bytes hold e_phoff, whatever a
/// PT_PHDR says (kernel 5.18 and later).
@Test func programHeaderAddressFromTheLoadHoldingThem() throws {
  var b = ELFBuilder.positionIndependent()
  b.programHeaders.append(
    ProgramHeader(type: .phdr, flags: [.read], offset: 64, vaddr: 0x3000, filesz: 224, memsz: 224, align: 8))
  let image = try parsed(b)
  #expect(image.programHeaderAddress == 0x40)
  #expect(LoadPlan(image: image, bias: 0x10_0000).programHeaderAddress == 0x10_0040)
}

/// The table in the data segment: e_phoff - p_offset + p_vaddr.
@Test func programHeaderAddressInALaterSegment() throws {
  var b = ELFBuilder.executable()
  b.phoff = 0x1018  // inside the data segment's file bytes (0x1010..0x1110)
  b.programHeaders[1].filesz = 0x200
  #expect(LoadPlan(image: try parsed(b), bias: 0).programHeaderAddress == 0x40_2018)
}

/// No PT_LOAD's file bytes hold the table: load_bias + 0, whatever PT_PHDR says (load_elf_binary's
/// phdr_addr starts at 0 and only a PT_LOAD sets it).
@Test func programHeaderAddressIgnoresPT_PHDRWhenNoLoadHoldsThem() throws {
  var b = ELFBuilder.positionIndependent()
  b.phoff = 0x1200  // past every PT_LOAD's file bytes
  b.programHeaders.append(
    ProgramHeader(
      type: .phdr, flags: [.read], offset: 0x1200, vaddr: 0x3000, filesz: 224, memsz: 224, align: 8))
  let image = try parsed(b)
  #expect(image.programHeaderAddress == 0)
  #expect(LoadPlan(image: image, bias: 0x10_0000).programHeaderAddress == 0x10_0000)
}

/// The first PT_LOAD's memory covers the table but its file bytes stop before it (p_filesz 1,
/// p_memsz 0x6c0, a mutant found by scripts/mutate): not held, load_bias + 0.
@Test func programHeaderAddressNeedsTheFileBytes() throws {
  var b = ELFBuilder.positionIndependent()
  b.programHeaders[0].filesz = 1
  b.programHeaders[0].memsz = 0x6c0
  let image = try parsed(b)
  #expect(image.programHeaderAddress == 0)
  #expect(LoadPlan(image: image, bias: 0x10_0000).programHeaderAddress == 0x10_0000)
}

/// Neither: the kernel passes 0 + load_bias, and so does the plan.
@Test func programHeaderAddressWithNeither() throws {
  var b = ELFBuilder.positionIndependent()
  b.phoff = 0x1200
  let image = try parsed(b)
  #expect(image.programHeaderAddress == 0)
  #expect(LoadPlan(image: image, bias: 0x10_0000).programHeaderAddress == 0x10_0000)
}

/// The PT_LOAD test `p_offset <= e_phoff < p_offset + p_filesz` is half-open.
@Test func programHeaderTableRightAfterTheFileBytes() throws {
  var b = ELFBuilder.executable()
  b.phoff = 0x200  // == text p_offset + p_filesz: not inside
  #expect(try parsed(b).programHeaderAddress == 0)
  b.programHeaders[0].filesz = 0x201
  b.programHeaders[0].memsz = 0x201
  #expect(try parsed(b).programHeaderAddress == 0x40_0200)
}

/// load_elf_binary does not stop at the first PT_LOAD that holds e_phoff:
/// every match overwrites phdr_addr, so the last one wins.
@Test func programHeaderAddressWhenTwoLoadsHoldTheTable() throws {
  var b = ELFBuilder.executable()
  // A second mapping of the file's first page, after the data segment.
  b.programHeaders.insert(
    ProgramHeader(
      type: .load, flags: [.read], offset: 0, vaddr: 0x60_0000, filesz: 0x200, memsz: 0x200, align: 0x1000),
    at: 2)
  let image = try parsed(b)
  #expect(image.programHeaderAddress == 0x60_0040)
  #expect(LoadPlan(image: image, bias: 0).programHeaderAddress == 0x60_0040)
}

// MARK: - Real programs

@Test(arguments: [Samples.staticHello, Samples.staticPIEHello])
func planForRealSample(_ name: String) throws {
  let bytes = try #require(Samples.load(name), "could not build or read Samples/build/\(name)")
  let image = try Image(parsing: bytes)
  let bias: UInt64 = image.isPositionIndependent ? 0x7f12_3456_7000 : 0
  #expect(LoadPlan.fits(image, bias: bias))
  let plan = LoadPlan(image: image, bias: bias)
  #expect(plan.segments.map(\.programHeaderIndex) == image.loadIndexes)
  #expect(plan.extent == AddressRange(image.span.low + bias, image.span.high + bias))
  #expect(plan.programHeaderCount == image.programHeaders.count)
  #expect(plan.entry == image.header.entry + bias)
  // glibc's data segment has a bss, and it is writable: it is zero-filled.
  let data = try #require(plan.segments.last)
  #expect(data.protection.contains(.write))
  #expect(!data.zeroFill.isEmpty)
  #expect(data.zeroFill.end == data.filePages.end)
  if image.isPositionIndependent {
    #expect(plan.brkBase == pageAlign(LoadPlan.dynamicBase))
  } else {
    #expect(plan.brkBase == image.span.high)
  }
  let loads = image.loadSegments
  let code = loads.filter { $0.flags.contains(.execute) }
  #expect(plan.startCode == code.map(\.vaddr).min()! + bias)
  #expect(plan.endCode == code.map { $0.vaddr + $0.filesz }.max()! + bias)
  #expect(plan.startData == loads.map(\.vaddr).max()! + bias)
  #expect(plan.endData == loads.map { $0.vaddr + $0.filesz }.max()! + bias)
  for m in plan.segments {
    #expect(m.filePages.start % pageSize == 0 && m.filePages.end % pageSize == 0)
    #expect(m.anonymousPages.start % pageSize == 0 && m.anonymousPages.end % pageSize == 0)
    #expect(m.fileOffset(of: m.memory.start) == image.programHeaders[m.programHeaderIndex].offset)
  }
}

// MARK: - Random mutations plan without trapping

/// Checks a plan's page-level invariants.
func checkPlan(_ image: Image, bias: UInt64) {
  let plan = LoadPlan(image: image, bias: bias)
  // Every PT_LOAD, in table order, in one piece or more (a later one inside it cuts it).
  let indexes = plan.segments.map(\.programHeaderIndex)
  #expect(Array(Set(indexes)).sorted() == image.loadIndexes.sorted())
  #expect(indexes == indexes.sorted { image.loadIndexes.firstIndex(of: $0)! < image.loadIndexes.firstIndex(of: $1)! })
  // No page is mapped twice: elfload never maps over anything.
  let ranges = plan.segments.flatMap { [$0.filePages, $0.anonymousPages] }.filter { !$0.isEmpty }
    .sorted { $0.start < $1.start }
  for (a, b) in zip(ranges, ranges.dropFirst()) { #expect(a.end <= b.start, "\(a) and \(b)") }
  for m in plan.segments {
    #expect(m.filePages.start % pageSize == 0 && m.filePages.end % pageSize == 0)
    #expect(m.anonymousPages.start % pageSize == 0 && m.anonymousPages.end % pageSize == 0)
    #expect(m.fileOffset % pageSize == 0)
  }
  #expect(plan.extent.start % pageSize == 0 && plan.extent.end % pageSize == 0)
}

/// Every mutant the parser accepts can be planned: at bias 0 (ET_EXEC, and
/// `elfload inspect` for ET_DYN) and, for ET_DYN, at biases that fit.
@Test(arguments: MutationCorpus.names)
func randomMutationsPlanWithoutTrapping(_ name: String) throws {
  let original = try #require(MutationCorpus.original(name), "could not build or read \(name)")
  var rng = SplitMix64(seed: MutationCorpus.seed(name) ^ 0x10ad)
  var planned = 0
  for _ in 0..<2000 {
    let bytes = mutate(original, &rng)
    guard let image = try? Image(parsing: bytes)
    else { continue }
    checkPlan(image, bias: 0)
    planned += 1
    guard image.isPositionIndependent else { continue }
    // The brief's fixed base, and what the launcher does: base - span.low.
    for bias in [0x7f00_0000_0000, 0x7f00_0000_0000 &- image.span.low] as [UInt64]
    where LoadPlan.fits(image, bias: bias) {
      checkPlan(image, bias: bias)
    }
  }
  #expect(planned > 20, "only \(planned) of 2000 mutations parsed")
}

/// Out of address order, the segment later in the table still wins a shared
/// page, as the kernel's MAP_FIXED in table order gives it: here the data
/// (first in the table) loses its first page to the text below it.
@Test func laterSegmentInTheTableWinsEvenBelow() throws {
  var b = textAndDataSharingAPage()
  b.programHeaders.swapAt(0, 1)
  let plan = LoadPlan(image: try parsed(b), bias: 0)
  let data = try plan.segment(0)
  let text = try plan.segment(1)
  #expect(text.filePages == AddressRange(0x40_0000, 0x40_2000))
  #expect(data.filePages == AddressRange(0x40_2000, 0x40_2000))
  #expect(data.fileOffset == 0x2000)
  // The zero-fill was on the page the text took: none (the kernel's padzero
  // ran before the text was mapped over it).
  #expect(data.zeroFill.isEmpty)
  #expect(data.anonymousPages == AddressRange(0x40_2000, 0x40_4000))
}

// MARK: - Segments that overlap

/// A later segment inside an earlier one cuts it in two, as the kernel's
/// MAP_FIXED in table order does: text 0x400000..0x404000 (four pages),
/// then a writable segment on its third page.
@Test func laterSegmentInsideAnEarlierOneCutsItInTwo() throws {
  var b = ELFBuilder.executable()
  b.programHeaders[0].filesz = 0x4000
  b.programHeaders[0].memsz = 0x4000
  b.programHeaders[1].vaddr = 0x40_2010
  b.programHeaders[1].offset = 0x2010
  b.programHeaders[1].filesz = 0x100
  b.programHeaders[1].memsz = 0x100
  let plan = LoadPlan(image: try parsed(b), bias: 0)
  #expect(plan.segments.map(\.programHeaderIndex) == [0, 0, 1])
  #expect(try plan.segment(0).filePages == AddressRange(0x40_0000, 0x40_2000))
  #expect(try plan.segment(0).fileOffset == 0)
  #expect(try plan.segment(1).filePages == AddressRange(0x40_3000, 0x40_4000))
  #expect(try plan.segment(1).fileOffset == 0x3000)
  #expect(try plan.segment(1).protection == [.read, .execute])
  #expect(try plan.segment(2).filePages == AddressRange(0x40_2000, 0x40_3000))
  #expect(try plan.segment(2).protection == [.read, .write])
  #expect(plan.extent == AddressRange(0x40_0000, 0x40_4000))
}

/// A later segment inside an earlier one's bss: the bss is cut in two, and the
/// zero fill stays with the part that keeps the last file page.
@Test func laterSegmentInsideAnEarlierBSS() throws {
  var b = ELFBuilder.executable()
  // Data: file page 0x402000, bss to 0x405000 (p_memsz 0x2ff0 from 0x402010).
  b.programHeaders[1].memsz = 0x2ff0
  b.programHeaders.append(
    ProgramHeader(type: .load, flags: [.read], offset: 0x1000, vaddr: 0x40_3000, filesz: 0x10, memsz: 0x10, align: 0x1000))
  let plan = LoadPlan(image: try parsed(b), bias: 0)
  let data = plan.segments.filter { $0.programHeaderIndex == 1 }
  #expect(data.count == 2)
  #expect(try data.element(0).filePages == AddressRange(0x40_2000, 0x40_3000))
  #expect(try data.element(0).zeroFill == AddressRange(0x40_2110, 0x40_3000))
  #expect(try data.element(0).anonymousPages.isEmpty)
  #expect(try data.element(1).filePages.isEmpty)
  #expect(try data.element(1).zeroFill.isEmpty)
  #expect(try data.element(1).anonymousPages == AddressRange(0x40_4000, 0x40_5000))
}

/// Duplicates: the later copy takes every page, the earlier maps nothing.
@Test func aSegmentRepeatedLaterInTheTableMapsOnce() throws {
  var b = ELFBuilder.executable()
  b.programHeaders.append(b.programHeaders[1])
  let plan = LoadPlan(image: try parsed(b), bias: 0)
  let data = plan.segments.filter { $0.programHeaderIndex == 1 }
  #expect(data.count == 1)
  let only = try data.element(0)
  #expect(only.filePages.isEmpty && only.anonymousPages.isEmpty && only.zeroFill.isEmpty)
  #expect(plan.segments.last?.filePages == AddressRange(0x40_2000, 0x40_3000))
}
