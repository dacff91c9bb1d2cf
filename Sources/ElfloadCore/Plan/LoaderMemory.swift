// What of the loader goes at the jump: its image and the memory it allocated, less what stays.

/// (start, length) pairs to unmap: `image` and `allocated`, less the pages in
/// `keep` ((start, length, protection) triples, page aligned).
public func loaderMemory(image: AddressRange, allocated: [AddressRange], keep: [UInt64]) -> [UInt64] {
  var pieces = [image]
  for i in stride(from: 0, to: keep.count - 2, by: 3) {
    let kept = AddressRange(keep[i], keep[i] + keep[i + 1])
    pieces = pieces.flatMap { piece -> [AddressRange] in
      guard kept.start < piece.end, kept.end > piece.start else { return [piece] }
      return [AddressRange(piece.start, kept.start), AddressRange(kept.end, piece.end)].filter { !$0.isEmpty }
    }
  }
  pieces += allocated.filter { !$0.isEmpty }
  return pieces.flatMap { [$0.start, $0.count] }
}
