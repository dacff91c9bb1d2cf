// Reading a profile (untrusted text): what is read back, and each refusal's exact words and line.
import ElfloadCore
import Testing

@Suite("Profile text: read back exactly, refused with the field, the value and the line")
struct ProfileParseTests {
  static let header = "elfload profile 2\npager uffd\n"
  static let image0 = "image 0 dev 2049 inode 131 size 16384 mtime 1700000000.000000123 path /bin/true\n"

  static func parse(_ text: String) -> Result<Profile, ProfileError> {
    Result { () throws(ProfileError) -> Profile in try Profile.parse(Array(text.utf8)) }
  }

  /// A refusal: the text and the whole message it must give.
  struct Refusal: Sendable, CustomTestStringConvertible {
    var text: String
    var message: String
    var testDescription: String { message }
  }

  static let refusals: [Refusal] = [
    Refusal(text: "", message: "not an elfload profile (its first line is not 'elfload profile 2')"),
    Refusal(text: "elfload profil 2\n", message: "not an elfload profile (its first line is not 'elfload profile 2')"),
    Refusal(text: "elfload profile 3\n", message: "a version 3 profile; this elfload reads versions 1 and 2 (record it again)"),
    // The line a missing line is reported at is the last one read, not one past a final newline.
    Refusal(text: "elfload profile 2\n", message: "line 1: no 'pager' line: which pager recorded it?"),
    Refusal(text: "elfload profile 2\n# a comment\n\n", message: "line 3: no 'pager' line: which pager recorded it?"),
    Refusal(text: header, message: "line 2: no 'image 0' line: which program is this for?"),
    Refusal(text: "elfload profile 1\n", message: "line 1: no 'image 0' line: which program is this for?"),
    Refusal(
      text: "elfload profile 2\npager disk\n",
      message: "line 2: expected 'pager signal' or 'pager uffd' (the pager that recorded it), found 'pager disk'"),
    Refusal(text: header + "image 0 dev 1 inode 2 size 3 mtime 4.000000005\n", message: "line 3: an image line without 'path PATH'"),
    Refusal(text: header + "image 0 dev 1 inode 2 size 3 mtime 4.000000005 path \n", message: "line 3: an image line without 'path PATH'"),
    Refusal(
      text: header + "image 0 dev 1 inode 2 size 3 path /p\n",
      message: "line 3: expected 'image INDEX dev D inode I size S mtime SECONDS.NANOSECONDS path PATH'"),
    Refusal(text: header + "image 0 dev 1 node 2 size 3 mtime 4.000000005 path /p\n", message: "line 3: expected 'inode', found 'node'"),
    Refusal(text: header + "image 1 dev 1 inode 2 size 3 mtime 4.000000005 path /p\n", message: "line 3: image 1 where image 0 was due"),
    Refusal(
      text: header + "image 2 dev 1 inode 2 size 3 mtime 4.000000005 path /p\n",
      message: "line 3: INDEX 2 is out of range (below 2)"),
    Refusal(
      text: header + image0 + "image 0 dev 1 inode 2 size 3 mtime 4.000000005 path /p\n",
      message: "line 4: image 0 where image 1 was due"),
    Refusal(
      text: header + "image 0 dev 1 inode 2 size 3 mtime 4.5 path /p\n",
      message: "line 3: mtime must be SECONDS.NANOSECONDS (nine digits), not '4.5'"),
    Refusal(
      text: header + "image 0 dev 1 inode 2 size 3 mtime 4.1000000000 path /p\n",
      message: "line 3: mtime must be SECONDS.NANOSECONDS (nine digits), not '4.1000000000'"),
    Refusal(
      text: header + "image 0 dev x1 inode 2 size 3 mtime 4.000000005 path /p\n", message: "line 3: dev 'x1' is not a number"),
    Refusal(
      text: header + "image 0 dev 1 inode 18446744073709551616 size 3 mtime 4.000000005 path /p\n",
      message: "line 3: inode '18446744073709551616' is too large"),
    Refusal(
      text: header + "image 0 dev 1 inode 123456789012345678901 size 3 mtime 4.000000005 path /p\n",
      message: "line 3: inode '123456789012345678901' is not a number"),
    Refusal(text: header + image0 + "0 0\n", message: "line 4: expected 'IMAGE SEGMENT PAGE' or 'image ...', found '0 0'"),
    Refusal(text: header + image0 + "1 0 0\n", message: "line 4: IMAGE 1 is out of range (below 1)"),
    Refusal(text: header + image0 + "0 65536 0\n", message: "line 4: SEGMENT 65536 is out of range (below 65536)"),
    Refusal(text: header + image0 + "0 1 4294967296\n", message: "line 4: PAGE 4294967296 is out of range (below 4294967296)"),
    Refusal(text: header + image0 + "0 1 -1\n", message: "line 4: PAGE '-1' is not a number"),
    Refusal(text: header + image0 + "0 1 2\n" + image0, message: "line 5: an image after the pages"),
  ]

  @Test("each malformed profile is refused with its exact message", arguments: refusals)
  func refused(_ refusal: Refusal) {
    switch Self.parse(refusal.text) {
    case .success(let profile): Issue.record("read: \(profile)")
    case .failure(let error): #expect(error.description == refusal.message)
    }
  }

  @Test("what a profile says is read back: version 2 and 1, comments, blank lines, the last newline or none")
  func readBack() throws {
    let profile = Profile(
      pager: .signal,
      images: [
        ProfileImage(
          identity: FileIdentity(device: 2049, inode: 131, size: 16384, modifiedSeconds: -5, modifiedNanoseconds: 7),
          path: Array("/bin/with space".utf8)),
        ProfileImage(
          identity: FileIdentity(device: 1, inode: 2, size: 3, modifiedSeconds: 1_700_000_000, modifiedNanoseconds: 999_999_999),
          path: Array("/lib64/ld-linux-x86-64.so.2".utf8)),
      ],
      pages: [
        ProfilePage(image: 0, segment: 2, page: 7), ProfilePage(image: 1, segment: 65535, page: 4_294_967_295),
        ProfilePage(image: 0, segment: 0, page: 0),
      ])
    let text = String(decoding: profile.bytes, as: UTF8.self)
    #expect(text.contains("mtime -5.000000007 path /bin/with space\n"), "\(text)")
    #expect(try Self.parse(text).get() == profile)
    // Without its last newline, and with blank and comment lines anywhere after the first.
    #expect(try Self.parse(String(text.dropLast())).get() == profile)
    let spaced = text.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
      .map { $0.offset == 0 ? String($0.element) : "\n# note\n" + $0.element }.joined(separator: "\n")
    #expect(try Self.parse(spaced).get() == profile)
    // Version 1: no pager line, and the pager unknown.
    var one = profile
    one.pager = nil
    let v1 = String(decoding: one.bytes, as: UTF8.self)
    #expect(v1.hasPrefix("elfload profile 1\n# "), "\(v1)")
    #expect(try Self.parse(v1).get() == one)
    // The same page twice is read twice (the runs merge it).
    let twice = Self.header + Self.image0 + "0 1 5\n0 1 5\n0 1 6\n"
    let read = try Self.parse(twice).get()
    #expect(read.pages.count == 3)
    #expect(read.runs(image: 0, segment: 1).map { [$0.first, $0.count] } == [[5, 2]])
  }
}
