// The one line elfload adds when a program under the signal pager (--pager signal) dies
// the way the README's known limits say it can: only with --stats or --verbose, so that a normal
// run's stderr stays the program's own.

public enum KnownLimits {
  /// The signal the limits end in: the kernel's SIGSEGV (a fault while
  /// SIGSEGV is blocked, a program's own handler given elfload's faults).
  public static let signal: Int32 = 11

  /// What to use instead of signal-based paging.
  static let instead = "--pager uffd (as root) or --mode eager"

  static func limits(_ policy: PagingPolicy) -> String {
    "the signal pager (--mode \(policy.mode) --pager signal) cannot serve a fault while SIGSEGV is blocked, nor one a program's own SIGSEGV handler takes (README: Known limits of the signal pager)"
  }

  /// After the program has ended (a supervising elfload): the line to print,
  /// or nil when the ending matches no known limit. `declined`: SIGSEGVs the
  /// pager's handler saw and did not serve -- a fault of the program's own,
  /// which would kill it natively too. The limits kill without the handler
  /// seeing the fault (blocked: the kernel kills; the program's own handler
  /// took it).
  public static func note(_ policy: PagingPolicy, _ ending: Ending, declined: UInt64 = 0, signalPager: Bool = true)
    -> String?
  {
    guard signalPager, policy != .eager, declined == 0, case .signaled(let s) = ending, s == signal else { return nil }
    return
      "elfload: the program was killed by SIGSEGV; \(limits(policy)); if it runs natively, run it with \(instead)\n"
  }

  /// Before the jump, when no elfload will be left to see how the program
  /// ends (--verbose without --stats): the same, said in advance.
  public static func beforehand(_ policy: PagingPolicy) -> String {
    "\(limits(policy)); if the program is killed by SIGSEGV and runs natively, run it with \(instead)"
  }
}
