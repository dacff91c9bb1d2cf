/* measured.c: a run whose costs are known, for checking what a loader reports against what the
 * kernel tells the program itself. Usage: measured MIB CPU_MS SLEEP_MS [LINGER_MS]
 *   writes every page of MIB MiB of its bss; burns CPU_MS of CPU in user space; sleeps SLEEP_MS
 *   between writing a page `early` and a page `late` (each in a bss page of its own); then prints,
 *   with nothing touched between the readings and the write(2):
 *     early PAGE NS, late PAGE NS    the pages' addresses and CLOCK_MONOTONIC just before each write
 *     main NS CPU_NS, end NS         CLOCK_MONOTONIC at main's start (and the process's CPU clock
 *                                    there: what its start cost it) and after the last reading
 *     cpu NS                         CLOCK_PROCESS_CPUTIME_ID at the end (the whole process's)
 *     ticks UTIME STIME HZ           /proc/self/stat's utime and stime, and sysconf(_SC_CLK_TCK)
 *     VmHWM: N kB                    /proc/self/status: the peak resident set
 *   and then sleeps LINGER_MS before it exits, touching nothing more.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MIB (1 << 20)
static char pages[256 * MIB];
static char early[4096] __attribute__((aligned(4096)));
static char late[4096] __attribute__((aligned(4096)));
static char status[8192], stat[2048], out[1024];

static long long ns(clockid_t clock) {
  struct timespec t;
  clock_gettime(clock, &t);
  return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static ssize_t slurp(const char *path, char *buffer, size_t size) {
  int fd = open(path, O_RDONLY);
  ssize_t n = fd < 0 ? -1 : read(fd, buffer, size - 1);
  if (fd >= 0) close(fd);
  if (n >= 0) buffer[n] = 0;
  return n;
}

int main(int argc, char **argv) {
  long long start = ns(CLOCK_MONOTONIC), start_cpu = ns(CLOCK_PROCESS_CPUTIME_ID);
  if (argc != 4 && argc != 5) return 2;
  long mib = atol(argv[1]), cpu_ms = atol(argv[2]), sleep_ms = atol(argv[3]);
  if (mib < 0 || mib > 256) return 2;
  volatile char *p = pages;  /* every write happens */
  for (long i = 0; i < mib * MIB; i += 4096) p[i] = 1;
  long long burn_until = ns(CLOCK_THREAD_CPUTIME_ID) + cpu_ms * 1000000LL;
  volatile unsigned long spin = 0;
  while (ns(CLOCK_THREAD_CPUTIME_ID) < burn_until)
    for (int i = 0; i < 100000; i++) spin++;  /* user time: the clock's system call only now and then */
  long long early_ns = ns(CLOCK_MONOTONIC);
  *(volatile char *)early = 1;
  struct timespec pause = {sleep_ms / 1000, (sleep_ms % 1000) * 1000000L};
  nanosleep(&pause, NULL);
  long long late_ns = ns(CLOCK_MONOTONIC);
  *(volatile char *)late = 1;

  /* Written before the system calls that fill them: a read() into a page a signal pager has not
     mapped yet fails with EFAULT (a known limit of such pagers, not what this program measures). */
  memset(stat, 0, sizeof stat);
  memset(status, 0, sizeof status);
  memset(out, 0, sizeof out);
  long long cpu = ns(CLOCK_PROCESS_CPUTIME_ID);
  if (slurp("/proc/self/stat", stat, sizeof stat) <= 0 || slurp("/proc/self/status", status, sizeof status) <= 0)
    return 1;
  long long end = ns(CLOCK_MONOTONIC);
  /* utime and stime: fields 14 and 15, counted after the command name's closing parenthesis. */
  char *s = strrchr(stat, ')');
  unsigned long utime = 0, stime = 0;
  if (s) sscanf(s + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime);
  char *hwm = strstr(status, "VmHWM:");
  char *eol = hwm ? strchr(hwm, '\n') : NULL;
  if (eol) *eol = 0;
  int n = snprintf(out, sizeof out, "early %p %lld\nlate %p %lld\nmain %lld %lld\nend %lld\ncpu %lld\nticks %lu %lu %ld\n%s\n",
                   (void *)early, early_ns, (void *)late, late_ns, start, start_cpu, end, cpu, utime, stime,
                   sysconf(_SC_CLK_TCK), hwm ? hwm : "VmHWM: unknown");
  write(1, out, (size_t)n);
  long linger_ms = argc == 5 ? atol(argv[4]) : 0;
  struct timespec linger = {linger_ms / 1000, (linger_ms % 1000) * 1000000L};
  nanosleep(&linger, NULL);
  _exit(0);
}
