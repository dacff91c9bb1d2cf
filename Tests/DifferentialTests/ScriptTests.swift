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
      message: "the #! line's interpreter path runs to the end of the first 256 bytes with no newline, space, tab or NUL after it"),
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

/// The kernel's own exec selftest of `#!` lines (tools/testing/selftests/exec/binfmt_script.py,
/// 27 cases), each run natively and under elfload from a directory of its own: what the kernel
/// runs, elfload runs the same; what it refuses, elfload refuses in one line (126 for ENOEXEC,
/// 127 for ENOENT).
@Suite("#! lines: the kernel's binfmt_script selftest")
struct BinfmtScriptSelftest {
  static let scratch = scratchDirectory("binfmt-script")
  static let size = 256  // BINPRM_BUF_SIZE
  static let nameMax = 255

  struct Case: Sendable, CustomTestStringConvertible {
    var name: String
    var size: Int
    var good = true
    var leading = ""
    var root = "./"
    var target = "/perl"
    var fill = "A"
    var arg = ""
    var newline = "\n"
    var testDescription: String { "\(name) (\(size))" }
  }

  // The selftest's list, in its order (its `test(...)` calls, default arguments and all).
  static let cases: [Case] = [
    Case(name: "too-big", size: size + 80, good: false),
    Case(name: "exact", size: size, good: false),
    Case(name: "exact-space", size: size, good: false, leading: " "),
    Case(name: "whitespace-too-big", size: size + 71, good: false, root: "", target: "", fill: " "),
    Case(name: "truncated", size: size + 17, good: false, leading: String(repeating: " ", count: 19)),
    Case(name: "empty", size: 2, good: false, root: "", target: "", fill: "", newline: ""),
    Case(name: "spaces", size: size - 1, good: false, root: "", target: "", fill: " ", newline: ""),
    Case(name: "newline-prefix", size: size - 1, good: false, leading: "\n", root: "", target: "", fill: " "),
    Case(
      name: "test.pl", size: 439, leading: " ", root: "./nix/store/bwav8kz8b3y471wjsybgzw84mrh4js9-perl-5.28.1/bin",
      arg:
        " -I/nix/store/x6yyav38jgr924nkna62q3pkp0dgmzlx-perl5.28.1-File-Slurp-9999.25/lib/perl5/site_perl -I/nix/store/ha8v67sl8dac92r9z07vzr4gv1y9nwqz-perl5.28.1-Net-DBus-1.1.0/lib/perl5/site_perl -I/nix/store/dcrkvnjmwh69ljsvpbdjjdnqgwx90a9d-perl5.28.1-XML-Parser-2.44/lib/perl5/site_perl -I/nix/store/rmji88k2zz7h4zg97385bygcydrf2q8h-perl5.28.1-XML-Twig-3.52/lib/perl5/site_perl"
    ),
    Case(name: "one-under", size: size - 1),
    Case(name: "two-under", size: size - 2),
    Case(name: "exact-trunc-whitespace", size: size, arg: " "),
    Case(name: "exact-trunc-arg", size: size, arg: " f"),
    Case(name: "one-under-full-arg", size: size - 1, arg: " f"),
    Case(name: "one-under-no-nl", size: size - 1, newline: ""),
    Case(name: "half-under-no-nl", size: size / 2, newline: ""),
    Case(name: "one-under-trunc-arg", size: size - 1, arg: " "),
    Case(name: "one-under-leading", size: size - 1, leading: " "),
    Case(name: "one-under-leading-trunc-arg", size: size - 1, leading: " ", arg: " "),
    Case(name: "two-under-no-nl", size: size - 2, newline: ""),
    Case(name: "two-under-trunc-arg", size: size - 2, arg: " "),
    Case(name: "two-under-leading", size: size - 2, leading: " "),
    Case(name: "two-under-leading-trunc-arg", size: size - 2, leading: " ", arg: " "),
    Case(name: "half-two-under-no-nl", size: size / 2, newline: ""),
    Case(name: "half-two-under-trunc-arg", size: size / 2, arg: " "),
    Case(name: "half-two-under-leading", size: size / 2, leading: " "),
    Case(name: "half-two-under-lead-trunc-arg", size: size / 2, leading: " ", arg: " "),
  ]

  /// The interpreter: the selftest's Perl program, as a shell script.
  static let interpreter = """
    #!/bin/sh
    echo "Executed interpreter! Args:"
    n=0
    for a in "$0" "$@"; do echo "$n : '$a'"; n=$((n + 1)); done

    """

  /// Writes the case's files as the selftest's `test()` does, in a directory of its own;
  /// returns that directory and the script's name.
  static func make(_ c: Case) -> (directory: String, script: String) {
    let directory = "\(scratch)/\(c.name)-\(c.size)"
    try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    var middle = ""
    var remaining = c.size - 2 - c.leading.utf8.count - c.root.utf8.count - c.target.utf8.count - c.arg.utf8.count
    while remaining >= nameMax {
      middle += String(repeating: c.fill, count: nameMax - 1) + "/"
      remaining -= nameMax
    }
    middle += String(repeating: c.fill, count: remaining)
    let dirpath = c.root + middle
    if !c.target.isEmpty {
      try? FileManager.default.createDirectory(
        atPath: "\(directory)/\(dirpath)", withIntermediateDirectories: true)
      writeExecutable("\(directory)/\(dirpath)\(c.target)", Array(interpreter.utf8))
    }
    var text = "#!" + c.leading + dirpath + c.target + c.arg + c.newline
    if !c.newline.isEmpty { text += "echo this is not really perl\n" }
    let script = "binfmt_script-\(c.name)"
    writeExecutable("\(directory)/\(script)", Array(text.utf8))
    return (directory, "./" + script)
  }

  @Test("run natively and under elfload: the same outcome", arguments: cases)
  func sameAsTheKernel(_ c: Case) {
    let (directory, script) = Self.make(c)
    let native = run([script], environment: baseEnvironment, directory: directory)
    let loaded = run([Paths.elfload, script], environment: baseEnvironment, directory: directory)
    let ran = native.ending == .exited(0) && native.stdout.hasPrefix("Executed interpreter")
    // The selftest's verdict holds on this kernel.
    #expect(ran == c.good, "native: \(native)")
    if ran {
      #expect(loaded == native, "native:\n\(native)\nunder elfload:\n\(loaded)")
    } else {
      #expect(native.stderr.hasPrefix("posix_spawn: "), "\(native)")
      let missing = native.stderr.contains("No such file")
      #expect(loaded.ending == .exited(missing ? 127 : 126), "native: \(native)\nunder elfload: \(loaded)")
      #expect(loaded.stderr.hasPrefix("elfload: \(script): "), "\(loaded)")
      #expect(loaded.stderr.split(separator: "\n").count == 1, "\(loaded)")
      #expect(loaded.stdout == "")
    }
  }
}
