// uffdcost: the minimal C program with elfload's userfaultfd pager design, to judge the pager's
// cost per fault against: anonymous memory registered for missing pages, a server in another
// process that answers each fault with one UFFDIO_COPY (the faulting page, then BATCH-1 more
// without a wake-up, as elfload's server does), the program writing one byte per page in order.
//
//   uffdcost [--pages N] [--batch K] [--repeat R] [--cpu C]
//
// Prints, for the program's sequential pass over N fresh pages, the median over R repeats of
// nanoseconds per page: "anon-eager" (plain anonymous memory, no userfaultfd: the kernel's own
// fault) and "uffd-K" (through the server). --cpu C pins both processes to CPU C (same-CPU
// placement); without it the scheduler places them.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { page = 4096 };

static uint64_t now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void pin(int cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  sched_setaffinity(0, sizeof set, &set);
}

static int compare(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

// Serves faults until `stop` is readable (the program closed its end).
static void serve(int uffd, int stop, long batch) {
  char *buffer = aligned_alloc(page, (size_t)batch * page);
  memset(buffer, 0xa5, (size_t)batch * page);
  struct pollfd fds[2] = {{.fd = uffd, .events = POLLIN}, {.fd = stop, .events = POLLIN}};
  for (;;) {
    if (poll(fds, 2, -1) < 0 && errno != EINTR) _exit(1);
    if (fds[1].revents) _exit(0);
    struct uffd_msg m[16];
    ssize_t n = read(uffd, m, sizeof m);
    for (ssize_t i = 0; i < n / (ssize_t)sizeof m[0]; i++) {
      if (m[i].event != UFFD_EVENT_PAGEFAULT) continue;
      uint64_t at = m[i].arg.pagefault.address & ~(uint64_t)(page - 1);
      struct uffdio_copy c = {.dst = at, .src = (uint64_t)buffer, .len = page};
      if (ioctl(uffd, UFFDIO_COPY, &c) != 0 && errno != EEXIST) continue;
      if (batch > 1) {
        struct uffdio_copy rest = {.dst = at + page, .src = (uint64_t)buffer + page,
                                   .len = (uint64_t)(batch - 1) * page, .mode = UFFDIO_COPY_MODE_DONTWAKE};
        ioctl(uffd, UFFDIO_COPY, &rest);  // EEXIST or past the end: the prefetch ends there
      }
    }
  }
}

// One pass over `pages` fresh pages; with a server when batch > 0. Returns ns per page.
static uint64_t pass(long pages, long batch, int cpu) {
  size_t length = (size_t)pages * page;
  char *region = mmap(NULL, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (region == MAP_FAILED) exit(1);
  int stop[2] = {-1, -1};
  pid_t server = -1;
  if (batch > 0) {
    int uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    struct uffdio_api api = {.api = UFFD_API};
    struct uffdio_register r = {.range = {(uint64_t)region, length}, .mode = UFFDIO_REGISTER_MODE_MISSING};
    if (uffd < 0 || ioctl(uffd, UFFDIO_API, &api) != 0 || pipe(stop) != 0) {
      perror("userfaultfd");
      exit(1);
    }
    server = fork();
    if (server == 0) {
      close(stop[1]);
      pin(cpu);
      serve(uffd, stop[0], batch);
    }
    close(stop[0]);
    if (ioctl(uffd, UFFDIO_REGISTER, &r) != 0) {
      perror("UFFDIO_REGISTER");
      exit(1);
    }
    close(uffd);
  }
  uint64_t start = now();
  for (long i = 0; i < pages; i++) region[(size_t)i * page] = 1;
  uint64_t per = (now() - start) / (uint64_t)pages;
  if (batch > 0) {
    close(stop[1]);
    waitpid(server, NULL, 0);
  }
  munmap(region, length);
  return per;
}

int main(int argc, char **argv) {
  long pages = 16384, batch = 1, repeat = 11;
  int cpu = -1;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--pages")) pages = atol(argv[i + 1]);
    else if (!strcmp(argv[i], "--batch")) batch = atol(argv[i + 1]);
    else if (!strcmp(argv[i], "--repeat")) repeat = atol(argv[i + 1]);
    else if (!strcmp(argv[i], "--cpu")) cpu = atoi(argv[i + 1]);
    else {
      fprintf(stderr, "usage: uffdcost [--pages N] [--batch K] [--repeat R] [--cpu C]\n");
      return 2;
    }
  }
  if (pages < 1 || batch < 1 || repeat < 1 || repeat > 1000) return 2;
  pin(cpu);
  uint64_t eager[1000], uffd[1000];
  for (long r = 0; r < repeat; r++) {
    eager[r] = pass(pages, 0, cpu);
    uffd[r] = pass(pages, batch, cpu);
  }
  qsort(eager, (size_t)repeat, sizeof eager[0], compare);
  qsort(uffd, (size_t)repeat, sizeof uffd[0], compare);
  printf("anon-eager %ld pages, cpu %d: %llu ns per page (median of %ld)\n", pages, cpu,
         (unsigned long long)eager[repeat / 2], repeat);
  printf("uffd-%ld %ld pages, cpu %d: %llu ns per page (median of %ld)\n", batch, pages, cpu,
         (unsigned long long)uffd[repeat / 2], repeat);
  return 0;
}
