// The no-runtime zone's fault server: the userfaultfd pager.
//
// Under --pager uffd the program's segments are anonymous memory registered
// with a userfaultfd; a fault parks the faulting thread in the kernel, which
// tells this server, which fills the page (and the following ones under
// hybrid) with one UFFDIO_COPY of the file's bytes, or UFFDIO_ZEROPAGE for
// the bss, which wakes the thread. No signal is involved: a program's own
// SIGSEGV handler, a blocked SIGSEGV, and the kernel's own accesses
// (read() into an untouched buffer) are all served.
//
// The server is a process of its own, made by a double fork before anything
// is registered (with EVENT_FORK, a fork of a registered process waits for
// the server to read the event: the server's own creation would wait for
// itself). So it is not the program's child, holds none of its descriptors
// but the userfaultfd and the files it reads, ignores every signal a
// terminal sends (its own session), and serves every process that shares the
// program's pages through fork (EVENT_FORK hands it a new userfaultfd for
// each). The kernel gives no end-of-file when a process behind a userfaultfd
// is gone: when nothing has come for a while, a UFFDIO_COPY to an address
// nobody registered says ENOENT while the address space lives and ESRCH once
// it is gone. The server ends when the last one is gone.
//
// Raw system calls only, as everywhere in this folder.
#include "NoRuntimeZone.h"
#include "predictor.h"

#include <asm/unistd.h>
#include <linux/errno.h>
#include <linux/fcntl.h>
#include <linux/mman.h>
#include <linux/poll.h>
#include <linux/prctl.h>
#include <linux/signal.h>
#include <linux/ioctl.h>
#include <linux/userfaultfd.h>
#include <linux/wait.h>

enum { page_size = 4096, max_regions = ELFLOAD_DEMAND_MAX_REGIONS, max_uffds = 256, max_remaps = 64 };
enum { probe_interval_ms = 25 };

static struct {
  struct elfload_uffd_region regions[max_regions];
  uint32_t region_count;
  uint32_t prefetch;
  int predict;  // --prefetch auto: predictors[i] guesses for regions[i]
  struct elfload_predictor predictors[max_regions];
  struct elfload_demand_counters own_counters;
  struct elfload_demand_counters *counters;
  struct elfload_trace *trace;
  // A supervisor reads the counters when the program has ended: a fault is
  // counted (and traced) before its thread is woken, or the program's last
  // fault could be missing from the report.
  int measured;
} pager;

static long sys(long n, long a1, long a2, long a3, long a4, long a5) {
  return elfload_syscall6(n, a1, a2, a3, a4, a5, 0);
}

long elfload_uffd_open(void) {
  long fd = sys(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK, 0, 0, 0, 0);
  if (fd < 0) return fd;
  struct uffdio_api api = {.api = UFFD_API,
                           .features = UFFD_FEATURE_EVENT_FORK | UFFD_FEATURE_EVENT_REMAP |
                                       UFFD_FEATURE_THREAD_ID};
  long ret = sys(__NR_ioctl, fd, UFFDIO_API, (long)&api, 0, 0);
  if (ret != 0) {
    sys(__NR_close, fd, 0, 0, 0, 0);
    return ret;
  }
  return fd;
}

int elfload_uffd_add_region(const struct elfload_uffd_region *region) {
  if (pager.region_count == max_regions) return -1;
  pager.regions[pager.region_count++] = *region;
  return 0;
}

void elfload_uffd_configure(uint32_t prefetch, int predict, struct elfload_demand_counters *counters,
                            struct elfload_trace *trace) {
  pager.prefetch = prefetch;
  pager.predict = predict;
  pager.counters = counters != NULL ? counters : &pager.own_counters;
  pager.trace = trace;
  pager.measured = counters != NULL || trace != NULL;
}

long elfload_uffd_register(int uffd, uint64_t start, uint64_t length) {
  struct uffdio_register r = {.range = {.start = start, .len = length},
                              .mode = UFFDIO_REGISTER_MODE_MISSING};
  return sys(__NR_ioctl, uffd, UFFDIO_REGISTER, (long)&r, 0, 0);
}

// ---- the server ----

// One userfaultfd per address space it serves: the program's, then one per fork.
static struct {
  int fd[max_uffds];
  uint32_t count;
  // Ranges the program moved with mremap (EVENT_REMAP): [to, to + len) holds
  // what was at `from`.
  struct {
    int uffd;
    uint64_t from, to, len;
  } remaps[max_remaps];
  uint32_t remap_count;
  char *buffer;  // (1 + the most pages a fault installs) pages
  unsigned cpu;      // where the program's first thread runs: the server's first CPU
  unsigned cpu_now;  // the CPU the server is bound to now
  uint64_t served;   // faults served, for follow_interval
} server;

static void count(uint64_t *counter, uint64_t n) { __atomic_fetch_add(counter, n, __ATOMIC_RELAXED); }

static const struct elfload_uffd_region *region_of(uint64_t address) {
  for (uint32_t i = 0; i < pager.region_count; i++) {
    const struct elfload_uffd_region *r = &pager.regions[i];
    if (address >= r->start && address < r->end) return r;
  }
  return NULL;
}

// Where `address` (in the address space behind uffd number `u`) was when the
// regions were described: moved ranges are followed back.
static uint64_t original_address(uint32_t u, uint64_t address) {
  for (uint32_t i = server.remap_count; i-- > 0;) {
    if (server.remaps[i].uffd != (int)u) continue;
    uint64_t to = server.remaps[i].to;
    if (address >= to && address - to < server.remaps[i].len) address = server.remaps[i].from + (address - to);
  }
  return address;
}

static void trace(const struct elfload_uffd_region *r, uint64_t first, uint64_t pages, uint32_t tid) {
  if (r == NULL) return;
  elfload_trace_pages(pager.trace, first, pages, (first - r->start) / page_size + r->first_page_in_segment, tid,
                      r->segment, r->image, 1);
}

static void wake(int fd, uint64_t page) {
  struct uffdio_range range = {.start = page, .len = page_size};
  sys(__NR_ioctl, fd, UFFDIO_WAKE, (long)&range, 0, 0);
}

// The bytes of `pages` pages of region `r` from `original` on, into `buffer`.
static void fill(const struct elfload_uffd_region *r, uint64_t original, uint64_t pages, char *buffer) {
  uint64_t length = pages * page_size;
  uint64_t from_file = 0;
  if (r->fd >= 0 && original < r->data_end) {
    uint64_t want = r->data_end - original < length ? r->data_end - original : length;
    uint64_t offset = r->file_offset + (original - r->start);
    while (from_file < want) {
      long n = sys(__NR_pread64, r->fd, (long)(buffer + from_file), (long)(want - from_file),
                   (long)(offset + from_file), 0);
      if (n == -EINTR) continue;
      if (n <= 0) break;  // past the end of the file: zeros, as a file mapping reads there
      from_file += (uint64_t)n;
    }
  }
  for (uint64_t i = from_file; i < length; i++) buffer[i] = 0;
}

// --mode replay, before the jump (in the launcher, which still holds the
// userfaultfd): installs [start, start + pages pages), in as few ioctls as
// the regions allow (one UFFDIO_COPY per run of file pages, up to a 1 MiB
// buffer at a time; one UFFDIO_ZEROPAGE per run of bss). Pages outside every
// region, or there already, are skipped. Returns the pages installed.
uint64_t elfload_uffd_preinstall(int uffd, uint64_t start, uint64_t pages) {
  enum { chunk_pages = 256 };
  uint64_t buffer_pages = pages < chunk_pages ? pages : chunk_pages;
  long b = elfload_syscall6(__NR_mmap, 0, (long)(buffer_pages * page_size), PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (b < 0 && b > -4096) return 0;
  char *buffer = (char *)b;
  uint64_t installed = 0, end = start + pages * page_size;
  for (uint64_t at = start; at < end;) {
    const struct elfload_uffd_region *r = region_of(at);
    if (r == NULL) {
      at += page_size;
      continue;
    }
    uint64_t stop = end < r->end ? end : r->end;
    if (r->fd < 0) {
      struct uffdio_zeropage z = {.range = {.start = at, .len = stop - at}, .mode = UFFDIO_ZEROPAGE_MODE_DONTWAKE};
      sys(__NR_ioctl, uffd, UFFDIO_ZEROPAGE, (long)&z, 0, 0);
      installed += z.zeropage > 0 ? (uint64_t)z.zeropage / page_size : 0;
      at = z.zeropage > 0 ? at + (uint64_t)z.zeropage : at + page_size;
      continue;
    }
    uint64_t n = (stop - at) / page_size < buffer_pages ? (stop - at) / page_size : buffer_pages;
    fill(r, at, n, buffer);
    struct uffdio_copy c = {.dst = at, .src = (uint64_t)buffer, .len = n * page_size, .mode = UFFDIO_COPY_MODE_DONTWAKE};
    sys(__NR_ioctl, uffd, UFFDIO_COPY, (long)&c, 0, 0);
    installed += c.copy > 0 ? (uint64_t)c.copy / page_size : 0;
    at = c.copy > 0 ? at + (uint64_t)c.copy : at + page_size;  // past a page there already
  }
  sys(__NR_munmap, b, (long)(buffer_pages * page_size), 0, 0, 0);
  return installed;
}

// Installs the pages `ahead` names after `page` (a stride other than one
// page), one ioctl each, none waking anybody; stops at the first that fails
// (there already, or in a mapping the program has changed).
static void install_strided(int fd, const struct elfload_uffd_region *r, uint64_t page, uint64_t original,
                            struct elfload_prefetch ahead, uint32_t tid) {
  for (uint64_t k = 1; k <= ahead.pages; k++) {
    int64_t step = (int64_t)k * ahead.stride;
    uint64_t at = page + (uint64_t)step, from = original + (uint64_t)step;
    long ret;
    if (r->fd < 0) {
      struct uffdio_zeropage z = {.range = {.start = at, .len = page_size}, .mode = UFFDIO_ZEROPAGE_MODE_DONTWAKE};
      ret = sys(__NR_ioctl, fd, UFFDIO_ZEROPAGE, (long)&z, 0, 0);
    } else {
      fill(r, from, 1, server.buffer);
      struct uffdio_copy c = {.dst = at, .src = (uint64_t)server.buffer, .len = page_size,
                              .mode = UFFDIO_COPY_MODE_DONTWAKE};
      ret = sys(__NR_ioctl, fd, UFFDIO_COPY, (long)&c, 0, 0);
    }
    if (ret != 0) return;
    count(&pager.counters->pages_mapped, 1);
    count(&pager.counters->pages_prefetched, 1);
    elfload_trace_pages(pager.trace, at, 1, (from - r->start) / page_size + r->first_page_in_segment, tid,
                        r->segment, r->image, 0);
  }
}

// Serves a fault at `address` in the address space behind uffd number `u`:
// the page and up to `prefetch` following ones of its region that are still
// missing, in one ioctl.
static void serve(uint32_t u, uint64_t address, uint32_t tid) {
  int fd = server.fd[u];
  uint64_t page = address & ~(uint64_t)(page_size - 1);
  uint64_t original = original_address(u, page);
  const struct elfload_uffd_region *r = region_of(original);
  // What to install after the page: `prefetch` pages (hybrid), what the
  // predictor says (hybrid --prefetch auto: in a page run after the fault
  // when the stride is one page, else one copy a page, after the fault's).
  struct elfload_prefetch ahead = {.stride = page_size, .pages = pager.prefetch};
  struct elfload_predictor *predictor = r != NULL && pager.predict ? &pager.predictors[r - pager.regions] : NULL;
  struct elfload_predictor before = predictor != NULL ? *predictor : (struct elfload_predictor){0};
  if (predictor != NULL) ahead = elfload_predict(predictor, original, r->start, r->end);
  uint64_t pages = 1 + (ahead.stride == page_size ? ahead.pages : 0);
  if (r != NULL && (r->end - original) / page_size < pages) pages = (r->end - original) / page_size;
  if (r == NULL) pages = 1;  // grown in place, or unknown: zeros, as new anonymous memory reads
  long ret = 0;
  uint64_t done = 0;
  for (unsigned tries = 0;; tries++) {
    if (r == NULL || r->fd < 0) {
      struct uffdio_zeropage z = {.range = {.start = page, .len = pages * page_size},
                                  .mode = pager.measured ? UFFDIO_ZEROPAGE_MODE_DONTWAKE : 0};
      ret = sys(__NR_ioctl, fd, UFFDIO_ZEROPAGE, (long)&z, 0, 0);
      done = z.zeropage > 0 ? (uint64_t)z.zeropage : 0;
    } else {
      fill(r, original, pages, server.buffer);
      // The faulting page first, on its own: its thread wakes and runs on
      // while the server copies the rest (measured: 2.2-2.6 us a page against
      // 3.3 for one 64 KiB copy, unpinned; the prototypes' bench.c).
      struct uffdio_copy c = {.dst = page, .src = (uint64_t)server.buffer, .len = page_size,
                              .mode = pager.measured ? UFFDIO_COPY_MODE_DONTWAKE : 0};
      ret = sys(__NR_ioctl, fd, UFFDIO_COPY, (long)&c, 0, 0);
      done = c.copy > 0 ? (uint64_t)c.copy : 0;
      if (done == page_size && pages > 1) {
        // No thread waits on these (one that does has its own fault queued,
        // and gets EEXIST and a wake): no wake-up to pay for.
        struct uffdio_copy rest = {.dst = page + page_size,
                                   .src = (uint64_t)server.buffer + page_size,
                                   .len = (pages - 1) * page_size,
                                   .mode = UFFDIO_COPY_MODE_DONTWAKE};
        sys(__NR_ioctl, fd, UFFDIO_COPY, (long)&rest, 0, 0);
        if (rest.copy > 0) done += (uint64_t)rest.copy;
      }
    }
    if (done > 0) break;  // all, or up to a page that is there already: the prefetch ends there
    // The prefetch reaches into another mapping (the program split the
    // segment, e.g. mprotect of its RELRO part): one ioctl fills one mapping
    // only, so ask for fewer pages, down to the faulting one.
    if (ret == -ENOENT && pages > 1) {
      pages /= 2;
      continue;
    }
    // The address space is changing under a non-cooperative event (a fork,
    // an mremap): the fault is still pending; try again.
    if (ret == -EAGAIN && tries < 1000) {
      sys(__NR_sched_yield, 0, 0, 0, 0, 0);
      continue;
    }
    // The page is there already (another thread's fault filled it, or this
    // server's prefetch, while the thread ran ahead of it), or its mapping
    // went away: its thread may still be parked, so wake it; it retries the
    // access and either goes on or faults anew. Not a fault the predictor
    // should learn from: its history is as it was.
    if (predictor != NULL) *predictor = before;
    wake(fd, page);
    return;
  }
  uint64_t installed = done / page_size;
  count(&pager.counters->faults, 1);
  count(&pager.counters->pages_mapped, installed);
  count(&pager.counters->pages_prefetched, installed - 1);
  elfload_count_prediction(ahead, pager.counters);
  trace(r, page, installed, tid);
  if (r != NULL && ahead.stride != page_size) install_strided(fd, r, page, original, ahead, tid);
  if (pager.measured) wake(fd, page);
}

// The server runs on one CPU: the one the faulting threads ran on last. A
// fault then hands that CPU from the parked thread to the server and back,
// where a server on another CPU costs a cross-CPU wake-up each way
// (Benchmarks/uffdcost.c on this VM one day: 181 us a fault across CPUs,
// 14 us on one). The program's own affinity is untouched; the scheduler may
// move it, so every `follow_interval` faults the server looks where the
// faulting thread last ran (/proc/TID/stat's 39th field) and moves there.
enum { follow_interval = 64 };

static void follow_cpu(unsigned cpu) {
  if (cpu >= 1024 || cpu == server.cpu_now) return;
  uint64_t mask[16];
  for (unsigned i = 0; i < 16; i++) mask[i] = 0;
  mask[cpu / 64] = 1ULL << (cpu % 64);
  if (sys(__NR_sched_setaffinity, 0, sizeof mask, (long)mask, 0, 0) == 0) server.cpu_now = cpu;
}

// The CPU thread `tid` last ran on, or ~0.
static unsigned last_cpu(uint32_t tid) {
  char path[32] = "/proc/";
  unsigned n = 6;
  char digits[12];
  unsigned d = 0;
  do {
    digits[d++] = (char)('0' + tid % 10);
    tid /= 10;
  } while (tid > 0);
  while (d > 0) path[n++] = digits[--d];
  static const char stat[] = "/stat";
  for (unsigned i = 0; i < sizeof stat; i++) path[n++] = stat[i];
  long fd = sys(__NR_openat, -100, (long)path, O_RDONLY | O_CLOEXEC, 0, 0);
  if (fd < 0) return ~0U;
  char text[512];
  long got = sys(__NR_read, fd, (long)text, sizeof text - 1, 0, 0);
  sys(__NR_close, fd, 0, 0, 0, 0);
  if (got <= 0) return ~0U;
  // Fields after the command name (which may hold spaces) in parentheses: from the last ')'.
  long i = got - 1;
  while (i > 0 && text[i] != ')') i--;
  unsigned field = 2;
  for (; i < got && field < 39; i++)
    if (text[i] == ' ') field++;
  unsigned cpu = 0;
  if (i >= got || text[i] < '0' || text[i] > '9') return ~0U;
  for (; i < got && text[i] >= '0' && text[i] <= '9'; i++) cpu = cpu * 10 + (unsigned)(text[i] - '0');
  return cpu;
}

// Adds a userfaultfd (the program's, or a forked child's).
static void add(int fd) {
  if (server.count == max_uffds) {
    // Cannot happen with the limit far above what a program forks at once;
    // if it did, this child's faults would never be served: better it dies.
    sys(__NR_close, fd, 0, 0, 0, 0);
    return;
  }
  sys(__NR_fcntl, fd, F_SETFL, O_NONBLOCK, 0, 0);
  server.fd[server.count++] = fd;
}

static void drop(uint32_t u) {
  sys(__NR_close, server.fd[u], 0, 0, 0, 0);
  server.fd[u] = -1;
}

// Whether the address space behind uffd number `u` is still there.
static int alive(uint32_t u) {
  // An address nobody registers (just below the top of user space): ENOENT
  // while the address space lives, ESRCH once it is gone.
  struct uffdio_copy c = {.dst = 0x7fffffffe000, .src = (uint64_t)server.buffer, .len = page_size};
  long ret = sys(__NR_ioctl, server.fd[u], UFFDIO_COPY, (long)&c, 0, 0);
  return ret != -ESRCH;
}

static void handle(uint32_t u, const struct uffd_msg *m) {
  switch (m->event) {
  case UFFD_EVENT_PAGEFAULT:
    if (++server.served % follow_interval == 0) follow_cpu(last_cpu(m->arg.pagefault.feat.ptid));
    serve(u, m->arg.pagefault.address, m->arg.pagefault.feat.ptid);
    break;
  case UFFD_EVENT_FORK:
    add((int)m->arg.fork.ufd);
    break;
  case UFFD_EVENT_REMAP:
    if (server.remap_count < max_remaps) {
      server.remaps[server.remap_count].uffd = (int)u;
      server.remaps[server.remap_count].from = original_address(u, m->arg.remap.from);
      server.remaps[server.remap_count].to = m->arg.remap.to;
      server.remaps[server.remap_count].len = m->arg.remap.len;
      server.remap_count++;
    }
    break;
  default:
    break;
  }
}

__attribute__((noreturn)) static void serve_forever(void) {
  for (;;) {
    struct pollfd polled[max_uffds];
    uint32_t live = 0;
    for (uint32_t u = 0; u < server.count; u++) {
      polled[u].fd = server.fd[u];
      polled[u].events = POLLIN;
      polled[u].revents = 0;
      if (server.fd[u] >= 0) live++;
    }
    if (live == 0) sys(__NR_exit_group, 0, 0, 0, 0, 0);
    long ready = sys(__NR_poll, (long)polled, server.count, probe_interval_ms, 0, 0);
    if (ready == 0) {
      for (uint32_t u = 0; u < server.count; u++)
        if (server.fd[u] >= 0 && !alive(u)) drop(u);
      continue;
    }
    uint32_t polled_count = server.count;  // add() may grow the list meanwhile
    for (uint32_t u = 0; u < polled_count; u++) {
      if (server.fd[u] < 0 || polled[u].revents == 0) continue;
      struct uffd_msg messages[16];
      long n = sys(__NR_read, server.fd[u], (long)messages, sizeof messages, 0, 0);
      if (n <= 0) {
        if (n == 0 || (n != -EAGAIN && n != -EINTR)) drop(u);
        continue;
      }
      for (long i = 0; i < n / (long)sizeof messages[0]; i++) handle(u, &messages[i]);
    }
  }
}

// The server process: its own session (no terminal's signals), every signal
// blocked, no descriptor but the userfaultfd and the files, then serve.
__attribute__((noreturn)) static void become_server(int uffd) {
  sys(__NR_setsid, 0, 0, 0, 0, 0);
  uint64_t all = ~(uint64_t)0;
  sys(__NR_rt_sigprocmask, SIG_SETMASK, (long)&all, 0, 8, 0);
  static const char name[] = "elfload-uffd";
  sys(__NR_prctl, PR_SET_NAME, (long)name, 0, 0, 0);
  // Every descriptor but these few goes, a gap at a time (close_range): the
  // program's first faults wait for this.
  unsigned lowest = 0;
  for (;;) {
    unsigned next = ~0U;  // the lowest kept descriptor at or above `lowest`
    if ((unsigned)uffd >= lowest && (unsigned)uffd < next) next = (unsigned)uffd;
    for (uint32_t i = 0; i < pager.region_count; i++) {
      unsigned fd = (unsigned)pager.regions[i].fd;
      if (pager.regions[i].fd >= 0 && fd >= lowest && fd < next) next = fd;
    }
    if (next == ~0U) break;
    if (next > lowest) sys(__NR_close_range, lowest, next - 1, 0, 0, 0);
    lowest = next + 1;
  }
  sys(__NR_close_range, lowest, ~0U, 0, 0, 0);
  follow_cpu(server.cpu);
  uint64_t most = pager.predict ? predictor_max_window : pager.prefetch;
  long buffer = elfload_syscall6(__NR_mmap, 0, (long)(1 + most) * page_size,
                                 PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (buffer < 0 && buffer > -4096) sys(__NR_exit_group, 1, 0, 0, 0, 0);
  server.buffer = (char *)buffer;
  add(uffd);
  serve_forever();
}

long elfload_uffd_start_server(int uffd) {
  server.cpu = ~0U;
  server.cpu_now = ~0U;
  sys(__NR_getcpu, (long)&server.cpu, 0, 0, 0, 0);
  // Double fork: the middle process exits at once, so the server is
  // nobody's child here (init, or a subreaper, adopts it).
  // The middle process has no exit signal: no SIGCHLD is left pending for
  // the program (whose mask may block it), and wait4 takes it with __WALL.
  long middle = sys(__NR_clone, 0, 0, 0, 0, 0);
  if (middle < 0) return middle;
  if (middle == 0) {
    long server_pid = sys(__NR_clone, SIGCHLD, 0, 0, 0, 0);
    if (server_pid == 0) become_server(uffd);
    sys(__NR_exit_group, server_pid < 0 ? 1 : 0, 0, 0, 0, 0);
  }
  int status = 0;
  long ret;
  do ret = sys(__NR_wait4, middle, (long)&status, __WALL, 0, 0);
  while (ret == -EINTR);
  if (ret < 0) return ret;
  return (status & 0x7f) == 0 && (status >> 8 & 0xff) == 0 ? 0 : -ECHILD;
}
