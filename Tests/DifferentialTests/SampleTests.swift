// Every sample program, in both flavours, run natively and under elfload: the same output, status and signal.
import Foundation
import Testing

/// A sample and the arguments it is run with.
struct SampleRun: Sendable, CustomTestStringConvertible {
  var name: String
  var args: [String] = []
  var extraEnvironment: [String] = []
  var testDescription: String { ([name] + args).joined(separator: " ") }

  static let all: [SampleRun] = [
    SampleRun(name: "hello"),
    SampleRun(
      name: "bench1_args", args: ["x", "y z", "", "ünïcode"], extraEnvironment: ["ELFLOAD_SAMPLE_ENV=present"]
    ),
    SampleRun(name: "bench2_pages", args: ["5"]),
    SampleRun(name: "bench3_bss"),
    SampleRun(name: "null"),
    SampleRun(name: "threads_tls"),
    SampleRun(name: "cxx_exceptions"),
    SampleRun(name: "exit_code", args: ["7"]),
    SampleRun(name: "sparse"),
    SampleRun(name: "probe", args: ["a", "--b", "-c"]),
    SampleRun(name: "probe_execstack"),
    SampleRun(name: "entry_regs", args: ["one"]),
  ]
}

let baseEnvironment = ProcessInfo.processInfo.environment.map { "\($0)=\($1)" }.sorted()

@Suite("Samples under eager, both flavours")
struct SampleTests {
  @Test(arguments: SampleRun.all, Flavour.allCases)
  func sameAsNative(_ sample: SampleRun, _ flavour: Flavour) {
    let program = Paths.sample(sample.name, flavour)
    let (native, loaded) = compare(
      program, sample.args, environment: baseEnvironment + sample.extraEnvironment)
    #expect(native.ending != .timedOut)
    #expect(loaded == native, "native:\n\(native)\nunder elfload:\n\(loaded)")
    // No check in a sample may fail, natively or under elfload.
    #expect(!native.stdout.contains("FAIL"), "\(native)")
  }

  @Test("the NULL dereference dies by SIGSEGV both ways", arguments: Flavour.allCases)
  func nullDiesBySIGSEGV(_ flavour: Flavour) {
    let (native, loaded) = compare(Paths.sample("null", flavour))
    #expect(native.ending == .signaled(SIGSEGV))
    #expect(loaded.ending == .signaled(SIGSEGV))
  }

  @Test("--argv0 sets argv[0] like exec -a", arguments: Flavour.allCases)
  func argv0(_ flavour: Flavour) {
    let program = Paths.sample("bench1_args", flavour)
    let native = run(["custom-name", "x"], executable: program, environment: baseEnvironment)
    let loaded = run([Paths.elfload, "--argv0", "custom-name", program, "x"], environment: baseEnvironment)
    #expect(native.stdout.contains("argv[0] basename: custom-name"))
    #expect(loaded == native, "native:\n\(native)\nunder elfload:\n\(loaded)")
  }

  @Test("an empty environment", arguments: Flavour.allCases)
  func emptyEnvironment(_ flavour: Flavour) {
    let (native, loaded) = compare(Paths.sample("probe", flavour), ["x"], environment: [])
    #expect(loaded == native, "native:\n\(native)\nunder elfload:\n\(loaded)")
  }

  @Test("options end at --, and the program's own options pass through", arguments: Flavour.allCases)
  func doubleDash(_ flavour: Flavour) {
    let (native, loaded) = compare(
      Paths.sample("probe", flavour), ["--verbose", "--mode", "x"], options: ["--"],
      environment: baseEnvironment)
    #expect(loaded == native, "native:\n\(native)\nunder elfload:\n\(loaded)")
  }

  @Test("a signal that is ignored stays ignored; a blocked one stays blocked")
  func inheritedSignalState() {
    // sh -c 'trap "" USR1; exec ...' sets SIGUSR1 to SIG_IGN before exec.
    let program = Paths.sample("probe", .staticExec)
    let native = run(["/bin/sh", "-c", "trap '' USR1; exec \"$0\" x", program], environment: baseEnvironment)
    let loaded = run(
      ["/bin/sh", "-c", "trap '' USR1; exec \"$1\" \"$0\" x", program, Paths.elfload],
      environment: baseEnvironment)
    #expect(native.stdout.contains("10(ignored)"))
    #expect(loaded == native, "native:\n\(native)\nunder elfload:\n\(loaded)")
  }
}
