// The kernel's numbers elfload writes down itself (Constants.swift, Errno.swift), against the
// system's own headers and C library: a C program compiled here prints each, so a number one
// off (a seal, a system call, an errno's words) is seen even where no run would show it.
import ElfloadCore
import Foundation
import NoRuntimeZone
import Testing

@Suite("The kernel's numbers, against the system's headers")
struct KernelNumbersTests {
  /// Each C name with elfload's value for it.
  static let named: [(String, Int64)] = [
    ("PROT_READ", Int64(Protection.read.rawValue)), ("PROT_WRITE", Int64(Protection.write.rawValue)),
    ("PROT_EXEC", Int64(Protection.execute.rawValue)), ("PROT_GROWSDOWN", Int64(Protection.growsDown.rawValue)),
    ("MAP_SHARED", Int64(MapFlags.shared.rawValue)), ("MAP_PRIVATE", Int64(MapFlags.private.rawValue)),
    ("MAP_FIXED", Int64(MapFlags.fixed.rawValue)), ("MAP_ANONYMOUS", Int64(MapFlags.anonymous.rawValue)),
    ("MAP_NORESERVE", Int64(MapFlags.noReserve.rawValue)), ("MAP_FIXED_NOREPLACE", Int64(MapFlags.fixedNoReplace.rawValue)),
    ("O_RDONLY", Int64(OpenFlags.readOnly)), ("O_WRONLY", Int64(OpenFlags.writeOnly)), ("O_CREAT", Int64(OpenFlags.create)),
    ("O_TRUNC", Int64(OpenFlags.truncate)), ("O_NONBLOCK", Int64(OpenFlags.nonBlocking)),
    ("O_CLOEXEC", Int64(OpenFlags.closeOnExec)), ("O_PATH", Int64(openPathOnly)),
    ("AT_FDCWD", Int64(atCurrentDirectory)), ("AT_EMPTY_PATH", Int64(atEmptyPath)), ("TCGETS", Int64(terminalGetAttributes)),
    ("S_IFMT", Int64(FileType.mask)), ("S_IFREG", Int64(FileType.regular)), ("S_IFDIR", Int64(FileType.directory)),
    ("S_IFIFO", Int64(FileType.fifo)), ("S_IFCHR", Int64(FileType.characterDevice)), ("S_IFBLK", Int64(FileType.blockDevice)),
    ("S_IFSOCK", Int64(FileType.socket)),
    ("F_GETFD", Int64(FileControl.getDescriptorFlags)), ("F_SETFD", Int64(FileControl.setDescriptorFlags)),
    ("FD_CLOEXEC", Int64(FileControl.closeOnExecFlag)), ("F_GETFL", Int64(FileControl.getStatusFlags)),
    ("F_SETSIG", Int64(FileControl.setSignal)), ("F_DUPFD_CLOEXEC", Int64(FileControl.duplicateCloseOnExec)),
    ("F_ADD_SEALS", Int64(FileControl.addSeals)), ("F_SETLEASE", Int64(FileControl.setLease)),
    ("F_RDLCK", Int64(FileControl.readLease)), ("F_UNLCK", Int64(FileControl.noLease)),
    ("F_SEAL_SEAL", Int64(Seals.seal.rawValue)), ("F_SEAL_SHRINK", Int64(Seals.shrink.rawValue)),
    ("F_SEAL_GROW", Int64(Seals.grow.rawValue)), ("F_SEAL_WRITE", Int64(Seals.write.rawValue)),
    ("MFD_CLOEXEC", Int64(MemfdFlags.closeOnExec.rawValue)), ("MFD_ALLOW_SEALING", Int64(MemfdFlags.allowSealing.rawValue)),
    ("MFD_EXEC", Int64(MemfdFlags.executable.rawValue)),
    ("TMPFS_MAGIC", FileSystemMagic.tmpfs), ("RAMFS_MAGIC", FileSystemMagic.ramfs),
    ("HUGETLBFS_MAGIC", FileSystemMagic.hugetlbfs), ("MADV_DONTNEED", Int64(Advice.dontNeed)),
    ("PR_SET_PDEATHSIG", Int64(PrctlOption.setParentDeathSignal)), ("PR_SET_NAME", Int64(PrctlOption.setName)),
    ("PR_SET_MM", Int64(PrctlOption.setMM)), ("PR_SET_MM_MAP", Int64(PrctlOption.setMMMap)),
    ("RLIMIT_FSIZE", Int64(Resource.fileSize)), ("RLIMIT_STACK", Int64(Resource.stack)),
    ("RLIMIT_AS", Int64(Resource.addressSpace)),
    ("SIGHUP", Int64(Signal.hangup)), ("SIGINT", Int64(Signal.interrupt)), ("SIGQUIT", Int64(Signal.quit)),
    ("SIGKILL", Int64(Signal.kill)), ("SIGUSR1", Int64(Signal.user1)), ("SIGWINCH", Int64(Signal.windowChanged)),
    ("SIGSEGV", Int64(Signal.segv)), ("SIGTERM", Int64(Signal.terminate)), ("SIGCHLD", Int64(Signal.child)),
    ("SIGIO", Int64(Signal.io)), ("SI_KERNEL", Int64(Signals.sentByKernel)),
    ("ADDR_NO_RANDOMIZE", Int64(addrNoRandomize)), ("X_OK", Int64(executeAccess)),
  ]

  /// `__NR_` names from Syscall's cases: rtSigaction is rt_sigaction.
  static func systemCallName(_ call: Syscall) -> String {
    "__NR_" + String(describing: call).reduce(into: "") { name, c in name += c.isUppercase ? "_" + c.lowercased() : String(c) }
  }

  /// Compiles and runs a C program printing `NAME VALUE` for every name its headers define.
  static func headerValues(_ names: [String]) throws -> [String: Int64] {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kernel-numbers-\(getpid())")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let headers = [
      "fcntl.h", "signal.h", "stdio.h", "unistd.h", "sys/mman.h", "sys/stat.h", "sys/syscall.h", "sys/prctl.h",
      "sys/resource.h", "sys/personality.h", "sys/ioctl.h", "linux/memfd.h", "linux/magic.h",
    ]
    var source = "#define _GNU_SOURCE\n" + headers.map { "#include <\($0)>\n" }.joined() + "int main(void) {\n"
    for name in names {
      // ADDR_NO_RANDOMIZE is an enumerator (sys/personality.h), not a macro #ifdef can see.
      let line = "  printf(\"\(name) %lld\\n\", (long long)(\(name)));\n"
      source += name == "ADDR_NO_RANDOMIZE" ? line : "#ifdef \(name)\n\(line)#endif\n"
    }
    source += "  return 0;\n}\n"
    try source.write(to: dir.appendingPathComponent("numbers.c"), atomically: true, encoding: .utf8)
    let compiler = Process()
    compiler.executableURL = URL(fileURLWithPath: "/usr/bin/cc")
    compiler.arguments = ["-o", dir.appendingPathComponent("numbers").path, dir.appendingPathComponent("numbers.c").path]
    try compiler.run()
    compiler.waitUntilExit()
    try #require(compiler.terminationStatus == 0, "cc failed on \(dir.path)/numbers.c")
    let program = Process()
    let output = Pipe()
    program.executableURL = dir.appendingPathComponent("numbers")
    program.standardOutput = output
    try program.run()
    let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    program.waitUntilExit()
    var values: [String: Int64] = [:]
    for line in text.split(separator: "\n") {
      let words = line.split(separator: " ")
      if words.count == 2, let value = Int64(words[1]) { values[String(words[0])] = value }
    }
    return values
  }

  @Test(
    "every flag, command, file type, signal and system call number is the headers' own",
    .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/cc")))
  func numbers() throws {
    let calls = Syscall.allCases.map { (Self.systemCallName($0), Int64($0.rawValue)) }
    let all = Self.named + calls
    let headers = try Self.headerValues(all.map(\.0))
    for (name, value) in all {
      // MFD_EXEC is newer than some systems' headers (Linux 6.3); every other name is in them.
      if name == "MFD_EXEC" && headers[name] == nil { continue }
      #expect(headers[name] == value, "\(name): elfload says \(value), the headers \(headers[name].map(String.init) ?? "nothing")")
    }
    #expect(calls.count == Syscall.allCases.count && headers.count >= all.count - 1)
  }

  @Test("the numbers the launcher's C and the tools share: the residency rows' picture")
  func sharedWithTheCode() {
    #expect(ResidencyFormat.picturedPages == Int(ELFLOAD_RESIDENCY_PAGES))
  }

  @Test("every errno elfload names, and every one it has words for, as the C library says it")
  func errnoWords() {
    let named: [(Errno, Int32)] = [
      (.EPERM, EPERM), (.ENOENT, ENOENT), (.ESRCH, ESRCH), (.EINTR, EINTR), (.EIO, EIO), (.ENOEXEC, ENOEXEC),
      (.EBADF, EBADF), (.ECHILD, ECHILD), (.EAGAIN, EAGAIN), (.ENOMEM, ENOMEM), (.EACCES, EACCES), (.EFAULT, EFAULT),
      (.EEXIST, EEXIST), (.ENOTDIR, ENOTDIR), (.EISDIR, EISDIR), (.EINVAL, EINVAL), (.ETXTBSY, ETXTBSY),
      (.EFBIG, EFBIG), (.ENOSPC, ENOSPC), (.ENAMETOOLONG, ENAMETOOLONG), (.ENOSYS, ENOSYS), (.ELOOP, ELOOP),
    ]
    for (errno, value) in named {
      #expect(errno.rawValue == value && errno.description == String(cString: strerror(value)), "\(value): \(errno)")
    }
    // The words it has are glibc's; a number it has none for says so with the number.
    var worded = 0
    for value in Int32(0)...140 {
      let words = Errno(rawValue: value).description
      if words == "Unknown error \(value)" { continue }
      worded += 1
      #expect(words == String(cString: strerror(value)), "\(value)")
    }
    #expect(worded == 34)
  }
}
