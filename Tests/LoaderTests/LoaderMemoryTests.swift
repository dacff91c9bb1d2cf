// What of elfload is unmapped at the jump: its image and heap, less the handler's pages.
import ELF
import Testing

@testable import Loader

@Test func loaderMemoryLeavesOutTheKeptPages() {
  let image = AddressRange(0x7000_0000, 0x7100_0000)
  let heap = AddressRange(0x9000_0000, 0x9004_0000)
  // (start, length, protection) triples: one page in the middle, one at the end.
  let keep: [UInt64] = [0x7050_0000, 0x2000, 5, 0x70ff_f000, 0x1000, 3]
  let pairs = Launcher.loaderMemory(image: image, heap: heap, keep: keep)
  #expect(
    pairs == [
      0x7000_0000, 0x50_0000,  // up to the first kept range
      0x7050_2000, 0xaf_d000,  // between the two
      0x9000_0000, 0x4_0000,  // the heap
    ])
}

@Test func loaderMemoryWithNothingKeptIsImageAndHeap() {
  let image = AddressRange(0x7000_0000, 0x7100_0000)
  #expect(Launcher.loaderMemory(image: image, heap: nil, keep: []) == [0x7000_0000, 0x100_0000])
  #expect(
    Launcher.loaderMemory(image: image, heap: AddressRange(0x9000_0000, 0x9000_0000), keep: [])
      == [0x7000_0000, 0x100_0000])
}
