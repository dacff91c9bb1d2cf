/* mapfill.c: a program that uses up its own map count (vm.max_map_count), then touches its bss.
 * It splits a PROT_NONE reservation of its own into single pages (every other page made
 * readable: two mappings more each) until mprotect says ENOMEM, gives two back, and writes
 * every other page of an 8 MiB .bss. Natively that takes no mapping more: a fault never splits
 * a mapping. A pager that maps a touched page by changing its protection alone splits its
 * reservation, and must then map without splitting (a whole window at a time), or the program
 * dies where it runs natively.
 *
 * With `apart`, it first writes two pages 4 MiB apart, each the first of a 2 MiB window: the
 * one at the bss's first window boundary (it takes the two mappings given back), then the one
 * above. The second window has nothing accessible beside it, so mapping it alone splits its
 * reservation (the signal pager died there); it now grows the window down to the first page.
 * With `apart descending`, the upper page first: the lower window grows up to it (below it is
 * nothing accessible down to the segment's start).
 *
 * Usage: mapfill [apart [descending]]
 * Prints that the map count was filled, the pages touched and a checksum read back from them
 * (the same with `apart`: the pass writes every page the sum reads).
 */
#include <errno.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

enum { page = 4096, bss_mib = 8 };
static unsigned char bss[(size_t)bss_mib << 20];

static unsigned long max_map_count(void)
{
    unsigned long value = 65530;
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    if (f) {
        if (fscanf(f, "%lu", &value) != 1) value = 65530;
        fclose(f);
    }
    return value;
}

int main(int argc, char **argv)
{
    int apart = argc > 1 && strcmp(argv[1], "apart") == 0;
    int descending = apart && argc > 2 && strcmp(argv[2], "descending") == 0;
    printf("mapfill: vm.max_map_count filled with the program's own mappings\n");
    fflush(stdout);  /* stdio's buffer exists before the map count is full */
    size_t pages = 2 * max_map_count() + 4;
    unsigned char *reserved = mmap(NULL, pages * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (reserved == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    size_t at = 1, split = 0;
    for (; at + 1 < pages; at += 2, split++)
        if (mprotect(reserved + at * page, page, PROT_READ) != 0) break;
    if (at + 1 >= pages || errno != ENOMEM) {
        printf("the map count was never full (mprotect: %s)\n", at + 1 >= pages ? "no error" : "not ENOMEM");
        return 1;
    }
    /* Two mappings back: the last page made readable is PROT_NONE again, one with its neighbours. */
    if (split == 0 || mprotect(reserved + (at - 2) * page, page, PROT_NONE) != 0) {
        perror("mprotect back");
        return 1;
    }
    if (apart) {
        const uintptr_t window = (uintptr_t)2 << 20;
        uintptr_t boundary = ((uintptr_t)bss + window - 1) & ~(window - 1);  /* below bss + 2 MiB */
        volatile unsigned char *pages[2] = {(unsigned char *)boundary, (unsigned char *)(boundary + 2 * window)};
        *pages[descending] = 1;
        *pages[!descending] = 1;  /* its window ends below bss + 8 MiB */
    }
    size_t touched = 0;
    for (size_t b = 0; b < sizeof bss; b += 2 * page) {
        bss[b] = (unsigned char)(b / page);
        touched++;
    }
    unsigned long sum = 0;
    for (size_t b = 0; b < sizeof bss; b += 2 * page) sum += bss[b];
    printf("touched: %zu pages of %d MiB, checksum %lu\n", touched, bss_mib, sum);
    return 0;
}
