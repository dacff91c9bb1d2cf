// --stats, --stats-json and --trace: a supervising parent that runs the program in a child and
// reports what it cost. Without these options elfload stays a single process, like execve.
import NoRuntimeZone

/// What the child records at the jump, for the parent to tell the program's
/// share of the run from elfload's own start-up.
struct JumpRecord {
  /// 1 once the child reached the jump.
  var reached: UInt64 = 0
  /// CLOCK_MONOTONIC at the jump.
  var nanoseconds: UInt64 = 0
  /// The child's own page faults and CPU time up to the jump (getrusage(RUSAGE_SELF)).
  var minorFaults: UInt64 = 0
  var majorFaults: UInt64 = 0
  var userMicroseconds: UInt64 = 0
  var systemMicroseconds: UInt64 = 0
  /// Pages of the PT_LOAD segments set up (program and interpreter), whatever the policy.
  var segmentPages: UInt64 = 0
  /// 1 when --mode replay's profile was recorded for other files and the run was demand.
  var replayIgnored: UInt64 = 0
  /// The pager that recorded the replayed profile: 0 not said (version 1), else a FaultPath kind.
  var profilePager: UInt64 = 0
}

/// For `elfload record`: which files the child loaded (program, interpreter),
/// written at load time, read by the parent for the profile's image lines.
struct RecordedImages {
  static let pathCapacity = 4096
  /// Per image: device, inode, size, mtime seconds, mtime nanoseconds, path length, then the path.
  static let stride = 64 + pathCapacity
  static let size = 64 + 2 * stride
  let base: UnsafeMutableRawPointer

  func store(_ identities: [FileIdentity], _ paths: [[UInt8]]) {
    let count = min(identities.count, 2)
    base.storeBytes(of: UInt64(count), as: UInt64.self)
    for i in 0..<count {
      let at = base + 64 + i * Self.stride
      let id = identities[i]
      let path = paths[i].prefix(Self.pathCapacity)
      for (k, word) in [id.device, id.inode, id.size, UInt64(bitPattern: id.modifiedSeconds),
                        UInt64(bitPattern: id.modifiedNanoseconds), UInt64(path.count)].enumerated() {
        at.storeBytes(of: word, toByteOffset: 8 * k, as: UInt64.self)
      }
      for (k, byte) in path.enumerated() { at.storeBytes(of: byte, toByteOffset: 64 + k, as: UInt8.self) }
    }
  }

  var images: [ProfileImage] {
    let count = min(Int(base.load(as: UInt64.self)), 2)
    return (0..<count).map { i in
      let at = base + 64 + i * Self.stride
      func word(_ k: Int) -> UInt64 { at.load(fromByteOffset: 8 * k, as: UInt64.self) }
      let identity = FileIdentity(
        device: word(0), inode: word(1), size: word(2), modifiedSeconds: Int64(bitPattern: word(3)),
        modifiedNanoseconds: Int64(bitPattern: word(4)))
      let length = min(Int(word(5)), Self.pathCapacity)
      return ProfileImage(identity: identity, path: (0..<length).map { at.load(fromByteOffset: 64 + $0, as: UInt8.self) })
    }
  }
}

/// The memory the child's pager writes and the parent reads.
struct SharedMeasurement {
  let counters: UnsafeMutablePointer<elfload_demand_counters>
  let jump: UnsafeMutablePointer<JumpRecord>
  /// nil when not tracing.
  let trace: UnsafeMutablePointer<elfload_trace>?
  /// nil without --residency.
  let residency: UnsafeMutablePointer<elfload_residency>?
  /// nil unless recording a profile.
  let recorded: RecordedImages?

  /// Records the pager, points the signal pager's counters (and trace) here --
  /// the userfaultfd server was given them when it started -- and counts the
  /// segments' pages (the same under every policy and pager).
  func attach(_ faults: FaultPath, _ policy: PagingPolicy, _ loads: [ImageLoad], paths: [[UInt8]], replayed: Replayed, log: Log) {
    counters.pointee.pager = faults.kind
    counters.pointee.pages_replayed = replayed.pages
    counters.pointee.replay_ns = replayed.nanoseconds
    recorded?.store(loads.map { load in (try? Kernel.status(load.fd)).map { FileIdentity($0) } ?? FileIdentity(device: 0, inode: 0, size: 0, modifiedSeconds: 0, modifiedNanoseconds: 0) }, paths)
    jump.pointee.segmentPages = loads.reduce(0) { sum, load in
      load.plan.segments.reduce(sum) { $0 + $1.filePages.pageCount + $1.anonymousPages.pageCount }
    }
    var unused = false
    if case .signal = faults {
      elfload_demand_share(counters, trace)
      // Which prefetched pages the program never touched is only known
      // when it has ended: a watcher sharing the address space counts them.
      if policy.prefetch > 0 || policy == .predictive { unused = true }
    }
    // So is which pages are resident (--residency): the same watcher, under any policy.
    if unused || residency != nil {
      let watcher = elfload_watch(unused ? 1 : 0, residency)
      if watcher < 0 { log("no watcher for unused prefetched pages or residency (errno \(-watcher))") }
    }
  }

  /// --mode replay's profile was recorded for other files: the run is demand, and the report says so.
  func replayIgnored() { jump.pointee.replayIgnored = 1 }

  /// The pager that recorded the profile being replayed, for the report to say what it missed.
  func replaying(_ profile: Profile) {
    switch profile.pager {
    case .signal: jump.pointee.profilePager = UInt64(ELFLOAD_PAGER_SIGNAL)
    case .uffd: jump.pointee.profilePager = UInt64(ELFLOAD_PAGER_UFFD)
    case nil: jump.pointee.profilePager = 0
    }
  }

  /// Whether a watcher runs after the jump: its code and state (the handler's sections) must stay.
  var watches: Bool { residency != nil }

  /// The last thing before the trampoline: what elfload itself has cost the
  /// child so far. Allocates nothing.
  func recordJump() {
    var usage = elfload_rusage()
    _ = withUnsafeMutableBytes(of: &usage) { Kernel.syscall(.getrusage, 0, Int(bitPattern: $0.baseAddress)) }
    jump.pointee.minorFaults = UInt64(usage.minflt)
    jump.pointee.majorFaults = UInt64(usage.majflt)
    jump.pointee.userMicroseconds = UInt64(usage.utime_sec) * 1_000_000 + UInt64(usage.utime_usec)
    jump.pointee.systemMicroseconds = UInt64(usage.stime_sec) * 1_000_000 + UInt64(usage.stime_usec)
    jump.pointee.nanoseconds = Kernel.monotonicNanoseconds()
    jump.pointee.reached = 1
  }
}

enum Supervisor {
  /// Trace records that fit (32 bytes each; shared memory costs only what is written).
  static let traceCapacity: UInt64 = 1 << 21
  /// Bytes of --residency CSV that fit (shared memory costs only what is written).
  static let residencyTextCapacity: UInt64 = 64 << 20

  /// Forks. In the child, returns the shared memory to load the program with.
  /// The parent passes on the signals sent to it, waits for the child,
  /// reports, and exits the way it did (its status, or the same signal); it
  /// never returns.
  static func start(_ settings: RunSettings, program: [UInt8]) throws(LoadError) -> SharedMeasurement {
    // The output files first: a path that cannot be written is an error now,
    // not after the program has run.
    let json = try settings.statsJSON.map { path throws(LoadError) in try create(path, "--stats-json") }
    let traceFile = try settings.trace.map { path throws(LoadError) in try create(path, "--trace") }
    let residencyFile = try settings.residency.map { path throws(LoadError) in try create(path, "--residency") }
    if traceFile != nil || residencyFile != nil { TraceSegments.share() }
    let profileFile = try settings.record.map { path throws(LoadError) in try create(path, "--profile") }
    let tracing = traceFile != nil || profileFile != nil

    let capacity: UInt64 = tracing ? traceCapacity : 0
    let countersSize = UInt64(MemoryLayout<elfload_demand_counters>.stride)
    let jumpOffset = (countersSize + 63) & ~63
    let traceOffset = (jumpOffset + UInt64(MemoryLayout<JumpRecord>.stride) + 63) & ~63
    let residencyOffset = (traceOffset + UInt64(MemoryLayout<elfload_trace>.stride) + capacity * 32 + 4095) & ~4095
    let residencyCapacity: UInt64 = residencyFile == nil ? 0 : residencyTextCapacity
    let recordedOffset = (residencyOffset + UInt64(MemoryLayout<elfload_residency>.stride) + residencyCapacity + 63) & ~63
    let length = recordedOffset + UInt64(RecordedImages.size)
    let base: UInt64
    do {
      base = try Kernel.map(0, length, [.read, .write], flags: [.shared, .anonymous, .noReserve])
    } catch {
      throw .system(error)
    }
    guard let counters = UnsafeMutablePointer<elfload_demand_counters>(bitPattern: UInt(base)),
      let jump = UnsafeMutablePointer<JumpRecord>(bitPattern: UInt(base + jumpOffset))
    else {
      throw .system(SystemCallError("mmap", errno: .ENOMEM))
    }
    var trace: UnsafeMutablePointer<elfload_trace>?
    if tracing {
      trace = UnsafeMutablePointer<elfload_trace>(bitPattern: UInt(base + traceOffset))
      trace?.pointee.capacity = capacity
    }
    var residency: UnsafeMutablePointer<elfload_residency>?
    if residencyFile != nil {
      residency = UnsafeMutablePointer<elfload_residency>(bitPattern: UInt(base + residencyOffset))
      residency?.pointee.capacity = residencyCapacity
    }
    let recordedImages = profileFile == nil ? nil : UnsafeMutableRawPointer(bitPattern: UInt(base + recordedOffset)).map { RecordedImages(base: $0) }

    // Like timeout(1): the signals sent to elfload are the program's. They
    // are blocked from before the fork (one sent meanwhile waits, then is
    // passed on) and taken with rt_sigtimedwait, with SIGCHLD, which must
    // not be ignored here or the kernel would reap the child unseen. The
    // child gets the mask and SIGCHLD's action back: the program starts with
    // the signal state elfload was started with.
    let parent = Kernel.processID()
    var blocked = Signals.forwarded | Signals.bit(Signal.child)
    var original: UInt64 = 0
    _ = withUnsafeBytes(of: &blocked) { b in
      withUnsafeMutableBytes(of: &original) { Kernel.syscall(.rtSigprocmask, 0, Int(bitPattern: b.baseAddress), Int(bitPattern: $0.baseAddress), 8) }
    }
    var defaultAction = elfload_sigaction()
    var childAction = elfload_sigaction()
    _ = withUnsafeBytes(of: &defaultAction) { d in
      withUnsafeMutableBytes(of: &childAction) {
        Kernel.syscall(.rtSigaction, Int(Signal.child), Int(bitPattern: d.baseAddress), Int(bitPattern: $0.baseAddress), 8)
      }
    }

    let start = Clock.now()
    let pid = Kernel.syscall(.fork)
    if pid < 0 { throw .system(SystemCallError("fork", errno: Errno(rawValue: Int32(-pid)))) }
    if pid == 0 {
      // If elfload dies (SIGKILL), so does the program: nothing is left
      // running that nobody waits for. If it died before this, now.
      _ = Kernel.syscall(.prctl, Int(PrctlOption.setParentDeathSignal), Int(Signal.kill))
      if Kernel.syscall(.getppid) != Int(parent) { _ = Kernel.syscall(.kill, Int(Kernel.processID()), Int(Signal.kill)) }
      _ = withUnsafeBytes(of: &childAction) { Kernel.syscall(.rtSigaction, Int(Signal.child), Int(bitPattern: $0.baseAddress), 0, 8) }
      _ = withUnsafeBytes(of: &original) { Kernel.syscall(.rtSigprocmask, 2, Int(bitPattern: $0.baseAddress), 0, 8) }
      for fd in [json, traceFile, residencyFile, profileFile] { if let fd, fd != .standardError { Kernel.close(fd) } }
      return SharedMeasurement(counters: counters, jump: jump, trace: trace, residency: residency, recorded: recordedImages)
    }

    let (status, usage) = supervise(Int32(pid), parent: parent)
    let end = Clock.now()
    // A hybrid run's watcher counts unused prefetched pages once the program
    // has ended: give it a moment.
    if counters.pointee.pages_prefetched > 0 {
      for _ in 0..<1000 where counters.pointee.unused_counted == 0 { sleepOneMillisecond() }
    }
    // The residency watcher reads the maps and page tables once the program
    // has ended (it holds the address space meanwhile).
    if let residency, jump.pointee.reached != 0 {
      for _ in 0..<10000 where residency.pointee.done == 0 { sleepOneMillisecond() }
    }
    // The userfaultfd server counts (and traces) a fault after waking its
    // thread: wait for what it is still counting, then read its CPU time.
    var serverCPU: UInt64?
    if counters.pointee.pager == UInt64(ELFLOAD_PAGER_UFFD) {
      for _ in 0..<20000 where counters.pointee.in_flight != 0 { sleepOneMillisecond(fraction: 20) }
      serverCPU = Kernel.processCPUNanoseconds(Int32(truncatingIfNeeded: counters.pointee.server_pid))
      // Once it has ended, its pid may be another process's: what it wrote as it ended.
      if counters.pointee.server_ended != 0 { serverCPU = counters.pointee.server_cpu_ns }
    }
    let c = counters.pointee
    var pager = PagerCounters()
    pager.faults = c.faults
    pager.pagesMapped = c.pages_mapped
    pager.pagesPrefetched = c.pages_prefetched
    pager.waits = c.waits
    pager.prefetchedUnused = c.pages_prefetched == 0 ? 0 : (c.unused_counted != 0 ? c.prefetched_unused : nil)
    pager.predictorHits = c.predictor_hits
    pager.predictorMisses = c.predictor_misses
    pager.pagesReplayed = c.pages_replayed
    pager.replayNanoseconds = c.replay_ns
    pager.serverCPUNanoseconds = serverCPU
    pager.servedByWatcher = c.served_by_watcher
    pager.serverWorkers = c.workers
    pager.serverCPUChecks = c.cpu_checks
    pager.serverTakeovers = c.takeovers
    if serverCPU != nil || c.server_pid != 0 { pager.serverPlacement = settings.serverPlacement ?? .workers }
    // The program's own share: the child's, less what elfload cost it before
    // the jump (all of it, if it never got there).
    let j = jump.pointee
    let reached = j.reached != 0
    var startup = StartupCost()
    startup.wallNanoseconds = reached ? j.nanoseconds - start.nanoseconds : end.nanoseconds - start.nanoseconds
    startup.usage.userMicroseconds = j.userMicroseconds
    startup.usage.systemMicroseconds = j.systemMicroseconds
    startup.usage.minorFaults = j.minorFaults
    startup.usage.majorFaults = j.majorFaults
    let total = UInt64(usage.utime_sec) * 1_000_000 + UInt64(usage.utime_usec) + UInt64(usage.stime_sec) * 1_000_000
      + UInt64(usage.stime_usec)
    var resources = ResourceUsage()
    if reached {
      // user and sys separately, as the kernel splits them: each less its own share before the jump.
      resources.userMicroseconds = (UInt64(usage.utime_sec) * 1_000_000 + UInt64(usage.utime_usec)) -| j.userMicroseconds
      resources.systemMicroseconds = (UInt64(usage.stime_sec) * 1_000_000 + UInt64(usage.stime_usec)) -| j.systemMicroseconds
      resources.maxRSSKiB = UInt64(usage.maxrss)
      resources.minorFaults = UInt64(usage.minflt) -| j.minorFaults
      resources.majorFaults = UInt64(usage.majflt) -| j.majorFaults
    } else {
      startup.usage.userMicroseconds = UInt64(usage.utime_sec) * 1_000_000 + UInt64(usage.utime_usec)
      startup.usage.systemMicroseconds = total - startup.usage.userMicroseconds
      startup.usage.minorFaults = UInt64(usage.minflt)
      startup.usage.majorFaults = UInt64(usage.majflt)
    }
    let recorded = trace.map { $0.pointee.count } ?? 0
    let traced = trace.map { min($0.pointee.count, $0.pointee.capacity) } ?? 0
    // The policy that ran, and why it is not the one asked when it is not.
    let ignored = j.replayIgnored != 0
    func pagerName(_ kind: UInt64) -> Pager? {
      kind == UInt64(ELFLOAD_PAGER_UFFD) ? .uffd : kind == UInt64(ELFLOAD_PAGER_SIGNAL) ? .signal : nil
    }
    var report = Report(
      program: text(program), policy: ignored ? .demand : settings.policy,
      fallback: ignored ? "replay asked: its --profile was recorded for other files, so it was ignored" : nil,
      pager: pagerName(c.pager)?.name,
      wallNanoseconds: end.nanoseconds - start.nanoseconds,
      usage: resources, ending: Ending(waitStatus: status), counters: pager, traced: traced,
      dropped: recorded - traced, segmentPages: j.segmentPages, startup: startup)
    if case .replay = report.policy, reached { report.profilePager = .some(pagerName(j.profilePager)) }
    if settings.stats { Kernel.writeError(report.summary) }
    if settings.stats || settings.verbose, let note = KnownLimits.note(
      settings.policy, report.ending, declined: c.declined, signalPager: c.pager == UInt64(ELFLOAD_PAGER_SIGNAL))
    {
      Kernel.writeError(note)
    }
    do {
      if let json { try Kernel.writeAll(json, Array(report.json.utf8)) }
      if let traceFile, let trace { try writeTrace(traceFile, trace, count: traced, start: start, end: end, pager: report.pager ?? "none") }
      if let residencyFile, let residency, reached { try writeResidency(residencyFile, residency) }
      if let profileFile, let trace, let recordedImages, reached {
        try writeProfile(profileFile, trace, count: traced, pager: pagerName(c.pager), images: recordedImages.images)
        if trace.pointee.count > traced {
          Kernel.writeError("elfload record: the run touched more pages than a record holds (\(traceCapacity)): the profile has the first ones\n")
        }
      }
    } catch {
      Kernel.writeError("elfload: writing the statistics or the trace failed: \(error)\n")
    }
    exitLike(status)
  }

  /// Waits for the child, passing on every signal elfload is sent meanwhile,
  /// but for those the terminal sent its whole foreground process group (the
  /// child has its own: Ctrl-C reaches the program once, as under time(1)),
  /// and those from elfload itself or from the child. Returns the child's
  /// wait status and resource usage.
  static func supervise(_ child: Int32, parent: Int32) -> (Int32, elfload_rusage) {
    var status: Int32 = 0
    var usage = elfload_rusage()
    var waitFor = Signals.forwarded | Signals.bit(Signal.child)
    // siginfo_t: 128 bytes; si_signo, si_errno, si_code, then si_pid at 16.
    var info = (UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0),
                UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0))
    while true {
      let signal = withUnsafeMutableBytes(of: &info) { i in
        withUnsafeBytes(of: &waitFor) {
          Kernel.syscall(.rtSigtimedwait, Int(bitPattern: $0.baseAddress), Int(bitPattern: i.baseAddress), 0, 8)
        }
      }
      if signal < 0 {
        if signal == -Int(Errno.EINTR.rawValue) { continue }
        // Cannot wait for signals (never expected): just wait for the child.
        break
      }
      if signal == Int(Signal.child) {
        let r = reap(child, &status, &usage, blocking: false)
        if r == Int(child) { return (status, usage) }
        if r < 0 { return (status, usage) }
        continue
      }
      let code = withUnsafeBytes(of: &info) { $0.load(fromByteOffset: 8, as: Int32.self) }
      let sender = withUnsafeBytes(of: &info) { $0.load(fromByteOffset: 16, as: Int32.self) }
      if Signals.shouldForward(Int32(signal), code: code, sender: sender, parent: parent, child: child) {
        _ = Kernel.syscall(.kill, Int(child), signal)
      }
    }
    while reap(child, &status, &usage, blocking: true) == -Int(Errno.EINTR.rawValue) {}
    return (status, usage)
  }

  /// wait4 for `child`: its pid once it has ended, 0 if it has not (not blocking), or -errno.
  static func reap(_ child: Int32, _ status: inout Int32, _ usage: inout elfload_rusage, blocking: Bool) -> Int {
    withUnsafeMutableBytes(of: &usage) { u in
      withUnsafeMutablePointer(to: &status) {
        Kernel.syscall(.wait4, Int(child), Int(bitPattern: $0), blocking ? 0 : 1, Int(bitPattern: u.baseAddress))
      }
    }
  }

  /// The output file for `option`: "-" is standard error.
  static func create(_ path: [UInt8], _ option: String) throws(LoadError) -> FileDescriptor {
    if path == [UInt8(ascii: "-")] { return .standardError }
    do { return try Kernel.createFile(path) } catch { throw .output(option: option, path: path, error) }
  }

  /// The CSV trace: rdtsc stamps turned into nanoseconds since the fork, by
  /// the line through (fork, start stamp) and (end, end stamp). Formatted by
  /// hand into one reused buffer: a long trace allocates nothing per row.
  static func writeTrace(
    _ fd: FileDescriptor, _ trace: UnsafeMutablePointer<elfload_trace>, count: UInt64, start: Clock, end: Clock,
    pager: String
  ) throws(SystemCallError) {
    let records = UnsafeMutableRawPointer(trace).advanced(by: MemoryLayout<elfload_trace>.stride)
      .assumingMemoryBound(to: elfload_trace_record.self)
    let ticks = Double(end.stamp &- start.stamp)
    let perTick = ticks > 0 ? Double(end.nanoseconds - start.nanoseconds) / ticks : 0
    var out = CSVBuffer()
    out.bytes += TraceSegments.preamble(TraceFormat.formatLine)
    out.text(TraceFormat.header)
    for i in 0..<Int(count) {
      let r = records[i]
      let elapsed = Double(Int64(bitPattern: r.timestamp &- start.stamp)) * perTick
      out.decimal(UInt64(i))
      out.byte(44)
      out.decimal(elapsed > 0 ? UInt64(elapsed) : 0)
      out.byte(44)
      out.hex(r.address)
      out.byte(44)
      out.decimal(UInt64(r.image))
      out.byte(44)
      out.decimal(UInt64(r.segment))
      out.byte(44)
      out.decimal(UInt64(r.page))
      out.byte(44)
      out.text(r.kind == UInt8(ELFLOAD_TRACE_FAULT) ? TraceFormat.fault : TraceFormat.prefetch)
      out.byte(44)
      out.decimal(UInt64(r.tid))
      out.byte(44)
      out.text(pager)
      out.byte(10)
      if out.bytes.count > 1 << 16 { try out.flush(fd) }
    }
    try out.flush(fd)
  }

  /// `elfload record`'s profile: each page's first fault, in order (a page
  /// faulted again -- in a forked child, after MADV_DONTNEED -- counts once).
  static func writeProfile(
    _ fd: FileDescriptor, _ trace: UnsafeMutablePointer<elfload_trace>, count: UInt64, pager: Pager?,
    images: [ProfileImage]
  ) throws(SystemCallError) {
    let records = UnsafeMutableRawPointer(trace).advanced(by: MemoryLayout<elfload_trace>.stride)
      .assumingMemoryBound(to: elfload_trace_record.self)
    var touches: [(key: UInt64, order: Int)] = []
    for i in 0..<Int(count) where records[i].kind == UInt8(ELFLOAD_TRACE_FAULT) {
      let r = records[i]
      touches.append((UInt64(r.image) << 48 | UInt64(r.segment) << 32 | UInt64(r.page), i))
    }
    touches.sort { $0.key != $1.key ? $0.key < $1.key : $0.order < $1.order }
    var firsts: [(key: UInt64, order: Int)] = []
    for touch in touches where firsts.last?.key != touch.key { firsts.append(touch) }
    firsts.sort { $0.order < $1.order }
    let pages = firsts.map { ProfilePage(image: Int($0.key >> 48), segment: Int($0.key >> 32 & 0xffff), page: $0.key & 0xffff_ffff) }
    try Kernel.writeAll(fd, Profile(pager: pager, images: images, pages: pages).bytes)
  }

  /// The residency CSV: the segment table, then the rows as the watcher wrote them (nothing if
  /// it never ran: the program did not start).
  static func writeResidency(_ fd: FileDescriptor, _ residency: UnsafeMutablePointer<elfload_residency>) throws(SystemCallError) {
    let r = residency.pointee
    if r.done == 0 { Kernel.writeError("elfload: --residency: the watcher did not finish in 10 s; what it wrote follows\n") }
    if r.truncated != 0 { Kernel.writeError("elfload: --residency: too many mappings, the last rows are left out\n") }
    let text = UnsafeRawPointer(residency).advanced(by: MemoryLayout<elfload_residency>.stride)
      .assumingMemoryBound(to: UInt8.self)
    // The segment table first: what the program's and interpreter's mappings are (the
    // userfaultfd pager's have no file name).
    try Kernel.writeAll(fd, TraceSegments.preamble(ResidencyFormat.formatLine))
    let length = Int(min(r.length, r.capacity))
    var offset = 0
    while offset < length {
      let chunk = min(length - offset, 1 << 20)
      try Kernel.writeAll(fd, Array(UnsafeBufferPointer(start: text + offset, count: chunk)))
      offset += chunk
    }
  }

  /// Sleeps a millisecond, or 1/`fraction` of one.
  static func sleepOneMillisecond(fraction: Int64 = 1) {
    var ts = elfload_timespec(seconds: 0, nanoseconds: 1_000_000 / fraction)
    _ = withUnsafeBytes(of: &ts) { Kernel.syscall(.nanosleep, Int(bitPattern: $0.baseAddress), 0) }
  }

  /// Exits with the child's status, or dies by the signal that killed it.
  static func exitLike(_ status: Int32) -> Never {
    switch Ending(waitStatus: status) {
    case .exited(let code): Kernel.exit(code)
    case .signaled(let signal):
      var action = elfload_sigaction()  // SIG_DFL
      _ = withUnsafeBytes(of: &action) { Kernel.syscall(.rtSigaction, Int(signal), Int(bitPattern: $0.baseAddress), 0, 8) }
      var just = Signals.bit(signal)
      _ = withUnsafeBytes(of: &just) { Kernel.syscall(.rtSigprocmask, 1, Int(bitPattern: $0.baseAddress), 0, 8) }
      _ = Kernel.syscall(.kill, Int(Kernel.processID()), Int(signal))
      Kernel.exit(128 + signal)
    }
  }
}

infix operator -| : AdditionPrecedence
/// Subtraction that stops at zero.
func -| (a: UInt64, b: UInt64) -> UInt64 { a > b ? a - b : 0 }

/// A point in time: CLOCK_MONOTONIC and the time-stamp counter together.
struct Clock {
  var nanoseconds: UInt64
  var stamp: UInt64
  static func now() -> Clock { Clock(nanoseconds: Kernel.monotonicNanoseconds(), stamp: elfload_timestamp()) }
}

/// Bytes of CSV, formatted without allocating per value.
struct CSVBuffer {
  var bytes: [UInt8] = []
  init() { bytes.reserveCapacity(1 << 17) }
  mutating func byte(_ b: UInt8) { bytes.append(b) }
  mutating func text(_ s: String) { bytes.append(contentsOf: s.utf8) }
  mutating func decimal(_ value: UInt64) {
    var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                 UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
      (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    var n = 0
    var v = value
    withUnsafeMutableBytes(of: &digits) { d in
      repeat {
        d[n] = UInt8(48 + v % 10)
        v /= 10
        n += 1
      } while v > 0
      for i in (0..<n).reversed() { bytes.append(d[i]) }
    }
  }
  mutating func hex(_ value: UInt64) {
    bytes.append(48)
    bytes.append(UInt8(ascii: "x"))
    var started = false
    for shift in stride(from: 60, through: 0, by: -4) {
      let nibble = UInt8((value >> UInt64(shift)) & 15)
      if nibble != 0 || started || shift == 0 {
        started = true
        bytes.append(nibble < 10 ? 48 + nibble : 87 + nibble)
      }
    }
  }
  mutating func flush(_ fd: FileDescriptor) throws(SystemCallError) {
    try Kernel.writeAll(fd, bytes)
    bytes.removeAll(keepingCapacity: true)
  }
}
