// The fault handler runs inside the loaded program, on its threads, with its TLS: it may call nothing
// it does not own. This reads the compiled object and checks that.
import Foundation
import Testing

@Suite("The no-runtime zone")
struct NoRuntimeZoneTests {
  /// demand.c's object file beside the test bundle (the same build).
  static var object: String? {
    let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    let candidate = exe.deletingLastPathComponent().appendingPathComponent("NoRuntimeZone.build/demand.c.o").path
    if FileManager.default.fileExists(atPath: candidate) { return candidate }
    // The test bundle is one level down in some layouts.
    let up = exe.deletingLastPathComponent().deletingLastPathComponent()
    let other = up.appendingPathComponent("NoRuntimeZone.build/demand.c.o").path
    return FileManager.default.fileExists(atPath: other) ? other : nil
  }

  @Test(
    "the SIGSEGV handler calls no library function, reads no thread pointer, and lives in its own section")
  func handlerIsSelfContained() throws {
    let path = try #require(Self.object, "demand.c.o not found beside the test bundle")
    let dump = run(["/usr/bin/objdump", "-dr", "--no-show-raw-insn", path])
    try #require(dump.ending == .exited(0), "\(dump)")
    // Functions that run before the jump may use the C library; nothing else.
    let setUp: Set<String> = ["elfload_demand_configure", "elfload_demand_add_region"]
    var function = ""
    var section = ""
    var offenders: [String] = []
    for line in dump.stdout.split(separator: "\n") {
      if line.hasPrefix("Disassembly of section ") {
        section = String(line.dropFirst("Disassembly of section ".count).dropLast())
      } else if line.hasSuffix(">:"), let open = line.firstIndex(of: "<") {
        function = String(line[line.index(after: open)..<line.index(line.endIndex, offsetBy: -2)])
        // Only this section's pages stay mapped after the jump.
        if section != "elfload_handler" { offenders.append("\(function) is in section \(section)") }
      } else if line.contains("R_X86_64_PLT32") || line.contains("R_X86_64_GOTPCREL") || line.contains("%fs:")
      {
        if !setUp.contains(function) { offenders.append("\(function): \(line)") }
      } else if line.contains("R_X86_64_"), line.contains(".data.rel.ro") || line.contains("\t.rodata") || line.contains("\t.data") || line.contains("\t.bss") {
        // Constants and state outside the file's sections are gone after the jump
        // (an initialised local array of addresses is copied from .data.rel.ro).
        if !setUp.contains(function) && function != "elfload_demand_activate" {
          offenders.append("\(function): \(line)")
        }
      }
    }
    #expect(offenders.isEmpty, "\(offenders.joined(separator: "\n"))")
    #expect(dump.stdout.contains("<on_fault>:"))
  }
}
