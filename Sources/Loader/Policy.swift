// Paging policies: how the pages of a load plan become memory.
import ELF
import Glibc

/// How a program's pages are brought into memory.
public enum PagingMode: String, CaseIterable, Sendable {
  /// Every PT_LOAD mapped up front, exactly as the kernel's execve maps it.
  case eager
}

let MAP_FIXED_NOREPLACE: Int32 = 0x100000

/// The all-at-once policy: the kernel's own `elf_load`, done from user space.
/// Every mapping goes into a hole (MAP_FIXED_NOREPLACE): never over anything.
enum EagerPolicy {
  static func install(_ plan: LoadPlan, fd: Int32, log: (String) -> Void) throws(LoadError) {
    for segment in plan.segments {
      if !segment.filePages.isEmpty {
        // Writable while the bss tail is zeroed, when there is one.
        try map(
          segment, segment.filePages, segment.protection, flags: MAP_PRIVATE, fd: fd,
          offset: segment.fileOffset)
        if !segment.zeroFill.isEmpty {
          UnsafeMutableRawPointer(bitPattern: UInt(segment.zeroFill.start))!
            .initializeMemory(as: UInt8.self, repeating: 0, count: Int(segment.zeroFill.count))
        }
        log(
          "map \(segment.filePages) \(segment.protection) file offset \(hex(segment.fileOffset))"
            + (segment.zeroFill.isEmpty ? "" : ", zero \(segment.zeroFill)"))
      }
      if !segment.anonymousPages.isEmpty {
        try map(
          segment, segment.anonymousPages, segment.anonymousProtection,
          flags: MAP_PRIVATE | MAP_ANONYMOUS)
        log("map \(segment.anonymousPages) \(segment.anonymousProtection) anonymous (bss)")
      }
    }
  }

  static func map(
    _ segment: SegmentMapping, _ range: AddressRange, _ protection: Protection, flags: Int32,
    fd: Int32 = -1, offset: UInt64 = 0
  ) throws(LoadError) {
    let got: UInt64
    do {
      got = try Kernel.map(
        range.start, range.count, protection, flags: flags | MAP_FIXED_NOREPLACE, fd: fd,
        offset: offset)
    } catch {
      if error.errno == EEXIST {
        throw .addressInUse(
          segment: segment.programHeaderIndex, range: range, occupant: occupant(of: range))
      }
      throw .mapping(segment: segment.programHeaderIndex, range: range, error)
    }
    // Kernels before 4.17 ignore MAP_FIXED_NOREPLACE and place the mapping elsewhere.
    if got != range.start {
      Kernel.unmap(got, range.count)
      throw .addressInUse(segment: segment.programHeaderIndex, range: range, occupant: nil)
    }
  }

  /// What /proc/self/maps says is in `range`: only read when something is.
  static func occupant(of range: AddressRange) -> String? {
    guard let text = Kernel.readWholeFile("/proc/self/maps") else { return nil }
    for line in text.split(separator: 10) {
      let fields = line.split(separator: 32, omittingEmptySubsequences: true)
      guard let bounds = fields.first?.split(separator: UInt8(ascii: "-")), bounds.count == 2,
        let start = UInt64(String(decoding: bounds[0], as: UTF8.self), radix: 16),
        let end = UInt64(String(decoding: bounds[1], as: UTF8.self), radix: 16),
        start < range.end, end > range.start
      else { continue }
      let name = fields.count > 5 ? String(decoding: fields[5], as: UTF8.self) : "an anonymous mapping"
      return "\(name) at \(hex(start))-\(hex(end))"
    }
    return nil
  }
}
