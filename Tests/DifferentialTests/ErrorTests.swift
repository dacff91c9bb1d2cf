// What elfload says and does when it cannot or should not start a program, and its help.
import Foundation
import Testing

@Suite("Refusals, help and inspect")
struct ErrorTests {
  static let scratch: String = {
    let dir = scratchDirectory("errors")
    writeExecutable(dir + "/text", Array("just text\n".utf8))
    let hello = Paths.sample("hello", .staticExec)
    try? FileManager.default.removeItem(atPath: dir + "/noexec")
    try? FileManager.default.copyItem(atPath: hello, toPath: dir + "/noexec")
    chmod(dir + "/noexec", 0o644)
    return dir
  }()

  struct Refusal: Sendable, CustomTestStringConvertible {
    var path: @Sendable () -> String
    var status: Int32
    var message: String
    var label: String
    var testDescription: String { label }
  }

  static let refusals: [Refusal] = [
    Refusal(
      path: { "/nonexistent/program" }, status: 127, message: "no such file or directory",
      label: "missing file"),
    Refusal(path: { scratch }, status: 126, message: "is a directory", label: "a directory"),
    Refusal(
      path: { scratch + "/text" }, status: 126, message: "not an ELF file (e_ident starts 6a 75 73 74",
      label: "a text file"),
    Refusal(
      path: { scratch + "/noexec" }, status: 126, message: "permission denied", label: "not executable"),
    Refusal(
      path: { "/dev/null" }, status: 126, message: "is a device, socket or pipe, not a program",
      label: "a device"),
  ]

  @Test(arguments: refusals)
  func refused(_ refusal: Refusal) {
    let path = refusal.path()
    let outcome = run([Paths.elfload, path, "arg"])
    #expect(outcome.ending == .exited(refusal.status), "\(outcome)")
    #expect(outcome.stdout == "")
    #expect(outcome.stderr.hasPrefix("elfload: \(path): \(refusal.message)"), "\(outcome)")
    #expect(outcome.stderr.split(separator: "\n").count == 1, "one line: \(outcome)")
  }

  @Test("the native run agrees that these cannot run (126 or 127 from the shell)")
  func shellAgrees() {
    for (path, status) in [
      ("/nonexistent/program", Int32(127)), (Self.scratch + "/noexec", 126), (Self.scratch, 126),
    ] {
      let native = run(["/bin/sh", "-c", "\"$0\"", path])
      #expect(native.ending == .exited(status), "\(path): \(native)")
    }
  }

  @Test("a missing companion: one line naming it, exit 126")
  func missingCompanion() throws {
    // A copy of the launcher alone in a directory: --help has no one to go to.
    let dir = scratchDirectory("lonely")
    let copy = dir + "/elfload"
    try? FileManager.default.removeItem(atPath: copy)
    try FileManager.default.copyItem(atPath: Paths.elfload, toPath: copy)
    let outcome = run([copy, "--help"])
    #expect(outcome.ending == .exited(126), "\(outcome)")
    #expect(outcome.stderr.contains("elfload-tools"), "\(outcome)")
    #expect(outcome.stderr.split(separator: "\n").count == 1, "\(outcome)")
    // Running programs needs no companion.
    let hello = run([copy, Paths.sample("hello", .staticExec)])
    #expect(hello == run([Paths.sample("hello", .staticExec)]), "\(hello)")
  }

  @Test("no program: a usage error, not a crash")
  func noProgram() {
    let outcome = run([Paths.elfload])
    #expect(outcome.ending == .exited(64), "\(outcome)")
    #expect(outcome.stderr.contains("Missing the program to run"))
  }

  @Test("an unknown mode is refused with the list of modes")
  func unknownMode() {
    let outcome = run([Paths.elfload, "--mode", "sideways", Paths.sample("hello", .staticExec)])
    #expect(outcome.ending == .exited(64), "\(outcome)")
    #expect(outcome.stderr.contains("'eager'"), "\(outcome)")
  }

  @Test("--help explains the modes and the exit statuses")
  func help() {
    let outcome = run([Paths.elfload, "--help"])
    #expect(outcome.ending == .exited(0))
    for phrase in ["--mode", "eager", "--argv0", "127", "126", "inspect", "/proc/self/exe"] {
      #expect(outcome.stdout.contains(phrase), "help lacks \(phrase)")
    }
  }

  @Test("--version")
  func version() {
    let outcome = run([Paths.elfload, "--version"])
    #expect(outcome.ending == .exited(0))
    #expect(outcome.stdout.split(separator: ".").count == 3, "\(outcome)")
  }

  @Test("--verbose says what was mapped, on stderr only", arguments: Flavour.allCases)
  func verbose(_ flavour: Flavour) {
    let program = Paths.sample("hello", flavour)
    let outcome = run([Paths.elfload, "--verbose", program])
    #expect(outcome.ending == .exited(0))
    #expect(outcome.stdout == "hello, world\n")
    #expect(outcome.stderr.contains("elfload: map "), "\(outcome)")
    #expect(outcome.stderr.contains("rsp"), "\(outcome)")
  }

  @Test("inspect prints the plan without running the program", arguments: Flavour.allCases)
  func inspect(_ flavour: Flavour) {
    let program = Paths.sample("hello", flavour)
    let outcome = run([Paths.elfload, "inspect", program])
    #expect(outcome.ending == .exited(0), "\(outcome)")
    #expect(!outcome.stdout.contains("hello, world"))
    for phrase in ["entry:", "segments", "r-x", "rw-", "brk:", "stack:", "LOAD", "zero-filled"] {
      #expect(outcome.stdout.contains(phrase), "inspect lacks \(phrase):\n\(outcome.stdout)")
    }
    #expect(outcome.stdout.contains(flavour == .staticExec ? "ET_EXEC" : "ET_DYN"))
    // A dynamically linked program's interpreter is described after it.
    #expect(outcome.stdout.contains("interpreter (PT_INTERP)") == (flavour == .dynamic), "\(outcome.stdout)")
  }

  @Test("inspect describes what a #! script would run")
  func inspectScript() {
    let script = Self.scratch + "/inspect-script"
    let hello = Paths.sample("hello", .staticExec)
    writeExecutable(script, Array("#!\(hello) -x\n".utf8))
    let outcome = run([Paths.elfload, "inspect", script])
    #expect(outcome.ending == .exited(0), "\(outcome)")
    #expect(
      outcome.stdout.hasPrefix("\(script): a #! script; the kernel would run: \(hello) -x \(script)\n"),
      "\(outcome)")
    #expect(outcome.stdout.contains("\(hello): ELF64 x86-64 static executable"), "\(outcome)")
  }

  @Test("inspect refuses what run refuses, the same way")
  func inspectRefuses() {
    let outcome = run([Paths.elfload, "inspect", Self.scratch + "/text"])
    #expect(outcome.ending == .exited(126))
    #expect(outcome.stderr.hasPrefix("elfload: \(Self.scratch)/text: not an ELF file"))
  }

  @Test("a name without a slash is found in PATH, like env does")
  func pathLookup() {
    let dir = (Paths.sample("hello", .staticExec) as NSString).deletingLastPathComponent
    let env = ["PATH=\(dir):/usr/bin:/bin"]
    let native = run(["/usr/bin/env", "hello"], environment: env)
    let loaded = run([Paths.elfload, "hello"], environment: env)
    #expect(native.stdout == "hello, world\n")
    #expect(loaded == native, "\(loaded)")
  }
}
