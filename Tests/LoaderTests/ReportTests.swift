// The report formats and the supervisor's signal rule, as values.
import ElfloadCore
import Foundation
import Testing

@Suite("Report and signal forwarding")
struct ReportTests {
  static func report(_ ending: Ending = .exited(0)) -> Report {
    var usage = ResourceUsage()
    usage.userMicroseconds = 1500
    usage.systemMicroseconds = 250
    var startup = StartupCost()
    startup.wallNanoseconds = 700_000
    startup.usage.minorFaults = 33
    return Report(
      program: "p", policy: .hybrid(prefetch: 16), wallNanoseconds: 2_000_000, usage: usage, ending: ending,
      counters: PagerCounters(), traced: 0, dropped: 0, segmentPages: 202, startup: startup)
  }

  @Test("the JSON has exactly the defined fields, in their order, and says its schema")
  func fields() throws {
    let json = Self.report().json
    let keys = json.split(separator: "\"").enumerated().compactMap { i, part in
      i % 2 == 1 && json.contains("\"\(part)\": ") ? String(part) : nil
    }.filter { key in Report.fields.contains { $0.name == key } || key.allSatisfy { $0.isLowercase || $0 == "_" } }
    let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
    #expect(Set(object.keys) == Set(Report.fields.map(\.name)))
    #expect(keys.filter { object[$0] != nil } == Report.fields.map(\.name))
    #expect(object["schema"] as? Int == Report.schema)
    #expect(object["cpu_ms"] as? Double == 1.75)
    #expect(object["startup_ms"] as? Double == 0.7)
    #expect(object["segment_pages"] as? Int == 202)
    #expect(object["startup_minor_faults"] as? Int == 33)
    #expect(object["mode"] as? String == "hybrid" && object["prefetch"] as? Int == 16)
  }

  /// A run with no pager of elfload's (eager) reports the counters as made: each count 0 and
  /// each optional one unknown, never a default that looks like a measure.
  @Test("fresh pager counters: every count 0, every optional one nil")
  func freshCounters() {
    let fields = Mirror(reflecting: PagerCounters()).children
    #expect(fields.count == 20, "PagerCounters has \(fields.count) stored fields: this test reads them all")
    for field in fields {
      let label = field.label ?? "?"
      if let count = field.value as? UInt64 {
        #expect(count == 0, "\(label)")
      } else {
        #expect(String(describing: field.value) == "nil", "\(label): \(field.value)")
      }
    }
  }

  @Test("a program's name in the JSON: quotes, backslashes and control bytes escaped, the rest as it is")
  func escapedName() throws {
    var report = Self.report()
    report.program = "/opt/my tools/a\"b\\c\u{1}\u{1f}\té~"
    #expect(report.json.contains(#""program": "/opt/my tools/a\"b\\c\u0001\u001f\u0009é~","#), "\(report.json)")
    let object = try #require(try JSONSerialization.jsonObject(with: Data(report.json.utf8)) as? [String: Any])
    #expect(object["program"] as? String == report.program)
  }

  @Test("the signals passed on, and those not")
  func forwarding() {
    let parent: Int32 = 100
    let child: Int32 = 200
    let someone: Int32 = 300
    for signal in [SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, SIGWINCH, SIGPIPE, SIGABRT, 40] {
      #expect(Signals.shouldForward(signal, code: 0, sender: someone, parent: parent, child: child), "\(signal)")
    }
    for signal in [SIGKILL, SIGSTOP, SIGCHLD, SIGTSTP, SIGCONT, SIGTTIN, SIGTTOU, SIGSEGV] {
      #expect(!Signals.shouldForward(signal, code: 0, sender: someone, parent: parent, child: child), "\(signal)")
    }
    // The terminal's, to the whole group: the program has its own.
    for signal in [SIGINT, SIGQUIT, SIGWINCH, SIGHUP] {
      #expect(!Signals.shouldForward(signal, code: Signals.sentByKernel, sender: 0, parent: parent, child: child))
    }
    // A timer's SIGALRM is the kernel's too, and is passed on.
    #expect(Signals.shouldForward(SIGALRM, code: Signals.sentByKernel, sender: 0, parent: parent, child: child))
    // From elfload itself (SIGPIPE of its own write) or from the program: not back.
    #expect(!Signals.shouldForward(SIGPIPE, code: 0, sender: parent, parent: parent, child: child))
    #expect(!Signals.shouldForward(SIGUSR1, code: 0, sender: child, parent: parent, child: child))
  }

  @Test("the known-limit line: SIGSEGV under demand and hybrid only")
  func knownLimit() {
    #expect(KnownLimits.note(.demand, .signaled(11))?.contains("--mode eager") == true)
    #expect(KnownLimits.note(.hybrid(prefetch: 4), .signaled(11)) != nil)
    #expect(KnownLimits.note(.eager, .signaled(11)) == nil)
    #expect(KnownLimits.note(.demand, .signaled(15)) == nil)
    #expect(KnownLimits.note(.demand, .exited(139)) == nil)
    // The handler saw the fault and declined it: the program's own.
    #expect(KnownLimits.note(.demand, .signaled(11), declined: 1) == nil)
  }
}
