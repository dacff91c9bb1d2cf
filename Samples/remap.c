/* remap.c: moves 32 never-touched pages of its .data elsewhere with mremap, then reads them there. */
/*
 * Page n of `data` starts with the byte n+1. The program moves pages 8-39 to a
 * new address (mremap with MREMAP_FIXED over a reservation of its own), reads
 * the first byte of each moved page there, and prints their sum and a few of
 * them: natively the file's bytes moved with the mapping. Under the
 * userfaultfd pager the pages are missing when moved, and the server follows
 * the move (UFFD_EVENT_REMAP) to serve them from the right file offset.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/mman.h>

#define PAGE 4096
#define NPAGES 64
#define P1(n) [(n) * PAGE] = (n) + 1,
#define P8(n) P1(n) P1(n + 1) P1(n + 2) P1(n + 3) P1(n + 4) P1(n + 5) P1(n + 6) P1(n + 7)
static unsigned char data[NPAGES * PAGE] __attribute__((aligned(PAGE))) = {
    P8(0) P8(8) P8(16) P8(24) P8(32) P8(40) P8(48) P8(56)};

int main(void)
{
    unsigned char *target = mmap(NULL, 32 * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (target == MAP_FAILED) { perror("mmap"); return 1; }
    unsigned char *moved = mremap(data + 8 * PAGE, 32 * PAGE, 32 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, target);
    if (moved == MAP_FAILED) { perror("mremap"); return 1; }
    volatile unsigned char *m = moved;
    unsigned long sum = 0;
    for (int i = 0; i < 32; i++) sum += m[i * PAGE];
    printf("moved pages 8-39: first bytes %d %d %d, sum %lu\n", m[0], m[PAGE], m[31 * PAGE], sum);
    /* The pages left behind are still the file's. */
    printf("kept pages: %d %d\n", data[0], data[40 * PAGE]);
    return 0;
}
