// The initial stack, decoded byte by byte and checked against the layout of the kernel's create_elf_tables.
import ElfloadCore

import Testing

/// Reads the built stack image back by address. An address outside the image (a bug in what is
/// tested) reads as zeros and records an issue: the test fails, the runner does not trap.
struct StackReader {
  let stack: InitialStack

  /// The image offset of `count` bytes at `address`, or nil when they are not all in the image.
  func offset(_ address: UInt64, _ count: Int) -> Int? {
    guard address >= stack.base, address - stack.base <= UInt64(stack.image.count),
      UInt64(stack.image.count) - (address - stack.base) >= UInt64(count)
    else {
      Issue.record("\(count) bytes at 0x\(String(address, radix: 16)) are not all in the stack image")
      return nil
    }
    return Int(address - stack.base)
  }

  func word(at address: UInt64) -> UInt64 {
    guard let offset = offset(address, 8) else { return 0 }
    var v: UInt64 = 0
    for i in (0..<8).reversed() { v = v << 8 | UInt64(stack.image[offset + i]) }
    return v
  }

  func bytes(at address: UInt64, count: Int) -> [UInt8] {
    guard let offset = offset(address, count) else { return [] }
    return Array(stack.image[offset..<offset + count])
  }

  /// The NUL-terminated string at `address`, without its NUL.
  func string(at address: UInt64) -> [UInt8] {
    guard let offset = offset(address, 1) else { return [] }
    return Array(stack.image[offset...].prefix { $0 != 0 })
  }

  func contains(_ address: UInt64) -> Bool { address >= stack.base && address < stack.stackTop }
}

let stackTop: UInt64 = 0x7fff_f000_0000
let randomBytes = (0..<16).map { UInt8($0) }
let execfn = Array("/x/prog".utf8)
let platform = Array("x86_64".utf8)

/// A template like the one the kernel gave the loader; the three
/// placeholders must be replaced with addresses on the new stack.
let template: [AuxvEntry] = [
  AuxvEntry(.sysinfoEHDR, 0x7fff_f7fc_1000),
  AuxvEntry(.hwcap, 0x178b_fbff),
  AuxvEntry(.pagesz, 4096),
  AuxvEntry(.phdr, 0x40_0040),
  AuxvEntry(.execfn, 0xdead),
  AuxvEntry(.platform, 0xdead),
  AuxvEntry(.random, 0xdead),
]

func utf8(_ strings: [String]) -> [[UInt8]] { strings.map { Array($0.utf8) } }

struct StackCase: Sendable, CustomTestStringConvertible {
  var arguments: [String]
  var environment: [String]
  var gap: UInt64
  var testDescription: String { "argv \(arguments), envp \(environment), gap \(gap)" }
}

// Different string lengths and pointer counts change both paddings, so
// several shapes are checked; the brief's inputs come first.
let stackCases: [StackCase] = [
  StackCase(arguments: ["prog", "a", "bc"], environment: ["A=1", "B=2"], gap: 0),
  StackCase(arguments: ["prog", "a", "bc"], environment: ["A=1", "B=2"], gap: 1234),
  StackCase(arguments: ["prog"], environment: [], gap: 0),
  StackCase(
    arguments: ["prog", "x"], environment: ["LONG=" + String(repeating: "v", count: 300)], gap: 8191),
  StackCase(arguments: ["p", "", "three"], environment: ["A=", "B=22", "C=333"], gap: 15),
]

func build(_ c: StackCase, platform: [UInt8]? = platform, auxv: [AuxvEntry] = template) -> InitialStack {
  InitialStack(
    arguments: utf8(c.arguments), environment: utf8(c.environment), execfn: execfn, platform: platform,
    randomBytes: randomBytes, auxv: auxv, stackTop: stackTop, randomGap: c.gap)
}

@Test(arguments: stackCases)
func stackLayoutMatchesTheKernel(_ c: StackCase) throws {
  let stack = build(c)
  let r = StackReader(stack: stack)
  let args = utf8(c.arguments)
  let env = utf8(c.environment)

  #expect(stack.base == stack.stackPointer)
  #expect(stack.base % 16 == 0, "the ABI wants rsp 16-byte aligned at the entry point")
  #expect(stack.stackTop == stackTop)
  #expect(UInt64(stack.image.count) == stackTop - stack.base)

  // argc, argv[], NULL, envp[], NULL, auxv pairs, AT_NULL.
  var cursor = stack.base
  func next() -> UInt64 {
    defer { cursor += 8 }
    return r.word(at: cursor)
  }
  #expect(next() == UInt64(args.count))
  let argv = args.map { _ in next() }
  #expect(next() == 0)
  let envp = env.map { _ in next() }
  #expect(next() == 0)
  #expect(cursor == stack.auxvAddress)
  var auxv: [AuxvEntry] = []
  while true {
    let entry = AuxvEntry(AuxvTag(rawValue: next()), next())
    auxv.append(entry)
    if entry.tag == .null || auxv.count > 100 { break }
  }

  // The pointers point at the strings, in order.
  for (p, s) in zip(argv, args) { #expect(r.string(at: p) == s) }
  for (p, s) in zip(envp, env) { #expect(r.string(at: p) == s) }

  // The strings are contiguous: argv[0] lowest, then the rest of argv, the
  // environment, AT_EXECFN, and 8 zero bytes at the very top.
  let pointers = argv + envp + [stack.execfnAddress]
  for (p, (q, s)) in zip(pointers.dropFirst(), zip(pointers, args + env)) {
    #expect(p == q + UInt64(s.count + 1))
  }
  #expect(stack.image.suffix(8) == [0, 0, 0, 0, 0, 0, 0, 0])
  #expect(stack.execfnAddress + UInt64(execfn.count + 1) == stackTop - 8)
  #expect(r.bytes(at: stack.execfnAddress, count: execfn.count + 1) == execfn + [0])
  #expect(stack.argumentsRange == AddressRange(argv.first ?? 0, envp.first ?? stack.execfnAddress))
  #expect(stack.environmentRange == AddressRange(envp.first ?? stack.execfnAddress, stack.execfnAddress))
  #expect(stack.argumentsRange.count == UInt64(args.map { $0.count + 1 }.reduce(0, +)))
  #expect(stack.environmentRange.count == UInt64(env.map { $0.count + 1 }.reduce(0, +)))

  // Below the strings: the random gap, 16-byte alignment, then the platform
  // string and the 16 AT_RANDOM bytes right under it (STACK_ALLOC).
  let stringsStart = stack.argumentsRange.start
  let aligned = (stringsStart - c.gap) & ~15
  let platformAddress = try #require(stack.platformAddress)
  #expect(platformAddress <= aligned)
  #expect(platformAddress == aligned - UInt64(platform.count + 1))
  #expect(r.bytes(at: platformAddress, count: platform.count + 1) == platform + [0])
  #expect(stack.randomAddress == platformAddress - 16)
  #expect(r.bytes(at: stack.randomAddress, count: 16) == randomBytes)
  // The vectors end below the random bytes, and rsp is as high as the
  // kernel's STACK_ROUND allows: less than 16 bytes of padding.
  #expect(cursor <= stack.randomAddress)
  #expect(stack.randomAddress - cursor < 16)

  // auxv: the template's order, three values replaced, AT_NULL last.
  try #require(template.count > 6)
  var expected = template
  expected[4].value = stack.execfnAddress
  expected[5].value = platformAddress
  expected[6].value = stack.randomAddress
  expected.append(AuxvEntry(.null, 0))
  #expect(auxv == expected)
  #expect(stack.auxv == expected)
  for p in argv + envp + [stack.execfnAddress, platformAddress, stack.randomAddress] {
    #expect(r.contains(p))
  }
}

@Test func withoutPlatformTheRandomBytesSitRightUnderTheStrings() {
  let c = stackCases[0]
  let stack = build(c, platform: nil)
  #expect(stack.platformAddress == nil)
  #expect(stack.randomAddress == (stack.argumentsRange.start & ~15) - 16)
  #expect(StackReader(stack: stack).bytes(at: stack.randomAddress, count: 16) == randomBytes)
  #expect(stack.base % 16 == 0)
}

@Test func theGapMovesEverythingBelowTheStrings() {
  let a = build(stackCases[0])
  let b = build(stackCases[1])
  #expect(a.argumentsRange == b.argumentsRange, "the strings hang from the stack top")
  #expect(a.execfnAddress == b.execfnAddress)
  #expect(b.randomAddress < a.randomAddress)
  #expect(a.randomAddress - b.randomAddress >= 1234 - 15)
  #expect(a.randomAddress - b.randomAddress <= 1234 + 15)
}

@Test func anExistingATNullIsNotDuplicated() {
  let stack = build(stackCases[0], auxv: template + [AuxvEntry(.null, 0)])
  #expect(stack.auxv.filter { $0.tag == .null }.count == 1)
  #expect(stack.auxv.last == AuxvEntry(.null, 0))
  #expect(stack.auxv.count == template.count + 1)
  #expect(stack == build(stackCases[0]), "the same bytes as without it")
}

@Test func aTemplateWithoutPlaceholdersIsCopied() {
  let plain = [AuxvEntry(.pagesz, 4096), AuxvEntry(.entry, 0x40_1000)]
  let stack = build(stackCases[0], auxv: plain)
  #expect(stack.auxv == plain + [AuxvEntry(.null, 0)])
}

/// The auxv tags elfload names, against the kernel's numbers (include/uapi/linux/auxvec.h and
/// arch/x86/include/uapi/asm/auxvec.h): each constant's value, and the name it prints as.
@Test func auxvTagsAreTheKernels() {
  let kernel: [(AuxvTag, UInt64, String)] = [
    (.null, 0, "AT_NULL"), (.execfd, 2, "AT_EXECFD"), (.phdr, 3, "AT_PHDR"), (.phent, 4, "AT_PHENT"),
    (.phnum, 5, "AT_PHNUM"), (.pagesz, 6, "AT_PAGESZ"), (.base, 7, "AT_BASE"), (.flags, 8, "AT_FLAGS"),
    (.entry, 9, "AT_ENTRY"), (.uid, 11, "AT_UID"), (.euid, 12, "AT_EUID"), (.gid, 13, "AT_GID"),
    (.egid, 14, "AT_EGID"), (.platform, 15, "AT_PLATFORM"), (.hwcap, 16, "AT_HWCAP"), (.clktck, 17, "AT_CLKTCK"),
    (.secure, 23, "AT_SECURE"), (.random, 25, "AT_RANDOM"), (.hwcap2, 26, "AT_HWCAP2"),
    (.rseqFeatureSize, 27, "AT_RSEQ_FEATURE_SIZE"), (.rseqAlign, 28, "AT_RSEQ_ALIGN"), (.execfn, 31, "AT_EXECFN"),
    (.sysinfoEHDR, 33, "AT_SYSINFO_EHDR"), (.minsigstksz, 51, "AT_MINSIGSTKSZ"),
  ]
  for (tag, value, name) in kernel {
    #expect(tag.rawValue == value, "\(name)")
    #expect(AuxvTag(rawValue: value).description == name)
  }
  // A tag it has no name for (AT_IGNORE, AT_NOTELF, AT_BASE_PLATFORM, a future one): its number.
  for value: UInt64 in [1, 10, 24, 29, 99] { #expect(AuxvTag(rawValue: value).description == "AT_\(value)") }
}
