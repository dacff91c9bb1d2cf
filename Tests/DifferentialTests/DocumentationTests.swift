// The README's usage examples run as written, from a fresh clone after the set-up commands.
import Foundation
import Testing

@Suite("The README")
struct DocumentationTests {
  /// The lines of the README's first sh block under `heading` that run elfload (or pipe into
  /// it, or make the directory its examples write to), without their comments.
  static func exampleLines(under heading: String = "## Usage\n") throws -> [String] {
    let readme = try String(contentsOfFile: Paths.root.appendingPathComponent("README.md").path, encoding: .utf8)
    let usage = try #require(readme.components(separatedBy: heading).dropFirst().first)
    let block = try #require(usage.components(separatedBy: "```sh\n").dropFirst().first?.components(separatedBy: "```").first)
    return block.split(separator: "\n").map(String.init).filter { $0.hasPrefix("elfload ") || $0.contains("| elfload ") || $0.hasPrefix("mkdir ") }
      .map { line in
        // Comments start after a run of blanks; no example has a # of its own.
        (line.range(of: "  #").map { String(line[..<$0.lowerBound]) } ?? line).trimmingCharacters(in: .whitespaces)
      }
  }

  static func usageLines() throws -> [String] { try exampleLines() }

  @Test("every run-from-memory example runs as written, and prints what its comment says")
  func runFromMemoryExamples() throws {
    let lines = try Self.exampleLines(under: "### Run from memory (`elfload -`, `--fd N`)\n")
    #expect(lines.count == 6, "\(lines)")
    _ = Paths.samples  // built
    let bin = (Paths.elfload as NSString).deletingLastPathComponent
    let environment = ["PATH=\(bin):/usr/local/bin:/usr/bin:/bin", "LC_ALL=C"]
    let expected = [
      "hello from memory\n", "hello, world\n", nil, "/dev/fd/3 x\n", "the next line\n", "hello\n",
    ]
    for (line, output) in zip(lines, expected) {
      let outcome = run(["/bin/sh", "-c", "cd \"$0\" && \(line)", Paths.root.path], environment: environment, timeout: 30)
      #expect(outcome.ending == .exited(0) && outcome.stderr.isEmpty, "\(line)\n\(outcome)")
      if let output { #expect(outcome.stdout == output, "\(line)\n\(outcome)") }
      if line.contains("whoami") {
        #expect(outcome.stdout.hasPrefix("argv[0]: /dev/fd/3\nargv[1]: a\nAT_EXECFN: /dev/fd/3\ncomm: memfd:stdin\n"), "\(outcome)")
      }
    }
  }

  @Test("every usage example runs as written (elfload on PATH, from the repository's directory)")
  func usageExamplesRun() throws {
    let lines = try Self.usageLines()
    #expect(lines.count >= 10, "\(lines)")
    // A directory of its own with the repository's Samples in it, standing for the
    // repository's: the files the examples write land in it, and must be git-ignored.
    let dir = scratchDirectory("readme")
    try? FileManager.default.removeItem(atPath: dir + "/.build")
    let samples = dir + "/Samples"
    try? FileManager.default.removeItem(atPath: samples)
    try FileManager.default.createSymbolicLink(
      atPath: samples, withDestinationPath: Paths.root.appendingPathComponent("Samples").path)
    _ = Paths.samples  // built
    let bin = (Paths.elfload as NSString).deletingLastPathComponent
    let environment = ["PATH=\(bin):/usr/local/bin:/usr/bin:/bin", "HOME=\(dir)", "LC_ALL=C"]
    for line in lines {
      let outcome = run(["/bin/sh", "-c", "cd \"$0\" && \(line)", dir], environment: environment, timeout: 30)
      #expect(outcome.ending == .exited(0), "\(line)\n\(outcome)")
      if line.contains("--argv0 sh") { #expect(outcome.stdout == "sh\n", "\(line)\n\(outcome)") }
      if line.contains("--help-all") {
        #expect(outcome.stdout.contains("Statistics"), "\(line)")
      } else if line.contains("--help") {
        #expect(outcome.stdout.contains("elfload --help-all"), "\(line)")
      }
    }
    #expect(FileManager.default.fileExists(atPath: dir + "/.build/examples/t.svg"))
    // Nothing but the git-ignored .build (and Samples, standing for the repository's) is left:
    // the examples do not litter a working tree.
    let left = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0 != "Samples" }
    #expect(left == [".build"], "the examples left \(left) in the working directory")
    let ignored = try String(contentsOfFile: Paths.root.appendingPathComponent(".gitignore").path, encoding: .utf8)
    #expect(ignored.split(separator: "\n").contains(".build/"))
  }
}

/// scripts/sweep, whose table the README quotes: it must compare every policy with native (it once
/// compared nothing, its policy list never reaching the shell that ran each program).
@Suite("The sweep script")
struct SweepScriptTests {
  @Test("a sweep of one program compares it under every policy and pager")
  func comparesEveryPolicy() throws {
    let program = Paths.sample("hello", .staticExec)
    let swept = run(
      ["/usr/bin/env", "ELFLOAD=\(Paths.elfload)", Paths.root.appendingPathComponent("scripts/sweep").path, program],
      timeout: 120)
    #expect(swept.ending == .exited(0), "\(swept)")
    let rows = swept.stdout.split(separator: "\n").filter { $0.hasPrefix("| ") && !$0.hasPrefix("| policy") }
    #expect(rows.count == 6, "\(swept.stdout)")
    let uffd = Policy.uffdAvailable
    for row in rows {
      let cells = row.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
      // (hello prints "hello, world" for --version too: the same, natively and under elfload.)
      let same = !cells[0].contains("uffd") || uffd ? "1" : "0"
      #expect(cells.count == 5 && cells[1] == same, "\(row)")
    }
  }
}
