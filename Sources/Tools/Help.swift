// `elfload --help` (a first screen: usage, policies, the five most used options, where the rest
// is) and `elfload --help-all` (the whole reference), laid out here with hanging indents: a
// wrapped line starts under its text, not at column 0.
import ElfloadCore
import Foundation

enum Help {
  /// Columns to fill: the terminal's (at least 60) when standard output is one, else 80.
  static var width: Int {
    var size = winsize()
    if isatty(1) != 0, ioctl(1, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 { return max(60, Int(size.ws_col)) }
    return 80
  }

  /// `text` in lines of at most `width` columns, the first starting with `lead` and the others
  /// indented to `lead`'s width (a word longer than a line gets a line of its own).
  static func wrap(_ text: String, lead: String = "", indent: Int? = nil, width: Int = Help.width) -> String {
    wrap(words: text.split(separator: " ").map(String.init), lead: lead, indent: indent, width: width)
  }

  /// As wrap(_:), with the words given (a word may hold spaces: it is not broken).
  static func wrap(words: [String], lead: String = "", indent: Int? = nil, width: Int = Help.width) -> String {
    let hang = String(repeating: " ", count: indent ?? lead.count)
    var lines: [String] = []
    var line = lead
    var fresh = true
    for word in words {
      if !fresh && line.count + 1 + word.count > width {
        lines.append(line)
        line = hang
        fresh = true
      }
      line += (fresh && (line.isEmpty || line.last == " ") ? "" : " ") + word
      fresh = false
    }
    lines.append(line)
    return lines.joined(separator: "\n")
  }

  /// The run's usage, from the option table: its words, a bracketed group each.
  static var usageWords: [String] {
    ["elfload"] + RunOption.all.map { "[\($0.short.map { "\($0)|" } ?? "")\($0.synopsis)]" } + ["[--]", "<program>|-", "[<args> ...]"]
  }

  /// The usage of everything but a run.
  static let otherUsages = [
    "elfload record --profile <file> [options] [--] <program> [<args> ...]",
    "elfload inspect <program>",
    "elfload inspect --profile <file> [<program>]",
    "elfload heatmap <trace> -o <file.svg>",
    "elfload residency <residency> -o <file.svg>",
    "elfload residency --native <file> -- <program> [<args> ...]",
  ]

  /// The run's usage, wrapped between its bracketed groups.
  static func usage(lead: String, indent: Int) -> String { wrap(words: usageWords, lead: lead, indent: indent) }

  /// An aligned list: each term in a column `column` wide after a `margin`, its text wrapped
  /// beside it (under it, on the next line, when the term is wider than the column).
  static func list(_ items: [(term: String, text: String)], column: Int, margin: Int = 2) -> String {
    let hang = String(repeating: " ", count: margin + column)
    return items.map { item in
      let term = String(repeating: " ", count: margin) + item.term
      if term.count < hang.count { return wrap(item.text, lead: term.padding(toLength: hang.count, withPad: " ", startingAt: 0)) }
      return term + "\n" + wrap(item.text, lead: hang)
    }.joined(separator: "\n")
  }

  static func options(_ options: [RunOption], brief: Bool) -> String {
    list(
      options.map { ((($0.short.map { "\($0), " } ?? "") + $0.synopsis), brief ? $0.brief : $0.help) },
      column: brief ? 23 : 24)
  }

  /// The four policies, one line each.
  static let policies: [(term: String, text: String)] = [
    ("eager", "every segment mapped at start, as execve does (the default)"),
    ("demand", "each page brought in when first touched, by a pager (--pager)"),
    ("hybrid", "demand, and the pages after each fault (--prefetch N, or auto)"),
    ("replay", "a recorded run's pages installed first (--profile FILE)"),
  ]

  /// `elfload --help`: what a user needs on one screen, and where the rest is.
  static var firstScreen: String {
    """
    elfload: run a Linux x86-64 ELF program as execve would, from user space.

    Usage: elfload [options] [--] PROGRAM [ARGS...]
           elfload [options] - [ARGS...]      (the program read from standard input)
           elfload record --profile FILE [options] [--] PROGRAM [ARGS...]
           elfload inspect PROGRAM     (and: heatmap, residency)

    Paging policies (--mode):
    \(list(policies, column: 9))

    The most used options:
    \(options(RunOption.firstScreen, brief: true))

    Exit status: the program's; 127 not found, 126 cannot run, 64 usage error.
    Everything else -- every option, the statistics' fields, the pagers and their
    limits, examples: elfload --help-all (or: elfload help all). A subcommand's
    own: elfload help record|inspect|heatmap|residency. And the README.

    """
  }

  /// `elfload run --help`: the run's usage and every run option.
  static var run: String {
    """
    Run PROGRAM with ARGS (the default command; the word 'run' is optional).

    Usage:
    \(usage(lead: "  ", indent: 10))

    Options (before PROGRAM; -- ends them):
    \(options(RunOption.all, brief: false))

    """
  }

  /// `elfload --help-all`: the whole reference.
  static var reference: String {
    let paragraphs = { (texts: [String]) in texts.map { wrap($0) }.joined(separator: "\n\n") }
    return """
      elfload: run a Linux x86-64 ELF program as execve would, from user space.

      Usage:
      \(usage(lead: "  ", indent: 10))
      \(otherUsages.map { "  " + $0 }.joined(separator: "\n"))

      \(paragraphs([
        "elfload PROGRAM ARGS... reads PROGRAM, maps its PT_LOAD segments, builds the initial stack and auxiliary vector exactly as the kernel's execve does (on the same stack the kernel gave elfload), and jumps to the program's entry point. The program cannot tell the difference, apart from what user space cannot change: set-uid bits are not honoured, and /proc/self/exe names the program only with the privileges to change it (root has them).",
        "Runs static, static-PIE and dynamically linked x86-64 programs (loading their PT_INTERP interpreter as the kernel does) and #! scripts. A PROGRAM without a slash is looked up in PATH, as env does: one that PATH does not lead to is not found (127), even in the working directory.",
        "A PROGRAM of - is read from standard input into a sealed memfd and run as fexecve of it would (AT_EXECFN and argv[0] /dev/fd/N): an ELF program as far as its headers reach, so what follows it on the stream is its standard input; a #! script to the end of the stream. At most 1 GiB, or RLIMIT_FSIZE when lower. --fd N runs the program open on descriptor N the same way.",
      ]))

      Options for running (before PROGRAM; -- ends them):
      \(options(RunOption.all, brief: false))
      \(wrap("(--stats, --stats-json, --trace and --residency run the program in a child of elfload, which passes on to it the signals it is sent -- not the terminal's Ctrl-C, which reaches the program directly -- and which the program does not outlive)", lead: "  "))

      \(wrap("Statistics: --stats prints the kernel's page faults and elfload's pager's apart, each with a line saying what it counts; --stats-json writes one JSON object with these fields:"))
      \(list(Report.fields.map { ($0.name, $0.meaning) }, column: 22))

      Paging policies (--mode):
      \(list([
        ("eager, all", "every segment mapped at start, as execve maps it: a private file mapping per segment, the bss tail zeroed, anonymous zero pages for the rest; the kernel then pages the file in lazily (the default)"),
        ("demand", "nothing of code, data and bss in memory at start; each page is brought in when the program first touches it, by a pager (below)"),
        ("hybrid", "demand, and each fault also brings in up to N following pages (--prefetch N, 1 to 512, default 1), or as many as the faults' pattern predicts (--prefetch auto, below)"),
        ("replay", "the pages a recorded run touched (--profile FILE, from elfload record) brought in before the program starts, in as few operations as there are runs of pages; the rest on demand. A profile recorded for another build of the program (device, inode, size or mtime differ) is ignored with one line on stderr: the run is then demand, and --stats says so."),
      ], column: 12))

      \(paragraphs([
        "--prefetch auto, per segment (file pages and bss apart), as the kernel's readahead grows its window and Leap follows strides: two faults in a row the same distance apart (the stride: 1 page, or any number, either way) open a window of 4 pages along the stride after the faulting page; a fault exactly one stride past the window's last page (the program used it all) doubles the window, up to 512 pages; any other fault while a window is open closes it (a miss). Nothing past the segment's end. --stats counts the hits and misses.",
        "elfload record --profile FILE PROGRAM ARGS runs PROGRAM under demand paging (either pager) and writes the pages it touched, program's and interpreter's, in the order of first touch, with which files they belong to and which pager recorded them: a text file, 'elfload inspect --profile FILE' explains it. The signal pager's record lacks read-only data (it maps it up front): replay pages that on demand; record under uffd where you can.",
      ]))

      Pagers (--pager, for demand, hybrid and replay):
      \(list([
        ("uffd", "the segments are anonymous memory registered with a userfaultfd; a server process (elfload-uffd, not the program's child) fills each page from the file, or with zeros. Serves everything natively runs, but needs root (CAP_SYS_PTRACE: the kernel reports forks to no one else, whatever vm.unprivileged_userfaultfd says); the program's segments show in /proc/self/maps without their file name. The default where the kernel allows it. Who serves a fault (--uffd-server): workers (a worker pinned to each CPU the program faults on, at SCHED_IDLE, so no CPU halts on the way; a normal-priority watcher takes over while no CPU is idle) or single (one normal-priority server following the faulting thread's CPU)."),
        ("signal", "every page reserved with no access; elfload's SIGSEGV handler, in the program, gives it its protection when first touched (read-only data is mapped readable up front)."),
      ], column: 12))

      Limits of --pager signal (use --pager uffd or --mode eager instead):
      \(list([
        ("-", "a system call that touches an untouched page fails with EFAULT (read() into a fresh .bss buffer, for example);"),
        ("-", "a program that installs its own SIGSEGV handler gets elfload's faults;"),
        ("-", "a fault while SIGSEGV is blocked kills the program, and glibc blocks every signal inside pthread_create and posix_spawn: a threaded or spawning program can die by SIGSEGV if that code was never run before."),
      ], column: 2))
      \(wrap("The program also sees a SIGSEGV handler it did not install.", lead: "  "))

      \(paragraphs([
        "Exit status: the program's own; or, when elfload cannot start it, 127 if the file does not exist and 126 if it cannot be run (not ELF, wrong machine, malformed, not executable, addresses already in use), with one line on stderr: elfload: PATH: what is wrong. A mistake in elfload's own options exits 64 (EX_USAGE) with the reason and the usage line.",
        "elfload is two executables: the launcher (elfload, freestanding: no C library, no runtime) runs programs; it hands everything else -- --help, --version, inspect, heatmap, usage errors -- to elfload-tools beside it.",
      ]))

      Examples:
        elfload ./hello
        elfload --verbose -- ./prog --its-own-flag
        elfload --mode hybrid --prefetch 16 ./prog
        elfload --mode hybrid --prefetch auto --stats ./prog
        elfload record --profile prog.profile ./prog
        elfload --mode replay --profile prog.profile ./prog
        elfload --cold --mode replay --profile prog.profile --stats ./prog
        elfload --argv0 sh ./busybox -c 'echo hi'
        elfload inspect ./prog
        elfload --mode demand --trace t.csv ./prog && elfload heatmap t.csv -o t.svg
        elfload --residency r.csv ./prog && elfload residency r.csv -o r.svg
        elfload residency --native n.csv -- ./prog    (the same, of a native run)

      """
  }
}
