// The launcher's command-line parser: what it runs, what it hands to the companion, what it refuses.
import ElfloadCore
import Testing

/// Settings built for a test line.
func settings(
  _ policy: PagingPolicy = .eager, argv0: String? = nil, verbose: Bool = false, stats: Bool = false,
  json: String? = nil, trace: String? = nil, residency: String? = nil, record: String? = nil, cold: Bool = false,
  fd: Int32? = nil
) -> RunSettings {
  var s = RunSettings()
  s.policy = policy
  s.argv0 = argv0.map { Array($0.utf8) }
  s.verbose = verbose
  s.stats = stats
  s.statsJSON = json.map { Array($0.utf8) }
  s.trace = trace.map { Array($0.utf8) }
  s.residency = residency.map { Array($0.utf8) }
  s.record = record.map { Array($0.utf8) }
  s.cold = cold
  s.fd = fd
  return s
}

struct RunLine: Sendable, CustomTestStringConvertible {
  var argv: [String]
  var programIndex: Int
  var settings: RunSettings
  var testDescription: String { argv.joined(separator: " ") }
}

func parseLine(_ argv: [String]) -> CommandLineParse { CommandLineParse.parse(argv.map { Array($0.utf8) }) }

let runLines: [RunLine] = [
  RunLine(argv: ["elfload", "./p"], programIndex: 1, settings: settings()),
  // Everything after the program is the program's, even what looks like ours.
  RunLine(argv: ["elfload", "./p", "-x", "--mode", "y"], programIndex: 1, settings: settings()),
  RunLine(argv: ["elfload", "./p", "--help"], programIndex: 1, settings: settings()),
  RunLine(argv: ["elfload", "--verbose", "./p", "a"], programIndex: 2, settings: settings(verbose: true)),
  RunLine(argv: ["elfload", "-v", "--", "./p"], programIndex: 3, settings: settings(verbose: true)),
  RunLine(argv: ["elfload", "--", "./p"], programIndex: 2, settings: settings()),
  RunLine(argv: ["elfload", "--", "--help"], programIndex: 2, settings: settings()),
  RunLine(argv: ["elfload", "--", "inspect"], programIndex: 2, settings: settings()),
  RunLine(argv: ["elfload", "run", "./p", "x"], programIndex: 2, settings: settings()),
  RunLine(argv: ["elfload", "run", "--mode", "demand", "./p"], programIndex: 4, settings: settings(.demand)),
  RunLine(argv: ["elfload", "--mode", "all", "./p"], programIndex: 3, settings: settings()),
  RunLine(
    argv: ["elfload", "--mode=eager", "--argv0", "zz", "./p", "--", "q"], programIndex: 4,
    settings: settings(argv0: "zz")),
  RunLine(argv: ["elfload", "--argv0=n", "./p"], programIndex: 2, settings: settings(argv0: "n")),
  RunLine(argv: ["elfload", "--argv0=a=b", "./p"], programIndex: 2, settings: settings(argv0: "a=b")),
  // An empty argv[0], as exec -a '' gives.
  RunLine(argv: ["elfload", "--argv0", "", "./p"], programIndex: 3, settings: settings(argv0: "")),
  RunLine(argv: ["elfload", "--argv0=", "./p"], programIndex: 2, settings: settings(argv0: "")),
  // A login shell's argv[0] starts with a dash, as exec -a allows.
  RunLine(argv: ["elfload", "--argv0", "-sh", "./p"], programIndex: 3, settings: settings(argv0: "-sh")),
  RunLine(
    argv: ["elfload", "-v", "--argv0", "sh", "--mode", "eager", "./p", "-c", "x"], programIndex: 6,
    settings: settings(argv0: "sh", verbose: true)),
  RunLine(argv: ["elfload", "--mode", "demand", "--mode", "all", "./p"], programIndex: 5, settings: settings()),
  // A lone "-" is a program name, and a subcommand's name after an option is too.
  RunLine(argv: ["elfload", "-", "x"], programIndex: 1, settings: settings()),
  RunLine(argv: ["elfload", "-v", "inspect"], programIndex: 2, settings: settings(verbose: true)),
  RunLine(argv: ["elfload", "--mode", "demand", "./p"], programIndex: 3, settings: settings(.demand)),
  RunLine(argv: ["elfload", "--mode=hybrid", "./p"], programIndex: 2, settings: settings(.hybrid(prefetch: 1))),
  RunLine(
    argv: ["elfload", "--mode", "hybrid", "--prefetch", "16", "./p"], programIndex: 5,
    settings: settings(.hybrid(prefetch: 16))),
  RunLine(
    argv: ["elfload", "--prefetch=512", "--mode", "hybrid", "./p"], programIndex: 4,
    settings: settings(.hybrid(prefetch: 512))),
  RunLine(
    argv: ["elfload", "--stats", "--stats-json", "s.json", "--trace=t.csv", "./p", "--stats"], programIndex: 5,
    settings: settings(stats: true, json: "s.json", trace: "t.csv")),
  RunLine(argv: ["elfload", "--stats-json", "-", "./p"], programIndex: 3, settings: settings(json: "-")),
  RunLine(
    argv: ["elfload", "--mode", "demand", "--residency", "r.csv", "./p"], programIndex: 5,
    settings: settings(.demand, residency: "r.csv")),
  RunLine(argv: ["elfload", "--residency=-", "./p"], programIndex: 2, settings: settings(residency: "-")),
  RunLine(
    argv: ["elfload", "--mode", "hybrid", "--prefetch", "auto", "./p"], programIndex: 5, settings: settings(.predictive)),
  RunLine(
    argv: ["elfload", "--prefetch=auto", "--mode=hybrid", "--cold", "./p"], programIndex: 4,
    settings: settings(.predictive, cold: true)),
  RunLine(
    argv: ["elfload", "--mode", "replay", "--profile", "p.profile", "./p"], programIndex: 5,
    settings: settings(.replay(profile: Array("p.profile".utf8)))),
  RunLine(
    argv: ["elfload", "record", "--profile", "p.profile", "./p", "x"], programIndex: 4,
    settings: settings(.demand, record: "p.profile")),
  RunLine(
    argv: ["elfload", "record", "--mode", "demand", "--profile=q", "--", "./p"], programIndex: 6,
    settings: settings(.demand, record: "q")),
  // --fd N: the word after the options is argv[0] (fexecve's), and the options end there.
  RunLine(argv: ["elfload", "--fd", "3", "echo", "-n", "x"], programIndex: 3, settings: settings(fd: 3)),
  RunLine(argv: ["elfload", "--fd=0", "--mode", "demand", "x"], programIndex: 4, settings: settings(.demand, fd: 0)),
  RunLine(argv: ["elfload", "--fd", "2147483647", "-", "y"], programIndex: 3, settings: settings(fd: 2_147_483_647)),
]

@Test(arguments: runLines)
func runLinesAreParsed(_ line: RunLine) {
  #expect(parseLine(line.argv) == .run(line.settings, programIndex: line.programIndex))
}

/// Help, version and subcommands go to the companion, wherever the help flag stands before PROGRAM.
@Test(arguments: [
  ["elfload", "--help"], ["elfload", "-h"], ["elfload", "help"], ["elfload", "--version"],
  ["elfload", "inspect", "./p"], ["elfload", "heatmap", "t.csv", "-o", "t.svg"],
  ["elfload", "residency", "r.csv", "-o", "r.svg"],
  ["elfload", "--mode", "demand", "--help"], ["elfload", "run", "--help"], ["elfload", "-v", "--version", "./p"],
])
func companionLines(_ argv: [String]) {
  #expect(parseLine(argv) == .tool)
}

/// Mistakes are one sentence each, naming what is wrong.
@Test(arguments: [
  (["elfload"], "Missing the program to run"),
  (["elfload", "--verbose"], "Missing the program to run"),
  (["elfload", "-v", "--"], "Missing the program to run"),
  (["elfload", "--mode", "lazy", "./p"], "'lazy' is invalid for '--mode <policy>'"),
  (["elfload", "--mode=", "./p"], "empty value for '--mode <policy>'"),
  (["elfload", "--mode"], "missing value for '--mode <policy>'"),
  (["elfload", "--argv0"], "missing value for '--argv0 <name>'"),
  (["elfload", "--trace", "", "./p"], "empty value for '--trace <file>'"),
  (["elfload", "--mode", "hybrid", "--prefetch", "0", "./p"], "--prefetch must be from 1 to 512 pages or auto, not '0'"),
  (["elfload", "--mode", "hybrid", "--prefetch", "513", "./p"], "not '513'"),
  (["elfload", "--mode", "hybrid", "--prefetch", "-1", "./p"], "not '-1'"),
  (["elfload", "--mode", "hybrid", "--prefetch", "x", "./p"], "not 'x'"),
  (["elfload", "--prefetch", "4", "./p"], "--prefetch applies to --mode hybrid (the mode is eager)"),
  (["elfload", "--mode", "demand", "--prefetch", "4", "./p"], "(the mode is demand)"),
  (["elfload", "--stats-json=", "./p"], "empty value for '--stats-json <file>'"),
  (["elfload", "--bogus", "./p"], "unrecognized option '--bogus'"),
  (["elfload", "--stat", "/bin/true"], "unrecognized option '--stat'"),
  (["elfload", "-vx", "./p"], "unrecognized option '-vx'"),
  (["elfload", "--verbose=yes", "./p"], "'--verbose' takes no value"),
  (["elfload", "--mode", "hybrid", "--prefetch", "Auto", "./p"], "pages or auto, not 'Auto'"),
  (["elfload", "--mode", "replay", "./p"], "--mode replay needs --profile FILE"),
  (["elfload", "--profile", "p", "./p"], "--profile applies to --mode replay and to record (the mode is eager)"),
  (["elfload", "record", "./p"], "record needs --profile FILE"),
  (["elfload", "record", "--profile", "p", "--mode", "replay", "./p"], "record runs the program under --mode demand"),
  (["elfload", "--mode", "replay", "--profile", "p", "--prefetch", "auto", "./p"], "--prefetch applies to --mode hybrid"),
  (["elfload", "--fd", "3"], "--fd N needs the program's argv[0] after it: elfload --fd N NAME [ARGS...]"),
  (["elfload", "--fd", "x", "p"], "--fd must be an open descriptor's number, not 'x'"),
  (["elfload", "--fd", "-1", "p"], "not '-1'"),
  (["elfload", "--fd", "2147483648", "p"], "not '2147483648'"),
])
func mistakes(_ argv: [String], _ phrase: String) {
  guard case .usageError(let message) = parseLine(argv) else {
    Issue.record("\(argv) was not refused: \(parseLine(argv))")
    return
  }
  #expect(message.contains(phrase), "\(message)")
}

/// The option table is the one definition: every option has help, and a value name exactly when it takes one.
@Test func everyOptionIsDocumented() {
  for option in RunOption.all {
    #expect(option.long.hasPrefix("--") && !option.help.isEmpty)
    #expect(parseLine(["elfload", option.long] + (option.takesValue ? ["v"] : []) + ["./p"]) != .tool)
  }
}
