/* layout.c: what address-space randomisation decides, printed raw. Unlike the other samples its
 * output differs from run to run by design; the tests compare runs with each other (natively and
 * under a loader: every value must change between runs, or, under `setarch -R`, none may). */
/*
 * Prints: the 16 AT_RANDOM bytes in hex; start_brk (field 47 of /proc/self/stat) and its distance
 * from the page after the program's bss; the address of argc (rsp at entry); and the program's
 * load address (the ELF header's), and its interpreter's (AT_BASE; 0 without one).
 */
#include <elf.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>

extern const ElfW(Ehdr) __ehdr_start;
extern char end[];

int main(int argc, char **argv) {
  (void)argc;
  const unsigned char *random = (const unsigned char *)getauxval(AT_RANDOM);
  printf("AT_RANDOM:");
  for (int i = 0; i < 16; i++) printf(" %02x", random ? random[i] : 0);
  printf("\n");

  FILE *f = fopen("/proc/self/stat", "r");
  char buf[2048];
  size_t len = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
  if (f) fclose(f);
  buf[len] = 0;
  char *s = strrchr(buf, ')');
  unsigned long start_brk = 0;
  if (s) {
    s += 2;  /* past ") ": field 3 (state) */
    for (int field = 3; field < 47 && *s; field++) s = strchr(s, ' ') ? strchr(s, ' ') + 1 : s + strlen(s);
    start_brk = strtoul(s, NULL, 10);
  }
  uintptr_t bss_end = ((uintptr_t)end + 4095) & ~4095UL;
  printf("start_brk: %#lx\n", start_brk);
  printf("start_brk - bss end: %#lx\n", (unsigned long)(start_brk - bss_end));
  printf("argc at: %p\n", (void *)((long *)argv - 1));
  printf("loaded at: %p\n", (const void *)&__ehdr_start);
  printf("interpreter at: %#lx\n", getauxval(AT_BASE));
  return 0;
}
