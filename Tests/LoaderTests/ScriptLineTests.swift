// The `#!` line, parsed as binfmt_script parses it.

import ElfloadCore
import Testing

private func parse(_ text: String) throws -> ScriptLine? { try ScriptLine(parsing: Array(text.utf8)) }
private func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

@Test func notAScript() throws {
  #expect(try parse("\u{7f}ELF") == nil)
  #expect(try parse("#") == nil)
  #expect(try parse("# !/bin/sh\n") == nil)
}

@Test func interpreterAndOneArgument() throws {
  let line = try #require(try parse("#! \t/bin/sh  -e -x \t\nrest"))
  #expect(line.interpreter == bytes("/bin/sh"))
  // Everything after the name is one argument, inner spaces kept.
  #expect(line.argument == bytes("-e -x"))
  #expect(
    line.arguments(script: bytes("./s"), original: [bytes("./s"), bytes("a")])
      == [bytes("/bin/sh"), bytes("-e -x"), bytes("./s"), bytes("a")])
}

@Test func carriageReturnIsPartOfTheName() throws {
  // The kernel splits on spaces and tabs only: "/bin/sh\r" does not exist.
  #expect(try parse("#!/bin/sh\r\n")?.interpreter == bytes("/bin/sh\r"))
}

@Test func aNulEndsTheLine() throws {
  let line = try #require(try parse("#!/bin/sh\0 -x\n"))
  #expect(line.interpreter == bytes("/bin/sh"))
  #expect(line.argument == nil)
}

@Test func noNewlineIsFineWhenThePathEnds() throws {
  // A long argument is cut at 255 bytes; the path itself is whole.
  let line = try #require(try parse("#!/bin/sh " + String(repeating: "x", count: 400)))
  #expect(line.interpreter == bytes("/bin/sh"))
  #expect(line.argument?.count == 255 - "#!/bin/sh ".utf8.count)
  // A short file without a newline: the NUL padding ends the path.
  #expect(try parse("#!/bin/sh")?.interpreter == bytes("/bin/sh"))
}

@Test func thePathIsWholeWhenABlankOrNulFollowsItInTheBuffer() throws {
  // 256 bytes, no newline: a blank in the last byte (the kernel's NUL goes there) ends the path.
  let path = "/" + String(repeating: "a", count: 252)
  #expect(try parse("#!" + path + " ")?.interpreter == bytes(path))
  #expect(try parse("#!" + path + " f")?.interpreter == bytes(path))
  #expect(try parse("#!" + path + " f")?.argument == nil)
  // 255 bytes, no newline: the padding's NUL ends the path.
  #expect(try parse("#!" + path)?.interpreter == bytes(path))
  // A newline after a NUL is not seen; the NUL ends the path.
  #expect(try parse("#!/bin/sh\0" + String(repeating: "x", count: 300) + "\n")?.interpreter == bytes("/bin/sh"))
}

@Test func justTheHashBangNamesNoInterpreter() throws {
  // load_script finds the padding's NUL as the name, and open_exec("") fails (EACCES).
  #expect(throws: ScriptProblem.noInterpreter) { try parse("#!") }
  #expect(throws: ScriptProblem.noInterpreter) { try parse("#!  \0/bin/sh\n") }
}

@Test func refusals() throws {
  #expect(throws: ScriptProblem.truncated) { try parse("#!/" + String(repeating: "a", count: 253)) }
  // ... but a newline in the last byte is seen (the kernel: ENOENT for this path, not ENOEXEC).
  #expect(try parse("#!/" + String(repeating: "a", count: 252) + "\n")?.interpreter.count == 253)
  #expect(throws: ScriptProblem.noInterpreter) { try parse("#!" + String(repeating: " ", count: 253)) }
  #expect(throws: ScriptProblem.noInterpreter) { try parse("#!\n") }
  #expect(throws: ScriptProblem.noInterpreter) { try parse("#! \t \n") }
  #expect(throws: ScriptProblem.truncated) { try parse("#!/" + String(repeating: "a", count: 300)) }
}
