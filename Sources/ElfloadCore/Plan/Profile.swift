// A profile: the pages one run of a program touched, in the order it first touched them, written
// by `elfload record` and installed before the jump by `--mode replay`. A text file a person can
// read (or `elfload inspect --profile FILE`), versioned, and untrusted when read back: every
// number is checked, every failure names the line.
//
//   elfload profile 2
//   pager uffd
//   # image INDEX dev D inode I size S mtime SECONDS.NANOSECONDS path PATH
//   image 0 dev 2049 inode 1573 size 16000 mtime 1732900000.123456789 path /usr/bin/true
//   image 1 dev 2049 inode 2011 size 236616 mtime 1732800000.000000000 path /lib64/ld-linux-x86-64.so.2
//   # IMAGE SEGMENT PAGE, in the order of first touch
//   1 0 0
//   1 1 3
//   0 1 0
//
// IMAGE is 0 for the program and 1 for its interpreter; SEGMENT is the PT_LOAD's program-header
// index; PAGE is the page's index among the segment's pages (counted from the page that holds
// p_vaddr), the same numbers a --trace CSV has. Addresses are not recorded: they change from run
// to run (ASLR), page indexes do not. Version 2 adds the `pager` line: the pager that recorded the
// run, because the signal pager does not see every first touch (Profile.misses); version 1,
// without it, is still read.

/// Which file an image is, as stat says: a profile applies to this file only.
public struct FileIdentity: Equatable, Sendable {
  public var device: UInt64
  public var inode: UInt64
  public var size: UInt64
  public var modifiedSeconds: Int64
  public var modifiedNanoseconds: Int64

  public init(device: UInt64, inode: UInt64, size: UInt64, modifiedSeconds: Int64, modifiedNanoseconds: Int64) {
    self.device = device
    self.inode = inode
    self.size = size
    self.modifiedSeconds = modifiedSeconds
    self.modifiedNanoseconds = modifiedNanoseconds
  }

  public init(_ status: FileStatus) {
    self.init(
      device: status.device, inode: status.inode, size: status.size, modifiedSeconds: status.modifiedSeconds,
      modifiedNanoseconds: status.modifiedNanoseconds)
  }
}

/// One image a profile covers.
public struct ProfileImage: Equatable, Sendable {
  public var identity: FileIdentity
  public var path: [UInt8]
  public init(identity: FileIdentity, path: [UInt8]) {
    self.identity = identity
    self.path = path
  }
}

/// One touched page.
public struct ProfilePage: Equatable, Sendable {
  public var image: Int
  public var segment: Int
  public var page: UInt64
  public init(image: Int, segment: Int, page: UInt64) {
    self.image = image
    self.segment = segment
    self.page = page
  }
}

/// Why a profile cannot be read.
public enum ProfileError: Error, Sendable, CustomStringConvertible {
  case unreadable(SystemCallError)
  case notRegularFile(String)
  case tooLarge(bytes: UInt64)
  case notAProfile
  /// A page the file names that its segment does not have (the identity matched: the file was edited).
  case pageOutside(image: Int, segment: Int, page: UInt64, pages: UInt64)
  case version(found: [UInt8])
  case line(Int, String)

  public var description: String {
    switch self {
    case .unreadable(let e): return "cannot read it: \(e)"
    case .notRegularFile(let kind): return "is \(kind), not a profile"
    case .pageOutside(let image, let segment, let page, let pages):
      return
        "image \(image) segment \(segment) page \(page): \(pages == 0 ? "no such PT_LOAD" : "past the segment's \(pages) pages")"
    case .tooLarge(let bytes): return "\(bytes) bytes, more than a profile can be (\(Profile.largestFile >> 20) MiB)"
    case .notAProfile: return "not an elfload profile (its first line is not 'elfload profile \(Profile.version)')"
    case .version(let found):
      return "a version \(text(found)) profile; this elfload reads versions 1 and \(Profile.version) (record it again)"
    case .line(let n, let reason): return "line \(n): \(reason)"
    }
  }
}

public struct Profile: Equatable, Sendable {
  /// The version written; `readable` are read.
  public static let version = 2
  public static let readable = [1, 2]
  /// Bounds on what is read back: 64 MiB, 2^22 pages (16 GiB of touched memory).
  public static let largestFile: UInt64 = 64 << 20
  public static let mostPages = 1 << 22

  /// The pager that recorded it; nil in a version 1 profile, which does not say.
  public var pager: Pager?
  /// Index 0 the program, 1 its interpreter (if it has one).
  public var images: [ProfileImage]
  /// In the order of first touch.
  public var pages: [ProfilePage]

  public init(pager: Pager?, images: [ProfileImage], pages: [ProfilePage]) {
    self.pager = pager
    self.images = images
    self.pages = pages
  }

  /// What a profile recorded under `pager` lacks, which a replay then pages on demand (one
  /// sentence, for inspect, --verbose and --stats), or nil: a record sees a page only when the
  /// page faults, and under the signal pager some never do.
  public static func misses(_ pager: Pager?) -> String? {
    switch pager {
    case .signal:
      return
        "recorded under the signal pager: read-only data (mapped up front, paged by the kernel unseen) and, past the map-count budget, pages mapped a 2 MiB window at a time are not in it; a replay pages them on demand"
    case .uffd: return nil
    case nil:
      return "a version 1 profile, which does not say which pager recorded it: if the signal pager did, read-only data is not in it"
    }
  }

  static let magic = Array("elfload profile ".utf8)

  /// The file's text (version 1's, without a pager line, when the pager is not known).
  public var bytes: [UInt8] {
    var out = Array("elfload profile \(pager == nil ? 1 : Self.version)\n".utf8)
    if let pager { out += Array("pager \(pager.name)\n".utf8) }
    out += Array("# The pages one run touched: elfload inspect --profile FILE explains them.\n".utf8)
    out += Array("# image INDEX dev D inode I size S mtime SECONDS.NANOSECONDS path PATH\n".utf8)
    for (index, image) in images.enumerated() {
      let id = image.identity
      let nanoseconds = String(id.modifiedNanoseconds)
      out += Array(
        "image \(index) dev \(id.device) inode \(id.inode) size \(id.size) mtime \(id.modifiedSeconds).\(String(repeating: "0", count: max(0, 9 - nanoseconds.utf8.count)))\(nanoseconds) path "
          .utf8)
      out += image.path.map { $0 == 10 ? UInt8(ascii: "?") : $0 }
      out.append(10)
    }
    out += Array("# IMAGE SEGMENT PAGE, in the order of first touch (image 0: the program, 1: its interpreter)\n".utf8)
    for page in pages { out += Array("\(page.image) \(page.segment) \(page.page)\n".utf8) }
    return out
  }

  /// Reads a profile's text (untrusted). Line by line, without a list of the lines: a
  /// profile of 2^22 pages is as many lines, and the launcher reads it.
  public static func parse(_ bytes: [UInt8]) throws(ProfileError) -> Profile {
    guard UInt64(bytes.count) <= largestFile else { throw .tooLarge(bytes: UInt64(bytes.count)) }
    var profile = Profile(pager: nil, images: [], pages: [])
    var version = 0
    profile.pages.reserveCapacity(min(bytes.reduce(0) { $1 == 10 ? $0 + 1 : $0 }, mostPages))
    var number = 0
    var start = 0
    while start < bytes.count {
      let end = bytes[start...].firstIndex(of: 10) ?? bytes.count
      let line = bytes[start..<end]
      start = end + 1
      number += 1
      if number == 1 {
        guard line.starts(with: magic) else { throw .notAProfile }
        let word = Array(line.dropFirst(magic.count))
        guard let known = readable.first(where: { Array("\($0)".utf8) == word }) else {
          throw .version(found: Array(word.prefix(20)))
        }
        version = known
        continue
      }
      if line.isEmpty || line.first == UInt8(ascii: "#") { continue }
      if version >= 2 && profile.pager == nil {
        // Version 2: the pager line, before anything else.
        if line.elementsEqual(Array("pager signal".utf8)) {
          profile.pager = .signal
        } else if line.elementsEqual(Array("pager uffd".utf8)) {
          profile.pager = .uffd
        } else {
          throw .line(number, "expected 'pager signal' or 'pager uffd' (the pager that recorded it), found '\(text(Array(line.prefix(60))))'")
        }
        continue
      }
      if line.starts(with: Array("image ".utf8)) {
        guard profile.pages.isEmpty else { throw .line(number, "an image after the pages") }
        profile.images.append(try image(Array(line), line: number, expected: profile.images.count))
        continue
      }
      if let (image, segment, page) = Self.pageLine(bytes, line.startIndex, line.endIndex),
        image < profile.images.count, profile.pages.count < mostPages
      {
        profile.pages.append(ProfilePage(image: image, segment: segment, page: page))
        continue
      }
      let words = line.split(separator: 32)
      guard words.count == 3 else {
        throw .line(number, "expected 'IMAGE SEGMENT PAGE' or 'image ...', found '\(text(Array(line.prefix(60))))'")
      }
      let image = try decimal(Array(words[0]), "IMAGE", line: number, below: UInt64(profile.images.count))
      let segment = try decimal(Array(words[1]), "SEGMENT", line: number, below: 1 << 16)
      let page = try decimal(Array(words[2]), "PAGE", line: number, below: 1 << 32)
      guard profile.pages.count < mostPages else { throw .line(number, "more than \(mostPages) pages") }
      profile.pages.append(ProfilePage(image: Int(image), segment: Int(segment), page: page))
    }
    guard number > 0 else { throw .notAProfile }
    if version >= 2 && profile.pager == nil { throw .line(number, "no 'pager' line: which pager recorded it?") }
    guard !profile.images.isEmpty else { throw .line(number, "no 'image 0' line: which program is this for?") }
    return profile
  }

  /// The common page line, `IMAGE SEGMENT PAGE` with single spaces and in range, read without
  /// allocating (a profile has up to 2^22 of them); nil for anything else, which the general
  /// reading then accepts or refuses with its reason.
  static func pageLine(_ bytes: [UInt8], _ start: Int, _ end: Int) -> (Int, Int, UInt64)? {
    bytes.withUnsafeBufferPointer { b -> (Int, Int, UInt64)? in
      var i = start
      var fields: (UInt64, UInt64, UInt64) = (0, 0, 0)
      for field in 0..<3 {
        var value: UInt64 = 0
        let first = i
        while i < end, b[i] >= 48, b[i] <= 57, i - first < 10 {
          value = value * 10 + UInt64(b[i] - 48)
          i += 1
        }
        guard i > first, i == end ? field == 2 : (field < 2 && b[i] == 32) else { return nil }
        i += 1
        switch field {
        case 0: fields.0 = value
        case 1: fields.1 = value
        default: fields.2 = value
        }
      }
      guard fields.1 < 1 << 16, fields.2 < 1 << 32 else { return nil }
      return (Int(fields.0), Int(fields.1), fields.2)
    }
  }

  /// `image INDEX dev D inode I size S mtime SECONDS.NANOSECONDS path PATH`.
  static func image(_ line: [UInt8], line number: Int, expected: Int) throws(ProfileError) -> ProfileImage {
    let marker = Array(" path ".utf8)
    var cut: Int?
    if line.count >= marker.count {
      for i in 0...(line.count - marker.count) where Array(line[i..<(i + marker.count)]) == marker {
        cut = i
        break
      }
    }
    guard let cut, cut + marker.count < line.count else { throw .line(number, "an image line without 'path PATH'") }
    let words = line[..<cut].split(separator: 32).map { Array($0) }
    let keys = ["image", "dev", "inode", "size", "mtime"]
    guard words.count == 10 else {
      throw .line(number, "expected 'image INDEX dev D inode I size S mtime SECONDS.NANOSECONDS path PATH'")
    }
    for (k, key) in keys.enumerated() where words[2 * k] != Array(key.utf8) {
      throw .line(number, "expected '\(key)', found '\(text(Array(words[2 * k].prefix(20))))'")
    }
    let index = try decimal(words[1], "INDEX", line: number, below: 2)
    guard index == UInt64(expected) else { throw .line(number, "image \(index) where image \(expected) was due") }
    let device = try decimal(words[3], "dev", line: number)
    let inode = try decimal(words[5], "inode", line: number)
    let size = try decimal(words[7], "size", line: number)
    let time = words[9].split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false).map { Array($0) }
    guard time.count == 2, time[1].count == 9 else {
      throw .line(number, "mtime must be SECONDS.NANOSECONDS (nine digits), not '\(text(Array(words[9].prefix(30))))'")
    }
    // (Before 1970 is negative.)
    let negative = time[0].first == UInt8(ascii: "-")
    let magnitude = try decimal(Array(time[0].dropFirst(negative ? 1 : 0)), "mtime", line: number, below: 1 << 62)
    let seconds = negative ? -Int64(magnitude) : Int64(magnitude)
    let nanoseconds = try decimal(time[1], "mtime", line: number, below: 1_000_000_000)
    let identity = FileIdentity(
      device: device, inode: inode, size: size, modifiedSeconds: seconds, modifiedNanoseconds: Int64(nanoseconds))
    return ProfileImage(identity: identity, path: Array(line[(cut + marker.count)...]))
  }

  /// A decimal number below `bound`, or an error naming the field and the value.
  static func decimal(_ word: [UInt8], _ field: String, line: Int, below bound: UInt64 = .max) throws(ProfileError)
    -> UInt64
  {
    var value: UInt64 = 0
    guard !word.isEmpty, word.count <= 20 else {
      throw .line(line, "\(field) '\(text(Array(word.prefix(30))))' is not a number")
    }
    for b in word {
      guard b >= 48, b <= 57 else { throw .line(line, "\(field) '\(text(Array(word.prefix(30))))' is not a number") }
      let (m, o1) = value.multipliedReportingOverflow(by: 10)
      let (s, o2) = m.addingReportingOverflow(UInt64(b - 48))
      guard !o1, !o2 else { throw .line(line, "\(field) '\(text(word))' is too large") }
      value = s
    }
    guard value < bound else { throw .line(line, "\(field) \(value) is out of range (below \(bound))") }
    return value
  }

  /// The pages of one image and segment, sorted and merged into runs of
  /// consecutive page indexes: what replay installs, one operation a run.
  public func runs(image: Int, segment: Int) -> [(first: UInt64, count: UInt64)] {
    var indexes = pages.filter { $0.image == image && $0.segment == segment }.map { $0.page }
    indexes.sort()
    var runs: [(first: UInt64, count: UInt64)] = []
    for page in indexes {
      if let last = runs.last, page < last.first + last.count { continue }  // a duplicate
      if let last = runs.last, page == last.first + last.count {
        runs[runs.count - 1].count += 1
      } else {
        runs.append((page, 1))
      }
    }
    return runs
  }
}
