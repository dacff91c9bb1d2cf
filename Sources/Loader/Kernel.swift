// Every system call the loader makes before the jump, each behind one typed function.
import CElfload
import ELF
import Glibc

/// A failed system call: which one, and errno.
public struct SystemCallError: Error, Equatable, Sendable, CustomStringConvertible {
  public var call: String
  public var errno: Int32
  public init(_ call: String, errno: Int32) {
    self.call = call
    self.errno = errno
  }
  public var description: String {
    "\(call): \(String(cString: strerror(errno)))"
  }
}

/// The kernel, as the loader uses it. One function per call, named after it.
public enum Kernel {
  static func check(_ call: String, _ result: Int) throws(SystemCallError) -> Int {
    if result < 0 { throw SystemCallError(call, errno: Glibc.errno) }
    return result
  }

  /// `open(path, O_RDONLY | O_CLOEXEC)`.
  public static func openReadOnly(_ path: [UInt8]) throws(SystemCallError) -> Int32 {
    let fd = (path + [0]).withUnsafeBufferPointer {
      $0.withMemoryRebound(to: CChar.self) { open($0.baseAddress!, O_RDONLY | O_CLOEXEC) }
    }
    return Int32(try check("open", Int(fd)))
  }

  /// `access(path, mode)`.
  public static func access(_ path: [UInt8], _ mode: Int32) throws(SystemCallError) {
    let r = (path + [0]).withUnsafeBufferPointer {
      $0.withMemoryRebound(to: CChar.self) { Glibc.access($0.baseAddress!, mode) }
    }
    _ = try check("access", Int(r))
  }

  /// `fstat(fd)`: the file's type and size.
  public static func fileStatus(_ fd: Int32) throws(SystemCallError) -> stat {
    var st = stat()
    _ = try check("fstat", Int(fstat(fd, &st)))
    return st
  }

  /// `close(fd)`.
  public static func close(_ fd: Int32) {
    _ = Glibc.close(fd)
  }

  /// `pread(fd, count, offset)`, retried until `count` bytes or end of file.
  public static func read(_ fd: Int32, count: Int, at offset: UInt64) throws(SystemCallError)
    -> [UInt8]
  {
    var buffer = [UInt8](repeating: 0, count: count)
    var done = 0
    while done < count {
      let n = buffer.withUnsafeMutableBytes {
        pread(fd, $0.baseAddress! + done, count - done, off_t(offset) + off_t(done))
      }
      if n < 0 && Glibc.errno == EINTR { continue }
      let got = try check("pread", n)
      if got == 0 { break }
      done += got
    }
    return Array(buffer.prefix(done))
  }

  /// `mmap(address, length, protection, flags, fd, offset)`.
  public static func map(
    _ address: UInt64, _ length: UInt64, _ protection: Protection, flags: Int32, fd: Int32 = -1,
    offset: UInt64 = 0
  ) throws(SystemCallError) -> UInt64 {
    let r = elfload_syscall6(
      Int(SYS_mmap), Int(bitPattern: UInt(address)), Int(length), Int(protection.rawValue),
      Int(flags), Int(fd), Int(offset))
    if r < 0 && r > -4096 { throw SystemCallError("mmap", errno: Int32(-r)) }
    return UInt64(UInt(bitPattern: r))
  }

  /// `munmap(address, length)`.
  public static func unmap(_ address: UInt64, _ length: UInt64) {
    _ = elfload_syscall6(Int(SYS_munmap), Int(bitPattern: UInt(address)), Int(length), 0, 0, 0, 0)
  }

  /// `mprotect(address, length, protection)`.
  public static func protect(_ address: UInt64, _ length: UInt64, _ protection: Int32)
    throws(SystemCallError)
  {
    let r = elfload_syscall6(
      Int(SYS_mprotect), Int(bitPattern: UInt(address)), Int(length), Int(protection), 0, 0, 0)
    if r < 0 { throw SystemCallError("mprotect", errno: Int32(-r)) }
  }

  /// `getrandom(count)`: bytes from the kernel's random pool (blocking only
  /// before the pool is initialised, as the kernel's own AT_RANDOM would).
  public static func randomBytes(_ count: Int) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: count)
    var done = 0
    while done < count {
      let n = bytes.withUnsafeMutableBytes { getrandom($0.baseAddress! + done, count - done, 0) }
      if n < 0 && Glibc.errno == EINTR { continue }
      // getrandom cannot fail otherwise on Linux 3.17+; never spin if it does.
      guard n > 0 else { break }
      done += n
    }
    return bytes
  }

  /// A uniformly random integer below `bound`, from getrandom.
  public static func random(below bound: UInt64) -> UInt64 {
    guard bound > 1 else { return 0 }
    let bytes = randomBytes(8)
    let value = bytes.reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
    return value % bound
  }

  /// `getrlimit(resource)`: the soft limit.
  /// This process's brk heap: [start_brk (field 47 of /proc/self/stat), the
  /// page after the current break), or nil when it cannot be read.
  public static func heap() -> AddressRange? {
    guard let text = readWholeFile("/proc/self/stat"), let close = text.lastIndex(of: UInt8(ascii: ")"))
    else { return nil }
    // Fields from the third (state) on, after the command name in parentheses.
    let fields = text[(close + 1)...].split(separator: UInt8(ascii: " "))
    guard fields.count > 44, let start = UInt64(String(decoding: fields[44], as: UTF8.self)) else {
      return nil
    }
    let current = UInt64(UInt(bitPattern: sbrk(0)))
    guard start > 0, current >= start, let end = pageAlign(current) else { return nil }
    return AddressRange(pageStart(start), end)
  }

  /// `open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)`.
  public static func createFile(_ path: String) throws(SystemCallError) -> Int32 {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    if fd < 0 { throw SystemCallError("open", errno: errno) }
    return fd
  }

  /// Writes all of `bytes`, through short writes and EINTR.
  public static func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws(SystemCallError) {
    var done = 0
    while done < bytes.count {
      let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, $0.count - done) }
      if n < 0 && errno == EINTR { continue }
      if n <= 0 { throw SystemCallError("write", errno: n < 0 ? errno : EIO) }
      done += n
    }
  }

  /// (soft, hard) of a resource limit; RLIM_INFINITY is UInt64.max.
  public static func limits(_ resource: Int32) -> (soft: UInt64, hard: UInt64) {
    var limit = rlimit()
    guard getrlimit(__rlimit_resource_t(UInt32(resource)), &limit) == 0 else { return (.max, .max) }
    return (UInt64(limit.rlim_cur), UInt64(limit.rlim_max))
  }

  /// Sets a soft limit (below the hard one). Returns whether it worked.
  @discardableResult
  public static func setSoftLimit(_ resource: Int32, _ soft: UInt64) -> Bool {
    var limit = rlimit()
    guard getrlimit(__rlimit_resource_t(UInt32(resource)), &limit) == 0 else { return false }
    limit.rlim_cur = rlim_t(soft)
    return setrlimit(__rlimit_resource_t(UInt32(resource)), &limit) == 0
  }

  public static func softLimit(_ resource: Int32) -> UInt64 {
    var limit = rlimit()
    guard getrlimit(__rlimit_resource_t(UInt32(resource)), &limit) == 0 else { return UInt64.max }
    return UInt64(limit.rlim_cur)
  }

  /// `personality(0xffffffff)`: the current persona, unchanged.
  public static func personality() -> UInt64 {
    UInt64(UInt(bitPattern: elfload_syscall6(Int(SYS_personality), 0xffff_ffff, 0, 0, 0, 0, 0)))
  }

  /// The first line of a small /proc or /sys file, or nil.
  public static func readSmallFile(_ path: String) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { _ = Glibc.close(fd) }
    guard let bytes = try? read(fd, count: 256, at: 0) else { return nil }
    return String(decoding: bytes.prefix { $0 != 10 }, as: UTF8.self)
  }

  /// A whole file read with read(2), for /proc files that have no size; nil on error.
  public static func readWholeFile(_ path: String) -> [UInt8]? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { _ = Glibc.close(fd) }
    var text: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
      let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, $0.count) }
      if n < 0 && Glibc.errno == EINTR { continue }
      guard n >= 0 else { return nil }
      if n == 0 { return text }
      text += chunk.prefix(n)
    }
  }

  /// `prctl(option, a2, a3, a4, a5)`, raw.
  public static func prctl(_ option: Int32, _ a2: Int, _ a3: Int = 0, _ a4: Int = 0, _ a5: Int = 0)
    throws(SystemCallError)
  {
    let r = elfload_syscall6(Int(SYS_prctl), Int(option), a2, a3, a4, a5, 0)
    if r < 0 { throw SystemCallError("prctl", errno: Int32(-r)) }
  }
}
