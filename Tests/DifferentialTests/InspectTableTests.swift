// `elfload inspect`'s program-header table against readelf's reading of the same file.
import Foundation
import Testing

@Suite("inspect: the program headers as readelf reads them, in aligned columns")
struct InspectTableTests {
  @Test("every program header's type, flags, offset, vaddr, sizes and alignment, under its column's title", arguments: [Flavour.staticExec, .staticPIE, .dynamic])
  func programHeaders(_ flavour: Flavour) throws {
    // bss_tail has no C library, so no dynamic flavour: the dynamic hello stands in.
    let target = flavour == .dynamic ? Paths.sample("hello", .dynamic) : Paths.sample("bss_tail", flavour)
    let inspected = run([Paths.elfload, "inspect", target])
    #expect(inspected.ending == .exited(0), "\(inspected)")
    let lines = inspected.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    let start = try #require(lines.firstIndex(of: "program headers:"), "\(inspected.stdout)")
    let table = lines[(start + 1)...].prefix { !$0.isEmpty }
    // A paragraph of its own: one blank line before its title, and one after it or the end (a
    // program's interpreter follows); never two blank lines in a row (the interpreter's part has
    // no brk and stack lines, whose paragraph it once left empty).
    #expect(start > 0 && lines[start - 1].isEmpty, "\(inspected.stdout)")
    #expect(lines.count > start + 1 + table.count && lines[start + 1 + table.count].isEmpty, "\(inspected.stdout)")
    #expect(lines.last == "" && !zip(lines, lines.dropFirst()).contains { $0.isEmpty && $1.isEmpty }, "\(inspected.stdout)")
    let header = try #require(table.first)
    let rows = Array(table.dropFirst())
    let expected = try Readelf.programHeaders(target).headers
    try #require(rows.count == expected.count, "inspect:\n\(table.joined(separator: "\n"))\nreadelf:\n\(expected)")
    // Each column's title starts where the column's values start.
    let titles = ["#", "type", "flags", "offset", "vaddr", "filesz", "memsz", "align"]
    let columns = titles.map { title in header.range(of: title).map { header.distance(from: header.startIndex, to: $0.lowerBound) } ?? -1 }
    #expect(columns == columns.sorted() && !columns.contains(-1), "\(header)")
    func hex(_ s: String) -> UInt64? { UInt64(s.hasPrefix("0x") ? String(s.dropFirst(2)) : s, radix: 16) }
    for (i, (row, theirs)) in zip(rows, expected).enumerated() {
      let fields = row.split(separator: " ").map(String.init)
      try #require(fields.count == 8, "\(row)")
      // Where each field starts in the row.
      var starts: [Int] = []
      var previous: Character = " "
      for (offset, c) in row.enumerated() {
        if c != " " && previous == " " { starts.append(offset) }
        previous = c
      }
      #expect(starts == columns, "row \(i) '\(row)' under '\(header)'")
      #expect(fields[0] == "\(i)" && fields[1] == theirs.type && fields[2] == theirs.flags, "\(row) / \(theirs)")
      #expect(hex(fields[3]) == theirs.offset && hex(fields[4]) == theirs.vaddr, "\(row) / \(theirs)")
      #expect(hex(fields[5]) == theirs.filesz && hex(fields[6]) == theirs.memsz && hex(fields[7]) == theirs.align, "\(row) / \(theirs)")
    }
  }

  /// A value as wide as its column (memsz 0x1000000000: 12 characters) still leaves a space
  /// before the next: the row keeps its eight fields, the rest of it pushed on by one.
  @Test func fullWidthValue() throws {
    var elf = Mutant(bytes: Array(FileManager.default.contents(atPath: Paths.sample("hello", .staticExec)) ?? Data()))
    let spare = elf.spare
    elf.put64(elf.ph(spare, 40), 0x10_0000_0000)
    let file = scratchDirectory("inspect-width") + "/hello"
    writeExecutable(file, elf.bytes)
    let inspected = run([Paths.elfload, "inspect", file])
    #expect(inspected.ending == .exited(0), "\(inspected)")
    let lines = inspected.stdout.split(separator: "\n").map(String.init)
    let start = try #require(lines.firstIndex(of: "program headers:"), "\(inspected.stdout)")
    let header = lines[start + 1], row = lines[start + 2 + spare]
    #expect(row.split(separator: " ").count == 8 && row.split(separator: " ")[6] == "0x1000000000", "\(row)")
    let align = try #require(header.range(of: "align")).lowerBound.utf16Offset(in: header)
    #expect(row.range(of: " 0x1000000000 ")?.upperBound.utf16Offset(in: row) == align + 1, "\(header)\n\(row)")
  }

  /// `elfload inspect --profile`: for each segment a profile names, the pages recorded, the runs
  /// they make (consecutive pages: what replay installs in one operation) and where the segment
  /// was first touched, as counted here from the profile's own lines.
  @Test("inspect --profile: each segment's recorded pages, runs and first touch, from the profile's lines", arguments: ["touch_pages", "stride_pages"])
  func profileSegments(_ sample: String) throws {
    let program = Paths.sample(sample, .staticExec)
    let profile = "\(scratchDirectory("inspect-profile"))/\(sample).profile"
    let recorded = run([Paths.elfload, "record", "--profile", profile, program])
    #expect(recorded.ending == .exited(0), "\(recorded)")
    let pages = try String(contentsOfFile: profile, encoding: .utf8).split(separator: "\n")
      .filter { $0.first?.isNumber == true }.map { $0.split(separator: " ").compactMap { Int($0) } }
    try #require(pages.allSatisfy { $0.count == 3 } && pages.count > 2)
    let inspected = run([Paths.elfload, "inspect", "--profile", profile])
    #expect(inspected.ending == .exited(0), "\(inspected)")
    // Each image is a paragraph of its own: a blank line before its title.
    let all = inspected.stdout.split(separator: "\n", omittingEmptySubsequences: false)
    let titles = all.indices.filter { all[$0].hasPrefix("image ") }
    #expect(!titles.isEmpty && titles.allSatisfy { $0 > 0 && all[$0 - 1].isEmpty }, "\(inspected.stdout)")
    let rows = inspected.stdout.split(separator: "\n").filter { $0.hasPrefix("  PT_") || $0.hasPrefix("  program header ") }
    let segments = Array(Set(pages.map { $0[1] })).sorted()
    try #require(rows.count == segments.count, "\(inspected.stdout)")
    for (segment, row) in zip(segments, rows) {
      let mine = Set(pages.filter { $0[1] == segment }.map { $0[2] }).sorted()
      let runs = mine.indices.filter { $0 == 0 || mine[$0] != mine[$0 - 1] + 1 }.count
      let first = (pages.firstIndex { $0[1] == segment } ?? -1) + 1
      let words = row.split(separator: " ").map(String.init)
      #expect(words.count == 7 && words[1] == "\(segment)", "\(row)")
      #expect(Array(words.suffix(3)) == ["\(mine.count)", "\(runs)", "#\(first)"], "segment \(segment): \(row)")
    }
  }
}
