/* bench2_pages.c: benchmark 2 - repeatedly writes one byte on every page of a large initialised .data array. */
/*
 * `data` is initialised (non-zero bytes at the start of every page), so it is
 * placed in .data and the first writable PT_LOAD consists mostly of
 * file-backed pages.  Each round writes one byte on each page of it and the
 * program prints a checksum, which also verifies that the initial file
 * contents were loaded correctly.  Usage: bench2_pages [rounds] (default 50).
 */
#include <stdio.h>
#include <stdlib.h>

#define PAGE 4096
#define NPAGES 64

/* Page n starts with the byte n+1; everything else is 0. */
#define P1(n) [(n) * PAGE] = (n) + 1,
#define P8(n) P1(n) P1(n + 1) P1(n + 2) P1(n + 3) P1(n + 4) P1(n + 5) P1(n + 6) P1(n + 7)
#define P64 P8(0) P8(8) P8(16) P8(24) P8(32) P8(40) P8(48) P8(56)

static unsigned char data[NPAGES * PAGE] __attribute__((aligned(PAGE))) = { P64 };

int main(int argc, char **argv)
{
    long rounds = 50;
    if (argc > 1)
        rounds = atol(argv[1]);
    if (rounds < 0)
        rounds = 0;

    /* Verify the file-backed initial contents before touching anything. */
    int init_ok = 1;
    for (int p = 0; p < NPAGES; p++)
        init_ok &= data[p * PAGE] == p + 1 && data[p * PAGE + 1] == 0;
    printf("pages: %d, initial contents %s\n", NPAGES, init_ok ? "ok" : "WRONG");

    volatile unsigned char *d = data;
    unsigned long sum = 0;
    for (long r = 0; r < rounds; r++) {
        for (int p = 0; p < NPAGES; p++) {
            size_t off = (size_t)p * PAGE + (size_t)(r % 64) * 64;
            d[off] = (unsigned char)(d[off] + p + r);
            sum += d[off];
        }
    }
    printf("rounds: %ld\n", rounds);
    printf("sum: %lu\n", sum);
    return init_ok ? 0 : 1;
}
