// The C side of elfload: what Swift cannot say. Raw system calls that never
// touch errno, the process's original stack as the kernel built it, and the
// entry trampoline that replaces the loader with the loaded program.
#ifndef CELFLOAD_H
#define CELFLOAD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/syscall.h>

/// A raw x86-64 `syscall`: returns the kernel's result, -errno on failure.
/// Writes no errno and calls nothing, so it is safe anywhere.
static inline long elfload_syscall6(long n, long a1, long a2, long a3, long a4, long a5,
                                    long a6) {
  long ret;
  register long r10 __asm__("r10") = a4;
  register long r8 __asm__("r8") = a5;
  register long r9 __asm__("r9") = a6;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(n), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return ret;
}

/// The process's start-up stack as the kernel left it, captured before main.
struct elfload_original_stack {
  int argc;
  char **argv;
  char **envp;
  const uint64_t *auxv;  ///< (tag, value) pairs ending in AT_NULL
};

/// Filled in by a constructor that runs before the Swift runtime's main.
const struct elfload_original_stack *elfload_original(void);

/// The stack elfload gives itself before the jump when RLIMIT_STACK allows,
/// and the least it starts with (measured: it needs under 40 KiB).
#define ELFLOAD_LOADER_STACK (256u << 10)
#define ELFLOAD_LOADER_STACK_MINIMUM (64u << 10)

/// When RLIMIT_STACK's soft limit was below ELFLOAD_LOADER_STACK, the same
/// constructor raised it (as far as the hard limit allows; below
/// ELFLOAD_LOADER_STACK_MINIMUM it says so and exits 126) and this is the
/// program's own value, to restore before the jump; otherwise 0.
uint64_t elfload_program_stack_limit(void);

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
  const uint64_t *mm_map;  ///< the struct prctl_mm_map set before (13 words), or NULL
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

/// The page-aligned [start, end) ranges of the demand handler's code,
/// constants and state (demand.c's sections), as (start, end, protection)
/// triples: what must stay mapped after the jump under demand paging.
void elfload_handler_ranges(uint64_t ranges[9]);

/// Ends glibc's restartable-sequences registration for this thread, so the
/// program's own C library can register its own. Returns 0 or -errno.
long elfload_unregister_rseq(void);

/// Which vector registers exist (for elfload_enter): 0 SSE, 1 AVX, 2 AVX-512.
int elfload_vector_state(void);

// ---- Demand paging (demand.c): the SIGSEGV handler and its state. ----

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
};

/// Kept by the handler; counted with relaxed atomics, read after the fact.
struct elfload_demand_counters {
  uint64_t faults;            ///< faults served by mapping pages
  uint64_t pages_mapped;      ///< pages made accessible, the faulting ones included
  uint64_t pages_prefetched;  ///< of those, pages mapped ahead of a fault on them
  uint64_t waits;             ///< times a thread waited for another to map a page
  uint64_t prefetched_unused; ///< prefetched pages not present when the program ended
  uint64_t unused_counted;    ///< 1 once a watcher has counted prefetched_unused
};

/// The page-state array for `pages` pages: one byte each, zero, wiped in a
/// forked child (see demand.c). Returns its address, or -errno.
long elfload_demand_allocate_states(uint64_t pages);
/// The page-state array (from elfload_demand_allocate_states) and the number
/// of pages to map after each faulting one (0: pure demand).
void elfload_demand_configure(uint8_t *page_state, uint32_t prefetch);
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
enum { ELFLOAD_TRACE_FAULT = 1, ELFLOAD_TRACE_PREFETCH = 2 };

/// A trace buffer in memory shared with a supervising parent.
struct elfload_trace {
  uint64_t capacity;  ///< records that fit
  uint64_t count;     ///< records written or dropped (count > capacity: some dropped)
  struct elfload_trace_record records[];
};

/// Counts into `counters` (memory shared with a supervisor) instead of the
/// handler's own, and traces into `trace` when it is not NULL.
void elfload_demand_share(struct elfload_demand_counters *counters, struct elfload_trace *trace);

/// Reads the time-stamp counter (the trace's clock).
static inline uint64_t elfload_timestamp(void) {
  uint32_t low, high;
  __asm__ volatile("rdtsc" : "=a"(low), "=d"(high));
  return (uint64_t)high << 32 | low;
}

/// Starts a watcher: a process sharing this address space (clone CLONE_VM),
/// which waits for this process to end and then, with the address space
/// still alive, counts the prefetched pages whose page-table entries are not
/// present (/proc/self/pagemap) into prefetched_unused. Returns its pid or -errno.
long elfload_demand_watch(void);

/// Installs the SIGSEGV handler. Returns 0 or -errno.
long elfload_demand_activate(void);
const struct elfload_demand_counters *elfload_demand_counters(void);

/// The loader's own image, from the linker-defined `__executable_start` to `_end`.
const void *elfloadImageStart(void);
const void *elfloadImageEnd(void);
#endif
