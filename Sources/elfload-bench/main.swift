// elfload-bench: workloads × loaders × repetitions, each run in a fresh process, with warm-up runs;
// medians and spread of wall time, peak RSS and page faults; a CSV, Markdown tables and SVG charts
// (time and memory per workload per loader, prefetch depth against time and faults, start-up
// overhead against native). Baselines in the same run: the program run natively (the kernel's
// loader) and, when the Python package is installed, ulexecve (an existing user-space execve).
//
//   swift run -c release elfload-bench [--quick] [--runs N] [--out DIR]
import Foundation

// MARK: - Command line

struct Options {
  var runs = 21
  var warmup = 3
  var quick = false
  var out = "Benchmarks/results"
  var elfload = ".build/release/elfload"
  var samples = "Samples/build"
  /// Redraw the charts of an earlier run from DIR/results.csv, and run nothing.
  var redraw: String?

  static func parse(_ args: [String]) -> Options {
    var o = Options()
    var i = 0
    func value() -> String {
      i += 1
      guard i < args.count else { fail("\(args[i - 1]) needs a value") }
      return args[i]
    }
    while i < args.count {
      switch args[i] {
      case "--quick": o.quick = true
      case "--runs":
        guard let n = Int(value()), n > 0 else { fail("--runs needs a positive number") }
        o.runs = n
      case "--out": o.out = value()
      case "--elfload": o.elfload = value()
      case "--samples": o.samples = value()
      case "--redraw": o.redraw = value()
      case "-h", "--help":
        print(
          """
          usage: elfload-bench [--quick] [--runs N] [--out DIR] [--elfload PATH] [--samples DIR]

          Runs every workload natively and under each loader (elfload eager, demand and
          hybrid --prefetch 16, hybrid --prefetch auto and replay (of a profile elfload record
          wrote of the workload first) with each pager, named with it (demand-signal, demand-uffd, ...),
          and ulexecve when installed), N times each after warm-up
          runs, in fresh processes; then a prefetch-depth sweep on the 64 MiB bss pass.
          Writes DIR/results.csv, DIR/results.md and the charts DIR/time.svg,
          DIR/memory.svg, DIR/faults.svg, DIR/prefetch.svg and DIR/startup.svg.

            --quick      5 runs, fewer workloads and prefetch depths (about a minute)
            --runs N     runs per cell (default 21)
            --out DIR    where to write (default Benchmarks/results)
            --redraw DIR draw the charts again from DIR/results.csv (no runs)
          """)
        exit(0)
      default: fail("unknown option \(args[i]) (see --help)")
      }
      i += 1
    }
    if o.quick { o.runs = min(o.runs, 5) }
    return o
  }
}

func fail(_ message: String) -> Never {
  FileHandle.standardError.write(Data("elfload-bench: \(message)\n".utf8))
  exit(2)
}

// MARK: - Running a command

/// One cell's numbers, from Benchmarks/runbench.c (built static: the peak RSS
/// the kernel reports for a child is at least its launcher's RSS at exec, so
/// the launcher must be tiny; this Foundation process is 20 MiB).
struct Cell {
  var workload: String
  var loader: String
  var runs: Int
  var median: Double  // ms
  var p10: Double
  var p90: Double
  var rss: Double  // KiB, the largest peak seen
  var faults: Double  // minor faults per run
  var status: Int
  var expectedStatus: Int
  var loaderFaults: Int?
  var prefetched: Int?
  /// The userfaultfd server's CPU time (ms), from the --stats-json run; nil without a server.
  var serverCPU: Double? = nil

  var ok: Bool { status == expectedStatus }
}

let runbench = ".build/bench/runbench-static"

func ensureRunbench() {
  if FileManager.default.isExecutableFile(atPath: runbench) { return }
  try? FileManager.default.createDirectory(atPath: ".build/bench", withIntermediateDirectories: true)
  let cc = Process()
  cc.executableURL = URL(fileURLWithPath: "/usr/bin/env")
  cc.arguments = ["cc", "-O2", "-static", "-o", runbench, "Benchmarks/runbench.c"]
  guard (try? cc.run()) != nil else { fail("cannot run cc to build \(runbench)") }
  cc.waitUntilExit()
  guard cc.terminationStatus == 0 else { fail("building \(runbench) failed") }
}

/// Runs `argv` `runs` times after warm-up runs, through runbench.
func runbenchCell(_ argv: [String], runs: Int, warmup: Int) -> (Double, Double, Double, Double, Double, Int)?
{
  let p = Process()
  p.executableURL = URL(fileURLWithPath: runbench)
  p.arguments = ["-n", "\(runs)", "-w", "\(warmup)", "--"] + argv
  let pipe = Pipe()
  p.standardOutput = pipe
  guard (try? p.run()) != nil else { return nil }
  let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
  p.waitUntilExit()
  let f = out.split(separator: " ").map { Double($0.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1 }
  guard f.count == 7 else { return nil }
  return (f[0] / 1000, f[1] / 1000, f[2] / 1000, f[3], f[4], Int(f[6]))
}

// MARK: - Loaders and workloads

struct Loader {
  var name: String
  var prefix: [String]
  /// elfload options, for the extra run that reads its counters.
  var elfloadOptions: [String]?
  /// --mode replay with this pager: each workload is recorded first (elfload
  /// record, one run), and its profile replayed.
  var replayPager: String? = nil
}

struct Workload {
  var name: String
  var argv: [String]
}

let options = Options.parse(Array(CommandLine.arguments.dropFirst()))
let fm = FileManager.default

/// The machine: processors online (nproc), kernel release and architecture, distribution.
func machineDescription() -> String {
  var u = utsname()
  uname(&u)
  func field<T>(_ value: inout T) -> String {
    withUnsafePointer(to: &value) {
      $0.withMemoryRebound(to: CChar.self, capacity: MemoryLayout<T>.size) { String(cString: $0) }
    }
  }
  return
    "\(ProcessInfo.processInfo.activeProcessorCount) CPUs, Linux \(field(&u.release)) \(field(&u.machine)) (\(ProcessInfo.processInfo.operatingSystemVersionString))"
}

/// What each chart says under its title: runs per cell and the machine (the
/// sentence results.md opens with).
func runNote(runs: Int, warmup: Int, machine: String) -> String {
  "\(runs) runs per cell after \(warmup) warm-up runs, fresh processes; \(machine).\(quickLook(runs))"
}

/// What a chart of fewer than 11 runs a cell says of itself.
func quickLook(_ runs: Int) -> String {
  runs < 11 ? " A quick look: from so few runs a cell moves by tens of percent between runs." : ""
}

/// The four charts of a run.
func drawCharts(
  cells: [Cell], sweep: [(depth: Int, cell: Cell)], startup: [Cell], note: String, into dir: String
) {
  let charts = [
    (
      "time.svg",
      Charts.panels(
        title: "Wall time per workload (median, whiskers p10–p90)", unit: "ms", note: note, cells: cells
      ) {
        ($0.median, $0.p10, $0.p90)
      }
    ),
    (
      "memory.svg",
      Charts.panels(title: "Peak RSS per workload (median)", unit: "MiB", note: note, cells: cells) {
        ($0.rss / 1024, nil, nil)
      }
    ),
    (
      "faults.svg",
      Charts.panels(
        title: "Faults elfload's pager served per workload (native and eager: none; the kernel's own not counted)",
        unit: "faults", note: note, cells: cells.filter { $0.loaderFaults != nil }, counts: true
      ) {
        (Double($0.loaderFaults ?? 0), nil, nil)
      }
    ),
    (
      "prefetch.svg",
      Charts.prefetch(sweep: sweep, reference: cells.filter { $0.workload == "bench3 bss" }, note: note)
    ),
    ("startup.svg", Charts.startup(startup, note: note)),
  ]
  for (name, svg) in charts {
    guard fm.createFile(atPath: "\(dir)/\(name)", contents: Data(svg.utf8)) else {
      fail("cannot write \(dir)/\(name)")
    }
  }
}

if let dir = options.redraw {
  guard let text = try? String(contentsOfFile: "\(dir)/results.csv", encoding: .utf8) else {
    fail("cannot read \(dir)/results.csv")
  }
  var cells: [Cell] = []
  var sweep: [(depth: Int, cell: Cell)] = []
  var startup: [Cell] = []
  for line in text.split(separator: "\n").dropFirst() {
    let f = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
    guard f.count == 12 || f.count == 13, let runs = Int(f[3]), let median = Double(f[4]), let p10 = Double(f[5]),
      let p90 = Double(f[6]), let rss = Double(f[7]), let faults = Double(f[8])
    else { fail("\(dir)/results.csv: not a results line: \(line)") }
    let ok = f[11] == "true"
    // (A run before the loaders named their pager: its "demand", "hybrid16", ... were the signal pager's.)
    let cell = Cell(
      workload: f[1], loader: Charts.pagerNamed(f[2]), runs: runs, median: median, p10: p10, p90: p90, rss: rss, faults: faults,
      status: ok ? 0 : 1, expectedStatus: 0, loaderFaults: Int(f[9]), prefetched: Int(f[10]),
      serverCPU: f.count == 13 ? Double(f[12]) : nil)
    switch f[0] {
    case "workloads": cells.append(cell)
    case "prefetch": sweep.append((Int(cell.loader.dropFirst("hybrid".count).prefix { $0.isNumber }) ?? 0, cell))
    default: startup.append(cell)
    }
  }
  // The run's own sentence on runs and machine, from its results.md; else only what the CSV knows.
  let recorded = (try? String(contentsOfFile: "\(dir)/results.md", encoding: .utf8))?
    .split(separator: "\n").first { $0.contains(" runs per cell after ") }
  let runs = Set((cells + startup + sweep.map(\.cell)).map(\.runs)).sorted().map(String.init).joined(
    separator: "/")
  let fewest = (cells + startup + sweep.map(\.cell)).map(\.runs).min() ?? 0
  let note = recorded.map(String.init) ?? "\(runs) runs per cell; machine not recorded.\(quickLook(fewest))"
  drawCharts(cells: cells, sweep: sweep, startup: startup, note: note, into: dir)
  print("redrew \(dir)/time.svg, memory.svg, faults.svg, prefetch.svg, startup.svg")
  exit(0)
}
guard fm.isExecutableFile(atPath: options.elfload) else {
  fail("\(options.elfload) is missing: swift build -c release first")
}
func sample(_ flavour: String, _ name: String) -> String { "\(options.samples)/\(flavour)/\(name)" }
guard fm.isExecutableFile(atPath: sample("static", "hello")) else {
  fail("the samples are not built: make -C Samples")
}

/// ulexecve, when its Python package is installed: its interpreter's real path.
let ulexecvePython: String? = {
  let probe = Process()
  probe.executableURL = URL(fileURLWithPath: "/usr/bin/env")
  probe.arguments = ["python3", "-c", "import ulexecve, sys; print(sys.executable)"]
  let pipe = Pipe()
  probe.standardOutput = pipe
  probe.standardError = FileHandle.nullDevice
  guard (try? probe.run()) != nil else { return nil }
  probe.waitUntilExit()
  guard probe.terminationStatus == 0 else { return nil }
  let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
  return out.trimmingCharacters(in: .whitespacesAndNewlines)
}()

/// A loader that runs elfload with these options.
func elfloadLoader(_ name: String, _ opts: [String]) -> Loader {
  Loader(name: name, prefix: [options.elfload] + opts, elfloadOptions: opts)
}

var loaders = [
  Loader(name: "native", prefix: [], elfloadOptions: nil),
  Loader(name: "eager", prefix: [options.elfload, "--mode", "eager"], elfloadOptions: ["--mode", "eager"]),
  Loader(
    name: "demand-signal", prefix: [options.elfload, "--mode", "demand", "--pager", "signal"],
    elfloadOptions: ["--mode", "demand", "--pager", "signal"]),
  Loader(
    name: "hybrid16-signal", prefix: [options.elfload, "--mode", "hybrid", "--prefetch", "16", "--pager", "signal"],
    elfloadOptions: ["--mode", "hybrid", "--prefetch", "16", "--pager", "signal"]),
  elfloadLoader("auto-signal", ["--mode", "hybrid", "--prefetch", "auto", "--pager", "signal"]),
  Loader(name: "replay-signal", prefix: [], elfloadOptions: nil, replayPager: "signal"),
]
// The userfaultfd pager, where the kernel grants it (CAP_SYS_PTRACE: root).
ensureRunbench()
if runbenchCell([options.elfload, "--mode", "demand", "--pager", "uffd", "/bin/true"], runs: 1, warmup: 0)?.5 == 0 {
  loaders.append(
    Loader(
      name: "demand-uffd", prefix: [options.elfload, "--mode", "demand", "--pager", "uffd"],
      elfloadOptions: ["--mode", "demand", "--pager", "uffd"]))
  loaders.append(
    Loader(
      name: "hybrid16-uffd", prefix: [options.elfload, "--mode", "hybrid", "--prefetch", "16", "--pager", "uffd"],
      elfloadOptions: ["--mode", "hybrid", "--prefetch", "16", "--pager", "uffd"]))
  // The server's other placement: one normal-priority thread following the faulting thread (the design before).
  loaders.append(elfloadLoader("demand-uffd-single", ["--mode", "demand", "--pager", "uffd", "--uffd-server", "single"]))
  loaders.append(elfloadLoader("auto-uffd", ["--mode", "hybrid", "--prefetch", "auto", "--pager", "uffd"]))
  loaders.append(Loader(name: "replay-uffd", prefix: [], elfloadOptions: nil, replayPager: "uffd"))
}
if let python = ulexecvePython {
  loaders.append(Loader(name: "ulexecve", prefix: [python, "-m", "ulexecve"], elfloadOptions: nil))
}

var workloads = [
  Workload(name: "hello", argv: [sample("static", "hello")]),
  Workload(name: "bench1 args", argv: [sample("static", "bench1_args"), "x", "y"]),
  Workload(name: "bench2 pages", argv: [sample("static", "bench2_pages"), "50"]),
  Workload(name: "bench3 bss", argv: [sample("static", "bench3_bss")]),
  Workload(name: "sparse", argv: [sample("static", "sparse")]),
]
if !options.quick {
  workloads.append(Workload(name: "hello (dynamic)", argv: [sample("dynamic", "hello")]))
  if fm.isExecutableFile(atPath: "/usr/bin/busybox") {
    workloads.append(Workload(name: "busybox sh", argv: ["/usr/bin/busybox", "sh", "-c", "x=1; echo $x"]))
  }
  if fm.isExecutableFile(atPath: "/usr/bin/python3") {
    workloads.append(Workload(name: "python3 -c pass", argv: ["/usr/bin/python3", "-c", "pass"]))
  }
}

ensureRunbench()

/// The loader's own counters (faults served, pages prefetched, the server's CPU ms), from one
/// extra run with --stats-json.
func counters(_ loader: Loader, _ workload: Workload) -> (Int, Int, Double?)? {
  guard let opts = loader.elfloadOptions, opts.contains("demand") || opts.contains("hybrid") || opts.contains("replay")
  else {
    return nil
  }
  let json = NSTemporaryDirectory() + "elfload-bench-\(getpid()).json"
  defer { try? fm.removeItem(atPath: json) }
  _ = runbenchCell([options.elfload] + opts + ["--stats-json", json] + workload.argv, runs: 1, warmup: 0)
  guard let data = fm.contents(atPath: json),
    let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
    let faults = object["loader_faults"] as? Int, let prefetched = object["pages_prefetched"] as? Int
  else { return nil }
  return (faults, prefetched, object["server_cpu_ms"] as? Double)
}

/// The status the program ends with natively, per workload.
var nativeStatus: [String: Int] = [:]

/// A replay loader made concrete for a workload: the workload recorded
/// (once per workload and pager), then its profile replayed.
var profiles: [String: String] = [:]
@MainActor func concrete(_ loader: Loader, _ workload: Workload) -> Loader {
  guard let pager = loader.replayPager else { return loader }
  let key = "\(workload.name)|\(pager)"
  let profile = profiles[key] ?? {
    let path = NSTemporaryDirectory() + "elfload-bench-\(getpid())-\(profiles.count).profile"
    _ = runbenchCell([options.elfload, "record", "--profile", path, "--pager", pager] + workload.argv, runs: 1, warmup: 0)
    profiles[key] = path
    return path
  }()
  return elfloadLoader(loader.name, ["--mode", "replay", "--profile", profile, "--pager", pager])
}

@MainActor func measure(_ given: Loader, _ workload: Workload, runs: Int) -> Cell {
  let loader = concrete(given, workload)
  let argv = loader.prefix + workload.argv
  let m = runbenchCell(argv, runs: runs, warmup: options.warmup) ?? (0, 0, 0, 0, 0, -1)
  if loader.name == "native" { nativeStatus[workload.name] = m.5 }
  let c = counters(loader, workload)
  return Cell(
    workload: workload.name, loader: loader.name, runs: runs, median: m.0, p10: m.1, p90: m.2, rss: m.3,
    faults: m.4, status: m.5, expectedStatus: nativeStatus[workload.name] ?? m.5, loaderFaults: c?.0,
    prefetched: c?.1, serverCPU: c?.2)
}

// MARK: - The runs

// Every program file fully in the page cache first: how much the kernel's
// fault-around maps (and so peak RSS) depends on what is cached.
for workload in workloads + [Workload(name: "", argv: [sample("static", "bench3_bss")])] {
  _ = fm.contents(atPath: workload.argv[0])
}

var cells: [Cell] = []
for workload in workloads {
  for loader in loaders {
    let cell = measure(loader, workload, runs: options.runs)
    cells.append(cell)
    FileHandle.standardError.write(
      Data(
        String(
          format: "%-18@ %-9@ %9.3f ms  RSS %6.0f KiB  faults %6.0f%@\n", workload.name as NSString,
          loader.name as NSString, cell.median, cell.rss, cell.faults,
          (cell.ok ? "" : "  (failed)") as NSString
        ).utf8))
  }
}

let depths = options.quick ? [1, 4, 16, 64, 512] : [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]
let bss = Workload(name: "bench3 bss", argv: [sample("static", "bench3_bss")])
var sweep: [(depth: Int, cell: Cell)] = []
for depth in depths {
  let loader = Loader(
    name: "hybrid\(depth)-signal", prefix: [options.elfload, "--mode", "hybrid", "--prefetch", "\(depth)", "--pager", "signal"],
    elfloadOptions: ["--mode", "hybrid", "--prefetch", "\(depth)", "--pager", "signal"])
  let cell = measure(loader, bss, runs: options.runs)
  sweep.append((depth, cell))
  FileHandle.standardError.write(
    Data(
      String(format: "prefetch %3d: %8.3f ms, %d faults\n", depth, cell.median, cell.loaderFaults ?? -1).utf8)
  )
}

let startupPrograms = [
  Workload(name: "static hello", argv: [sample("static", "hello")]),
  Workload(name: "static-PIE hello", argv: [sample("static-pie", "hello")]),
  Workload(name: "dynamic hello", argv: [sample("dynamic", "hello")]),
  Workload(name: "/bin/true", argv: ["/bin/true"]),
]
var startup: [Cell] = []
for program in startupPrograms {
  for loader in loaders {
    startup.append(measure(loader, program, runs: options.runs))
  }
}

// MARK: - Files

try? fm.createDirectory(atPath: options.out, withIntermediateDirectories: true)
func write(_ name: String, _ text: String) {
  let path = "\(options.out)/\(name)"
  guard fm.createFile(atPath: path, contents: Data(text.utf8)) else { fail("cannot write \(path)") }
}
func ms(_ v: Double) -> String { String(format: "%.3f", v) }
func opt(_ v: Int?) -> String { v.map(String.init) ?? "" }

var csv =
  "section,workload,loader,runs,median_ms,p10_ms,p90_ms,max_rss_kb,minor_faults,loader_faults,pages_prefetched,ok,server_cpu_ms\n"
func csvRow(_ section: String, _ c: Cell) -> String {
  "\(section),\(c.workload),\(c.loader),\(c.runs),\(ms(c.median)),\(ms(c.p10)),\(ms(c.p90)),\(Int(c.rss)),\(Int(c.faults)),\(opt(c.loaderFaults)),\(opt(c.prefetched)),\(c.ok),\(c.serverCPU.map { ms($0) } ?? "")\n"
}
for c in cells { csv += csvRow("workloads", c) }
for s in sweep { csv += csvRow("prefetch", s.cell) }
for c in startup { csv += csvRow("startup", c) }
write("results.csv", csv)

/// What one demand fault costs, per pager and server placement: (demand's median - eager's) /
/// the faults demand's pager served, on each workload where it served some.
func perFaultTable(_ cells: [Cell]) -> String {
  let demand = ["demand-signal", "demand-uffd", "demand-uffd-single"]
  var table =
    "\n## Cost of a demand fault\n\n(median wall time over eager's, divided by the faults the pager served; the server's CPU beside it)\n\n| workload | loader | faults | µs per fault over eager | server CPU µs per fault |\n|---|---|---:|---:|---:|\n"
  for workload in Array(Set(cells.map(\.workload))).sorted() {
    guard let eager = cells.first(where: { $0.workload == workload && $0.loader == "eager" }) else { continue }
    for name in demand {
      guard let c = cells.first(where: { $0.workload == workload && $0.loader == name }), let n = c.loaderFaults, n > 0
      else { continue }
      let over = (c.median - eager.median) * 1000 / Double(n)
      let server = c.serverCPU.map { String(format: "%.2f", $0 * 1000 / Double(n)) } ?? ""
      table += "| \(workload) | \(name) | \(n) | \(String(format: "%.2f", over)) | \(server) |\n"
    }
  }
  return table
}

let note = runNote(runs: options.runs, warmup: options.warmup, machine: machineDescription())
var md = "# elfload-bench results\n\n\(note)\n\n"
md +=
  "## Workloads\n\n| workload | loader | median ms | p10–p90 ms | peak RSS KiB | minor faults | loader faults | server CPU ms |\n|---|---|---:|---:|---:|---:|---:|---:|\n"
for c in cells {
  md +=
    "| \(c.workload) | \(c.loader)\(c.ok ? "" : " (failed)") | \(ms(c.median)) | \(ms(c.p10))–\(ms(c.p90)) | \(Int(c.rss)) | \(Int(c.faults)) | \(opt(c.loaderFaults)) | \(c.serverCPU.map { ms($0) } ?? "") |\n"
}
md += perFaultTable(cells)
md +=
  "\n## Prefetch depth on the 64 MiB bss pass\n\n| --prefetch | median ms | loader faults | pages prefetched |\n|---:|---:|---:|---:|\n"
for s in sweep {
  md += "| \(s.depth) | \(ms(s.cell.median)) | \(opt(s.cell.loaderFaults)) | \(opt(s.cell.prefetched)) |\n"
}
md += "\n## Start-up\n\n| program | loader | median ms | × native |\n|---|---|---:|---:|\n"
for c in startup {
  let native = startup.first { $0.workload == c.workload && $0.loader == "native" }?.median ?? 1
  md += "| \(c.workload) | \(c.loader) | \(ms(c.median)) | \(String(format: "%.2f", c.median / native))× |\n"
}
for path in profiles.values { try? fm.removeItem(atPath: path) }
write("results.md", md)
drawCharts(cells: cells, sweep: sweep, startup: startup, note: note, into: options.out)
FileHandle.standardError.write(
  Data("wrote \(options.out)/results.csv, results.md, time.svg, memory.svg, faults.svg, prefetch.svg, startup.svg\n".utf8)
)
