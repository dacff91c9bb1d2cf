// What a program can learn of how it was started and from what: argv, AT_EXECFN, its task name,
// /proc/self/exe, the files its mappings name, its open descriptors, and (with an argument
// "stdin") what is on its standard input. The run-from-memory tests compare it with fexecve.
#define _GNU_SOURCE
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

int main(int argc, char **argv) {
  for (int i = 0; i < argc; i++) printf("argv[%d]: %s\n", i, argv[i]);
  printf("AT_EXECFN: %s\n", (const char *)getauxval(AT_EXECFN));
  char buf[4096];
  FILE *f = fopen("/proc/self/comm", "r");
  if (f && fgets(buf, sizeof buf, f)) printf("comm: %s", buf);
  if (f) fclose(f);
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  buf[n > 0 ? n : 0] = 0;
  printf("exe: %s\n", buf);
  // Which files are mapped (the first time each appears), not where: that is random.
  printf("mapped files:");
  f = fopen("/proc/self/maps", "r");
  char line[4200], seen[16][512];
  int nseen = 0;
  while (f && fgets(line, sizeof line, f)) {
    char *path = strchr(line, '/');
    if (!path) continue;
    path[strcspn(path, "\n")] = 0;
    int dup = 0;
    for (int i = 0; i < nseen; i++) dup |= strcmp(seen[i], path) == 0;
    if (!dup && nseen < 16) {
      snprintf(seen[nseen++], sizeof seen[0], "%s", path);
      printf(" %s", path);
    }
  }
  if (f) fclose(f);
  printf("\nfds:");
  DIR *d = opendir("/proc/self/fd");
  int self = dirfd(d);
  struct dirent *e;
  int fds[64], nfd = 0;
  while ((e = readdir(d)) && nfd < 64) {
    if (e->d_name[0] == '.' || atoi(e->d_name) == self) continue;
    fds[nfd++] = atoi(e->d_name);
  }
  closedir(d);
  for (int i = 0; i < nfd; i++)
    for (int j = i + 1; j < nfd; j++)
      if (fds[j] < fds[i]) { int t = fds[i]; fds[i] = fds[j]; fds[j] = t; }
  for (int i = 0; i < nfd; i++) {
    char link[64], target[512];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fds[i]);
    ssize_t m = readlink(link, target, sizeof target - 1);
    target[m > 0 ? m : 0] = 0;
    // Only what is the program's: a pipe's or a socket's number changes from run to run.
    printf(" %d%s%s", fds[i], strncmp(target, "/memfd:", 7) == 0 ? "=" : "", strncmp(target, "/memfd:", 7) == 0 ? target : "");
  }
  printf("\n");
  if (argc > 1 && strcmp(argv[1], "stdin") == 0) {
    // One line at most: a stream kept open must not make this wait for its end.
    if (fgets(buf, sizeof buf, stdin)) printf("stdin: %s", buf);
    else printf("stdin: (end)\n");
  }
  return 0;
}
