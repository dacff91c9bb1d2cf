// swift-tools-version:6.0
// elfload: a user-space ELF program loader for Linux x86-64.
import PackageDescription

// The launcher (what runs before every program) is built like ld.so: Embedded Swift, no C
// library, no Swift runtime, a self-relocating static PIE (it loads wherever the kernel puts
// it, so no program's fixed addresses collide with it). Everything else is ordinary Swift.
let embedded: [SwiftSetting] = [
  .enableExperimentalFeature("Embedded"),
  // Embedded Swift needs whole-module builds; there is no thread pointer for a stack canary.
  .unsafeFlags(["-wmo", "-Xfrontend", "-disable-stack-protector"]),
  // Small is fast here: the launcher's every page is a page fault before the program starts.
  .unsafeFlags(["-Osize"], .when(configuration: .release)),
]
// C that runs where no C library is: no canary, no builtin library calls it does not define.
let freestanding: [CSetting] = [
  .unsafeFlags(["-ffreestanding", "-fno-stack-protector", "-fPIC"]),
  .unsafeFlags(["-Os"], .when(configuration: .release)),
]
// A static PIE with no C library. ld.bfd: gold has no --no-dynamic-linker.
let launcherLinkFlags: [String] = [
  "-Xclang-linker", "-nostdlib", "-Xclang-linker", "-static-pie", "-Xclang-linker", "-fuse-ld=bfd",
  "-Xlinker", "-z", "-Xlinker", "noexecstack", "-Xlinker", "--no-undefined",
]

let package = Package(
  name: "elfload",
  products: [
    .executable(name: "elfload", targets: ["Launcher"]),
    .executable(name: "elfload-tools", targets: ["Tools"]),
    .executable(name: "elfload-bench", targets: ["elfload-bench"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2")
  ],
  targets: [
    // The kernel interface's C side: one raw-syscall convention, the structures' layouts.
    .target(name: "CKernel", cSettings: freestanding),
    // The no-runtime zone: the jump, and the demand pager's SIGSEGV handler and watcher.
    .target(name: "NoRuntimeZone", dependencies: ["CKernel"], cSettings: freestanding),
    // The launcher's start (_start, self-relocation) and the symbols Embedded Swift needs.
    .target(name: "LauncherRuntime", dependencies: ["CKernel"], cSettings: freestanding),
    // Shared pure code and the typed kernel interface: the ELF parser, load plan, stack image,
    // #! lines, open_exec, run options and report formats. One source folder, compiled twice:
    // as this ordinary module (tests, tools, fuzzer), and as part of the launcher's own module
    // in Embedded Swift (Sources/Launcher/ElfloadCore is a symbolic link to it): one module,
    // so whole-module optimisation sees all of the launcher and emits each generic once.
    .target(name: "ElfloadCore", dependencies: ["CKernel"]),
    // elfload: the freestanding launcher.
    .executableTarget(
      name: "Launcher", dependencies: ["CKernel", "NoRuntimeZone", "LauncherRuntime"],
      swiftSettings: embedded, linkerSettings: [.unsafeFlags(launcherLinkFlags)]),
    // elfload-tools: help, version, inspect, heatmap, usage errors (ArgumentParser, Foundation).
    .executableTarget(
      name: "Tools",
      dependencies: ["ElfloadCore", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
    // The benchmark: workloads × loaders, tables and SVG charts (Foundation is fine here).
    .executableTarget(name: "elfload-bench"),
    .testTarget(name: "ELFTests", dependencies: ["ElfloadCore"]),
    .testTarget(name: "LoaderTests", dependencies: ["ElfloadCore", "NoRuntimeZone", "CKernel"]),
    .testTarget(name: "DifferentialTests"),
  ]
)
