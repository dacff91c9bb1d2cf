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
  line()
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
