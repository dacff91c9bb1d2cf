// Reading a program from a stream (`elfload -`) and opening one from a descriptor (`--fd N`),
// in-process: how far an ELF reaches, that nothing past it is read, the close-on-exec rule.
import ElfloadCore
import Foundation
import Testing

/// A pipe holding `bytes`, its writing end closed: what `elfload -` reads from. `slowly`: the
/// writer pauses between chunks, and the reading end is non-blocking (a parent's choice).
private func pipe(holding bytes: [UInt8], slowly: Bool = false) throws -> FileDescriptor {
  var ends: [Int32] = [0, 0]
  try #require(Glibc.pipe(&ends) == 0)
  if slowly { _ = fcntl(ends[0], F_SETFL, O_NONBLOCK) }
  let writing = ends[1]
  // A pipe holds 64 KiB; the writer runs beside the reader for more.
  let writer = Thread {
    // A reader that stops early (a refusal) makes the write fail with EPIPE, not kill the tests.
    var pipeSignal = sigset_t()
    sigemptyset(&pipeSignal)
    sigaddset(&pipeSignal, SIGPIPE)
    pthread_sigmask(SIG_BLOCK, &pipeSignal, nil)
    _ = bytes.withUnsafeBytes { buffer in
      var done = 0
      while done < buffer.count {
        let n = Glibc.write(writing, buffer.baseAddress! + done, min(buffer.count - done, slowly ? 4096 : Int.max))
        if n <= 0 { break }
        done += n
        if slowly { usleep(1000) }
      }
    }
    close(writing)
  }
  writer.start()
  return FileDescriptor(rawValue: ends[0])
}

/// What is left on a descriptor, to its end.
private func rest(_ fd: FileDescriptor) -> [UInt8] {
  var out: [UInt8] = []
  var chunk = [UInt8](repeating: 0, count: 4096)
  while true {
    let n = read(fd.rawValue, &chunk, chunk.count)
    if n <= 0 { return out }
    out += chunk.prefix(n)
  }
}

private func contents(_ fd: FileDescriptor) throws -> [UInt8] {
  let size = try Kernel.status(fd).size
  return try Kernel.read(fd, count: Int(size), at: 0)
}

/// The programs elfload's tests run, and the system's: where a linker put the section
/// header table (last), the headers' extent is the file's size.
private let realFiles = ["/bin/ls", "/bin/true", "/usr/bin/python3", "/usr/bin/busybox", "/usr/bin/gcc"]
  .filter { FileManager.default.isReadableFile(atPath: $0) }

@Test(arguments: realFiles)
func extentOfARealProgramIsItsSize(_ path: String) throws {
  let bytes = try #require(FileManager.default.contents(atPath: path).map { Array($0) })
  let end = ELFExtent.end(available: UInt64(bytes.count)) { offset, count in
    Int(offset) + count <= bytes.count ? Array(bytes[Int(offset)..<Int(offset) + count]) : nil
  }
  #expect(end == UInt64(bytes.count))
}

/// The extent grows as the headers are read: first the header, then the tables, then what
/// they name; a section placed after the section header table counts, SHT_NOBITS does not.
@Test func extentFollowsTheHeaders() {
  var elf = [UInt8](repeating: 0, count: 64)
  elf[0..<4] = [0x7f, 0x45, 0x4c, 0x46]
  func put(_ value: UInt64, at: Int, size: Int) {
    for i in 0..<size { elf[at + i] = UInt8(truncatingIfNeeded: value >> (8 * i)) }
  }
  put(64, at: 32, size: 8)  // e_phoff
  put(56, at: 54, size: 2)  // e_phentsize
  put(1, at: 56, size: 2)  // e_phnum
  put(200, at: 40, size: 8)  // e_shoff
  put(64, at: 58, size: 2)  // e_shentsize
  put(2, at: 60, size: 2)  // e_shnum
  func end(_ available: Int) -> UInt64? {
    ELFExtent.end(available: UInt64(available)) { offset, count in
      Int(offset) + count <= min(available, elf.count) ? Array(elf[Int(offset)..<Int(offset) + count]) : nil
    }
  }
  #expect(end(10) == 64)
  // The tables' ends: program headers at 64 (56 bytes), two section headers at 200.
  #expect(end(64) == 328)
  elf += [UInt8](repeating: 0, count: 328 - 64)
  put(1, at: 64, size: 4)  // PT_LOAD
  put(0, at: 64 + 8, size: 8)
  put(150, at: 64 + 32, size: 8)  // p_filesz: within the tables' end
  put(1, at: 200 + 64 + 4, size: 4)  // section 1: SHT_PROGBITS
  put(400, at: 200 + 64 + 24, size: 8)
  put(100, at: 200 + 64 + 32, size: 8)  // to 500: past the table
  #expect(end(328) == 500)
  put(8, at: 200 + 64 + 4, size: 4)  // SHT_NOBITS: no bytes in the file
  #expect(end(328) == 328)
  put(UInt64.max, at: 64 + 8, size: 8)  // p_offset + p_filesz overflows
  #expect(end(328) == nil)
}

/// With no program headers (e_phnum 0) and no section headers (e_shoff 0), e_phoff names an
/// empty table, whatever it holds: the ELF is its 64-byte header, and nothing past it is read.
@Test func noProgramHeadersReachNothing() {
  var elf = [UInt8](repeating: 0, count: 64)
  elf[0..<4] = [0x7f, 0x45, 0x4c, 0x46]
  elf[32] = 0x88
  elf[33] = 0x13  // e_phoff 5000
  elf[54] = 56  // e_phentsize
  #expect(ELFExtent.end(available: 64) { offset, count in
    Int(offset) + count <= 64 ? Array(elf[Int(offset)..<Int(offset) + count]) : nil
  } == 64)
}

/// An ELF program is read exactly as far as its headers reach, never a byte past it: what
/// follows is left on the stream (the program's standard input).
@Test func nothingPastTheProgramIsRead() throws {
  let program = try #require(FileManager.default.contents(atPath: "/bin/true").map { Array($0) })
  let tail = Array("the program's own input\n".utf8)
  let input = try pipe(holding: program + tail)
  defer { close(input.rawValue) }
  let memfd = try ProgramStream.read(input, limit: (ProgramStream.defaultLimit, false))
  defer { Kernel.close(memfd) }
  #expect(try contents(memfd) == program)
  #expect(rest(input) == tail)
  // Sealed: nobody can change it under the running program.
  #expect(Glibc.write(memfd.rawValue, "x", 1) == -1 && errno == EPERM)
  #expect(Kernel.isCloseOnExec(memfd) == true)
}

/// A non-blocking stream that is slow to come is waited for, not refused (EAGAIN).
@Test func aNonBlockingStreamIsWaitedFor() throws {
  let program = try #require(FileManager.default.contents(atPath: "/bin/true").map { Array($0) })
  let input = try pipe(holding: program + Array("after\n".utf8), slowly: true)
  defer { close(input.rawValue) }
  let memfd = try ProgramStream.read(input, limit: (ProgramStream.defaultLimit, false))
  defer { Kernel.close(memfd) }
  #expect(try contents(memfd) == program)
}

/// A script is read to the end of its stream, and left open across exec for its interpreter.
@Test func aScriptIsReadToItsEnd() throws {
  let script = Array("#!/bin/sh\necho hi\n".utf8) + [UInt8](repeating: UInt8(ascii: "#"), count: 200_000)
  let input = try pipe(holding: script)
  defer { close(input.rawValue) }
  let memfd = try ProgramStream.read(input, limit: (ProgramStream.defaultLimit, false))
  defer { Kernel.close(memfd) }
  #expect(try contents(memfd) == script)
  #expect(Kernel.isCloseOnExec(memfd) == false)
}

/// One byte over the limit is refused; a program of exactly the limit is read.
@Test func theLimit() throws {
  let program = try #require(FileManager.default.contents(atPath: "/bin/true").map { Array($0) })
  let exact = try ProgramStream.read(try pipe(holding: program), limit: (UInt64(program.count), true))
  Kernel.close(exact)
  #expect(throws: LoadError.self) {
    try ProgramStream.read(try pipe(holding: program), limit: (UInt64(program.count - 1), true))
  }
  #expect(throws: LoadError.self) { try ProgramStream.read(try pipe(holding: []), limit: (1 << 30, false)) }
}

/// The kernel refuses a #! script whose descriptor is close-on-exec (its interpreter could
/// not open /dev/fd/N), and so does elfload; the same script on an inheritable one runs.
@Test func aScriptOnACloseOnExecDescriptorIsRefused() throws {
  let dir = FileManager.default.temporaryDirectory.appendingPathComponent("elfload-cloexec-\(getpid())").path
  try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
  defer { try? FileManager.default.removeItem(atPath: dir) }
  let path = dir + "/s.sh"
  FileManager.default.createFile(
    atPath: path, contents: Data("#!/bin/sh\necho hi\n".utf8), attributes: [.posixPermissions: 0o755])
  let fd = FileDescriptor(rawValue: open(path, O_RDONLY | O_CLOEXEC))
  defer { close(fd.rawValue) }
  do {
    _ = try OpenExec.followScripts(descriptor: fd, reopen: true, [Array("x".utf8)])
    Issue.record("a close-on-exec script was not refused")
  } catch {
    guard case .scriptCloseOnExec(let n) = error else {
      Issue.record("\(error)")
      return
    }
    #expect(n == fd.rawValue)
  }
  try Kernel.setCloseOnExec(fd, false)
  let followed = try OpenExec.followScripts(descriptor: fd, reopen: true, [Array("x".utf8), Array("a".utf8)])
  Kernel.close(followed.program.fd)
  #expect(followed.path == Array("/bin/sh".utf8))
  #expect(followed.arguments == [Array("/bin/sh".utf8), Array("/dev/fd/\(fd.rawValue)".utf8), Array("a".utf8)])
}
