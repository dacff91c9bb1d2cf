// `elfload inspect`: the load plan, printed for people.
import ElfloadCore

/// The plan for `image`, as text. ET_DYN images are shown at link-time
/// addresses (bias 0): their base is only chosen, at random, when they run.
public func describePlan(path: String, image: Image, asInterpreter: Bool = false) -> String {
  let plan = LoadPlan(image: image, bias: 0)
  let pie = image.isPositionIndependent
  var out = ""
  func line(_ s: String = "") { out += s + "\n" }
  func pad(_ s: String, _ n: Int) -> String {
    s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count)
  }

  let type = pie ? "ET_DYN" : "ET_EXEC"
  let kind =
    image.interpreter.map { "dynamically linked \(pie ? "PIE" : "executable") (\(type)), interpreter \(text($0))" }
    ?? (pie ? "static PIE (\(type))" : "static executable (\(type))")
  line("\(path): ELF64 x86-64 \(asInterpreter ? "interpreter (\(type)), its base is AT_BASE" : kind)")
  if pie && image.interpreter != nil {
    line(
      "base:    ELF_ET_DYN_BASE \(hex(LoadPlan.dynamicBase & ~(pageSize - 1))) + random (mmap_rnd_bits pages), aligned to \(hex(image.maximumAlignment)); addresses below are offsets from it"
    )
  } else if pie {
    line(
      "base:    chosen at load time by mmap (randomised), aligned to \(hex(image.maximumAlignment)); addresses below are offsets from it"
    )
  } else {
    line("base:    fixed (ET_EXEC): addresses below are where the segments go")
  }
  line(
    "entry:   \(hex(plan.entry))\(image.interpreter == nil ? "" : " (AT_ENTRY; execution starts at the interpreter's entry)")"
  )
  line(
    "phdrs:   \(plan.programHeaderCount) at file offset \(hex(image.header.phoff)), in memory at \(hex(plan.programHeaderAddress))\(asInterpreter ? "" : " (AT_PHDR)")"
  )
  line()
  line("segments (as the kernel's elf_load maps them):")
  line(
    "  " + pad("phdr", 6) + pad("prot", 6) + pad("file-backed pages", 28) + pad("from file offset", 18)
      + pad("zero-filled tail", 28) + "anonymous (bss) pages")
  for s in plan.segments {
    let file = s.filePages.isEmpty ? "-" : "\(s.filePages) (\(s.filePages.pageCount)p)"
    let offset = s.filePages.isEmpty ? "-" : hex(s.fileOffset)
    let zero = s.zeroFill.isEmpty ? "-" : "\(s.zeroFill)"
    let anon =
      s.anonymousPages.isEmpty
      ? "-" : "\(s.anonymousPages) (\(s.anonymousPages.pageCount)p, \(s.anonymousProtection))"
    line(
      "  " + pad("\(s.programHeaderIndex)", 6) + pad("\(s.protection)", 6) + pad(file, 28) + pad(offset, 18)
        + pad(zero, 28) + anon)
  }
  line()
  if asInterpreter {
    // brk and the stack are the program's business.
  } else if pie && image.interpreter == nil {
    line(
      "brk:     starts at ELF_ET_DYN_BASE \(hex(plan.brkBase)) + random (0..1 GiB), as the kernel moves a static PIE's heap"
    )
  } else {
    line("brk:     starts after the bss at \(hex(plan.brkBase)) + 1 page + random (0..1 GiB)")
  }
  if !asInterpreter {
    let limit = Kernel.softLimit(Resource.stack)
    let size = limit == UInt64.max ? "unlimited" : "\(limit / 1024) KiB"
    line(
      "stack:   the kernel's own stack, reused; grows to RLIMIT_STACK (\(size)); \(plan.executableStack ? "executable (PT_GNU_STACK has PF_X)" : "not executable")"
    )
  }
  if let tls = image.tls {
    line(
      "TLS:     \(hex(tls.memsz)) bytes (\(hex(tls.filesz)) initialised), aligned to \(hex(tls.align)); set up by the program's C library"
    )
  }
  // (An interpreter without TLS has no lines here, and so no blank line after them.)
  if !asInterpreter || image.tls != nil { line() }
  line("program headers:")
  line(
    "  " + pad("#", 4) + pad("type", 14) + pad("flags", 6) + pad("offset", 12) + pad("vaddr", 20)
      + pad("filesz", 12) + pad("memsz", 12) + "align")
  for (i, ph) in image.programHeaders.enumerated() {
    line(
      "  " + pad("\(i)", 4) + pad("\(ph.type)", 14) + pad("\(ph.flags)", 6) + pad(hex(ph.offset), 12)
        + pad(hex(ph.vaddr), 20) + pad(hex(ph.filesz), 12) + pad(hex(ph.memsz), 12) + hex(ph.align))
  }
  return out
}

/// `elfload inspect --profile FILE`: what a profile holds, image by image and
/// segment by segment, with each file's segment table when the file is there
/// (and whether it is still the file the profile was recorded for).
public func describeProfile(_ profile: Profile, path: String) -> String {
  var out = ""
  func line(_ s: String = "") { out += s + "\n" }
  let distinct = Set(profile.pages.map { "\($0.image) \($0.segment) \($0.page)" }).count
  line(
    "\(path): an elfload profile, version \(profile.pager == nil ? 1 : Profile.version): \(profile.pages.count) first touches (\(distinct) distinct pages) in \(profile.images.count) image\(profile.images.count == 1 ? "" : "s")"
  )
  line(Profile.misses(profile.pager) ?? "recorded under the uffd pager: every first touch is in it")
  for (index, image) in profile.images.enumerated() {
    let id = image.identity
    line()
    line("image \(index) (\(index == 0 ? "the program" : "its interpreter")): \(text(image.path))")
    line(
      "  recorded for: device \(id.device), inode \(id.inode), \(id.size) bytes, modified \(id.modifiedSeconds).\(String(format: "%09d", Int(id.modifiedNanoseconds)))"
    )
    let now = try? Kernel.status(image.path)
    let matches = now.map { FileIdentity($0) == id } ?? false
    line(
      "  that file now: "
        + (now == nil
          ? "missing: replay would ignore this profile"
          : matches ? "the same (replay would install these pages)" : "another file (device, inode, size or mtime differ): replay would ignore this profile"))
    let loaded = try? (index == 0 ? OpenExec.open(image.path, refuseWriters: false) : OpenExec.openInterpreter(image.path, refuseWriters: false))
    if let loaded { Kernel.close(loaded.fd) }
    let pages = profile.pages.enumerated().filter { $0.element.image == index }
    let segments = Array(Set(pages.map { $0.element.segment })).sorted()
    line("  segment                pages  recorded  runs  first touched (order in the whole profile)")
    for segment in segments {
      let runs = profile.runs(image: index, segment: segment)
      let recorded = runs.reduce(UInt64(0)) { $0 + $1.count }
      let first = pages.first { $0.element.segment == segment }?.offset ?? 0
      var name = "program header \(segment)"
      var size = "?"
      if let header = loaded?.image.programHeaders[safe: segment] {
        name = "PT_\(header.type) \(segment) \(header.flags)"
        let low = pageStart(header.vaddr)
        let (high, overflow) = header.vaddr.addingReportingOverflow(header.memsz)
        if !overflow { size = "\((pageStart(high + pageSize - 1) - low) / pageSize)" }
      }
      line(
        "  " + name.padding(toLength: 20, withPad: " ", startingAt: 0) + String(repeating: " ", count: max(1, 8 - size.count))
          + size + String(repeating: " ", count: max(1, 10 - "\(recorded)".count)) + "\(recorded)"
          + String(repeating: " ", count: max(1, 6 - "\(runs.count)".count)) + "\(runs.count)" + "  #\(first + 1)")
    }
  }
  return out
}

extension Array {
  subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}
