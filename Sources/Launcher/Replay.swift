// --mode replay: a profile (Sources/ElfloadCore/Plan/Profile.swift) read back, checked against the
// files being loaded, and turned into the address runs the pager installs before the jump.

/// A profile read and matched to the files being loaded.
struct Replay {
  var path: [UInt8]
  var profile: Profile

  /// Reads the profile and checks it against the open files (program, then
  /// interpreter): nil when it was recorded for other files (said in one
  /// line: the run goes on as demand). Read before anything is placed: what
  /// it allocates must not land where the program is about to go.
  static func load(_ path: [UInt8], files: [FileDescriptor]) throws(LoadError) -> Replay? {
    let profile: Profile
    do {
      profile = try Profile.parse(try read(path))
    } catch {
      throw .profile(path: path, error)
    }
    var identities: [FileIdentity] = []
    for fd in files {
      guard let status = try? Kernel.status(fd) else { return nil }
      // (elfload record refuses such a program: a profile cannot be for it.)
      if status.links == 0 {
        Kernel.writeError(
          "elfload: --profile \(text(path)): the program is in memory (a memfd or a deleted file), which a profile cannot name (it names files by device, inode, size and mtime); ignored, paging on demand\n")
        return nil
      }
      identities.append(FileIdentity(status))
    }
    guard profile.images.map({ $0.identity }) == identities else {
      let which = profile.images.first.map { text($0.path) } ?? "?"
      Kernel.writeError(
        "elfload: --profile \(text(path)) was recorded for other files (\(which)\(profile.images.count > 1 ? " and its interpreter" : "")): device, inode, size or mtime differ; ignored, paging on demand\n"
      )
      return nil
    }
    return Replay(path: path, profile: profile)
  }

  /// The recorded pages as address runs, sorted and merged, for the pager to
  /// install. Called once every segment is mapped (it allocates).
  func runs(_ loads: [ImageLoad], log: Log) throws(LoadError) -> [AddressRange] {
    var runs: [AddressRange] = []
    for (image, load) in loads.enumerated() {
      var seen: [Int] = []
      for segment in load.plan.segments where !seen.contains(segment.programHeaderIndex) {
        seen.append(segment.programHeaderIndex)
        let first = pageStart(segment.memory.start)
        let pages = (pageStart(segment.memory.end + pageSize - 1) - first) / pageSize
        for run in profile.runs(image: image, segment: segment.programHeaderIndex) {
          guard run.first + run.count <= pages else {
            throw .profile(
              path: path,
              .pageOutside(image: image, segment: segment.programHeaderIndex, page: run.first + run.count - 1, pages: pages))
          }
          runs.append(AddressRange(first + run.first * pageSize, first + (run.first + run.count) * pageSize))
        }
      }
      // A page of a segment this image does not have.
      if let stray = profile.pages.first(where: { $0.image == image && !seen.contains($0.segment) }) {
        throw .profile(path: path, .pageOutside(image: image, segment: stray.segment, page: stray.page, pages: 0))
      }
    }
    let total = runs.reduce(UInt64(0)) { $0 + $1.pageCount }
    log("replay: \(profile.pages.count) recorded touches, \(total) pages in \(runs.count) runs from \(text(path))")
    return runs
  }

  /// The whole file, up to the largest a profile can be.
  static func read(_ path: [UInt8]) throws(ProfileError) -> [UInt8] {
    let fd: FileDescriptor
    let status: FileStatus
    do {
      // (Not blocking: a FIFO must not hang the run; it is refused below.)
      fd = try Kernel.open(path, OpenFlags.readOnly | OpenFlags.nonBlocking | OpenFlags.closeOnExec)
      status = try Kernel.status(fd)
    } catch {
      throw .unreadable(error)
    }
    defer { Kernel.close(fd) }
    guard status.type == FileType.regular else { throw .notRegularFile(FileType.name(status.type)) }
    guard status.size <= Profile.largestFile else { throw .tooLarge(bytes: status.size) }
    do { return try Kernel.read(fd, count: Int(status.size), at: 0) } catch { throw .unreadable(error) }
  }
}
