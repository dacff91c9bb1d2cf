// libFuzzer target: the ELF parser, the load-plan builder and the profile reader (--mode replay)
// must never trap, whatever the bytes.
//
// Built by scripts/fuzz together with Sources/ELF and Sources/Loader/LoadPlan.swift (the parts of
// elfload that read the file before anything is mapped), with -sanitize=fuzzer. A trap
// (an overflow, an out-of-bounds index, a force unwrap) is a crash libFuzzer reports.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
  let bytes = Array(UnsafeBufferPointer(start: data, count: size))
  // A profile: what is read back is what would be written again.
  if let profile = try? Profile.parse(bytes) {
    for page in profile.pages.prefix(64) { _ = profile.runs(image: page.image, segment: page.segment) }
    let again = try? Profile.parse(profile.bytes)
    precondition(again == profile || profile.images.contains { $0.path.contains(10) }, "a profile that does not read back")
  }
  guard let image = try? Image(parsing: bytes) else { return 0 }
  // Everything elfload reads from a valid image before it maps anything.
  _ = image.span
  _ = image.maximumAlignment
  _ = image.programHeaderAddress
  _ = image.interpreter
  _ = image.executableStack
  if !image.isPositionIndependent {
    plan(image, bias: 0)
    return 0
  }
  // The bases elfload can end up with: the lowest, a typical one, the highest
  // that still fits, each aligned as chooseBias aligns it.
  let (low, high) = image.span
  let alignment = image.maximumAlignment
  let size = high - low
  var bases: [UInt64] = [alignment, 0x5555_5555_0000 & ~(alignment &- 1)]
  if size <= userSpaceEnd { bases.append((userSpaceEnd - size) & ~(alignment &- 1)) }
  for base in bases { plan(image, bias: base &- low) }
  return 0
}

private func plan(_ image: Image, bias: UInt64) {
  guard LoadPlan.fits(image, bias: bias) else { return }
  let plan = LoadPlan(image: image, bias: bias)
  // The plan's own promises: page-aligned ranges, inside user space.
  for segment in plan.segments {
    for range in [segment.filePages, segment.anonymousPages] where !range.isEmpty {
      precondition(range.start % pageSize == 0 && range.end % pageSize == 0, "unaligned \(range)")
      // An ET_EXEC may start at page 0 (the kernel's mmap judges it); a PIE never does.
      let lowest = image.isPositionIndependent ? pageSize : 0
      precondition(range.start >= lowest && range.end <= userSpaceEnd, "outside user space: \(range)")
    }
  }
}
