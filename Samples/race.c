/* race.c: threads write at the same moment into pages nobody has touched yet; no write may be lost. */
/*
 * Under demand paging the first touch of a page runs the loader's fault
 * handler. When several threads touch the same fresh page at once, a handler
 * that maps the page again (a second mmap(MAP_FIXED)) throws away what a
 * faster thread has already written there. This program makes that happen
 * as often as it can: for every page of an initialised .data array, and of
 * a .bss array, THREADS threads wait at a spinning start line and then each
 * writes its own slice of that page at once. Afterwards every byte is checked.
 * The writes near the end of .data and the start of .bss cover the page the
 * loader has to zero-fill (the last file page of the segment).
 *
 * The threads are started with clone() on stacks from mmap, not with
 * pthread_create: glibc runs parts of pthread_create with every signal
 * blocked, and a demand pager cannot serve a fault there (README, known
 * limits); this program tests the pager, not that limit.
 *
 * Usage: race [rounds] (default 1): rounds beyond the first touch pages that
 * are mapped already, so they only check the data stays right.
 */
#define _GNU_SOURCE
#include <linux/futex.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PAGE 4096
#define PAGES 128
#define THREADS 4
#define SLICE (PAGE / THREADS)

/* Non-zero first bytes keep the array in .data (file-backed). */
#define P1(n) [(n) * PAGE] = 1,
#define P8(n) P1(n) P1(n + 1) P1(n + 2) P1(n + 3) P1(n + 4) P1(n + 5) P1(n + 6) P1(n + 7)
#define P64(n) P8(n) P8(n + 8) P8(n + 16) P8(n + 24) P8(n + 32) P8(n + 40) P8(n + 48) P8(n + 56)
static unsigned char data[PAGES * PAGE] __attribute__((aligned(PAGE))) = { P64(0) P64(64) };
static unsigned char bss[PAGES * PAGE] __attribute__((aligned(PAGE)));
/* Small objects at the .data/.bss boundary: likely on the zero-filled page. */
static unsigned char data_tail[THREADS * 64] = { 1 };
static unsigned char bss_head[THREADS * 64];

static atomic_int arrived;
static atomic_int go;

static unsigned char value(int area, int page, int thread) {
    return (unsigned char)(1 + (area * 131 + page * 7 + thread * 29) % 251);
}

/* sched_yield without the C library: no errno, no TLS. */
static void raw_yield(void) {
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "a"((long)SYS_sched_yield) : "rcx", "r11", "memory");
}

/* Everyone waits here until all THREADS have arrived, then they go at once. */
static void start_line(int generation) {
    if (atomic_fetch_add(&arrived, 1) == THREADS * (generation + 1) - 1)
        atomic_store(&go, generation + 1);
    /* Spin (so that running threads leave together), yielding now and then:
     * there are more threads than CPUs. */
    for (long spins = 0; atomic_load(&go) <= generation; spins++)
        if (spins % 256 == 255) raw_yield();
}

/* Plain loops: a thread made by clone() shares the main thread's TLS, so
 * it calls nothing that could touch errno or other thread state. */
static void fill(unsigned char *to, unsigned char value, int count) {
    for (int i = 0; i < count; i++) ((volatile unsigned char *)to)[i] = value;
}

static int writer(void *arg) {
    int t = (int)(long)arg;
    int generation = 0;
    for (int p = 0; p < PAGES; p++) {
        start_line(generation++);
        fill(&data[p * PAGE + t * SLICE + (p == 0 && t == 0)], value(0, p, t), SLICE - (p == 0 && t == 0));
        start_line(generation++);
        fill(&bss[p * PAGE + t * SLICE], value(1, p, t), SLICE);
    }
    start_line(generation++);
    fill(&data_tail[t * 64], value(2, 0, t), 64);
    fill(&bss_head[t * 64], value(3, 0, t), 64);
    return 0;
}

#define STACK (256 * 1024)

/* Starts `writer(t)` on its own stack; *tid becomes 0 when it has exited. */
static int start(long t, _Atomic int *tid) {
    char *stack = mmap(NULL, STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED) return -1;
    atomic_store(tid, -1);
    int flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM |
                CLONE_CHILD_CLEARTID;
    return clone(writer, stack + STACK, flags, (void *)t, NULL, NULL, (int *)tid) < 0 ? -1 : 0;
}

static void join(_Atomic int *tid) {
    int seen;
    while ((seen = atomic_load(tid)) != 0) syscall(SYS_futex, (int *)tid, FUTEX_WAIT, seen, NULL, NULL, 0);
}

static long check(void) {
    long wrong = 0;
    for (int p = 0; p < PAGES; p++)
        for (int i = 0; i < PAGE; i++) {
            int t = i / SLICE;
            unsigned char want = (p == 0 && i == 0) ? 1 : value(0, p, t);
            wrong += data[p * PAGE + i] != want;
            wrong += bss[p * PAGE + i] != value(1, p, t);
        }
    for (int i = 0; i < THREADS * 64; i++) {
        wrong += data_tail[i] != value(2, 0, i / 64);
        wrong += bss_head[i] != value(3, 0, i / 64);
    }
    return wrong;
}

int main(int argc, char **argv) {
    long rounds = argc > 1 ? atol(argv[1]) : 1;
    if (rounds < 1) rounds = 1;
    long lost = 0;
    for (long r = 0; r < rounds; r++) {
        atomic_store(&arrived, 0);
        atomic_store(&go, 0);
        static _Atomic int tids[THREADS];
        for (long t = 0; t < THREADS; t++)
            if (start(t, &tids[t]) != 0) {
                puts("clone: FAIL");
                return 1;
            }
        for (int t = 0; t < THREADS; t++) join(&tids[t]);
        lost += check();
    }
    printf("%d threads, %d data pages and %d bss pages written at once: ", THREADS, PAGES, PAGES);
    if (lost == 0) printf("every byte ok\n");
    else printf("FAIL %ld bytes wrong\n", lost);
    return lost != 0;
}
