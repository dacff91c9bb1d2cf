// Test helpers: synthetic ELF64 files with a knob for every header field, and the real sample binaries.
import ELF
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
