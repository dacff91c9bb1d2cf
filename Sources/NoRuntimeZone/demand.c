// The no-runtime zone after the jump: the SIGSEGV handler of the demand and
// hybrid policies.
//
// It runs on the program's threads, with the program's TLS in %fs, at any
// moment: so it uses only raw system calls, atomics on state that was
// allocated before the jump, and no libc, no errno, no Swift.
//
// Mechanism (chosen by measurement, see Benchmarks/faultcost.c and
// BENCHMARKS.md): every page of the program is reserved up front with its
// real backing -- a private file mapping for file pages, anonymous memory for
// the bss -- but PROT_NONE. A fault on a reserved page is served by
// mprotect()ing it (and, for hybrid, the pages after it) to the segment's
// protection. Compared with mmap(MAP_FIXED) of each page on fault:
//   - it is cheaper per fault (one protection change, no new VMA to build);
//   - it never replaces a mapping, so two threads faulting on one page cannot
//     lose a write (a second MAP_FIXED would drop the first thread's page);
//   - the reservation holds the file, so the program sees no extra fd;
//   - untouched bss stays untouched anonymous memory: it costs nothing.
// The one page that cannot be served in place is the last file page of a
// writable segment with a bss: its bytes after p_filesz must read as zero
// before any thread can see the page. That page is prepared in a private
// staging mapping and moved over its PROT_NONE placeholder with mremap(), in
// one step; the placeholder is the only thing ever replaced, and only by the
// thread that claimed it.
// Everything in this file -- code (the header's inline system call included),
// constants, state -- goes into sections of its own, so that when the
// loader's image is unmapped at the jump, these pages alone can stay (as
// anonymous copies): the handler needs nothing else.
#pragma clang section text = "elfload_handler" rodata = "elfload_handler_rodata" data = \
    "elfload_handler_data" bss = "elfload_handler_bss"
#include "NoRuntimeZone.h"

// The kernel's own definitions (uapi headers): no C library here.
#include <asm/sigcontext.h>
#include <asm/unistd.h>
#include <linux/fcntl.h>
#include <linux/mman.h>
#include <linux/poll.h>
#include <linux/sched.h>
#include <linux/signal.h>
#include <asm/ucontext.h>  // after signal.h and sigcontext.h, whose types it uses
#include <stdatomic.h>

#include "predictor.h"

enum { page_size = 4096 };

// One state byte per page. The array is MADV_WIPEONFORK: a child forked while
// a thread of its parent was mapping a page must not find that page claimed
// by a thread it does not have (it would wait forever), so the child starts
// with every page "reserved". Pages it finds accessible never fault; a page
// it does fault on is mapped again, which is harmless (mprotect to the same
// protection; a staged page that is already in place is left alone).
enum page_state {
  page_reserved = 0,    // PROT_NONE, never touched
  page_claimed = 1,     // a thread is mapping it right now
  page_faulted = 2,     // mapped because it was touched
  page_prefetched = 3,  // mapped ahead of a fault on an earlier page
};
// The state is the byte's low two bits; the rest counts the faults on the
// page after it was mapped that were let through again (see serve()).
enum { state_bits = 3, retry_unit = 4, retry_limit = 32 };

static struct {
  struct elfload_demand_region regions[ELFLOAD_DEMAND_MAX_REGIONS];
  uint32_t region_count;
  uint32_t prefetch;
  int predict;  // --prefetch auto: predictors[i] guesses for regions[i]
  struct elfload_predictor predictors[ELFLOAD_DEMAND_MAX_REGIONS];
  _Atomic uint8_t *page_state;
  struct elfload_demand_counters own_counters;
  struct elfload_demand_counters *counters;  // own_counters, or shared with a supervisor
  struct elfload_trace *trace;               // NULL: no trace
  // The mappings the handler may add by splitting its reservations (half of
  // vm.max_map_count), and an upper bound of how many it has added so far.
  // Past the budget (or when the kernel says ENOMEM) every fault maps the
  // whole run of untouched pages around it, up to an aligned window: that
  // adds no mapping, so the program never dies of the map count.
  uint64_t split_budget;
  uint64_t splits;
  uint32_t spread;  // 1: past the budget
} demand;

// The window a fault maps at most once the budget is spent: 2 MiB, aligned.
enum { spread_pages = 512 };

// The x86 page-fault error code in the signal context. fault_present: the
// page was present, its protection forbade the access. A page the handler
// has not mapped is PROT_NONE, never present: such a fault is not its own.
enum { fault_present = 1 << 0, fault_write = 1 << 1, fault_instruction = 1 << 4 };

long elfload_demand_allocate_states(uint64_t pages) {
  uint64_t length = (pages + page_size) & ~(uint64_t)(page_size - 1);
  long address = elfload_syscall6(__NR_mmap, 0, (long)length, PROT_READ | PROT_WRITE,
                                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (address < 0 && address > -4096) return address;
  long ret = elfload_syscall6(__NR_madvise, address, (long)length, MADV_WIPEONFORK, 0, 0, 0);
  if (ret != 0) {
    elfload_syscall6(__NR_munmap, address, (long)length, 0, 0, 0, 0);
    return ret;
  }
  return address;
}

static long sys(long n, long a1, long a2, long a3, long a4, long a5);

// vm.max_map_count, read before the jump (65530 when it cannot be read).
static uint64_t max_map_count(void) {
  static const char path[] = "/proc/sys/vm/max_map_count";
  uint64_t value = 65530;
  long fd = sys(__NR_openat, -100, (long)path, O_RDONLY | O_CLOEXEC, 0, 0);
  if (fd < 0) return value;
  char text[24];
  long n = sys(__NR_read, fd, (long)text, sizeof text, 0, 0);
  sys(__NR_close, fd, 0, 0, 0, 0);
  if (n <= 0) return value;
  uint64_t parsed = 0;
  long i = 0;
  for (; i < n && text[i] >= '0' && text[i] <= '9'; i++) parsed = parsed * 10 + (uint64_t)(text[i] - '0');
  return i > 0 ? parsed : value;
}

void elfload_demand_configure(uint8_t *page_state, uint32_t prefetch, int predict) {
  demand.split_budget = max_map_count() / 2;
  demand.splits = 0;
  demand.spread = 0;
  demand.page_state = (_Atomic uint8_t *)page_state;
  demand.prefetch = prefetch;
  demand.predict = predict;
  demand.region_count = 0;
  demand.own_counters = (struct elfload_demand_counters){0};
  demand.counters = &demand.own_counters;
  demand.trace = NULL;
}

int elfload_demand_add_region(const struct elfload_demand_region *region) {
  if (demand.region_count == ELFLOAD_DEMAND_MAX_REGIONS) return -1;
  demand.predictors[demand.region_count] = (struct elfload_predictor){0};
  demand.regions[demand.region_count++] = *region;
  return 0;
}

const struct elfload_demand_counters *elfload_demand_counters(void) { return demand.counters; }

void elfload_demand_share(struct elfload_demand_counters *counters, struct elfload_trace *trace) {
  if (counters != NULL) demand.counters = counters;
  demand.trace = trace;
}

static long sys(long n, long a1, long a2, long a3, long a4, long a5) {
  return elfload_syscall6(n, a1, a2, a3, a4, a5, 0);
}

static void count(uint64_t *counter, uint64_t n) {
  __atomic_fetch_add(counter, n, __ATOMIC_RELAXED);
}


void elfload_demand_restorer(void);
__asm__(
    ".pushsection elfload_handler,\"ax\",@progbits\n"
    ".globl elfload_demand_restorer\n"
    ".type elfload_demand_restorer,@function\n"
    "elfload_demand_restorer:\n\t"
    "mov $15, %eax\n\t"  // rt_sigreturn
    "syscall\n\t"
    "hlt\n"
    ".size elfload_demand_restorer, .-elfload_demand_restorer\n"
    ".popsection\n");

// Gives SIGSEGV back to the default action. If the signal came from the
// hardware, returning re-runs the faulting instruction, which now kills the
// process exactly as a native run dies. If someone sent it (kill, raise), it
// is sent again; it is blocked until the handler returns, then kills.
//
// The action is a static, not a local: initialising a local struct may
// compile to a call to memset, and the handler calls nothing it does not own.
// And not const: a const struct with pointers would go to .data.rel.ro,
// outside this file's sections.
static struct elfload_sigaction default_action = {.handler = SIG_DFL};

static void die_natively(int signal, const siginfo_t *info) {
  sys(__NR_rt_sigaction, signal, (long)&default_action, 0, 8, 0);
  if (info->si_code <= 0) {
    long pid = sys(__NR_getpid, 0, 0, 0, 0, 0);
    long tid = sys(__NR_gettid, 0, 0, 0, 0, 0);
    sys(__NR_tgkill, pid, tid, signal, 0, 0);
  }
}

// One trace record per page made accessible: the faulting one (when `fault`),
// then each one brought in with it (for `why`). Dropped (and counted) when the buffer is full.
static void trace(const struct elfload_demand_region *r, uint64_t first, uint64_t pages, int fault, uint32_t why) {
  if (demand.trace == NULL || pages == 0) return;
  uint32_t tid = (uint32_t)sys(__NR_gettid, 0, 0, 0, 0, 0);
  elfload_trace_pages(demand.trace, first, pages, (first - r->start) / page_size + r->first_page_in_segment, tid,
                      r->segment, r->image, fault, why);
}

// A line for standard error, built in place: no allocation, no C library.
struct line {
  char text[160];
  long length;
};

static void add_text(struct line *l, const char *text) {
  while (*text != 0 && l->length < (long)sizeof l->text) l->text[l->length++] = *text++;
}

static void add_number(struct line *l, uint64_t v, unsigned base) {
  char digits[20];
  int n = 0;
  do {
    digits[n++] = "0123456789abcdef"[v % base];
    v /= base;
  } while (v != 0);
  while (n > 0 && l->length < (long)sizeof l->text) l->text[l->length++] = digits[--n];
}

// "elfload: demand paging could not map the page at 0x...: errno N": which page, and
// what the kernel said (mprotect's, or the staged page's mremap), for a failure that should
// not happen (README: differences the tests know about); ENOMEM adds "(out of memory or map
// count?)".
static void say_could_not_map(uint64_t page, long error) {
  struct line l;  // (not zeroed whole: that would be a call to memset, which is gone after the jump)
  l.length = 0;
  add_text(&l, "elfload: demand paging could not map the page at 0x");
  add_number(&l, page, 16);
  add_text(&l, ": errno ");
  uint64_t number = error < 0 ? (uint64_t)-error : (uint64_t)error;
  add_number(&l, number, 10);
  add_text(&l, number == 12 ? " (out of memory or map count?)\n" : "\n");
  sys(__NR_write, 2, (long)l.text, l.length, 0, 0);
}

static struct elfload_demand_region *region_of(uint64_t address) {
  for (uint32_t i = 0; i < demand.region_count; i++) {
    struct elfload_demand_region *r = &demand.regions[i];
    if (address >= r->start && address < r->end) return r;
  }
  return NULL;
}

static _Atomic uint8_t *state_of(const struct elfload_demand_region *r, uint64_t page) {
  return &demand.page_state[r->first_state + (page - r->start) / page_size];
}

static int allows(int protection, uint64_t error) {
  if (error & fault_write) return (protection & PROT_WRITE) != 0;
  if (error & fault_instruction) return (protection & PROT_EXEC) != 0;
  return protection != PROT_NONE;
}

// The staged page: its prepared copy (file bytes, zeroed tail) replaces the
// placeholder in one mremap, so no thread ever sees the unzeroed tail.
static long install_staged(const struct elfload_demand_region *r) {
  // Moved in already (in a parent this process was forked from, see
  // page_state)? Then the staging address is no longer mapped.
  unsigned char resident;
  if (sys(__NR_mincore, (long)r->staging, page_size, (long)&resident, 0, 0) == -12)  // ENOMEM
    return 0;
  uint64_t length = r->staged_page + page_size - r->zero_from;
  void *tail = (void *)(r->staging + (r->zero_from - r->staged_page));
  __asm__ volatile("rep stosb" : "+D"(tail), "+c"(length) : "a"(0) : "memory");
  if (r->protection != (PROT_READ | PROT_WRITE)) {
    long ret = sys(__NR_mprotect, (long)r->staging, page_size, r->protection, 0, 0);
    if (ret != 0) return ret;
  }
  long ret = sys(__NR_mremap, (long)r->staging, page_size, page_size,
                 MREMAP_MAYMOVE | MREMAP_FIXED, (long)r->staged_page);
  return ret < 0 ? ret : 0;
}

static uint8_t kind_of(const struct elfload_demand_region *r, uint64_t page) {
  return atomic_load_explicit(state_of(r, page), memory_order_relaxed) & state_bits;
}

// Whether `page` of `r` is (as far as the states say) still part of a PROT_NONE
// reservation: mapping the page next to it then splits the reservation there.
static int untouched(const struct elfload_demand_region *r, uint64_t page) {
  if (page < r->start || page >= r->end) return 0;
  uint8_t kind = kind_of(r, page);
  return kind == page_reserved || kind == page_claimed;
}

static int claim(const struct elfload_demand_region *r, uint64_t page) {
  uint8_t expected = page_reserved;
  return atomic_compare_exchange_strong(state_of(r, page), &expected, page_claimed);
}

// Where a window that still splits its reservation can grow to split nothing: from `from`
// (the window's low end when `step` is negative, its high end otherwise), past the untouched
// pages to the nearest accessible one, or to the region's end. Returns that boundary and says
// whether an accessible page is beyond it; `from` itself when the way is barred (a page another
// thread is mapping, or the staged page, which has its own way in and mapping).
static uint64_t reach(const struct elfload_demand_region *r, uint64_t from, int step, int *accessible) {
  *accessible = 0;
  uint64_t at = from;
  for (;;) {
    if (step < 0 ? at == r->start : at == r->end) return at;
    uint64_t next = step < 0 ? at - page_size : at;  // the page beyond the boundary `at`
    uint8_t kind = kind_of(r, next);
    if (next == r->staged_page) return from;  // a mapping of its own once installed
    if (kind == page_faulted || kind == page_prefetched) {
      *accessible = 1;
      return at;
    }
    if (kind != page_reserved) return from;
    at = step < 0 ? at - page_size : at + page_size;
  }
}

// Past the budget a window can still split its reservation, a mapping more for each side
// left PROT_NONE (a window with no accessible page beside it), and with the map count full
// (the program's own mappings count too) mprotect says ENOMEM. A change that extends an
// accessible neighbour adds no mapping (the kernel merges it), nor does one that makes a
// whole reservation accessible. Grows the claimed [*low, *high) of `r` down to the nearest
// accessible page, or else up to it, or else to both ends of the region, claiming the pages
// between. Returns whether it grew to one of those.
static int join(const struct elfload_demand_region *r, uint64_t *low, uint64_t *high) {
  int below_accessible, above_accessible;
  uint64_t below = reach(r, *low, -1, &below_accessible), above = reach(r, *high, 1, &above_accessible);
  int down = below_accessible || (!above_accessible && below == r->start && above == r->end);
  int up = !below_accessible && (above_accessible || down);
  if (!down && !up) return 0;
  if (down)
    while (*low > below && claim(r, *low - page_size)) *low -= page_size;
  if (up)
    while (*high < above && claim(r, *high)) *high += page_size;
  return (!down || *low == below) && (!up || *high == above);
}

// Makes [low, high) of `r` accessible (claimed by the caller, its neighbours' states as they
// were), and keeps the map-count budget: each side left PROT_NONE is a mapping more. Past the
// budget, or when the kernel says ENOMEM (the map count, most likely: the program's own
// mappings count too), spread mode is on, and on ENOMEM the caller claims its run again, a
// window at a time. `spread`: the mode the run was claimed in. Returns 0 or -errno.
static long protect(const struct elfload_demand_region *r, uint64_t low, uint64_t high, int spread) {
  uint64_t splits = (uint64_t)untouched(r, low - page_size) + (uint64_t)untouched(r, high);
  long ret = sys(__NR_mprotect, (long)low, (long)(high - low), r->protection, 0, 0);
  if (spread) return ret;
  if (ret == -12 || (ret == 0 && __atomic_add_fetch(&demand.splits, splits, __ATOMIC_RELAXED) > demand.split_budget))
    __atomic_store_n(&demand.spread, 1, __ATOMIC_RELAXED);
  return ret;
}

// Maps the pages `ahead` names along its stride after `page` (a stride of more than one
// page: each page is a protection change of its own), up to the first that is taken.
// Returns how many it mapped.
static uint64_t install_strided(const struct elfload_demand_region *r, uint64_t page,
                                const struct elfload_prefetch *ahead) {
  uint64_t k = 0;
  while (k < ahead->strided) {
    uint64_t p = page + (uint64_t)((int64_t)(k + 1) * ahead->stride);
    if (p == r->staged_page || !claim(r, p)) break;
    if (protect(r, p, p + page_size, 0) != 0) {
      atomic_store_explicit(state_of(r, p), page_reserved, memory_order_release);
      break;
    }
    atomic_store_explicit(state_of(r, p), page_prefetched, memory_order_release);
    count(&demand.counters->pages_mapped, 1);
    count(&demand.counters->pages_prefetched, 1);
    trace(r, p, 1, 0, ELFLOAD_WHY_STRIDE);
    k++;
    if (__atomic_load_n(&demand.spread, __ATOMIC_RELAXED)) break;  // past the budget
  }
  return k;
}

// Maps `page` (claimed by this thread), and the unclaimed pages around it in
// the same region that `prefetch` pages (hybrid) or the predictor (--prefetch
// auto) name; once the map-count budget is spent, the whole run of unclaimed
// pages around it within its aligned window instead. Returns 0 or -errno.
static long install(const struct elfload_demand_region *r, uint64_t page) {
  if (page == r->staged_page) {
    long ret = install_staged(r);
    if (ret != 0) return ret;
    atomic_store_explicit(state_of(r, page), page_faulted, memory_order_release);
    count(&demand.counters->faults, 1);
    count(&demand.counters->pages_mapped, 1);
    trace(r, page, 1, 1, ELFLOAD_WHY_TOUCHED);
    return 0;
  }
  int spread = __atomic_load_n(&demand.spread, __ATOMIC_RELAXED) != 0;
  // What to map with the page: `prefetch` pages after it (hybrid), what the
  // predictor says (hybrid --prefetch auto), or nothing (demand).
  struct elfload_prefetch ahead;
  elfload_prefetch_fixed(&ahead, page, r->end, demand.prefetch);
  if (demand.predict && !spread) {
    // (This state outlives the jump, a page of it for every 170 regions: what the rule needs of
    // a region is made here from what the region says.)
    struct elfload_predicted_region region;
    region.start = r->start;
    region.end = r->end;
    region.kind = elfload_region_kind(r->protection, r->anonymous);
    region.block = predictor_block_signal;
    elfload_predict(&demand.predictors[r - demand.regions], &region, page, &ahead);
  }
  // Claim a run of pages around it; stop at the first one that is taken, and
  // before the staged page, which has its own way in.
  uint64_t first = page, end = page + page_size;
  if (spread) {
    uint64_t window = (uint64_t)spread_pages * page_size;
    uint64_t low = page & ~(window - 1), high = low + window;
    while (end < r->end && end < high && end != r->staged_page && claim(r, end)) end += page_size;
    while (first > r->start && first - page_size >= low && first - page_size != r->staged_page &&
           claim(r, first - page_size))
      first -= page_size;
    ahead.why = ELFLOAD_WHY_SPREAD;
  } else {
    while (end < ahead.high && end != r->staged_page && claim(r, end)) end += page_size;
    while (first > ahead.low && first - page_size != r->staged_page && claim(r, first - page_size)) first -= page_size;
  }
  long ret = protect(r, first, end, spread);
  if (ret == -12 && spread && join(r, &first, &end)) ret = protect(r, first, end, spread);
  // The other pages' claims end here; the faulting page's ends in serve().
  uint8_t others = ret == 0 ? page_prefetched : page_reserved;
  for (uint64_t p = first; p < end; p += page_size)
    if (p != page) atomic_store_explicit(state_of(r, p), others, memory_order_release);
  if (ret == -12 && !spread) return install(r, page);  // spread now: a window at a time
  if (ret != 0) return ret;
  atomic_store_explicit(state_of(r, page), page_faulted, memory_order_release);
  uint64_t pages = (end - first) / page_size;
  count(&demand.counters->faults, 1);
  count(&demand.counters->pages_mapped, pages);
  count(&demand.counters->pages_prefetched, pages - 1);
  trace(r, page, (end - page) / page_size, 1, ahead.why);
  trace(r, first, (page - first) / page_size, 0, ahead.why);
  uint64_t strided = spread ? 0 : install_strided(r, page, &ahead);
  elfload_count_prediction(&ahead, pages - 1, strided, demand.counters);
  return 0;
}

// Populates [from, to) of `r`: the bss written at once (a write to the zero
// page a read maps would fault again), the rest read.
static long populate(const struct elfload_demand_region *r, uint64_t from, uint64_t to) {
  return sys(__NR_madvise, (long)from, (long)(to - from),
             r->anonymous && (r->protection & PROT_WRITE) ? MADV_POPULATE_WRITE : MADV_POPULATE_READ, 0, 0);
}

// --mode replay, before the jump: installs the pages of [start, start +
// pages pages) that are in a region and still reserved, a run of them at a
// time, and asks the kernel to populate them (MADV_POPULATE_READ: a write
// later is the kernel's copy-on-write, not a fault of ours); pages outside
// every region (read-only data, mapped readable up front) are only populated.
// As the fault path, it keeps within the map-count budget: past it (or when
// mprotect says ENOMEM) a run is made accessible with the untouched pages
// around it, up to its aligned windows, which adds no mapping; a later run's
// page made accessible so is then only populated. Returns the pages
// installed or populated.
uint64_t elfload_demand_preinstall(uint64_t start, uint64_t pages) {
  uint64_t installed = 0, end = start + pages * page_size;
  for (uint64_t page = start; page < end;) {
    struct elfload_demand_region *r = region_of(page);
    if (r == NULL) {
      if (sys(__NR_madvise, (long)page, page_size, MADV_POPULATE_READ, 0, 0) == 0) installed++;
      page += page_size;
      continue;
    }
    if (page == r->staged_page) {
      if (claim(r, page) && install_staged(r) == 0) {
        atomic_store_explicit(state_of(r, page), page_faulted, memory_order_release);
        installed++;
      }
      page += page_size;
      continue;
    }
    if (kind_of(r, page) == page_faulted) {  // made accessible with an earlier run
      populate(r, page, page + page_size);
      installed++;
      page += page_size;
      continue;
    }
    // A run of pages this call claims, up to the region's end or the staged page.
    uint64_t first = page;
    while (page < end && page < r->end && page != r->staged_page && claim(r, page)) page += page_size;
    if (page == first) {
      page += page_size;  // taken already
      continue;
    }
    int spread = __atomic_load_n(&demand.spread, __ATOMIC_RELAXED) != 0;
    uint64_t low = first, high = page;
    if (spread) {
      uint64_t window = (uint64_t)spread_pages * page_size;
      uint64_t floor = first & ~(window - 1), ceiling = (page + window - 1) & ~(window - 1);
      while (low > r->start && low - page_size >= floor && low - page_size != r->staged_page && claim(r, low - page_size))
        low -= page_size;
      while (high < r->end && high < ceiling && high != r->staged_page && claim(r, high)) high += page_size;
    }
    long ret = protect(r, low, high, spread);
    if (ret == -12 && spread && join(r, &low, &high)) ret = protect(r, low, high, spread);
    for (uint64_t p = low; p < high; p += page_size)
      atomic_store_explicit(state_of(r, p), ret == 0 ? page_faulted : page_reserved, memory_order_release);
    if (ret == -12 && !spread) {  // spread now: this run again, a window at a time
      page = first;
      continue;
    }
    if (ret != 0) continue;
    populate(r, first, page);
    installed += (page - first) / page_size;
  }
  return installed;
}

// Whether the kernel can read `page`: rt_sigprocmask(SIG_BLOCK) reads the set
// from it, and fails with EFAULT on a PROT_NONE page (without touching it).
// Every signal is blocked while this handler runs (its sa_mask), and the mask
// comes back from the signal frame when it returns: nothing changes.
static int readable(uint64_t page) {
  return sys(__NR_rt_sigprocmask, SIG_BLOCK, (long)page, 0, 8, 0) == 0;
}

enum outcome { retry, not_ours, failed };

// No fault is retried for ever: a fault the pager does not explain is the
// program's own, and dies as it would natively.
static enum outcome serve(const struct elfload_demand_region *r, uint64_t page, uint64_t error, long *failure) {
  // Present, and the protection forbade it: the page was mapped, and its
  // protection is the segment's or the program's own (mprotect). Not ours.
  if (error & fault_present) return not_ours;
  _Atomic uint8_t *state = state_of(r, page);
  for (unsigned waits = 0;; waits++) {
    uint8_t seen = atomic_load_explicit(state, memory_order_acquire);
    uint8_t kind = seen & state_bits;
    if (kind == page_reserved) {
      if (!atomic_compare_exchange_strong(state, &seen, page_claimed)) continue;
      // Untouched as far as the handler knows: PROT_NONE, unless the program
      // changed its protection itself (an mprotect before its first touch).
      // A write or a jump into such a page, readable now, is the program's
      // own fault: mapping it would undo the program's mprotect. (Asked only
      // once the page is claimed: no other thread can be mapping it now.)
      if ((error & (fault_write | fault_instruction)) && readable(page)) {
        atomic_store_explicit(state, page_reserved, memory_order_release);
        return not_ours;
      }
      *failure = install(r, page);
      if (*failure == 0) return retry;
      atomic_store_explicit(state, page_reserved, memory_order_release);
      return failed;
    }
    if (kind == page_claimed) {
      // Another thread of this process is mapping it: wait until it is done.
      if (waits == 0) count(&demand.counters->waits, 1);
      sys(__NR_sched_yield, 0, 0, 0, 0, 0);
      continue;
    }
    // Mapped already, and the segment's protection allows the access?
    if (!allows(r->protection, error)) return not_ours;
    // This thread waited for another to map it: the access goes through now.
    if (waits > 0) return retry;
    // Not present, though mapped: another thread mapped it while this one
    // trapped (once is enough, the access goes through now), or the program
    // took the access away itself before the page was ever present (it
    // faults again, for ever). A few retries per page, then it is the
    // program's own fault.
    if ((seen >> 2) >= retry_limit) return not_ours;
    if (atomic_compare_exchange_strong(state, &seen, (uint8_t)(seen + retry_unit))) return retry;
  }
}

static void on_fault(int signal, siginfo_t *info, void *context) {
  const struct ucontext *uc = context;
  uint64_t address = (uint64_t)info->si_addr;
  // Our pages are always mapped: a fault on them is an access error.
  if (info->si_code == SEGV_ACCERR) {
    const struct elfload_demand_region *r = region_of(address);
    if (r != NULL) {
      uint64_t page = address & ~(uint64_t)(page_size - 1);
      long failure = 0;
      switch (serve(r, page, uc->uc_mcontext.err, &failure)) {
      case retry: return;
      case not_ours: break;
      case failed:
        say_could_not_map(page, failure);
        break;
      }
    }
  }
  // Counted, so that a supervisor can tell the program's own fault from a
  // known limit (which kills without this handler seeing the fault).
  count(&demand.counters->declined, 1);
  die_natively(signal, info);
}

// The watcher: see NoRuntimeZone.h. It runs only code and data of this file's
// sections (which outlive the loader) on a stack of its own.
static long watched_pid;
static int watch_unused;                      // count prefetched_unused (hybrid, signal pager)
static struct elfload_residency *residency;   // write the residency picture here, or NULL
static uint64_t watcher_stack;                // its own stack: left out of the picture
uint64_t elfload_trampoline_page;
enum { watcher_stack_size = 64 << 10 };

static void count_unused(long pagemap) {
  uint64_t unused = 0;
  for (uint32_t i = 0; i < demand.region_count; i++) {
    const struct elfload_demand_region *r = &demand.regions[i];
    for (uint64_t page = r->start; page < r->end; page += page_size) {
      if (kind_of(r, page) != page_prefetched) continue;
      uint64_t entry = 0;
      sys(__NR_pread64, pagemap, (long)&entry, 8, (long)(page / page_size * 8), 0);
      if ((entry >> 62) == 0) unused++;  // neither present (63) nor swapped (62)
    }
  }
  demand.counters->prefetched_unused = unused;
  __atomic_store_n(&demand.counters->unused_counted, 1, __ATOMIC_RELEASE);
}

// Appending to the residency text; what does not fit is dropped (and flagged).
static void put(const char *bytes, uint64_t n) {
  struct elfload_residency *o = residency;
  if (o->length + n > o->capacity) {
    o->truncated = 1;
    return;
  }
  for (uint64_t i = 0; i < n; i++) o->text[o->length + i] = bytes[i];
  o->length += n;
}
static void put_char(char c) { put(&c, 1); }
static void put_decimal(uint64_t v) {
  char d[20];
  int n = 0;
  do {
    d[19 - n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v > 0);
  put(d + 20 - n, (uint64_t)n);
}
static void put_hex(uint64_t v) {
  char d[18];
  int n = 0;
  do {
    uint8_t nibble = v & 15;
    d[17 - n++] = (char)(nibble < 10 ? '0' + nibble : 'a' + nibble - 10);
    v >>= 4;
  } while (v > 0);
  d[17 - n++] = 'x';
  d[17 - n++] = '0';
  put(d + 18 - n, (uint64_t)n);
}

static uint64_t parse_hex(const char **p, const char *end) {
  uint64_t v = 0;
  for (; *p < end; (*p)++) {
    char c = **p;
    if (c >= '0' && c <= '9') v = v * 16 + (uint64_t)(c - '0');
    else if (c >= 'a' && c <= 'f') v = v * 16 + (uint64_t)(c - 'a' + 10);
    else break;
  }
  return v;
}

static void watcher_main(void);
static const char residency_header[] = "start,end,perms,resident_pages,total_pages,pages,name\n";

// Every mapping of /proc/self/maps, with how many of its pages have a present
// (or swapped) page-table entry (/proc/self/pagemap) and, up to
// ELFLOAD_RESIDENCY_PAGES pages, one character per page: '#' resident, '.' not.
static void write_residency(long pagemap) {
  // Scratch memory is the watcher's own now: the program is gone.
  enum { maps_capacity = 8 << 20 };
  long scratch = elfload_syscall6(__NR_mmap, 0, maps_capacity, PROT_READ | PROT_WRITE,
                                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (scratch < 0 && scratch > -4096) return;
  char *text = (char *)scratch;
  uint64_t length = 0;
  static const char maps_path[] = "/proc/self/maps";
  long fd = sys(__NR_openat, -100, (long)maps_path, O_RDONLY, 0, 0);
  if (fd < 0) return;
  // The tail is where each row's picture is put together.
  uint64_t room = maps_capacity - 2 * ELFLOAD_RESIDENCY_PAGES;
  for (;;) {
    long n = sys(__NR_read, fd, (long)(text + length), (long)(room - length), 0, 0);
    if (n <= 0) break;
    length += (uint64_t)n;
    if (length == room) break;
  }
  sys(__NR_close, fd, 0, 0, 0, 0);
  put(residency_header, sizeof residency_header - 1);
  const char *p = text, *end = text + length;
  while (p < end) {
    const char *line = p, *eol = p;
    while (eol < end && *eol != '\n') eol++;
    p = eol + 1;
    const char *q = line;
    uint64_t start = parse_hex(&q, eol);
    if (q < eol && *q == '-') q++;
    uint64_t stop = parse_hex(&q, eol);
    if (q < eol) q++;
    const char *perms = q;
    // Fields: perms offset dev inode name; the name starts after the inode's padding.
    int field = 0;
    while (q < eol && field < 4) {
      while (q < eol && *q != ' ') q++;
      while (q < eol && *q == ' ') q++;
      field++;
    }
    const char *name = q;
    // elfload's own memory that stays after the jump has no name: give it one.
    static const char kept[] = "[elfload: handler and watcher]";
    static const char shared[] = "[elfload: shared with the supervisor]";
    static const char trampoline[] = "[elfload: trampoline]";
    static const char page_states[] = "[elfload: the signal pager's page states]";
    // (Its three sections: found by something of each -- code, constants, state.)
    if (name == eol) {
      // (Not an array of the three: an initialised one would be copied from
      // .data.rel.ro, which is gone after the jump.)
      uint64_t code = (uint64_t)&watcher_main, constants = (uint64_t)residency_header, state = (uint64_t)&demand;
      if ((code >= start && code < stop) || (constants >= start && constants < stop) || (state >= start && state < stop)) {
        name = kept;
        eol = kept + sizeof kept - 1;
      }
    }
    if ((uint64_t)residency >= start && (uint64_t)residency < stop) {
      name = shared;
      eol = shared + sizeof shared - 1;
    }
    if (elfload_trampoline_page >= start && elfload_trampoline_page < stop && name == eol) {
      name = trampoline;
      eol = trampoline + sizeof trampoline - 1;
    }
    uint64_t states = (uint64_t)demand.page_state;
    if (states != 0 && states >= start && states < stop && name == eol) {
      name = page_states;
      eol = page_states + sizeof page_states - 1;
    }
    if (stop <= start || start >= (1ULL << 47)) continue;  // [vsyscall]: not in pagemap's range
    if (start == (uint64_t)scratch || start == watcher_stack) continue;  // the watcher's own
    uint64_t pages = (stop - start) / page_size;
    uint64_t resident = 0;
    int picture = pages <= ELFLOAD_RESIDENCY_PAGES;
    // One pass to count, writing the picture after the counts: the row is
    // put together in the scratch memory's tail.
    char *row = text + maps_capacity - ELFLOAD_RESIDENCY_PAGES - 1;
    uint64_t entries[512];
    for (uint64_t first = 0; first < pages; first += 512) {
      uint64_t n = pages - first < 512 ? pages - first : 512;
      long got = sys(__NR_pread64, pagemap, (long)entries, (long)(n * 8), (long)((start / page_size + first) * 8), 0);
      for (uint64_t i = 0; i < n; i++) {
        int present = got > 0 && (uint64_t)got >= (i + 1) * 8 && (entries[i] >> 62) != 0;
        resident += (uint64_t)present;
        if (picture) row[first + i] = present ? '#' : '.';
      }
    }
    put_hex(start);
    put_char(',');
    put_hex(stop);
    put_char(',');
    put(perms, 4);
    put_char(',');
    put_decimal(resident);
    put_char(',');
    put_decimal(pages);
    put_char(',');
    if (picture) put(row, pages);
    put_char(',');
    for (const char *c = name; c < eol; c++) put_char(*c == ',' ? ';' : *c);
    put_char('\n');
  }
}

__attribute__((noreturn, used)) static void watcher_main(void) {
  // (Every signal blocked from its first instruction on: elfload_watch.)
  // Its copy of the program's descriptors goes: a reader of the program's
  // stdout must see end-of-file when the program ends, not when this does.
  sys(__NR_close_range, 0, ~0U, 0, 0, 0);
  // pidfd_open of the program, whose pid was noted before the clone: if it
  // has already ended (ESRCH), there is nothing to wait for.
  long pidfd = sys(__NR_pidfd_open, watched_pid, 0, 0, 0, 0);
  if (pidfd >= 0 || pidfd == -3) {
    struct pollfd p;
    p.fd = (int)pidfd;
    p.events = POLLIN;
    p.revents = 0;
    while (pidfd >= 0 && sys(__NR_poll, (long)&p, 1, -1, 0, 0) <= 0) {
    }
    // The program is gone; this address space is not (this process holds it).
    static const char pagemap[] = "/proc/self/pagemap";
    long fd = sys(__NR_openat, -100, (long)pagemap, O_RDONLY, 0, 0);
    if (fd >= 0) {
      if (watch_unused) count_unused(fd);
      if (residency != NULL) write_residency(fd);
    }
  }
  if (residency != NULL) __atomic_store_n(&residency->done, 1, __ATOMIC_RELEASE);
  for (;;) sys(__NR_exit, 0, 0, 0, 0, 0);
}

long elfload_watch(int unused, struct elfload_residency *picture) {
  long stack = elfload_syscall6(__NR_mmap, 0, watcher_stack_size, PROT_READ | PROT_WRITE,
                                MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (stack < 0 && stack > -4096) return stack;
  watcher_stack = (uint64_t)stack;
  watch_unused = unused;
  residency = picture;
  long top = stack + watcher_stack_size;
  watched_pid = sys(__NR_getpid, 0, 0, 0, 0, 0);
  // The watcher starts with every signal blocked (the clone copies the mask), and only SIGKILL
  // ends it: it is in the program's process group, and a signal the program sends the whole
  // group -- in its first microseconds too, before the watcher has run at all -- must neither
  // end it (the rows would be lost) nor run the program's handler in the memory they share.
  uint64_t all = ~(uint64_t)0, mask = 0;
  sys(__NR_rt_sigprocmask, SIG_SETMASK, (long)&all, (long)&mask, 8, 0);
  long ret;
  register long r10 __asm__("r10") = 0;
  register long r8 __asm__("r8") = 0;
  // clone(CLONE_VM | CLONE_UNTRACED, top): no exit signal, so a program's
  // wait() does not see it. The child starts on the new stack.
  __asm__ volatile(
      "syscall\n\t"
      "test %%rax, %%rax\n\t"
      "jnz  1f\n\t"
      "xor  %%ebp, %%ebp\n\t"
      "call watcher_main\n\t"
      "hlt\n"
      "1:\n"
      : "=a"(ret)
      : "a"(__NR_clone), "D"(CLONE_VM | CLONE_UNTRACED), "S"(top), "d"(0), "r"(r10), "r"(r8)
      : "rcx", "r11", "memory");
  sys(__NR_rt_sigprocmask, SIG_SETMASK, (long)&mask, 0, 8, 0);
  return ret;
}

long elfload_demand_activate(void) {
  struct elfload_sigaction action = {
      .handler = (void *)on_fault,
      // Every signal blocked while a page is mapped: a program's signal handler
      // on this thread must not fault on a page this thread has claimed.
      .mask = ~(uint64_t)0,
      .flags = SA_SIGINFO | SA_ONSTACK | SA_RESTORER,
      .restorer = elfload_demand_restorer,
  };
  return sys(__NR_rt_sigaction, SIGSEGV, (long)&action, 0, 8, 0);
}
