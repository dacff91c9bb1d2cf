// Runs a command N times (after warm-up runs) in fresh processes and reports the median,
// spread, peak RSS and page faults. posix_spawn + wait4: the timer includes only the
// process's own life, not a shell's or an interpreter's.
//
//   runbench [-n RUNS] [-w WARMUP] [-q] -- PROGRAM ARGS... [::: PROGRAM ARGS...]...
//
// Prints one line per command: median_us p10_us p90_us max_rss_kb minor_faults major_faults status
//
// Several commands (separated by :::) are run in rounds, one run of each a round: a drift of
// the machine over the seconds they take falls on all of them alike, not on those run last.
//
// Build it static (cc -O2 -static): the peak RSS the kernel reports for a child
// (ru_maxrss) is at least the RSS of the process that exec'd it, because exec
// keeps the old address space's high-water mark; a dynamic runbench (~1.3 MiB)
// hid the peak of every smaller program.
#define _GNU_SOURCE
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

enum { max_commands = 64 };

struct command {
  char **argv;
  double *us;
  long rss, minflt, majflt;
  int status;
};

int main(int argc, char **argv) {
  int runs = 31, warmup = 3, i = 1;
  for (; i < argc && argv[i][0] == '-'; i++) {
    if (!strcmp(argv[i], "-n") && i + 1 < argc) runs = atoi(argv[++i]);
    else if (!strcmp(argv[i], "-w") && i + 1 < argc) warmup = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--")) { i++; break; }
    else { fprintf(stderr, "runbench: unknown option %s\n", argv[i]); return 2; }
  }
  if (i >= argc || runs < 1) {
    fprintf(stderr, "usage: runbench [-n RUNS] [-w WARMUP] -- PROGRAM ARGS... [::: PROGRAM ARGS...]...\n");
    return 2;
  }
  // The commands: argv from i on, cut at each ::: (made the end of the one before).
  struct command commands[max_commands];
  int count = 0;
  for (int start = i; start < argc; count++) {
    if (count == max_commands || !strcmp(argv[start], ":::")) {
      fprintf(stderr, "runbench: at most %d commands, none empty\n", max_commands);
      return 2;
    }
    int end = start;
    while (end < argc && strcmp(argv[end], ":::")) end++;
    commands[count] = (struct command){.argv = argv + start, .us = calloc(runs, sizeof(double))};
    argv[end < argc ? end : argc] = NULL;
    start = end + 1;
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  for (int r = -warmup; r < runs; r++) {
    for (int k = 0; k < count; k++) {
      struct command *c = &commands[k];
      struct timespec t0, t1;
      pid_t pid;
      clock_gettime(CLOCK_MONOTONIC, &t0);
      if (posix_spawn(&pid, c->argv[0], &fa, NULL, c->argv, environ) != 0) { perror("posix_spawn"); return 1; }
      struct rusage ru;
      wait4(pid, &c->status, 0, &ru);
      clock_gettime(CLOCK_MONOTONIC, &t1);
      if (r < 0) continue;
      c->us[r] = (t1.tv_sec - t0.tv_sec) * 1e6 + (t1.tv_nsec - t0.tv_nsec) / 1e3;
      if (ru.ru_maxrss > c->rss) c->rss = ru.ru_maxrss;
      c->minflt += ru.ru_minflt;
      c->majflt += ru.ru_majflt;
    }
  }
  for (int k = 0; k < count; k++) {
    struct command *c = &commands[k];
    qsort(c->us, runs, sizeof *c->us, cmp);
    printf("%.1f %.1f %.1f %ld %ld %ld %d\n", c->us[runs / 2], c->us[runs / 10], c->us[runs * 9 / 10], c->rss,
           c->minflt / runs, c->majflt / runs,
           WIFEXITED(c->status) ? WEXITSTATUS(c->status) : 128 + WTERMSIG(c->status));
  }
  return 0;
}
