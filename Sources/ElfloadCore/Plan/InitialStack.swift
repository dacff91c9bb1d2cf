// The initial stack image, byte for byte as the kernel's create_elf_tables lays it out.

/// The top of a new process's stack, built in a buffer and copied into place
/// by the entry trampoline. From high to low addresses:
///
///     stack top ─ 8 zero bytes
///                 AT_EXECFN string
///                 environment strings, then argument strings (argv[0] lowest)
///                 (random gap of 0..8191 bytes, then 16-byte alignment)
///                 AT_PLATFORM string "x86_64"
///                 16 AT_RANDOM bytes
///                 (padding so that rsp ends up 16-byte aligned)
///                 auxv pairs, AT_NULL
///                 envp pointers, NULL
///                 argv pointers, NULL
///     rsp ─────── argc
public struct InitialStack: Equatable, Sendable {
  /// The bytes from `base` up to the stack top.
  public var image: [UInt8]
  /// The address of `image[0]`, which is also rsp: argc is the lowest word.
  public var base: UInt64
  public var stackTop: UInt64
  public var argumentsRange: AddressRange
  public var environmentRange: AddressRange
  public var execfnAddress: UInt64
  public var platformAddress: UInt64?
  public var randomAddress: UInt64
  /// The auxv as the program will see it (AT_NULL included).
  public var auxv: [AuxvEntry]
  public var auxvAddress: UInt64

  public var stackPointer: UInt64 { base }

  /// Lays out the stack. `auxv` is the list to give the program, in order;
  /// the values of AT_EXECFN, AT_PLATFORM and AT_RANDOM are replaced with the
  /// addresses of the strings and bytes placed here. `randomGap` is the
  /// kernel's `arch_align_stack` offset (below 8192; 0 without ASLR).
  public init(
    arguments: [[UInt8]], environment: [[UInt8]], execfn: [UInt8], platform: [UInt8]?,
    randomBytes: [UInt8], auxv template: [AuxvEntry], stackTop: UInt64, randomGap: UInt64
  ) {
    precondition(randomBytes.count == 16, "AT_RANDOM is 16 bytes")
    self.stackTop = stackTop
    // Strings, top down: the 8-byte end marker, execfn, then copy_strings
    // pushes envp and argv from the last string to the first.
    var strings: [UInt8] = []
    for s in arguments { strings += s + [0] }
    let argumentsLength = UInt64(strings.count)
    for s in environment { strings += s + [0] }
    let environmentLength = UInt64(strings.count) - argumentsLength
    strings += execfn + [0]
    strings += [UInt8](repeating: 0, count: 8)
    let stringsBase = stackTop - UInt64(strings.count)
    argumentsRange = AddressRange(stringsBase, stringsBase + argumentsLength)
    environmentRange = AddressRange(argumentsRange.end, argumentsRange.end + environmentLength)
    execfnAddress = environmentRange.end

    var p = (stringsBase - randomGap) & ~15
    if let platform {
      p -= UInt64(platform.count + 1)
      platformAddress = p
    } else {
      platformAddress = nil
    }
    p -= 16
    randomAddress = p

    var vector = template.filter { $0.tag != .null }
    for i in vector.indices {
      switch vector[i].tag {
      case .execfn: vector[i].value = execfnAddress
      case .random: vector[i].value = randomAddress
      case .platform: vector[i].value = platformAddress ?? 0
      default: break
      }
    }
    vector.append(AuxvEntry(.null, 0))
    auxv = vector

    let words = UInt64(vector.count * 2)
    let items = UInt64(arguments.count + 1 + environment.count + 1 + 1)
    let sp = (p - words * 8 - items * 8) & ~15
    base = sp
    auxvAddress = sp + (items * 8)

    // Now write it all into a buffer that starts at sp.
    var bytes = [UInt8](repeating: 0, count: Int(stackTop - sp))
    func put(_ value: UInt64, at address: UInt64) {
      var v = value.littleEndian
      let offset = Int(address - sp)
      withUnsafeBytes(of: &v) { raw in
        for i in 0..<8 { bytes[offset + i] = raw[i] }
      }
    }
    func copy(_ source: [UInt8], at address: UInt64) {
      let offset = Int(address - sp)
      for (i, b) in source.enumerated() { bytes[offset + i] = b }
    }
    copy(strings, at: stringsBase)
    if let platform, let at = platformAddress { copy(platform, at: at) }
    copy(randomBytes, at: randomAddress)
    var cursor = sp
    put(UInt64(arguments.count), at: cursor)
    cursor += 8
    var stringAddress = argumentsRange.start
    for s in arguments {
      put(stringAddress, at: cursor)
      cursor += 8
      stringAddress += UInt64(s.count + 1)
    }
    cursor += 8
    for s in environment {
      put(stringAddress, at: cursor)
      cursor += 8
      stringAddress += UInt64(s.count + 1)
    }
    cursor += 8
    for entry in vector {
      put(entry.tag.rawValue, at: cursor)
      put(entry.value, at: cursor + 8)
      cursor += 16
    }
    image = bytes
  }
}
