// What a failed system call says: errno values by name, with the C library's words for them.

/// An errno value. The launcher has no C library, so the words `strerror`
/// would give are here, as glibc spells them (messages stay what they were).
public struct Errno: RawRepresentable, Equatable, Hashable, Sendable, Error, CustomStringConvertible {
  public var rawValue: Int32
  public init(rawValue: Int32) { self.rawValue = rawValue }

  public static let EPERM = Errno(rawValue: 1)
  public static let ENOENT = Errno(rawValue: 2)
  public static let ESRCH = Errno(rawValue: 3)
  public static let EINTR = Errno(rawValue: 4)
  public static let EIO = Errno(rawValue: 5)
  public static let ENOEXEC = Errno(rawValue: 8)
  public static let EBADF = Errno(rawValue: 9)
  public static let ECHILD = Errno(rawValue: 10)
  public static let EAGAIN = Errno(rawValue: 11)
  public static let ENOMEM = Errno(rawValue: 12)
  public static let EACCES = Errno(rawValue: 13)
  public static let EFAULT = Errno(rawValue: 14)
  public static let EEXIST = Errno(rawValue: 17)
  public static let ENOTDIR = Errno(rawValue: 20)
  public static let EISDIR = Errno(rawValue: 21)
  public static let EINVAL = Errno(rawValue: 22)
  public static let ETXTBSY = Errno(rawValue: 26)
  public static let EFBIG = Errno(rawValue: 27)
  public static let ENOSPC = Errno(rawValue: 28)
  public static let ENAMETOOLONG = Errno(rawValue: 36)
  public static let ENOSYS = Errno(rawValue: 38)
  public static let ELOOP = Errno(rawValue: 40)

  /// glibc's strerror text.
  public var description: String {
    switch rawValue {
    case 1: return "Operation not permitted"
    case 2: return "No such file or directory"
    case 3: return "No such process"
    case 4: return "Interrupted system call"
    case 5: return "Input/output error"
    case 6: return "No such device or address"
    case 7: return "Argument list too long"
    case 8: return "Exec format error"
    case 9: return "Bad file descriptor"
    case 10: return "No child processes"
    case 11: return "Resource temporarily unavailable"
    case 12: return "Cannot allocate memory"
    case 13: return "Permission denied"
    case 14: return "Bad address"
    case 16: return "Device or resource busy"
    case 17: return "File exists"
    case 19: return "No such device"
    case 20: return "Not a directory"
    case 21: return "Is a directory"
    case 22: return "Invalid argument"
    case 23: return "Too many open files in system"
    case 24: return "Too many open files"
    case 26: return "Text file busy"
    case 27: return "File too large"
    case 28: return "No space left on device"
    case 29: return "Illegal seek"
    case 30: return "Read-only file system"
    case 32: return "Broken pipe"
    case 36: return "File name too long"
    case 38: return "Function not implemented"
    case 40: return "Too many levels of symbolic links"
    case 75: return "Value too large for defined data type"
    case 95: return "Operation not supported"
    case 122: return "Disk quota exceeded"
    default: return "Unknown error \(rawValue)"
    }
  }
}

/// A failed system call: which one, and errno.
public struct SystemCallError: Error, Sendable, CustomStringConvertible {
  public var call: String
  public var errno: Errno
  public init(_ call: String, errno: Errno) {
    self.call = call
    self.errno = errno
  }
  public var description: String { "\(call): \(errno)" }
}

#if !hasFeature(Embedded)
  extension SystemCallError: Equatable {}
#endif
