// What elfload says and does when it cannot or should not start a program, and its help.
import Foundation
import Testing

/// A Unix socket bound at `path` (and left there).
func bindSocket(_ path: String) {
  unlink(path)
  let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
  var address = sockaddr_un()
  address.sun_family = sa_family_t(AF_UNIX)
  withUnsafeMutableBytes(of: &address.sun_path) { bytes in
    for (i, byte) in path.utf8.prefix(bytes.count - 1).enumerated() { bytes[i] = byte }
  }
  _ = withUnsafePointer(to: &address) {
    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
  }
  close(fd)
}

@Suite("Refusals, help and inspect")
struct ErrorTests {
  static let scratch: String = {
    let dir = scratchDirectory("errors")
    writeExecutable(dir + "/text", Array("just text\n".utf8))
    let hello = Paths.sample("hello", .staticExec)
    try? FileManager.default.removeItem(atPath: dir + "/noexec")
    try? FileManager.default.copyItem(atPath: hello, toPath: dir + "/noexec")
    chmod(dir + "/noexec", 0o644)
    writeExecutable(dir + "/empty", [])
    writeExecutable(dir + "/binary", [0, 1, 2, 3, 0, 0, 0, 0])
    unlink(dir + "/fifo")
    mkfifo(dir + "/fifo", 0o755)
    bindSocket(dir + "/socket")
    chmod(dir + "/socket", 0o755)
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
      path: { scratch + "/text" }, status: 126,
      message:
        "not an ELF file (e_ident starts 6a 75 73 74, expected 7f 45 4c 46); it reads as text with no #! line: if it is a script, run it with its interpreter",
      label: "a text file (a script without #!)"),
    Refusal(
      path: { scratch + "/binary" }, status: 126,
      message: "not an ELF file (e_ident starts 00 01 02 03, expected 7f 45 4c 46)\n", label: "binary, not ELF: no hint"),
    Refusal(
      path: { scratch + "/empty" }, status: 126, message: "an empty file (0 bytes), not a program",
      label: "an empty file"),
    Refusal(
      path: { scratch + "/fifo" }, status: 126, message: "is a FIFO (named pipe), not a program", label: "a FIFO"),
    Refusal(path: { scratch + "/socket" }, status: 126, message: "is a socket, not a program", label: "a socket"),
    Refusal(
      path: { scratch + "/noexec" }, status: 126, message: "permission denied", label: "not executable"),
    Refusal(
      path: { "/dev/null" }, status: 126, message: "is a character device, not a program",
      label: "a device"),
  ]

  @Test(arguments: refusals)
  func refused(_ refusal: Refusal) {
    let path = refusal.path()
    // A FIFO must not block: 3 seconds is plenty for a refusal.
    let outcome = run([Paths.elfload, path, "arg"], timeout: 3, hangExpected: true)
    #expect(outcome.ending == .exited(refusal.status), "\(outcome)")
    #expect(outcome.stdout == "")
    #expect(outcome.stderr.hasPrefix("elfload: \(path): \(refusal.message)"), "\(outcome)")
    #expect(outcome.stderr.split(separator: "\n").count == 1, "one line: \(outcome)")
  }

  @Test("the native run agrees that these cannot run (126 or 127 from the shell)")
  func shellAgrees() {
    for (path, status) in [
      ("/nonexistent/program", Int32(127)), (Self.scratch + "/noexec", 126), (Self.scratch, 126),
      (Self.scratch + "/fifo", 126), (Self.scratch + "/socket", 126), ("/dev/null", 126),
    ] {
      let native = run(["/bin/sh", "-c", "\"$0\"", path], timeout: 3, hangExpected: true)
      #expect(native.ending == .exited(status), "\(path): \(native)")
    }
  }

  @Test("a file open for writing: execve's ETXTBSY (126), natively and under elfload; runs once closed")
  func textBusy() throws {
    let busy = Self.scratch + "/busy"
    unlink(busy)
    try FileManager.default.copyItem(atPath: Paths.sample("exit_code", .staticExec), toPath: busy)
    let writer = open(busy, O_WRONLY | O_APPEND | O_CLOEXEC)
    #expect(writer >= 0)
    let native = run(["/bin/sh", "-c", "\"$0\" 3", busy])
    let loaded = run([Paths.elfload, busy, "3"])
    let inspected = run([Paths.elfload, "inspect", busy])
    close(writer)
    #expect(native.ending == .exited(126) && native.stderr.contains("Text file busy"), "\(native)")
    #expect(loaded.ending == .exited(126), "\(loaded)")
    #expect(loaded.stderr == "elfload: \(busy): text file busy: a process has it open for writing (execve refuses it too, with ETXTBSY)\n", "\(loaded)")
    // inspect only reads it.
    #expect(inspected.ending == .exited(0), "\(inspected)")
    let after = run([Paths.elfload, busy, "3"])
    #expect(after.ending == .exited(3), "\(after)")
  }

  @Test("inspect refuses a FIFO at once too")
  func inspectFIFO() {
    let outcome = run([Paths.elfload, "inspect", Self.scratch + "/fifo"], timeout: 3, hangExpected: true)
    #expect(outcome.ending == .exited(126), "\(outcome)")
    #expect(
      outcome.stderr
        == "elfload: \(Self.scratch)/fifo: is a FIFO (named pipe), not a program (execve refuses it too; a program that comes through one runs with: elfload - ARGS < it)\n",
      "\(outcome)")
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

  /// And the other way: elfload-tools alone, asked to run a program (`elfload-tools run`), says
  /// which launcher it could not run and why, and exits 126 as elfload does for a program it
  /// cannot run; its own work (--help) needs no launcher.
  @Test("a missing launcher: elfload-tools run says which and why, exit 126")
  func missingLauncher() throws {
    let dir = scratchDirectory("lonely-tools")
    let copy = dir + "/elfload-tools"
    try? FileManager.default.removeItem(atPath: copy)
    try FileManager.default.copyItem(atPath: Paths.elfload + "-tools", toPath: copy)
    let outcome = run([copy, "run", "/bin/true"])
    #expect(outcome == Outcome(stdout: "", stderr: "elfload-tools: cannot run \(dir)/elfload: No such file or directory\n", ending: .exited(126), seconds: 0), "\(outcome)")
    #expect(run([copy, "--help"]).ending == .exited(0))
  }

  /// A fork the kernel refuses (a process limit reached: `prlimit --nproc=1`, as an unprivileged
  /// user, whom it binds): the supervisor (--stats) says so and exits 126, as for a program it
  /// cannot run; `residency --native` says so and exits 71 (EX_OSERR), and leaves no file. Neither
  /// runs the program.
  @Test("fork refused: elfload --stats and residency --native each say it in one line, 126 and 71")
  func forkRefused() throws {
    let limited = asNobody + ["/usr/bin/prlimit", "--nproc=1"]
    let dir = scratchDirectory("fork-refused")
    chmod(dir, 0o777)
    let supervised = run(limited + [Paths.elfload, "--stats", Paths.sample("exit_code", .staticExec)])
    #expect(supervised == Outcome(stdout: "", stderr: "elfload: \(Paths.sample("exit_code", .staticExec)): fork: Resource temporarily unavailable\n", ending: .exited(126), seconds: 0), "\(supervised)")
    let residency = run(limited + [Paths.elfload, "residency", "--native", dir + "/r.csv", "--", Paths.sample("exit_code", .staticExec)])
    #expect(residency == Outcome(stdout: "", stderr: "elfload residency: fork: Resource temporarily unavailable\n", ending: .exited(71), seconds: 0), "\(residency)")
    #expect(!FileManager.default.fileExists(atPath: dir + "/r.csv"), "a file with no rows left behind")
  }

  /// UFFDIO_REGISTER refused (a seccomp filter, `refuse_ioctl`, makes it fail with EACCES; on
  /// ranges elfload has just mapped nothing else does): one line names the first segment's program
  /// header, its pages (readelf's first PT_LOAD) and the errno's text, exit 126.
  @Test("UFFDIO_REGISTER refused: one line with the segment, its range and the errno, exit 126",
    .enabled(if: Policy.uffdAvailable))
  func registerRefused() throws {
    let program = Paths.sample("hello", .staticExec)
    let first = try #require(try Readelf.programHeaders(program).headers.first { $0.type == "LOAD" })
    let (start, end) = (first.vaddr & ~4095, (first.vaddr + first.memsz + 4095) & ~4095)
    let refuse = [Paths.samples + "/refuse_ioctl", "c020aa00", "13"]  // UFFDIO_REGISTER, EACCES
    #expect(run(refuse + [program]) == run([program]), "the filter changes nothing natively")
    let refused = run(refuse + [Paths.elfload, "--mode", "demand", "--pager", "uffd", program])
    let message = "elfload: \(program): program header \(first.index): mapping 0x\(String(start, radix: 16))-0x\(String(end, radix: 16)) failed: UFFDIO_REGISTER: Permission denied\n"
    #expect(refused == Outcome(stdout: "", stderr: message, ending: .exited(126), seconds: 0), "\(refused)")
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

  @Test("--help-all explains the modes and the exit statuses")
  func help() {
    let outcome = run([Paths.elfload, "--help-all"])
    #expect(outcome.ending == .exited(0))
    for phrase in ["--mode", "eager", "--argv0", "127", "126", "inspect", "/proc/self/exe"] {
      #expect(outcome.stdout.contains(phrase), "help lacks \(phrase)")
    }
  }

  /// The five most used options, as RunOptions.swift marks them.
  static let firstScreenOptions = ["--mode <policy>", "--prefetch <n|auto>", "--pager <uffd|signal>", "--stats", "-v, --verbose"]

  /// --help was 200 lines with every wrapped line at column 0. Its first screen is what a user
  /// needs: usage, the policies, the five most used options, where the rest is.
  @Test("--help is one screen: usage, the policies, the five most used options, where the rest is")
  func firstScreen() {
    for argv in [["--help"], ["-h"], ["help"], ["--mode", "demand", "--help"]] {
      let outcome = run([Paths.elfload] + argv)
      #expect(outcome.ending == .exited(0) && outcome.stderr.isEmpty, "\(argv): \(outcome)")
      let lines = outcome.stdout.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
      #expect(lines.count <= 24 && lines.allSatisfy { $0.count <= 80 }, "\(argv): \(lines.count) lines:\n\(outcome.stdout)")
      #expect(lines.contains { $0.hasPrefix("Usage: elfload [options] [--] PROGRAM") }, "\(outcome.stdout)")
      for policy in ["eager", "demand", "hybrid", "replay"] {
        #expect(lines.contains { $0.hasPrefix("  \(policy) ") }, "\(policy): \(outcome.stdout)")
      }
      let optionLines = lines.filter { $0.hasPrefix("  -") }.map { String($0.dropFirst(2).prefix(22)).trimmingCharacters(in: .whitespaces) }
      #expect(optionLines == Self.firstScreenOptions, "\(optionLines)")
      #expect(outcome.stdout.contains("elfload --help-all") && outcome.stdout.contains("elfload help all"), "\(outcome.stdout)")
    }
  }

  /// The whole reference, with each option's help whole: a wrapped line is indented under its
  /// text, so reading the lines after an option back gives its text exactly.
  @Test("--help-all (or help all) is the whole reference, wrapped lines indented under their text")
  func reference() throws {
    let outcome = run([Paths.elfload, "--help-all"])
    #expect(outcome.ending == .exited(0) && outcome.stderr.isEmpty, "\(outcome)")
    #expect(run([Paths.elfload, "help", "all"]).stdout == outcome.stdout)
    let lines = outcome.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    #expect(lines.allSatisfy { $0.count <= 80 }, "\(lines.filter { $0.count > 80 })")
    let start = try #require(lines.firstIndex { $0.hasPrefix("Options for running") })
    var options: [String: String] = [:]
    var current: String?
    for line in lines[(start + 1)...] {
      if line.hasPrefix("  -") {
        let synopsis = String(line.dropFirst(2).prefix(24)).trimmingCharacters(in: .whitespaces)
        options[synopsis] = String(line.dropFirst(26))
        current = synopsis
      } else if let name = current, line.hasPrefix(String(repeating: " ", count: 26)) {
        options[name, default: ""] += " " + line.trimmingCharacters(in: .whitespaces)
      } else {
        break
      }
    }
    let runHelp = run([Paths.elfload, "run", "--help"])
    #expect(runHelp.stdout.hasPrefix("Run PROGRAM with ARGS") && runHelp.ending == .exited(0), "\(runHelp)")
    #expect(run([Paths.elfload, "help", "run"]) == runHelp)
    let help = runHelp.stdout + run([Paths.elfload, "--help-all"]).stdout
    for synopsis in ["--mode <policy>", "--prefetch <n|auto>", "--profile <file>", "--pager <uffd|signal>", "--cold",
      "--argv0 <name>", "-v, --verbose", "--stats", "--stats-json <file>", "--trace <file>", "--residency <file>"]
    {
      let text = try #require(options[synopsis], "\(synopsis) missing from:\n\(outcome.stdout)")
      #expect(text.count > 20 && help.contains(synopsis), "\(synopsis): \(text)")
    }
    #expect(options["--argv0 <name>"] == "give the program NAME as argv[0], like exec -a (NAME may be empty: --argv0 '')")
    #expect(options["--stats-json <file>"] == "write the same numbers as JSON to FILE (-: stderr)")
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

  /// execvp (and so env) looks a name without a slash up in PATH only: a program in the
  /// working directory that PATH does not name is not found (127); one found but not
  /// executable is "Permission denied" (126) when nothing else is found.
  @Test("a name PATH does not lead to is not found, even in the working directory, like env")
  func pathLookupFails() throws {
    let dir = scratchDirectory("path-lookup")
    try? FileManager.default.removeItem(atPath: dir + "/mypattern")
    try FileManager.default.copyItem(atPath: Paths.sample("hello", .staticExec), toPath: dir + "/mypattern")
    let env = ["PATH=/usr/bin:/bin"]
    let native = run(["/usr/bin/env", "mypattern"], environment: env, directory: dir)
    let loaded = run([Paths.elfload, "mypattern"], environment: env, directory: dir)
    #expect(native.ending == .exited(127), "\(native)")
    #expect(loaded.ending == native.ending && loaded.stdout.isEmpty, "\(loaded)")
    #expect(loaded.stderr == "elfload: mypattern: no such file or directory\n", "\(loaded)")

    // The scratch directory's noexec: a copy of hello, mode 0644.
    let denied = ["PATH=/nonexistent:\(Self.scratch):/usr/bin"]
    let nativeDenied = run(["/usr/bin/env", "noexec"], environment: denied)
    let loadedDenied = run([Paths.elfload, "noexec"], environment: denied)
    #expect(nativeDenied.ending == .exited(126), "\(nativeDenied)")
    #expect(loadedDenied.ending == .exited(126) && loadedDenied.stdout.isEmpty, "\(loadedDenied)")
    #expect(loadedDenied.stderr.hasPrefix("elfload: noexec: ") && loadedDenied.stderr.contains("executable"), "\(loadedDenied)")
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
