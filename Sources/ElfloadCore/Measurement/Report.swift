// One run's numbers as --stats and --stats-json show them, and the --trace CSV's columns: one
// definition for the launcher that writes them and the tools that read them.

/// The pager's counters (demand.c's struct elfload_demand_counters), as Swift values.
public struct PagerCounters: Equatable, Sendable {
  public var faults: UInt64 = 0
  public var pagesMapped: UInt64 = 0
  public var pagesPrefetched: UInt64 = 0
  public var waits: UInt64 = 0
  /// Prefetched pages never touched, when a watcher counted them.
  public var prefetchedUnused: UInt64?
  public init() {}
}

/// How a process ended, from a wait status.
public enum Ending: Equatable, Sendable {
  case exited(Int32)
  case signaled(Int32)

  public init(waitStatus status: Int32) {
    let signal = status & 0x7f
    self = signal == 0 ? .exited((status >> 8) & 0xff) : .signaled(signal)
  }
}

/// One run's numbers.
public struct Report: Sendable {
  public var program: String
  public var policy: PagingPolicy
  /// "uffd" or "signal" under demand and hybrid; nil under eager.
  public var pager: String?
  public var wallNanoseconds: UInt64
  public var usage: ResourceUsage
  public var ending: Ending
  public var counters: PagerCounters
  public var traced: UInt64
  public var dropped: UInt64

  public init(
    program: String, policy: PagingPolicy, pager: String?, wallNanoseconds: UInt64, usage: ResourceUsage,
    ending: Ending, counters: PagerCounters, traced: UInt64, dropped: UInt64
  ) {
    self.program = program
    self.policy = policy
    self.pager = pager
    self.wallNanoseconds = wallNanoseconds
    self.usage = usage
    self.ending = ending
    self.counters = counters
    self.traced = traced
    self.dropped = dropped
  }

  /// Milliseconds with three decimals, from an integer count of `unit`s per millisecond.
  public static func milliseconds(_ value: UInt64, perMillisecond unit: UInt64) -> String {
    let thousandths = (value &* 1000 &+ unit / 2) / unit
    let fraction = String(thousandths % 1000)
    return "\(thousandths / 1000)." + String(repeating: "0", count: 3 - fraction.utf8.count) + fraction
  }

  var wall: String { Self.milliseconds(wallNanoseconds, perMillisecond: 1_000_000) }
  var user: String { Self.milliseconds(usage.userMicroseconds, perMillisecond: 1000) }
  var system: String { Self.milliseconds(usage.systemMicroseconds, perMillisecond: 1000) }

  var endingText: String {
    switch ending {
    case .exited(let status): return "exit \(status)"
    case .signaled(let signal): return "signal \(signal)"
    }
  }

  public var summary: String {
    let unused = counters.prefetchedUnused.map { "\($0) never touched" } ?? "unused unknown"
    return """
      elfload stats: \(program) (\(policy.description)\(pager.map { ", \($0) pager" } ?? "")), \(endingText)
        time:   wall \(wall) ms, user \(user) ms, sys \(system) ms
        memory: peak RSS \(usage.maxRSSKiB) KiB; page faults \(usage.minorFaults) minor, \(usage.majorFaults) major
        loader: \(counters.faults) faults handled, \(counters.pagesMapped) pages mapped, \(counters.pagesPrefetched) of them prefetched (\(unused)), \(counters.waits) waits

      """
  }

  public var json: String {
    let end: String
    switch ending {
    case .exited(let status): end = "\"exit_status\": \(status), \"signal\": null"
    case .signaled(let signal): end = "\"exit_status\": null, \"signal\": \(signal)"
    }
    let unused = counters.prefetchedUnused.map { "\($0)" } ?? "null"
    return """
      {"program": "\(Self.escape(program))", "policy": "\(policy.description)", "mode": "\(policy.mode)", \
      "prefetch": \(policy.prefetch), "pager": \(pager.map { "\"\($0)\"" } ?? "null"), "wall_ms": \(wall), "user_ms": \(user), "sys_ms": \(system), \
      "max_rss_kb": \(usage.maxRSSKiB), "minor_faults": \(usage.minorFaults), "major_faults": \(usage.majorFaults), \
      "loader_faults": \(counters.faults), "pages_mapped": \(counters.pagesMapped), \
      "pages_prefetched": \(counters.pagesPrefetched), "prefetched_unused": \(unused), \
      "waits": \(counters.waits), \
      "trace_records": \(traced), "trace_dropped": \(dropped), \(end)}

      """
  }

  /// A JSON string's contents.
  public static func escape(_ s: String) -> String {
    var out: [UInt8] = []
    let digits = Array("0123456789abcdef".utf8)
    for byte in s.utf8 {
      switch byte {
      case UInt8(ascii: "\""): out += Array("\\\"".utf8)
      case UInt8(ascii: "\\"): out += Array("\\\\".utf8)
      case 0..<0x20: out += Array("\\u00".utf8) + [digits[Int(byte >> 4)], digits[Int(byte & 15)]]
      default: out.append(byte)
      }
    }
    return String(decoding: out, as: UTF8.self)
  }
}

/// The --trace CSV: one row per page the pager makes accessible.
public enum TraceFormat {
  /// The header line's columns, in order.
  public static let columns = ["sequence", "time_ns", "address", "image", "segment", "page", "kind", "tid"]
  public static var header: String { columns.joined(separator: ",") + "\n" }
  /// The `kind` column's words.
  public static let fault = "fault"
  public static let prefetch = "prefetch"
}
