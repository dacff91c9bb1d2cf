// Running programs natively and under elfload, and capturing everything a user can observe.
import Foundation
import Synchronization
import Testing

/// How a process ended: its exit status or the signal that killed it.
enum Ending: Equatable, CustomStringConvertible {
  case exited(Int32)
  case signaled(Int32)
  case timedOut

  var description: String {
    switch self {
    case .exited(let s): return "exit \(s)"
    case .signaled(let s): return "signal \(s)"
    case .timedOut: return "timed out"
    }
  }
}

/// Everything observable about one run.
struct Outcome: Equatable, CustomStringConvertible {
  var stdout: String
  var stderr: String
  var ending: Ending
  var seconds: Double

  static func == (a: Outcome, b: Outcome) -> Bool {
    a.stdout == b.stdout && a.stderr == b.stderr && a.ending == b.ending
  }

  var description: String {
    "\(ending)\n--- stdout ---\n\(stdout)--- stderr ---\n\(stderr)"
  }
}

enum Paths {
  /// The package root, found from this file's path.
  static let root: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()

  /// The elfload built beside this test bundle (`swift test` builds every
  /// product of the package, so the debug loader is there).
  static let elfload: String = {
    let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    var dir = exe.deletingLastPathComponent()
    while dir.path != "/" {
      let candidate = dir.appendingPathComponent("elfload").path
      if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
      dir = dir.deletingLastPathComponent()
    }
    return root.appendingPathComponent(".build/debug/elfload").path
  }()

  /// Builds the sample programs once per test process, with the repository's Makefile.
  static let samples: String = {
    let dir = root.appendingPathComponent("Samples").path
    let result = run(["/usr/bin/make", "-s", "-C", dir, "-j2"], timeout: 600)
    precondition(result.ending == .exited(0), "building the samples failed:\n\(result)")
    return dir + "/build"
  }()

  static func sample(_ name: String, _ flavour: Flavour) -> String {
    "\(samples)/\(flavour.rawValue)/\(name)"
  }
}

/// A directory of its own for one suite's files, under the temporary directory; it and what
/// it holds are removed when the test process exits.
func scratchDirectory(_ name: String) -> String {
  let dir = FileManager.default.temporaryDirectory.appendingPathComponent("elfload-\(name)-\(getpid())").path
  try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
  scratchDirectories.withLock { directories in
    if directories.isEmpty { atexit { removeScratchDirectories() } }
    directories.insert(dir)
  }
  return dir
}

/// Every scratch directory this process made (several suites' tests share one by its name).
private let scratchDirectories = Mutex<Set<String>>([])

private func removeScratchDirectories() {
  for dir in scratchDirectories.withLock({ $0 }) { try? FileManager.default.removeItem(atPath: dir) }
}

/// One busy loop of normal priority on each CPU this process may use, pinned there (taskset), each
/// started and spinning when this returns; `stop(_:)` them, always.
func busyLoopOnEveryCPU() -> [Started] {
  let loops = (0..<ProcessInfo.processInfo.activeProcessorCount).map { cpu in
    start(["/usr/bin/taskset", "-c", "\(cpu)", "/bin/sh", "-c", "echo spinning; while :; do :; done"])
  }
  for loop in loops { #expect(loop.waitForOutput("spinning"), "a busy loop did not start") }
  return loops
}

/// Ends the busy loops of `busyLoopOnEveryCPU`.
func stop(_ loops: [Started]) {
  for loop in loops {
    kill(-loop.pid, SIGKILL)
    _ = loop.finish(hangExpected: true)
  }
}

/// As root, the prefix that runs a command as nobody (whom process limits and permissions bind);
/// otherwise nothing (the tests already run unprivileged).
let asNobody = getuid() == 0 ? ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] : []

/// A copy of the recorded profile `small` whose page lines are its own over and over, `lines` of
/// them, after its header lines: a large profile of real pages, at `large`.
func repeatProfile(_ small: String, lines count: Int, to large: String) throws {
  let lines = try String(contentsOfFile: small, encoding: .utf8).split(separator: "\n").map(String.init)
  let pages = lines.filter { $0.first?.isNumber == true }
  try #require(!pages.isEmpty, "\(lines)")
  let head = lines.filter { $0.first?.isNumber != true }.joined(separator: "\n") + "\n"
  let body = (0..<count).map { pages[$0 % pages.count] }.joined(separator: "\n") + "\n"
  FileManager.default.createFile(atPath: large, contents: Data((head + body).utf8))
}

/// Writes an executable file (mode 0755).
func writeExecutable(_ path: String, _ bytes: [UInt8]) {
  FileManager.default.createFile(atPath: path, contents: Data(bytes), attributes: [.posixPermissions: 0o755])
}

enum Flavour: String, CaseIterable, CustomTestStringConvertible {
  case staticExec = "static"
  case staticPIE = "static-pie"
  /// A PIE with PT_INTERP: the dynamic linker and libc.so, as gcc builds by default.
  case dynamic = "dynamic"
  var testDescription: String { rawValue }
}

/// glibc's posix_spawn_file_actions_addclosefrom_np, which Swift's Glibc
/// module does not export.
private func closeFrom(_ actions: inout posix_spawn_file_actions_t, _ fd: Int32) {
  typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
  guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np")
  else {
    return
  }
  _ = unsafeBitCast(symbol, to: AddCloseFrom.self)(&actions, fd)
}

/// glibc's posix_spawn_file_actions_addchdir_np: the run starts in `directory`.
private func changeDirectory(_ actions: inout posix_spawn_file_actions_t, _ directory: String) {
  typealias AddChdir = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32
  guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addchdir_np") else {
    preconditionFailure("posix_spawn_file_actions_addchdir_np is missing")
  }
  _ = unsafeBitCast(symbol, to: AddChdir.self)(&actions, directory)
}

/// How long one run may take. Every sample ends in well under a second, so a
/// run that takes longer is a hang (a fault handler looping, a program
/// waiting for a child that is gone): it fails in seconds, not minutes.
/// After a few hangs the suite is failing anyway, and a bug that hangs every
/// run under a policy would otherwise cost the timeout hundreds of times, so
/// the runs after that get a short one: the suite stays bounded.
enum Timeouts {
  /// The default for one run (a loaded machine runs gcc or python3 under elfload in 1-2 s).
  static let normal: Double = 10
  /// For every run after `tripAfter` runs have timed out in this test process.
  static let afterHangs: Double = 2
  static let tripAfter = 3
  private static let count = Mutex(0)
  static func recordHang() { count.withLock { $0 += 1 } }
  static var hangs: Int { count.withLock { $0 } }
  /// The timeout a run asking for `requested` (nil: the default) gets now.
  static func effective(_ requested: Double?) -> Double {
    let wanted = requested ?? normal
    return hangs >= tripAfter ? min(wanted, afterHangs) : wanted
  }
}

/// Runs `argv[0]`'s program (`executable`, or argv[0] itself) with exactly
/// `argv` and `environment`, capturing stdout and stderr through files.
///
/// The run is the leader of a process group of its own, so that everything
/// it starts is killed with it: on a timeout the whole group gets SIGKILL
/// (elfload's supervised child under `--stats`, a shell's children), and
/// when the run ends the group is killed before the leader is reaped (while
/// its pid, and so the group's id, cannot be reused), so no process a test
/// started outlives it.
func run(
  _ argv: [String], executable: String? = nil, environment: [String]? = nil,
  timeout: Double? = nil, hangExpected: Bool = false, directory: String? = nil, closed: Set<Int32> = []
) -> Outcome {
  // A file a test has just written can be "busy" for a moment (a process
  // another test thread is spawning may still hold a copy of its
  // descriptor): elfload then refuses it as execve would (ETXTBSY), and the
  // run is tried again, as posix_spawn's ETXTBSY is below. A file kept open
  // for writing stays busy: its test still sees the refusal.
  var outcome = Outcome(stdout: "", stderr: "", ending: .exited(-1), seconds: 0)
  for attempt in 0..<20 {
    if attempt > 0 { usleep(10_000) }
    outcome = start(argv, executable: executable, environment: environment, directory: directory, closed: closed).finish(
      timeout: timeout, hangExpected: hangExpected)
    guard outcome.ending == .exited(126), outcome.stderr.lowercased().contains("text file busy") else { break }
  }
  return outcome
}

/// Starts `argv` as `run` does and returns at once: for tests that signal a
/// run while it is under way. `finish()` it, always. Descriptors among 0, 1, 2 in `closed`
/// are closed when it starts (what it writes there is lost).
func start(
  _ argv: [String], executable: String? = nil, environment: [String]? = nil, directory: String? = nil,
  closed: Set<Int32> = []
) -> Started {
  let dir = FileManager.default.temporaryDirectory.appendingPathComponent(
    "elfload-test-\(UUID().uuidString)")
  try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
  let outPath = dir.appendingPathComponent("out").path
  let errPath = dir.appendingPathComponent("err").path

  var actions: posix_spawn_file_actions_t = posix_spawn_file_actions_t()
  posix_spawn_file_actions_init(&actions)
  defer { posix_spawn_file_actions_destroy(&actions) }
  FileManager.default.createFile(atPath: outPath, contents: nil)
  FileManager.default.createFile(atPath: errPath, contents: nil)
  for (fd, path, flags) in [(Int32(0), "/dev/null", O_RDONLY), (1, outPath, O_WRONLY | O_TRUNC), (2, errPath, O_WRONLY | O_TRUNC)] {
    if closed.contains(fd) {
      posix_spawn_file_actions_addclose(&actions, fd)
    } else {
      posix_spawn_file_actions_addopen(&actions, fd, path, flags, 0o644)
    }
  }
  // Tests run in parallel: without this, a descriptor another test thread has
  // open at this moment leaks into one run and not the other.
  closeFrom(&actions, 3)
  if let directory { changeDirectory(&actions, directory) }
  var attributes = posix_spawnattr_t()
  posix_spawnattr_init(&attributes)
  defer { posix_spawnattr_destroy(&attributes) }
  // A clean signal state, as a shell would give: default handlers, nothing blocked.
  var none = sigset_t()
  sigemptyset(&none)
  var all = sigset_t()
  sigfillset(&all)
  posix_spawnattr_setsigmask(&attributes, &none)
  posix_spawnattr_setsigdefault(&attributes, &all)
  // A process group of its own (its id is the leader's pid).
  posix_spawnattr_setpgroup(&attributes, 0)
  posix_spawnattr_setflags(
    &attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))

  let env = environment ?? ProcessInfo.processInfo.environment.map { "\($0)=\($1)" }.sorted()
  let cArgs = argv.map { strdup($0) } + [nil]
  let cEnv = env.map { strdup($0) } + [nil]
  defer {
    cArgs.forEach { free($0) }
    cEnv.forEach { free($0) }
  }
  let start = Date()
  var pid: pid_t = 0
  var rc = posix_spawn(&pid, executable ?? argv[0], &actions, &attributes, cArgs, cEnv)
  // A file a test has just written can be "busy" for a moment: a process
  // another test thread is spawning may still hold a copy of its descriptor.
  for _ in 0..<100 where rc == ETXTBSY {
    usleep(10_000)
    rc = posix_spawn(&pid, executable ?? argv[0], &actions, &attributes, cArgs, cEnv)
  }
  var started = Started(pid: pid, dir: dir, outPath: outPath, errPath: errPath, start: start)
  if rc != 0 {
    started.failure = Outcome(
      stdout: "", stderr: "posix_spawn: \(String(cString: strerror(rc)))\n", ending: .exited(-1), seconds: 0)
  }
  return started
}

/// A run under way (from `start`): its pid, which is also its process group's id.
struct Started {
  var pid: pid_t
  var dir: URL
  var outPath: String
  var errPath: String
  var start: Date
  var failure: Outcome?

  /// What it has written to stdout so far.
  var stdoutSoFar: String { (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "" }

  /// Waits until its stdout contains `text` (true), or `seconds` pass.
  func waitForOutput(_ text: String, seconds: Double = 10) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
      if stdoutSoFar.contains(text) { return true }
      usleep(2000)
    }
    return false
  }

  /// Waits for it to end (after `timeout`, a hang: its group is killed),
  /// kills whatever is left of its group, and returns what it did.
  func finish(timeout: Double? = nil, hangExpected: Bool = false) -> Outcome {
    defer { try? FileManager.default.removeItem(at: dir) }
    if let failure { return failure }
    let timeout = Timeouts.effective(timeout)
    var ending = Ending.timedOut
    var info = siginfo_t()
    while true {
      // WNOWAIT: the leader stays a zombie (its pid reserved) until its group is killed.
      info = siginfo_t()
      let r = waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT)
      if r == 0 && info._sifields._sigchld.si_pid == pid {
        let code = info._sifields._sigchld.si_status
        ending = info.si_code == Int32(CLD_EXITED) ? .exited(code) : .signaled(code)
        break
      }
      if r != 0 && errno != EINTR { break }
      if Date().timeIntervalSince(start) > timeout {
        if !hangExpected { Timeouts.recordHang() }
        break
      }
      usleep(500)
    }
    // Whatever is left of the group (everything, after a timeout) dies now.
    kill(-pid, SIGKILL)
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    let seconds = Date().timeIntervalSince(start)
    let out = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "<unreadable>"
    let err = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "<unreadable>"
    return Outcome(stdout: out, stderr: err, ending: ending, seconds: seconds)
  }
}

/// Runs `program args` natively and as `elfload [options] program args`.
func compare(
  _ program: String, _ args: [String] = [], options: [String] = [], environment: [String]? = nil,
  timeout: Double? = nil
) -> (native: Outcome, loaded: Outcome) {
  let native = run([program] + args, environment: environment, timeout: timeout)
  let loaded = run([Paths.elfload] + options + [program] + args, environment: environment, timeout: timeout)
  return (native, loaded)
}

extension Array {
  /// The element at `index`, or nil past the end: for reading what the program under test wrote
  /// (a CSV row, an SVG's numbers), which a bug can cut short -- an expectation then fails where a
  /// subscript would crash the test runner, and every test after it with it.
  subscript(at index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}

/// Group `group` of the match `m` in `text`, as a number; NaN when it reads as none (a drawing bug
/// then fails the expectations on it instead of trapping).
func number(_ text: String, _ m: NSTextCheckingResult, _ group: Int) -> Double {
  Range(m.range(at: group), in: text).flatMap { Double(text[$0]) } ?? .nan
}
