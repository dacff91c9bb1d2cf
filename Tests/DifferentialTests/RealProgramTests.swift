// Real programs nobody here wrote, run natively and under every policy: Debian's static busybox and
// bash, a static Go program, and dynamic ones (ls, sh, python3, sqlite3, gcc). A test whose program
// is not installed is skipped; .ci/run installs them all (apt-get install busybox-static bash-static
// golang-go sqlite3 python3).
import Foundation
import Testing

private func installed(_ path: String) -> Bool { FileManager.default.isExecutableFile(atPath: path) }

/// One run of a real program.
struct RealRun: Sendable, CustomTestStringConvertible {
  var argv: [String]
  var testDescription: String { argv.map { $0.contains(" ") ? "'\($0)'" : $0 }.joined(separator: " ") }
}

@Suite("Real programs, natively and under every policy")
struct RealProgramTests {
  func same(_ run: RealRun, _ policy: Policy) {
    let (native, loaded) = compare(
      run.argv[0], Array(run.argv.dropFirst()), options: policy.options, environment: baseEnvironment)
    #expect(native.ending != .timedOut)
    #expect(loaded == native, "native:\n\(native)\nunder elfload \(policy):\n\(loaded)")
  }

  static let busyboxRuns: [RealRun] = [
    RealRun(argv: ["/usr/bin/busybox", "echo", "hello", "from busybox"]),
    RealRun(argv: ["/usr/bin/busybox", "ls", "-d", "/usr", "/nonexistent"]),
    RealRun(argv: ["/usr/bin/busybox", "sh", "-c", "x=$((6*7)); echo $x; exit 3"]),
    RealRun(argv: ["/usr/bin/busybox", "sha256sum", "/etc/hostname"]),
  ]

  @Test(.enabled(if: installed("/usr/bin/busybox")), arguments: busyboxRuns, Policy.allCases)
  func busybox(_ run: RealRun, _ policy: Policy) { same(run, policy) }

  @Test(.enabled(if: installed("/usr/bin/bash-static")), arguments: Policy.allCases)
  func bashStatic(_ policy: Policy) {
    same(
      RealRun(argv: [
        "/usr/bin/bash-static", "-c", "for i in 3 1 2; do echo $i; done; echo ${BASH_VERSINFO[0]}; exit 7",
      ]),
      policy)
  }

  static let dynamicRuns: [RealRun] = [
    RealRun(argv: ["/bin/ls", "-d", "/usr", "/nonexistent"]),
    RealRun(argv: ["/bin/sh", "-c", "echo $0 $1; ls -d /; exit 5", "zero", "one"]),
    RealRun(argv: [
      "/usr/bin/python3", "-c",
      "import sys, json; print(json.dumps({'v': sys.version_info[0], 's': sum(range(100))}))",
    ]),
    RealRun(argv: [
      "/usr/bin/sqlite3", ":memory:",
      "create table t(x); insert into t values (1),(2),(3); select sum(x) from t;",
    ]),
    RealRun(argv: ["/usr/bin/gcc", "-dumpversion"]),
  ]

  @Test(arguments: dynamicRuns, Policy.allCases)
  func dynamicProgram(_ run: RealRun, _ policy: Policy) throws {
    try #require(installed(run.argv[0]), "\(run.argv[0]) is not installed")
    same(run, policy)
  }

  /// GNU grep (gnulib's c-stack) installs its own SIGSEGV handler, on an
  /// alternate stack in its bss: under demand the next fault goes to that
  /// handler, whose stack page is not mapped, and the kernel kills the
  /// process (README, known limit 2). Under eager it runs as natively.
  @Test(arguments: [Policy.eager, .demand] + Policy.uffd)
  func grepWithItsOwnSIGSEGVHandler(_ policy: Policy) {
    let (native, loaded) = compare(
      "/usr/bin/grep", ["--version"], options: policy.options, environment: baseEnvironment)
    #expect(native.ending == .exited(0))
    if policy == .demand {
      #expect(loaded.ending == .signaled(SIGSEGV), "documented limit: \(loaded)")
    } else {
      #expect(loaded == native, "\(loaded)")
    }
  }

  /// Go's runtime installs its own SIGSEGV handler: under eager the program
  /// runs as natively; under demand the runtime receives elfload's next fault
  /// and dies by SIGSEGV (README, known limits); under hybrid it dies too
  /// unless the prefetched pages happen to cover everything it touches later
  /// (with --prefetch 64 they do) -- by SIGSEGV, or (where the fault comes in
  /// Go's own code, as under --prefetch auto) reported by the Go runtime, which
  /// exits 2.
  @Test(.enabled(if: installed("/usr/bin/go")), arguments: Policy.allCases)
  func goProgram(_ policy: Policy) {
    let program = "\(Paths.samples)/go/gohello"
    let (native, loaded) = compare(
      program, ["a", "b"], options: policy.options, environment: baseEnvironment)
    #expect(native.stdout.hasPrefix("hello from go, args: [a b]"), "\(native)")
    if policy == .demand {
      #expect(loaded.ending == .signaled(SIGSEGV), "documented limit: \(loaded)")
    } else if policy.signalPaged {
      let reported =
        loaded.ending == .exited(2)
        && (loaded.stderr.hasPrefix("unexpected fault address") || loaded.stderr.hasPrefix("fatal error: unexpected signal"))
      #expect(
        loaded == native || loaded.ending == .signaled(SIGSEGV)
          || (reported && loaded.stderr.contains("[signal SIGSEGV: segmentation violation")), "\(loaded)")
    } else {
      #expect(loaded == native, "native:\n\(native)\nunder elfload:\n\(loaded)")
    }
  }
}

/// Whether this process has a capability (its number) in CapEff.
func hasCapability(_ bit: Int) -> Bool {
  guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
    let line = status.split(separator: "\n").first(where: { $0.hasPrefix("CapEff:") }),
    let mask = UInt64(line.split(separator: "\t").last ?? "", radix: 16)
  else { return false }
  return mask & (1 << UInt64(bit)) != 0
}

@Suite("What the program sees of elfload after the jump")
struct AfterTheJumpTests {
  /// CAP_SYS_ADMIN (21), CAP_SYS_RESOURCE (24) or CAP_CHECKPOINT_RESTORE (40).
  static let canSetExe = hasCapability(21) || hasCapability(24) || hasCapability(40)

  @Test(
    "/proc/self/exe is the program when privileges allow, else elfload (documented)",
    arguments: Policy.allCases)
  func procSelfExe(_ policy: Policy) {
    let (native, loaded) = compare("/bin/readlink", ["/proc/self/exe"], options: policy.options)
    #expect(native.stdout == "/usr/bin/readlink\n", "\(native)")
    if Self.canSetExe {
      #expect(loaded == native, "\(loaded)")
    } else {
      #expect(loaded.stdout.hasSuffix("/elfload\n"), "\(loaded)")
    }
  }

  @Test("under eager the address space is the native one plus the trampoline's page")
  func sameMappingsAsNative() {
    // Mappings as (permissions, name), addresses aside: they are random.
    func mappings(_ outcome: Outcome) -> [String] {
      outcome.stdout.split(separator: "\n").map { line in
        let f = line.split(separator: " ", omittingEmptySubsequences: true)
        return f[1] + " " + (f.count > 5 ? f[5] : "")
      }.sorted()
    }
    let (native, loaded) = compare("/bin/cat", ["/proc/self/maps"])
    #expect(
      mappings(loaded) == (mappings(native) + ["r-xp "]).sorted(),
      "native:\n\(native.stdout)\nelfload:\n\(loaded.stdout)")
  }

  @Test("nothing of elfload's file stays mapped", arguments: Policy.allCases)
  func noLoaderMappings(_ policy: Policy) {
    let loaded = run([Paths.elfload] + policy.options + ["/bin/cat", "/proc/self/maps"])
    #expect(loaded.ending == .exited(0), "\(loaded)")
    // Under the userfaultfd pager the program's segments are anonymous memory
    // (README, "The two pagers"): its name shows only for the signal pager and eager.
    if !policy.usesUffd {
      #expect(loaded.stdout.contains("/bin/cat") || loaded.stdout.contains("/usr/bin/cat"), "\(loaded.stdout)")
    }
    #expect(!loaded.stdout.contains("elfload"), "\(loaded.stdout)")
  }

  @Test(
    "busybox applets re-exec /proc/self/exe: a pipeline in busybox sh",
    .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/busybox") && canSetExe),
    arguments: Policy.allCases)
  func busyboxPipeline(_ policy: Policy) {
    let (native, loaded) = compare(
      "/usr/bin/busybox", ["sh", "-c", "echo hello | tr a-z A-Z | rev; exit 4"], options: policy.options,
      environment: baseEnvironment)
    #expect(native.stdout == "OLLEH\n", "\(native)")
    #expect(loaded == native, "\(loaded)")
  }
}
