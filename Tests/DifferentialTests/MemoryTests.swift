// Programs run from memory -- `elfload -` (standard input) and `elfload --fd N` -- against the
// kernel's own fexecve of a memfd (Samples/fexec.c): output, status, AT_EXECFN, comm,
// /proc/self/exe, argv, descriptors; #! scripts; what follows a program on its stream; limits.
import Foundation
import Testing

/// The native and the elfload side of a run from memory, both through Samples/fexec.
enum FromMemory {
  static var fexec: String { Paths.samples + "/fexec" }

  /// The kernel's run: fexecve of a memfd named `name` holding `file` (close-on-exec unless
  /// `keep`), with argv[0] /dev/fd/N as elfload gives it.
  static func native(
    _ file: String, _ args: [String], name: String, keep: Bool, argv0: String? = nil, environment: [String]? = nil
  ) -> Outcome {
    run([fexec, "-n", name] + (keep ? ["-k"] : []) + [file, argv0 ?? "{path}"] + args, environment: environment)
  }

  /// `elfload [options] - ARGS`, with `file` (then `tail`) on standard input: a pipe, a socket or
  /// a file; `open`: the stream stays open after them.
  static func stdin(
    _ file: String, _ args: [String], options: [String] = [], stream: String = "pipe", tail: String = "",
    open: Bool = false, environment: [String]? = nil
  ) -> Outcome {
    run(
      [fexec, "-s", stream, "-t", tail] + (open ? ["-o"] : []) + [file, Paths.elfload] + options + ["-"] + args,
      environment: environment)
  }

  /// `elfload [options] --fd N /dev/fd/N ARGS`, N a memfd named "prog" holding `file` (or, with `openFile`,
  /// the file itself opened read-only), as a parent would pass it.
  static func descriptor(
    _ file: String, _ args: [String], options: [String] = [], openFile: [String] = [], environment: [String]? = nil
  ) -> Outcome {
    run(
      [fexec, "-n", "prog", "-k"] + openFile + ["-x", Paths.elfload, file, Paths.elfload] + options
        + ["--fd", "{fd}", "{path}"] + args,
      environment: environment)
  }
}

/// The two ways in, each with the native run it must equal: `-` reads into a close-on-exec
/// memfd named "stdin"; `--fd` runs the caller's memfd "prog", which stays open.
enum MemorySource: String, CaseIterable, Sendable, CustomTestStringConvertible {
  case stdin = "-"
  case descriptor = "--fd"
  var testDescription: String { rawValue }

  func native(_ file: String, _ args: [String], argv0: String? = nil, environment: [String]? = nil) -> Outcome {
    switch self {
    case .stdin: FromMemory.native(file, args, name: "stdin", keep: false, argv0: argv0, environment: environment)
    case .descriptor: FromMemory.native(file, args, name: "prog", keep: true, argv0: argv0, environment: environment)
    }
  }

  func loaded(_ file: String, _ args: [String], options: [String], environment: [String]? = nil) -> Outcome {
    switch self {
    case .stdin: FromMemory.stdin(file, args, options: options, environment: environment)
    case .descriptor: FromMemory.descriptor(file, args, options: options, environment: environment)
    }
  }
}

private let isRoot = getuid() == 0

@Suite("Programs from memory (elfload -, --fd N) against fexecve of a memfd")
struct MemoryTests {
  @Test(arguments: SampleRun.all, MemorySource.allCases)
  func samples(_ sample: SampleRun, _ source: MemorySource) {
    let environment = baseEnvironment + sample.extraEnvironment
    var natives: [Flavour: Outcome] = [:]
    for configuration in Configuration.all {
      if sample.staticOnly && configuration.flavour == .dynamic { continue }
      let program = Paths.sample(sample.name, configuration.flavour)
      let native = natives[configuration.flavour] ?? source.native(program, sample.args, environment: environment)
      natives[configuration.flavour] = native
      let loaded = source.loaded(program, sample.args, options: configuration.policy.options, environment: environment)
      expectSameAsNative(sample, configuration, native: native, loaded: loaded)
    }
  }

  /// What the kernel decides about a program run from a descriptor, line by line.
  @Test(arguments: Flavour.allCases, MemorySource.allCases)
  func whatTheProgramSees(_ flavour: Flavour, _ source: MemorySource) throws {
    let program = Paths.sample("whoami", flavour)
    let native = source.native(program, ["x", "y z"])
    let name = source == .stdin ? "stdin" : "prog"
    #expect(native.stdout.contains("argv[0]: /dev/fd/3\nargv[1]: x\nargv[2]: y z\nAT_EXECFN: /dev/fd/3\ncomm: memfd:\(name)\n"), "\(native)")
    #expect(native.stdout.contains("exe: /memfd:\(name) (deleted)\nmapped files: /memfd:\(name) (deleted)"), "\(native)")
    for policy in [Policy.eager, .demand, .hybrid4, .hybridAuto] + Policy.uffd {
      var loaded = source.loaded(program, ["x", "y z"], options: policy.options)
      // Without the privilege to change it, /proc/self/exe names elfload (README).
      if !isRoot {
        #expect(loaded.stdout.contains("exe: \(Paths.elfload)\n"), "\(loaded)")
        loaded.stdout = loaded.stdout.replacingOccurrences(
          of: "exe: \(Paths.elfload)\n", with: "exe: /memfd:\(name) (deleted)\n")
      }
      if policy.usesUffd {
        // The userfaultfd pager's segments (the program's and ld.so's) are anonymous: the
        // memfd is not among the mapped files.
        let nativeLine = native.stdout.split(separator: "\n").first { $0.hasPrefix("mapped files:") }.map(String.init) ?? ""
        let lines = loaded.stdout.split(separator: "\n").map { line in
          guard line.hasPrefix("mapped files:") else { return String(line) }
          let seen = Set(line.split(separator: " ").dropFirst(2))
          #expect(seen.isSubset(of: Set(nativeLine.split(separator: " ").dropFirst(2))), "\(line)")
          #expect(!line.contains("/memfd:"), "\(line)")
          return nativeLine
        }
        loaded.stdout = lines.joined(separator: "\n") + "\n"
      }
      #expect(loaded == native, "\(policy): native:\n\(native)\nunder elfload:\n\(loaded)")
    }
  }

  static let realRuns: [RealRun] = [
    RealRun(argv: ["/bin/true"]),
    RealRun(argv: ["/bin/ls", "-d", "/usr", "/nonexistent"]),
    RealRun(argv: ["/bin/sh", "-c", "echo $0 $1; exit 5", "zero", "one"]),
    RealRun(argv: ["/usr/bin/busybox", "sh", "-c", "x=$((6*7)); echo $x; exit 3"]),
    RealRun(argv: ["/usr/bin/bash-static", "-c", "for i in 3 1 2; do echo $i; done; exit 7"]),
    RealRun(argv: ["/usr/bin/python3", "-c", "import sys; print(sum(range(100)), sys.argv)"]),
    RealRun(argv: ["/usr/bin/sqlite3", ":memory:", "select 6*7;"]),
    RealRun(argv: ["/usr/bin/gcc", "-dumpversion"]),
  ]

  /// Real programs (argv[0] their path, as busybox needs: --argv0), under every policy; those
  /// installed (.ci/run installs them all).
  @Test(arguments: realRuns.filter { FileManager.default.isExecutableFile(atPath: $0.argv[0]) }, MemorySource.allCases)
  func realPrograms(_ run: RealRun, _ source: MemorySource) throws {
    let native = source.native(run.argv[0], Array(run.argv.dropFirst()), argv0: run.argv[0], environment: baseEnvironment)
    #expect(native.ending != .timedOut && native.ending != .exited(125) && native.ending != .exited(126), "\(native)")
    for policy in Policy.allCases {
      let loaded = source.loaded(
        run.argv[0], Array(run.argv.dropFirst()), options: ["--argv0", run.argv[0]] + policy.options,
        environment: baseEnvironment)
      #expect(loaded == native, "\(policy): native:\n\(native)\nunder elfload:\n\(loaded)")
    }
  }

  /// A #! script from memory: its interpreter is given /dev/fd/N and reads the script there; the
  /// task is named after the interpreter's file (what execveat(fd, "", AT_EMPTY_PATH) leaves).
  @Test(arguments: MemorySource.allCases)
  func script(_ source: MemorySource) throws {
    let dir = scratchDirectory("memory-script")
    let script = dir + "/s.sh"
    writeExecutable(
      script, Array("#!/bin/sh -e\necho \"$0 $*\"; cat /proc/$$/comm; readlink /proc/$$/exe; ls /proc/$$/fd\nexit 4\n".utf8))
    // (A script's memfd is inheritable under `-` too: see scriptCloseOnExecNatively.)
    let native = FromMemory.native(script, ["a", "b c"], name: source == .stdin ? "stdin" : "prog", keep: true)
    #expect(native.ending == .exited(4), "\(native)")
    #expect(native.stdout.hasPrefix("/dev/fd/3 a b c\n"), "\(native)")
    for policy in Policy.allCases {
      let loaded = source.loaded(script, ["a", "b c"], options: policy.options)
      if isRoot { #expect(loaded == native, "\(policy): native:\n\(native)\nunder elfload:\n\(loaded)") }
      else { #expect(loaded.stdout.hasPrefix("/dev/fd/3 a b c\n"), "\(loaded)") }
    }
  }

  /// The kernel refuses a script whose descriptor is close-on-exec; `elfload -` makes its memfd
  /// inheritable for a script (its interpreter must open it), so that it runs.
  @Test func scriptCloseOnExecNatively() {
    let dir = scratchDirectory("memory-script-cloexec")
    let script = dir + "/s.sh"
    writeExecutable(script, Array("#!/bin/sh\necho ran\n".utf8))
    let native = FromMemory.native(script, [], name: "stdin", keep: false)
    #expect(native.ending == .exited(126) && native.stderr.contains("fexecve: No such file or directory"), "\(native)")
    let loaded = FromMemory.stdin(script, [])
    #expect(loaded.ending == .exited(0) && loaded.stdout == "ran\n", "\(loaded)")
  }

  /// What follows the program on its stream is the program's standard input, whatever the
  /// stream, and a stream that stays open after it (a peer waiting for the answer) does not
  /// hang the start: an ELF program is read exactly as far as its headers reach.
  @Test(arguments: ["pipe", "socket", "file"], Flavour.allCases)
  func whatFollowsIsStandardInput(_ stream: String, _ flavour: Flavour) {
    let program = Paths.sample("whoami", flavour)
    for open in stream == "file" ? [false] : [false, true] {
      let loaded = FromMemory.stdin(program, ["stdin"], stream: stream, tail: "the rest\nand more\n", open: open)
      #expect(loaded.ending == .exited(0), "\(stream), open \(open): \(loaded)")
      #expect(loaded.stdout.hasSuffix("stdin: the rest\n"), "\(stream), open \(open): \(loaded)")
    }
    let nothing = FromMemory.stdin(program, ["stdin"], stream: stream)
    #expect(nothing.stdout.hasSuffix("stdin: (end)\n"), "\(stream): \(nothing)")
  }

  /// A program whose headers name an end past 2^64 (a section at offset 2^64 - 4096, 8 KiB long:
  /// the kernel never reads sections, so natively it runs as it did) has no extent to stop at: its
  /// stream is read to the end, and what followed it is not the program's standard input. The
  /// program still runs as the unpatched one did, all but that line.
  @Test(arguments: Flavour.allCases)
  func overflowingExtentIsReadToTheEnd(_ flavour: Flavour) throws {
    let program = Paths.sample("whoami", flavour)
    var elf = Mutant(bytes: Array(FileManager.default.contents(atPath: program) ?? Data()))
    let shoff = Int(elf.u64(40))
    let section = try #require(
      (1..<elf.u16(60)).first { ![0, 8].contains(elf.u16(shoff + 64 * $0 + 4)) }, "a section with file bytes")
    elf.put64(shoff + 64 * section + 24, 0xFFFF_FFFF_FFFF_F000)
    elf.put64(shoff + 64 * section + 32, 0x2000)
    let patched = scratchDirectory("memory-overflow") + "/whoami-\(flavour)"
    writeExecutable(patched, elf.bytes)
    let tail = "the rest\nand more\n"
    let plain = FromMemory.stdin(program, ["stdin"], tail: tail)
    let loaded = FromMemory.stdin(patched, ["stdin"], tail: tail)
    let native = MemorySource.stdin.native(patched, [])
    #expect(native == MemorySource.stdin.native(program, []), "the kernel runs it as it ran the unpatched one: \(native)")
    #expect(plain.ending == .exited(0) && plain.stdout.hasSuffix("stdin: the rest\n"), "\(plain)")
    #expect(loaded.ending == .exited(0) && loaded.stderr.isEmpty, "\(loaded)")
    #expect(
      loaded.stdout == String(plain.stdout.dropLast("stdin: the rest\n".count)) + "stdin: (end)\n",
      "\(loaded)\nunpatched: \(plain)")
  }

  /// A non-blocking stream (its parent's choice) whose program comes late, and stays open after
  /// it, is waited for until it is readable, not refused and not read only at its end: the
  /// program runs while the writer still holds the stream.
  @Test(arguments: ["pipe", "socket"])
  func nonBlockingStreamIsWaitedFor(_ stream: String) {
    let loaded = run(
      [FromMemory.fexec, "-s", stream, "-d", "300", "-o", Paths.sample("hello", .staticExec), Paths.elfload, "-"],
      timeout: 20)
    #expect(loaded == Outcome(stdout: "hello, world\n", stderr: "", ending: .exited(0), seconds: 0), "\(loaded)")
  }

  /// With a terminal for standard input, `elfload -` is a person's mistake: one line, 64, at once.
  @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/script")))
  func terminalIsRefused() {
    let outcome = run(["/usr/bin/script", "-qec", "\(Paths.elfload) -; echo status $?", "/dev/null"], timeout: 10)
    #expect(outcome.ending == .exited(0), "\(outcome)")
    #expect(
      outcome.stdout.replacingOccurrences(of: "\r", with: "")
        == "elfload: -: standard input is a terminal; pipe the program in: cat PROGRAM | elfload - ARGS\nstatus 64\n",
      "\(outcome)")
  }

  /// A script is read to the end of its stream (its size is unknowable): its standard input is
  /// then at its end, never the script's own text.
  @Test func scriptStandardInputIsEmpty() {
    let dir = scratchDirectory("memory-script-stdin")
    let script = dir + "/s.sh"
    writeExecutable(script, Array("#!/bin/sh\nif read line; then echo \"read: $line\"; else echo end; fi\n".utf8))
    let loaded = FromMemory.stdin(script, [], tail: "more\n")
    #expect(loaded == Outcome(stdout: "end\n", stderr: "", ending: .exited(0), seconds: 0), "\(loaded)")
  }

  /// Bad input is refused with one line, as a file would be (126): nothing runs.
  @Test func badStreams() {
    let dir = scratchDirectory("memory-bad")
    let hello = Paths.sample("hello", .staticExec)
    let bytes = Array(FileManager.default.contents(atPath: hello) ?? Data())
    let cases: [(String, [UInt8], String)] = [
      ("empty", [], "elfload: -: an empty file (0 bytes), not a program (execve refuses it with ENOEXEC)\n"),
      ("text", Array("echo hi\n".utf8), "it reads as text with no #! line"),
      ("truncated", Array(bytes.prefix(3000)), "past the end of the file"),
      ("header only", Array(bytes.prefix(40)), "elfload: -: "),
    ]
    for (name, content, message) in cases {
      let file = dir + "/\(name.replacingOccurrences(of: " ", with: "-"))"
      writeExecutable(file, content)
      let loaded = FromMemory.stdin(file, [])
      #expect(loaded.ending == .exited(126), "\(name): \(loaded)")
      #expect(loaded.stdout.isEmpty && loaded.stderr.contains(message), "\(name): \(loaded)")
      #expect(loaded.stderr.split(separator: "\n").count == 1, "\(name): \(loaded)")
    }
  }

  /// The limit: RLIMIT_FSIZE lowers it (a memfd's writes count against it: past it, the kernel's
  /// SIGXFSZ). A program of exactly the limit runs; one byte over is refused with one line.
  @Test(arguments: Flavour.allCases)
  func limit(_ flavour: Flavour) throws {
    let hello = Paths.sample("hello", flavour)
    let size = try #require(try FileManager.default.attributesOfItem(atPath: hello)[.size] as? Int)
    let exact = run(["/usr/bin/prlimit", "--fsize=\(size)", FromMemory.fexec, "-s", "pipe", hello, Paths.elfload, "-"])
    #expect(exact == Outcome(stdout: "hello, world\n", stderr: "", ending: .exited(0), seconds: 0), "\(exact)")
    let over = run(["/usr/bin/prlimit", "--fsize=\(size - 1)", FromMemory.fexec, "-s", "pipe", hello, Paths.elfload, "-"])
    #expect(over.ending == .exited(126) && over.stdout.isEmpty, "\(over)")
    #expect(
      over.stderr
        == "elfload: -: the program on standard input is larger than \(size - 1) bytes, the most elfload reads (RLIMIT_FSIZE, ulimit -f); nothing was run\n",
      "\(over)")
    // A script has no size of its own: read to its end, and refused past the limit too.
    let dir = scratchDirectory("memory-limit")
    // (The limit counts for the test's stderr file too: the line must fit in it.)
    writeExecutable(dir + "/s.sh", Array(("#!/bin/sh\necho ran\n" + String(repeating: "#\n", count: 600)).utf8))
    let script = run(["/usr/bin/prlimit", "--fsize=1000", FromMemory.fexec, "-s", "pipe", dir + "/s.sh", Paths.elfload, "-"])
    #expect(script.ending == .exited(126) && script.stderr.contains("larger than 1000 bytes"), "\(script)")
  }

  /// Nothing is written to storage: in a mount namespace whose /tmp is a fresh tmpfs and whose
  /// working directory is that /tmp, both are still empty after the run; the program's maps
  /// name the memfd.
  @Test(.enabled(if: isRoot && FileManager.default.isExecutableFile(atPath: "/usr/bin/unshare")))
  func nothingWrittenToStorage() {
    let whoami = Paths.sample("whoami", .dynamic)
    // The programs are copied out first: the repository itself may be under /tmp, which the mount hides.
    let script = """
      d=$(mktemp -d /dev/shm/elfload-storage-XXXXXX) && cp "$0" "$1" "$2" "$d" || exit 9
      mount -t tmpfs none /tmp && cd /tmp && "$d/fexec" -s pipe "$d/whoami" "$d/elfload" - >"$d/out" 2>&1
      ls -A /tmp; grep '^mapped files' "$d/out"; rm -rf "$d"
      """
    let outcome = run(["/usr/bin/unshare", "--mount", "/bin/sh", "-c", script, FromMemory.fexec, whoami, Paths.elfload])
    #expect(outcome.ending == .exited(0), "\(outcome)")
    #expect(outcome.stdout.hasPrefix("mapped files: /memfd:stdin (deleted) "), "\(outcome)")
  }

  /// --cold has nothing to drop from a memfd, and says so in one line; record refuses a program
  /// with no name, and replay ignores a profile for one (one line each, then a demand run).
  @Test func coldRecordReplay() {
    let hello = Paths.sample("hello", .staticExec)
    let cold = FromMemory.stdin(hello, [], options: ["--cold"])
    #expect(
      cold == Outcome(
        stdout: "hello, world\n",
        stderr:
          "elfload: --cold: /dev/fd/3 is in memory (a memfd, or a file on tmpfs), not cached from storage: nothing to drop\n",
        ending: .exited(0), seconds: 0), "\(cold)")
    let dir = scratchDirectory("memory-profile")
    let profile = dir + "/p.profile"
    for source in MemorySource.allCases {
      let record = source.loaded(hello, [], options: ["record", "--profile", profile])
      #expect(record.ending == .exited(126) && record.stdout.isEmpty, "\(record)")
      #expect(record.stderr.hasSuffix("record: the program is in memory (a memfd or a deleted file), which a profile cannot name (it names files by device, inode, size and mtime); record it from a file\n"), "\(record)")
    }
    let recorded = run([Paths.elfload, "record", "--profile", profile, hello])
    #expect(recorded.ending == .exited(0), "\(recorded)")
    let replay = FromMemory.stdin(hello, [], options: ["--mode", "replay", "--profile", profile])
    #expect(
      replay == Outcome(
        stdout: "hello, world\n",
        stderr:
          "elfload: --profile \(profile): the program is in memory (a memfd or a deleted file), which a profile cannot name (it names files by device, inode, size and mtime); ignored, paging on demand\n",
        ending: .exited(0), seconds: 0), "\(replay)")
  }

  /// --fd N is fexecve(N): a regular file opened elsewhere runs under its own name; what the
  /// kernel refuses (no such descriptor, a pipe, a file without execute permission) is refused.
  @Test func descriptorCases() {
    let whoami = Paths.sample("whoami", .staticExec)
    // A file opened read-only, and one opened O_PATH (the kernel opens the file again: so does elfload).
    for open in [["-f"], ["-f", "-p"]] {
      let native = run([FromMemory.fexec, "-k"] + open + [whoami, "{path}"])
      #expect(native.stdout.contains("AT_EXECFN: /dev/fd/3\ncomm: whoami\n"), "\(native)")
      let file = FromMemory.descriptor(whoami, [], openFile: open)
      #expect(file == native, "native:\n\(native)\nunder elfload:\n\(file)")
    }
    let dir = scratchDirectory("memory-fd")
    let plain = dir + "/not-executable"
    FileManager.default.createFile(atPath: plain, contents: FileManager.default.contents(atPath: whoami), attributes: [.posixPermissions: 0o644])
    let writable = dir + "/executable"
    writeExecutable(writable, Array(FileManager.default.contents(atPath: whoami) ?? Data()))
    let cases: [(String, String)] = [
      ("exec \"$0\" --fd 7 x", "elfload: --fd 7: cannot open: Bad file descriptor\n"),
      (
        "true | exec \"$0\" --fd 0 x",
        "elfload: --fd 0: is a FIFO (named pipe), not a program (execve refuses it too; a program that comes through one runs with: elfload - ARGS < it)\n"
      ),
      ("exec \"$0\" - <&-", "elfload: -: cannot read the program from standard input: fstat: Bad file descriptor\n"),
      ("exec \"$0\" --fd 3 x 3<\"$1\"", "elfload: --fd 3: permission denied: the file is not executable (execve would refuse it too; chmod +x it)\n"),
      // Open for writing (here, by the descriptor itself): fexecve's ETXTBSY.
      ("exec \"$0\" --fd 3 x 3<>\"$2\"", "elfload: --fd 3: text file busy: a process has it open for writing (execve refuses it too, with ETXTBSY)\n"),
    ]
    for (command, message) in cases {
      let outcome = run(["/bin/sh", "-c", command, Paths.elfload, plain, writable])
      #expect(outcome == Outcome(stdout: "", stderr: message, ending: .exited(126), seconds: 0), "\(command): \(outcome)")
    }
  }
}
