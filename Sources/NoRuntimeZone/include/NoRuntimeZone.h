// The no-runtime zone: code that runs where no runtime may -- the jump into the program
// (jump.c) and, after it, inside the program: the demand-paging SIGSEGV handler and the
// hybrid policy's watcher (demand.c). Raw system calls on preallocated state only.
#ifndef NORUNTIMEZONE_H
#define NORUNTIMEZONE_H

#include "CKernel.h"

// ---- The jump (jump.c) ----

/// Everything the jump needs, in memory that is not on the stack.
struct elfload_entry {
  const void *image;       ///< the new initial stack, built in the heap
  uint64_t image_length;   ///< bytes; copied to [stack_top - length, stack_top)
  uint64_t stack_top;      ///< end of the stack mapping
  uint64_t stack_pointer;  ///< rsp at entry: the address of argc
  uint64_t entry;          ///< where execution starts
  uint64_t scrub_low;      ///< stack pages below the image to hand back (page aligned)
  int vector_state;        ///< 1: AVX (clear ymm), 2: AVX-512 (also zmm16-31, k0-7)
  int exe_fd;              ///< the program, for /proc/self/exe, then closed; or -1
  const struct elfload_mm_map *mm_map;  ///< the map set before, or NULL
  const uint64_t *unmap;   ///< (start, length) pairs: the loader's own memory, unmapped at the jump
  uint64_t unmap_count;
  const uint64_t *keep;    ///< (start, length, protection) triples: loader pages that stay,
  uint64_t keep_count;     ///< as anonymous copies (the demand handler's)
};

/// Makes the pages to keep anonymous copies, then moves to a one-page
/// trampoline outside the loader's image, which unmaps the loader's own
/// memory, points /proc/self/exe at the program (when privileges allow),
/// puts the image in place on the stack, hands back the loader's old stack
/// pages, resets the thread pointer, FPU and vector state, zeroes every
/// register and jumps. Returns only if it could not map the trampoline
/// (-errno), before anything is unmapped.
long elfload_enter(const struct elfload_entry *entry);

/// Which vector registers exist (for elfload_enter): 0 SSE, 1 AVX, 2 AVX-512.
int elfload_vector_state(void);

/// The page-aligned [start, end) ranges of the demand handler's code,
/// constants and state (demand.c's sections), as (start, end, protection)
/// triples: what must stay mapped after the jump under demand paging.
void elfload_handler_ranges(uint64_t ranges[9]);

// ---- Demand paging (demand.c): the SIGSEGV handler and its state ----

/// Two per PT_LOAD (file pages, bss) for the most program headers elfload accepts.
enum { ELFLOAD_DEMAND_MAX_REGIONS = 160 };

/// Pages reserved PROT_NONE that become `protection` when first touched: one
/// protection and one backing (a file mapping or anonymous memory).
struct elfload_demand_region {
  uint64_t start, end;     ///< page aligned
  uint64_t first_state;    ///< index of `start`'s entry in the page-state array
  uint64_t staged_page;    ///< the page that is prepared elsewhere, or 0
  uint64_t staging;        ///< where its prepared copy is mapped (read-write)
  uint64_t zero_from;      ///< in the staged page, bytes from here on become zero
  int32_t protection;      ///< PROT_* once mapped
  int32_t segment;         ///< the PT_LOAD's index, for messages and traces
  uint64_t first_page_in_segment;  ///< `start`'s page index within its segment, for traces
  int32_t image;           ///< 0: the program, 1: its interpreter
  int32_t anonymous;       ///< 1: the bss (anonymous memory), 0: file pages
};

/// Kept by the handler; counted with relaxed atomics, read after the fact.
struct elfload_demand_counters {
  uint64_t faults;            ///< faults served by mapping pages
  uint64_t pages_mapped;      ///< pages made accessible, the faulting ones included
  uint64_t pages_prefetched;  ///< of those, pages mapped ahead of a fault on them
  uint64_t waits;             ///< times a thread waited for another to map a page
  uint64_t prefetched_unused; ///< prefetched pages not present when the program ended
  uint64_t unused_counted;    ///< 1 once a watcher has counted prefetched_unused
  uint64_t declined;          ///< SIGSEGVs the handler did not serve (the program's own faults)
  uint64_t pager;             ///< which pager served: ELFLOAD_PAGER_NONE, _SIGNAL or _UFFD
  uint64_t predictor_hits;    ///< --prefetch auto: faults where the predicted pattern went on (predictor.h)
  uint64_t predictor_misses;  ///< --prefetch auto: faults that broke an open window's pattern
  uint64_t pages_replayed;    ///< --mode replay: pages installed from the profile before the jump
  uint64_t replay_ns;         ///< --mode replay: the time installing them took
  // The userfaultfd server (uffd_server.c) and the supervisor:
  uint64_t in_flight;         ///< faults being served: counted and traced once this is back to 0
  uint64_t server_pid;        ///< the server process, whose CPU time the supervisor reads
  uint64_t server_cpu_ns;     ///< the server's CPU time, written as it ends
  uint64_t server_ended;      ///< 1 once server_cpu_ns is written (the pid may be gone)
  uint64_t served_by_watcher; ///< faults served by the normal-priority thread (the CPUs were busy)
  uint64_t takeovers;         ///< times a fault waited a tick for a worker and the watcher took over
  uint64_t workers;           ///< worker threads started (one per CPU the program faulted on)
  uint64_t cpu_checks;        ///< times a worker read where a faulting thread runs (/proc/TID/stat)
};
enum { ELFLOAD_PAGER_NONE = 0, ELFLOAD_PAGER_SIGNAL = 1, ELFLOAD_PAGER_UFFD = 2 };

/// The page-state array for `pages` pages: one byte each, zero, wiped in a
/// forked child (see demand.c). Returns its address, or -errno.
long elfload_demand_allocate_states(uint64_t pages);
/// The page-state array (from elfload_demand_allocate_states) and the number
/// of pages to map after each faulting one (0: pure demand), or, when
/// `predict`, as many as --prefetch auto's rule says (predictor.h).
void elfload_demand_configure(uint8_t *page_state, uint32_t prefetch, int predict);
/// Returns 0, or -1 when ELFLOAD_DEMAND_MAX_REGIONS are in use.
int elfload_demand_add_region(const struct elfload_demand_region *region);

/// One page made accessible, as a supervisor's trace sees it.
struct elfload_trace_record {
  uint64_t timestamp;  ///< rdtsc
  uint64_t address;    ///< the page
  uint32_t page;       ///< its index within the segment's pages
  uint32_t tid;        ///< the thread that faulted
  uint16_t segment;    ///< the program header's index
  uint8_t kind;        ///< ELFLOAD_TRACE_FAULT or ELFLOAD_TRACE_PREFETCH
  uint8_t image;       ///< 0: the program, 1: its interpreter
  uint32_t reserved;
};
_Static_assert(sizeof(struct elfload_trace_record) == 32, "a trace record is 32 bytes");
enum { ELFLOAD_TRACE_FAULT = 1, ELFLOAD_TRACE_PREFETCH = 2 };

/// A trace buffer in memory shared with a supervising parent.
struct elfload_trace {
  uint64_t capacity;  ///< records that fit
  uint64_t count;     ///< records written or dropped (count > capacity: some dropped)
  struct elfload_trace_record records[];
};

/// Appends records for `pages` pages from `first` on (the first of them a
/// fault when `fault`), dropping (but counting) what does not fit: one
/// writer for both pagers. `first_page` is `first`'s index in its segment.
static inline void elfload_trace_pages(struct elfload_trace *t, uint64_t first, uint64_t pages,
                                       uint64_t first_page, uint32_t tid, int32_t segment,
                                       int32_t image, int fault) {
  if (t == 0 || pages == 0) return;
  uint64_t at = __atomic_fetch_add(&t->count, pages, __ATOMIC_RELAXED);
  uint64_t now = elfload_timestamp();
  for (uint64_t i = 0; i < pages; i++) {
    if (at + i >= t->capacity) return;
    struct elfload_trace_record *e = &t->records[at + i];
    e->timestamp = now;
    e->address = first + i * 4096;
    e->page = (uint32_t)(first_page + i);
    e->tid = tid;
    e->segment = (uint16_t)segment;
    e->kind = i == 0 && fault ? ELFLOAD_TRACE_FAULT : ELFLOAD_TRACE_PREFETCH;
    e->image = (uint8_t)image;
  }
}

/// Counts into `counters` (memory shared with a supervisor) instead of the
/// handler's own, and traces into `trace` when it is not NULL.
void elfload_demand_share(struct elfload_demand_counters *counters, struct elfload_trace *trace);

/// What a watcher writes when the program has ended (--residency): CSV text,
/// one row per mapping, in memory shared with a supervisor.
struct elfload_residency {
  uint64_t capacity;   ///< bytes of text that fit
  uint64_t length;     ///< bytes written
  uint64_t truncated;  ///< 1: some rows did not fit
  uint64_t done;       ///< 1 once the watcher has finished (whatever it managed)
  char text[];
};
/// Mappings up to this many pages get a character per page.
enum { ELFLOAD_RESIDENCY_PAGES = 4096 };

/// Starts a watcher: a process sharing this address space (clone CLONE_VM),
/// which waits for this process to end and then, with the address space
/// still alive, (when `unused`) counts the prefetched pages whose page-table
/// entries are not present (/proc/self/pagemap) into prefetched_unused, and
/// (when `residency` is not NULL) writes every mapping's resident pages there.
/// Its code and state are the handler's sections: they must outlive the jump.
/// Returns its pid or -errno.
long elfload_watch(int unused, struct elfload_residency *residency);
/// The jump's trampoline page, which stays mapped in the program: set by elfload_enter (before
/// the handler's sections are kept), so that the watcher names it as elfload's own memory.
extern uint64_t elfload_trampoline_page;

/// --mode replay: installs the recorded pages of [start, start + pages
/// pages) before the jump (see demand.c). Returns the pages installed.
uint64_t elfload_demand_preinstall(uint64_t start, uint64_t pages);

/// Installs the SIGSEGV handler. Returns 0 or -errno.
long elfload_demand_activate(void);
const struct elfload_demand_counters *elfload_demand_counters(void);

// ---- The userfaultfd pager (uffd.c): a fault server in a process of its own ----

/// Pages of the program served by the server: [start, end), the bytes of
/// [start, data_end) from `fd` at `file_offset` on, zeros after them (or all
/// zeros when `fd` is -1: the bss).
struct elfload_uffd_region {
  uint64_t start, end;     ///< page aligned
  uint64_t file_offset;    ///< the file offset of `start`
  uint64_t data_end;       ///< file bytes end here; the rest of the region reads as zero
  int32_t fd;              ///< the program's or interpreter's file, or -1
  int32_t segment;         ///< the PT_LOAD's index, for traces
  uint64_t first_page_in_segment;  ///< `start`'s page index within its segment, for traces
  int32_t image;           ///< 0: the program, 1: its interpreter
};

/// A userfaultfd for this process with what a correct pager needs: forks
/// reported (EVENT_FORK: without it a forked child reads zeros), moves
/// reported (EVENT_REMAP), the faulting thread's id, and faults from the
/// kernel's own accesses served (no UFFD_USER_MODE_ONLY). Returns the
/// descriptor or -errno (EPERM: the kernel does not grant it to this user).
long elfload_uffd_open(void);
/// Adds a region to serve (before the server starts). 0, or -1 when full.
int elfload_uffd_add_region(const struct elfload_uffd_region *region);
/// Pages to copy after each faulting one (or, when `predict`, as many as
/// --prefetch auto's rule says), and where to count (and trace).
void elfload_uffd_configure(uint32_t prefetch, int predict, struct elfload_demand_counters *counters,
                            struct elfload_trace *trace);
/// Where the server serves a fault (uffd_server.c says why).
enum {
  /// On the faulting thread's CPU, by a worker at SCHED_IDLE (the default).
  ELFLOAD_UFFD_PLACEMENT_WORKERS = 0,
  /// By one thread at normal priority that follows the faulting thread's CPU (the design before).
  ELFLOAD_UFFD_PLACEMENT_SINGLE = 1,
};
/// Before the server starts: ELFLOAD_UFFD_PLACEMENT_*.
void elfload_uffd_set_placement(int placement);
/// Starts the server in a process of its own (a double fork: it is not this
/// process's child, and survives its exec), holding `uffd` and the regions'
/// files and nothing else. Returns 0 or -errno.
long elfload_uffd_start_server(int uffd);
/// --mode replay: installs the recorded pages of `run_count` runs, (start,
/// pages) pairs, through `uffd`, after registering and before the jump (see
/// uffd.c). Returns the pages installed.
uint64_t elfload_uffd_preinstall(int uffd, const uint64_t *runs, uint64_t run_count);
/// UFFDIO_REGISTER of [start, start + length) for missing pages. 0 or -errno.
long elfload_uffd_register(int uffd, uint64_t start, uint64_t length);
#endif
