// The userfaultfd pager's two halves and what they share: what a fault installs (uffd.c) and
// the server process that serves each fault on the CPU that took it (uffd_server.c).
#ifndef ELFLOAD_UFFD_INTERNAL_H
#define ELFLOAD_UFFD_INTERNAL_H

#include "NoRuntimeZone.h"

#include <asm/unistd.h>

enum { uffd_page_size = 4096 };

static inline long uffd_sys(long n, long a1, long a2, long a3, long a4, long a5) {
  return elfload_syscall6(n, a1, a2, a3, a4, a5, 0);
}

static inline uint64_t uffd_now_ns(void) {
  struct elfload_timespec t = {0, 0};
  uffd_sys(__NR_clock_gettime, 1 /* CLOCK_MONOTONIC */, (long)&t, 0, 0, 0);
  return (uint64_t)t.seconds * 1000000000u + (uint64_t)t.nanoseconds;
}

// ---- uffd.c: what a fault installs ----

/// Where faults are counted (the supervisor's shared counters, or the pager's own).
struct elfload_demand_counters *uffd_counters(void);
/// 1 when a supervisor reads the counters and the trace.
int uffd_measured(void);
/// Pages a worker's buffer holds: the most one fault installs.
uint64_t uffd_buffer_pages(void);
/// In the server, once: each region's file mapped read-only, to copy pages from.
void uffd_map_sources(void);
/// The descriptors the server keeps (the regions' files), for close_range: calls `keep` for each.
void uffd_each_file(void (*keep)(int fd, void *context), void *context);
/// Serves a fault at `address` in the address space behind `fd` (the server's uffd number `u`),
/// by thread `tid`; `write`: a write fault. `buffer`: the worker's own, uffd_buffer_pages() long.
void uffd_serve(int fd, uint32_t u, uint64_t address, uint32_t tid, int write, char *buffer);
/// EVENT_REMAP: in the address space behind uffd number `u`, [to, to + len) now holds what was at `from`.
void uffd_note_remap(uint32_t u, uint64_t from, uint64_t to, uint64_t len);

#endif
