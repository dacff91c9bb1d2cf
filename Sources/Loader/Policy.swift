// Paging policies: how the pages of a load plan become memory.
import CElfload
import ELF
import Glibc

/// How a program's pages are brought into memory.
public enum PagingMode: String, CaseIterable, Sendable {
  /// Every PT_LOAD mapped up front, exactly as the kernel's execve maps it.
  case eager
  /// Nothing mapped up front: a page is mapped when the program first touches it.
  case demand
  /// Demand, and each fault also maps the next `prefetch` pages.
  case hybrid
}

/// Pages mapped after each faulting one under `hybrid`.
public let prefetchRange = 1...512

let MAP_FIXED_NOREPLACE: Int32 = 0x100000

/// The all-at-once policy: the kernel's own `elf_load`, done from user space.
/// Every mapping goes into a hole (MAP_FIXED_NOREPLACE): never over anything.
enum EagerPolicy {
  static func install(_ plan: LoadPlan, fd: Int32, log: (String) -> Void) throws(LoadError) {
    for segment in plan.segments {
      if !segment.filePages.isEmpty {
        // Writable while the bss tail is zeroed, when there is one.
        try map(
          segment, segment.filePages, segment.protection, flags: MAP_PRIVATE, fd: fd,
          offset: segment.fileOffset)
        if !segment.zeroFill.isEmpty {
          UnsafeMutableRawPointer(bitPattern: UInt(segment.zeroFill.start))!
            .initializeMemory(as: UInt8.self, repeating: 0, count: Int(segment.zeroFill.count))
        }
        log(
          "map \(segment.filePages) \(segment.protection) file offset \(hex(segment.fileOffset))"
            + (segment.zeroFill.isEmpty ? "" : ", zero \(segment.zeroFill)"))
      }
      if !segment.anonymousPages.isEmpty {
        do {
          try map(
            segment, segment.anonymousPages, segment.anonymousProtection,
            flags: MAP_PRIVATE | MAP_ANONYMOUS)
        } catch .mapping(let index, let range, let error) {
          throw .bss(segment: index, memsz: segment.memory.count, range: range, error)
        }
        log("map \(segment.anonymousPages) \(segment.anonymousProtection) anonymous (bss)")
      }
    }
  }

  static func map(
    _ segment: SegmentMapping, _ range: AddressRange, _ protection: Protection, flags: Int32,
    fd: Int32 = -1, offset: UInt64 = 0
  ) throws(LoadError) {
    let got: UInt64
    do {
      got = try Kernel.map(
        range.start, range.count, protection, flags: flags | MAP_FIXED_NOREPLACE, fd: fd,
        offset: offset)
    } catch {
      if error.errno == EEXIST {
        throw .addressInUse(
          segment: segment.programHeaderIndex, range: range, occupant: occupant(of: range))
      }
      throw .mapping(segment: segment.programHeaderIndex, range: range, error)
    }
    // Kernels before 4.17 ignore MAP_FIXED_NOREPLACE and place the mapping elsewhere.
    if got != range.start {
      Kernel.unmap(got, range.count)
      throw .addressInUse(segment: segment.programHeaderIndex, range: range, occupant: nil)
    }
  }

  /// Holds the program's range with an inaccessible placeholder while the
  /// interpreter's place is chosen (by mmap, which must not pick it).
  static func reserveProgramRange(_ plan: LoadPlan) throws(LoadError) {
    let range = plan.extent
    do {
      _ = try Kernel.map(
        range.start, range.count, [], flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE
      )
    } catch {
      if error.errno == EEXIST {
        let first = plan.segments.first?.programHeaderIndex ?? 0
        throw .addressInUse(segment: first, range: range, occupant: occupant(of: range))
      }
      throw .system(error)
    }
  }

  static func releaseProgramRange(_ plan: LoadPlan) { Kernel.unmap(plan.extent.start, plan.extent.count) }

  /// What /proc/self/maps says is in `range`: only read when something is.
  static func occupant(of range: AddressRange) -> String? {
    guard let text = Kernel.readWholeFile("/proc/self/maps") else { return nil }
    for line in text.split(separator: 10) {
      let fields = line.split(separator: 32, omittingEmptySubsequences: true)
      guard let bounds = fields.first?.split(separator: UInt8(ascii: "-")), bounds.count == 2,
        let start = UInt64(String(decoding: bounds[0], as: UTF8.self), radix: 16),
        let end = UInt64(String(decoding: bounds[1], as: UTF8.self), radix: 16),
        start < range.end, end > range.start
      else { continue }
      let name = fields.count > 5 ? String(decoding: fields[5], as: UTF8.self) : "an anonymous mapping"
      return "\(name) at \(hex(start))-\(hex(end))"
    }
    return nil
  }
}

/// The demand and hybrid policies. Every page is reserved PROT_NONE with its
/// real backing, and the SIGSEGV handler in the no-runtime zone (demand.c,
/// which says why this mechanism) gives a page its protection when first
/// touched, plus `prefetch` following pages under hybrid.
enum DemandPolicy {
  /// Reserves the pages of every image (the program, and its interpreter).
  static func install(_ loads: [(plan: LoadPlan, fd: Int32)], prefetch: Int, log: (String) -> Void)
    throws(LoadError)
  {
    let all = loads.enumerated().flatMap { image, load in
      load.plan.segments.map { (segment: $0, fd: load.fd, image: image) }
    }
    let pages = all.reduce(0) { $0 + $1.segment.filePages.pageCount + $1.segment.anonymousPages.pageCount }
    var firstState: UInt64 = 0
    func add(
      _ segment: SegmentMapping, image: Int, _ range: AddressRange, _ protection: Protection,
      staged: (page: UInt64, copy: UInt64, zeroFrom: UInt64)?
    ) throws(LoadError) {
      var region = elfload_demand_region(
        start: range.start, end: range.end, first_state: firstState, staged_page: staged?.page ?? 0,
        staging: staged?.copy ?? 0, zero_from: staged?.zeroFrom ?? 0, protection: protection.rawValue,
        segment: Int32(segment.programHeaderIndex),
        first_page_in_segment: (range.start - pageStart(segment.memory.start)) / pageSize, image: Int32(image)
      )
      guard elfload_demand_add_region(&region) == 0 else {
        throw .tooManySegments(limit: Int(ELFLOAD_DEMAND_MAX_REGIONS))
      }
      firstState += range.pageCount
    }
    // A PROT_NONE reservation costs no commit charge, so it would accept a
    // bss the kernel (and eager) refuse; ask for the real thing once, so
    // that every policy refuses the same programs.
    for (segment, _, _) in all where !segment.anonymousPages.isEmpty {
      let range = segment.anonymousPages
      do {
        let probe = try Kernel.map(
          0, range.count, segment.anonymousProtection, flags: MAP_PRIVATE | MAP_ANONYMOUS)
        Kernel.unmap(probe, range.count)
      } catch {
        throw .bss(segment: segment.programHeaderIndex, memsz: segment.memory.count, range: range, error)
      }
    }
    // Every reservation first: the state array and staging copies below go
    // wherever the kernel puts them, which must not be inside the program's range.
    for (segment, fd, _) in all {
      if !segment.filePages.isEmpty {
        try EagerPolicy.map(
          segment, segment.filePages, readableUpFront(segment) ? segment.protection : [], flags: MAP_PRIVATE,
          fd: fd, offset: segment.fileOffset)
      }
      if !segment.anonymousPages.isEmpty {
        try EagerPolicy.map(segment, segment.anonymousPages, [], flags: MAP_PRIVATE | MAP_ANONYMOUS)
      }
    }
    // One state byte per page, zero (reserved) until the handler maps the page.
    let states = elfload_demand_allocate_states(pages)
    if states < 0 { throw .system(SystemCallError("mmap", errno: Int32(-states))) }
    elfload_demand_configure(UnsafeMutablePointer(bitPattern: UInt(states)), UInt32(prefetch))
    for (segment, fd, image) in all {
      if !segment.filePages.isEmpty && readableUpFront(segment) {
        log(
          "map \(segment.filePages) \(segment.protection) file offset \(hex(segment.fileOffset)): read-only data, readable up front"
        )
      } else if !segment.filePages.isEmpty {
        var staged: (page: UInt64, copy: UInt64, zeroFrom: UInt64)?
        if !segment.zeroFill.isEmpty {
          // The page whose tail must read as zero is prepared out of place
          // (a private copy of the same file page) and moved in when touched.
          let page = pageStart(segment.zeroFill.start)
          do {
            let copy = try Kernel.map(
              0, pageSize, [.read, .write], flags: MAP_PRIVATE, fd: fd, offset: segment.fileOffset(of: page))
            staged = (page, copy, segment.zeroFill.start)
          } catch {
            throw .mapping(
              segment: segment.programHeaderIndex, range: AddressRange(page, page + pageSize), error)
          }
        }
        try add(segment, image: image, segment.filePages, segment.protection, staged: staged)
        log(
          "reserve \(segment.filePages) \(segment.protection) on demand, file offset \(hex(segment.fileOffset))"
            + (staged.map { ", page \(hex($0.page)) staged with \(segment.zeroFill) zeroed" } ?? ""))
      }
      if !segment.anonymousPages.isEmpty {
        try add(segment, image: image, segment.anonymousPages, segment.anonymousProtection, staged: nil)
        log("reserve \(segment.anonymousPages) \(segment.anonymousProtection) on demand, anonymous (bss)")
      }
    }
    log(
      prefetch == 0
        ? "demand paging: one page per fault"
        : "hybrid paging: each fault maps up to \(prefetch) following pages")
  }

  /// Read-only data (a segment that is neither writable nor executable) is
  /// mapped readable, unpopulated, as eager maps it: the kernel reads
  /// constants from it on the program's behalf -- glibc's pthread_create
  /// passes its all-signals set from .rodata to rt_sigprocmask, fopen a path
  /// literal to openat -- and a system call never faults into our handler:
  /// on a PROT_NONE page it fails with EFAULT. (Measured: with .rodata
  /// PROT_NONE, pthread_create's block-all call failed with EFAULT, glibc
  /// then restored an uninitialised mask with SIGSEGV blocked, and the next
  /// fault killed the program.) Its pages are paged in by the kernel, so
  /// the handler neither sees nor counts them.
  static func readableUpFront(_ segment: SegmentMapping) -> Bool {
    segment.protection == [.read] && segment.zeroFill.isEmpty
  }

  /// Installs the SIGSEGV handler: the last step before the jump.
  static func activate() throws(LoadError) {
    let r = elfload_demand_activate()
    if r != 0 { throw .system(SystemCallError("rt_sigaction", errno: Int32(-r))) }
  }
}
