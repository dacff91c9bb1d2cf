// The malformed-ELF corpus: mutants of a real program, each judged against the kernel. Where the
// kernel runs a mutant as it runs the original, elfload must run it identically; where the kernel
// refuses it, elfload must refuse it before mapping anything, with one line naming the field; where
// the kernel starts it and it crashes or does something else, elfload must do exactly the same or
// refuse it so. Under every policy, never dying by a signal native did not, never hanging.
import Foundation
import Testing

/// Little-endian field access on a file image.
struct Mutant {
  var bytes: [UInt8]

  func u16(_ at: Int) -> Int { Int(bytes[at]) | Int(bytes[at + 1]) << 8 }
  func u64(_ at: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(bytes[at + $1]) << (8 * $1) } }
  mutating func put16(_ at: Int, _ v: Int) {
    for i in 0..<2 { bytes[at + i] = UInt8(truncatingIfNeeded: v >> (8 * i)) }
  }
  mutating func put32(_ at: Int, _ v: UInt32) {
    for i in 0..<4 { bytes[at + i] = UInt8(truncatingIfNeeded: v >> (8 * i)) }
  }
  mutating func put64(_ at: Int, _ v: UInt64) {
    for i in 0..<8 { bytes[at + i] = UInt8(truncatingIfNeeded: v >> (8 * i)) }
  }

  var phoff: Int { Int(u64(32)) }
  var phnum: Int { u16(56) }
  /// Offset of program header `i`'s field at `field` (p_type 0, p_flags 4, p_offset 8,
  /// p_vaddr 16, p_filesz 32, p_memsz 40, p_align 48).
  func ph(_ i: Int, _ field: Int) -> Int { phoff + 56 * i + field }
  func type(_ i: Int) -> UInt32 { UInt32(u16(ph(i, 0))) | UInt32(u16(ph(i, 2))) << 16 }
  var loads: [Int] { (0..<phnum).filter { type($0) == 1 } }
  /// The first writable PT_LOAD (it has a bss in the samples).
  var writable: Int { loads.first { bytes[ph($0, 4)] & 2 != 0 }! }
  /// A program header the program can do without: PT_NOTE or PT_GNU_STACK.
  var spare: Int { (0..<phnum).first { type($0) == 4 || type($0) == 0x6474_e551 }! }

  /// The PT_LOAD whose file bytes hold the program header table.
  var phdrHolder: Int {
    loads.last { u64(ph($0, 8)) <= UInt64(phoff) && UInt64(phoff) - u64(ph($0, 8)) < u64(ph($0, 32)) }!
  }

  /// Makes the spare program header a PT_LOAD of one page (its `p_flags`
  /// `flags`) in the middle of PT_LOAD `i`, mapping the same file bytes, or
  /// none (a bss page).
  mutating func inside(_ i: Int, flags: UInt32, fileBacked: Bool) {
    let s = spare
    let vaddr = u64(ph(i, 16))
    let start = (vaddr + u64(ph(i, 32)) / 2) & ~0xfff
    put32(ph(s, 0), 1)
    put32(ph(s, 4), flags)
    put64(ph(s, 8), u64(ph(i, 8)) &+ (start &- vaddr))
    put64(ph(s, 16), start)
    put64(ph(s, 24), start)
    put64(ph(s, 32), fileBacked ? 0x1000 : 0)
    put64(ph(s, 40), 0x1000)
    put64(ph(s, 48), 0x1000)
  }

  /// Points the program's PT_INTERP (or, without one, the spare program
  /// header made a PT_INTERP) at a string appended to the file.
  mutating func interpreter(_ path: [UInt8], declaredLength: Int? = nil) {
    let i = (0..<phnum).first { type($0) == 3 } ?? spare
    put32(ph(i, 0), 3)
    put64(ph(i, 8), UInt64(bytes.count))
    put64(ph(i, 32), UInt64(declaredLength ?? path.count))
    bytes += path
  }
}

struct CorpusCase: Sendable, CustomTestStringConvertible {
  var name: String
  /// What the refusal must name (a field), when elfload refuses.
  var mentions: String
  /// 127 when a file it was asked to load does not exist.
  var status: Int32 = 126
  var mutate: @Sendable (inout Mutant) -> Void
  var testDescription: String { name }

  static let all: [CorpusCase] = [
    CorpusCase(name: "empty file", mentions: "an empty file (0 bytes), not a program") { $0.bytes = [] },
    CorpusCase(name: "truncated in the magic", mentions: "not an ELF file") {
      $0.bytes.removeLast($0.bytes.count - 3)
    },
    CorpusCase(name: "truncated in the ELF header", mentions: "ELF header") {
      $0.bytes.removeLast($0.bytes.count - 40)
    },
    CorpusCase(name: "truncated in the program headers", mentions: "program header") {
      $0.bytes.removeLast($0.bytes.count - ($0.phoff + 56 + 20))
    },
    CorpusCase(name: "truncated in a segment", mentions: "p_filesz") {
      $0.bytes.removeLast($0.bytes.count / 3)
    },
    CorpusCase(name: "bad magic", mentions: "not an ELF file") { $0.bytes[3] = 0x47 },
    CorpusCase(name: "32-bit class byte on an x86-64 file", mentions: "EI_CLASS") { $0.bytes[4] = 1 },
    CorpusCase(name: "big-endian byte on an x86-64 file", mentions: "EI_DATA") { $0.bytes[5] = 2 },
    CorpusCase(name: "EI_VERSION 0", mentions: "EI_VERSION") { $0.bytes[6] = 0 },
    CorpusCase(name: "e_version 0", mentions: "e_version") { $0.put32(20, 0) },
    CorpusCase(name: "i386 machine", mentions: "e_machine") { $0.put16(18, 3) },
    CorpusCase(name: "aarch64 machine", mentions: "e_machine") { $0.put16(18, 183) },
    CorpusCase(name: "ET_REL", mentions: "e_type") { $0.put16(16, 1) },
    CorpusCase(name: "ET_CORE", mentions: "e_type") { $0.put16(16, 4) },
    CorpusCase(name: "e_phentsize 32", mentions: "e_phentsize") { $0.put16(54, 32) },
    CorpusCase(name: "e_phnum 0", mentions: "e_phnum") { $0.put16(56, 0) },
    CorpusCase(name: "e_phnum 74 (over a page)", mentions: "e_phnum") { $0.put16(56, 74) },
    CorpusCase(name: "e_phnum 65535", mentions: "e_phnum") { $0.put16(56, 0xffff) },
    CorpusCase(name: "e_phoff past the end", mentions: "program header") {
      $0.put64(32, UInt64($0.bytes.count + 4096))
    },
    CorpusCase(name: "e_phoff overflows", mentions: "program header") { $0.put64(32, 0xffff_ffff_ffff_fff0) },
    CorpusCase(name: "e_entry outside every executable segment", mentions: "e_entry") { $0.put64(24, 0x10) },
    CorpusCase(name: "p_offset past the end", mentions: "p_offset") { m in
      m.put64(m.ph(m.writable, 8), UInt64(m.bytes.count + 0x10000))
    },
    CorpusCase(name: "p_filesz past the end", mentions: "p_filesz") { m in
      let i = m.writable
      m.put64(m.ph(i, 32), UInt64(m.bytes.count))
      m.put64(m.ph(i, 40), UInt64(m.bytes.count) * 2)
    },
    CorpusCase(name: "p_filesz > p_memsz", mentions: "p_filesz") { m in
      let i = m.writable
      m.put64(m.ph(i, 40), m.u64(m.ph(i, 32)) - 1)
    },
    CorpusCase(name: "p_vaddr and p_offset not congruent", mentions: "p_vaddr") { m in
      let i = m.writable
      m.put64(m.ph(i, 16), m.u64(m.ph(i, 16)) + 8)
    },
    CorpusCase(name: "p_vaddr + p_memsz overflows", mentions: "p_memsz") { m in
      m.put64(m.ph(m.writable, 40), 0xffff_ffff_ffff_0000)
    },
    CorpusCase(name: "absurd p_memsz (64 TiB)", mentions: "p_memsz") { m in
      m.put64(m.ph(m.writable, 40), 1 << 46)
    },
    CorpusCase(name: "a segment in kernel space", mentions: "p_vaddr") { m in
      let i = m.writable
      m.put64(m.ph(i, 16), 0xffff_8000_0000_0000 | m.u64(m.ph(i, 16)) & 0xfff)
    },
    CorpusCase(name: "the first PT_LOAD at address 0 (below mmap_min_addr)", mentions: "p_vaddr") { m in
      // The first PT_LOAD (file offset 0) moved to address 0: mapped as root, and the
      // static program then dies; unprivileged, the kernel's mmap refuses it and the
      // process dies by SIGSEGV (RelabelledPIETests). A PIE's first PT_LOAD is there already.
      m.put64(m.ph(m.loads[0], 16), 0)
    },
    CorpusCase(name: "p_align 3 (not a power of two)", mentions: "p_align") { m in
      for i in m.loads { m.put64(m.ph(i, 48), 3) }
    },
    CorpusCase(name: "PT_LOADs out of order", mentions: "PT_LOAD") { m in
      let (a, b) = (m.loads[1], m.loads[2])
      let first = Array(m.bytes[m.ph(a, 0)..<m.ph(a, 56)])
      m.bytes.replaceSubrange(m.ph(a, 0)..<m.ph(a, 56), with: m.bytes[m.ph(b, 0)..<m.ph(b, 56)])
      m.bytes.replaceSubrange(m.ph(b, 0)..<m.ph(b, 56), with: first)
    },
    // Overlapping PT_LOADs: the kernel maps them in table order, each over what
    // is there, and runs the program when the pages it needs end up usable.
    CorpusCase(name: "a PT_LOAD reaching into the next", mentions: "PT_LOAD") { m in
      let (a, b) = (m.loads[0], m.loads[1])
      let size = m.u64(m.ph(b, 16)) - m.u64(m.ph(a, 16)) + 0x100
      m.put64(m.ph(a, 32), size)
      m.put64(m.ph(a, 40), size)
    },
    CorpusCase(name: "a PT_LOAD spanning the next, which is cut to its first page", mentions: "PT_LOAD") { m in
      // The text covers the read-only data too (the same file bytes, read and execute);
      // the read-only segment, later in the table, keeps its first page: the text is cut in two.
      let (text, ro) = (m.loads[1], m.loads[2])
      let size = m.u64(m.ph(ro, 16)) + m.u64(m.ph(ro, 32)) - m.u64(m.ph(text, 16))
      m.put64(m.ph(text, 32), size)
      m.put64(m.ph(text, 40), size)
      let first = min(m.u64(m.ph(ro, 32)), 0x1000)
      m.put64(m.ph(ro, 32), first)
      m.put64(m.ph(ro, 40), first)
    },
    CorpusCase(name: "the data PT_LOAD repeated later in the table", mentions: "PT_LOAD") { m in
      let data = m.writable
      m.bytes.replaceSubrange(m.ph(m.spare, 0)..<m.ph(m.spare, 56), with: m.bytes[m.ph(data, 0)..<m.ph(data, 56)])
    },
    CorpusCase(name: "the text PT_LOAD repeated later in the table", mentions: "PT_LOAD") { m in
      let text = m.loads[1]
      m.bytes.replaceSubrange(m.ph(m.spare, 0)..<m.ph(m.spare, 56), with: m.bytes[m.ph(text, 0)..<m.ph(text, 56)])
    },
    CorpusCase(name: "a writable PT_LOAD inside the read-only data", mentions: "PT_LOAD") { m in
      m.inside(m.loads[2], flags: 6, fileBacked: true)
    },
    CorpusCase(name: "a bss PT_LOAD inside the read-only data", mentions: "PT_LOAD") { m in
      // Zeroes a page of it: the static hello does not read that page; the dynamic one dies.
      m.inside(m.loads[2], flags: 6, fileBacked: false)
    },
    CorpusCase(name: "a writable PT_LOAD inside the text", mentions: "e_entry") { m in
      // Natively the program dies when it runs code there (or at once, at the entry point).
      m.inside(m.loads[1], flags: 6, fileBacked: true)
    },
    CorpusCase(name: "a read-only PT_LOAD over the whole text", mentions: "e_entry") { m in
      let (text, spare) = (m.loads[1], m.spare)
      m.bytes.replaceSubrange(m.ph(spare, 0)..<m.ph(spare, 56), with: m.bytes[m.ph(text, 0)..<m.ph(text, 56)])
      m.put32(m.ph(spare, 4), 4)
    },
    // AT_PHDR is load_bias + the address in the PT_LOAD whose *file* range holds e_phoff, and
    // load_bias + 0 when none does (load_elf_binary), whatever p_memsz covers or PT_PHDR says:
    // natively ld.so then stops on an assertion, a static program dies (found by scripts/mutate).
    CorpusCase(name: "the PT_LOAD holding the program headers ends before them in the file", mentions: "PT_LOAD") { m in
      m.put64(m.ph(m.phdrHolder, 32), 1)
    },
    CorpusCase(name: "PT_INTERP missing", mentions: "interpreter", status: 127) { m in
      m.interpreter(Array("/nonexistent/ld.so\0".utf8))
    },
    // execve opens the interpreter before it maps a segment: the missing
    // interpreter is what it reports (found by scripts/mutate).
    CorpusCase(name: "PT_INTERP missing and p_filesz > p_memsz", mentions: "interpreter", status: 127) { m in
      m.interpreter(Array("/nonexistent/ld.so\0".utf8))
      let i = m.writable
      m.put64(m.ph(i, 40), m.u64(m.ph(i, 32)) - 1)
    },
    CorpusCase(name: "PT_INTERP unterminated", mentions: "PT_INTERP") { m in
      m.interpreter(Array("/lib64/ld-linux-x86-64.so.2".utf8))
    },
    CorpusCase(name: "PT_INTERP huge", mentions: "PT_INTERP") { m in
      m.interpreter(Array(repeating: UInt8(ascii: "a"), count: 5000) + [0])
    },
    CorpusCase(name: "PT_INTERP a directory", mentions: "interpreter") { m in
      m.interpreter(Array("/tmp\0".utf8))
    },
    CorpusCase(name: "PT_INTERP not ELF (a shell script)", mentions: "interpreter") { m in
      m.interpreter(Array("/usr/bin/ldd\0".utf8))
    },
    CorpusCase(name: "PT_INTERP that has a PT_INTERP", mentions: "interpreter") { m in
      m.interpreter(Array("/bin/true\0".utf8))
    },
    CorpusCase(name: "a second PT_INTERP, missing", mentions: "interpreter", status: 127) { m in
      // The kernel uses the first PT_INTERP only: a dynamic program runs, a
      // static one gets this as its only interpreter.
      let i = m.spare
      m.put32(m.ph(i, 0), 3)
      m.put64(m.ph(i, 8), UInt64(m.bytes.count))
      m.put64(m.ph(i, 32), 19)
      m.bytes += Array("/nonexistent/ld.so\0".utf8)
    },
  ]
}

@Suite("Malformed ELF corpus, judged against the kernel")
struct CorpusTests {
  static let scratch = scratchDirectory("corpus")

  static let policies: [Policy] = [.eager, .demand, .hybrid4]

  @Test(arguments: CorpusCase.all, Flavour.allCases)
  func mutant(_ corpusCase: CorpusCase, _ flavour: Flavour) throws {
    let original = Paths.sample("hello", flavour)
    var mutant = Mutant(bytes: try [UInt8](Data(contentsOf: URL(fileURLWithPath: original))))
    corpusCase.mutate(&mutant)
    let path =
      "\(Self.scratch)/\(flavour.rawValue)-\(corpusCase.name.replacingOccurrences(of: " ", with: "-"))"
    writeExecutable(path, mutant.bytes)

    let reference = run([original], environment: baseEnvironment)
    let native = run([path], environment: baseEnvironment, timeout: 10)
    let kernelRunsIt = native == reference
    // Started by the kernel but not run as the original (it crashes, or prints
    // something else): elfload may run it the same way, or refuse it up front.
    let started = native.ending != .exited(-1) || !native.stderr.hasPrefix("posix_spawn: ")
    for policy in Self.policies {
      let loaded = run([Paths.elfload] + policy.options + [path], environment: baseEnvironment, timeout: 10)
      if kernelRunsIt || (started && loaded == native) {
        #expect(loaded == native, "\(policy): the kernel runs it; under elfload:\n\(loaded)")
        continue
      }
      #expect(
        loaded.ending == .exited(corpusCase.status), "\(policy): native \(native.ending); elfload:\n\(loaded)"
      )
      #expect(loaded.stdout == "")
      let lines = loaded.stderr.split(separator: "\n")
      #expect(lines.count == 1, "\(policy): one line, not:\n\(loaded.stderr)")
      #expect(loaded.stderr.hasPrefix("elfload: \(path): "), "\(loaded.stderr)")
      #expect(
        loaded.stderr.contains(corpusCase.mentions),
        "\(policy): should name \(corpusCase.mentions):\n\(loaded.stderr)")
    }
  }
}

/// elfload's own rule, where it departs from the kernel on purpose: an
/// ET_EXEC interpreter (the kernel would map it at its fixed address and run
/// it) is refused, as no dynamic linker is one.
@Test("an ET_EXEC interpreter is refused, by elfload's rule")
func executableInterpreterIsRefused() throws {
  let original = Paths.sample("hello", .dynamic)
  var mutant = Mutant(bytes: try [UInt8](Data(contentsOf: URL(fileURLWithPath: original))))
  mutant.interpreter(Array((Paths.sample("hello", .staticExec) + "\0").utf8))
  let path = "\(CorpusTests.scratch)/dynamic-ET_EXEC-interpreter"
  writeExecutable(path, mutant.bytes)
  let loaded = run([Paths.elfload, path])
  #expect(loaded.ending == .exited(126), "\(loaded)")
  #expect(
    loaded.stderr.contains("is ET_EXEC; elfload loads position-independent (ET_DYN) interpreters"),
    "\(loaded)")
}

/// Found by scripts/mutate: a PIE relabelled ET_EXEC has its first PT_LOAD at address 0.
/// load_elf_binary maps an ET_EXEC's first PT_LOAD with MAP_FIXED_NOREPLACE at its address,
/// after the point of no return; below vm.mmap_min_addr the mmap succeeds only with
/// CAP_SYS_RAWIO (cap_mmap_addr). So as root the program runs, and unprivileged it is killed by
/// SIGSEGV. elfload used to refuse it up front; it now lets the same mmap judge.
@Suite("A PIE relabelled ET_EXEC, at address 0: as the kernel judges it")
struct RelabelledPIETests {
  static let flavours: [Flavour] = [.staticPIE, .dynamic]

  static func relabelled(_ flavour: Flavour) throws -> String {
    var mutant = Mutant(bytes: try [UInt8](Data(contentsOf: URL(fileURLWithPath: Paths.sample("hello", flavour)))))
    mutant.put16(16, 2)  // e_type: ET_EXEC
    let path = "\(CorpusTests.scratch)/\(flavour.rawValue)-relabelled-ET_EXEC"
    writeExecutable(path, mutant.bytes)
    return path
  }

  /// As whoever runs the tests: root maps page 0 and the program runs.
  @Test(arguments: flavours)
  func asTheTestsRun(_ flavour: Flavour) throws {
    let path = try Self.relabelled(flavour)
    let native = run([path])
    if getuid() == 0 { #expect(native.ending == .exited(0) && native.stdout == "hello, world\n", "\(native)") }
    for policy in [Policy.eager, .demand, .hybrid4] + Policy.uffd {
      let loaded = run([Paths.elfload] + policy.options + [path])
      #expect(loaded == native, "\(policy): native:\n\(native)\nunder elfload:\n\(loaded)")
    }
  }

  /// Without CAP_SYS_RAWIO (as nobody, when the tests run as root): the mapping fails after
  /// the point of no return, and the process dies by SIGSEGV, silently, natively and under elfload.
  @Test(arguments: flavours)
  func unprivileged(_ flavour: Flavour) throws {
    let path = try Self.relabelled(flavour)
    let native = run(asNobody + [path])
    #expect(native.ending == .signaled(SIGSEGV), "\(native)")
    for policy in [Policy.eager, .demand, .hybrid4] {
      let loaded = run(asNobody + [Paths.elfload] + policy.options + [path])
      #expect(loaded == native, "\(policy): native:\n\(native)\nunder elfload:\n\(loaded)")
    }
  }
}
