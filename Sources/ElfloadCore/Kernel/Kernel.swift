// Every system call elfload makes from Swift, each behind one typed function over one raw
// convention (CKernel's elfload_syscall6): no C library, so the same code runs in the
// freestanding launcher and in ordinary processes (the tools, the tests).
import CKernel

/// An open file descriptor.
public struct FileDescriptor: RawRepresentable, Equatable, Hashable, Sendable {
  public var rawValue: Int32
  public init(rawValue: Int32) { self.rawValue = rawValue }
  public static let standardInput = FileDescriptor(rawValue: 0)
  public static let standardOutput = FileDescriptor(rawValue: 1)
  public static let standardError = FileDescriptor(rawValue: 2)
}

/// What fstat says of a file that elfload needs.
public struct FileStatus: Sendable {
  public var mode: UInt32
  public var size: UInt64
  public var device: UInt64 = 0
  public var inode: UInt64 = 0
  public var modifiedSeconds: Int64 = 0
  public var modifiedNanoseconds: Int64 = 0
  public var owner: UInt32 = 0
  /// Names the file has: 0 for a memfd and a deleted file.
  public var links: UInt64 = 0
  public var type: UInt32 { mode & FileType.mask }

  init(_ st: elfload_stat) {
    mode = st.st_mode
    size = UInt64(clamping: st.st_size)
    device = st.st_dev
    inode = st.st_ino
    modifiedSeconds = Int64(bitPattern: st.times.2)
    modifiedNanoseconds = Int64(bitPattern: st.times.3)
    owner = st.st_uid
    links = st.st_nlink
  }
}

/// A process's resource usage (getrusage, wait4), in the kernel's units.
public struct ResourceUsage: Sendable {
  public var userMicroseconds: UInt64 = 0
  public var systemMicroseconds: UInt64 = 0
  public var maxRSSKiB: UInt64 = 0
  public var minorFaults: UInt64 = 0
  public var majorFaults: UInt64 = 0
  public init() {}
}

public enum Kernel {
  /// The raw call: the kernel's result, -errno on failure.
  @inline(__always)
  public static func syscall(
    _ number: Syscall, _ a1: Int = 0, _ a2: Int = 0, _ a3: Int = 0, _ a4: Int = 0, _ a5: Int = 0,
    _ a6: Int = 0
  ) -> Int {
    elfload_syscall6(number.rawValue, a1, a2, a3, a4, a5, a6)
  }

  /// The result, or the errno as a thrown error naming `call`.
  static func check(_ call: String, _ result: Int) throws(SystemCallError) -> Int {
    if result < 0 && result > -4096 { throw SystemCallError(call, errno: Errno(rawValue: Int32(-result))) }
    return result
  }

  /// Runs `body` with `path` as a NUL-terminated C string.
  public static func withCString<R>(_ path: [UInt8], _ body: (Int) -> R) -> R {
    var bytes = path
    bytes.append(0)
    return bytes.withUnsafeBufferPointer { body(Int(bitPattern: $0.baseAddress)) }
  }

  // MARK: files

  /// `openat(AT_FDCWD, path, flags | O_CLOEXEC)`.
  public static func open(_ path: [UInt8], _ flags: Int32 = OpenFlags.readOnly, mode: Int32 = 0)
    throws(SystemCallError) -> FileDescriptor
  {
    let r = withCString(path) {
      syscall(.openat, Int(atCurrentDirectory), $0, Int(flags | OpenFlags.closeOnExec), Int(mode))
    }
    return FileDescriptor(rawValue: Int32(try check("open", r)))
  }

  /// `open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)`.
  public static func createFile(_ path: [UInt8]) throws(SystemCallError) -> FileDescriptor {
    try open(path, OpenFlags.writeOnly | OpenFlags.create | OpenFlags.truncate, mode: 0o644)
  }

  /// `faccessat(AT_FDCWD, path, mode)`.
  public static func access(_ path: [UInt8], _ mode: Int32) throws(SystemCallError) {
    let r = withCString(path) { syscall(.access, $0, Int(mode)) }
    _ = try check("access", r)
  }

  /// `fstat(fd)`: the file's type and size.
  public static func status(_ fd: FileDescriptor) throws(SystemCallError) -> FileStatus {
    var st = elfload_stat()
    let r = withUnsafeMutableBytes(of: &st) { syscall(.fstat, Int(fd.rawValue), Int(bitPattern: $0.baseAddress)) }
    _ = try check("fstat", r)
    return FileStatus(st)
  }

  /// `stat(path)`, following symbolic links.
  public static func status(_ path: [UInt8]) throws(SystemCallError) -> FileStatus {
    var st = elfload_stat()
    let r = withUnsafeMutableBytes(of: &st) { buffer in
      withCString(path) { syscall(.newfstatat, Int(atCurrentDirectory), $0, Int(bitPattern: buffer.baseAddress), 0) }
    }
    _ = try check("stat", r)
    return FileStatus(st)
  }

  /// `faccessat2(fd, "", mode, AT_EMPTY_PATH)`: `access` of an open file, mount options included.
  public static func access(_ fd: FileDescriptor, _ mode: Int32) throws(SystemCallError) {
    let r = withCString([]) { syscall(.faccessat2, Int(fd.rawValue), $0, Int(mode), Int(atEmptyPath)) }
    _ = try check("faccessat2", r)
  }

  /// `fstatfs(fd).f_type`: which kind of file system holds the file.
  public static func fileSystemType(_ fd: FileDescriptor) throws(SystemCallError) -> Int64 {
    // struct statfs is 120 bytes on x86-64; f_type is its first word.
    var words = [Int64](repeating: 0, count: 15)
    let r = words.withUnsafeMutableBytes { syscall(.fstatfs, Int(fd.rawValue), Int(bitPattern: $0.baseAddress)) }
    _ = try check("fstatfs", r)
    return words[0]
  }

  /// `memfd_create(name, flags)`: an anonymous file in memory.
  public static func memfdCreate(_ name: [UInt8], _ flags: MemfdFlags) throws(SystemCallError) -> FileDescriptor {
    let r = withCString(name) { syscall(.memfdCreate, $0, Int(flags.rawValue)) }
    return FileDescriptor(rawValue: Int32(try check("memfd_create", r)))
  }

  /// `fcntl(fd, F_ADD_SEALS, seals)`.
  public static func addSeals(_ fd: FileDescriptor, _ seals: Seals) throws(SystemCallError) {
    _ = try check("fcntl(F_ADD_SEALS)", syscall(.fcntl, Int(fd.rawValue), Int(FileControl.addSeals), Int(seals.rawValue)))
  }

  /// Whether `fd` is closed by execve (FD_CLOEXEC); nil when it is not open.
  public static func isCloseOnExec(_ fd: FileDescriptor) -> Bool? {
    let r = syscall(.fcntl, Int(fd.rawValue), Int(FileControl.getDescriptorFlags))
    return r < 0 ? nil : r & FileControl.closeOnExecFlag != 0
  }

  /// Sets or clears FD_CLOEXEC.
  public static func setCloseOnExec(_ fd: FileDescriptor, _ on: Bool) throws(SystemCallError) {
    let flags = on ? FileControl.closeOnExecFlag : 0
    _ = try check("fcntl(F_SETFD)", syscall(.fcntl, Int(fd.rawValue), Int(FileControl.setDescriptorFlags), flags))
  }

  /// `fcntl(fd, F_GETFL)`: the open file's status flags.
  public static func statusFlags(_ fd: FileDescriptor) throws(SystemCallError) -> Int32 {
    Int32(truncatingIfNeeded: try check("fcntl(F_GETFL)", syscall(.fcntl, Int(fd.rawValue), Int(FileControl.getStatusFlags))))
  }

  /// `fcntl(fd, F_DUPFD_CLOEXEC, 0)`: another descriptor for the same open file.
  public static func duplicate(_ fd: FileDescriptor) throws(SystemCallError) -> FileDescriptor {
    let r = syscall(.fcntl, Int(fd.rawValue), Int(FileControl.duplicateCloseOnExec), 0)
    return FileDescriptor(rawValue: Int32(try check("fcntl(F_DUPFD_CLOEXEC)", r)))
  }

  /// Whether `fd` is a terminal (ioctl TCGETS answers).
  public static func isTerminal(_ fd: FileDescriptor) -> Bool {
    var termios = [UInt8](repeating: 0, count: 64)
    return termios.withUnsafeMutableBytes {
      syscall(.ioctl, Int(fd.rawValue), terminalGetAttributes, Int(bitPattern: $0.baseAddress))
    } == 0
  }

  /// One `read(fd)` into `buffer[from..<from + count]`, retried on EINTR: bytes read, 0 at the end.
  public static func readSome(_ fd: FileDescriptor, _ buffer: inout [UInt8], from: Int, count: Int)
    throws(SystemCallError) -> Int
  {
    precondition(from >= 0 && count >= 0 && from + count <= buffer.count)
    while true {
      let n = buffer.withUnsafeMutableBytes { syscall(.read, Int(fd.rawValue), Int(bitPattern: $0.baseAddress) + from, count) }
      if n == -Int(Errno.EINTR.rawValue) { continue }
      return try check("read", n)
    }
  }

  /// Moves up to `count` bytes from `input` (at its offset) to the end of what was written to
  /// `output`, in the kernel, retried on EINTR: `splice` from a pipe, `sendfile` from a file.
  /// Bytes moved, 0 at the end; EINVAL where the kernel cannot (a socket: read and write it).
  public static func transfer(from input: FileDescriptor, isPipe: Bool, to output: FileDescriptor, count: Int)
    throws(SystemCallError) -> Int
  {
    while true {
      let n =
        isPipe
        ? syscall(.splice, Int(input.rawValue), 0, Int(output.rawValue), 0, count, 0)
        : syscall(.sendfile, Int(output.rawValue), Int(input.rawValue), 0, count)
      if n == -Int(Errno.EINTR.rawValue) { continue }
      return try check(isPipe ? "splice" : "sendfile", n)
    }
  }

  /// `poll(fd, POLLIN)` without a timeout: waits until `fd` has something to read (or its end).
  public static func waitUntilReadable(_ fd: FileDescriptor) {
    // struct pollfd: int fd; short events (POLLIN 1); short revents.
    var entry: [Int32] = [fd.rawValue, 1]
    while entry.withUnsafeMutableBytes({ syscall(.poll, Int(bitPattern: $0.baseAddress), 1, -1) }) == -Int(Errno.EINTR.rawValue) {}
  }

  /// `close(fd)`.
  public static func close(_ fd: FileDescriptor) {
    _ = syscall(.close, Int(fd.rawValue))
  }

  /// `pread(fd, count, offset)`, retried until `count` bytes or end of file.
  public static func read(_ fd: FileDescriptor, count: Int, at offset: UInt64) throws(SystemCallError) -> [UInt8] {
    var buffer = [UInt8](repeating: 0, count: count)
    var done = 0
    while done < count {
      let n = buffer.withUnsafeMutableBytes {
        syscall(.pread64, Int(fd.rawValue), Int(bitPattern: $0.baseAddress) + done, count - done, Int(offset) + done)
      }
      if n == -Int(Errno.EINTR.rawValue) { continue }
      let got = try check("pread", n)
      if got == 0 { break }
      done += got
    }
    return Array(buffer.prefix(done))
  }

  /// A whole file read with read(2), for /proc files that have no size; nil on error.
  public static func readWholeFile(_ path: [UInt8]) -> [UInt8]? {
    guard let fd = try? open(path) else { return nil }
    defer { close(fd) }
    var text: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 16384)
    while true {
      let n = chunk.withUnsafeMutableBytes { syscall(.read, Int(fd.rawValue), Int(bitPattern: $0.baseAddress), $0.count) }
      if n == -Int(Errno.EINTR.rawValue) { continue }
      guard n >= 0 else { return nil }
      if n == 0 { return text }
      text += chunk.prefix(n)
    }
  }

  /// The first line of a small /proc or /sys file, as a number; nil if there is none.
  public static func readNumber(_ path: [UInt8]) -> UInt64? {
    guard let fd = try? open(path) else { return nil }
    defer { close(fd) }
    // One read: /proc and /sys numbers are far shorter than the buffer.
    var buffer = [UInt8](repeating: 0, count: 64)
    let n = buffer.withUnsafeMutableBytes { syscall(.read, Int(fd.rawValue), Int(bitPattern: $0.baseAddress), $0.count) }
    guard n > 0 else { return nil }
    let bytes = buffer.prefix(n)
    var value: UInt64 = 0
    var digits = 0
    for b in bytes {
      guard b >= 48, b <= 57 else { break }
      let (m, o1) = value.multipliedReportingOverflow(by: 10)
      let (s, o2) = m.addingReportingOverflow(UInt64(b - 48))
      guard !o1, !o2 else { return nil }
      value = s
      digits += 1
    }
    return digits > 0 ? value : nil
  }

  /// Writes all of `bytes` (its first `count`), through short writes and EINTR.
  public static func writeAll(_ fd: FileDescriptor, _ bytes: [UInt8], count: Int? = nil) throws(SystemCallError) {
    let count = min(count ?? bytes.count, bytes.count)
    var done = 0
    while done < count {
      let n = bytes.withUnsafeBytes {
        syscall(.write, Int(fd.rawValue), Int(bitPattern: $0.baseAddress) + done, count - done)
      }
      if n == -Int(Errno.EINTR.rawValue) { continue }
      if n == 0 { throw SystemCallError("write", errno: .EIO) }
      done += try check("write", n)
    }
  }

  /// Writes `text` to standard error, ignoring failure (there is nowhere left to say it).
  public static func writeError(_ text: String) {
    var text = text
    text.withUTF8 { _ = syscall(.write, 2, Int(bitPattern: $0.baseAddress), $0.count) }
  }

  /// `readlink(path)`.
  public static func readLink(_ path: [UInt8]) throws(SystemCallError) -> [UInt8] {
    var buffer = [UInt8](repeating: 0, count: 4096)
    let n = buffer.withUnsafeMutableBytes { out in
      withCString(path) { syscall(.readlink, $0, Int(bitPattern: out.baseAddress), out.count) }
    }
    return Array(buffer.prefix(try check("readlink", n)))
  }

  /// `execve(path, arguments, environment)`: returns only when it fails.
  public static func execve(_ path: [UInt8], _ arguments: [[UInt8]], _ environment: [[UInt8]]) -> SystemCallError {
    // All the strings in one buffer, then the two NULL-terminated pointer arrays into it.
    var strings: [UInt8] = []
    var offsets: [Int] = []
    for s in [path] + arguments + environment {
      offsets.append(strings.count)
      strings += s
      strings.append(0)
    }
    let r = strings.withUnsafeBufferPointer { buffer in
      let base = Int(bitPattern: buffer.baseAddress)
      var words = offsets.dropFirst().prefix(arguments.count).map { base + $0 } + [0]
      let argvCount = words.count
      words += offsets.dropFirst(1 + arguments.count).map { base + $0 } + [0]
      return words.withUnsafeBufferPointer { w in
        let argv = Int(bitPattern: w.baseAddress)
        return syscall(.execve, base + offsets[0], argv, argv + argvCount * 8)
      }
    }
    return SystemCallError("execve", errno: Errno(rawValue: Int32(truncatingIfNeeded: -r)))
  }

  // MARK: memory

  /// `mmap(address, length, protection, flags, fd, offset)`.
  public static func map(
    _ address: UInt64, _ length: UInt64, _ protection: Protection, flags: MapFlags,
    fd: FileDescriptor? = nil, offset: UInt64 = 0
  ) throws(SystemCallError) -> UInt64 {
    let r = syscall(
      .mmap, Int(bitPattern: UInt(address)), Int(bitPattern: UInt(length)), Int(protection.rawValue),
      Int(flags.rawValue), Int(fd?.rawValue ?? -1), Int(bitPattern: UInt(offset)))
    return UInt64(UInt(bitPattern: try check("mmap", r)))
  }

  /// `munmap(address, length)`.
  public static func unmap(_ address: UInt64, _ length: UInt64) {
    _ = syscall(.munmap, Int(bitPattern: UInt(address)), Int(bitPattern: UInt(length)))
  }

  /// `mprotect(address, length, protection)`.
  public static func protect(_ address: UInt64, _ length: UInt64, _ protection: Protection) throws(SystemCallError) {
    let r = syscall(.mprotect, Int(bitPattern: UInt(address)), Int(bitPattern: UInt(length)), Int(protection.rawValue))
    _ = try check("mprotect", r)
  }

  // MARK: randomness

  /// `getrandom(count)`: bytes from the kernel's random pool (blocking only
  /// before the pool is initialised, as the kernel's own AT_RANDOM would).
  public static func randomBytes(_ count: Int) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: count)
    var done = 0
    while done < count {
      let n = bytes.withUnsafeMutableBytes { syscall(.getrandom, Int(bitPattern: $0.baseAddress) + done, count - done) }
      if n == -Int(Errno.EINTR.rawValue) { continue }
      // getrandom cannot fail otherwise on Linux 3.17+; never spin if it does.
      guard n > 0 else { break }
      done += n
    }
    return bytes
  }

  /// A uniformly random integer below `bound`, from getrandom.
  public static func random(below bound: UInt64) -> UInt64 {
    guard bound > 1 else { return 0 }
    let value = randomBytes(8).reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
    return value % bound
  }

  // MARK: the process

  /// (soft, hard) of a resource limit; RLIM_INFINITY is UInt64.max.
  public static func limits(_ resource: Int32) -> (soft: UInt64, hard: UInt64) {
    var limit = elfload_rlimit()
    let r = withUnsafeMutableBytes(of: &limit) { syscall(.prlimit64, 0, Int(resource), 0, Int(bitPattern: $0.baseAddress)) }
    return r == 0 ? (limit.soft, limit.hard) : (.max, .max)
  }

  public static func softLimit(_ resource: Int32) -> UInt64 { limits(resource).soft }

  /// Sets a soft limit (at most the hard one). Returns whether it worked.
  @discardableResult
  public static func setSoftLimit(_ resource: Int32, _ soft: UInt64) -> Bool {
    var limit = elfload_rlimit(soft: soft, hard: limits(resource).hard)
    return withUnsafeMutableBytes(of: &limit) { syscall(.prlimit64, 0, Int(resource), Int(bitPattern: $0.baseAddress)) } == 0
  }

  /// `personality(0xffffffff)`: the current persona, unchanged.
  public static func personality() -> UInt64 {
    UInt64(UInt(bitPattern: syscall(.personality, 0xffff_ffff)))
  }

  /// `prctl(option, a2, a3, a4, a5)`.
  public static func prctl(_ option: Int32, _ a2: Int, _ a3: Int = 0, _ a4: Int = 0, _ a5: Int = 0)
    throws(SystemCallError)
  {
    _ = try check("prctl", syscall(.prctl, Int(option), a2, a3, a4, a5))
  }

  public static func processID() -> Int32 { Int32(truncatingIfNeeded: syscall(.getpid)) }

  /// `exit_group(status)`.
  public static func exit(_ status: Int32) -> Never {
    while true { _ = syscall(.exitGroup, Int(status)) }
  }

  /// `clock_gettime(CLOCK_MONOTONIC)` in nanoseconds.
  public static func monotonicNanoseconds() -> UInt64 {
    var ts = elfload_timespec()
    _ = withUnsafeMutableBytes(of: &ts) { syscall(.clockGettime, 1, Int(bitPattern: $0.baseAddress)) }
    return UInt64(ts.seconds) &* 1_000_000_000 &+ UInt64(ts.nanoseconds)
  }

  /// The CPU time of process `pid`, all its threads (`clock_gettime` of its
  /// process CPU clock, `clock_getcpuclockid`), in nanoseconds; nil if it is gone.
  public static func processCPUNanoseconds(_ pid: Int32) -> UInt64? {
    var ts = elfload_timespec()
    let clock = (~Int(pid)) << 3 | 2  // MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED)
    let r = withUnsafeMutableBytes(of: &ts) { syscall(.clockGettime, clock, Int(bitPattern: $0.baseAddress)) }
    return r == 0 ? UInt64(ts.seconds) &* 1_000_000_000 &+ UInt64(ts.nanoseconds) : nil
  }
}

/// Random bytes for one exec, asked of the kernel once (getrandom) and handed
/// out as needed: the load bias, brk, the stack gap, AT_RANDOM.
public struct Randomness {
  var bytes: [UInt8]
  var used = 0

  public init(count: Int = 64) { bytes = Kernel.randomBytes(count) }

  /// The next `n` bytes (fresh ones from the kernel if these ran out).
  public mutating func take(_ n: Int) -> [UInt8] {
    if used + n > bytes.count {
      bytes = Kernel.randomBytes(max(64, n))
      used = 0
    }
    defer { used += n }
    return Array(bytes[used..<(used + n)])
  }

  /// A uniformly random integer below `bound` (modulo bias below 2^-32 for the bounds used here).
  public mutating func below(_ bound: UInt64) -> UInt64 {
    guard bound > 1 else { return 0 }
    return take(8).reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) } % bound
  }
}
