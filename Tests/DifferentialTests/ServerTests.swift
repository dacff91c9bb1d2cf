// The userfaultfd server's placement (uffd_server.c): a worker on each CPU the program faults
// on, a normal-priority watcher that takes over when the CPUs are busy, and --uffd-server single.
// What it changes is speed, which the benchmark measures; what it must never change is what the
// program does, which these tests compare with native runs, and who served the faults, which
// the stats say.
import Foundation
import Testing

@Suite("The userfaultfd server: who serves a fault, and where", .enabled(if: Policy.uffdAvailable))
struct ServerTests {
  static let scratch = scratchDirectory("server")

  static func stats(_ path: String) throws -> [String: Any] {
    let data = try Data(contentsOf: URL(fileURLWithPath: path))
    return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any], "\(path): \(data.count) bytes")
  }

  /// The CPUs this process may run on.
  static let cpus = ProcessInfo.processInfo.activeProcessorCount

  static let placements = ["workers", "single"]

  @Test(
    "faults from two CPUs: one worker on each under workers, none under single; the output is native's",
    arguments: Flavour.allCases, placements)
  func twoCPUs(_ flavour: Flavour, _ placement: String) throws {
    let program = Paths.sample("cpus", flavour)
    let json = "\(Self.scratch)/cpus-\(flavour)-\(placement).json"
    let (native, loaded) = compare(
      program, options: ["--mode", "demand", "--uffd-server", placement, "--stats-json", json])
    #expect(native.ending == .exited(0), "\(native)")
    #expect(loaded == native, "native:\n\(native)\nloaded:\n\(loaded)")
    let stats = try Self.stats(json)
    #expect(stats["server_placement"] as? String == placement, "\(stats)")
    // Thread two faults only after thread one is done, from the other CPU: the worker that
    // first serves it looks where it runs and starts that CPU's worker.
    // (Unless the CPUs were busy with other work -- the suite's own, on a small machine -- and
    // the watcher served them instead.)
    let watcher = try #require(stats["server_watcher_faults"] as? Int, "\(stats)")
    let workers = try #require(stats["server_workers"] as? Int, "\(stats)")
    if placement == "single" {
      #expect(workers == 0, "\(stats)")
    } else {
      #expect(workers == min(Self.cpus, 2) || (watcher > 0 && workers >= 1), "\(stats)")
    }
    #expect(stats["server_cpu_ms"] is Double, "\(stats)")
    if placement == "single" {
      #expect(stats["server_watcher_faults"] as? Int == stats["loader_faults"] as? Int, "\(stats)")
      #expect(stats["server_takeovers"] as? Int == 0, "\(stats)")
    } else {
      // The watcher serves only after it took over.
      let takeovers = try #require(stats["server_takeovers"] as? Int, "\(stats)")
      #expect(watcher == 0 || takeovers > 0, "\(stats)")
    }
    // The first worker starts on elfload's CPU, 0 or 1 as it happens, and the program's first
    // thread pins itself to CPU 0: a server that read the faulting thread's CPU wrong (from
    // /proc/TID/stat; always 0, say) still starts a second worker when it began on CPU 1, so
    // four runs more, each held to the same rule.
    if placement == "workers" && Self.cpus >= 2 {
      for _ in 0..<4 {
        #expect(run([Paths.elfload, "--mode", "demand", "--uffd-server", placement, "--stats-json", json, program]) == native)
        let again = try Self.stats(json)
        let (w, faults) = (again["server_workers"] as? Int ?? -1, again["server_watcher_faults"] as? Int ?? -1)
        #expect(w == 2 || (faults > 0 && w >= 1), "\(again)")
      }
    }
  }

  /// The program held to CPU 0: the server's first worker starts there (the CPU it sets up on
  /// is one the program may run on), and no other CPU faults. --stats says so in words, and
  /// --stats-json in numbers; under single, the one thread is the watcher.
  @Test("on one CPU: one worker, said by --stats and --stats-json; single: none, and the text says single",
        .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/taskset")), arguments: placements)
  func oneCPU(_ placement: String) throws {
    let program = Paths.sample("hello", .staticExec)
    let json = "\(Self.scratch)/one-cpu-\(placement).json"
    let loaded = run(["/usr/bin/taskset", "-c", "0", Paths.elfload, "--mode", "demand", "--pager", "uffd", "--uffd-server", placement,
                      "--stats", "--stats-json", json, program])
    #expect(loaded.stdout == run([program]).stdout && loaded.ending == .exited(0), "\(loaded)")
    let stats = try Self.stats(json)
    let line = loaded.stderr.split(separator: "\n").first { $0.hasPrefix("  server:") }.map(String.init) ?? ""
    if placement == "single" {
      #expect(stats["server_workers"] as? Int == 0, "\(stats)")
      #expect(line.hasSuffix("; one thread at normal priority following the faulting thread's CPU (--uffd-server single)"), "\(line)")
    } else {
      #expect(stats["server_workers"] as? Int == 1, "\(stats)")
      let watcher = try #require(stats["server_watcher_faults"] as? Int, "\(stats)")
      #expect(line.contains("; 1 workers (one per CPU faulted on), ") && line.contains("; \(watcher) faults served by its normal-priority watcher in "), "\(line)")
    }
  }

  @Test(
    "with every CPU busy with normal-priority work, the watcher takes over the faults no worker gets to; the output is native's")
  func busyCPUs() throws {
    // A SCHED_IDLE worker gets almost no time.
    let loops = busyLoopOnEveryCPU()
    defer { stop(loops) }
    let program = Paths.sample("bench3_bss", .staticExec)
    let json = "\(Self.scratch)/busy.json"
    let (native, loaded) = compare(program, ["16"], options: ["--mode", "demand", "--stats-json", json], timeout: 60)
    #expect(native.ending == .exited(0), "\(native)")
    #expect(loaded == native, "native:\n\(native)\nloaded:\n\(loaded)")
    let stats = try Self.stats(json)
    // 16 MiB of bss: 4096 faults and more; no CPU is idle, so the watcher serves them (within 32 ms).
    let served = try #require(stats["server_watcher_faults"] as? Int, "\(stats)")
    let faults = try #require(stats["loader_faults"] as? Int, "\(stats)")
    #expect(served > 0 && served <= faults, "\(stats)")
    // One takeover: the watcher hands the faults back only after a window in which some CPU
    // was idle, and the loops keep every CPU busy until the program ends.
    #expect(stats["server_takeovers"] as? Int == 1, "\(stats)")
  }

  /// What the server holds: the userfaultfd, the files it copies pages from, its /proc readings
  /// and its eventfd -- and none of the descriptors elfload was started with (uffd_server.c
  /// closes every other one). Seen while a program sleeps, with a file open as descriptor 5.
  @Test("the server holds no descriptor elfload was started with, only its own")
  func serverDescriptors() throws {
    let marker = "server-fds-\(getpid())"
    let extra = "\(Self.scratch)/\(marker)-extra"
    FileManager.default.createFile(atPath: extra, contents: Data("x".utf8))
    let sleep = URL(fileURLWithPath: "/bin/sleep").resolvingSymlinksInPath().path
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/sh")
    process.arguments = ["-c", "exec 5<\"$1\"; exec \"$2\" --mode demand --pager uffd --argv0 \"$3\" /bin/sleep 1", "sh", extra, Paths.elfload, marker]
    try process.run()
    defer { process.waitUntilExit() }
    var servers: [String] = []
    let deadline = Date().addingTimeInterval(0.8)
    repeat {
      servers = DemandTests.liveServers(marker: marker)
      if !servers.isEmpty { break }
      usleep(10_000)
    } while Date() < deadline
    let server = try #require(servers.first, "no server found while the program sleeps")
    let fds = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(server)/fd")
    let targets = fds.compactMap { try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(server)/fd/\($0)") }
    #expect(!targets.contains(extra), "\(targets)")
    #expect(targets.contains("anon_inode:[userfaultfd]") && targets.contains(sleep), "\(targets)")
    // Each one: the userfaultfd, an eventfd, the program and its interpreter, /proc files.
    let own = targets.filter {
      $0.hasPrefix("anon_inode:") || $0.hasPrefix("/proc/") || $0 == sleep || $0.hasSuffix("/ld-linux-x86-64.so.2")
    }
    #expect(own == targets, "\(targets)")
  }

  /// Each fork gives the server a userfaultfd of the child's (UFFD_EVENT_FORK); once the child's
  /// address space is gone the server closes it, when no reader is using it -- also when no fault
  /// comes after: while the program sleeps (no fork, no fault) after three children came and
  /// went, the server holds the program's one userfaultfd and no other.
  @Test(
    "the userfaultfds of children gone are closed: one left while the program sleeps",
    .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/python3.11")))
  func deadChildrenClosed() throws {
    let marker = "server-children-\(getpid())"
    let script = """
      import os, time
      for _ in range(3):
          pid = os.fork()
          if pid == 0: os._exit(0)
          os.waitpid(pid, 0)
      time.sleep(3)
      """
    let running = start([
      Paths.elfload, "--mode", "demand", "--pager", "uffd", "/usr/bin/python3.11", "-c", script, marker,
    ])
    var held: [String] = []
    let deadline = Date().addingTimeInterval(2.5)
    repeat {
      usleep(50_000)
      if let server = DemandTests.liveServers(marker: marker).first {
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(server)/fd")) ?? []
        held = fds.compactMap { try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(server)/fd/\($0)") }
          .filter { $0 == "anon_inode:[userfaultfd]" }
        if held.count == 1 { break }
      }
    } while Date() < deadline
    #expect(held.count == 1, "the server's userfaultfds while the program sleeps: \(held.count)")
    let outcome = running.finish()
    #expect(outcome.ending == .exited(0) && outcome.stderr == "", "\(outcome)")
  }

  /// The watcher runs where the program may run (uffd_server.c's allow_program_cpus): the server
  /// sets up pinned to a CPU, and the watcher, started from there, must not stay on it. While it
  /// has never taken over (a takeover pins it to the faulting thread's CPU, and gives it the
  /// program's CPUs back when it ends), its allowed CPUs are the program's: this process's, which
  /// elfload and the program inherit. A run with a takeover says nothing (the suite's own load
  /// can make one): up to five runs, each one without a takeover held to the rule.
  @Test("the watcher may run on every CPU the program may", .enabled(if: ServerTests.cpus >= 2))
  func watcherOnTheProgramsCPUs() throws {
    func allowed(_ status: String) -> String? {
      status.split(separator: "\n").first { $0.hasPrefix("Cpus_allowed_list:") }
        .map { $0.dropFirst("Cpus_allowed_list:".count).trimmingCharacters(in: .whitespaces) }
    }
    let own = try #require(allowed(try String(contentsOfFile: "/proc/self/status", encoding: .utf8)))
    for attempt in 0..<5 {
      let marker = "server-watcher-\(getpid())-\(attempt)"
      let running = start([Paths.elfload, "--mode", "demand", "--pager", "uffd", "--argv0", marker, "--stats", "/bin/sleep", "0.6"])
      // The server's threads at normal priority (policy 0, /proc/PID/task/TID/stat's field 41):
      // the watcher, once it has started.
      var watchers: [String] = []
      let deadline = Date().addingTimeInterval(0.5)
      repeat {
        usleep(20_000)
        guard let server = DemandTests.liveServers(marker: marker).first,
          let tasks = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(server)/task")
        else { continue }
        watchers = tasks.compactMap { tid -> String? in
          guard let stat = try? String(contentsOfFile: "/proc/\(server)/task/\(tid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")"),
            stat[stat.index(after: close)...].split(separator: " ").dropFirst(38).first == "0",
            let status = try? String(contentsOfFile: "/proc/\(server)/task/\(tid)/status", encoding: .utf8)
          else { return nil }
          return allowed(status)
        }
      } while watchers.isEmpty && Date() < deadline
      let outcome = running.finish()
      #expect(outcome.ending == .exited(0), "\(outcome)")
      // --stats: "... faults served by its normal-priority watcher in N takeovers (...)".
      let said = outcome.stderr.components(separatedBy: " takeovers (").first?.split(separator: " ").last
      let takeovers = try #require(said.flatMap { Int($0) }, "\(outcome.stderr)")
      guard takeovers == 0 else { continue }
      #expect(watchers == [own], "the watcher's CPUs \(watchers), the program's \(own)")
    }
  }

  @Test("--uffd-server: a usage error without the userfaultfd pager, or with another word")
  func usage() {
    for argv in [
      ["--uffd-server", "single", "/bin/true"], ["--mode", "demand", "--pager", "signal", "--uffd-server", "single", "/bin/true"],
      ["--mode", "demand", "--uffd-server", "elsewhere", "/bin/true"],
    ] {
      let result = run([Paths.elfload] + argv)
      #expect(result.ending == .exited(64), "\(argv): \(result)")
      #expect(result.stderr.contains("--uffd-server"), "\(argv): \(result)")
    }
  }
}
