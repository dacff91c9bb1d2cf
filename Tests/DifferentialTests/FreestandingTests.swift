// The launcher is built like ld.so: no C library, no runtime, position-independent, so that it
// can even load itself.
import Foundation
import Testing

@Suite("The freestanding launcher")
struct FreestandingTests {
  func readelf(_ flags: String) -> String {
    let outcome = run(["/usr/bin/readelf", flags, "-W", Paths.elfload])
    return outcome.stdout
  }

  @Test("no PT_INTERP, no DT_NEEDED, no undefined symbols: nothing of a C library")
  func noLibraries() {
    let headers = readelf("-lh")
    #expect(headers.contains("DYN (Position-Independent Executable file)"), "\(headers)")
    #expect(!headers.contains("INTERP"), "\(headers)")
    #expect(!readelf("-d").contains("NEEDED"))
    let symbols = run(["/usr/bin/nm", "-u", Paths.elfload])
    #expect(symbols.ending == .exited(0), "\(symbols)")
    #expect(symbols.stdout.isEmpty, "undefined symbols:\n\(symbols.stdout)")
    let all = run(["/usr/bin/nm", Paths.elfload]).stdout
    for libc in ["__libc_start_main", "GLIBC", "pthread_", "swift_getGenericMetadata"] {
      #expect(!all.contains(libc), "\(libc) in the launcher")
    }
  }

  @Test("its only relocations are relative: it relocates itself")
  func relocatesItself() {
    let relocations = readelf("-r").split(separator: "\n").filter { $0.contains("R_X86_64_") }
    #expect(!relocations.isEmpty)
    #expect(relocations.allSatisfy { $0.contains("R_X86_64_RELATIVE") }, "\(relocations.prefix(5))")
  }

  @Test("elfload elfload PROGRAM runs the program", arguments: Flavour.allCases, Policy.allCases)
  func loadsItself(_ flavour: Flavour, _ policy: Policy) {
    let program = Paths.sample("hello", flavour)
    let native = run([program, "a", "b"])
    let loaded = run([Paths.elfload] + policy.options + [Paths.elfload, program, "a", "b"])
    #expect(loaded == native, "native:\n\(native)\nunder elfload elfload:\n\(loaded)")
  }

  @Test("it lands at a different base on every run (ASLR, as a PIE)")
  func randomBase() {
    let bases = (0..<4).map { _ in
      run([Paths.elfload, "--verbose", Paths.sample("hello", .staticExec)]).stderr
        .split(separator: "\n").first { $0.contains("elfload's own image at") } ?? "none"
    }
    #expect(!bases.contains("none"), "\(bases)")
    #expect(Set(bases).count > 1, "\(bases)")
  }
}
