// --stats, --stats-json and --trace: a supervising parent that runs the program in a child and
// reports what it cost. Without these options elfload stays a single process, like execve.
import CElfload
import ELF
import Glibc

/// What to measure and where to write it.
public struct Measurement: Equatable, Sendable {
  /// A summary on stderr when the program ends.
  public var summary = false
  /// The same as JSON, in this file.
  public var jsonPath: String?
  /// One CSV row per page the loader maps, in this file.
  public var tracePath: String?

  public init(summary: Bool = false, jsonPath: String? = nil, tracePath: String? = nil) {
    self.summary = summary
    self.jsonPath = jsonPath
    self.tracePath = tracePath
  }

  public var isEmpty: Bool { !summary && jsonPath == nil && tracePath == nil }
}

/// The memory the child's loader and fault handler write and the parent reads.
public struct SharedMeasurement: @unchecked Sendable {
  public let counters: UnsafeMutablePointer<elfload_demand_counters>
  /// nil when not tracing.
  public let trace: UnsafeMutablePointer<elfload_trace>?
}

public enum Supervisor {
  /// Trace records that fit (32 bytes each; shared memory costs only what is written).
  static let traceCapacity: UInt64 = 1 << 21

  /// Forks. In the child, returns the shared memory to load the program with.
  /// The parent waits for the child, reports, and exits the way it did (its
  /// status, or the same signal); it never returns.
  public static func start(_ measurement: Measurement, program: String, policy: String)
    throws(LoadError) -> SharedMeasurement
  {
    // The output files first: a path that cannot be written is an error now,
    // not after the program has run.
    let json = try measurement.jsonPath.map { path throws(LoadError) in try create(path, "--stats-json") }
    let traceFile = try measurement.tracePath.map { path throws(LoadError) in try create(path, "--trace") }

    let capacity: UInt64 = traceFile == nil ? 0 : traceCapacity
    let countersSize = UInt64(MemoryLayout<elfload_demand_counters>.stride)
    let traceOffset = (countersSize + 63) & ~63
    let length = traceOffset + UInt64(MemoryLayout<elfload_trace>.stride) + capacity * 32
    let base: UInt64
    do {
      base = try Kernel.map(0, length, [.read, .write], flags: MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE)
    } catch {
      throw .system(error)
    }
    let counters = UnsafeMutablePointer<elfload_demand_counters>(bitPattern: UInt(base))!
    var trace: UnsafeMutablePointer<elfload_trace>?
    if traceFile != nil {
      trace = UnsafeMutablePointer<elfload_trace>(bitPattern: UInt(base + traceOffset))!
      trace!.pointee.capacity = capacity
    }

    let start = Clock.now()
    let pid = fork()
    if pid < 0 { throw .system(SystemCallError("fork", errno: errno)) }
    if pid == 0 {
      json.map { Kernel.close($0) }
      traceFile.map { Kernel.close($0) }
      return SharedMeasurement(counters: counters, trace: trace)
    }

    // The parent: like time(1), leave keyboard signals to the child.
    signal(SIGINT, SIG_IGN)
    signal(SIGQUIT, SIG_IGN)
    var status: Int32 = 0
    var usage = rusage()
    while wait4(pid, &status, 0, &usage) < 0 && errno == EINTR {}
    let end = Clock.now()
    // A hybrid run's watcher counts unused prefetched pages once the program
    // has ended: give it a moment.
    if counters.pointee.pages_prefetched > 0 {
      for _ in 0..<1000 where counters.pointee.unused_counted == 0 { usleep(1000) }
    }

    let report = Report(
      program: program, policy: policy, wall: end.nanoseconds - start.nanoseconds, usage: usage,
      status: status, counters: counters.pointee,
      traced: trace.map { min($0.pointee.count, $0.pointee.capacity) } ?? 0,
      dropped: trace.map {
        $0.pointee.count > $0.pointee.capacity ? $0.pointee.count - $0.pointee.capacity : 0
      } ?? 0)
    if measurement.summary { try? Kernel.writeAll(2, Array(report.summary.utf8)) }
    do {
      if let json { try Kernel.writeAll(json, Array(report.json.utf8)) }
      if let traceFile, let trace {
        try writeTrace(traceFile, trace, count: report.traced, start: start, end: end)
      }
    } catch {
      try? Kernel.writeAll(2, Array("elfload: writing the statistics or the trace failed: \(error)\n".utf8))
    }
    json.map { Kernel.close($0) }
    traceFile.map { Kernel.close($0) }
    exitLike(status)
  }

  static func create(_ path: String, _ option: String) throws(LoadError) -> Int32 {
    do { return try Kernel.createFile(path) } catch { throw .output(option: option, path: path, error) }
  }

  /// The CSV trace: rdtsc stamps turned into nanoseconds since the fork, by
  /// the line through (fork, start stamp) and (end, end stamp).
  static func writeTrace(
    _ fd: Int32, _ trace: UnsafeMutablePointer<elfload_trace>, count: UInt64, start: Clock, end: Clock
  ) throws(SystemCallError) {
    let records = UnsafeMutableRawPointer(trace).advanced(by: MemoryLayout<elfload_trace>.stride)
      .assumingMemoryBound(to: elfload_trace_record.self)
    let ticks = Double(end.stamp &- start.stamp)
    let perTick = ticks > 0 ? Double(end.nanoseconds - start.nanoseconds) / ticks : 0
    var text = "sequence,time_ns,address,image,segment,page,kind,tid\n"
    for i in 0..<Int(count) {
      let r = records[i]
      let ns = UInt64(max(0, Double(Int64(bitPattern: r.timestamp &- start.stamp)) * perTick))
      let kind = r.kind == UInt8(ELFLOAD_TRACE_FAULT) ? "fault" : "prefetch"
      text += "\(i),\(ns),\(hex(r.address)),\(r.image),\(r.segment),\(r.page),\(kind),\(r.tid)\n"
      if text.utf8.count > 1 << 16 {
        try Kernel.writeAll(fd, Array(text.utf8))
        text = ""
      }
    }
    try Kernel.writeAll(fd, Array(text.utf8))
  }

  /// Exits with the child's status, or dies by the signal that killed it.
  static func exitLike(_ status: Int32) -> Never {
    let signalNumber = status & 0x7f
    if signalNumber == 0 { exit((status >> 8) & 0xff) }
    signal(signalNumber, SIG_DFL)
    var none = sigset_t()
    sigemptyset(&none)
    sigprocmask(SIG_SETMASK, &none, nil)
    kill(getpid(), signalNumber)
    exit(128 + signalNumber)
  }
}

/// A point in time: CLOCK_MONOTONIC and the time-stamp counter together.
struct Clock {
  var nanoseconds: UInt64
  var stamp: UInt64
  static func now() -> Clock {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Clock(
      nanoseconds: UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec), stamp: elfload_timestamp())
  }
}

/// One run's numbers, as the summary and the JSON show them.
struct Report {
  var program: String
  var policy: String
  var wall: UInt64
  var usage: rusage
  var status: Int32
  var counters: elfload_demand_counters
  var traced: UInt64
  var dropped: UInt64

  static func milliseconds(_ t: timeval) -> Double { Double(t.tv_sec) * 1000 + Double(t.tv_usec) / 1000 }
  static func fixed(_ value: Double) -> String {
    let thousandths = Int((value * 1000).rounded())
    let fraction = String(thousandths % 1000)
    return "\(thousandths / 1000).\(String(repeating: "0", count: 3 - fraction.count))\(fraction)"
  }

  /// Prefetched pages never touched: 0 without prefetching, the watcher's
  /// count when it reported, nil when it could not.
  var unused: UInt64? {
    if counters.pages_prefetched == 0 { return 0 }
    return counters.unused_counted != 0 ? counters.prefetched_unused : nil
  }

  var ending: String {
    status & 0x7f == 0 ? "exit \((status >> 8) & 0xff)" : "signal \(status & 0x7f)"
  }

  var summary: String {
    """
    elfload stats: \(program) (\(policy)), \(ending)
      time:   wall \(Self.fixed(Double(wall) / 1e6)) ms, user \(Self.fixed(Self.milliseconds(usage.ru_utime))) ms, sys \(Self.fixed(Self.milliseconds(usage.ru_stime))) ms
      memory: peak RSS \(usage.ru_maxrss) KiB; page faults \(usage.ru_minflt) minor, \(usage.ru_majflt) major
      loader: \(counters.faults) faults handled, \(counters.pages_mapped) pages mapped, \(counters.pages_prefetched) of them prefetched (\(unused.map { "\($0) never touched" } ?? "unused unknown")), \(counters.waits) waits

    """
  }

  var json: String {
    let end =
      status & 0x7f == 0
      ? "\"exit_status\": \((status >> 8) & 0xff), \"signal\": null"
      : "\"exit_status\": null, \"signal\": \(status & 0x7f)"
    return """
      {"program": "\(Report.escape(program))", "policy": "\(policy)", "wall_ms": \(Self.fixed(Double(wall) / 1e6)), \
      "user_ms": \(Self.fixed(Self.milliseconds(usage.ru_utime))), "sys_ms": \(Self.fixed(Self.milliseconds(usage.ru_stime))), \
      "max_rss_kb": \(usage.ru_maxrss), "minor_faults": \(usage.ru_minflt), "major_faults": \(usage.ru_majflt), \
      "loader_faults": \(counters.faults), "pages_mapped": \(counters.pages_mapped), \
      "pages_prefetched": \(counters.pages_prefetched), "prefetched_unused": \(unused.map(String.init) ?? "null"), \
      "waits": \(counters.waits), \
      "trace_records": \(traced), "trace_dropped": \(dropped), \(end)}

      """
  }

  static func escape(_ s: String) -> String {
    var out = ""
    for scalar in s.unicodeScalars {
      switch scalar {
      case "\"": out += "\\\""
      case "\\": out += "\\\\"
      case _ where scalar.value < 0x20:
        out +=
          "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count)
          + String(scalar.value, radix: 16)
      default: out.unicodeScalars.append(scalar)
      }
    }
    return out
  }
}
