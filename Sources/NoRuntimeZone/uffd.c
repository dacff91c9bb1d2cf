// The no-runtime zone's userfaultfd pager: what a fault installs.
//
// Under --pager uffd the program's segments are anonymous memory with their
// final protection, registered with a userfaultfd; a fault parks the faulting
// thread in the kernel, which tells the server (uffd_server.c: where and by
// whom a fault is served), which fills the page -- and the following ones
// under hybrid -- with one UFFDIO_COPY of the file's bytes, or
// UFFDIO_ZEROPAGE for the bss, which wakes the thread. No signal is involved:
// a program's own SIGSEGV handler, a blocked SIGSEGV, and the kernel's own
// accesses (read() into an untouched buffer) are all served.
//
// The bytes come straight from the page cache: the server maps each file
// read-only once, and UFFDIO_COPY copies from that mapping -- one copy, one
// system call, and the kernel's readahead for the server's mapping gives a
// cold start what a 4 KiB pread would not. Only a page whose tail must read
// as zero (the last file page of a writable segment) or that lies past the
// file's end is put together in a buffer first.
//
// Raw system calls only, as everywhere in this folder.
#include "uffd_internal.h"
#include "predictor.h"

#include <linux/errno.h>
#include <linux/fcntl.h>
#include <linux/mman.h>
#include <linux/ioctl.h>
#include <linux/userfaultfd.h>

enum { page_size = uffd_page_size, max_regions = ELFLOAD_DEMAND_MAX_REGIONS, max_remaps = 64, max_files = 8 };

static struct {
  struct elfload_uffd_region regions[max_regions];
  uint32_t region_count;
  uint32_t prefetch;
  int predict;  // --prefetch auto: predictors[i] guesses for regions[i]
  struct elfload_predictor predictors[max_regions];
  struct elfload_demand_counters own_counters;
  struct elfload_demand_counters *counters;
  struct elfload_trace *trace;
  // A supervisor reads the counters (and the trace) when the program has
  // ended: a fault being served then is announced in counters->in_flight
  // before its thread is woken, so that the supervisor can wait for it.
  int measured;
} pager;

// Where a region's bytes are read from: a read-only mapping of its file.
static struct {
  struct {
    int fd;
    const char *bytes;  // the file from offset 0, or NULL (empty, or not mappable: pread instead)
    uint64_t length;    // bytes mapped: the file's size
  } files[max_files];
  uint32_t file_count;
  const char *bytes[max_regions];  // regions[i]'s file_offset, in the mapping; or NULL
  uint64_t plain_end[max_regions]; // pages of regions[i] below this are whole file pages in the mapping
} sources;

// Ranges the program moved with mremap (EVENT_REMAP), per address space:
// [to, to + len) holds what was at `from`. Written and read under the
// server's event lock (uffd_server.c).
static struct {
  struct {
    uint32_t uffd;
    uint64_t from, to, len;
  } moves[max_remaps];
  uint32_t count;
} remaps;

static long sys(long n, long a1, long a2, long a3, long a4, long a5) { return uffd_sys(n, a1, a2, a3, a4, a5); }

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

struct elfload_demand_counters *uffd_counters(void) { return pager.counters; }
int uffd_measured(void) { return pager.measured; }
uint64_t uffd_buffer_pages(void) { return 1 + (pager.predict ? predictor_max_window : pager.prefetch); }

void uffd_each_file(void (*keep)(int fd, void *context), void *context) {
  for (uint32_t i = 0; i < pager.region_count; i++)
    if (pager.regions[i].fd >= 0) keep(pager.regions[i].fd, context);
}

// ---- page sources ----

static uint64_t page_down(uint64_t a) { return a & ~(uint64_t)(page_size - 1); }
static uint64_t page_up(uint64_t a) { return (a + page_size - 1) & ~(uint64_t)(page_size - 1); }

// Maps every region's file read-only (each file once). A file that cannot be
// mapped is read with pread instead, as a page past its end reads as zeros.
static void map_sources(void) {
  for (uint32_t i = 0; i < pager.region_count; i++) {
    const struct elfload_uffd_region *r = &pager.regions[i];
    sources.bytes[i] = NULL;
    sources.plain_end[i] = r->start;
    if (r->fd < 0) continue;
    uint32_t f = 0;
    while (f < sources.file_count && sources.files[f].fd != r->fd) f++;
    if (f == sources.file_count) {
      if (f == max_files) continue;
      struct elfload_stat st;
      long mapped = -1;
      if (sys(__NR_fstat, r->fd, (long)&st, 0, 0, 0) == 0 && st.st_size > 0)
        mapped = elfload_syscall6(__NR_mmap, 0, st.st_size, PROT_READ, MAP_PRIVATE, r->fd, 0);
      sources.files[f].fd = r->fd;
      sources.files[f].bytes = mapped < 0 && mapped > -4096 ? NULL : (const char *)mapped;
      sources.files[f].length = sources.files[f].bytes != NULL ? (uint64_t)st.st_size : 0;
      sources.file_count++;
    }
    if (sources.files[f].bytes == NULL || r->file_offset >= page_up(sources.files[f].length)) continue;
    sources.bytes[i] = sources.files[f].bytes + r->file_offset;
    // Whole pages of file bytes: up to the page where the segment's data ends
    // (its tail reads as zero), and no further than the mapped file reaches.
    uint64_t in_file = r->start + (page_up(sources.files[f].length) - r->file_offset);
    uint64_t end = page_down(r->data_end) < r->end ? page_down(r->data_end) : r->end;
    sources.plain_end[i] = in_file < end ? in_file : end;
  }
}

static void unmap_sources(void) {
  for (uint32_t f = 0; f < sources.file_count; f++)
    if (sources.files[f].bytes != NULL) sys(__NR_munmap, (long)sources.files[f].bytes, (long)sources.files[f].length, 0, 0, 0);
  sources.file_count = 0;
  for (uint32_t i = 0; i < pager.region_count; i++) sources.bytes[i] = NULL;
}

void uffd_map_sources(void) { map_sources(); }

static uint32_t index_of(const struct elfload_uffd_region *r) { return (uint32_t)(r - pager.regions); }

// The bytes of `pages` pages of region `r` from `original` on, into `buffer`:
// the file's bytes up to the segment's data end (pread: past the file's end
// it reads nothing), zeros after them, as a file mapping and its bss read.
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
      if (n <= 0) break;
      from_file += (uint64_t)n;
    }
  }
  for (uint64_t i = from_file; i < length; i++) buffer[i] = 0;
}

// Installs `pages` pages of file region `r` at `dst` (which holds what was at
// `original`) in one UFFDIO_COPY: from the file's mapping when they are whole
// file pages there, else put together in `buffer` (`capacity` pages: no more
// are installed then). `wake`: wake the threads waiting on them. Returns the
// bytes copied (0 when none: `*error` says why).
static uint64_t copy_file_pages(int fd, const struct elfload_uffd_region *r, uint64_t dst, uint64_t original,
                                uint64_t pages, char *buffer, uint64_t capacity, int wake, long *error) {
  uint32_t i = index_of(r);
  struct uffdio_copy c = {.dst = dst, .len = pages * page_size, .mode = wake ? 0 : UFFDIO_COPY_MODE_DONTWAKE};
  if (sources.bytes[i] != NULL && original + pages * page_size <= sources.plain_end[i]) {
    c.src = (uint64_t)(sources.bytes[i] + (original - r->start));
    *error = sys(__NR_ioctl, fd, UFFDIO_COPY, (long)&c, 0, 0);
    // EFAULT: the file shrank under its mapping since; read what is left.
    if (*error != -EFAULT) return c.copy > 0 ? (uint64_t)c.copy : 0;
  }
  if (pages > capacity) pages = capacity;
  fill(r, original, pages, buffer);
  c.src = (uint64_t)buffer;
  c.len = pages * page_size;
  c.copy = 0;
  *error = sys(__NR_ioctl, fd, UFFDIO_COPY, (long)&c, 0, 0);
  return c.copy > 0 ? (uint64_t)c.copy : 0;
}

// Installs `pages` pages of zeros at `dst` (the bss, or memory the program
// grew): the shared zero page, as the kernel maps an anonymous page that is
// read first, so the memory a run costs stays the kernel's. A write fault
// gets a zeroed copy at once: UFFDIO_ZEROPAGE would cost it a second fault
// (the kernel's copy on write) to end where the copy does.
static uint64_t zero_pages(int fd, uint64_t dst, uint64_t pages, int write, char *zeros, int wake, long *error) {
  if (write && pages == 1) {
    for (uint64_t k = 0; k < page_size / sizeof(uint64_t); k++) ((uint64_t *)zeros)[k] = 0;
    struct uffdio_copy c = {.dst = dst, .src = (uint64_t)zeros, .len = page_size,
                            .mode = wake ? 0 : UFFDIO_COPY_MODE_DONTWAKE};
    *error = sys(__NR_ioctl, fd, UFFDIO_COPY, (long)&c, 0, 0);
    return c.copy > 0 ? (uint64_t)c.copy : 0;
  }
  struct uffdio_zeropage z = {.range = {.start = dst, .len = pages * page_size},
                              .mode = wake ? 0 : UFFDIO_ZEROPAGE_MODE_DONTWAKE};
  *error = sys(__NR_ioctl, fd, UFFDIO_ZEROPAGE, (long)&z, 0, 0);
  return z.zeropage > 0 ? (uint64_t)z.zeropage : 0;
}

// ---- serving a fault ----

static void count(uint64_t *counter, uint64_t n) { __atomic_fetch_add(counter, n, __ATOMIC_RELAXED); }

static const struct elfload_uffd_region *region_of(uint64_t address) {
  for (uint32_t i = 0; i < pager.region_count; i++) {
    const struct elfload_uffd_region *r = &pager.regions[i];
    if (address >= r->start && address < r->end) return r;
  }
  return NULL;
}

void uffd_note_remap(uint32_t u, uint64_t from, uint64_t to, uint64_t len) {
  if (remaps.count == max_remaps) return;
  remaps.moves[remaps.count].uffd = u;
  remaps.moves[remaps.count].from = from;
  remaps.moves[remaps.count].to = to;
  remaps.moves[remaps.count].len = len;
  __atomic_store_n(&remaps.count, remaps.count + 1, __ATOMIC_RELEASE);
}

// Where `address` (in the address space behind uffd number `u`) was when the
// regions were described: moved ranges are followed back.
static uint64_t original_address(uint32_t u, uint64_t address) {
  for (uint32_t i = __atomic_load_n(&remaps.count, __ATOMIC_ACQUIRE); i-- > 0;) {
    if (remaps.moves[i].uffd != u) continue;
    uint64_t to = remaps.moves[i].to;
    if (address >= to && address - to < remaps.moves[i].len) address = remaps.moves[i].from + (address - to);
  }
  return address;
}

static void trace(const struct elfload_uffd_region *r, uint64_t first, uint64_t pages, uint32_t tid, int fault) {
  elfload_trace_pages(pager.trace, first, pages, (first - r->start) / page_size + r->first_page_in_segment, tid,
                      r->segment, r->image, fault);
}

static void wake(int fd, uint64_t page) {
  struct uffdio_range range = {.start = page, .len = page_size};
  sys(__NR_ioctl, fd, UFFDIO_WAKE, (long)&range, 0, 0);
}

// Installs the pages `ahead` names after `page` (a stride other than one
// page), one ioctl each, none waking anybody; stops at the first that fails
// (there already, or in a mapping the program has changed).
static void install_strided(int fd, const struct elfload_uffd_region *r, uint64_t page, uint64_t original,
                            struct elfload_prefetch ahead, uint32_t tid, char *buffer) {
  for (uint64_t k = 1; k <= ahead.pages; k++) {
    int64_t step = (int64_t)k * ahead.stride;
    uint64_t at = page + (uint64_t)step, from = original + (uint64_t)step;
    long error = 0;
    uint64_t done = r->fd < 0 ? zero_pages(fd, at, 1, 0, buffer, 0, &error)
                              : copy_file_pages(fd, r, at, from, 1, buffer, 1, 0, &error);
    if (done == 0) return;
    count(&pager.counters->pages_mapped, 1);
    count(&pager.counters->pages_prefetched, 1);
    trace(r, at, 1, tid, 0);
  }
}

// Serves a fault at `address`: the page and up to `prefetch` following ones
// of its region that are still missing, in one ioctl that wakes the thread
// once they are all there (the server runs on the thread's CPU: the thread
// cannot run on while it copies anyway).
void uffd_serve(int fd, uint32_t u, uint64_t address, uint32_t tid, int write, char *buffer) {
  uint64_t page = page_down(address);
  uint64_t original = original_address(u, page);
  const struct elfload_uffd_region *r = region_of(original);
  // What to install after the page: `prefetch` pages (hybrid), what the
  // predictor says (hybrid --prefetch auto: in a page run after the fault
  // when the stride is one page, else one copy a page, after the fault's).
  struct elfload_prefetch ahead = {.stride = page_size, .pages = pager.prefetch, .outcome = 0};
  struct elfload_predictor *predictor = r != NULL && pager.predict ? &pager.predictors[index_of(r)] : NULL;
  struct elfload_predictor before = predictor != NULL ? *predictor : (struct elfload_predictor){0};
  if (predictor != NULL) ahead = elfload_predict(predictor, original, r->start, r->end);
  uint64_t pages = 1 + (ahead.stride == page_size ? ahead.pages : 0);
  if (r != NULL && (r->end - original) / page_size < pages) pages = (r->end - original) / page_size;
  if (r == NULL) pages = 1;  // grown in place, or unknown: zeros, as new anonymous memory reads
  if (pager.measured) __atomic_fetch_add(&pager.counters->in_flight, 1, __ATOMIC_SEQ_CST);
  long error = 0;
  uint64_t done = 0;
  for (unsigned tries = 0;; tries++) {
    done = r == NULL || r->fd < 0 ? zero_pages(fd, page, pages, write, buffer, 1, &error)
                                  : copy_file_pages(fd, r, page, original, pages, buffer, uffd_buffer_pages(), 1, &error);
    if (done > 0) break;  // all, or up to a page that is there already: the prefetch ends there
    // The prefetch reaches into another mapping (the program split the
    // segment, e.g. mprotect of its RELRO part): one ioctl fills one mapping
    // only, so ask for fewer pages, down to the faulting one.
    if (error == -ENOENT && pages > 1) {
      pages /= 2;
      continue;
    }
    // The address space is changing under a non-cooperative event (a fork,
    // an mremap): the fault is still pending; try again.
    if (error == -EAGAIN && tries < 1000) {
      sys(__NR_sched_yield, 0, 0, 0, 0, 0);
      continue;
    }
    // The page is there already (another thread's fault filled it, or a
    // prefetch, while the thread ran ahead of the server), or its mapping
    // went away: its thread may still be parked, so wake it; it retries the
    // access and either goes on or faults anew. Not a fault the predictor
    // should learn from: its history is as it was.
    if (predictor != NULL) *predictor = before;
    wake(fd, page);
    if (pager.measured) __atomic_fetch_sub(&pager.counters->in_flight, 1, __ATOMIC_SEQ_CST);
    return;
  }
  uint64_t installed = done / page_size;
  count(&pager.counters->faults, 1);
  count(&pager.counters->pages_mapped, installed);
  count(&pager.counters->pages_prefetched, installed - 1);
  elfload_count_prediction(ahead, pager.counters);
  if (r != NULL) {
    trace(r, page, installed, tid, 1);
    if (ahead.stride != page_size) install_strided(fd, r, page, original, ahead, tid, buffer);
  }
  if (pager.measured) __atomic_fetch_sub(&pager.counters->in_flight, 1, __ATOMIC_SEQ_CST);
}

// ---- --mode replay, before the jump ----

// In the launcher, which still holds the userfaultfd: installs the runs
// ((start, pages) pairs) without waking anybody (nobody runs yet), one
// UFFDIO_COPY per run of file pages straight from the file's mapping, and one
// UFFDIO_ZEROPAGE per run of bss. Pages outside every region, or
// there already, are skipped. Returns the pages installed.
uint64_t elfload_uffd_preinstall(int uffd, const uint64_t *runs, uint64_t run_count) {
  // For the few pages that cannot come from the mapping (a tail to zero,
  // past the file's end), a chunk at a time.
  enum { buffer_pages = 256 };
  long b = elfload_syscall6(__NR_mmap, 0, buffer_pages * page_size, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (b < 0 && b > -4096) return 0;
  char *buffer = (char *)b;
  map_sources();
  uint64_t installed = 0;
  for (uint64_t k = 0; k < run_count; k++) {
    uint64_t end = runs[2 * k] + runs[2 * k + 1] * page_size;
    for (uint64_t at = runs[2 * k]; at < end;) {
      const struct elfload_uffd_region *r = region_of(at);
      if (r == NULL) {
        at += page_size;
        continue;
      }
      uint64_t stop = end < r->end ? end : r->end;
      uint64_t pages = (stop - at) / page_size;
      uint32_t i = index_of(r);
      long error = 0;
      uint64_t done;
      if (r->fd < 0) {
        done = zero_pages(uffd, at, pages, 0, NULL, 0, &error);
      } else {
        // Whole file pages from the mapping; the rest from the buffer. (The
        // copy faults the mapping in itself, the kernel's fault-around taking
        // 16 pages a fault: measured, MADV_POPULATE_READ first was slower,
        // 1.64 against 1.44 ms for python3.11's 793 pages.)
        if (sources.bytes[i] != NULL && at < sources.plain_end[i]) {
          uint64_t plain = stop < sources.plain_end[i] ? stop : sources.plain_end[i];
          pages = (plain - at) / page_size;
        }
        done = copy_file_pages(uffd, r, at, at, pages, buffer, buffer_pages, 0, &error);
      }
      installed += done / page_size;
      at = done > 0 ? at + done : at + page_size;  // past a page there already
    }
  }
  sys(__NR_munmap, b, buffer_pages * page_size, 0, 0, 0);
  unmap_sources();
  return installed;
}
