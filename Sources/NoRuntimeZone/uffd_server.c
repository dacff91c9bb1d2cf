// The userfaultfd pager's server: a process of its own that serves each fault on the CPU of
// the thread that took it.
//
// Why on that CPU: a fault parks the thread, and its CPU, with nothing else to
// run, halts. A server on another CPU must wake, copy and wake the thread --
// which needs the halted CPU woken again: ~40 us a fault on this kind of VM,
// against ~8 when the server runs where the thread parked (measured:
// ../shared/prototypes/uffd-poll and Benchmarks/uffdcost.c). So the server has
// a worker thread per CPU the program faults on, pinned there, at SCHED_IDLE:
// a CPU that runs only SCHED_IDLE tasks counts as idle to the scheduler, so the
// woken thread stays on it and preempts the worker at once (at normal priority
// the scheduler would move the thread to the other, halted, CPU). A worker
// polls the userfaultfds only while it is "armed": the one on the program's
// first CPU at first; one that sees a fault from a thread on another CPU
// (/proc/TID/stat, read after the worker had to block, since a thread that
// faults back to back stays put) arms that CPU's worker; one woken for nothing
// several times in a row (another worker took every fault) disarms itself.
//
// SCHED_IDLE's price: on a CPU busy with other work a worker gets almost no
// time. So a watcher thread, at normal priority, watches while faults come (a
// tick a millisecond): when no CPU was idle over the last 32 ticks
// (/proc/uptime's idle time did not move), or a fault waited a whole tick with
// none served, it serves every fault itself, following the faulting thread's
// CPU as a server at normal priority does -- on a busy machine no CPU halts,
// so that costs nothing more -- until a CPU is idle again. When nothing has faulted for 50 ms it stops ticking and sleeps until
// the next fault.
//
// The server is made by a double fork before anything is registered (with
// EVENT_FORK, a fork of a registered process waits for the server to read the
// event: the server's own creation would wait for itself). So it is not the
// program's child, holds none of its descriptors but the userfaultfd and the
// files it reads, ignores every signal a terminal sends (its own session),
// and serves every process that shares the program's pages through fork
// (EVENT_FORK hands it a new userfaultfd for each). The kernel gives no
// end-of-file when a process behind a userfaultfd is gone: when nothing has
// come for a while, a UFFDIO_COPY to an address nobody registered says ENOENT
// while the address space lives and ESRCH once it is gone. The server ends
// when the last one is gone. The program's own threads, affinity and
// scheduling are never touched.
//
// Raw system calls only, as everywhere in this folder.
#include "uffd_internal.h"

#include <linux/errno.h>
#include <linux/fcntl.h>
#include <linux/futex.h>
#include <linux/mman.h>
#include <linux/poll.h>
#include <linux/prctl.h>
#include <linux/resource.h>
#include <linux/sched.h>
#include <linux/signal.h>
#include <linux/ioctl.h>
#include <linux/userfaultfd.h>
#include <linux/wait.h>

// eventfd2 flags (linux/eventfd.h is not a uapi header everywhere).
enum { EFD_CLOEXEC = O_CLOEXEC, EFD_NONBLOCK = O_NONBLOCK };
enum { max_uffds = 256, max_workers = 64, messages_per_read = 16, worker_stack = 64 << 10 };
enum {
  tick_ns = 1000000,             // the watcher's tick while faults come
  window_ticks = 32,             // it asks whether a CPU was idle over this many ticks
  quiet_ns = 50000000,           // no fault for this long: the watcher sleeps until the next one
  probe_ns = 25000000,           // no fault for this long: are the address spaces still there?
  longest_probe_ms = 400,        // the probe's interval doubles up to this while nothing happens
  wasted_wakes_to_disarm = 4,
};

static long sys(long n, long a1, long a2, long a3, long a4, long a5) { return uffd_sys(n, a1, a2, a3, a4, a5); }

// A lock for reading messages and applying the events among them: a fault read
// after an EVENT_REMAP must be served with the move known, and the list of
// userfaultfds changes under EVENT_FORK. A futex word: 0 free, 1 held, 2 held
// with waiters.
static void lock(uint32_t *word) {
  uint32_t expected = 0;
  if (__atomic_compare_exchange_n(word, &expected, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) return;
  while (__atomic_exchange_n(word, 2, __ATOMIC_ACQUIRE) != 0)
    sys(__NR_futex, (long)word, FUTEX_WAIT_PRIVATE, 2, 0, 0);
}

static void unlock(uint32_t *word) {
  if (__atomic_exchange_n(word, 0, __ATOMIC_RELEASE) == 2) sys(__NR_futex, (long)word, FUTEX_WAKE_PRIVATE, 1, 0, 0);
}

struct worker {
  int32_t cpu;
  int32_t doorbell;   // an eventfd: rung to make the worker look again (armed, or the uffds changed)
  uint32_t armed;     // 1: polls the userfaultfds
  uint32_t wasted;    // wake-ups in a row that found no fault (another worker took it)
  char *buffer;       // uffd_buffer_pages() pages
};

static struct {
  int placement;  // ELFLOAD_UFFD_PLACEMENT_*
  // One userfaultfd per address space served: the program's, then one per fork.
  int fd[max_uffds];
  uint32_t count;
  uint32_t events;  // the lock (above)
  // A userfaultfd whose address space is gone is closed only once no reader
  // is serving a fault read from it (`busy`: readers between reading and
  // serving): its number could otherwise be reused by a new fork's under a
  // copy meant for the old one.
  int retired[max_uffds];
  uint32_t retired_count;
  uint32_t busy;
  struct worker workers[max_workers];
  uint32_t worker_count;
  uint32_t armed_count;
  uint32_t taken_over;    // 1: the watcher serves every fault; the workers stand aside
  int32_t start_cpu;      // the CPU the program started on
  uint64_t served;        // messages handled, by anyone: the watcher's measure of progress
  char *watcher_buffer;
  struct elfload_demand_counters *counters;
} server;

void elfload_uffd_set_placement(int placement) { server.placement = placement; }

// ---- the userfaultfds ----

// Rings every armed worker's doorbell: the set of userfaultfds changed.
static void ring_all(void);

static void add(int fd) {
  if (server.count == max_uffds) {
    // Cannot happen with the limit far above what a program forks at once;
    // if it did, this child's faults would never be served: better it dies.
    sys(__NR_close, fd, 0, 0, 0, 0);
    return;
  }
  sys(__NR_fcntl, fd, F_SETFL, O_NONBLOCK, 0, 0);
  __atomic_store_n(&server.fd[server.count], fd, __ATOMIC_RELAXED);
  __atomic_store_n(&server.count, server.count + 1, __ATOMIC_RELEASE);
}

// Under the lock: uffd number `u` serves nobody any more.
static void retire(uint32_t u) {
  if (server.fd[u] < 0) return;
  if (server.retired_count < max_uffds) server.retired[server.retired_count++] = server.fd[u];
  __atomic_store_n(&server.fd[u], -1, __ATOMIC_RELAXED);
}

// Under the lock: closes the retired userfaultfds once no reader can be using one.
static void close_retired(void) {
  if (__atomic_load_n(&server.busy, __ATOMIC_ACQUIRE) != 0) return;
  for (uint32_t i = 0; i < server.retired_count; i++) sys(__NR_close, server.retired[i], 0, 0, 0, 0);
  server.retired_count = 0;
}

// Whether the address space behind uffd number `u` is still there.
static int alive(uint32_t u, char *buffer) {
  // An address nobody registers (just below the top of user space): ENOENT
  // while the address space lives, ESRCH once it is gone.
  struct uffdio_copy c = {.dst = 0x7fffffffe000, .src = (uint64_t)buffer, .len = uffd_page_size};
  long ret = sys(__NR_ioctl, server.fd[u], UFFDIO_COPY, (long)&c, 0, 0);
  return ret != -ESRCH;
}

// Closes the userfaultfds whose address spaces are gone; when none is left,
// the server's work is done: it says what it cost, and ends.
static void drop_the_dead(char *buffer) {
  lock(&server.events);
  uint32_t live = 0;
  for (uint32_t u = 0; u < server.count; u++) {
    if (server.fd[u] >= 0 && !alive(u, buffer)) retire(u);
    if (server.fd[u] >= 0) live++;
  }
  close_retired();
  unlock(&server.events);
  if (live > 0) return;
  struct elfload_rusage usage;
  if (sys(__NR_getrusage, RUSAGE_SELF, (long)&usage, 0, 0, 0) == 0) {
    uint64_t us = (uint64_t)(usage.utime_sec + usage.stime_sec) * 1000000 + (uint64_t)(usage.utime_usec + usage.stime_usec);
    __atomic_store_n(&server.counters->server_cpu_ns, us * 1000, __ATOMIC_RELAXED);
  }
  __atomic_store_n(&server.counters->server_ended, 1, __ATOMIC_RELEASE);
  sys(__NR_exit_group, 0, 0, 0, 0, 0);
}

// ---- reading and handling messages ----

// Where a thread runs: /proc/TID/stat's 39th field. The file of the last
// thread looked at stays open (a pread regenerates it: half the cost of an
// open, read and close).
struct thread_stat {
  uint32_t tid;
  int32_t fd;  // -1: none open
};

// The CPU thread `tid` last ran on, or -1.
static int32_t last_cpu(struct thread_stat *open_stat, uint32_t tid) {
  if (open_stat->fd < 0 || open_stat->tid != tid) {
    if (open_stat->fd >= 0) sys(__NR_close, open_stat->fd, 0, 0, 0, 0);
    char path[32] = "/proc/";
    unsigned n = 6;
    char digits[12];
    unsigned d = 0;
    uint32_t t = tid;
    do {
      digits[d++] = (char)('0' + t % 10);
      t /= 10;
    } while (t > 0);
    while (d > 0) path[n++] = digits[--d];
    static const char stat[] = "/stat";
    for (unsigned i = 0; i < sizeof stat; i++) path[n++] = stat[i];
    long fd = sys(__NR_openat, -100, (long)path, O_RDONLY | O_CLOEXEC, 0, 0);
    open_stat->fd = fd >= 0 ? (int32_t)fd : -1;
    open_stat->tid = tid;
    if (fd < 0) return -1;
  }
  char text[512];
  long got = sys(__NR_pread64, open_stat->fd, (long)text, sizeof text - 1, 0, 0);
  if (got <= 0) return -1;
  // Fields after the command name (which may hold spaces) in parentheses: from the last ')'.
  long i = got - 1;
  while (i > 0 && text[i] != ')') i--;
  unsigned field = 2;
  for (; i < got && field < 39; i++)
    if (text[i] == ' ') field++;
  if (i >= got || text[i] < '0' || text[i] > '9') return -1;
  int32_t cpu = 0;
  for (; i < got && text[i] >= '0' && text[i] <= '9' && cpu < 1 << 20; i++) cpu = cpu * 10 + (text[i] - '0');
  return cpu;
}

static int arm(int32_t cpu);
static void disarm(struct worker *w);

// Who is reading: a worker (which checks where a fault's thread runs when told
// to), or the watcher (which serves wherever it is).
struct reader {
  struct worker *worker;  // NULL: the watcher
  char *buffer;
  int check_cpu;          // the next fault's thread may be on another CPU: look
  struct thread_stat stat;
  // The watcher, serving at normal priority (it reads only while it has taken
  // over), follows the faulting thread's CPU: it looks every `follow_interval`
  // faults and moves there (on a busy machine a server on another CPU costs a
  // cross-CPU wake-up each way).
  int32_t followed_cpu;   // where it is pinned now, or -1
  uint64_t since_look;
};
enum { follow_interval = 64 };

// Binds the calling thread to `cpu`.
static void pin(int32_t cpu) {
  uint64_t mask[max_workers / 64];
  for (unsigned i = 0; i < max_workers / 64; i++) mask[i] = 0;
  mask[cpu / 64] = 1ULL << (cpu % 64);
  sys(__NR_sched_setaffinity, 0, sizeof mask, (long)mask, 0, 0);
}

// Reads and handles what is waiting on uffd number `u`. Returns the messages handled.
static long drain_one(struct reader *reader, uint32_t u) {
  struct uffd_msg messages[messages_per_read];
  lock(&server.events);
  int fd = server.fd[u];
  long n = fd >= 0 ? sys(__NR_read, fd, (long)messages, sizeof messages, 0, 0) : -EBADF;
  long count = n > 0 ? n / (long)sizeof messages[0] : 0;
  int changed = 0;
  for (long i = 0; i < count; i++) {
    const struct uffd_msg *m = &messages[i];
    if (m->event == UFFD_EVENT_FORK) {
      add((int)m->arg.fork.ufd);
      changed = 1;
    } else if (m->event == UFFD_EVENT_REMAP) {
      uffd_note_remap(u, m->arg.remap.from, m->arg.remap.to, m->arg.remap.len);
    }
  }
  // The descriptor is unusable: whatever it served is gone or never coming back.
  if (n == 0 || (n < 0 && n != -EAGAIN && n != -EINTR && n != -EBADF)) retire(u);
  if (count > 0) __atomic_fetch_add(&server.busy, 1, __ATOMIC_ACQUIRE);
  unlock(&server.events);
  if (changed) ring_all();
  if (count == 0) return 0;
  for (long i = 0; i < count; i++) {
    const struct uffd_msg *m = &messages[i];
    if (m->event != UFFD_EVENT_PAGEFAULT) continue;
    uint32_t tid = m->arg.pagefault.feat.ptid;
    if (reader->check_cpu && reader->worker != NULL) {
      reader->check_cpu = 0;
      int32_t cpu = last_cpu(&reader->stat, tid);
      __atomic_fetch_add(&server.counters->cpu_checks, 1, __ATOMIC_RELAXED);
      // The thread runs elsewhere: that CPU's worker serves it from now on,
      // and this one steps back (a thread of its own CPU that faults brings
      // it back the same way).
      if (cpu >= 0 && cpu != reader->worker->cpu && arm(cpu)) disarm(reader->worker);
    }
    if (reader->worker == NULL) {
      __atomic_fetch_add(&server.counters->served_by_watcher, 1, __ATOMIC_RELAXED);
      if (reader->since_look++ % follow_interval == 0) {
        int32_t cpu = last_cpu(&reader->stat, tid);
        __atomic_fetch_add(&server.counters->cpu_checks, 1, __ATOMIC_RELAXED);
        if (cpu >= 0 && cpu < max_workers && cpu != reader->followed_cpu) {
          pin(cpu);
          reader->followed_cpu = cpu;
        }
      }
    }
    uffd_serve(fd, u, m->arg.pagefault.address, tid, (m->arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WRITE) != 0,
               reader->buffer);
  }
  __atomic_fetch_add(&server.served, (uint64_t)count, __ATOMIC_RELAXED);
  __atomic_fetch_sub(&server.busy, 1, __ATOMIC_RELEASE);
  if (__atomic_load_n(&server.retired_count, __ATOMIC_ACQUIRE) > 0) {
    lock(&server.events);
    close_retired();
    unlock(&server.events);
  }
  return count;
}

// Reads and handles what is waiting on every userfaultfd. Returns the messages handled.
static long drain(struct reader *reader) {
  long handled = 0;
  uint32_t count = __atomic_load_n(&server.count, __ATOMIC_ACQUIRE);
  for (uint32_t u = 0; u < count; u++)
    if (__atomic_load_n(&server.fd[u], __ATOMIC_RELAXED) >= 0) handled += drain_one(reader, u);
  return handled;
}

// The userfaultfds into `polled` (after `first` entries); returns the entries in all.
static uint32_t poll_set(struct pollfd *polled, uint32_t first) {
  uint32_t n = first;
  uint32_t count = __atomic_load_n(&server.count, __ATOMIC_ACQUIRE);
  for (uint32_t u = 0; u < count && n < max_uffds + 1; u++) {
    polled[n].fd = __atomic_load_n(&server.fd[u], __ATOMIC_RELAXED);
    polled[n].events = POLLIN;
    polled[n].revents = 0;
    n++;
  }
  return n;
}

// ---- the workers: one per CPU the program faults on ----


static void ring(struct worker *w) {
  uint64_t one = 1;
  sys(__NR_write, w->doorbell, (long)&one, sizeof one, 0, 0);
}

static void ring_all(void) {
  uint32_t n = __atomic_load_n(&server.worker_count, __ATOMIC_ACQUIRE);
  for (uint32_t i = 0; i < n; i++)
    if (__atomic_load_n(&server.workers[i].armed, __ATOMIC_RELAXED)) ring(&server.workers[i]);
}

__attribute__((noreturn)) static void work(void *argument) {
  struct worker *w = argument;
  pin(w->cpu);
  int priority = 0;  // struct sched_param
  sys(__NR_sched_setscheduler, 0, SCHED_IDLE, (long)&priority, 0, 0);
  struct reader reader = {.worker = w, .buffer = w->buffer, .check_cpu = 0, .stat = {0, -1}, .followed_cpu = -1, .since_look = 0};
  for (;;) {
    // Back to back: a thread that faults again while the worker serves finds
    // it ready, with no wait and no look at /proc. (Not while the watcher
    // serves: two servers would serve one thread's faults out of order.)
    int standing_aside = __atomic_load_n(&server.taken_over, __ATOMIC_ACQUIRE);
    if (!standing_aside && drain(&reader) > 0) {
      w->wasted = 0;
      continue;
    }
    struct pollfd polled[max_uffds + 1];
    polled[0].fd = w->doorbell;
    polled[0].events = POLLIN;
    polled[0].revents = 0;
    int armed = __atomic_load_n(&w->armed, __ATOMIC_ACQUIRE) && !standing_aside;
    uint32_t n = armed ? poll_set(polled, 1) : 1;
    long ready = sys(__NR_poll, (long)polled, n, -1, 0, 0);
    if (ready <= 0) continue;
    if (polled[0].revents != 0) {
      uint64_t rung;
      sys(__NR_read, w->doorbell, (long)&rung, sizeof rung, 0, 0);
    }
    // The fault that woke the worker may come from a thread on another CPU.
    reader.check_cpu = 1;
    if (__atomic_load_n(&server.taken_over, __ATOMIC_ACQUIRE)) continue;
    if (ready > (polled[0].revents != 0) && drain(&reader) == 0 && ++w->wasted >= wasted_wakes_to_disarm) {
      // Another worker served the faults this one was woken for: leave them to it.
      disarm(w);
      w->wasted = 0;
    }
  }
}

enum { thread_flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM };

// clone(flags) running `run(argument)` on a stack of its own: a thread of
// this process (thread_flags), or a process that shares this one's memory.
static long spawn(long flags, void (*run)(void *), void *argument, char *stack, uint64_t size) {
  uint64_t *top = (uint64_t *)(stack + size);
  *--top = (uint64_t)argument;
  *--top = (uint64_t)run;
  long ret;
  register long r10 __asm__("r10") = 0;
  register long r8 __asm__("r8") = 0;
  __asm__ volatile(
      "syscall\n\t"
      "test %%rax, %%rax\n\t"
      "jnz 1f\n\t"
      // The new thread, on the new stack: run(argument), which never returns.
      "pop %%rax\n\t"
      "pop %%rdi\n\t"
      "call *%%rax\n\t"
      "ud2\n"
      "1:"
      : "=a"(ret)
      : "a"(__NR_clone), "D"(flags), "S"(top), "d"(0), "r"(r10), "r"(r8)
      : "rcx", "r11", "memory");
  return ret;
}

static char *allocate(uint64_t bytes) {
  long at = elfload_syscall6(__NR_mmap, 0, (long)bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return at < 0 && at > -4096 ? NULL : (char *)at;
}

// Stops `w` polling, unless it is the last worker that does.
static void disarm(struct worker *w) {
  lock(&server.events);
  if (server.armed_count > 1 && w->armed) {
    __atomic_store_n(&w->armed, 0, __ATOMIC_RELEASE);
    server.armed_count--;
  }
  unlock(&server.events);
}

// Under the lock: a new worker for `cpu` (not running yet), or NULL.
static struct worker *new_worker(int32_t cpu) {
  if (server.worker_count == max_workers) return NULL;
  char *buffer = allocate(uffd_buffer_pages() * uffd_page_size);
  long doorbell = sys(__NR_eventfd2, 0, EFD_NONBLOCK | EFD_CLOEXEC, 0, 0, 0);
  if (buffer == NULL || doorbell < 0) return NULL;
  struct worker *w = &server.workers[server.worker_count];
  w->cpu = cpu;
  w->doorbell = (int32_t)doorbell;
  w->buffer = buffer;
  w->armed = 1;
  server.armed_count++;
  __atomic_store_n(&server.worker_count, server.worker_count + 1, __ATOMIC_RELEASE);
  __atomic_fetch_add(&server.counters->workers, 1, __ATOMIC_RELAXED);
  return w;
}

// Arms the worker on `cpu`, starting it if there is none yet. Returns 1 when it is armed.
static int arm(int32_t cpu) {
  if (cpu < 0 || cpu >= max_workers) return 0;
  lock(&server.events);
  struct worker *w = NULL;
  for (uint32_t i = 0; i < server.worker_count; i++)
    if (server.workers[i].cpu == cpu) w = &server.workers[i];
  if (w == NULL) {
    char *stack = allocate(worker_stack);
    w = stack != NULL ? new_worker(cpu) : NULL;
    if (w != NULL && spawn(thread_flags, work, w, stack, worker_stack) < 0) {
      // No thread: the slot stays, disarmed, and this CPU's faults go to the others.
      w->armed = 0;
      server.armed_count--;
      w = NULL;
    }
  } else if (!w->armed) {
    __atomic_store_n(&w->armed, 1, __ATOMIC_RELEASE);
    server.armed_count++;
  }
  unlock(&server.events);
  if (w != NULL) ring(w);
  return w != NULL;
}

// ---- the watcher: a thread at normal priority ----

static void sleep_ns(uint64_t ns) {
  struct elfload_timespec t = {(int64_t)(ns / 1000000000u), (int64_t)(ns % 1000000000u)};
  sys(__NR_nanosleep, (long)&t, 0, 0, 0, 0);
}

// Whether a message waits on some userfaultfd (nobody has read it yet).
static int pending(void) {
  struct pollfd polled[max_uffds + 1];
  uint32_t n = poll_set(polled, 0);
  return sys(__NR_poll, (long)polled, n, 0, 0, 0) > 0;
}

static void allow_program_cpus(void);

// The idle time of all CPUs together, in hundredths of a second (/proc/uptime's
// second field: 1 us to read, against /proc/stat's 7), or -1.
static int64_t idle_centiseconds(void) {
  static int32_t fd = -2;
  if (fd == -2) {
    long opened = sys(__NR_openat, -100, (long)"/proc/uptime", O_RDONLY | O_CLOEXEC, 0, 0);
    fd = opened >= 0 ? (int32_t)opened : -1;
  }
  if (fd < 0) return -1;
  char text[64];
  long got = sys(__NR_pread64, fd, (long)text, sizeof text - 1, 0, 0);
  long i = 0;
  while (i < got && text[i] != ' ') i++;
  int64_t idle = 0;
  int digits = 0;
  for (i++; i < got && text[i] != '\n'; i++) {
    if (text[i] >= '0' && text[i] <= '9') {
      idle = idle * 10 + (text[i] - '0');
      digits++;
    }
  }
  return digits > 0 ? idle : -1;
}

// Whether no CPU was idle since `*since` (the idle time then; updated).
static int all_busy(int64_t *since) {
  int64_t idle = idle_centiseconds();
  int busy = idle >= 0 && *since >= 0 && idle == *since;
  *since = idle;
  return busy;
}

// Serves every fault itself, as a normal-priority server does, following the
// faulting thread's CPU, for as long as no CPU is idle (on a busy machine no
// CPU halts: a worker at SCHED_IDLE saves nothing there, and waits for a
// slice); then free to run anywhere again. `forever`: with no workers at all.
// Returns the reading of the CPUs' idle time that ended it (one CPU was idle
// since the one before): the start of the watcher's next window.
static int64_t take_over(struct reader *reader, int forever) {
  // The workers stand aside (each fault would wake them too, and one that
  // got a slice would take a fault to serve at SCHED_IDLE).
  __atomic_store_n(&server.taken_over, 1, __ATOMIC_RELEASE);
  ring_all();
  reader->since_look = 0;
  reader->followed_cpu = -1;
  int64_t idle = idle_centiseconds();
  uint64_t window_end = uffd_now_ns() + window_ticks * (uint64_t)tick_ns;
  for (;;) {
    struct pollfd polled[max_uffds + 1];
    uint32_t n = poll_set(polled, 0);
    long ready = sys(__NR_poll, (long)polled, n, probe_ns / 1000000, 0, 0);
    if (ready > 0) drain(reader);
    if (ready == 0) drop_the_dead(reader->buffer);
    uint64_t now = uffd_now_ns();
    if (forever || now < window_end) continue;
    if (!all_busy(&idle)) break;
    window_end = now + window_ticks * (uint64_t)tick_ns;
  }
  allow_program_cpus();
  __atomic_store_n(&server.taken_over, 0, __ATOMIC_RELEASE);
  ring_all();
  return idle;
}

// The CPUs the program may run on (elfload's own affinity before the server's
// creation pinned it): the watcher's.
static struct {
  uint64_t mask[16];
  long bytes;  // as sched_getaffinity returned it; <= 0: unknown
} program_cpus;

static void allow_program_cpus(void) {
  if (program_cpus.bytes > 0) sys(__NR_sched_setaffinity, 0, program_cpus.bytes, (long)program_cpus.mask, 0, 0);
}

__attribute__((noreturn)) static void watch(void *unused) {
  (void)unused;
  allow_program_cpus();
  struct reader reader = {.worker = NULL, .buffer = server.watcher_buffer, .check_cpu = 0, .stat = {0, -1}, .followed_cpu = -1, .since_look = 0};
  if (server.worker_count == 0) {
    take_over(&reader, 1);  // no workers: one server at normal priority
  }
  uint64_t now = uffd_now_ns(), last_progress = now, last_probe = now;
  uint64_t seen = 0;
  int was_pending = 0;
  int64_t idle = idle_centiseconds();
  for (unsigned tick = 1;; tick++) {
    // Ticking: faults have come lately.
    sleep_ns(tick_ns);
    now = uffd_now_ns();
    uint64_t served = __atomic_load_n(&server.served, __ATOMIC_RELAXED);
    int is_pending = pending();
    // No CPU was idle over the last window (other work keeps them busy), or a
    // fault waited a whole tick with none served: the workers, at SCHED_IDLE,
    // get a slice now and then only.
    int busy = tick % window_ticks == 0 && all_busy(&idle);
    if (busy || (is_pending && was_pending && served == seen)) {
      __atomic_fetch_add(&server.counters->takeovers, 1, __ATOMIC_RELAXED);
      idle = take_over(&reader, 0);
      now = uffd_now_ns();
      served = __atomic_load_n(&server.served, __ATOMIC_RELAXED);
      is_pending = 0;
    }
    if (served != seen || is_pending) last_progress = now;
    seen = served;
    was_pending = is_pending;
    if (now - last_progress >= probe_ns && now - last_probe >= probe_ns) {
      drop_the_dead(reader.buffer);
      last_probe = now;
    }
    if (now - last_progress < quiet_ns) continue;
    // Quiet: sleep until something comes (a fault wakes this thread too,
    // once), looking now and then whether the address spaces are still there.
    uint64_t probe_ms = probe_ns / 1000000;
    for (;;) {
      struct pollfd polled[max_uffds + 1];
      uint32_t n = poll_set(polled, 0);
      if (sys(__NR_poll, (long)polled, n, (long)probe_ms, 0, 0) != 0) break;
      drop_the_dead(reader.buffer);
      probe_ms = probe_ms * 2 < longest_probe_ms ? probe_ms * 2 : longest_probe_ms;
    }
    now = uffd_now_ns();
    last_progress = now;
    seen = __atomic_load_n(&server.served, __ATOMIC_RELAXED);
    was_pending = 0;
    idle = idle_centiseconds();
  }
}

// ---- the server process ----

struct kept {
  unsigned fds[max_uffds];
  unsigned count;
};

static void keep_fd(int fd, void *context) {
  struct kept *kept = context;
  if (kept->count < max_uffds) kept->fds[kept->count++] = (unsigned)fd;
}

// Closes every descriptor but these few, a gap at a time (close_range): the
// program's first faults wait for this.
static void close_all_but(struct kept *kept) {
  unsigned lowest = 0;
  for (;;) {
    unsigned next = ~0U;  // the lowest kept descriptor at or above `lowest`
    for (unsigned i = 0; i < kept->count; i++)
      if (kept->fds[i] >= lowest && kept->fds[i] < next) next = kept->fds[i];
    if (next == ~0U) break;
    if (next > lowest) sys(__NR_close_range, lowest, next - 1, 0, 0, 0);
    lowest = next + 1;
  }
  sys(__NR_close_range, lowest, ~0U, 0, 0, 0);
}

// The server process: its own session (no terminal's signals), every signal
// blocked from its first instruction on (elfload_uffd_start_server), no descriptor but the userfaultfd and the files; the watcher
// started, then this thread serves as the worker on the program's CPU.
__attribute__((noreturn)) static void become_server(int uffd) {
  // Set up on another CPU than the program's, beside elfload's last steps
  // (measured on the dynamic hello: 0.15-0.7 ms sooner done than on the
  // program's); the first worker then moves to the program's CPU.
  for (int32_t c = 0; c < max_workers && program_cpus.bytes > 0; c++) {
    if (c != server.start_cpu && (program_cpus.mask[c / 64] >> (c % 64) & 1)) {
      pin(c);
      break;
    }
  }
  sys(__NR_setsid, 0, 0, 0, 0, 0);
  static const char name[] = "elfload-uffd";
  sys(__NR_prctl, PR_SET_NAME, (long)name, 0, 0, 0);
  server.counters = uffd_counters();
  __atomic_store_n(&server.counters->server_pid, (uint64_t)sys(__NR_getpid, 0, 0, 0, 0, 0), __ATOMIC_RELAXED);
  struct kept kept = {.count = 0};
  keep_fd(uffd, &kept);
  uffd_each_file(keep_fd, &kept);
  close_all_but(&kept);
  uffd_map_sources();
  add(uffd);
  server.watcher_buffer = allocate(uffd_buffer_pages() * uffd_page_size);
  char *watcher_stack = allocate(worker_stack);
  if (server.watcher_buffer == NULL || watcher_stack == NULL) sys(__NR_exit_group, 1, 0, 0, 0, 0);
  struct worker *first = NULL;
  if (server.placement != ELFLOAD_UFFD_PLACEMENT_SINGLE) {
    lock(&server.events);
    first = new_worker(server.start_cpu);
    unlock(&server.events);
  }
  if (first == NULL) watch(NULL);  // no workers: a server at normal priority, anywhere
  // (Before this thread becomes SCHED_IDLE: a thread it started would inherit
  // that, and could not go back to normal priority unprivileged.)
  if (spawn(thread_flags, watch, NULL, watcher_stack, worker_stack) < 0) sys(__NR_exit_group, 1, 0, 0, 0, 0);
  work(first);
}

// The middle process of the double fork: it shares elfload's memory (no copy
// of its page tables: clone(CLONE_VM | CLONE_VFORK), elfload waits meanwhile),
// forks the server -- a copy of elfload, on a copy of this stack -- and ends.
__attribute__((noreturn)) static void fork_server(void *uffd) {
  long server_pid = sys(__NR_clone, SIGCHLD, 0, 0, 0, 0);
  if (server_pid == 0) become_server((int)(long)uffd);
  sys(__NR_exit_group, server_pid < 0 ? 1 : 0, 0, 0, 0, 0);
  __builtin_unreachable();
}

long elfload_uffd_start_server(int uffd) {
  uint32_t cpu = 0;
  sys(__NR_getcpu, (long)&cpu, 0, 0, 0, 0);
  server.start_cpu = (int32_t)cpu;
  // The processes made here start on this CPU: one started on the other, idle,
  // CPU is a halted CPU to wake (up to a millisecond here, measured). elfload's
  // own affinity is the program's: it is put back at once.
  program_cpus.bytes = sys(__NR_sched_getaffinity, 0, sizeof program_cpus.mask, (long)program_cpus.mask, 0, 0);
  if (program_cpus.bytes > 0) pin(server.start_cpu);
  // Double fork: the middle process exits at once, so the server is
  // nobody's child here (init, or a subreaper, adopts it).
  // The middle process has no exit signal: no SIGCHLD is left pending for
  // the program (whose mask may block it), and wait4 takes it with __WALL.
  static char middle_stack[16 << 10] __attribute__((aligned(16)));
  // Both start with every signal blocked (a clone copies the mask): until the server is in a
  // session of its own, it is in the program's process group, and a signal the program sends
  // its whole group in its first microseconds -- before the server has run at all -- must not
  // end it (the program's faults would go unserved).
  uint64_t all = ~(uint64_t)0, mask = 0;
  sys(__NR_rt_sigprocmask, SIG_SETMASK, (long)&all, (long)&mask, 8, 0);
  long middle = spawn(CLONE_VM | CLONE_VFORK, fork_server, (void *)(long)uffd, middle_stack, sizeof middle_stack);
  sys(__NR_rt_sigprocmask, SIG_SETMASK, (long)&mask, 0, 8, 0);
  if (program_cpus.bytes > 0) sys(__NR_sched_setaffinity, 0, program_cpus.bytes, (long)program_cpus.mask, 0, 0);
  if (middle < 0) return middle;
  int status = 0;
  long ret;
  do ret = sys(__NR_wait4, middle, (long)&status, __WALL, 0, 0);
  while (ret == -EINTR);
  if (ret < 0) return ret;
  return (status & 0x7f) == 0 && (status >> 8 & 0xff) == 0 ? 0 : -ECHILD;
}
