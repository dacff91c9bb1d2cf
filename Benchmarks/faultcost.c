// faultcost: per-page cost of user-space demand paging, side by side in one run.
//
// This is the "minimal C program using the same mechanism" that elfload's demand-paging
// handler is compared against. A loader that maps segments lazily reserves them PROT_NONE,
// catches the SIGSEGV of the first touch and makes the page(s) accessible from the signal
// handler. The floor for that design is: hardware fault + signal delivery + one syscall in
// the handler + sigreturn + the kernel's own fault on the retried access. This program
// measures exactly that floor with no bookkeeping, next to the kernel's own lazy mapping and
// a bare signal round trip, so a real handler's overhead can be read off directly. The goal
// is elfload's cost per fault within 1.2x of this program's `mprotect` line (same --batch).
//
// Mechanisms (each run on a fresh mapping; the timer covers the touch loop only):
//   kernel-lazy    mmap(file, PROT_READ, MAP_PRIVATE), read one byte per page; no handler.
//                  The kernel maps pages itself (with fault-around); faults = minor faults
//                  (getrusage delta).
//   mprotect       PROT_NONE file reservation; SIGSEGV handler mprotects B pages to
//                  PROT_READ|PROT_WRITE; the loop reads one byte per page.
//   mmap-fixed     PROT_NONE file reservation; handler maps B pages of the file over it with
//                  mmap(MAP_PRIVATE|MAP_FIXED); the loop reads one byte per page.
//   anon-mprotect  anonymous PROT_NONE reservation; handler mprotects B pages to RW; the loop
//                  WRITES one byte per page (like .bss).
//   anon-eager     anonymous RW mapping, write one byte per page; no handler (.bss baseline);
//                  faults = minor faults (getrusage delta).
//   signal-only    bare signal round trip: raw tgkill(SIGUSR1) to this thread per iteration,
//                  SA_SIGINFO handler counts it; ns per round trip, N iterations.
// Handler mechanisms report faults counted by the handler. Anonymous mappings get
// MADV_NOHUGEPAGE so both anon lines count 4 KiB faults whatever the THP setting.
// Each mechanism gets one untimed warm-up run, then R timed runs.
//
//   faultcost [--pages N] [--repeat R] [--batch B] [--file PATH]
//
// Output: a '#' comment line (kernel, parameters), a header line, then one line per mechanism:
//   mechanism batch pages median_ns_per_page p10 p90 faults_per_run
// batch is '-' where no handler runs. Build: gcc -O2 -Wall -Wextra -o faultcost faultcost.c
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

enum mode { M_KERNEL_LAZY, M_MPROTECT, M_MMAP_FIXED, M_ANON_MPROTECT, M_ANON_EAGER, M_SIGNAL };
static const char *const mode_name[] = {"kernel-lazy",   "mprotect",   "mmap-fixed",
                                        "anon-mprotect", "anon-eager", "signal-only"};

// State shared with the signal handlers. Written only outside a run.
static volatile enum mode g_mode;
static char *volatile g_base;       // reservation start
static volatile size_t g_len;       // reservation length in bytes
static volatile size_t g_page;      // page size
static volatile size_t g_batch_len; // bytes made accessible per fault
static volatile int g_fd = -1;      // file for mmap-fixed
static volatile long g_faults;      // faults (or signals) handled in the current run

static void die_in_handler(const char *msg) {
  ssize_t r = write(2, msg, strlen(msg));
  (void)r;
  signal(SIGSEGV, SIG_DFL); // the retried access now takes the default action
}

static void on_segv(int sig, siginfo_t *si, void *uc) {
  (void)sig;
  (void)uc;
  int saved = errno;
  char *addr = si->si_addr, *base = g_base;
  size_t len = g_len;
  if (base == NULL || addr < base || addr >= base + len) { // foreign fault
    signal(SIGSEGV, SIG_DFL);
    errno = saved;
    return;
  }
  char *page = (char *)((uintptr_t)addr & ~(uintptr_t)(g_page - 1));
  size_t n = g_batch_len, left = (size_t)(base + len - page);
  if (n > left) n = left;
  if (g_mode == M_MMAP_FIXED) {
    if (mmap(page, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, g_fd,
             (off_t)(page - base)) == MAP_FAILED)
      die_in_handler("faultcost: mmap in handler failed\n");
  } else if (mprotect(page, n, PROT_READ | PROT_WRITE) != 0) {
    die_in_handler("faultcost: mprotect in handler failed\n");
  }
  g_faults++;
  errno = saved;
}

static void on_usr1(int sig, siginfo_t *si, void *uc) {
  (void)sig;
  (void)si;
  (void)uc;
  g_faults++;
}

static double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e9 + t.tv_nsec;
}

static long minflt(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_minflt;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static int cmp_long(const void *a, const void *b) {
  long x = *(const long *)a, y = *(const long *)b;
  return x < y ? -1 : x > y;
}

static void fatal(const char *what) {
  perror(what);
  exit(1);
}

// One run of one mechanism: set up a fresh mapping (untimed), time the touch loop, tear down.
// Returns ns per page (or per round trip) and stores the fault count in *faults.
static double run_once(enum mode m, size_t pages, size_t ps, int fd, unsigned long expect_sum,
                       long *faults) {
  size_t len = pages * ps;
  char *p = NULL;
  switch (m) {
  case M_KERNEL_LAZY:
    p = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    break;
  case M_MPROTECT:
  case M_MMAP_FIXED:
    p = mmap(NULL, len, PROT_NONE, MAP_PRIVATE, fd, 0);
    break;
  case M_ANON_MPROTECT:
  case M_ANON_EAGER:
    p = mmap(NULL, len, m == M_ANON_EAGER ? PROT_READ | PROT_WRITE : PROT_NONE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p != MAP_FAILED) madvise(p, len, MADV_NOHUGEPAGE); // best effort; 4 KiB faults
    break;
  case M_SIGNAL:
    break;
  }
  if (p == MAP_FAILED) fatal("mmap");

  g_mode = m;
  g_base = p;
  g_len = len;
  g_faults = 0;
  pid_t pid = getpid(), tid = (pid_t)syscall(SYS_gettid);
  unsigned long sum = 0;

  long f0 = minflt();
  double t0 = now_ns();
  switch (m) {
  case M_KERNEL_LAZY:
  case M_MPROTECT:
  case M_MMAP_FIXED:
    for (size_t i = 0; i < pages; i++) sum += ((volatile unsigned char *)p)[i * ps];
    break;
  case M_ANON_MPROTECT:
  case M_ANON_EAGER:
    for (size_t i = 0; i < pages; i++) ((volatile unsigned char *)p)[i * ps] = (unsigned char)(i | 1);
    break;
  case M_SIGNAL:
    for (size_t i = 0; i < pages; i++) syscall(SYS_tgkill, pid, tid, SIGUSR1);
    break;
  }
  double t1 = now_ns();
  long f1 = minflt();

  g_base = NULL; // any later fault in the old range is foreign
  if (p) munmap(p, len);

  if (m == M_KERNEL_LAZY || m == M_MPROTECT || m == M_MMAP_FIXED) {
    if (sum != expect_sum) {
      fprintf(stderr, "faultcost: %s read wrong data (sum %lu, expected %lu)\n", mode_name[m],
              sum, expect_sum);
      exit(1);
    }
  }
  *faults = (m == M_KERNEL_LAZY || m == M_ANON_EAGER) ? f1 - f0 : g_faults;
  return (t1 - t0) / (double)pages;
}

static void usage(FILE *out) {
  fprintf(out,
          "usage: faultcost [--pages N] [--repeat R] [--batch B] [--file PATH]\n"
          "  --pages N   pages touched per run (default 4096)\n"
          "  --repeat R  timed runs per mechanism (default 11); median, p10, p90 reported\n"
          "  --batch B   pages made accessible per handled fault (default 1)\n"
          "  --file PATH file to map, at least N pages long (default: a temporary file of\n"
          "              N pages of nonzero content in /tmp, removed automatically)\n"
          "  --help      this text\n"
          "Prints: mechanism batch pages median_ns_per_page p10 p90 faults_per_run\n");
}

static void bad_arg(const char *msg, const char *val) {
  fprintf(stderr, "faultcost: %s%s%s\n", msg, val ? ": " : "", val ? val : "");
  usage(stderr);
  exit(2);
}

static size_t parse_count(const char *opt, const char *s, size_t max) {
  char *end = NULL;
  unsigned long long v = 0;
  errno = 0;
  if (s[0] >= '0' && s[0] <= '9') v = strtoull(s, &end, 10); // no sign, no blanks
  if (!end || errno || *end || v < 1 || v > max) {
    char msg[128];
    snprintf(msg, sizeof msg, "%s must be an integer from 1 to %zu", opt, max);
    bad_arg(msg, s);
  }
  return (size_t)v;
}

// Creates an unlinked temporary file of `pages` pages; page i starts with byte i % 251 + 1.
static int make_temp_file(size_t pages, size_t ps, char *name, size_t namelen) {
  snprintf(name, namelen, "/tmp/faultcost.XXXXXX");
  int fd = mkstemp(name);
  if (fd < 0) fatal("mkstemp");
  unlink(name); // removed now, so nothing is left behind however the program ends
  char *buf = malloc(ps);
  if (!buf) fatal("malloc");
  for (size_t i = 0; i < pages; i++) {
    memset(buf, 0xa5, ps);
    buf[0] = (char)(i % 251 + 1);
    for (size_t done = 0; done < ps;) {
      ssize_t w = pwrite(fd, buf + done, ps - done, (off_t)(i * ps + done));
      if (w <= 0) fatal("write temporary file");
      done += (size_t)w;
    }
  }
  free(buf);
  return fd;
}

// Reads the first `pages` pages once so every run finds them in the page cache; returns the
// sum of each page's first byte, which the file mechanisms must reproduce.
static unsigned long warm_file(int fd, size_t pages, size_t ps) {
  char *buf = malloc(ps);
  if (!buf) fatal("malloc");
  unsigned long sum = 0;
  for (size_t i = 0; i < pages; i++) {
    for (size_t done = 0; done < ps;) {
      ssize_t r = pread(fd, buf + done, ps - done, (off_t)(i * ps + done));
      if (r <= 0) fatal("read file");
      done += (size_t)r;
    }
    sum += (unsigned char)buf[0];
  }
  free(buf);
  return sum;
}

int main(int argc, char **argv) {
  size_t pages = 4096, repeat = 11, batch = 1;
  const char *file = NULL;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *val = NULL;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      return 0;
    }
    static const char *const opts[] = {"--pages", "--repeat", "--batch", "--file"};
    int which = -1;
    for (int k = 0; k < 4; k++) {
      size_t n = strlen(opts[k]);
      if (!strncmp(a, opts[k], n) && (a[n] == '\0' || a[n] == '=')) {
        which = k;
        if (a[n] == '=') val = a + n + 1;
        else if (i + 1 < argc) val = argv[++i];
        else bad_arg("missing value for", opts[k]);
      }
    }
    switch (which) {
    case 0: pages = parse_count("--pages", val, (size_t)1 << 24); break;
    case 1: repeat = parse_count("--repeat", val, 100000); break;
    case 2: batch = parse_count("--batch", val, (size_t)1 << 24); break;
    case 3:
      if (!*val) bad_arg("--file needs a path", NULL);
      file = val;
      break;
    default: bad_arg("unknown argument", a);
    }
  }
  if (batch > pages) bad_arg("--batch must not exceed --pages", NULL);

  size_t ps = (size_t)sysconf(_SC_PAGESIZE);
  char tmpname[64] = "";
  int fd;
  if (file) {
    fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      fprintf(stderr, "faultcost: cannot open %s: %s\n", file, strerror(errno));
      return 2;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) fatal("fstat");
    if (!S_ISREG(st.st_mode) || (size_t)st.st_size / ps < pages) {
      fprintf(stderr, "faultcost: %s must be a regular file of at least %zu pages (has %zu); "
                      "pass a smaller --pages\n",
              file, pages, S_ISREG(st.st_mode) ? (size_t)st.st_size / ps : (size_t)0);
      return 2;
    }
  } else {
    fd = make_temp_file(pages, ps, tmpname, sizeof tmpname);
  }
  unsigned long expect_sum = warm_file(fd, pages, ps);

  g_page = ps;
  g_batch_len = batch * ps;
  g_fd = fd;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_SIGINFO;
  sa.sa_sigaction = on_segv;
  if (sigaction(SIGSEGV, &sa, NULL) != 0) fatal("sigaction");
  sa.sa_sigaction = on_usr1;
  if (sigaction(SIGUSR1, &sa, NULL) != 0) fatal("sigaction");

  struct utsname un;
  if (uname(&un) != 0) fatal("uname");
  printf("# faultcost kernel=%s pages=%zu repeat=%zu batch=%zu page_size=%zu file=%s\n",
         un.release, pages, repeat, batch, ps, file ? file : "(temporary, in /tmp)");
  printf("mechanism batch pages median_ns_per_page p10 p90 faults_per_run\n");
  fflush(stdout);

  double *ns = malloc(repeat * sizeof *ns);
  long *faults = malloc(repeat * sizeof *faults);
  if (!ns || !faults) fatal("malloc");
  for (enum mode m = M_KERNEL_LAZY; m <= M_SIGNAL; m++) {
    long dummy;
    run_once(m, pages, ps, fd, expect_sum, &dummy); // warm-up, not recorded
    for (size_t r = 0; r < repeat; r++) ns[r] = run_once(m, pages, ps, fd, expect_sum, &faults[r]);
    qsort(ns, repeat, sizeof *ns, cmp_double);
    qsort(faults, repeat, sizeof *faults, cmp_long);
    char bcol[24] = "-";
    if (m == M_MPROTECT || m == M_MMAP_FIXED || m == M_ANON_MPROTECT)
      snprintf(bcol, sizeof bcol, "%zu", batch);
    printf("%s %s %zu %.1f %.1f %.1f %ld\n", mode_name[m], bcol, pages, ns[repeat / 2],
           ns[repeat / 10], ns[repeat * 9 / 10], faults[repeat / 2]);
    fflush(stdout);
  }
  free(ns);
  free(faults);
  close(fd);
  return 0;
}
