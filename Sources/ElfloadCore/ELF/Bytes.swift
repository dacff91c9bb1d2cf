// Bounds-checked little-endian reads over untrusted bytes.

/// Where an ELF parser gets its bytes: an array in tests and the fuzzer, the
/// file itself (through `pread`) in the loader.
public protocol ByteSource {
  /// The size of the whole file, in bytes.
  var size: UInt64 { get }
  /// Exactly `count` bytes at `offset`; throws `ELFError.truncated` otherwise, or
  /// `.unreadable` when reading the file fails.
  func bytes(at offset: UInt64, count: Int, for what: String) throws(ELFError) -> [UInt8]
}

extension Array: ByteSource where Element == UInt8 {
  public var size: UInt64 { UInt64(count) }

  public func bytes(at offset: UInt64, count n: Int, for what: String) throws(ELFError) -> [UInt8] {
    let (end, overflow) = offset.addingReportingOverflow(UInt64(n))
    guard !overflow, end <= size else {
      throw .truncated(what: what, offset: offset, needed: UInt64(n), fileSize: size)
    }
    return Array(self[Int(offset)..<Int(end)])
  }
}

/// Reads little-endian integers from a buffer whose length was checked once,
/// when the buffer was read; every read here is within it.
struct LittleEndianReader {
  let bytes: [UInt8]

  func u8(_ at: Int) -> UInt8 { bytes[at] }

  func u16(_ at: Int) -> UInt16 {
    UInt16(bytes[at]) | UInt16(bytes[at + 1]) << 8
  }

  func u32(_ at: Int) -> UInt32 {
    var v: UInt32 = 0
    for i in (0..<4).reversed() { v = v << 8 | UInt32(bytes[at + i]) }
    return v
  }

  func u64(_ at: Int) -> UInt64 {
    var v: UInt64 = 0
    for i in (0..<8).reversed() { v = v << 8 | UInt64(bytes[at + i]) }
    return v
  }
}
