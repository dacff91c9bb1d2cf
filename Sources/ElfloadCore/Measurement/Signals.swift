// Which signals a supervising elfload (--stats, --stats-json, --trace) passes on to the program it
// runs in a child, as timeout(1) does: one rule, for the launcher and its tests.

public enum Signals {
  /// The bit of `signal` in a kernel signal set (sigset_t, 64 bits).
  public static func bit(_ signal: Int32) -> UInt64 { 1 << UInt64(signal - 1) }

  /// Signals elfload keeps: those that cannot be caught (SIGKILL, SIGSTOP),
  /// SIGCHLD (its own business), job control (elfload stops and continues
  /// with its terminal, as the program does), the synchronous faults (a
  /// fault in elfload must kill it) and glibc's two internal real-time signals.
  public static let kept: [Int32] = [9, 19, 17, 18, 20, 21, 22, 4, 5, 7, 8, 11, 31, 32, 33]

  /// Every other signal, 1 to 64: SIGHUP, SIGINT, SIGQUIT, SIGABRT, SIGUSR1,
  /// SIGUSR2, SIGPIPE, SIGALRM, SIGTERM, SIGWINCH, the real-time signals...
  public static let forwarded: UInt64 = {
    var set: UInt64 = 0
    for signal in Int32(1)...64 where !kept.contains(signal) { set |= bit(signal) }
    return set
  }()

  /// si_code of a signal the kernel itself sent (a terminal's, a timer's).
  public static let sentByKernel: Int32 = 0x80

  /// The signals a terminal sends its whole foreground process group, which
  /// the program (in elfload's group) receives itself.
  public static let fromTerminal: [Int32] = [1, 2, 3, 28]

  /// Whether a signal elfload received is passed on to the program: not when
  /// the terminal sent it to the whole group (Ctrl-C, Ctrl-\, a resized
  /// window: the program has its own), nor when elfload sent it to itself
  /// (SIGPIPE from its own write) or the program sent it to its parent.
  public static func shouldForward(_ signal: Int32, code: Int32, sender: Int32, parent: Int32, child: Int32) -> Bool {
    guard forwarded & bit(signal) != 0 else { return false }
    if code == sentByKernel && fromTerminal.contains(signal) { return false }
    if code <= 0 && (sender == parent || sender == child) { return false }
    return true
  }
}
