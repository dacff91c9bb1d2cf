// Resource limits as input: what cannot be mapped under RLIMIT_AS or RLIMIT_STACK is a clear error,
// and a limit the program can live with is the program's, untouched.
import Foundation
import Testing

@Suite("Resource limits")
struct LimitTests {
  /// `sh -c 'ulimit ...; exec "$@"'`: the limit set just for this run.
  func underLimit(_ ulimit: String, _ argv: [String]) -> Outcome {
    run(["/bin/sh", "-c", "ulimit \(ulimit) && exec \"$@\"", "sh"] + argv, environment: baseEnvironment)
  }

  @Test("a bss that RLIMIT_AS cannot hold: one line naming p_memsz and RLIMIT_AS", arguments: Policy.allCases)
  func addressSpace(_ policy: Policy) {
    // 60 MiB: elfload (25 MiB) starts, the 64 MiB bss does not fit. Natively
    // the kernel gets past the point of no return and the process dies by SIGSEGV.
    let program = Paths.sample("bench3_bss", .staticExec)
    let loaded = underLimit("-v 61440", [Paths.elfload] + policy.options + [program, "1"])
    #expect(loaded.ending == .exited(126), "\(loaded)")
    #expect(loaded.stdout == "")
    #expect(loaded.stderr.split(separator: "\n").count == 1, "\(loaded)")
    #expect(loaded.stderr.contains("p_memsz") && loaded.stderr.contains("RLIMIT_AS"), "\(loaded)")
  }

  @Test(
    "a small RLIMIT_STACK soft limit: elfload raises it for itself, the program gets its own",
    arguments: Flavour.allCases)
  func smallStackSoftLimit(_ flavour: Flavour) {
    let program = Paths.sample("probe", flavour)
    let native = underLimit("-S -s 16", [program, "x"])
    let loaded = underLimit("-S -s 16", [Paths.elfload, program, "x"])
    #expect(native.stdout.contains("RLIMIT_STACK: 16 KiB"), "\(native)")
    #expect(loaded == native, "native:\n\(native)\nunder elfload:\n\(loaded)")
  }

  @Test("a hard RLIMIT_STACK below what elfload needs: a clear error, not a crash")
  func tinyStackHardLimit() {
    let loaded = underLimit("-s 32", [Paths.elfload, Paths.sample("hello", .staticExec)])
    #expect(loaded.ending == .exited(126), "\(loaded)")
    #expect(loaded.stderr.hasPrefix("elfload: RLIMIT_STACK"), "\(loaded)")
    #expect(loaded.stderr.split(separator: "\n").count == 1, "\(loaded)")
  }
}
