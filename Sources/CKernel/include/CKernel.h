// The one raw-system-call convention of elfload, and the kernel structures whose layout Swift and
// the assembly rely on. No C library: this header is used by the freestanding launcher, the
// no-runtime zone and (in ordinary processes) the tests and tools alike.
#ifndef CKERNEL_H
#define CKERNEL_H

#include <stddef.h>
#include <stdint.h>

/// A raw x86-64 `syscall`: returns the kernel's result, -errno on failure.
/// Writes no errno and calls nothing, so it is safe anywhere.
static inline long elfload_syscall6(long n, long a1, long a2, long a3, long a4, long a5, long a6) {
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

/// Reads the time-stamp counter (the trace's clock).
static inline uint64_t elfload_timestamp(void) {
  uint32_t low, high;
  __asm__ volatile("rdtsc" : "=a"(low), "=d"(high));
  return (uint64_t)high << 32 | low;
}

/// The kernel's `struct prctl_mm_map` (include/uapi/linux/prctl.h), for
/// prctl(PR_SET_MM, PR_SET_MM_MAP, &map, sizeof map).
struct elfload_mm_map {
  uint64_t start_code, end_code, start_data, end_data;
  uint64_t start_brk, brk, start_stack;
  uint64_t arg_start, arg_end, env_start, env_end;
  uint64_t auxv;       ///< address of (tag, value) words
  uint32_t auxv_size;  ///< bytes
  uint32_t exe_fd;     ///< -1: leave /proc/self/exe alone
};
_Static_assert(sizeof(struct elfload_mm_map) == 104, "struct prctl_mm_map is 104 bytes");
_Static_assert(offsetof(struct elfload_mm_map, exe_fd) == 100, "exe_fd ends prctl_mm_map");

/// The fields elfload reads of the kernel's x86-64 `struct stat` (arch/x86/include/uapi/asm/stat.h).
struct elfload_stat {
  uint64_t st_dev, st_ino, st_nlink;
  uint32_t st_mode, st_uid, st_gid, pad0;
  uint64_t st_rdev;
  int64_t st_size, st_blksize, st_blocks;
  uint64_t times[6];
  int64_t reserved[3];
};
_Static_assert(sizeof(struct elfload_stat) == 144, "x86-64 struct stat is 144 bytes");
_Static_assert(offsetof(struct elfload_stat, st_mode) == 24, "st_mode");
_Static_assert(offsetof(struct elfload_stat, st_size) == 48, "st_size");

/// The kernel's `struct rusage` (include/uapi/linux/resource.h): times are (seconds, microseconds).
struct elfload_rusage {
  int64_t utime_sec, utime_usec, stime_sec, stime_usec;
  int64_t maxrss, ixrss, idrss, isrss, minflt, majflt, nswap, inblock, oublock;
  int64_t msgsnd, msgrcv, nsignals, nvcsw, nivcsw;
};
_Static_assert(sizeof(struct elfload_rusage) == 144, "struct rusage is 144 bytes");

/// `struct timespec` as clock_gettime fills it.
struct elfload_timespec {
  int64_t seconds, nanoseconds;
};

/// `struct rlimit64` for prlimit64.
struct elfload_rlimit {
  uint64_t soft, hard;
};

/// The kernel's x86-64 `struct sigaction` for rt_sigaction(2): the restorer is
/// mandatory there (the kernel returns through it).
struct elfload_sigaction {
  void *handler;
  unsigned long flags;
  void (*restorer)(void);
  uint64_t mask;
};

#endif
