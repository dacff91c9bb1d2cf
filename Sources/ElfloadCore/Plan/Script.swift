// `#!` scripts, the way the kernel's binfmt_script runs them.

/// What is wrong with a `#!` line.
public enum ScriptProblem: Error, Equatable, Sendable, CustomStringConvertible {
  /// Nothing after `#!` but spaces and tabs (up to the newline, or in the
  /// whole first 256 bytes when there is none), or a NUL right after them.
  case noInterpreter
  /// No newline in the first 256 bytes (before a NUL), and no space, tab or
  /// NUL after the interpreter's path in them either: the path may be cut
  /// short.
  case truncated
  /// More than five scripts, each the interpreter of the one before.
  case tooDeep

  public var description: String {
    switch self {
    case .noInterpreter: return "the #! line names no interpreter (the kernel refuses it too)"
    case .truncated:
      return
        "the #! line's interpreter path runs to the end of the first 256 bytes with no newline, space, tab or NUL after it, so it may be cut short (the kernel refuses it too: ENOEXEC)"
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

  /// Parses the start of a file, as load_script (fs/binfmt_script.c) does,
  /// step by step. nil: not a script.
  ///
  /// The kernel works on the first 256 bytes, NUL-padded when the file is
  /// shorter. The line ends at the first newline before the first NUL. With
  /// none, the path must be known to be whole: a space, tab or NUL after its
  /// first byte somewhere in the 256 (the padding of a short file counts);
  /// then the line is the first 255 bytes (the kernel puts its NUL on the
  /// last). Trailing blanks go; the name runs to the first blank or NUL; a
  /// blank after it starts the one argument (to the end of the line, or a NUL).
  /// A line of just `#!` (or `#!` and a NUL) gives the kernel the empty path
  /// as the interpreter, which it refuses (EACCES, measured on 6.18): here
  /// that is `noInterpreter`.
  public init?(parsing head: [UInt8]) throws(ScriptProblem) {
    guard head.count >= 2, head[0] == UInt8(ascii: "#"), head[1] == UInt8(ascii: "!") else { return nil }
    let size = Self.bufferSize
    var buffer = Array(head.prefix(size))
    if buffer.count < size { buffer += [UInt8](repeating: 0, count: size - buffer.count) }
    let last = size - 1
    func isBlank(_ c: UInt8) -> Bool { c == UInt8(ascii: " ") || c == UInt8(ascii: "\t") }
    // next_non_spacetab and next_terminator: [from, through], both ends included.
    func nonBlank(_ from: Int, _ through: Int) -> Int? {
      from <= through ? (from...through).first { !isBlank(buffer[$0]) } : nil
    }
    func terminator(_ from: Int, _ through: Int) -> Int? {
      from <= through ? (from...through).first { isBlank(buffer[$0]) || buffer[$0] == 0 } : nil
    }
    // strnchr: the first newline, looking no further than the first NUL.
    var end: Int
    if let newline = buffer.firstIndex(where: { $0 == UInt8(ascii: "\n") || $0 == 0 }),
      buffer[newline] != 0
    {
      end = newline
    } else {
      guard let first = nonBlank(2, last) else { throw .noInterpreter }
      guard terminator(first, last) != nil else { throw .truncated }
      end = last
    }
    while isBlank(buffer[end - 1]) { end -= 1 }
    guard let name = nonBlank(2, end), name != end else { throw .noInterpreter }
    var separator = terminator(name, end)
    var argument: Int? = nil
    if let s = separator, buffer[s] != 0 { argument = nonBlank(s, end) }
    // The kernel writes a NUL at `end` (and at the separator when there is an
    // argument), then takes both as C strings.
    buffer[end] = 0
    if argument == nil { separator = nil }
    func cString(_ from: Int, _ limit: Int) -> [UInt8] {
      var to = from
      while to < limit && buffer[to] != 0 { to += 1 }
      return Array(buffer[from..<to])
    }
    interpreter = cString(name, separator ?? end)
    guard !interpreter.isEmpty else { throw .noInterpreter }
    self.argument = argument.map { cString($0, end) }
  }

  /// argv for the interpreter: its name, its argument, the script's path in
  /// place of argv[0], then the rest of the original arguments.
  public func arguments(script: [UInt8], original: [[UInt8]]) -> [[UInt8]] {
    [interpreter] + (argument.map { [$0] } ?? []) + [script] + original.dropFirst()
  }
}
