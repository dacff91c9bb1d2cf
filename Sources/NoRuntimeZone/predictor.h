// --prefetch auto: the rule both pagers follow to choose what to bring in with a faulting
// page. Included by demand.c (inside its handler sections) and uffd.c; state per region, no
// allocation, no system call.
//
// A region is one segment's file pages or its bss, and what it holds decides what is
// predicted (elfload_region_kind: from its protection and backing):
//
//   File pages -- code, read-only data, writable data -- get what the kernel gives a file
//   mapping (mm/memory.c do_fault_around, mm/filemap.c do_sync_mmap_readahead and
//   do_async_mmap_readahead, mm/readahead.c):
//     - fault-around: a fault brings in the aligned block of `block` pages around it, as
//       do_fault_around maps the fault_around_bytes (64 KiB: 16 pages) around a read fault
//       from the page cache. Under the userfaultfd pager each page brought in is a copy, and
//       resident: 16 pages, the kernel's own block, so that memory stays native's. Under the
//       signal pager a page made accessible costs nothing until it is touched, and the kernel
//       then maps it with its own fault-around, as natively: 64 pages, fewer signals for the
//       same memory (predictor_block_*).
//     - readahead: a fault on the page right after the last pages brought in (the program ran
//       off their end, as a sequential reader reaches readahead's marker) is a hit: twice as
//       many pages as last time from there on, up to 512. Any other fault in the region while
//       such a run is open is a miss: the run ends, and the fault gets its block again.
//   Writable data and the bss (anonymous memory, which the kernel maps a page at a time)
//   also get strides (Leap's majority stride, ATC'20, with readahead's doubling window):
//     - two faults in a row, in one region, the same distance apart (the stride: one page
//       for a sequential pass, any number of pages, either way) open a window of
//       `predictor_first_window` pages along the stride, after the faulting page;
//     - a fault exactly one stride past the window's last page (every page of it used) is a
//       hit: the window doubles, up to `predictor_max_window`;
//     - any other fault while a window is open is a miss: the window closes, and that
//       fault's distance from the last one is the next candidate.
//   The bss gets nothing else: before a stride is seen, a fault there brings its page alone.
// Nothing is brought in past the region's end (or before its start), nor a page that is
// there already.
#ifndef ELFLOAD_PREDICTOR_H
#define ELFLOAD_PREDICTOR_H

#include "NoRuntimeZone.h"

enum {
  predictor_first_window = 4,
  predictor_max_window = 512,
  predictor_block_uffd = 16,
  predictor_block_signal = 64,
  predictor_page = 4096,
};

/// What a region holds.
enum { elfload_region_code = 0, elfload_region_read_only = 1, elfload_region_data = 2, elfload_region_bss = 3 };

/// From a region's protection (PROT_*) and backing (anonymous: the bss).
static inline int elfload_region_kind(int32_t protection, int anonymous) {
  if (anonymous) return elfload_region_bss;
  if (protection & 4 /* PROT_EXEC */) return elfload_region_code;
  if (protection & 2 /* PROT_WRITE */) return elfload_region_data;
  return elfload_region_read_only;
}

/// A region as the rule sees it: its pages [start, end), what it holds, the fault-around block.
struct elfload_predicted_region {
  uint64_t start, end;
  int32_t kind;    // elfload_region_*
  uint32_t block;  // pages, a power of two
};

// One region's history. Threads of one process (signal pager) or processes
// sharing pages through fork (userfaultfd server) may update it at once: each
// field is read and written atomically, and a mixed-up history costs only a
// worse guess (what is installed is claimed page by page elsewhere).
struct elfload_predictor {
  uint64_t last;      // the last faulting page, or 0
  int64_t stride;     // bytes from the fault before it (the candidate), or 0
  uint64_t expected;  // where a stride hit lands: one stride past the window's last page
  uint32_t window;    // pages along the stride after the last fault (0: no pattern)
  uint32_t run;       // file pages: pages of the last block or run brought in (0: none)
  uint64_t next;      // file pages: the page right after it, where a readahead hit lands
  uint32_t reading;   // 1: that was a readahead run (a hit's), which a miss ends
};

// What to bring in with the faulting page: the pages [low, high) around it (it among them),
// and `strided` pages `stride` bytes apart after it (a stride other than one page).
struct elfload_prefetch {
  uint64_t low, high;
  uint32_t why;  // why the others of [low, high) come: ELFLOAD_WHY_*
  int64_t stride;
  uint64_t strided;
  // For the caller to count once the fault is served: predictor_hit, predictor_miss or 0.
  uint32_t stride_outcome, readahead_outcome;
};
// (Filled field by field through a pointer, here and in the handler: a
// compound literal that leaves a field out may compile to a call to memset,
// and copying the struct whole to one to memcpy (at -O0), outside the
// handler's sections, which are all that is left after the jump.)
enum { predictor_hit = 1, predictor_miss = 2 };

/// What a fixed --prefetch N brings in: up to N pages after the faulting one, in its region.
static inline void elfload_prefetch_fixed(struct elfload_prefetch *ahead, uint64_t page, uint64_t end, uint64_t n) {
  ahead->low = page;
  ahead->high = (end - page) / predictor_page > n ? page + (n + 1) * predictor_page : end;
  ahead->why = ELFLOAD_WHY_FIXED;
  ahead->stride = 0;
  ahead->strided = 0;
  ahead->stride_outcome = 0;
  ahead->readahead_outcome = 0;
}

/// Counts a served fault's outcomes, and the pages each mechanism brought in: `around` pages
/// of [low, high) besides the faulting one, `strided` along the stride.
static inline void elfload_count_prediction(const struct elfload_prefetch *ahead, uint64_t around, uint64_t strided,
                                            struct elfload_demand_counters *counters) {
  if (ahead->stride_outcome == predictor_hit) __atomic_fetch_add(&counters->stride_hits, 1, __ATOMIC_RELAXED);
  if (ahead->stride_outcome == predictor_miss) __atomic_fetch_add(&counters->stride_misses, 1, __ATOMIC_RELAXED);
  if (ahead->readahead_outcome == predictor_hit) __atomic_fetch_add(&counters->readahead_hits, 1, __ATOMIC_RELAXED);
  if (ahead->readahead_outcome == predictor_miss) __atomic_fetch_add(&counters->readahead_misses, 1, __ATOMIC_RELAXED);
  uint64_t *pages = ahead->why == ELFLOAD_WHY_AROUND      ? &counters->around_pages
                    : ahead->why == ELFLOAD_WHY_READAHEAD ? &counters->readahead_pages
                    : ahead->why == ELFLOAD_WHY_STRIDE    ? &counters->stride_pages
                                                          : 0;
  if (pages != 0 && around > 0) __atomic_fetch_add(pages, around, __ATOMIC_RELAXED);
  if (strided > 0) __atomic_fetch_add(&counters->stride_pages, strided, __ATOMIC_RELAXED);
}

#define ELFLOAD_LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define ELFLOAD_STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)

// Strides: updates `p` with a fault at `page` and puts the window along the stride into
// `ahead` (a stride of one page as the pages around the fault).
static inline void elfload_predict_stride(struct elfload_predictor *p, const struct elfload_predicted_region *r,
                                          uint64_t page, struct elfload_prefetch *ahead) {
  uint64_t last = ELFLOAD_LOAD(p->last);
  int64_t stride = ELFLOAD_LOAD(p->stride);
  uint32_t window = ELFLOAD_LOAD(p->window);
  int64_t distance = last != 0 ? (int64_t)(page - last) : 0;
  if (window > 0 && page == ELFLOAD_LOAD(p->expected)) {
    ahead->stride_outcome = predictor_hit;
    window = window * 2 < predictor_max_window ? window * 2 : predictor_max_window;
  } else if (distance != 0 && distance == stride) {
    window = predictor_first_window;
  } else {
    if (window > 0) ahead->stride_outcome = predictor_miss;
    window = 0;
    stride = distance;
  }
  // The pages along the stride that are still inside the region.
  uint64_t room = 0;
  if (stride > 0) room = (r->end - page - 1) / (uint64_t)stride;
  if (stride < 0) room = (page - r->start) / (uint64_t)-stride;
  uint64_t pages = window < room ? window : room;
  ELFLOAD_STORE(p->stride, stride);
  ELFLOAD_STORE(p->window, window);
  ELFLOAD_STORE(p->expected, page + (uint64_t)((int64_t)(pages + 1) * stride));
  if (window == 0 || pages == 0) return;
  if (stride == predictor_page || stride == -(int64_t)predictor_page) {
    if (stride > 0) ahead->high = page + (pages + 1) * predictor_page;
    else ahead->low = page - pages * predictor_page;
    ahead->why = ELFLOAD_WHY_STRIDE;
  } else {
    ahead->stride = stride;
    ahead->strided = pages;
  }
}

// File pages: fault-around, or readahead when the fault is where the last run ended.
static inline void elfload_predict_around(struct elfload_predictor *p, const struct elfload_predicted_region *r,
                                          uint64_t page, struct elfload_prefetch *ahead) {
  uint64_t next = ELFLOAD_LOAD(p->next);
  uint32_t run = ELFLOAD_LOAD(p->run);
  uint32_t reading = ELFLOAD_LOAD(p->reading);
  if (run > 0 && page == next) {
    ahead->readahead_outcome = predictor_hit;
    run = run * 2 < predictor_max_window ? run * 2 : predictor_max_window;
    ahead->high = (r->end - page) / predictor_page > run ? page + (uint64_t)run * predictor_page : r->end;
    ahead->why = ELFLOAD_WHY_READAHEAD;
    reading = 1;
  } else {
    if (reading) ahead->readahead_outcome = predictor_miss;
    reading = 0;
    uint64_t block = (uint64_t)r->block * predictor_page;
    uint64_t low = page & ~(block - 1);
    ahead->low = low > r->start ? low : r->start;
    ahead->high = low + block < r->end ? low + block : r->end;
    ahead->why = ELFLOAD_WHY_AROUND;
    run = r->block;
  }
  ELFLOAD_STORE(p->next, ahead->high);
  ELFLOAD_STORE(p->run, run);
  ELFLOAD_STORE(p->reading, reading);
}

// Updates `p` with a fault at `page` of region `r` and says in `ahead` what to bring in with
// it, and whether the fault was a hit or a miss of each mechanism.
static inline void elfload_predict(struct elfload_predictor *p, const struct elfload_predicted_region *r, uint64_t page,
                                   struct elfload_prefetch *ahead) {
  elfload_prefetch_fixed(ahead, page, r->end, 0);
  ahead->why = ELFLOAD_WHY_TOUCHED;
  if (r->kind == elfload_region_data || r->kind == elfload_region_bss) elfload_predict_stride(p, r, page, ahead);
  ELFLOAD_STORE(p->last, page);
  if (r->kind == elfload_region_bss) return;
  if (ahead->why == ELFLOAD_WHY_STRIDE) {
    // A stride of one page brings in the pages after the fault already: no run to follow.
    ELFLOAD_STORE(p->run, 0);
    ELFLOAD_STORE(p->reading, 0);
    return;
  }
  elfload_predict_around(p, r, page, ahead);
}

#undef ELFLOAD_LOAD
#undef ELFLOAD_STORE
#endif
