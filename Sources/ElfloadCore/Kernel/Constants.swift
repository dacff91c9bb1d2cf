// The kernel's numbers, in one place: system calls, and the flags elfload passes to them
// (from the kernel's uapi headers for x86-64).

/// x86-64 system call numbers (arch/x86/entry/syscalls/syscall_64.tbl).
public enum Syscall: Int, CaseIterable {
  case read = 0, write = 1, close = 3, fstat = 5, poll = 7, mmap = 9, nanosleep = 35, mprotect = 10, munmap = 11
  case rtSigaction = 13, rtSigprocmask = 14, ioctl = 16, pread64 = 17, access = 21, sched_yield = 24
  case mremap = 25, mincore = 27, madvise = 28, getpid = 39, sendfile = 40, clone = 56, fork = 57, execve = 59
  case exit = 60, wait4 = 61, kill = 62, fcntl = 72, fdatasync = 75, readlink = 89, getrusage = 98, ptrace = 101
  case fstatfs = 138
  case geteuid = 107, getppid = 110
  case rtSigpending = 127, rtSigtimedwait = 128, personality = 135
  case prctl = 157, arch_prctl = 158, gettid = 186, clockGettime = 228, exitGroup = 231
  case fadvise64 = 221, tgkill = 234, openat = 257, newfstatat = 262, prlimit64 = 302, getrandom = 318
  case splice = 275, memfdCreate = 319
  case execveat = 322, pidfdOpen = 434, closeRange = 436, faccessat2 = 439
}

/// `PROT_*` for mmap and mprotect.
public struct Protection: OptionSet, Equatable, Hashable, Sendable, CustomStringConvertible {
  public var rawValue: Int32
  public init(rawValue: Int32) { self.rawValue = rawValue }
  public static let read = Protection(rawValue: 1)
  public static let write = Protection(rawValue: 2)
  public static let execute = Protection(rawValue: 4)
  /// PROT_GROWSDOWN: apply to the whole grows-down (stack) mapping.
  public static let growsDown = Protection(rawValue: 0x0100_0000)

  public init(_ flags: SegmentFlags) {
    self = []
    if flags.contains(.read) { insert(.read) }
    if flags.contains(.write) { insert(.write) }
    if flags.contains(.execute) { insert(.execute) }
  }

  public var description: String {
    (contains(.read) ? "r" : "-") + (contains(.write) ? "w" : "-") + (contains(.execute) ? "x" : "-")
  }
}

/// `MAP_*` for mmap.
public struct MapFlags: OptionSet, Equatable, Sendable {
  public var rawValue: Int32
  public init(rawValue: Int32) { self.rawValue = rawValue }
  public static let shared = MapFlags(rawValue: 0x01)
  public static let `private` = MapFlags(rawValue: 0x02)
  public static let fixed = MapFlags(rawValue: 0x10)
  public static let anonymous = MapFlags(rawValue: 0x20)
  public static let noReserve = MapFlags(rawValue: 0x4000)
  /// Never replaces a mapping: EEXIST instead (Linux 4.17).
  public static let fixedNoReplace = MapFlags(rawValue: 0x10_0000)
}

/// `O_*` for openat.
public enum OpenFlags {
  public static let readOnly: Int32 = 0
  public static let writeOnly: Int32 = 0o1
  public static let create: Int32 = 0o100
  public static let truncate: Int32 = 0o1000
  public static let nonBlocking: Int32 = 0o4000
  public static let closeOnExec: Int32 = 0o2000000
}

/// `AT_FDCWD`: paths relative to the working directory.
public let atCurrentDirectory: Int32 = -100
/// `AT_EMPTY_PATH`: the call is about the descriptor itself.
public let atEmptyPath: Int32 = 0x1000
/// `O_PATH` in a descriptor's status flags.
public let openPathOnly: Int32 = 0o10000000
/// `TCGETS`: whether a descriptor is a terminal (ioctl).
public let terminalGetAttributes: Int = 0x5401

/// File types in st_mode.
public enum FileType {
  public static let mask: UInt32 = 0o170000
  public static let regular: UInt32 = 0o100000
  public static let directory: UInt32 = 0o040000
  public static let fifo: UInt32 = 0o010000
  public static let characterDevice: UInt32 = 0o020000
  public static let blockDevice: UInt32 = 0o060000
  public static let socket: UInt32 = 0o140000

  /// What a file of `type` is, for messages: "a directory", "a FIFO (named pipe)".
  public static func name(_ type: UInt32) -> String {
    switch type {
    case directory: return "a directory"
    case fifo: return "a FIFO (named pipe)"
    case characterDevice: return "a character device"
    case blockDevice: return "a block device"
    case socket: return "a socket"
    default: return "not a regular file"
    }
  }
}

/// `fcntl` commands and lease types.
public enum FileControl {
  public static let getDescriptorFlags: Int32 = 1
  public static let setDescriptorFlags: Int32 = 2
  /// FD_CLOEXEC, the one descriptor flag.
  public static let closeOnExecFlag: Int = 1
  public static let getStatusFlags: Int32 = 3
  public static let setSignal: Int32 = 10
  public static let duplicateCloseOnExec: Int32 = 1030
  public static let addSeals: Int32 = 1033
  public static let setLease: Int32 = 1024
  public static let readLease: Int = 0
  public static let noLease: Int = 2
}

/// F_ADD_SEALS's seals (include/uapi/linux/fcntl.h): what can no longer be done to a memfd.
public struct Seals: OptionSet, Sendable {
  public var rawValue: Int32
  public init(rawValue: Int32) { self.rawValue = rawValue }
  /// No more seals.
  public static let seal = Seals(rawValue: 0x1)
  public static let shrink = Seals(rawValue: 0x2)
  public static let grow = Seals(rawValue: 0x4)
  public static let write = Seals(rawValue: 0x8)
}

/// memfd_create's flags (include/uapi/linux/memfd.h).
public struct MemfdFlags: OptionSet, Sendable {
  public var rawValue: Int32
  public init(rawValue: Int32) { self.rawValue = rawValue }
  public static let closeOnExec = MemfdFlags(rawValue: 0x1)
  public static let allowSealing = MemfdFlags(rawValue: 0x2)
  /// Executable whatever vm.memfd_noexec says (Linux 6.3; EINVAL before).
  public static let executable = MemfdFlags(rawValue: 0x10)
}

/// `f_type` of fstatfs: the file systems whose files are memory, with no storage behind them.
public enum FileSystemMagic {
  public static let tmpfs: Int64 = 0x0102_1994
  public static let ramfs: Int64 = 0x8584_58f6
  public static let hugetlbfs: Int64 = 0x9584_58f6
}

/// `madvise` advice.
public enum Advice {
  public static let dontNeed: Int32 = 4
}

/// `prctl` options.
public enum PrctlOption {
  public static let setParentDeathSignal: Int32 = 1
  public static let setName: Int32 = 15
  public static let setMM: Int32 = 35
  public static let setMMMap: Int32 = 14
}

/// Resource numbers for prlimit64.
public enum Resource {
  public static let fileSize: Int32 = 1
  public static let stack: Int32 = 3
  public static let addressSpace: Int32 = 9
}

/// Signals elfload names.
public enum Signal {
  public static let hangup: Int32 = 1
  public static let interrupt: Int32 = 2
  public static let quit: Int32 = 3
  public static let kill: Int32 = 9
  public static let user1: Int32 = 10
  public static let windowChanged: Int32 = 28
  public static let segv: Int32 = 11
  public static let terminate: Int32 = 15
  public static let child: Int32 = 17
  public static let io: Int32 = 29
}

/// ADDR_NO_RANDOMIZE in the persona (setarch -R).
public let addrNoRandomize: UInt64 = 0x0040000

/// `access` mode: may it be executed?
public let executeAccess: Int32 = 1
