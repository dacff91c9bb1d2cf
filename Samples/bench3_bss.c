/* bench3_bss.c: benchmark 3 - one sequential read-then-write pass over a 64 MiB .bss array. */
/*
 * Every page is first read (it must be zero: .bss) and then written; the
 * program prints a checksum.  Usage: bench3_bss [MiB] (default 64, the whole array).
 */
#include <stdio.h>
#include <stdlib.h>

#define PAGE 4096
#define BSS_MIB 64

static unsigned char bss[BSS_MIB << 20] __attribute__((aligned(PAGE)));

int main(int argc, char **argv)
{
    long mib = BSS_MIB;
    if (argc > 1)
        mib = atol(argv[1]);
    if (mib < 0 || mib > BSS_MIB)
        mib = BSS_MIB;

    volatile unsigned char *b = bss;
    size_t len = (size_t)mib << 20;
    unsigned long sum = 0, nonzero = 0;
    for (size_t off = 0; off < len; off += PAGE) {
        unsigned char v = b[off];           /* read: must still be zero */
        nonzero += v != 0;
        b[off] = (unsigned char)(off >> 12); /* write */
        sum += b[off];
    }
    printf("touched: %ld MiB, %zu pages\n", mib, len / PAGE);
    printf("bss zero on first read: %s\n", nonzero ? "NO" : "ok");
    printf("checksum: %lu\n", sum);
    return nonzero ? 1 : 0;
}
