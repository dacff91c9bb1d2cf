// RLIMIT_STACK: elfload may need more stack than the program's soft limit allows; it raises the
// limit for itself at start and gives the program its own value back at the jump.

/// The least stack elfload starts with, and what it gives itself when the hard limit allows.
let loaderStackMinimum: UInt64 = 64 << 10
let loaderStack: UInt64 = 256 << 10

struct StackLimit {
  /// The program's own soft limit when elfload raised it, else nil.
  var programsOwn: UInt64?
  /// The soft limit in force now.
  var current: UInt64

  /// Raises a soft limit below `loaderStack` as far as the hard limit allows;
  /// below `loaderStackMinimum` elfload says so and exits 126.
  static func raiseForLoader() -> StackLimit {
    let (soft, hard) = Kernel.limits(Resource.stack)
    guard soft < loaderStack else { return StackLimit(programsOwn: nil, current: soft) }
    let raised = min(hard, loaderStack)
    if raised < loaderStackMinimum {
      Kernel.writeError(
        "elfload: RLIMIT_STACK's hard limit is below 64 KiB, the least elfload needs for itself before the program starts (the program's own limit would be restored)\n")
      Kernel.exit(126)
    }
    return Kernel.setSoftLimit(Resource.stack, raised)
      ? StackLimit(programsOwn: soft, current: raised) : StackLimit(programsOwn: nil, current: soft)
  }

  /// The program's own soft limit again.
  func restore() {
    if let programsOwn { Kernel.setSoftLimit(Resource.stack, programsOwn) }
  }
}
