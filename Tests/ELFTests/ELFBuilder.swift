// Test helpers: synthetic ELF64 files with a knob for every header field, and the real sample binaries.
import ElfloadCore
import Foundation

/// Builds an ELF64 file as bytes: the 64-byte header, the program header
/// table at `phoff`, and payload bytes at chosen offsets. Every field can be
/// set to any value, so the same builder makes valid and malformed files.
struct ELFBuilder {
  // e_ident
  var magic: [UInt8] = [0x7f, 0x45, 0x4c, 0x46]
  var elfClass: UInt8 = 2
  var encoding: UInt8 = 1
  var identVersion: UInt8 = 1
  var osABI: UInt8 = 0
  var abiVersion: UInt8 = 0
  // The rest of the header.
  var type: UInt16 = 2
  var machine: UInt16 = 62
  var version: UInt32 = 1
  var entry: UInt64 = 0
  var phoff: UInt64 = 64
  var shoff: UInt64 = 0
  var flags: UInt32 = 0
  var ehsize: UInt16 = 64
  var phentsize: UInt16 = 56
  /// nil: the number of `programHeaders`.
  var phnum: UInt16?
  var shentsize: UInt16 = 64
  var shnum: UInt16 = 0
  var shstrndx: UInt16 = 0

  var programHeaders: [ProgramHeader] = []
  /// Bytes written at file offsets after the headers (later ones win).
  var payload: [(offset: Int, bytes: [UInt8])] = []
  /// nil: just large enough for the header, the table, the payload and every
  /// segment's file bytes (ranges that are absurdly large are left out, so a
  /// malformed offset does not make a huge file).
  var fileSize: Int?

  /// File ranges beyond this are never materialised by default.
  static let sizeLimit: UInt64 = 1 << 20

  var header: [UInt8] {
    var out: [UInt8] = []
    func put<T: FixedWidthInteger>(_ v: T) {
      withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) }
    }
    out += magic.prefix(4)
    out += [UInt8](repeating: 0, count: 4 - min(4, magic.count))
    out += [elfClass, encoding, identVersion, osABI, abiVersion]
    out += [UInt8](repeating: 0, count: 7)
    put(type)
    put(machine)
    put(version)
    put(entry)
    put(phoff)
    put(shoff)
    put(flags)
    put(ehsize)
    put(phentsize)
    put(phnum ?? UInt16(programHeaders.count))
    put(shentsize)
    put(shnum)
    put(shstrndx)
    return out
  }

  var table: [UInt8] { programHeaders.flatMap(\.encoded) }

  func build() -> [UInt8] {
    var size = 64
    func include(_ offset: UInt64, _ count: UInt64) {
      let (end, overflow) = offset.addingReportingOverflow(count)
      if !overflow, end <= Self.sizeLimit { size = max(size, Int(end)) }
    }
    include(phoff, UInt64(table.count))
    for p in payload { include(UInt64(p.offset), UInt64(p.bytes.count)) }
    for ph in programHeaders where ph.type == .load || ph.type == .interp {
      include(ph.offset, ph.filesz)
    }
    let total = fileSize ?? size
    var bytes = [UInt8](repeating: 0, count: max(total, size))
    func write(_ data: [UInt8], at offset: Int) {
      for (i, b) in data.enumerated() where offset + i < bytes.count { bytes[offset + i] = b }
    }
    write(header, at: 0)
    if phoff < Self.sizeLimit { write(table, at: Int(phoff)) }
    for p in payload { write(p.bytes, at: p.offset) }
    return Array(bytes.prefix(total))
  }

  // MARK: Ready-made valid files

  /// A small static ET_EXEC: text r-x at 0x400000 holding the headers, data
  /// rw- at 0x402010 with a bss, and PT_GNU_STACK rw-. File size 0x1110.
  static func executable() -> ELFBuilder {
    var b = ELFBuilder()
    b.type = 2
    b.entry = 0x40_0100
    b.programHeaders = [
      ProgramHeader(
        type: .load, flags: [.read, .execute], offset: 0, vaddr: 0x40_0000, filesz: 0x200,
        memsz: 0x200, align: 0x1000),
      ProgramHeader(
        type: .load, flags: [.read, .write], offset: 0x1010, vaddr: 0x40_2010, filesz: 0x100,
        memsz: 0x2500, align: 0x1000),
      ProgramHeader(
        type: .gnuStack, flags: [.read, .write], offset: 0, vaddr: 0, filesz: 0, memsz: 0,
        align: 0x10),
    ]
    return b
  }

  /// The same layout as a static PIE (ET_DYN) linked at 0.
  static func positionIndependent() -> ELFBuilder {
    var b = executable()
    b.type = 3
    b.entry = 0x100
    for i in b.programHeaders.indices where b.programHeaders[i].type == .load {
      b.programHeaders[i].vaddr -= 0x40_0000
    }
    return b
  }

  /// A PT_INTERP header for `bytes` placed at `offset` (in the text segment's
  /// file range of `executable()` unless said otherwise).
  mutating func addInterpreter(_ bytes: [UInt8], offset: Int = 0x300, filesz: UInt64? = nil) {
    programHeaders.append(
      ProgramHeader(
        type: .interp, flags: [.read], offset: UInt64(offset), vaddr: 0x40_0000 + UInt64(offset),
        filesz: filesz ?? UInt64(bytes.count), memsz: filesz ?? UInt64(bytes.count), align: 1))
    payload.append((offset, bytes))
  }
}

/// The sample programs built by Samples/Makefile.
enum Samples {
  /// The package root: this file is Tests/<target>/ELFBuilder.swift.
  static let packageRoot: URL = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

  static func url(_ relative: String) -> URL {
    packageRoot.appendingPathComponent("Samples/build").appendingPathComponent(relative)
  }

  /// Runs `make -C Samples` once per test process, only if a sample is
  /// missing. Tests run in parallel; a lazily initialised static runs once.
  static let built: Bool = {
    let wanted = ["static/hello", "static-pie/hello"]
    if wanted.allSatisfy({ FileManager.default.fileExists(atPath: url($0).path) }) { return true }
    let make = Process()
    make.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    make.arguments = ["make", "-C", packageRoot.appendingPathComponent("Samples").path]
    do {
      try make.run()
      make.waitUntilExit()
    } catch {
      return false
    }
    return make.terminationStatus == 0
      && wanted.allSatisfy { FileManager.default.fileExists(atPath: url($0).path) }
  }()

  /// The bytes of `Samples/build/<relative>`, building the samples first if
  /// needed; nil if they cannot be built (no C compiler, say).
  static func load(_ relative: String) -> [UInt8]? {
    guard built, let data = FileManager.default.contents(atPath: url(relative).path) else {
      return nil
    }
    return [UInt8](data)
  }

  static let staticHello = "static/hello"
  static let staticPIEHello = "static-pie/hello"
}

/// Applies one random mutation: flip bytes in the first 512, overwrite an
/// aligned word of the headers with a boundary value, truncate, or several.
func mutate(_ original: [UInt8], _ rng: inout SplitMix64) -> [UInt8] {
  var bytes = original
  let interesting: [UInt64] = [
    0, 1, 2, 3, 0x38, 0x40, 0xfff, 0x1000, 0x1001, 0x7fff_ffff_f000, 0x7fff_ffff_efff,
    0x8000_0000_0000, UInt64.max, UInt64.max - 0xfff, UInt64.max - 0x38, 0xffff_ffff, 0x8000_0000_0000_0000,
  ]
  let rounds = Int.random(in: 1...4, using: &rng)
  for _ in 0..<rounds {
    guard !bytes.isEmpty else { break }
    let window = min(512, bytes.count)
    switch Int.random(in: 0..<10, using: &rng) {
    case 0..<5:
      let at = Int.random(in: 0..<window, using: &rng)
      bytes[at] ^= UInt8.random(in: 1...255, using: &rng)
    case 5..<8 where window >= 8:
      let slot = Int.random(in: 0..<(window / 8), using: &rng) * 8
      let value = interesting.randomElement(using: &rng)! &+ UInt64.random(in: 0...2, using: &rng)
      let width = [2, 4, 8].randomElement(using: &rng)!
      for i in 0..<width where slot + i < bytes.count {
        bytes[slot + i] = UInt8(truncatingIfNeeded: value >> (8 * i))
      }
    default:
      // Mostly within the headers, where truncation changes the outcome.
      let limit = Bool.random(using: &rng) ? min(bytes.count, 1024) : bytes.count
      bytes = Array(bytes.prefix(Int.random(in: 0...limit, using: &rng)))
    }
  }
  return bytes
}

/// The files the property tests mutate: two synthetic ones and two real ones.
enum MutationCorpus {
  static let names = ["synthetic ET_EXEC", "synthetic ET_DYN", Samples.staticHello, Samples.staticPIEHello]

  static func original(_ name: String) -> [UInt8]? {
    switch name {
    case "synthetic ET_EXEC": return ELFBuilder.executable().build()
    case "synthetic ET_DYN": return ELFBuilder.positionIndependent().build()
    default: return Samples.load(name)
    }
  }

  /// A fixed seed per file (FNV-1a of its name), so failures replay.
  static func seed(_ name: String) -> UInt64 {
    name.utf8.reduce(0xcbf2_9ce4_8422_2325) { ($0 ^ UInt64($1)) &* 0x100_0000_01b3 }
  }
}

/// SplitMix64: a tiny, fast, seedable generator, so every run of the
/// property tests sees the same inputs and a failure can be replayed.
struct SplitMix64: RandomNumberGenerator {
  var state: UInt64
  init(seed: UInt64) { state = seed }
  mutating func next() -> UInt64 {
    state &+= 0x9e37_79b9_7f4a_7c15
    var z = state
    z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
    z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
    return z ^ (z >> 31)
  }
}
