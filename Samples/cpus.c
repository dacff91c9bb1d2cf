/* cpus.c: faults from two CPUs, one after the other, for the userfaultfd server's placement
 * tests. The main thread pins itself to the first CPU it may run on and writes the first half
 * of a 256-page .bss array; then a second thread, pinned to the next CPU allowed, writes the
 * second half. Each byte is checked afterwards. With one CPU allowed, both halves are written
 * there.  Prints "2 threads on 2 CPUs, 256 pages: every byte ok" (or "... on 1 CPU ...").
 * Usage: cpus */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>

#define PAGE 4096
#define PAGES 256

static unsigned char bss[PAGES * PAGE] __attribute__((aligned(PAGE)));
static int cpus[2];

static void pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    sched_setaffinity(0, sizeof set, &set);
}

static void write_half(int half)
{
    for (int p = half * PAGES / 2; p < (half + 1) * PAGES / 2; p++)
        bss[p * PAGE + p % PAGE] = (unsigned char)(p + 1);
}

static void *second(void *unused)
{
    (void)unused;
    pin(cpus[1]);
    write_half(1);
    return NULL;
}

int main(void)
{
    cpu_set_t allowed;
    sched_getaffinity(0, sizeof allowed, &allowed);
    int found = 0;
    for (int c = 0; c < CPU_SETSIZE && found < 2; c++)
        if (CPU_ISSET(c, &allowed))
            cpus[found++] = c;
    if (found == 1)
        cpus[1] = cpus[0];
    pin(cpus[0]);
    write_half(0);
    pthread_t thread;
    if (pthread_create(&thread, NULL, second, NULL) != 0 || pthread_join(thread, NULL) != 0) {
        puts("pthread_create failed");
        return 1;
    }
    long wrong = 0;
    for (int p = 0; p < PAGES; p++)
        for (int b = 0; b < PAGE; b++)
            wrong += bss[p * PAGE + b] != (b == p % PAGE ? (unsigned char)(p + 1) : 0);
    if (wrong != 0) {
        printf("FAIL %ld bytes wrong\n", wrong);
        return 1;
    }
    printf("2 threads on %d CPU%s, %d pages: every byte ok\n", found, found == 1 ? "" : "s", PAGES);
    return 0;
}
