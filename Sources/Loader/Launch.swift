// execve in user space: open, validate, plan, map, build the stack, jump.
import CElfload
import ELF
import Glibc

/// What to run and how.
public struct LaunchRequest: Sendable {
  /// The program's path as given (it becomes AT_EXECFN).
  public var path: [UInt8]
  /// argv, argv[0] included, byte for byte.
  public var arguments: [[UInt8]]
  public var environment: [[UInt8]]
  public var mode: PagingMode
  /// Pages mapped after each faulting page (hybrid only).
  public var prefetch: Int
  /// Counters and trace shared with a supervising parent (--stats, --trace).
  public var shared: SharedMeasurement?
  public var verbose: Bool

  public init(
    path: [UInt8], arguments: [[UInt8]], environment: [[UInt8]], mode: PagingMode, prefetch: Int = 1,
    verbose: Bool
  ) {
    self.path = path
    self.arguments = arguments
    self.environment = environment
    self.mode = mode
    self.prefetch = prefetch
    self.verbose = verbose
  }
}

/// An opened, validated program: the file stays open until it is mapped.
public struct OpenedProgram: Sendable {
  public var fd: Int32
  public var image: Image
}

/// Reads an ELF file through pread, serving the first page from one read.
struct FileSource: ByteSource {
  let fd: Int32
  let size: UInt64
  let head: [UInt8]

  init(fd: Int32, size: UInt64) throws(SystemCallError) {
    self.fd = fd
    self.size = size
    head = try Kernel.read(fd, count: Int(min(size, pageSize)), at: 0)
  }

  func bytes(at offset: UInt64, count: Int, for what: String) throws -> [UInt8] {
    let (end, overflow) = offset.addingReportingOverflow(UInt64(count))
    guard !overflow, end <= size else {
      throw ELFError.truncated(what: what, offset: offset, needed: UInt64(count), fileSize: size)
    }
    if end <= UInt64(head.count) { return Array(head[Int(offset)..<Int(end)]) }
    let got = try Kernel.read(fd, count: count, at: offset)
    guard got.count == count else {
      throw ELFError.truncated(what: what, offset: offset, needed: UInt64(count), fileSize: size)
    }
    return got
  }
}

public enum Launcher {
  /// What a file turned out to be.
  enum Opened {
    case program(OpenedProgram)
    case script(ScriptLine)
  }

  /// Opens the file at `path` the way execve checks it: it must exist, be a
  /// regular file and be executable; then it is a `#!` script, or must be a
  /// valid ELF file. Reads the first page once for both.
  static func openFile(_ path: [UInt8]) throws(LoadError) -> Opened {
    let fd: Int32
    do { fd = try Kernel.openReadOnly(path) } catch {
      if error.errno == ENOENT || error.errno == ENOTDIR { throw .notFound }
      throw .open(error)
    }
    do {
      let st = try Kernel.fileStatus(fd)
      switch st.st_mode & S_IFMT {
      case S_IFREG: break
      case S_IFDIR: throw LoadError.notRegularFile("a directory")
      default: throw LoadError.notRegularFile("a device, socket or pipe")
      }
      do { try Kernel.access(path, X_OK) } catch { throw LoadError.notExecutable }
      let source = try FileSource(fd: fd, size: UInt64(st.st_size))
      do {
        if let line = try ScriptLine(parsing: source.head) {
          Kernel.close(fd)
          return .script(line)
        }
      } catch {
        throw LoadError.script(error)
      }
      let image: Image
      do { image = try Image(parsing: source, minimumAddress: minimumAddress) } catch let e as ELFError {
        throw LoadError.invalid(e)
      } catch let e as SystemCallError {
        throw LoadError.system(e)
      }
      return .program(OpenedProgram(fd: fd, image: image))
    } catch let error as LoadError {
      Kernel.close(fd)
      throw error
    } catch let error as SystemCallError {
      Kernel.close(fd)
      throw .system(error)
    } catch {
      Kernel.close(fd)
      throw .system(SystemCallError("open", errno: EIO))
    }
  }

  /// Opens and validates the ELF program at `path` (a `#!` script is not one).
  public static func open(_ path: [UInt8]) throws(LoadError) -> OpenedProgram {
    switch try openFile(path) {
    case .program(let program): return program
    case .script: throw .invalid(.badMagic(Array("#!".utf8)))
    }
  }

  /// Opens and validates the interpreter a program names, as the kernel's
  /// open_exec and load_elf_interp do: it must exist, be an executable
  /// regular file and a valid x86-64 ELF file, and need no interpreter
  /// itself; and (elfload's rule) be position-independent, as every dynamic
  /// linker is.
  public static func openInterpreter(_ path: String) throws(LoadError) -> OpenedProgram {
    let opened: OpenedProgram
    do { opened = try open(Array(path.utf8)) } catch { throw .interpreter(path: path, error) }
    if let its = opened.image.interpreter {
      Kernel.close(opened.fd)
      throw .nestedInterpreter(path: path, itsInterpreter: its)
    }
    guard opened.image.isPositionIndependent else {
      Kernel.close(opened.fd)
      throw .interpreterNotPositionIndependent(path: path)
    }
    return opened
  }

  /// vm.mmap_min_addr: fixed mappings below it fail.
  static var minimumAddress: UInt64 {
    Kernel.readSmallFile("/proc/sys/vm/mmap_min_addr").flatMap { UInt64($0) } ?? pageSize
  }

  /// Whether the kernel randomises the address space for this process:
  /// kernel.randomize_va_space and the ADDR_NO_RANDOMIZE persona (setarch -R).
  static func randomization() -> Int {
    let addrNoRandomize: UInt64 = 0x0040000
    if Kernel.personality() & addrNoRandomize != 0 { return 0 }
    return Kernel.readSmallFile("/proc/sys/kernel/randomize_va_space").flatMap { Int($0) } ?? 2
  }

  /// Chooses the load bias: 0 for ET_EXEC; for ET_DYN, a hole the kernel's
  /// mmap picks (randomised like the kernel's own choice for a static PIE),
  /// aligned to the largest p_align.
  static func chooseBias(for image: Image) throws(LoadError) -> UInt64 {
    guard image.isPositionIndependent else { return 0 }
    let (low, high) = image.span
    let alignment = image.maximumAlignment
    let size = high - low
    // Reserve size + alignment, keep an aligned window, give it all back: the
    // segments are then mapped into that hole with MAP_FIXED_NOREPLACE.
    let (length, overflow) = size.addingReportingOverflow(alignment - pageSize)
    guard !overflow else {
      throw .noRoom(size: size, alignment: alignment, SystemCallError("mmap", errno: ENOMEM))
    }
    let reservation: UInt64
    do {
      reservation = try Kernel.map(
        0, length, [], flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE)
    } catch {
      throw .noRoom(size: size, alignment: alignment, error)
    }
    Kernel.unmap(reservation, length)
    let start = (reservation + alignment - 1) & ~(alignment - 1)
    return start &- low
  }

  /// Follows `#!` lines from `path` as exec_binprm does (up to 5 levels):
  /// the program to load, opened, and its argv. AT_EXECFN and the task's
  /// name stay the path the user gave.
  public static func followScripts(_ path: [UInt8], _ arguments: [[UInt8]]) throws(LoadError) -> (
    [UInt8], [[UInt8]], OpenedProgram
  ) {
    var path = path
    var arguments = arguments
    var depth = 0
    while true {
      let opened: Opened
      do { opened = try openFile(path) } catch {
        throw depth == 0 ? error : .scriptInterpreter(path: String(decoding: path, as: UTF8.self), error)
      }
      switch opened {
      case .program(let program):
        return (path, arguments, program)
      case .script(let line):
        if depth == 5 { throw .script(.tooDeep) }
        arguments = line.arguments(script: path, original: arguments)
        path = line.interpreter
        depth += 1
      }
    }
  }

  /// The load bias of a PIE that has an interpreter, as load_elf_binary
  /// chooses it: ELF_ET_DYN_BASE, plus arch_mmap_rnd() (mmap_rnd_bits of
  /// random pages) when randomising, aligned to the largest p_align, minus
  /// the first PT_LOAD's page.
  static func dynamicProgramBias(for image: Image, randomize: Int) -> UInt64 {
    var base = LoadPlan.dynamicBase
    if randomize > 0 {
      let bits = Kernel.readSmallFile("/proc/sys/vm/mmap_rnd_bits").flatMap { UInt64($0) } ?? 28
      base += Kernel.random(below: 1 << min(bits, 32)) * pageSize
    }
    base &= ~(image.maximumAlignment - 1)
    let first = image.programHeaders[image.loadIndexes[0]].vaddr
    return pageStart(base &- first)
  }

  /// Loads the program and jumps to it. Returns only by throwing, before
  /// anything of the program is mapped or after a mapping failed (the caller
  /// then exits: the process is not reused).
  public static func run(_ request: LaunchRequest) throws(LoadError) -> Never {
    let log: (String) -> Void =
      request.verbose
      ? { message in
        let line = "elfload: \(message)\n"
        _ = line.utf8CString.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count - 1) }
      } : { _ in }
    guard let original = OriginalStack.read() else { throw .noStartupStack }
    // elfload's own frames may need more stack than the program's limit
    // allows: a constructor raised the soft limit (elfload_program_stack_limit);
    // the program gets its own back just before the jump.
    let stackResource = Int32(RLIMIT_STACK.rawValue)
    let raisedFrom = elfload_program_stack_limit()
    let stackLimit = Kernel.softLimit(stackResource)
    let (_, arguments, program) = try followScripts(request.path, request.arguments)
    var request = request
    request.arguments = arguments
    let image = program.image
    // load_elf_binary opens the interpreter before it maps anything.
    let interpreter = try image.interpreter.map { path throws(LoadError) in try openInterpreter(path) }
    let randomize = randomization()

    let bias =
      image.isPositionIndependent && interpreter != nil
      ? dynamicProgramBias(for: image, randomize: randomize) : try chooseBias(for: image)
    guard LoadPlan.fits(image, bias: bias) else {
      throw .noRoom(
        size: image.span.high - image.span.low, alignment: image.maximumAlignment,
        SystemCallError("mmap", errno: ENOMEM))
    }
    let plan = LoadPlan(image: image, bias: bias)
    let kind =
      interpreter != nil
      ? (image.isPositionIndependent ? "dynamically linked PIE" : "dynamically linked executable")
      : (image.isPositionIndependent ? "static PIE" : "static executable")
    log("\(kind), base \(hex(plan.extent.start)), entry \(hex(plan.entry))")
    var loads = [(plan: plan, fd: program.fd)]
    var interpreterPlan: LoadPlan?
    if let interpreter {
      // Mapped after the program, where mmap puts it, as load_elf_interp does.
      try EagerPolicy.reserveProgramRange(plan)
      let interpreterBias = try chooseBias(for: interpreter.image)
      EagerPolicy.releaseProgramRange(plan)
      let interpreterPlanned = LoadPlan(image: interpreter.image, bias: interpreterBias)
      log(
        "interpreter \(image.interpreter ?? ""), base \(hex(interpreterPlanned.extent.start)), entry \(hex(interpreterPlanned.entry))"
      )
      loads.append((interpreterPlanned, interpreter.fd))
      interpreterPlan = interpreterPlanned
    }
    switch request.mode {
    case .eager: for load in loads { try EagerPolicy.install(load.plan, fd: load.fd, log: log) }
    case .demand: try DemandPolicy.install(loads, prefetch: 0, log: log)
    case .hybrid: try DemandPolicy.install(loads, prefetch: request.prefetch, log: log)
    }
    if let shared = request.shared {
      if request.mode == .eager {
        // Eager makes every page accessible at once.
        shared.counters.pointee.pages_mapped = loads.reduce(0) { sum, load in
          load.plan.segments.reduce(sum) { $0 + $1.filePages.pageCount + $1.anonymousPages.pageCount }
        }
      } else {
        elfload_demand_share(shared.counters, shared.trace)
        if request.mode == .hybrid {
          // Which prefetched pages the program never touched is only known
          // when it has ended: a watcher sharing the address space counts them.
          let watcher = elfload_demand_watch()
          if watcher < 0 { log("no watcher for unused prefetched pages (errno \(-watcher))") }
        }
      }
    }
    // The program's descriptor stays open until the jump, for /proc/self/exe.
    for load in loads.dropFirst() { Kernel.close(load.fd) }

    // brk as load_elf_binary leaves it: after the bss plus a page, or at
    // ELF_ET_DYN_BASE for a static PIE, then randomize_page(brk, 1 GiB).
    var brk = plan.brkBase
    if randomize > 1 {
      if plan.brkGapPage { brk += pageSize }
      brk += Kernel.random(below: (1 << 30) / pageSize) * pageSize
    }

    let stack = buildStack(
      request: request, plan: plan, interpreterBase: interpreterPlan?.bias ?? 0, original: original,
      randomize: randomize)
    log("stack \(hex(stack.base))-\(hex(stack.stackTop)), rsp \(hex(stack.stackPointer)), brk \(hex(brk))")

    if plan.executableStack {
      // PT_GNU_STACK asked for PF_X: the whole stack mapping becomes executable.
      let PROT_GROWSDOWN: Int32 = 0x0100_0000
      do {
        try Kernel.protect(pageStart(stack.stackTop - 1), pageSize, 7 | PROT_GROWSDOWN)
      } catch {
        log("could not make the stack executable (\(error)): the program asked for it in PT_GNU_STACK")
      }
    }
    setProcessName(request.path)
    // The loader's own heap, found before PR_SET_MM_MAP moves start_brk to the program's.
    let loaderHeap = Kernel.heap()
    var memoryMap: [UInt64]?
    do {
      memoryMap = try setMemoryMap(plan: plan, stack: stack, brk: brk)
    } catch {
      log(
        "prctl(PR_SET_MM_MAP) refused (\(error)): /proc/self/cmdline, environ and auxv show the loader's, and brk stays the loader's"
      )
    }
    let rseq = elfload_unregister_rseq()
    if rseq != 0 {
      log("could not unregister rseq (errno \(-rseq)): the program's C library will run without it")
    }

    try jump(
      mode: request.mode, programFD: program.fd, entryPoint: interpreterPlan?.entry ?? plan.entry,
      stack: stack,
      memoryMap: memoryMap ?? [], loaderHeap: loaderHeap, stackLimit: stackLimit, raisedFrom: raisedFrom,
      log: log)
  }

  /// Leaves: decides what of the loader goes (its whole image and heap; under
  /// demand paging the handler's pages stay), installs the fault handler,
  /// gives the program its RLIMIT_STACK back, and hands over to the
  /// trampoline. Returns only by throwing, if the trampoline cannot be mapped.
  static func jump(
    mode: PagingMode, programFD: Int32, entryPoint: UInt64, stack: InitialStack, memoryMap map: [UInt64],
    loaderHeap: AddressRange?, stackLimit: UInt64, raisedFrom: UInt64, log: (String) -> Void
  ) throws(LoadError) -> Never {
    // The stack pages handed back below the new image: as far as the loader
    // may have used them.
    let limit = min(stackLimit, 64 << 20)
    // What of the loader goes: its whole image and heap, except, under
    // demand paging, the handler's pages (see demand.c).
    var keep: [UInt64] = []
    if mode != .eager {
      var ranges = [UInt64](repeating: 0, count: 9)
      elfload_handler_ranges(&ranges)
      for i in 0..<3 where ranges[3 * i + 1] > ranges[3 * i] {
        keep += [ranges[3 * i], ranges[3 * i + 1] - ranges[3 * i], ranges[3 * i + 2]]
      }
    }
    let loaderImage = AddressRange(
      pageStart(loaderRange.start), pageAlign(loaderRange.end) ?? loaderRange.end)
    let unmap = loaderMemory(image: loaderImage, heap: loaderHeap, keep: keep)
    log("at the jump: unmap \(unmap.count / 2) ranges of elfload's own memory, keep \(keep.count / 3)")
    let vectorState = elfload_vector_state()
    if mode != .eager { try DemandPolicy.activate() }
    if raisedFrom != 0 { Kernel.setSoftLimit(Int32(RLIMIT_STACK.rawValue), raisedFrom) }
    let failure: Int = unmap.withUnsafeBufferPointer { unmapPairs in
      keep.withUnsafeBufferPointer { keepTriples in
        map.withUnsafeBufferPointer { mapWords in
          stack.image.withUnsafeBytes { image in
            var entry = elfload_entry(
              image: image.baseAddress, image_length: UInt64(image.count), stack_top: stack.stackTop,
              stack_pointer: stack.stackPointer, entry: entryPoint,
              scrub_low: pageStart(stack.stackTop - limit),
              vector_state: vectorState, exe_fd: programFD, mm_map: map.isEmpty ? nil : mapWords.baseAddress,
              unmap: unmapPairs.baseAddress, unmap_count: UInt64(unmapPairs.count / 2),
              keep: keepTriples.baseAddress, keep_count: UInt64(keepTriples.count / 3))
            return elfload_enter(&entry)
          }
        }
      }
    }
    throw .system(SystemCallError("mmap (the trampoline)", errno: Int32(-failure)))
  }

  /// (start, length) pairs: the loader's image and heap, less the pages in
  /// `keep` ((start, length, protection) triples).
  static func loaderMemory(image: AddressRange, heap: AddressRange?, keep: [UInt64]) -> [UInt64] {
    var pieces = [image]
    for i in stride(from: 0, to: keep.count, by: 3) {
      let kept = AddressRange(keep[i], keep[i] + keep[i + 1])
      pieces = pieces.flatMap { piece -> [AddressRange] in
        guard kept.start < piece.end, kept.end > piece.start else { return [piece] }
        return [AddressRange(piece.start, kept.start), AddressRange(kept.end, piece.end)].filter {
          !$0.isEmpty
        }
      }
    }
    if let heap, !heap.isEmpty { pieces.append(heap) }
    return pieces.flatMap { [$0.start, $0.count] }
  }

  /// The kernel's create_elf_tables for this program, reusing the loader's
  /// stack (its top is just past the AT_EXECFN string the kernel gave us).
  static func buildStack(
    request: LaunchRequest, plan: LoadPlan, interpreterBase: UInt64, original: OriginalStack, randomize: Int
  ) -> InitialStack {
    let auxv = original.auxv.compactMap { entry -> AuxvEntry? in
      switch entry.tag {
      case .phdr: return AuxvEntry(.phdr, plan.programHeaderAddress)
      case .phent: return AuxvEntry(.phent, UInt64(ProgramHeader.size))
      case .phnum: return AuxvEntry(.phnum, UInt64(plan.programHeaderCount))
      case .base: return AuxvEntry(.base, interpreterBase)
      case .entry: return AuxvEntry(.entry, plan.entry)
      case .execfd: return nil  // binfmt_misc's, not ours to pass on
      default: return entry  // AT_EXECFN, AT_PLATFORM, AT_RANDOM: InitialStack fills them in
      }
    }
    let gap = randomize > 0 ? Kernel.random(below: 8192) : 0
    return InitialStack(
      arguments: request.arguments, environment: request.environment, execfn: request.path,
      platform: original.platform, randomBytes: Kernel.randomBytes(16), auxv: auxv,
      stackTop: original.stackTop, randomGap: gap)
  }

  /// PR_SET_NAME: the kernel names the task after the file's base name.
  static func setProcessName(_ path: [UInt8]) {
    let base = path.split(separator: UInt8(ascii: "/")).last.map(Array.init) ?? path
    var name = [UInt8](base.prefix(15)) + [0]
    name.withUnsafeMutableBufferPointer {
      _ = try? Kernel.prctl(PR_SET_NAME, Int(bitPattern: $0.baseAddress))
    }
  }

  /// PR_SET_MM_MAP: start_brk/brk, arg/env bounds and the saved auxv, so that
  /// sbrk, /proc/self/cmdline, environ and auxv all look native.
  /// Returns the map it set (its auxv words excepted), for the jump to set
  /// again with the program as /proc/self/exe.
  @discardableResult
  static func setMemoryMap(plan: LoadPlan, stack: InitialStack, brk: UInt64) throws(SystemCallError)
    -> [UInt64]
  {
    var words = stack.auxv.flatMap { [$0.tag.rawValue, $0.value] }
    var map = [UInt64](repeating: 0, count: 13)
    map[0] = plan.startCode
    map[1] = plan.endCode
    map[2] = plan.startData
    map[3] = plan.endData
    map[4] = brk
    map[5] = brk
    map[6] = stack.stackPointer
    map[7] = stack.argumentsRange.start
    map[8] = stack.argumentsRange.end
    map[9] = stack.environmentRange.start
    map[10] = stack.environmentRange.end
    let result: Int = words.withUnsafeMutableBufferPointer { auxvWords in
      map[11] = UInt64(UInt(bitPattern: auxvWords.baseAddress))
      map[12] = UInt64(auxvWords.count * 8) | UInt64(UInt32.max) << 32  // auxv_size, exe_fd = -1
      return map.withUnsafeMutableBytes { bytes in
        elfload_syscall6(
          Int(SYS_prctl), Int(PR_SET_MM), Int(PR_SET_MM_MAP), Int(bitPattern: bytes.baseAddress),
          bytes.count, 0, 0)
      }
    }
    if result < 0 { throw SystemCallError("prctl(PR_SET_MM_MAP)", errno: Int32(-result)) }
    return map
  }
}
