// Paging policies: how the pages of a load plan become memory. One closed set (PagingPolicy),
// each consuming the same plans.
import NoRuntimeZone

/// One image to load: its plan and its open file.
struct ImageLoad {
  var plan: LoadPlan
  var fd: FileDescriptor
}

/// How a run's faults are served: not at all (eager), by the SIGSEGV handler, or by a
/// userfaultfd server (holding the descriptor until the server has it).
enum FaultPath {
  case none
  case signal
  case uffd(FileDescriptor)

  /// The pager a user asked for, or the default: under demand and hybrid,
  /// userfaultfd where the kernel grants what it needs to be correct, else
  /// the SIGSEGV handler.
  static func choose(_ policy: PagingPolicy, asked: Pager?, log: Log) throws(LoadError) -> FaultPath {
    guard policy != .eager else { return .none }
    if asked == .signal { return .signal }
    let fd = elfload_uffd_open()
    if fd >= 0 { return .uffd(FileDescriptor(rawValue: Int32(fd))) }
    let error = SystemCallError("userfaultfd", errno: Errno(rawValue: Int32(-fd)))
    if asked == .uffd { throw .pagerUnavailable(error) }
    log("no userfaultfd pager (\(error)): faults go to a SIGSEGV handler (--pager signal)")
    return .signal
  }

  /// As the shared counters record it, for the supervisor's report.
  var kind: UInt64 {
    switch self {
    case .none: return UInt64(ELFLOAD_PAGER_NONE)
    case .signal: return UInt64(ELFLOAD_PAGER_SIGNAL)
    case .uffd: return UInt64(ELFLOAD_PAGER_UFFD)
    }
  }

  /// Whether the SIGSEGV handler (and its pages) must outlive the jump.
  var needsHandler: Bool {
    if case .signal = self { return true }
    return false
  }
}

/// What --mode replay installed before the jump, and how long that took.
struct Replayed {
  var pages: UInt64 = 0
  var nanoseconds: UInt64 = 0

  /// Installs `runs` with `installRun`, timed.
  static func timing(_ runs: [AddressRange], _ installRun: ([AddressRange]) -> UInt64) -> Replayed {
    let started = Kernel.monotonicNanoseconds()
    let pages = installRun(runs)
    return Replayed(pages: pages, nanoseconds: Kernel.monotonicNanoseconds() - started)
  }
}

extension PagingPolicy {
  /// Maps (eager) or reserves (demand, hybrid, replay) every image's pages,
  /// and installs `replay`'s pages: what it installed.
  /// `held`: the placeholders over the images' ranges (Eager.hold), given
  /// back just before the segments are mapped into them.
  func install(
    _ loads: [ImageLoad], held: [AddressRange], faults: FaultPath, shared: SharedMeasurement?, replay: Replay?, log: Log
  ) throws(LoadError) -> Replayed {
    let predict = self == .predictive
    // (From Eager.release on, nothing here allocates until every segment is
    // mapped -- an option-set literal is an array in a debug build: a new heap
    // chunk could land in the hole just released. MapFlags.union, not [.a, .b].)
    switch faults {
    case .none:
      Eager.release(held)
      for load in loads { try Eager.install(load) }
      for load in loads { Eager.describe(load, log: log) }
      return Replayed()
    case .signal:
      try Demand.install(loads, held: held, prefetch: prefetch, predict: predict, log: log)
      guard let replay else { return Replayed() }
      return Replayed.timing(try replay.runs(loads, log: log)) { runs in
        runs.reduce(0) { $0 + elfload_demand_preinstall($1.start, $1.pageCount) }
      }
    case .uffd(let fd):
      return try Userfault.install(
        loads, held: held, prefetch: prefetch, predict: predict, uffd: fd, shared: shared, replay: replay, log: log)
    }
  }
}

/// The all-at-once policy: the kernel's own `elf_load`, done from user space.
/// Every mapping goes into a hole (MAP_FIXED_NOREPLACE): never over anything.
enum Eager {
  /// Maps one image's segments. Allocates nothing: the images' placeholders
  /// are gone, and a heap chunk mapped now could land where they were.
  static func install(_ load: ImageLoad) throws(LoadError) {
    for segment in load.plan.segments {
      if !segment.filePages.isEmpty {
        // Writable while the bss tail is zeroed, when there is one.
        try elfMap(segment, segment.filePages, segment.protection, flags: .private, fd: load.fd, offset: segment.fileOffset)
        if !segment.zeroFill.isEmpty, let tail = UnsafeMutableRawPointer(bitPattern: UInt(segment.zeroFill.start)) {
          tail.initializeMemory(as: UInt8.self, repeating: 0, count: Int(segment.zeroFill.count))
        }
      }
      if !segment.anonymousPages.isEmpty { try mapBss(segment) }
    }
  }

  /// The anonymous pages after the file pages (vm_brk_flags's part): a
  /// failure names the bss and its p_memsz.
  static func mapBss(_ segment: SegmentMapping) throws(LoadError) {
    do {
      try elfMap(segment, segment.anonymousPages, segment.anonymousProtection, flags: MapFlags.private.union(.anonymous))
    } catch {
      if case .mapping(let index, let range, let e) = error {
        throw .bss(segment: index, memsz: segment.memory.count, range: range, e)
      }
      throw error
    }
  }

  /// --verbose: what install mapped.
  static func describe(_ load: ImageLoad, log: Log) {
    for segment in load.plan.segments {
      if !segment.filePages.isEmpty {
        log(
          "map \(segment.filePages) \(segment.protection) file offset \(hex(segment.fileOffset))"
            + (segment.zeroFill.isEmpty ? "" : ", zero \(segment.zeroFill)"))
      }
      if !segment.anonymousPages.isEmpty {
        log("map \(segment.anonymousPages) \(segment.anonymousProtection) anonymous (bss)")
      }
    }
  }

  /// Holds an image's range with an inaccessible placeholder from the moment
  /// its place is chosen until its segments are mapped (the kernel, which
  /// maps at once, needs none): elfload allocates meanwhile, and its heap
  /// grows by mmap into the first hole it finds -- the very hole mmap chose
  /// for the interpreter or a static PIE (Execve.chooseBias keeps that one
  /// held from the start). nil when the range cannot be held (something is
  /// there: the mapping itself will say what).
  static func hold(_ plan: LoadPlan) -> AddressRange? {
    (try? reserve(plan)).map { plan.extent }
  }

  static func release(_ held: [AddressRange]) {
    for range in held { Kernel.unmap(range.start, range.count) }
  }

  /// The kernel's elf_map: one mapping of `range`, into a hole only.
  static func elfMap(
    _ segment: SegmentMapping, _ range: AddressRange, _ protection: Protection, flags: MapFlags,
    fd: FileDescriptor? = nil, offset: UInt64 = 0
  ) throws(LoadError) {
    let got: UInt64
    do {
      got = try Kernel.map(range.start, range.count, protection, flags: flags.union(.fixedNoReplace), fd: fd, offset: offset)
    } catch {
      if error.errno == .EEXIST {
        throw .addressInUse(segment: segment.programHeaderIndex, range: range, occupant: occupant(of: range))
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
  static func reserve(_ plan: LoadPlan) throws(LoadError) {
    let range = plan.extent
    do {
      _ = try Kernel.map(range.start, range.count, [], flags: [.private, .anonymous, .noReserve, .fixedNoReplace])
    } catch {
      if error.errno == .EEXIST {
        let first = plan.segments.first?.programHeaderIndex ?? 0
        throw .addressInUse(segment: first, range: range, occupant: occupant(of: range))
      }
      throw .system(error)
    }
  }

  /// What /proc/self/maps says is in `range`: only read when something is.
  static func occupant(of range: AddressRange) -> String? {
    guard let maps = Kernel.readWholeFile(Array("/proc/self/maps".utf8)) else { return nil }
    for line in maps.split(separator: 10) {
      let fields = line.split(separator: 32, omittingEmptySubsequences: true)
      guard let bounds = fields.first?.split(separator: UInt8(ascii: "-")), bounds.count == 2,
        let start = UInt64(text(Array(bounds[0])), radix: 16),
        let end = UInt64(text(Array(bounds[1])), radix: 16),
        start < range.end, end > range.start
      else { continue }
      let name = fields.count > 5 ? text(Array(fields[5])) : "an anonymous mapping"
      return "\(name) at \(hex(start))-\(hex(end))"
    }
    return nil
  }
}

/// The demand and hybrid policies. Every page is reserved PROT_NONE with its
/// real backing, and the SIGSEGV handler in the no-runtime zone (demand.c,
/// which says why this mechanism) gives a page its protection when first
/// touched, plus `prefetch` following pages under hybrid.
enum Demand {
  /// Reserves the pages of every image (the program, and its interpreter).
  static func install(_ loads: [ImageLoad], held: [AddressRange], prefetch: Int, predict: Bool, log: Log) throws(LoadError) {
    var all: [(segment: SegmentMapping, fd: FileDescriptor, image: Int)] = []
    for (image, load) in loads.enumerated() {
      for segment in load.plan.segments { all.append((segment, load.fd, image)) }
    }
    let pages = all.reduce(UInt64(0)) { $0 + $1.segment.filePages.pageCount + $1.segment.anonymousPages.pageCount }
    // A PROT_NONE reservation costs no commit charge, so it would accept a
    // bss the kernel (and eager) refuse; ask for the real thing once, so
    // that every policy refuses the same programs.
    for entry in all where !entry.segment.anonymousPages.isEmpty {
      let segment = entry.segment
      let range = segment.anonymousPages
      do {
        let probe = try Kernel.map(0, range.count, segment.anonymousProtection, flags: MapFlags.private.union(.anonymous))
        Kernel.unmap(probe, range.count)
      } catch {
        throw .bss(segment: segment.programHeaderIndex, memsz: segment.memory.count, range: range, error)
      }
    }
    // Every reservation first: the state array and staging copies below go
    // wherever the kernel puts them, which must not be inside the program's range.
    Eager.release(held)
    for entry in all {
      let segment = entry.segment
      if !segment.filePages.isEmpty {
        try Eager.elfMap(
          segment, segment.filePages, readableUpFront(segment) ? segment.protection : Protection(), flags: .private,
          fd: entry.fd, offset: segment.fileOffset)
      }
      if !segment.anonymousPages.isEmpty {
        try Eager.elfMap(segment, segment.anonymousPages, Protection(), flags: MapFlags.private.union(.anonymous))
      }
    }
    // One state byte per page, zero (reserved) until the handler maps the page.
    let states = elfload_demand_allocate_states(pages)
    if states < 0 { throw .system(SystemCallError("mmap", errno: Errno(rawValue: Int32(-states)))) }
    elfload_demand_configure(UnsafeMutablePointer(bitPattern: UInt(states)), UInt32(prefetch), predict ? 1 : 0)
    var firstState: UInt64 = 0
    func add(
      _ segment: SegmentMapping, image: Int, _ range: AddressRange, _ protection: Protection,
      staged: (page: UInt64, copy: UInt64, zeroFrom: UInt64)?
    ) throws(LoadError) {
      var region = elfload_demand_region(
        start: range.start, end: range.end, first_state: firstState, staged_page: staged?.page ?? 0,
        staging: staged?.copy ?? 0, zero_from: staged?.zeroFrom ?? 0, protection: protection.rawValue,
        segment: Int32(segment.programHeaderIndex),
        first_page_in_segment: (range.start - pageStart(segment.memory.start)) / pageSize, image: Int32(image),
        anonymous: range == segment.anonymousPages ? 1 : 0)
      guard elfload_demand_add_region(&region) == 0 else {
        throw .tooManySegments(limit: Int(ELFLOAD_DEMAND_MAX_REGIONS))
      }
      firstState += range.pageCount
    }
    for entry in all {
      let segment = entry.segment
      if !segment.filePages.isEmpty && readableUpFront(segment) {
        log(
          "map \(segment.filePages) \(segment.protection) file offset \(hex(segment.fileOffset)): read-only data, readable up front")
      } else if !segment.filePages.isEmpty {
        var staged: (page: UInt64, copy: UInt64, zeroFrom: UInt64)?
        if !segment.zeroFill.isEmpty {
          // The page whose tail must read as zero is prepared out of place
          // (a private copy of the same file page) and moved in when touched.
          let page = pageStart(segment.zeroFill.start)
          do {
            let copy = try Kernel.map(
              0, pageSize, [.read, .write], flags: .private, fd: entry.fd, offset: segment.fileOffset(of: page))
            staged = (page, copy, segment.zeroFill.start)
          } catch {
            throw .mapping(segment: segment.programHeaderIndex, range: AddressRange(page, page + pageSize), error)
          }
        }
        try add(segment, image: entry.image, segment.filePages, segment.protection, staged: staged)
        log(
          "reserve \(segment.filePages) \(segment.protection) on demand, file offset \(hex(segment.fileOffset))"
            + (staged.map { ", page \(hex($0.page)) staged with \(segment.zeroFill) zeroed" } ?? ""))
      }
      if !segment.anonymousPages.isEmpty {
        try add(segment, image: entry.image, segment.anonymousPages, segment.anonymousProtection, staged: nil)
        log("reserve \(segment.anonymousPages) \(segment.anonymousProtection) on demand, anonymous (bss)")
      }
    }
    log(
      predict
        ? "hybrid paging, --prefetch auto: each fault maps what the pattern of faults predicts"
        : prefetch == 0
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
    segment.protection == .read && segment.zeroFill.isEmpty
  }

  /// Installs the SIGSEGV handler: the last step before the jump.
  static func activate() throws(LoadError) {
    let r = elfload_demand_activate()
    if r != 0 { throw .system(SystemCallError("rt_sigaction", errno: Errno(rawValue: Int32(-r)))) }
  }
}

/// Demand and hybrid paging through userfaultfd (uffd.c, which says how): the
/// segments are anonymous memory with their final protection, registered for
/// missing pages; a server process fills each page from the file, or with
/// zeros, when it is first touched.
enum Userfault {
  static func install(
    _ loads: [ImageLoad], held: [AddressRange], prefetch: Int, predict: Bool, uffd: FileDescriptor,
    shared: SharedMeasurement?, replay: Replay?, log: Log
  ) throws(LoadError) -> Replayed {
    // Every segment mapped first, allocating nothing (see Eager.hold).
    Eager.release(held)
    for load in loads {
      for segment in load.plan.segments {
        if !segment.filePages.isEmpty {
          try Eager.elfMap(segment, segment.filePages, segment.protection, flags: MapFlags.private.union(.anonymous))
        }
        if !segment.anonymousPages.isEmpty { try Eager.mapBss(segment) }
      }
    }
    var regions: [(segment: SegmentMapping, range: AddressRange)] = []
    for (image, load) in loads.enumerated() {
      for segment in load.plan.segments {
        if !segment.filePages.isEmpty {
          let dataEnd = segment.zeroFill.isEmpty ? segment.filePages.end : segment.zeroFill.start
          try add(
            segment, image: image, segment.filePages, fd: load.fd.rawValue, offset: segment.fileOffset,
            dataEnd: dataEnd)
          regions.append((segment, segment.filePages))
          log(
            "anonymous \(segment.filePages) \(segment.protection), served from file offset \(hex(segment.fileOffset)) when touched"
              + (segment.zeroFill.isEmpty ? "" : ", zero from \(hex(segment.zeroFill.start))"))
        }
        if !segment.anonymousPages.isEmpty {
          try add(segment, image: image, segment.anonymousPages, fd: -1, offset: 0, dataEnd: segment.anonymousPages.start)
          regions.append((segment, segment.anonymousPages))
          log("anonymous \(segment.anonymousPages) \(segment.anonymousProtection) (bss), zero pages served when touched")
        }
      }
    }
    elfload_uffd_configure(UInt32(prefetch), predict ? 1 : 0, shared?.counters, shared?.trace)
    // The server first, then the registrations: a fork of registered memory
    // waits for the server, which would be waiting to be born.
    let started = elfload_uffd_start_server(uffd.rawValue)
    if started != 0 { throw .system(SystemCallError("fork (the userfaultfd server)", errno: Errno(rawValue: Int32(-started)))) }
    for (segment, range) in regions {
      let r = elfload_uffd_register(uffd.rawValue, range.start, range.count)
      if r != 0 {
        throw .mapping(segment: segment.programHeaderIndex, range: range, SystemCallError("UFFDIO_REGISTER", errno: Errno(rawValue: Int32(-r))))
      }
    }
    // Replay's pages, while this process still holds the userfaultfd.
    var replayed = Replayed()
    if let replay {
      replayed = Replayed.timing(try replay.runs(loads, log: log)) { runs in
        var pairs: [UInt64] = []
        pairs.reserveCapacity(2 * runs.count)
        for run in runs { pairs += [run.start, run.pageCount] }
        return pairs.withUnsafeBufferPointer { elfload_uffd_preinstall(uffd.rawValue, $0.baseAddress, UInt64(runs.count)) }
      }
    }
    // The server holds its own copy; the program must not see one.
    Kernel.close(uffd)
    log(
      predict
        ? "hybrid paging through userfaultfd, --prefetch auto: each fault copies what the pattern of faults predicts"
        : prefetch == 0
          ? "demand paging through userfaultfd: one page per fault"
          : "hybrid paging through userfaultfd: each fault copies up to \(prefetch) following pages too")
    return replayed
  }

  static func add(
    _ segment: SegmentMapping, image: Int, _ range: AddressRange, fd: Int32, offset: UInt64, dataEnd: UInt64
  ) throws(LoadError) {
    var region = elfload_uffd_region(
      start: range.start, end: range.end, file_offset: offset, data_end: dataEnd, fd: fd,
      segment: Int32(segment.programHeaderIndex),
      first_page_in_segment: (range.start - pageStart(segment.memory.start)) / pageSize, image: Int32(image),
      protection: (fd < 0 ? segment.anonymousProtection : segment.protection).rawValue)
    guard elfload_uffd_add_region(&region) == 0 else { throw .tooManySegments(limit: Int(ELFLOAD_DEMAND_MAX_REGIONS)) }
  }
}

/// --verbose: a line on stderr per step, or nothing.
struct Log {
  var verbose: Bool
  func callAsFunction(_ message: @autoclosure () -> String) {
    if verbose { Kernel.writeError("elfload: \(message())\n") }
  }
}
