// swift-tools-version:6.0
// elfload: a user-space ELF program loader for Linux x86-64.
import PackageDescription

// The loader binary is a fully static executable linked at a fixed address.
// - static: a dynamically linked Swift program spends 2-4 ms in ld.so before
//   main; a static one starts in ~0.7 ms (DESIGN.md pitfall 7).
// - not static-PIE: SwiftPM always adds DT_RUNPATH ($ORIGIN) to executables, and
//   glibc's static-PIE self-relocation asserts that there is none, so a
//   static-PIE elfload built by plain `swift build` would crash before main.
// - at 0x70000000: the default 0x400000 is where static non-PIE programs want
//   to be. Non-PIC objects in libc.a need the image below 2 GiB. Programs' own
//   heaps start near 0x400000 + their size, so 1.75 GiB leaves them room.
// ArgumentParser brings FoundationEssentials, which needs these three archives
// when linked statically; nothing of it runs on the program-launch path.
let staticLoaderLinkFlags: [String] = [
  "-static-executable",
  "-Xlinker", "-Ttext-segment=0x70000000",
  "-l_FoundationCollections", "-l_FoundationCShims", "-lswiftSynchronization",
]

let package = Package(
  name: "elfload",
  products: [
    .executable(name: "elfload", targets: ["elfload"])
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2")
  ],
  targets: [
    // What Swift cannot say: the entry trampoline and raw system calls.
    .target(name: "CElfload"),
    // Parse and validate ELF files. No system calls; never traps on bad input.
    .target(name: "ELF"),
    // Load plans, policies, the initial stack and the jump.
    .target(name: "Loader", dependencies: ["ELF", "CElfload"]),
    // The command line, shared by the executable and the tests.
    .target(
      name: "ElfloadCLI",
      dependencies: [
        "ELF", "Loader",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ]),
    .executableTarget(
      name: "elfload",
      dependencies: ["ElfloadCLI"],
      linkerSettings: [.unsafeFlags(staticLoaderLinkFlags)]),
    // The benchmark: workloads × loaders, tables and SVG charts (Foundation is fine here).
    .executableTarget(name: "elfload-bench"),
    .testTarget(name: "ELFTests", dependencies: ["ELF"]),
    .testTarget(name: "LoaderTests", dependencies: ["Loader", "ELF", "ElfloadCLI", "CElfload"]),
    .testTarget(name: "DifferentialTests"),
  ]
)
