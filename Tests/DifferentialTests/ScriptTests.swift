// `#!` scripts, run natively and under elfload: the kernel's binfmt_script rules, nesting included.
import Foundation
import Testing

@Suite("#! scripts")
struct ScriptTests {
  static let scratch = scratchDirectory("scripts")

  /// Writes an executable file and returns its path.
  static func script(_ name: String, _ text: String) -> String {
    let path = "\(scratch)/\(name)"
    writeExecutable(path, Array(text.utf8))
    return path
  }

  @Test(
    "a script whose interpreter is a sample: argv, AT_EXECFN, comm and auxv as natively",
    arguments: Configuration.all)
  func probeScript(_ configuration: Configuration) {
    let probe = Paths.sample("probe", configuration.flavour)
    // One file per test case: the cases run in parallel.
    let name =
      "probe-\(configuration.flavour.rawValue)-\(configuration.policy.rawValue.replacingOccurrences(of: " ", with: "")).sh"
    let path = Self.script(name, "#!\(probe)  one-argument  \nignored\n")
    let (native, loaded) = compare(
      path, ["x", "y"], options: configuration.policy.options, environment: baseEnvironment)
    #expect(native.stdout.contains("argv[1]: one-argument"), "\(native)")
    let seen =
      configuration.policy.signalPaged
      ? DemandDifferences.normalise(probe: loaded, native: native)
      : configuration.policy.usesUffd ? UffdDifferences.normalise(probe: loaded, native: native) : loaded
    #expect(seen == native, "native:\n\(native)\nunder elfload:\n\(loaded)")
  }

  @Test("a script run by /bin/sh (a dynamic interpreter)", arguments: Policy.allCases)
  func shellScript(_ policy: Policy) {
    let path = Self.script(
      "hello-\(policy.rawValue.replacingOccurrences(of: " ", with: "")).sh",
      "#!/bin/sh\necho \"$0 says: $*\"; exit 3\n")
    let (native, loaded) = compare(path, ["a", "b c"], options: policy.options, environment: baseEnvironment)
    #expect(native.ending == .exited(3))
    #expect(loaded == native, "native:\n\(native)\nunder elfload:\n\(loaded)")
  }

  @Test("scripts nested five deep run; six deep is ELOOP, as in the kernel")
  func nesting() {
    var interpreter = Paths.sample("bench1_args", .staticExec)
    var chain: [String] = []
    for level in 1...6 {
      interpreter = Self.script("level\(level)", "#!\(interpreter) arg\(level)\n")
      chain.append(interpreter)
    }
    let (native5, loaded5) = compare(chain[4], ["x"], environment: baseEnvironment)
    #expect(native5.ending == .exited(0), "\(native5)")
    #expect(loaded5 == native5, "native:\n\(native5)\nunder elfload:\n\(loaded5)")
    let native6 = run([chain[5]], environment: baseEnvironment)
    #expect(native6.stderr.contains("posix_spawn"), "the kernel refuses six levels: \(native6)")
    let loaded6 = run([Paths.elfload, chain[5]])
    #expect(loaded6.ending == .exited(126))
    #expect(
      loaded6.stderr
        == "elfload: \(chain[5]): more than 5 levels of #! interpreters (the kernel says ELOOP)\n")
  }

  struct Bad: Sendable, CustomTestStringConvertible {
    var name: String
    var text: String
    var status: Int32
    var message: String
    var testDescription: String { name }
  }

  @Test(arguments: [
    Bad(name: "no interpreter", text: "#!   \t\n", status: 126, message: "the #! line names no interpreter"),
    Bad(
      name: "an overlong line", text: "#!/" + String(repeating: "a", count: 300), status: 126,
      message: "the #! line has no end in its first 256 bytes"),
    Bad(
      name: "a missing interpreter", text: "#!/nonexistent/interpreter -x\n", status: 127,
      message: "its #! interpreter /nonexistent/interpreter: no such file or directory"),
    Bad(
      name: "an interpreter that is a directory", text: "#!/tmp\n", status: 126,
      message: "its #! interpreter /tmp: is a directory"),
  ])
  func refused(_ bad: Bad) {
    let path = Self.script(bad.name.replacingOccurrences(of: " ", with: "-"), bad.text)
    let native = run([path], environment: baseEnvironment)
    #expect(native.stderr.contains("posix_spawn"), "the kernel refuses it too: \(native)")
    let loaded = run([Paths.elfload, path])
    #expect(loaded.ending == .exited(bad.status), "\(loaded)")
    #expect(loaded.stderr.hasPrefix("elfload: \(path): \(bad.message)"), "\(loaded)")
    #expect(loaded.stderr.split(separator: "\n").count == 1)
  }
}
