// What the kernel gave elfload at start-up: argv, envp, auxv and the top of its stack, read once.

/// elfload's own start-up stack, copied out before it is reused for the
/// program. Every pointer here came from the kernel, so it is trusted; a
/// missing one is reported, not dereferenced.
struct StartupStack {
  /// argv, byte for byte (not decoded: arguments need not be UTF-8).
  var arguments: [[UInt8]]
  var environment: [[UInt8]]
  /// The kernel's auxv for elfload, in order, without AT_NULL.
  var auxv: [AuxvEntry]
  /// The end of the stack mapping: AT_EXECFN's string, then 8 zero bytes.
  var stackTop: UInt64?
  /// The AT_PLATFORM string ("x86_64"), when the kernel gave one.
  var platform: [UInt8]?

  /// Reads the stack the kernel built: argc at `stack`, then argv, NULL, envp, NULL, auxv.
  init(_ stack: UnsafePointer<UInt64>) {
    let argc = Int(stack[0])
    var word = stack + 1
    arguments = (0..<argc).map { cString(word[$0]) }
    word += argc + 1
    environment = []
    while word.pointee != 0 {
      environment.append(cString(word.pointee))
      word += 1
    }
    word += 1
    auxv = []
    stackTop = nil
    platform = nil
    while word[0] != AuxvTag.null.rawValue {
      let entry = AuxvEntry(AuxvTag(rawValue: word[0]), word[1])
      auxv.append(entry)
      word += 2
      if entry.tag == .execfn && entry.value != 0 {
        stackTop = entry.value + UInt64(cString(entry.value).count) + 1 + 8
      }
      if entry.tag == .platform && entry.value != 0 { platform = cString(entry.value) }
    }
  }

  /// The value of an environment variable, as `getenv` would find it.
  func environmentValue(_ name: String) -> [UInt8]? {
    let prefix = Array(name.utf8) + [UInt8(ascii: "=")]
    return environment.first { $0.starts(with: prefix) }.map { Array($0.dropFirst(prefix.count)) }
  }
}

/// The bytes of the C string at `address`, without its NUL.
func cString(_ address: UInt64) -> [UInt8] {
  guard let p = UnsafePointer<UInt8>(bitPattern: UInt(address)) else { return [] }
  var n = 0
  while p[n] != 0 { n += 1 }
  return Array(UnsafeBufferPointer(start: p, count: n))
}
