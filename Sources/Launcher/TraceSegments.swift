// --trace's segment table: what each traced page's segment is. The child writes a row per
// PT_LOAD as it plans each image; the parent puts the table in the preamble of the trace and of
// the --residency file.

enum TraceSegments {
  /// Shared with the child (a length word, then the rows' bytes); nil without --trace and --residency.
  nonisolated(unsafe) static var shared: UnsafeMutablePointer<UInt64>?
  /// Bytes of rows that fit (shared memory costs only what is written).
  static let capacity: UInt64 = 1 << 20

  /// In the parent, before the fork.
  static func share() {
    guard let base = try? Kernel.map(0, capacity + 8, [.read, .write], flags: [.shared, .anonymous, .noReserve])
    else { return }
    shared = UnsafeMutablePointer(bitPattern: UInt(base))
  }

  /// In the child: a `# ` row per PT_LOAD of `image` (0 the program, 1 its interpreter), at `bias`.
  static func record(_ number: UInt64, _ image: Image, bias: UInt64, path: [UInt8]) {
    guard let shared else { return }
    var out = CSVBuffer()
    for index in image.loadIndexes {
      let ph = image.programHeaders[index]
      let (start, end) = ph.pagesInMemory(bias: bias)
      out.text(TraceFormat.commentPrefix)
      out.decimal(number)
      out.byte(44)
      out.decimal(UInt64(index))
      out.text(",PT_LOAD,")
      out.byte(ph.flags.contains(.read) ? UInt8(ascii: "r") : UInt8(ascii: "-"))
      out.byte(ph.flags.contains(.write) ? UInt8(ascii: "w") : UInt8(ascii: "-"))
      out.byte(ph.flags.contains(.execute) ? UInt8(ascii: "x") : UInt8(ascii: "-"))
      out.byte(44)
      out.decimal((end - start) / pageSize)
      out.byte(44)
      out.hex(start)
      out.byte(44)
      out.hex(end)
      out.byte(44)
      for b in path { out.byte(b == 44 ? UInt8(ascii: ";") : b < 32 ? UInt8(ascii: "?") : b) }
      out.byte(10)
    }
    let used = shared.pointee
    guard used + UInt64(out.bytes.count) <= capacity else { return }
    out.bytes.withUnsafeBytes {
      guard let rows = $0.baseAddress else { return }
      UnsafeMutableRawPointer(shared + 1).advanced(by: Int(used)).copyMemory(from: rows, byteCount: $0.count)
    }
    shared.pointee = used + UInt64(out.bytes.count)
  }

  /// In the child, once the table is written: its mapping goes, so that the program's address
  /// space does not hold it (the parent's mapping of the same memory stays).
  static func release() {
    guard let shared else { return }
    Kernel.unmap(UInt64(UInt(bitPattern: shared)), capacity + 8)
    Self.shared = nil
  }

  /// In the parent, once the program has ended: the format line, the table's header and rows.
  static func preamble(_ formatLine: String) -> [UInt8] {
    var bytes = Array(formatLine.utf8) + Array(TraceFormat.segmentHeader.utf8)
    if let shared {
      let rows = UnsafeRawPointer(shared + 1).assumingMemoryBound(to: UInt8.self)
      bytes += Array(UnsafeBufferPointer(start: rows, count: Int(min(shared.pointee, capacity))))
    }
    return bytes
  }
}
