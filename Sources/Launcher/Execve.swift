// execve in user space: load_elf_binary's steps, named as fs/binfmt_elf.c names them.
import LauncherRuntime
import NoRuntimeZone

/// What to run and how.
struct ExecRequest {
  /// The program's path as given (it becomes AT_EXECFN); /dev/fd/N for a descriptor.
  var path: [UInt8]
  /// The program is the file open on this descriptor (--fd N, or `-`'s memfd), as fexecve runs it.
  var descriptor: FileDescriptor?
  /// Open the descriptor's file again (--fd: the caller's descriptor stays open, as fexecve leaves it).
  var reopen = false
  /// argv, argv[0] included, byte for byte.
  var arguments: [[UInt8]]
  var environment: [[UInt8]]
  var policy: PagingPolicy
  var pager: Pager?
  var serverPlacement: ServerPlacement
  /// --cold: drop the program's pages from the page cache first.
  var cold = false
  /// Counters and trace shared with a supervising parent (--stats, --trace).
  var shared: SharedMeasurement?
  var log: Log
}

enum Execve {
  /// load_elf_binary, from user space. Returns only by throwing, before anything of the
  /// program is mapped or after a mapping failed (the caller then exits).
  static func run(_ request: ExecRequest, startup: StartupStack, stackLimit: StackLimit) throws(LoadError) -> Never {
    let log = request.log
    log("elfload's own image at \(LoaderImage.range.map { "\($0)" } ?? "?")")
    guard let stackTop = startup.stackTop else { throw .noStartupStack }
    let (programPath, arguments, program) =
      if let fd = request.descriptor {
        try OpenExec.followScripts(descriptor: fd, reopen: request.reopen, request.arguments)
      } else {
        try OpenExec.followScripts(request.path, request.arguments)
      }
    // load_elf_binary opens the interpreter before it maps anything.
    var interpreter: OpenedProgram?
    if let path = program.image.interpreter { interpreter = try OpenExec.openInterpreter(path) }
    if request.cold {
      Cold.evict(program.fd, path: programPath, log: log)
      if let interpreter, let path = program.image.interpreter { Cold.evict(interpreter.fd, path: path, log: log) }
    }
    // --mode replay: the profile is read (and matched to the files) before
    // anything is placed; one recorded for other files means demand.
    var policy = request.policy
    var replay: Replay?
    if case .replay(let profile) = policy {
      replay = try Replay.load(profile, files: [program.fd] + (interpreter.map { [$0.fd] } ?? []))
      if let replay {
        request.shared?.replaying(replay.profile)
        if let missed = Profile.misses(replay.profile.pager) { log("--profile: \(missed)") }
      } else {
        policy = .demand
        request.shared?.replayIgnored()
      }
    }
    let randomize = randomization()
    var random = Randomness()
    // Each image's range is held from its placement until it is mapped (Eager.hold says why).
    let (plan, programHeld) = try planProgram(
      program.image, hasInterpreter: interpreter != nil, randomize: randomize, &random)
    var held = (programHeld ?? Eager.hold(plan)).map { [$0] } ?? []
    log("\(kind(program.image, interpreter != nil)), base \(hex(plan.extent.start)), entry \(hex(plan.entry))")
    var loads = [ImageLoad(plan: plan, fd: program.fd)]
    var interpreterPlan: LoadPlan?
    // The point of no return: from here on the program's pages are mapped (see elfMapFailed).
    if let interpreter {
      let planned: LoadPlan
      let interpreterHeld: AddressRange?
      do {
        (planned, interpreterHeld) = try loadElfInterp(interpreter.image, besides: plan, programHeld: !held.isEmpty)
      } catch { throw elfMapFailed(error, plan, log: log) }
      if let range = interpreterHeld { held.append(range) }
      log("interpreter \(text(program.image.interpreter ?? [])), base \(hex(planned.extent.start)), entry \(hex(planned.entry))")
      loads.append(ImageLoad(plan: planned, fd: interpreter.fd))
      interpreterPlan = planned
    }
    let faults = try FaultPath.choose(policy, asked: request.pager, log: log)
    elfload_uffd_set_placement(
      request.serverPlacement == .single ? Int32(ELFLOAD_UFFD_PLACEMENT_SINGLE) : Int32(ELFLOAD_UFFD_PLACEMENT_WORKERS))
    let replayed: Replayed
    do {
      replayed = try policy.install(loads, held: held, faults: faults, shared: request.shared, replay: replay, log: log)
    } catch { throw elfMapFailed(error, plan, log: log) }
    // After the mapping: what it allocates must not take the hole chosen for the interpreter.
    TraceSegments.record(0, program.image, bias: plan.bias, path: programPath)
    if let interpreter, let interpreterPlan {
      TraceSegments.record(1, interpreter.image, bias: interpreterPlan.bias, path: program.image.interpreter ?? [])
    }
    TraceSegments.release()
    request.shared?.attach(
      faults, policy, loads, paths: [programPath] + (program.image.interpreter.map { [$0] } ?? []), replayed: replayed, log: log)
    // The program's descriptor stays open until the jump, for /proc/self/exe.
    for load in loads.dropFirst() { Kernel.close(load.fd) }

    let brk = setBrk(plan, randomize: randomize, &random)
    let stack = createElfTables(
      arguments: arguments, request: request, plan: plan, interpreterBase: interpreterPlan?.bias ?? 0,
      startup: startup, stackTop: stackTop, randomize: randomize, &random)
    log("stack \(hex(stack.base))-\(hex(stack.stackTop)), rsp \(hex(stack.stackPointer)), brk \(hex(brk))")
    // execveat(fd, "", AT_EMPTY_PATH) names the task after the file it finally ran (Linux 6.14).
    let taskName = request.descriptor.flatMap { _ in OpenExec.dentryName(program.fd) } ?? baseName(request.path)
    let memoryMap = setProcessState(request: request, plan: plan, stack: stack, brk: brk, taskName: taskName)
    try startThread(
      faults: faults, program: program.fd, entry: interpreterPlan?.entry ?? plan.entry, stack: stack,
      memoryMap: memoryMap, stackLimit: stackLimit, shared: request.shared, policy: policy, log: log)
  }

  /// What a failed mapping of the program becomes. execve maps segments after its point of
  /// no return (begin_new_exec), so when its mmap refuses one the process is killed by SIGSEGV
  /// (bprm_execve's force_fatal_sig). elfload asks the same mmap and does the same where the
  /// answer is about the program's addresses: below vm.mmap_min_addr only CAP_SYS_RAWIO may
  /// map (cap_mmap_addr's EPERM; an LSM's EACCES), so a program at address 0 runs as root and
  /// dies unprivileged, natively and here alike. Any other failure (elfload's own image in the
  /// way, want of memory) stays a one-line refusal: elfload's own, or worth naming.
  static func elfMapFailed(_ error: LoadError, _ plan: LoadPlan, log: Log) -> LoadError {
    let failed: SystemCallError
    var start = plan.extent.start
    switch error {
    case .mapping(_, let range, let e), .bss(_, _, let range, let e):
      failed = e
      start = range.start
    case .system(let e): failed = e
    default: return error
    }
    guard failed.errno == .EPERM || failed.errno == .EACCES, start < OpenExec.minimumAddress else { return error }
    // (A constant: interpolating the error here would cost the launcher 1.7 KB.)
    log("a segment below vm.mmap_min_addr was refused by mmap (EPERM or EACCES: no CAP_SYS_RAWIO): the kernel kills the process here, by SIGSEGV after execve's point of no return")
    forceFatalSignal(Signal.segv)
  }

  /// The kernel's force_fatal_sig: dies by `signal` whatever its disposition and mask were,
  /// as the supervisor dies like its child (a wait status of that death is the signal's number).
  static func forceFatalSignal(_ signal: Int32) -> Never { Supervisor.exitLike(signal) }

  /// The file's base name: what execve names the task after.
  static func baseName(_ path: [UInt8]) -> [UInt8] {
    path.split(separator: UInt8(ascii: "/")).last.map { Array($0) } ?? path
  }

  static func kind(_ image: Image, _ hasInterpreter: Bool) -> String {
    hasInterpreter
      ? (image.isPositionIndependent ? "dynamically linked PIE" : "dynamically linked executable")
      : (image.isPositionIndependent ? "static PIE" : "static executable")
  }

  /// Whether the kernel randomises the address space for this process:
  /// kernel.randomize_va_space and the ADDR_NO_RANDOMIZE persona (setarch -R).
  static func randomization() -> Int {
    if Kernel.personality() & addrNoRandomize != 0 { return 0 }
    return Int(Kernel.readNumber(Array("/proc/sys/kernel/randomize_va_space".utf8)) ?? 2)
  }

  /// Where the program goes: ET_EXEC at its addresses; a PIE with an
  /// interpreter at ELF_ET_DYN_BASE plus a random offset; a static PIE where
  /// mmap puts it (load_elf_binary's load_bias choices).
  static func planProgram(_ image: Image, hasInterpreter: Bool, randomize: Int, _ random: inout Randomness)
    throws(LoadError) -> (LoadPlan, held: AddressRange?)
  {
    let (bias, held) =
      image.isPositionIndependent && hasInterpreter
      ? (dynamicProgramBias(for: image, randomize: randomize, &random), nil) : try chooseBias(for: image)
    guard LoadPlan.fits(image, bias: bias) else {
      throw .noRoom(
        size: image.span.high - image.span.low, alignment: image.maximumAlignment,
        SystemCallError("mmap", errno: .ENOMEM))
    }
    return (LoadPlan(image: image, bias: bias), held)
  }

  /// load_elf_interp: the interpreter goes where mmap puts it, after the
  /// program (whose range is held meanwhile, so that mmap cannot choose it).
  /// Returns the interpreter's plan and its range, held (chooseBias).
  static func loadElfInterp(_ image: Image, besides program: LoadPlan, programHeld: Bool) throws(LoadError)
    -> (LoadPlan, held: AddressRange?)
  {
    if !programHeld { try Eager.reserve(program) }
    defer { if !programHeld { Eager.release([program.extent]) } }
    let (bias, held) = try chooseBias(for: image)
    return (LoadPlan(image: image, bias: bias), held)
  }

  /// The load bias: 0 for ET_EXEC; for ET_DYN, a hole the kernel's mmap
  /// picks (randomised like the kernel's own choice for a static PIE),
  /// aligned to the largest p_align.
  static func chooseBias(for image: Image) throws(LoadError) -> (bias: UInt64, held: AddressRange?) {
    guard image.isPositionIndependent else { return (0, nil) }
    let (low, high) = image.span
    let alignment = image.maximumAlignment
    let size = high - low
    // Reserve size + alignment and keep the aligned window in it as the
    // image's placeholder (Eager.hold), the rest given back: the segments are
    // mapped into that window with MAP_FIXED_NOREPLACE once it is released.
    let (length, overflow) = size.addingReportingOverflow(alignment - pageSize)
    guard !overflow else { throw .noRoom(size: size, alignment: alignment, SystemCallError("mmap", errno: .ENOMEM)) }
    let reservation: UInt64
    do {
      reservation = try Kernel.map(0, length, [], flags: [.private, .anonymous, .noReserve])
    } catch {
      throw .noRoom(size: size, alignment: alignment, error)
    }
    let start = (reservation + alignment - 1) & ~(alignment - 1)
    if start > reservation { Kernel.unmap(reservation, start - reservation) }
    if reservation + length > start + size { Kernel.unmap(start + size, reservation + length - (start + size)) }
    return (start &- low, AddressRange(start, start + size))
  }

  /// The load bias of a PIE that has an interpreter, as load_elf_binary
  /// chooses it: ELF_ET_DYN_BASE, plus arch_mmap_rnd() (mmap_rnd_bits of
  /// random pages) when randomising, aligned to the largest p_align, minus
  /// the first PT_LOAD's page.
  static func dynamicProgramBias(for image: Image, randomize: Int, _ random: inout Randomness) -> UInt64 {
    var base = LoadPlan.dynamicBase
    if randomize > 0 {
      let bits = Kernel.readNumber(Array("/proc/sys/vm/mmap_rnd_bits".utf8)) ?? 28
      base += random.below(1 << min(bits, 32)) * pageSize
    }
    base &= ~(image.maximumAlignment - 1)
    let first = image.programHeaders[image.loadIndexes[0]].vaddr
    return pageStart(base &- first)
  }

  /// brk as load_elf_binary leaves it: after the bss plus a page, or at
  /// ELF_ET_DYN_BASE for a static PIE, then randomize_page(brk, 1 GiB).
  static func setBrk(_ plan: LoadPlan, randomize: Int, _ random: inout Randomness) -> UInt64 {
    var brk = plan.brkBase
    if randomize > 1 {
      if plan.brkGapPage { brk += pageSize }
      brk += random.below((1 << 30) / pageSize) * pageSize
    }
    return brk
  }

  /// The kernel's create_elf_tables for this program, on elfload's own stack
  /// (its top is just past the AT_EXECFN string the kernel gave elfload).
  static func createElfTables(
    arguments: [[UInt8]], request: ExecRequest, plan: LoadPlan, interpreterBase: UInt64, startup: StartupStack,
    stackTop: UInt64, randomize: Int, _ random: inout Randomness
  ) -> InitialStack {
    let auxv = startup.auxv.compactMap { entry -> AuxvEntry? in
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
    let gap = randomize > 0 ? random.below(8192) : 0
    return InitialStack(
      arguments: arguments, environment: request.environment, execfn: request.path,
      platform: startup.platform, randomBytes: random.take(16), auxv: auxv, stackTop: stackTop,
      randomGap: gap)
  }

  /// What else execve leaves behind: the task's name (PR_SET_NAME, after the
  /// file's base name), an executable stack when PT_GNU_STACK asks, and
  /// PR_SET_MM_MAP's start_brk/brk, arg/env bounds and saved auxv, so that
  /// sbrk, /proc/self/cmdline, environ and auxv look native. Returns the map
  /// it set, for the jump to set again with the program as /proc/self/exe.
  static func setProcessState(request: ExecRequest, plan: LoadPlan, stack: InitialStack, brk: UInt64, taskName: [UInt8])
    -> elfload_mm_map?
  {
    let log = request.log
    if plan.executableStack {
      do {
        try Kernel.protect(pageStart(stack.stackTop - 1), pageSize, [.read, .write, .execute, .growsDown])
      } catch {
        log("could not make the stack executable (\(error)): the program asked for it in PT_GNU_STACK")
      }
    }
    _ = Kernel.withCString(Array(taskName.prefix(15))) { try? Kernel.prctl(PrctlOption.setName, $0) }

    var words = stack.auxv.flatMap { [$0.tag.rawValue, $0.value] }
    var map = elfload_mm_map(
      start_code: plan.startCode, end_code: plan.endCode, start_data: plan.startData, end_data: plan.endData,
      start_brk: brk, brk: brk, start_stack: stack.stackPointer, arg_start: stack.argumentsRange.start,
      arg_end: stack.argumentsRange.end, env_start: stack.environmentRange.start, env_end: stack.environmentRange.end,
      auxv: 0, auxv_size: UInt32(words.count * 8), exe_fd: UInt32.max)
    let result = words.withUnsafeMutableBufferPointer { auxv in
      map.auxv = UInt64(UInt(bitPattern: auxv.baseAddress))
      return withUnsafeBytes(of: &map) { bytes in
        Kernel.syscall(
          .prctl, Int(PrctlOption.setMM), Int(PrctlOption.setMMMap), Int(bitPattern: bytes.baseAddress), bytes.count)
      }
    }
    if result < 0 {
      log(
        "prctl(PR_SET_MM_MAP) refused (\(Errno(rawValue: Int32(-result)))): /proc/self/cmdline, environ and auxv show the loader's, and brk stays the loader's")
      return nil
    }
    return map
  }

  /// start_thread: leaves. Decides what of the loader goes (its whole image
  /// and allocated memory; under demand paging the handler's pages stay),
  /// installs the fault handler, gives the program its RLIMIT_STACK back, and
  /// hands over to the trampoline. Returns only by throwing, if the
  /// trampoline cannot be mapped.
  static func startThread(
    faults: FaultPath, program: FileDescriptor, entry: UInt64, stack: InitialStack, memoryMap: elfload_mm_map?,
    stackLimit: StackLimit, shared: SharedMeasurement?, policy: PagingPolicy, log: Log
  ) throws(LoadError) -> Never {
    // The stack pages handed back below the new image: as far as the loader may have used them.
    let scrubLow = pageStart(stack.stackTop - min(stackLimit.current, 64 << 20))
    var keep: [UInt64] = []
    // The handler's sections hold the SIGSEGV handler and the watcher (--residency, hybrid's unused count).
    if faults.needsHandler || shared?.watches == true {
      var ranges = [UInt64](repeating: 0, count: 9)
      elfload_handler_ranges(&ranges)
      for i in 0..<3 where ranges[3 * i + 1] > ranges[3 * i] {
        keep += [ranges[3 * i], ranges[3 * i + 1] - ranges[3 * i], ranges[3 * i + 2]]
      }
    }
    log("at the jump: peak RSS so far \(peakResidentKiB().map { "\($0) KiB" } ?? "unknown"); unmap elfload's own memory, keep \(keep.count / 3) ranges of it")
    let vectorState = elfload_vector_state()
    if faults.needsHandler && shared == nil { log(KnownLimits.beforehand(policy)) }
    if faults.needsHandler { try Demand.activate() }
    stackLimit.restore()
    var map = memoryMap ?? elfload_mm_map()
    // Last, so that nothing is allocated after the list of what to unmap is made.
    let image = AddressRange(pageStart(elfload_image_start()), pageAlign(elfload_image_end()) ?? elfload_image_end())
    let unmap = allOfTheLoader(image: image, keep: keep)
    let failure = unmap.withUnsafeBufferPointer { unmapPairs in
      keep.withUnsafeBufferPointer { keepTriples in
        stack.image.withUnsafeBytes { bytes in
          withUnsafePointer(to: &map) { mapPointer in
            var jump = elfload_entry(
              image: bytes.baseAddress, image_length: UInt64(bytes.count), stack_top: stack.stackTop,
              stack_pointer: stack.stackPointer, entry: entry, scrub_low: scrubLow, vector_state: vectorState,
              exe_fd: program.rawValue, mm_map: memoryMap == nil ? nil : mapPointer,
              unmap: unmapPairs.baseAddress, unmap_count: UInt64(unmapPairs.count / 2),
              keep: keepTriples.baseAddress, keep_count: UInt64(keepTriples.count / 3))
            // What elfload cost the child, for the parent to subtract.
            shared?.recordJump()
            return elfload_enter(&jump)
          }
        }
      }
    }
    throw .system(SystemCallError("mmap (the trampoline)", errno: Errno(rawValue: Int32(-failure))))
  }

  /// VmHWM from /proc/self/status (for --verbose).
  static func peakResidentKiB() -> UInt64? {
    guard let status = Kernel.readWholeFile(Array("/proc/self/status".utf8)) else { return nil }
    for line in status.split(separator: 10) where line.starts(with: Array("VmHWM:".utf8)) {
      let digits = line.filter { $0 >= 48 && $0 <= 57 }
      return UInt64(text(Array(digits)))
    }
    return nil
  }

  /// The loader's image and every mapping its allocator holds, less `keep`. From here on
  /// nothing the allocator holds is unmapped (elfload_allocator_freeze): a block freed and
  /// unmapped now would leave a hole that the trampoline's own mappings could take, and then
  /// unmap. The list is built again until building it took no new mapping.
  static func allOfTheLoader(image: AddressRange, keep: [UInt64]) -> [UInt64] {
    elfload_allocator_freeze()
    var unmap: [UInt64] = []
    while true {
      let count = Int(elfload_allocator_chunks(nil, 0))
      var pairs = [UInt64](repeating: 0, count: 2 * count)
      _ = pairs.withUnsafeMutableBufferPointer { elfload_allocator_chunks($0.baseAddress, UInt64(count)) }
      let chunks = (0..<count).map { AddressRange(pairs[2 * $0], pairs[2 * $0] + pairs[2 * $0 + 1]) }
      unmap = loaderMemory(image: image, allocated: chunks, keep: keep)
      if elfload_allocator_chunks(nil, 0) == UInt64(count) { return unmap }
    }
  }
}
