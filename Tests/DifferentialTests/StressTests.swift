// Nothing lost under pressure: many runs at once of the fork-, thread- and race-heavy samples,
// under every policy and pager, each compared with native.
import Foundation
import Synchronization
import Testing

@Suite("Stress: many runs at once")
struct StressTests {
  /// The samples whose every run must match native, with their arguments.
  static let programs: [(name: String, args: [String])] = [("race", []), ("stress", ["forks", "20"]), ("forks", [])]

  @Test("8 runs at a time, 24 per sample, under every policy and pager: all as natively", arguments: Policy.allCases)
  func parallelRuns(_ policy: Policy) {
    for (name, args) in Self.programs {
      let program = Paths.sample(name, .staticExec)
      let arguments = name == "forks" ? [Paths.sample("hello", .staticExec)] : args
      let native = run([program] + arguments, environment: baseEnvironment)
      #expect(native.ending == .exited(0), "\(native)")
      let outcomes = Mutex<[Outcome]>([])
      let slots = DispatchSemaphore(value: 8)
      let group = DispatchGroup()
      for _ in 0..<24 {
        slots.wait()
        DispatchQueue.global().async(group: group) {
          let loaded = run([Paths.elfload] + policy.options + [program] + arguments, environment: baseEnvironment)
          outcomes.withLock { $0.append(loaded) }
          slots.signal()
        }
      }
      group.wait()
      let differing = outcomes.withLock { $0.filter { $0 != native } }
      #expect(differing.isEmpty, "\(name) \(policy): \(differing.count) of 24 differ; first:\n\(differing.first.map { "\($0)" } ?? "")")
    }
  }
}
