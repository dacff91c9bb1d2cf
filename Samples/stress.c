/* stress.c: page faults under pressure, with a deterministic result to compare with native.
 *
 *   stress forks N     N children (8 at a time), each touching its own slice of .data and .bss
 *                      that no one touched before (read the data, write the bss), exits with
 *                      its checksum; the parent prints the sum.
 *   stress timer       a SIGALRM every 50 us (SA_RESTART) while the program writes 16384 fresh
 *                      bss pages and reads from a pipe in between; prints a checksum (not the
 *                      signal count, which varies).
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096
#define DATA_PAGES 512
#define BSS_PAGES 16384

static unsigned char data[DATA_PAGES * PAGE] = {1, 2, 3};
static unsigned char bss[BSS_PAGES * PAGE];
static volatile sig_atomic_t alarms;

static void on_alarm(int s) { (void)s; alarms++; }

static int forks(int n) {
  int pages_each = DATA_PAGES / n > 0 ? DATA_PAGES / n : 1;
  unsigned long total = 0;
  int running = 0, started = 0;
  while (started < n || running > 0) {
    while (started < n && running < 8) {
      pid_t pid = fork();
      if (pid < 0) { perror("fork"); return 1; }
      if (pid == 0) {
        unsigned sum = 0;
        int first = (started * pages_each) % DATA_PAGES;
        for (int p = 0; p < pages_each; p++) {
          size_t at = (size_t)((first + p) % DATA_PAGES) * PAGE;
          sum += data[at] + data[at + 7] * 3u;
          bss[(size_t)(started * 16 + p) % BSS_PAGES * PAGE] = (unsigned char)(started + p);
          sum += bss[(size_t)(started * 16 + p) % BSS_PAGES * PAGE];
        }
        _exit((int)(sum % 251));
      }
      started++;
      running++;
    }
    int status;
    if (wait(&status) > 0) {
      running--;
      if (WIFEXITED(status)) total += (unsigned long)WEXITSTATUS(status);
      else total += 1000000;  /* a child killed by a signal shows */
    }
  }
  printf("%d children, checksum %lu\n", n, total);
  return 0;
}

static int timer(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGALRM, &sa, NULL);
  int p[2];
  if (pipe(p) != 0) return 1;
  struct itimerval t = {{0, 50}, {0, 50}};
  setitimer(ITIMER_REAL, &t, NULL);
  unsigned long sum = 0;
  for (int i = 0; i < BSS_PAGES; i++) {
    bss[(size_t)i * PAGE + (size_t)(i % PAGE)] = (unsigned char)i;
    if (i % 64 == 0) {
      char c = (char)i, d = 0;
      if (write(p[1], &c, 1) != 1 || read(p[0], &d, 1) != 1) { perror("pipe"); return 1; }
      sum += (unsigned char)d;
    }
  }
  struct itimerval off = {{0, 0}, {0, 0}};
  setitimer(ITIMER_REAL, &off, NULL);
  for (int i = 0; i < BSS_PAGES; i++) sum += bss[(size_t)i * PAGE + (size_t)(i % PAGE)];
  printf("checksum %lu, alarms %s\n", sum, alarms > 0 ? "some" : "none");
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "forks") == 0) return forks(atoi(argv[2]));
  if (argc == 2 && strcmp(argv[1], "timer") == 0) return timer();
  fprintf(stderr, "usage: stress forks N | stress timer\n");
  return 2;
}
