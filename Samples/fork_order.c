/* fork_order.c: three processes that share pages through fork end in a given order, each after
 * touching pages no other has touched. Usage: fork_order DIR ORDER
 *   The program forks child a, which forks grandchild c; then it forks child b. ORDER, a
 *   permutation of "pabc" (p: the program itself), is the order they end in, 50 ms apart. Before
 *   it ends each one writes pages of .data and .bss that nobody has touched yet and creates
 *   DIR/NAME holding the sum of what it read (and DIR/NAME.pid at its start), so a pager that
 *   stopped serving when an earlier one ended leaves it hanging, and the file missing. The
 *   children are in process groups of their own: they outlive the program's when it ends first.
 *   Prints the sums, from the program's own process, when it ends last.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096
#define PAGES 64
#define P1(n) [(n) * PAGE] = (n) + 1,
#define P8(n) P1(n) P1(n + 1) P1(n + 2) P1(n + 3) P1(n + 4) P1(n + 5) P1(n + 6) P1(n + 7)
static unsigned char data[PAGES * PAGE] __attribute__((aligned(PAGE))) = { P8(0) P8(8) P8(16) P8(24) P8(32) P8(40) P8(48) P8(56) };
static unsigned char bss[PAGES * PAGE] __attribute__((aligned(PAGE)));
static const char *dir;

/* DIR/NAME SUFFIX holding `value`, whole when it appears (written aside, then renamed). */
static void note(const char *name, const char *suffix, unsigned long value) {
  char path[4096], aside[4200], text[32];
  snprintf(path, sizeof path, "%s/%s%s", dir, name, suffix);
  snprintf(aside, sizeof aside, "%s.tmp", path);
  int n = snprintf(text, sizeof text, "%lu\n", value);
  int fd = open(aside, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd >= 0) {
    write(fd, text, (size_t)n);
    close(fd);
    rename(aside, path);
  }
}

/* Waits until `rank` turns have passed, then touches this process's own 16 pages and ends. */
static void finish(const char *name, int rank, int quarter) {
  struct timespec pause = {0, 50000000L * (rank + 1)};
  nanosleep(&pause, NULL);
  unsigned long sum = 0;
  for (int p = quarter * 16; p < quarter * 16 + 16; p++) {
    sum += data[p * PAGE] * (unsigned long)(p + 1);
    bss[p * PAGE] = (unsigned char)(p + 7);
    sum += bss[p * PAGE];
  }
  note(name, "", sum);
}

int main(int argc, char **argv) {
  if (argc != 3 || strlen(argv[2]) != 4) {
    fprintf(stderr, "usage: fork_order DIR ORDER (a permutation of pabc)\n");
    return 2;
  }
  dir = argv[1];
  const char *order = argv[2];
  note("p", ".pid", (unsigned long)getpid());
  pid_t a = fork();
  if (a == 0) {
    setpgid(0, 0);
    note("a", ".pid", (unsigned long)getpid());
    pid_t c = fork();
    if (c == 0) {
      note("c", ".pid", (unsigned long)getpid());
      finish("c", (int)(strchr(order, 'c') - order), 3);
      _exit(0);
    }
    finish("a", (int)(strchr(order, 'a') - order), 1);
    _exit(0);
  }
  pid_t b = fork();
  if (b == 0) {
    setpgid(0, 0);
    note("b", ".pid", (unsigned long)getpid());
    finish("b", (int)(strchr(order, 'b') - order), 2);
    _exit(0);
  }
  int rank = (int)(strchr(order, 'p') - order);
  if (rank == 3) {
    waitpid(a, NULL, 0);
    waitpid(b, NULL, 0);
  }
  finish("p", rank, 0);
  printf("p ended %s\n", rank == 3 ? "last" : "early");
  return 0;
}
