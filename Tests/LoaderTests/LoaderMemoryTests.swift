// What of elfload is unmapped at the jump: its image and allocated memory, less the handler's pages.
import ElfloadCore
import Testing

@Test func loaderMemoryLeavesOutTheKeptPages() {
  let image = AddressRange(0x7000_0000, 0x7100_0000)
  let chunk = AddressRange(0x9000_0000, 0x9004_0000)
  // (start, length, protection) triples: one page in the middle, one at the end.
  let keep: [UInt64] = [0x7050_0000, 0x2000, 5, 0x70ff_f000, 0x1000, 3]
  let pairs = loaderMemory(image: image, allocated: [chunk], keep: keep)
  #expect(
    pairs == [
      0x7000_0000, 0x50_0000,  // up to the first kept range
      0x7050_2000, 0xaf_d000,  // between the two
      0x9000_0000, 0x4_0000,  // the allocated chunk
    ])
}

@Test func loaderMemoryWithNothingKeptIsImageAndChunks() {
  let image = AddressRange(0x7000_0000, 0x7100_0000)
  #expect(loaderMemory(image: image, allocated: [], keep: []) == [0x7000_0000, 0x100_0000])
  #expect(
    loaderMemory(image: image, allocated: [AddressRange(0x9000_0000, 0x9000_0000)], keep: [])
      == [0x7000_0000, 0x100_0000])
}
