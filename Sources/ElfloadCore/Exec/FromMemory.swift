// Programs that are not a path: `elfload -` reads one from a stream into a sealed memfd (only as
// far as its headers say it reaches), and `--fd N` runs one open on a descriptor, each as
// fexecve (execveat(fd, "", AT_EMPTY_PATH)) runs that descriptor.

/// How far an ELF file reaches by its own headers: the ELF header, the program header table
/// and every entry's file bytes, the section header table and every section's bytes (all but
/// SHT_NOBITS). That is the file as a linker, strip or objcopy writes it (they put the section
/// header table last), and everything the kernel, a debugger or the program reading itself
/// looks at; bytes appended past it (a self-extracting archive's payload) are not the ELF's.
public enum ELFExtent {
  /// The ELF header: what must be read before anything else is known.
  public static let headerSize: UInt64 = 64

  /// The end of what the headers among the first `available` bytes name (`read` gives bytes
  /// within them). A table not yet in hand counts by its own end: read that far and ask again,
  /// until the answer is within what was read. nil: an end overflows 64 bits (malformed: read
  /// to the end of the stream, and let the parser say what is wrong).
  public static func end(available: UInt64, _ read: (UInt64, Int) -> [UInt8]?) -> UInt64? {
    guard available >= headerSize, let header = read(0, Int(headerSize)) else { return headerSize }
    let r = LittleEndianReader(bytes: header)
    var end = headerSize
    func reach(_ offset: UInt64, _ size: UInt64) -> Bool {
      let (e, overflow) = offset.addingReportingOverflow(size)
      end = max(end, e)
      return !overflow
    }
    /// The table's bytes when they are in hand; nil (its end counted) when not yet.
    func table(_ offset: UInt64, _ count: UInt64, _ entrySize: UInt64) -> [UInt8]?? {
      let (size, o1) = count.multipliedReportingOverflow(by: entrySize)
      guard !o1, reach(offset, size) else { return .none }
      guard offset + size <= available, size <= UInt64(Int.max) else { return .some(nil) }
      return .some(read(offset, Int(size)))
    }
    let phoff = r.u64(32)
    let shoff = r.u64(40)
    let phentsize = UInt64(r.u16(54))
    let phnum = UInt64(r.u16(56))
    let shentsize = UInt64(r.u16(58))
    var shnum = UInt64(r.u16(60))
    if phnum > 0 {
      guard let phdrs = table(phoff, phnum, phentsize) else { return nil }
      if let phdrs, phentsize >= 56 {
        let t = LittleEndianReader(bytes: phdrs)
        for i in 0..<Int(phnum) {
          guard reach(t.u64(i * Int(phentsize) + 8), t.u64(i * Int(phentsize) + 32)) else { return nil }
        }
      }
    }
    guard shoff != 0, shentsize >= 64 else { return end }
    if shnum == 0 {
      // Extended numbering (more than 0xff00 sections): the count is section 0's sh_size.
      guard let first = table(shoff, 1, shentsize) else { return nil }
      guard let first else { return end }
      shnum = LittleEndianReader(bytes: first).u64(32)
    }
    guard let shdrs = table(shoff, shnum, shentsize) else { return nil }
    if let shdrs {
      let t = LittleEndianReader(bytes: shdrs)
      for i in 0..<Int(shnum) {
        let type = t.u32(i * Int(shentsize) + 4)
        guard type != 0, type != 8 else { continue }  // SHT_NULL, SHT_NOBITS: no bytes in the file
        guard reach(t.u64(i * Int(shentsize) + 24), t.u64(i * Int(shentsize) + 32)) else { return nil }
      }
    }
    return end
  }
}

/// `elfload -`: the program read from a stream into a memfd.
public enum ProgramStream {
  /// The largest program read by default.
  public static let defaultLimit: UInt64 = 1 << 30
  /// The memfd's name: the program's /proc/self/comm is `memfd:stdin`, its /proc/self/exe
  /// `/memfd:stdin (deleted)`.
  public static let memfdName = Array("stdin".utf8)
  static let chunk = 1 << 16

  /// The largest program read: 1 GiB, or RLIMIT_FSIZE (ulimit -f) when lower, which a
  /// memfd's writes count against (past it, the kernel sends SIGXFSZ).
  public static var limit: (bytes: UInt64, byFileSizeLimit: Bool) {
    let fileSize = Kernel.softLimit(Resource.fileSize)
    return fileSize < defaultLimit ? (fileSize, true) : (defaultLimit, false)
  }

  /// Reads a program from `input` into a new memfd and seals it (no write, no growing or
  /// shrinking, no more seals), so that nothing can change it under the running program.
  /// An ELF file is read exactly as far as its headers say it reaches (`ELFExtent`): never a
  /// byte past it, so what follows it on the stream is the program's standard input, and a
  /// stream that stays open after it (a socket) does not hang the start. A `#!` script has no
  /// such end: it is read to the end of the stream, and its descriptor is left open across
  /// exec (not close-on-exec), as its interpreter must open `/dev/fd/N`. Anything else is
  /// refused after its first 64 bytes, as `execve` refuses such a file. The memfd is
  /// close-on-exec for an ELF program, as a careful caller of fexecve makes it: the program
  /// does not inherit it.
  public static func read(_ input: FileDescriptor, limit: (bytes: UInt64, byFileSizeLimit: Bool)) throws(LoadError)
    -> FileDescriptor
  {
    // (A closed standard input would otherwise be the memfd's own descriptor, 0.)
    let type: UInt32
    do { type = try Kernel.status(input).type } catch { throw .stream(error) }
    if Kernel.isTerminal(input) { throw .streamIsTerminal }
    let memfd: FileDescriptor
    do {
      memfd = try Kernel.memfdCreate(memfdName, [.closeOnExec, .allowSealing, .executable])
    } catch {
      guard error.errno == .EINVAL else { throw .memfd(error) }
      // Before Linux 6.3 there is no MFD_EXEC: every memfd is executable.
      do { memfd = try Kernel.memfdCreate(memfdName, [.closeOnExec, .allowSealing]) } catch { throw .memfd(error) }
    }
    do {
      // A pipe is spliced and a file sent into the memfd, in the kernel: one copy, not two.
      let inKernel: Bool? = type == FileType.fifo ? true : type == FileType.regular ? false : nil
      try copy(input, into: memfd, limit: limit, inKernel: inKernel)
      return memfd
    } catch {
      Kernel.close(memfd)
      throw error
    }
  }

  /// (`inKernel`: true for a pipe (splice), false for a file (sendfile), nil: read and write.)
  static func copy(
    _ input: FileDescriptor, into memfd: FileDescriptor, limit: (bytes: UInt64, byFileSizeLimit: Bool), inKernel: Bool?
  ) throws(LoadError) {
    var inKernel = inKernel
    var buffer = [UInt8](repeating: 0, count: inKernel == nil ? chunk : 1)
    var got: UInt64 = 0
    /// Reads up to `target` bytes in all (never more); false at the end of the stream.
    func fill(to target: UInt64) throws(LoadError) -> Bool {
      while got < target {
        let n: Int
        if let isPipe = inKernel {
          do { n = try Kernel.transfer(from: input, isPipe: isPipe, to: memfd, count: Int(min(1 << 30, target - got))) } catch {
            // A non-blocking stream (its parent's choice) is waited for, not refused.
            if error.errno == .EAGAIN {
              Kernel.waitUntilReadable(input)
              continue
            }
            guard error.errno == .EINVAL || error.errno == .ENOSYS else { throw .stream(error) }
            inKernel = nil
            buffer = [UInt8](repeating: 0, count: chunk)
            continue
          }
        } else {
          do { n = try Kernel.readSome(input, &buffer, from: 0, count: Int(min(UInt64(chunk), target - got))) } catch {
            if error.errno == .EAGAIN {
              Kernel.waitUntilReadable(input)
              continue
            }
            throw .stream(error)
          }
          if n > 0 { do { try Kernel.writeAll(memfd, buffer, count: n) } catch { throw .system(error) } }
        }
        if n == 0 { return false }
        got += UInt64(n)
      }
      return true
    }
    /// Reads to the end of the stream, refusing one past `limit`.
    func fillToEnd() throws(LoadError) {
      guard try fill(to: limit.bytes) else { return }
      // At the limit: one byte more says whether the stream goes on.
      var byte: [UInt8] = [0]
      var n = -1
      while n < 0 {
        do { n = try Kernel.readSome(input, &byte, from: 0, count: 1) } catch {
          guard error.errno == .EAGAIN else { throw .stream(error) }
          Kernel.waitUntilReadable(input)
        }
      }
      if n > 0 { throw .streamTooLarge(limit: limit.bytes, byFileSizeLimit: limit.byFileSizeLimit) }
    }
    _ = try fill(to: min(ELFExtent.headerSize, limit.bytes))
    let head: [UInt8]
    do { head = try Kernel.read(memfd, count: 4, at: 0) } catch { throw .system(error) }
    if got == 0 {
      // Nothing read: empty, or a limit of 0 and something to read.
      try fillToEnd()
      throw .empty
    }
    if head == [0x7f, 0x45, 0x4c, 0x46] {
      while true {
        let have = got
        let end = ELFExtent.end(available: have) { offset, count in try? Kernel.read(memfd, count: count, at: offset) }
        guard let end else {
          try fillToEnd()
          break
        }
        if end <= got { break }
        if end > limit.bytes {
          try fillToEnd()
          break
        }
        if try !fill(to: end) { break }
      }
    } else if head.starts(with: [UInt8(ascii: "#"), UInt8(ascii: "!")]) {
      try fillToEnd()
      do { try Kernel.setCloseOnExec(memfd, false) } catch { throw .system(error) }
    }
    do { try Kernel.addSeals(memfd, [.write, .grow, .shrink, .seal]) } catch { throw .system(error) }
  }
}

extension OpenExec {
  /// The path the kernel gives a program run from descriptor `fd`: its AT_EXECFN, and the
  /// script's name its `#!` interpreter is given.
  public static func descriptorPath(_ fd: FileDescriptor) -> [UInt8] { Array("/dev/fd/\(Int(fd.rawValue))".utf8) }

  /// Opens the program on descriptor `fd` as execveat(fd, "", AT_EMPTY_PATH) does: it must be
  /// an executable regular file (the mount's noexec counts), not open for writing; the kernel
  /// then opens the file again, so the descriptor's own access mode (write-only, O_PATH) does
  /// not matter. With `reopen`, so does elfload (through /proc/self/fd/N; a duplicate where
  /// /proc is missing), and the descriptor it returns is its own (closed at the jump, the
  /// caller's stays open, as fexecve leaves it); without, `fd` itself is used (a memfd elfload
  /// made).
  public static func openDescriptor(_ fd: FileDescriptor, reopen: Bool) throws(LoadError) -> ExecutableFile {
    let status: FileStatus
    do { status = try Kernel.status(fd) } catch { throw .open(error) }
    if status.type != FileType.regular { throw .notRegularFile(FileType.name(status.type)) }
    var own = fd
    if reopen {
      do {
        own = try Kernel.open(Array("/proc/self/fd/\(Int(fd.rawValue))".utf8), OpenFlags.readOnly | OpenFlags.nonBlocking)
      } catch {
        guard error.errno == .ENOENT else { throw .open(error) }
        do { own = try Kernel.duplicate(fd) } catch { throw .open(error) }
      }
    }
    do {
      let opened = try classify(own, nil, refuseWriters: true)
      if case .script = opened, own != fd { Kernel.close(own) }
      return opened
    } catch {
      if own != fd { Kernel.close(own) }
      throw error
    }
  }

  /// Follows `#!` lines from the program on descriptor `fd` as fexecve does: its path is
  /// `/dev/fd/N` (AT_EXECFN, and the script's name for its interpreter). The kernel refuses a
  /// script whose descriptor is close-on-exec (ENOENT: its interpreter could not open
  /// /dev/fd/N once exec closed it), and so does elfload.
  public static func followScripts(descriptor fd: FileDescriptor, reopen: Bool, _ arguments: [[UInt8]]) throws(LoadError)
    -> (path: [UInt8], arguments: [[UInt8]], program: OpenedProgram)
  {
    let path = descriptorPath(fd)
    switch try openDescriptor(fd, reopen: reopen) {
    case .program(let program):
      return (path, arguments, program)
    case .script(let line):
      if Kernel.isCloseOnExec(fd) == true { throw .scriptCloseOnExec(descriptor: fd.rawValue) }
      return try followScripts(line.interpreter, line.arguments(script: path, original: arguments), depth: 1)
    }
  }

  /// The task's name after execveat(fd, "", AT_EMPTY_PATH) (Linux 6.14 and later): the name of
  /// the file that was finally run (`memfd:NAME` for a memfd; a script's interpreter's own name,
  /// symbolic links followed), not `N`. nil when /proc cannot say.
  public static func dentryName(_ fd: FileDescriptor) -> [UInt8]? {
    guard let link = try? Kernel.readLink(Array("/proc/self/fd/\(Int(fd.rawValue))".utf8)),
      let last = link.split(separator: UInt8(ascii: "/")).last
    else { return nil }
    var name = Array(last)
    // /proc adds " (deleted)" to a file with no name left: a memfd has never had one.
    let deleted = Array(" (deleted)".utf8)
    if let status = try? Kernel.status(fd), status.links == 0, name.count > deleted.count,
      Array(name.suffix(deleted.count)) == deleted
    {
      name.removeLast(deleted.count)
    }
    return name
  }
}
