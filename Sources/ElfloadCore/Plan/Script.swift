// `#!` scripts, the way the kernel's binfmt_script runs them.

/// What is wrong with a `#!` line.
public enum ScriptProblem: Error, Equatable, Sendable, CustomStringConvertible {
  /// Nothing after `#!` but spaces and tabs.
  case noInterpreter
  /// No newline in the first 256 bytes and no space, tab or NUL after the
  /// interpreter's path either: the path may be cut short.
  case truncated
  /// More than five scripts, each the interpreter of the one before.
  case tooDeep

  public var description: String {
    switch self {
    case .noInterpreter: return "the #! line names no interpreter"
    case .truncated:
      return
        "the #! line has no end in its first 256 bytes, so the interpreter's path may be cut short (the kernel refuses it too)"
    case .tooDeep:
      return "more than 5 levels of #! interpreters (the kernel says ELOOP)"
    }
  }
}

/// The interpreter and its optional argument from a `#!` line.
public struct ScriptLine: Equatable, Sendable {
  public var interpreter: [UInt8]
  public var argument: [UInt8]?

  /// The kernel reads this much of a file to decide how to run it.
  public static let bufferSize = 256

  /// Parses the start of a file, as load_script does. nil: not a script.
  public init?(parsing head: [UInt8]) throws(ScriptProblem) {
    guard head.count >= 2, head[0] == UInt8(ascii: "#"), head[1] == UInt8(ascii: "!") else { return nil }
    let buffer = Array(head.prefix(Self.bufferSize))
    func isBlank(_ c: UInt8) -> Bool { c == UInt8(ascii: " ") || c == UInt8(ascii: "\t") }
    // The line ends at the first newline. Without one, the interpreter's path
    // must be followed by a space, tab or NUL inside the buffer, else it may
    // be truncated; arguments may be cut, the interpreter rereads the script.
    var end: Int
    if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
      end = newline
    } else {
      let last = Self.bufferSize - 1
      let padded = buffer + [UInt8](repeating: 0, count: max(0, Self.bufferSize - buffer.count))
      guard let start = (2..<last).first(where: { !isBlank(padded[$0]) }) else { throw .noInterpreter }
      guard (start..<last).contains(where: { isBlank(padded[$0]) || padded[$0] == 0 }) else {
        throw .truncated
      }
      end = min(last, buffer.count)
    }
    var line = Array(buffer[2..<end])
    // A NUL ends the line too (the kernel works on a C string).
    if let nul = line.firstIndex(of: 0) { line = Array(line[..<nul]) }
    while let last = line.last, isBlank(last) { line.removeLast() }
    let trimmed = line.drop(while: isBlank)
    guard !trimmed.isEmpty else { throw .noInterpreter }
    let name = trimmed.prefix { !isBlank($0) }
    let rest = trimmed.dropFirst(name.count).drop(while: isBlank)
    interpreter = Array(name)
    argument = rest.isEmpty ? nil : Array(rest)
  }

  /// argv for the interpreter: its name, its argument, the script's path in
  /// place of argv[0], then the rest of the original arguments.
  public func arguments(script: [UInt8], original: [[UInt8]]) -> [[UInt8]] {
    [interpreter] + (argument.map { [$0] } ?? []) + [script] + original.dropFirst()
  }
}
