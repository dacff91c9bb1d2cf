// What the kernel gave elfload at start-up: argv, envp, auxv and the top of its stack, read once.
import CElfload
import Glibc

/// elfload's own start-up stack, copied out before it is reused for the
/// program. Every pointer here came from the kernel, so it is trusted; a
/// missing one is reported, not dereferenced.
public struct OriginalStack: Sendable {
  /// argv, byte for byte (not decoded: arguments need not be UTF-8).
  public var arguments: [[UInt8]]
  public var environment: [[UInt8]]
  /// The kernel's auxv for elfload, in order, without AT_NULL.
  public var auxv: [AuxvEntry]
  /// The end of the stack mapping: AT_EXECFN's string, then 8 zero bytes.
  public var stackTop: UInt64
  /// The AT_PLATFORM string ("x86_64"), when the kernel gave one.
  public var platform: [UInt8]?

  /// Reads the stack captured by CElfload's constructor before main.
  public static func read() -> OriginalStack? {
    let original = elfload_original().pointee
    guard let argv = original.argv, let envp = original.envp, let auxvWords = original.auxv else {
      return nil
    }
    let arguments = (0..<Int(original.argc)).compactMap { argv[$0].map(cString) }
    var environment: [[UInt8]] = []
    var e = envp
    while let s = e.pointee {
      environment.append(cString(s))
      e += 1
    }
    var auxv: [AuxvEntry] = []
    var stackTop: UInt64?
    var platform: [UInt8]?
    var word = auxvWords
    while word[0] != AuxvTag.null.rawValue {
      let entry = AuxvEntry(AuxvTag(rawValue: word[0]), word[1])
      auxv.append(entry)
      word += 2
      guard let s = UnsafeMutablePointer<CChar>(bitPattern: UInt(entry.value)) else { continue }
      if entry.tag == .execfn { stackTop = entry.value + UInt64(strlen(s)) + 1 + 8 }
      if entry.tag == .platform { platform = cString(s) }
    }
    guard let stackTop else { return nil }
    return OriginalStack(
      arguments: arguments, environment: environment, auxv: auxv, stackTop: stackTop, platform: platform)
  }
}

/// The bytes of a C string, without its NUL.
func cString(_ pointer: UnsafeMutablePointer<CChar>) -> [UInt8] {
  let n = strlen(pointer)
  return pointer.withMemoryRebound(to: UInt8.self, capacity: n) {
    Array(UnsafeBufferPointer(start: $0, count: n))
  }
}
