// Auxiliary vector tags, and reading the auxv the kernel gave the loader.

/// An `AT_*` tag.
public struct AuxvTag: RawRepresentable, Equatable, Hashable, Sendable, CustomStringConvertible {
  public var rawValue: UInt64
  public init(rawValue: UInt64) { self.rawValue = rawValue }

  public static let null = AuxvTag(rawValue: 0)
  public static let phdr = AuxvTag(rawValue: 3)
  public static let phent = AuxvTag(rawValue: 4)
  public static let phnum = AuxvTag(rawValue: 5)
  public static let pagesz = AuxvTag(rawValue: 6)
  public static let base = AuxvTag(rawValue: 7)
  public static let flags = AuxvTag(rawValue: 8)
  public static let entry = AuxvTag(rawValue: 9)
  public static let uid = AuxvTag(rawValue: 11)
  public static let euid = AuxvTag(rawValue: 12)
  public static let gid = AuxvTag(rawValue: 13)
  public static let egid = AuxvTag(rawValue: 14)
  public static let platform = AuxvTag(rawValue: 15)
  public static let hwcap = AuxvTag(rawValue: 16)
  public static let clktck = AuxvTag(rawValue: 17)
  public static let secure = AuxvTag(rawValue: 23)
  public static let random = AuxvTag(rawValue: 25)
  public static let hwcap2 = AuxvTag(rawValue: 26)
  public static let rseqFeatureSize = AuxvTag(rawValue: 27)
  public static let rseqAlign = AuxvTag(rawValue: 28)
  public static let execfn = AuxvTag(rawValue: 31)
  public static let sysinfoEHDR = AuxvTag(rawValue: 33)
  public static let minsigstksz = AuxvTag(rawValue: 51)
  public static let execfd = AuxvTag(rawValue: 2)

  public var description: String {
    let names: [UInt64: String] = [
      0: "AT_NULL", 2: "AT_EXECFD", 3: "AT_PHDR", 4: "AT_PHENT", 5: "AT_PHNUM", 6: "AT_PAGESZ",
      7: "AT_BASE", 8: "AT_FLAGS", 9: "AT_ENTRY", 11: "AT_UID", 12: "AT_EUID", 13: "AT_GID",
      14: "AT_EGID", 15: "AT_PLATFORM", 16: "AT_HWCAP", 17: "AT_CLKTCK", 23: "AT_SECURE",
      25: "AT_RANDOM", 26: "AT_HWCAP2", 27: "AT_RSEQ_FEATURE_SIZE", 28: "AT_RSEQ_ALIGN",
      31: "AT_EXECFN", 33: "AT_SYSINFO_EHDR", 51: "AT_MINSIGSTKSZ",
    ]
    return names[rawValue] ?? "AT_\(rawValue)"
  }
}

/// One auxv pair.
public struct AuxvEntry: Equatable, Sendable {
  public var tag: AuxvTag
  public var value: UInt64
  public init(_ tag: AuxvTag, _ value: UInt64) {
    self.tag = tag
    self.value = value
  }
}
