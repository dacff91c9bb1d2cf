// The demand-paging fault handler, run in this process over mappings the tests make: what it maps,
// what it prefetches, the zero-filled staged page, and its counters.
import NoRuntimeZone
import Glibc
import Testing

private let page = 4096

/// A fresh PROT_NONE reservation of `pages` pages: anonymous, or of `fd`.
private func reserve(_ pages: Int, fd: Int32 = -1) -> UInt64 {
  let flags = fd < 0 ? MAP_PRIVATE | MAP_ANONYMOUS : MAP_PRIVATE
  let p = mmap(nil, pages * page, PROT_NONE, flags, fd, 0)!
  precondition(p != MAP_FAILED)
  return UInt64(UInt(bitPattern: p))
}

private func byte(_ address: UInt64) -> UnsafeMutablePointer<UInt8> {
  UnsafeMutablePointer(bitPattern: UInt(address))!
}

/// Runs `body` with elfload's SIGSEGV handler serving `regions`, then puts
/// the previous SIGSEGV action back.
private func withHandler(
  prefetch: UInt32, _ regions: [elfload_demand_region], states initial: [Int: UInt8] = [:],
  _ body: () -> Void
) -> elfload_demand_counters {
  let address = elfload_demand_allocate_states(1 << 12)
  precondition(address > 0)
  let states = UnsafeMutablePointer<UInt8>(bitPattern: address)!
  for (index, state) in initial { states[index] = state }
  defer { munmap(states, 2 * page) }
  var previous = sigaction()
  sigaction(SIGSEGV, nil, &previous)
  elfload_demand_configure(states, prefetch, 0)
  for var region in regions { #expect(elfload_demand_add_region(&region) == 0) }
  #expect(elfload_demand_activate() == 0)
  body()
  sigaction(SIGSEGV, &previous, nil)
  return elfload_demand_counters().pointee
}

private func region(
  _ start: UInt64, pages: Int, firstState: UInt64 = 0, protection: Int32 = PROT_READ | PROT_WRITE
) -> elfload_demand_region {
  elfload_demand_region(
    start: start, end: start + UInt64(pages * page), first_state: firstState, staged_page: 0, staging: 0,
    zero_from: 0, protection: protection, segment: 0, first_page_in_segment: 0, image: 0, anonymous: 0)
}

@Suite("The fault handler", .serialized)
struct HandlerTests {
  @Test func demandMapsOnlyTheTouchedPages() {
    let base = reserve(16)
    defer { munmap(UnsafeMutableRawPointer(bitPattern: UInt(base)), 16 * page) }
    let counters = withHandler(prefetch: 0, [region(base, pages: 16)]) {
      for p in [0, 1, 9] { byte(base + UInt64(p * page + 7)).pointee = UInt8(p + 1) }
      for p in [0, 1, 9] { #expect(byte(base + UInt64(p * page + 7)).pointee == UInt8(p + 1)) }
      #expect(mincorePages(base, 16) == [0, 1, 9])
    }
    #expect(counters.faults == 3)
    #expect(counters.pages_mapped == 3)
    #expect(counters.pages_prefetched == 0)
  }

  @Test func hybridMapsTheNextPagesThatAreStillReserved() {
    let base = reserve(16)
    defer { munmap(UnsafeMutableRawPointer(bitPattern: UInt(base)), 16 * page) }
    let counters = withHandler(prefetch: 4, [region(base, pages: 16)]) {
      #expect(byte(base).pointee == 0)  // fault: pages 0-4
      #expect(byte(base + UInt64(3 * page)).pointee == 0)  // prefetched: no fault
      #expect(byte(base + UInt64(6 * page)).pointee == 0)  // fault: pages 6-10
      #expect(byte(base + UInt64(5 * page)).pointee == 0)  // fault: page 5 only, 6 is mapped
      #expect(byte(base + UInt64(14 * page)).pointee == 0)  // fault: pages 14-15, the region ends
    }
    #expect(counters.faults == 4)
    #expect(counters.pages_mapped == 5 + 5 + 1 + 2)
    #expect(counters.pages_prefetched == 4 + 4 + 0 + 1)
  }

  @Test func twoRegionsKeepTheirOwnProtectionAndState() {
    let base = reserve(8)
    defer { munmap(UnsafeMutableRawPointer(bitPattern: UInt(base)), 8 * page) }
    let readOnly = region(base, pages: 4, protection: PROT_READ)
    let readWrite = region(base + UInt64(4 * page), pages: 4, firstState: 4)
    let counters = withHandler(prefetch: 8, [readOnly, readWrite]) {
      #expect(byte(base + UInt64(3 * page)).pointee == 0)
      byte(base + UInt64(4 * page)).pointee = 1
    }
    // Prefetch stops at each region's end: page 3 alone, then pages 4-7.
    #expect(counters.pages_mapped == 1 + 4)
    #expect(permissions(of: base + UInt64(3 * page)) == "r--p")
    #expect(permissions(of: base + UInt64(4 * page)) == "rw-p")
  }

  @Test("a child forked while a page was being mapped does not wait for its parent's thread")
  func forkedChildDoesNotInheritClaims() {
    // State 1: page 2 is being mapped by a thread, as the fork happens. That
    // thread does not exist in the child: the child must map the page itself.
    let base = reserve(4)
    defer { munmap(UnsafeMutableRawPointer(bitPattern: UInt(base)), 4 * page) }
    _ = withHandler(prefetch: 0, [region(base, pages: 4)], states: [2: 1]) {
      let pid = fork()
      if pid == 0 {
        byte(base + UInt64(2 * page)).pointee = 7
        _exit(byte(base + UInt64(2 * page)).pointee == 7 ? 0 : 1)
      }
      // A child that waits forever does so inside the handler, with every
      // signal blocked: only SIGKILL ends it.
      var status: Int32 = 0
      var waited = 0
      while waitpid(pid, &status, WNOHANG) == 0 {
        if waited == 500 {  // 5 s
          kill(pid, SIGKILL)
          waitpid(pid, &status, 0)
          break
        }
        usleep(10_000)
        waited += 1
      }
      #expect(status == 0, "child status \(status)\(status & 0x7f == SIGKILL ? ": it waited forever" : "")")
    }
  }

  @Test func theStagedPageHasTheFileBytesThenZeros() throws {
    // Three pages of 0xab; the segment's file bytes end 100 bytes into page 2.
    var template = Array("/tmp/elfload-handler-XXXXXX".utf8CString)
    let fd = mkstemp(&template)
    try #require(fd >= 0)
    unlink(String(cString: template))
    defer { close(fd) }
    let content = [UInt8](repeating: 0xab, count: 3 * page)
    #expect(write(fd, content, content.count) == content.count)
    let base = reserve(3, fd: fd)
    defer { munmap(UnsafeMutableRawPointer(bitPattern: UInt(base)), 3 * page) }
    let staging = mmap(nil, page, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, off_t(2 * page))!
    var r = region(base, pages: 3)
    r.staged_page = base + UInt64(2 * page)
    r.staging = UInt64(UInt(bitPattern: staging))
    r.zero_from = r.staged_page + 100
    let counters = withHandler(prefetch: 4, [r]) {
      #expect(byte(r.staged_page + 99).pointee == 0xab)
      #expect(byte(r.staged_page + 100).pointee == 0)
      #expect(byte(r.staged_page + UInt64(page - 1)).pointee == 0)
      #expect(byte(base).pointee == 0xab)  // pages 0-1: prefetch stops before the staged page
    }
    #expect(counters.faults == 2)
    #expect(counters.pages_mapped == 3)
    #expect(counters.pages_prefetched == 1)
  }
}

/// Which of `pages` pages from `base` are resident (mincore).
private func mincorePages(_ base: UInt64, _ pages: Int) -> [Int] {
  var vector = [UInt8](repeating: 0, count: pages)
  guard mincore(UnsafeMutableRawPointer(bitPattern: UInt(base)), pages * page, &vector) == 0 else {
    return []
  }
  return vector.indices.filter { vector[$0] & 1 != 0 }
}

/// The permissions column of the /proc/self/maps line holding `address`.
private func permissions(of address: UInt64) -> String? {
  guard let file = fopen("/proc/self/maps", "r") else { return nil }
  defer { fclose(file) }
  var line = [CChar](repeating: 0, count: 512)
  while fgets(&line, Int32(line.count), file) != nil {
    let text = String(cString: line)
    let fields = text.split(separator: " ")
    let bounds = fields[0].split(separator: "-").compactMap { UInt64($0, radix: 16) }
    if bounds.count == 2, address >= bounds[0], address < bounds[1] { return String(fields[1]) }
  }
  return nil
}
