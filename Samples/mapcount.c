/* mapcount.c: touches every other page of a 512 MiB .bss (one byte written each).
 * A pager that gives each touched page its protection alone splits the mapping at
 * every page: 65 536 touched pages need some 131 000 mappings, twice vm.max_map_count's
 * default (65 530). Natively (and eagerly) it is one anonymous mapping.
 *
 * Usage: mapcount [MiB]   (default 512; pages 0, 2, 4, ... of the first MiB mebibytes)
 * Prints the number of pages touched and a checksum read back from them.
 */
#include <stdio.h>
#include <stdlib.h>

enum { mib = 512, page = 4096 };
static unsigned char bss[(size_t)mib << 20];

int main(int argc, char **argv)
{
    size_t size = (size_t)(argc > 1 ? atoi(argv[1]) : mib) << 20;
    if (size > sizeof bss) size = sizeof bss;
    size_t touched = 0;
    for (size_t at = 0; at < size; at += 2 * page) {
        bss[at] = (unsigned char)(at / page);
        touched++;
    }
    unsigned long sum = 0;
    for (size_t at = 0; at < size; at += 2 * page) sum += bss[at];
    printf("touched: %zu pages of %zu MiB, checksum %lu\n", touched, size >> 20, sum);
    return 0;
}
