// The launch path's fast command-line parser must agree with ArgumentParser, or defer to it.
import ElfloadCLI
import Loader
import Testing

struct RunLine: Sendable, CustomTestStringConvertible {
  var argv: [String]
  var programIndex: Int
  var settings: RunSettings
  var testDescription: String { argv.joined(separator: " ") }
}

let agreed: [RunLine] = [
  RunLine(argv: ["elfload", "./p"], programIndex: 1, settings: RunSettings()),
  // Everything after the program is the program's, even what looks like ours.
  RunLine(argv: ["elfload", "./p", "-x", "--mode", "y"], programIndex: 1, settings: RunSettings()),
  RunLine(argv: ["elfload", "./p", "--verbose"], programIndex: 1, settings: RunSettings()),
  RunLine(argv: ["elfload", "--verbose", "./p", "a"], programIndex: 2, settings: RunSettings(verbose: true)),
  RunLine(argv: ["elfload", "-v", "--", "./p"], programIndex: 3, settings: RunSettings(verbose: true)),
  RunLine(argv: ["elfload", "--", "./p"], programIndex: 2, settings: RunSettings()),
  RunLine(argv: ["elfload", "--mode", "all", "./p"], programIndex: 3, settings: RunSettings(mode: .eager)),
  RunLine(
    argv: ["elfload", "--mode=eager", "--argv0", "zz", "./p", "--", "q"], programIndex: 4,
    settings: RunSettings(mode: .eager, argv0: "zz")),
  RunLine(argv: ["elfload", "--argv0=n", "./p"], programIndex: 2, settings: RunSettings(argv0: "n")),
  RunLine(argv: ["elfload", "--argv0=a=b", "./p"], programIndex: 2, settings: RunSettings(argv0: "a=b")),
  RunLine(
    argv: ["elfload", "-v", "--argv0", "sh", "--mode", "eager", "./p", "-c", "x"], programIndex: 6,
    settings: RunSettings(argv0: "sh", verbose: true)),
  RunLine(
    argv: ["elfload", "--mode", "eager", "--mode", "all", "./p"], programIndex: 5, settings: RunSettings()),
  RunLine(argv: ["elfload", "--argv0", "-", "./p"], programIndex: 3, settings: RunSettings(argv0: "-")),
  // A lone "-" is a program name, and a subcommand's name after an option is too.
  RunLine(argv: ["elfload", "-", "x"], programIndex: 1, settings: RunSettings()),
  RunLine(argv: ["elfload", "-v", "inspect"], programIndex: 2, settings: RunSettings(verbose: true)),
  RunLine(
    argv: ["elfload", "--mode", "demand", "./p"], programIndex: 3, settings: RunSettings(mode: .demand)),
  RunLine(
    argv: ["elfload", "--mode=hybrid", "./p"], programIndex: 2,
    settings: RunSettings(mode: .hybrid, prefetch: 1)),
  RunLine(
    argv: ["elfload", "--mode", "hybrid", "--prefetch", "16", "./p"], programIndex: 5,
    settings: RunSettings(mode: .hybrid, prefetch: 16)),
  RunLine(
    argv: ["elfload", "--prefetch=512", "--mode", "hybrid", "./p"], programIndex: 4,
    settings: RunSettings(mode: .hybrid, prefetch: 512)),
  RunLine(
    argv: ["elfload", "--stats", "--stats-json", "s.json", "--trace=t.csv", "./p", "--stats"],
    programIndex: 5,
    settings: RunSettings(measurement: Measurement(summary: true, jsonPath: "s.json", tracePath: "t.csv"))),
]

@Test(arguments: agreed)
func fastParserAgreesWithArgumentParser(_ line: RunLine) throws {
  let fast = try #require(FastParse.parse(line.argv.map { Array($0.utf8) }))
  #expect(fast.programIndex == line.programIndex)
  #expect(fast.settings == line.settings)

  let parsed = try Elfload.parseAsRoot(Array(line.argv.dropFirst()))
  let run = try #require(parsed as? Elfload.Run)
  #expect(run.options.settings == fast.settings)
  #expect(run.programAndArguments == Array(line.argv[fast.programIndex...]))
}

/// Values ArgumentParser would not take for --argv0: the fast parser must
/// leave these lines to it rather than read them its own way.
@Test(arguments: [
  // ArgumentParser will not take a value that starts with "-": "Missing value for '--argv0 <name>'".
  ["elfload", "--argv0", "--verbose", "./p"],
  ["elfload", "--argv0", "-x", "./p"],
  // ArgumentParser treats "--argv0=" as no value and takes "./p" as it.
  ["elfload", "--argv0=", "./p"],
])
func fastParserDefersValuesArgumentParserRejects(_ argv: [String]) throws {
  #expect(FastParse.parse(argv.map { Array($0.utf8) }) == nil)
}

/// What the fast parser leaves to ArgumentParser: no program, help,
/// subcommands, unknown values or options, and a missing value.
@Test(arguments: [
  ["elfload"],
  ["elfload", "--help"],
  ["elfload", "-h"],
  ["elfload", "help"],
  ["elfload", "--version"],
  ["elfload", "inspect", "./p"],
  ["elfload", "run", "./p"],
  ["elfload", "--mode", "lazy", "./p"],
  ["elfload", "--mode=", "./p"],
  ["elfload", "--mode", "hybrid", "--prefetch", "0", "./p"],
  ["elfload", "--mode", "hybrid", "--prefetch", "513", "./p"],
  ["elfload", "--mode", "hybrid", "--prefetch", "-1", "./p"],
  ["elfload", "--mode", "hybrid", "--prefetch", "x", "./p"],
  ["elfload", "--prefetch", "4", "./p"],
  ["elfload", "--mode", "demand", "--prefetch", "4", "./p"],
  ["elfload", "--trace", "./p"],
  ["elfload", "--stats-json="],
  ["elfload", "heatmap", "t.csv", "-o", "t.svg"],
  ["elfload", "--bogus", "./p"],
  ["elfload", "-vx", "./p"],
  ["elfload", "--mode"],
  ["elfload", "--argv0"],
  ["elfload", "--verbose"],
  ["elfload", "-v", "--"],
])
func fastParserDefers(_ argv: [String]) {
  #expect(FastParse.parse(argv.map { Array($0.utf8) }) == nil)
}

/// The deferred lines that name a subcommand get it from ArgumentParser.
@Test func subcommandsGoToArgumentParser() throws {
  let run = try #require(try Elfload.parseAsRoot(["run", "./p", "x"]) as? Elfload.Run)
  #expect(run.command == ["./p", "x"])
  let inspect = try #require(try Elfload.parseAsRoot(["inspect", "./p"]) as? Elfload.Inspect)
  #expect(inspect.program == "./p")
}

/// The deferred lines that are mistakes are errors from ArgumentParser too,
/// not programs to run. (Not "--bogus ./p": .captureForPassthrough takes an
/// unknown long option as the start of the command, so that runs "--bogus".)
@Test(arguments: [
  [],
  ["--mode", "lazy", "./p"],
  ["--mode"],
  ["--mode", "hybrid", "--prefetch", "0", "./p"],
  ["--mode", "hybrid", "--prefetch", "513", "./p"],
  ["--prefetch", "4", "./p"],
  ["--mode", "demand", "--prefetch", "4", "./p"],
  ["-vx", "./p"],
])
func mistakesAreArgumentParserErrors(_ arguments: [String]) {
  #expect(throws: (any Error).self) { try Elfload.parseAsRoot(arguments) }
}
