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
    switch rawValue {
    case 0: return "AT_NULL"
    case 2: return "AT_EXECFD"
    case 3: return "AT_PHDR"
    case 4: return "AT_PHENT"
    case 5: return "AT_PHNUM"
    case 6: return "AT_PAGESZ"
    case 7: return "AT_BASE"
    case 8: return "AT_FLAGS"
    case 9: return "AT_ENTRY"
    case 11: return "AT_UID"
    case 12: return "AT_EUID"
    case 13: return "AT_GID"
    case 14: return "AT_EGID"
    case 15: return "AT_PLATFORM"
    case 16: return "AT_HWCAP"
    case 17: return "AT_CLKTCK"
    case 23: return "AT_SECURE"
    case 25: return "AT_RANDOM"
    case 26: return "AT_HWCAP2"
    case 27: return "AT_RSEQ_FEATURE_SIZE"
    case 28: return "AT_RSEQ_ALIGN"
    case 31: return "AT_EXECFN"
    case 33: return "AT_SYSINFO_EHDR"
    case 51: return "AT_MINSIGSTKSZ"
    default: return "AT_\(rawValue)"
    }
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
