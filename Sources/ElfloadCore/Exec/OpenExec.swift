// The kernel's way into a program, before anything is mapped: open_exec, the binfmt_script
// detour for `#!` files, and the checks load_elf_interp makes of an interpreter.

/// An opened, validated program: the file stays open until it is mapped.
public struct OpenedProgram: Sendable {
  public var fd: FileDescriptor
  public var image: Image
}

/// Reads an ELF file through pread, serving the first page from one read.
struct FileSource: ByteSource {
  let fd: FileDescriptor
  let size: UInt64
  let head: [UInt8]

  init(fd: FileDescriptor, size: UInt64) throws(SystemCallError) {
    self.fd = fd
    self.size = size
    head = try Kernel.read(fd, count: Int(min(size, pageSize)), at: 0)
  }

  func bytes(at offset: UInt64, count: Int, for what: String) throws(ELFError) -> [UInt8] {
    let (end, overflow) = offset.addingReportingOverflow(UInt64(count))
    guard !overflow, end <= size else {
      throw .truncated(what: what, offset: offset, needed: UInt64(count), fileSize: size)
    }
    if end <= UInt64(head.count) { return Array(head[Int(offset)..<Int(end)]) }
    let got: [UInt8]
    do { got = try Kernel.read(fd, count: count, at: offset) } catch { throw .unreadable(what: what, error) }
    guard got.count == count else {
      throw .truncated(what: what, offset: offset, needed: UInt64(count), fileSize: size)
    }
    return got
  }
}

/// What a file turned out to be.
public enum ExecutableFile: Sendable {
  case program(OpenedProgram)
  case script(ScriptLine)
}

public enum OpenExec {
  /// vm.mmap_min_addr: mappings below it fail without CAP_SYS_RAWIO.
  public static var minimumAddress: UInt64 {
    Kernel.readNumber(Array("/proc/sys/vm/mmap_min_addr".utf8)) ?? pageSize
  }

  /// Opens the file at `path` the way execve checks it: it must exist, be a
  /// regular file and be executable, and (as execve's deny_write_access)
  /// not be open for writing; then it is a `#!` script, or must be a valid
  /// ELF file. Reads the first page once for both. A FIFO, socket or device
  /// is refused from its status, before any open (opening one can block, or
  /// do something: a watchdog device starts counting); O_NONBLOCK covers a
  /// file replaced meanwhile. `refuseWriters: false` (inspect) skips the
  /// check for writers: describing a file is not running it.
  public static func openFile(_ path: [UInt8], refuseWriters: Bool = true) throws(LoadError) -> ExecutableFile {
    let type: UInt32
    do { type = try Kernel.status(path).type } catch {
      if error.errno == .ENOENT || error.errno == .ENOTDIR { throw .notFound }
      throw .open(error)
    }
    if type != FileType.regular { throw .notRegularFile(FileType.name(type)) }
    let fd: FileDescriptor
    do { fd = try Kernel.open(path, OpenFlags.readOnly | OpenFlags.nonBlocking) } catch {
      if error.errno == .ENOENT || error.errno == .ENOTDIR { throw .notFound }
      throw .open(error)
    }
    do {
      let opened = try classify(fd, path, refuseWriters: refuseWriters)
      if case .script = opened { Kernel.close(fd) }
      return opened
    } catch {
      Kernel.close(fd)
      throw error
    }
  }

  /// (`path` nil: a descriptor's file, whose permission is asked of the descriptor.)
  static func classify(_ fd: FileDescriptor, _ path: [UInt8]?, refuseWriters: Bool) throws(LoadError) -> ExecutableFile {
    let status: FileStatus
    do { status = try Kernel.status(fd) } catch { throw .system(error) }
    guard status.type == FileType.regular else { throw .notRegularFile(FileType.name(status.type)) }
    do {
      if let path { try Kernel.access(path, executeAccess) } else { try Kernel.access(fd, executeAccess) }
    } catch { throw .notExecutable }
    if refuseWriters && isOpenForWriting(fd) { throw .textBusy }
    if status.size == 0 { throw .empty }
    let source: FileSource
    do { source = try FileSource(fd: fd, size: status.size) } catch { throw .system(error) }
    do {
      if let line = try ScriptLine(parsing: source.head) { return .script(line) }
    } catch {
      throw .script(error)
    }
    do {
      return .program(OpenedProgram(fd: fd, image: try Image(parsing: source)))
    } catch {
      if case .badMagic = error, looksLikeText(source.head) { throw .textWithoutInterpreter(error) }
      // The kernel opens the interpreter before it looks at the segments: a
      // file whose interpreter is missing is refused for that, first.
      if error.comesAfterTheInterpreter {
        let interpreter: [UInt8]?
        do { interpreter = try Image.interpreterPath(in: source) } catch { throw .invalid(error) }
        if let interpreter {
          do { Kernel.close(try open(interpreter).fd) } catch let problem { throw .interpreter(path: interpreter, problem) }
        }
      }
      throw .invalid(error)
    }
  }

  /// Whether some process has the file open for writing, which makes execve
  /// fail with ETXTBSY. User space can ask only one way: a read lease
  /// (F_SETLEASE, F_RDLCK) is refused with EAGAIN exactly then. It needs the
  /// file's owner or CAP_LEASE (root); otherwise, or where leases are off
  /// (fs.leases-enable) or unsupported, this cannot be known and the answer
  /// is false. The lease is let go at once; while it is held, a writer's
  /// open would make the kernel signal the holder, so that signal is set to
  /// SIGWINCH, whose action is to ignore (a freshly executed elfload has no
  /// handlers) instead of SIGIO's, which is to die. (Three system calls, a
  /// few microseconds, for each file opened to run.)
  static func isOpenForWriting(_ fd: FileDescriptor) -> Bool {
    _ = Kernel.syscall(.fcntl, Int(fd.rawValue), Int(FileControl.setSignal), Int(Signal.windowChanged))
    let r = Kernel.syscall(.fcntl, Int(fd.rawValue), Int(FileControl.setLease), FileControl.readLease)
    if r == 0 { _ = Kernel.syscall(.fcntl, Int(fd.rawValue), Int(FileControl.setLease), FileControl.noLease) }
    return r == -Int(Errno.EAGAIN.rawValue)
  }

  /// Whether the start of a file reads as text (no NUL, no control bytes
  /// but whitespace): a script without a #! line, most likely.
  static func looksLikeText(_ head: [UInt8]) -> Bool {
    let sample = head.prefix(512)
    return !sample.isEmpty && sample.allSatisfy { $0 >= 0x20 || $0 == 9 || $0 == 10 || $0 == 13 || $0 == 12 }
  }

  /// Opens and validates the ELF program at `path` (a `#!` script is not one).
  public static func open(_ path: [UInt8], refuseWriters: Bool = true) throws(LoadError) -> OpenedProgram {
    switch try openFile(path, refuseWriters: refuseWriters) {
    case .program(let program): return program
    case .script: throw .invalid(.badMagic(Array("#!".utf8)))
    }
  }

  /// Opens and validates the interpreter a program names, as the kernel's
  /// open_exec and load_elf_interp do: it must exist, be an executable
  /// regular file and a valid x86-64 ELF file, and need no interpreter
  /// itself; and (elfload's rule) be position-independent, as every dynamic
  /// linker is.
  public static func openInterpreter(_ path: [UInt8], refuseWriters: Bool = true) throws(LoadError) -> OpenedProgram {
    let opened: OpenedProgram
    do { opened = try open(path, refuseWriters: refuseWriters) } catch { throw .interpreter(path: path, error) }
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

  /// Follows `#!` lines from `path` as exec_binprm does (up to 5 levels):
  /// the program to load, opened, and its argv. AT_EXECFN and the task's
  /// name stay the path the user gave. (`depth`: levels of scripts already followed.)
  public static func followScripts(_ path: [UInt8], _ arguments: [[UInt8]], refuseWriters: Bool = true, depth: Int = 0)
    throws(LoadError) -> (path: [UInt8], arguments: [[UInt8]], program: OpenedProgram)
  {
    var path = path
    var arguments = arguments
    var depth = depth
    while true {
      let opened: ExecutableFile
      do { opened = try openFile(path, refuseWriters: refuseWriters) } catch {
        throw depth == 0 ? error : .scriptInterpreter(path: path, error)
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

  /// A name without a slash is looked up in PATH, as `env`, `strace` and
  /// `valgrind` do (execvp's rule); execve itself would not, but a person typing
  /// `elfload ls` means /bin/ls. A name with a slash is used as it is. As execvp:
  /// an empty PATH entry is the working directory, and nothing else is (a
  /// program there that PATH does not name is not found); the first executable
  /// regular file wins; failing that, the first file found that cannot be run
  /// (execvp's EACCES), for opening to refuse; failing that, not found.
  public static func resolve(_ name: [UInt8], searchPath: [UInt8]?) throws(LoadError) -> [UInt8] {
    guard !name.contains(UInt8(ascii: "/")), !name.isEmpty else { return name }
    let search = searchPath ?? Array("/usr/local/bin:/usr/bin:/bin".utf8)
    var denied: [UInt8]?
    for directory in search.split(separator: UInt8(ascii: ":"), omittingEmptySubsequences: false) {
      let dir = directory.isEmpty ? [UInt8(ascii: ".")] : Array(directory)
      let candidate = dir + [UInt8(ascii: "/")] + name
      guard let status = try? Kernel.status(candidate) else { continue }
      if status.type == FileType.regular, (try? Kernel.access(candidate, executeAccess)) != nil { return candidate }
      if denied == nil { denied = candidate }
    }
    guard let denied else { throw .notFound }
    return denied
  }
}
