// --prefetch auto: the rule both pagers follow to choose what to install
// after a faulting page. Included by demand.c (inside its handler sections)
// and uffd.c; state per region, no allocation, no system call.
//
// The rule, readahead's (mm/readahead.c) in miniature, with Leap's strides:
//   - A pattern is two faults in a row, in one region, the same distance
//     apart (the stride: one page for a sequential pass, any number of pages,
//     either way). Seeing it opens a window of `predictor_first_window` pages
//     along the stride, after the faulting page.
//   - A fault exactly where the pattern says the next one lands once every
//     page of the window has been used (one stride past the window's last
//     page) is a hit: the window doubles, up to `predictor_max_window`.
//   - Any other fault while a window is open is a miss: the window closes,
//     and that fault's distance from the last one is the next candidate.
//   - Nothing is installed past the region's end (or before its start): a
//     region is one segment's file pages, or its bss.
// Before a pattern is seen, and after a miss, a fault installs its page alone,
// as demand paging does: a program that jumps about keeps demand's memory.
#ifndef ELFLOAD_PREDICTOR_H
#define ELFLOAD_PREDICTOR_H

#include "NoRuntimeZone.h"

enum { predictor_first_window = 4, predictor_max_window = 512 };

// One region's history. Threads of one process (signal pager) or processes
// sharing pages through fork (userfaultfd server) may update it at once: each
// field is read and written atomically, and a mixed-up history costs only a
// worse guess (what is installed is claimed page by page elsewhere).
struct elfload_predictor {
  uint64_t last;      // the last faulting page, or 0
  int64_t stride;     // bytes from the fault before it (the candidate), or 0
  uint64_t expected;  // where a hit lands: one stride past the window's last page
  uint32_t window;    // pages installed after the last fault (0: no pattern)
};

// What to install after the faulting page: `pages` pages, `stride` bytes apart.
struct elfload_prefetch {
  int64_t stride;
  uint64_t pages;
  int64_t outcome;  // predictor_hit, predictor_miss, or 0: for the caller to count once the fault is served
};
// (Built field by field, here and in the handler: a compound literal that
// leaves a field out may compile to a call to memset, outside the handler's
// sections, which are all that is left after the jump.)
enum { predictor_hit = 1, predictor_miss = 2 };

// Counts a served fault's outcome.
static inline void elfload_count_prediction(struct elfload_prefetch ahead, struct elfload_demand_counters *counters) {
  if (ahead.outcome == predictor_hit) __atomic_fetch_add(&counters->predictor_hits, 1, __ATOMIC_RELAXED);
  if (ahead.outcome == predictor_miss) __atomic_fetch_add(&counters->predictor_misses, 1, __ATOMIC_RELAXED);
}

#define ELFLOAD_LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define ELFLOAD_STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)

// Updates `p` with a fault at `page` of [start, end) and says what to install
// after it, and whether the fault was a hit or a miss.
static inline struct elfload_prefetch elfload_predict(struct elfload_predictor *p, uint64_t page, uint64_t start,
                                                      uint64_t end) {
  uint64_t last = ELFLOAD_LOAD(p->last);
  int64_t stride = ELFLOAD_LOAD(p->stride);
  uint32_t window = ELFLOAD_LOAD(p->window);
  int64_t distance = last != 0 ? (int64_t)(page - last) : 0;
  int64_t outcome = 0;
  if (window > 0 && page == ELFLOAD_LOAD(p->expected)) {
    outcome = predictor_hit;
    window = window * 2 < predictor_max_window ? window * 2 : predictor_max_window;
  } else if (distance != 0 && distance == stride) {
    window = predictor_first_window;
  } else {
    if (window > 0) outcome = predictor_miss;
    window = 0;
    stride = distance;
  }
  // The pages along the stride that are still inside the region.
  uint64_t room = 0;
  if (stride > 0) room = (end - page - 1) / (uint64_t)stride;
  if (stride < 0) room = (page - start) / (uint64_t)-stride;
  uint64_t pages = window < room ? window : room;
  ELFLOAD_STORE(p->last, page);
  ELFLOAD_STORE(p->stride, stride);
  ELFLOAD_STORE(p->window, window);
  ELFLOAD_STORE(p->expected, page + (uint64_t)((int64_t)(pages + 1) * stride));
  struct elfload_prefetch ahead;
  ahead.stride = stride;
  ahead.pages = window > 0 ? pages : 0;
  ahead.outcome = outcome;
  return ahead;
}

#undef ELFLOAD_LOAD
#undef ELFLOAD_STORE
#endif
