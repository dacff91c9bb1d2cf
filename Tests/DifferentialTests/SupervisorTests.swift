// elfload as the parent of the program it measures (--stats, --stats-json, --trace): it behaves like
// timeout(1) and time(1) -- the signals sent to it reach the program, the program does not outlive
// it, and the numbers are written however the program ended.
import Foundation
import Testing

@Suite("The supervising parent")
struct SupervisorTests {
  static let scratch = scratchDirectory("supervisor")

  /// A shell that says it is ready, then waits to be sent `signal`, and exits 3 when it is.
  static func trapping(_ signal: String) -> [String] {
    ["/bin/sh", "-c", "trap 'echo got \(signal); exit 3' \(signal); echo ready; while :; do sleep 0.02; done"]
  }

  /// Starts `argv`, waits for "ready", sends `signal` to the process started, and waits for the end.
  static func signalled(_ argv: [String], _ signal: Int32) -> Outcome {
    let started = start(argv)
    if started.waitForOutput("ready") { kill(started.pid, signal) }
    return started.finish()
  }

  static func json(_ path: String) throws -> [String: Any] {
    let data = try Data(contentsOf: URL(fileURLWithPath: path))
    return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any], "\(path): \(data.count) bytes")
  }

  static let caught: [(String, Int32)] = [
    ("TERM", SIGTERM), ("INT", SIGINT), ("HUP", SIGHUP), ("QUIT", SIGQUIT), ("USR1", SIGUSR1),
    ("USR2", SIGUSR2), ("ALRM", SIGALRM), ("WINCH", SIGWINCH),
  ]

  @Test(
    "a signal sent to elfload reaches the program, which handles it as natively; the stats are written",
    arguments: caught.map { $0.0 })
  func signalReachesTheProgram(_ name: String) throws {
    let signal = try #require(Self.caught.first { $0.0 == name }?.1)
    let native = Self.signalled(Self.trapping(name), signal)
    #expect(native.stdout == "ready\ngot \(name)\n" && native.ending == .exited(3), "native: \(native)")
    let json = "\(Self.scratch)/caught-\(name).json"
    let loaded = Self.signalled([Paths.elfload, "--stats-json", json] + Self.trapping(name), signal)
    #expect(loaded == native, "\(loaded)")
    let stats = try Self.json(json)
    #expect(stats["exit_status"] as? Int == 3, "\(stats)")
  }

  @Test(
    "a program killed through elfload: elfload dies by the same signal, and says how in the stats",
    arguments: [Policy.eager, .demand], [SIGTERM, SIGINT, SIGHUP, SIGUSR1])
  func killedThroughElfload(_ policy: Policy, _ signal: Int32) throws {
    let program = ["/bin/sh", "-c", "echo ready; exec /bin/sleep 30"]
    let native = Self.signalled(program, signal)
    #expect(native.ending == .signaled(signal), "native: \(native)")
    let json = "\(Self.scratch)/killed-\(policy.rawValue)-\(signal).json"
    let loaded = Self.signalled([Paths.elfload] + policy.options + ["--stats", "--stats-json", json] + program, signal)
    #expect(loaded.ending == native.ending, "\(loaded)")
    #expect(loaded.seconds < 5, "the program went on running: \(loaded)")
    #expect(loaded.stderr.contains("elfload stats: /bin/sh") && loaded.stderr.contains("signal \(signal)"), "\(loaded)")
    let stats = try Self.json(json)
    #expect(stats["signal"] as? Int == Int(signal), "\(stats)")
  }

  @Test("if elfload is killed (SIGKILL), the program it measures does not outlive it")
  func parentDeath() throws {
    let started = start([Paths.elfload, "--stats", "/bin/sh", "-c", "echo $$; exec /bin/sleep 30"])
    defer { _ = started.finish(timeout: 1, hangExpected: true) }
    #expect(started.waitForOutput("\n"))
    let child = try #require(pid_t(started.stdoutSoFar.trimmingCharacters(in: .whitespacesAndNewlines)))
    #expect(child != started.pid)
    #expect(Self.alive(child), "the program is not running")
    kill(started.pid, SIGKILL)
    var gone = false
    for _ in 0..<200 where !gone {
      gone = !Self.alive(child)
      usleep(10_000)
    }
    #expect(gone, "the program \(child) outlived elfload")
  }

  /// A program that stops itself is a child that changed state but did not end: elfload takes
  /// the SIGCHLD and goes on passing signals on. Continued (here by its own pid, as a shell's
  /// `fg` would), the program is then sent SIGUSR1 through elfload and handles it, as natively.
  @Test("a program that stops itself and is continued still gets the signals sent to elfload", arguments: [Policy.eager, .demand])
  func stoppedThenContinued(_ policy: Policy) throws {
    let script = ["/bin/sh", "-c", "trap 'echo got USR1; exit 3' USR1; echo $$; kill -STOP $$; echo resumed; while :; do sleep 0.02; done"]
    func stopAndContinue(_ argv: [String]) throws -> Outcome {
      let started = start(argv)
      #expect(started.waitForOutput("\n"), "\(started.stdoutSoFar)")
      let program = try #require(pid_t(started.stdoutSoFar.trimmingCharacters(in: .whitespacesAndNewlines)))
      var stopped = false
      for _ in 0..<500 where !stopped {
        stopped = Self.state(program) == "T"
        if !stopped { usleep(10_000) }
      }
      #expect(stopped, "the program \(program) did not stop")
      kill(program, SIGCONT)
      if started.waitForOutput("resumed") { kill(started.pid, SIGUSR1) }
      var outcome = started.finish(timeout: 10)
      outcome.stdout = String(outcome.stdout.drop { $0 != "\n" }.dropFirst())
      return outcome
    }
    let native = try stopAndContinue(script)
    #expect(native.stdout == "resumed\ngot USR1\n" && native.ending == .exited(3), "native: \(native)")
    let loaded = try stopAndContinue([Paths.elfload] + policy.options + ["--stats-json", "\(Self.scratch)/stopped.json"] + script)
    #expect(loaded == native, "\(loaded)")
  }

  /// A process's state letter in /proc/PID/stat (R, S, T, Z...), nil when it is gone.
  static func state(_ pid: pid_t) -> Character? {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
      let close = stat.lastIndex(of: ")")
    else { return nil }
    return stat[stat.index(close, offsetBy: 2)]
  }

  /// Whether `pid` is a process that has not ended (absent or a zombie: ended).
  static func alive(_ pid: pid_t) -> Bool {
    guard let state = state(pid) else { return false }
    return state != "Z" && state != "X"
  }

  @Test(
    "the program starts with the signal state elfload was given (SIGUSR1 blocked, SIGCHLD ignored)",
    arguments: [Policy.eager, .demand])
  func signalStateIsTheProgramsOwn(_ policy: Policy) {
    // env starts the probe (or elfload) with SIGCHLD ignored and SIGUSR1
    // blocked: natively the probe sees both, and so must the program elfload
    // runs in a child (which elfload must still see end: with SIGCHLD
    // ignored the kernel would reap it unseen).
    let probe = Paths.sample("probe", .staticExec)
    let env = ["/usr/bin/env", "--ignore-signal=CHLD", "--block-signal=USR1"]
    let native = run(env + [probe])
    let loaded = run(env + [Paths.elfload] + policy.options + ["--stats", probe])
    #expect(native.ending == .exited(0), "\(native)")
    #expect(loaded.ending == .exited(0), "\(loaded)")
    #expect(loaded.stderr.contains("exit 0"), "\(loaded)")
    func lines(_ o: Outcome) -> [Substring] {
      o.stdout.split(separator: "\n").filter { $0.hasPrefix("blocked signals:") || $0.hasPrefix("signals not default:") }
    }
    #expect(lines(native).count == 2)
    #expect(native.stdout.contains(" 17(ignored)") && native.stdout.contains("blocked signals: 10\n"), "\(native)")
    var expected = lines(native)
    if policy == .demand {
      // SIGSEGV's handler is the pager's (a known difference).
      expected = expected.map { $0.hasPrefix("signals not default:") ? $0.replacingOccurrences(of: "signals not default:", with: "signals not default: 11(handled)")[...] : $0 }
    }
    #expect(lines(loaded) == expected, "\(loaded.stdout)")
    // And the status elfload reports and exits with is still the program's.
    let five = run(env + [Paths.elfload] + policy.options + ["--stats", Paths.sample("exit_code", .staticExec), "5"])
    #expect(five.ending == .exited(5) && five.stderr.contains("exit 5"), "\(five)")
  }
}
