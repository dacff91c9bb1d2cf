/* dontneed.c: madvise(MADV_DONTNEED) on pages of .data and .bss the program wrote.
 *
 * Natively, a private file page dropped this way reads its file contents again and an
 * anonymous (bss) page reads zeros. A pager must give the same: after the drop, the
 * next touch faults again, and what it serves must be what the kernel would.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGES 16
#define PAGE 4096

static char data[PAGES * PAGE] __attribute__((aligned(PAGE))) = {[0] = 'd', [5 * PAGE] = 'D', [PAGES * PAGE - 1] = 'e'};
static char bss[PAGES * PAGE] __attribute__((aligned(PAGE)));

static unsigned long sum(const char *p, size_t n) {
  unsigned long s = 0;
  for (size_t i = 0; i < n; i++) s = s * 31 + (unsigned char)p[i];
  return s;
}

int main(void) {
  memset(data, 'x', sizeof data);
  memset(bss, 'y', sizeof bss);
  printf("written: data %lx bss %lx\n", sum(data, sizeof data), sum(bss, sizeof bss));
  /* Drop pages 4..11 of each: the rest keeps what was written. */
  if (madvise(data + 4 * PAGE, 8 * PAGE, MADV_DONTNEED) != 0) perror("madvise data");
  if (madvise(bss + 4 * PAGE, 8 * PAGE, MADV_DONTNEED) != 0) perror("madvise bss");
  printf("data page 5 starts with '%c', page 3 with '%c'\n", data[5 * PAGE], data[3 * PAGE]);
  printf("bss page 5 byte 7 is %d, page 12 byte 7 is '%c'\n", bss[5 * PAGE + 7], bss[12 * PAGE + 7]);
  printf("after: data %lx bss %lx\n", sum(data, sizeof data), sum(bss, sizeof bss));
  return 0;
}
