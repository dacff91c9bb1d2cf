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

@Test func refusals() {
  #expect(throws: ScriptProblem.noInterpreter) { try parse("#!\n") }
  #expect(throws: ScriptProblem.noInterpreter) { try parse("#! \t \n") }
  #expect(throws: ScriptProblem.truncated) { try parse("#!/" + String(repeating: "a", count: 300)) }
}
