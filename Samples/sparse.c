/* sparse.c: a 16 MiB initialised .data array of which only every 64th page is touched (memory benchmark).
 * `sparse faults` also prints the minor faults its 64 reads took (getrusage around them): some
 * natively (up to one a page: fewer where the page cache's large folios map several at once);
 * none where a loader installed the pages before the jump. */
/*
 * Page 64*k starts with the byte k+1 (non-zero, so the array is in .data and
 * fully file-backed).  The program reads (and sums) the first byte of every
 * 64th page only, i.e. 64 of 4096 pages, and prints the checksum.  A loader
 * that maps .data lazily should stay far below 16 MiB of resident memory.
 */
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#define PAGE 4096
#define NPAGES 4096 /* 16 MiB */
#define STRIDE 64

#define P1(k) [(k) * STRIDE * PAGE] = (k) + 1,
#define P8(k) P1(k) P1(k + 1) P1(k + 2) P1(k + 3) P1(k + 4) P1(k + 5) P1(k + 6) P1(k + 7)
#define P64 P8(0) P8(8) P8(16) P8(24) P8(32) P8(40) P8(48) P8(56)

static unsigned char data[NPAGES * PAGE] __attribute__((aligned(PAGE))) = { P64 };

int main(int argc, char **argv)
{
    volatile unsigned char *d = data;
    unsigned long sum = 0, touched = 0;
    struct rusage before, after;
    getrusage(RUSAGE_SELF, &before);
    for (size_t p = 0; p < NPAGES; p += STRIDE) {
        sum += d[p * PAGE] * (p / STRIDE + 1);
        touched++;
    }
    getrusage(RUSAGE_SELF, &after);
    printf("array: %d MiB, touched %lu pages\n", NPAGES * PAGE >> 20, touched);
    printf("checksum: %lu\n", sum);
    if (argc > 1 && strcmp(argv[1], "faults") == 0) printf("faults: %ld\n", after.ru_minflt - before.ru_minflt);
    return 0;
}
