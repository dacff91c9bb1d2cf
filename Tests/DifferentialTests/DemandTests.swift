// The demand and hybrid policies beyond the sample matrix: lost writes, fork and exec, faults that are
// the program's own, and the known limits, each as documented.
import Foundation
import Testing

@Suite("Demand and hybrid paging")
struct DemandTests {
  static let onDemand = Configuration.all.filter { $0.policy.onDemand }

  @Test("threads writing at once into fresh pages lose nothing (10 runs)", arguments: onDemand)
  func noLostWrites(_ configuration: Configuration) {
    let program = Paths.sample("race", configuration.flavour)
    for _ in 0..<10 {
      let loaded = run(
        [Paths.elfload] + configuration.policy.options + [program], environment: baseEnvironment)
      #expect(loaded.stdout.hasSuffix("every byte ok\n"), "\(loaded)")
      #expect(loaded.ending == .exited(0), "\(loaded)")
      if loaded.ending != .exited(0) { break }
    }
  }

  @Test("a forked child keeps demand paging and can exec a program", arguments: Configuration.all)
  func forkAndExec(_ configuration: Configuration) {
    let hello = Paths.sample("hello", configuration.flavour)
    let (native, loaded) = compare(
      Paths.sample("forks", configuration.flavour), [hello], options: configuration.policy.options,
      environment: baseEnvironment)
    #expect(native.stdout.contains("hello, world"))
    #expect(loaded == native, "native:\n\(native)\nunder elfload:\n\(loaded)")
  }

  @Test("posix_spawn from a loaded program (eager)", arguments: Flavour.allCases)
  func spawn(_ flavour: Flavour) {
    let hello = Paths.sample("hello", flavour)
    let (native, loaded) = compare(
      Paths.sample("forks", flavour), ["--spawn", hello], options: ["--mode", "eager"],
      environment: baseEnvironment)
    #expect(native.stdout.contains("spawned program exited with status 0"))
    #expect(loaded == native, "native:\n\(native)\nunder elfload:\n\(loaded)")
  }

  @Test(
    "the program's own faults die by SIGSEGV: a write to read-only memory, raise(SIGSEGV)",
    arguments: ["rodata", "raise"], Configuration.all)
  func ownFaults(_ how: String, _ configuration: Configuration) {
    let (native, loaded) = compare(
      Paths.sample("null", configuration.flavour), [how], options: configuration.policy.options)
    #expect(native.ending == .signaled(SIGSEGV))
    #expect(loaded == native, "native:\n\(native)\nunder elfload:\n\(loaded)")
  }

  // Known limits, as the README states them.

  @Test("limit: a program's own SIGSEGV handler receives the demand faults", arguments: Configuration.all)
  func ownHandler(_ configuration: Configuration) {
    let (native, loaded) = compare(
      Paths.sample("limits", configuration.flavour), ["handler"], options: configuration.policy.options)
    #expect(
      native
        == Outcome(stdout: "touched a fresh page: no fault\n", stderr: "", ending: .exited(0), seconds: 0))
    if configuration.policy.onDemand {
      #expect(loaded.stdout == "the program's own SIGSEGV handler ran\n")
      #expect(loaded.ending == .exited(3))
    } else {
      #expect(loaded == native)
    }
  }

  @Test("limit: a fault on a fresh page with SIGSEGV blocked kills the program", arguments: Configuration.all)
  func blocked(_ configuration: Configuration) {
    let (native, loaded) = compare(
      Paths.sample("limits", configuration.flavour), ["blocked"], options: configuration.policy.options)
    #expect(native.ending == .exited(0))
    if configuration.policy.onDemand {
      #expect(loaded.ending == .signaled(SIGSEGV))
      #expect(loaded.stdout == "")
    } else {
      #expect(loaded == native)
    }
  }
}

@Suite("The known-limit line")
struct KnownLimitLineTests {
  static let line = "elfload: the program was killed by SIGSEGV; signal-based paging (--mode "

  @Test(
    "a program killed by a known limit: one line naming it and --mode eager, with --stats or --verbose only",
    arguments: [Policy.demand, .hybrid4])
  func namedWhenAsked(_ policy: Policy) {
    let limits = Paths.sample("limits", .staticExec)
    let native = run([limits, "blocked"])
    #expect(native.ending == .exited(0))
    let quiet = run([Paths.elfload] + policy.options + [limits, "blocked"])
    #expect(quiet.ending == .signaled(SIGSEGV), "\(quiet)")
    #expect(quiet.stderr == native.stderr, "a normal run's stderr is the program's: \(quiet)")

    let stats = run([Paths.elfload] + policy.options + ["--stats", limits, "blocked"])
    #expect(stats.ending == .signaled(SIGSEGV), "\(stats)")
    let lines = stats.stderr.split(separator: "\n").filter { $0.hasPrefix(Self.line) }
    #expect(lines.count == 1, "\(stats.stderr)")
    #expect(stats.stderr.contains("Known limits") && stats.stderr.contains("run it with --mode eager\n"), "\(stats)")

    let verbose = run([Paths.elfload, "--verbose", "--stats-json", "/dev/null"] + policy.options + [limits, "blocked"])
    #expect(verbose.stderr.contains(Self.line), "\(verbose)")
    // --verbose alone: elfload becomes the program, so it says so before the jump.
    let alone = run([Paths.elfload, "--verbose"] + policy.options + [limits, "blocked"])
    #expect(alone.stderr.contains("elfload: signal-based paging (--mode "), "\(alone)")
    #expect(alone.stderr.contains("if the program is killed by SIGSEGV and runs natively, run it with --mode eager"), "\(alone)")
  }

  @Test("no line under eager, nor when the program ends otherwise, nor for a fault of the program's own")
  func notOtherwise() {
    for policy in [Policy.eager, .demand, .hybrid4] {
      // A NULL dereference: the handler sees it and declines it; natively too the program dies.
      let null = run([Paths.elfload] + policy.options + ["--stats", Paths.sample("null", .staticExec)])
      #expect(null.ending == .signaled(SIGSEGV), "\(null)")
      #expect(!null.stderr.contains("signal-based paging"), "\(policy): \(null)")
    }
    let fine = run([Paths.elfload, "--mode", "demand", "--stats", Paths.sample("exit_code", .staticExec), "2"])
    #expect(fine.ending == .exited(2))
    #expect(!fine.stderr.contains("signal-based paging"), "\(fine)")
  }
}
