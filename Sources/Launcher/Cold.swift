// --cold: a cold start of one program without dropping every cache on the machine.

enum Cold {
  /// Drops `fd`'s pages from the page cache (posix_fadvise POSIX_FADV_DONTNEED),
  /// then counts the pages that stayed: the kernel keeps a page that some
  /// process maps (a shared library, an interpreter other programs run with).
  static func evict(_ fd: FileDescriptor, path: [UInt8], log: Log) {
    // A memfd (elfload -) or a tmpfs file is memory with no storage behind it: nothing to drop.
    if let type = try? Kernel.fileSystemType(fd),
      type == FileSystemMagic.tmpfs || type == FileSystemMagic.ramfs || type == FileSystemMagic.hugetlbfs
    {
      Kernel.writeError(
        "elfload: --cold: \(text(path)) is in memory (a memfd, or a file on tmpfs), not cached from storage: nothing to drop\n")
      return
    }
    // Dirty pages are not dropped: written back first (a program just built or copied).
    _ = Kernel.syscall(.fdatasync, Int(fd.rawValue))
    let dontNeed = 4
    let r = Kernel.syscall(.fadvise64, Int(fd.rawValue), 0, 0, dontNeed)
    if r != 0 {
      Kernel.writeError("elfload: --cold: \(text(path)): posix_fadvise: \(Errno(rawValue: Int32(-r)))\n")
      return
    }
    guard let status = try? Kernel.status(fd), status.size > 0 else { return }
    let pages = (status.size + pageSize - 1) / pageSize
    // mincore tells the page cache's state only to a user who owns the file
    // or may write it (or root): to anyone else it says every page is there.
    let user = UInt32(truncatingIfNeeded: Kernel.syscall(.geteuid))
    guard user == 0 || user == status.owner || (try? Kernel.access(path, 2)) != nil else {
      log("--cold: \(pages) pages of \(text(path)) asked out of the page cache; what stayed cannot be known (mincore reports the cache only to the file's owner, a writer or root)")
      return
    }
    let stayed = cached(fd, length: status.size, pages: pages)
    if stayed > 0 {
      Kernel.writeError(
        "elfload: --cold: \(stayed) of \(pages) pages of \(text(path)) stay in the page cache (another process maps them)\n")
    } else {
      log("--cold: \(pages) pages of \(text(path)) dropped from the page cache")
    }
  }

  /// Pages of the file in the page cache (mincore of a mapping of it that is never touched).
  static func cached(_ fd: FileDescriptor, length: UInt64, pages: UInt64) -> UInt64 {
    guard let address = try? Kernel.map(0, length, [.read], flags: .shared, fd: fd) else { return 0 }
    defer { Kernel.unmap(address, length) }
    var vector = [UInt8](repeating: 0, count: Int(pages))
    let r = vector.withUnsafeMutableBytes {
      Kernel.syscall(.mincore, Int(bitPattern: UInt(address)), Int(length), Int(bitPattern: $0.baseAddress))
    }
    guard r == 0 else { return 0 }
    return vector.reduce(UInt64(0)) { $0 + UInt64($1 & 1) }
  }
}
