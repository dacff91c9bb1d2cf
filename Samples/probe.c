// Process-state probe: prints, deterministically, every fact about its start-up that execve decides.
// Run natively and under elfload, the two outputs must be identical.
#define _GNU_SOURCE
#include <dirent.h>
#include <elf.h>
#include <link.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/rseq.h>
#include <unistd.h>

extern char **environ;
extern const ElfW(Ehdr) __ehdr_start;
extern char _start[];
extern char end[];

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "r");
  if (!f) return NULL;
  size_t cap = 1 << 16, n = 0;
  char *buf = malloc(cap);
  size_t got;
  while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
    n += got;
    if (n == cap) buf = realloc(buf, cap *= 2);
  }
  fclose(f);
  *len = n;
  return buf;
}

static int stack_bounds(uintptr_t *lo, uintptr_t *hi) {
  FILE *f = fopen("/proc/self/maps", "r");
  char line[512];
  int found = 0;
  while (fgets(line, sizeof line, f)) {
    if (strstr(line, "[stack]")) {
      sscanf(line, "%lx-%lx", lo, hi);
      found = 1;
    }
  }
  fclose(f);
  return found;
}

static const char *stack_perms(void) {
  static char perms[8] = "?";
  FILE *f = fopen("/proc/self/maps", "r");
  char line[512];
  while (fgets(line, sizeof line, f))
    if (strstr(line, "[stack]")) sscanf(line, "%*s %7s", perms);
  fclose(f);
  return perms;
}

#define CHECK(name, cond) printf("%s: %s\n", name, (cond) ? "ok" : "FAIL")

int main(int argc, char **argv) {
  printf("argc: %d\n", argc);
  for (int i = 1; i < argc; i++) printf("argv[%d]: %s\n", i, argv[i]);

  // The word below argv is argc, and that is where rsp pointed at entry.
  CHECK("rsp 16-byte aligned at argc", ((uintptr_t)argv - 8) % 16 == 0);
  CHECK("argc word", *((long *)argv - 1) == argc);

  // auxv: the tags in order, and the values that must be the same natively.
  char **e = environ;
  while (*e) e++;
  ElfW(auxv_t) *auxv = (ElfW(auxv_t) *)(e + 1);
  printf("auxv tags:");
  int n = 0;
  for (ElfW(auxv_t) *a = auxv; a->a_type != AT_NULL; a++, n++) printf(" %lu", (unsigned long)a->a_type);
  printf("\n");
  unsigned long same[] = {AT_HWCAP, AT_HWCAP2, AT_PAGESZ, AT_CLKTCK, AT_PHENT, AT_PHNUM,
                          AT_FLAGS, AT_UID, AT_EUID, AT_GID, AT_EGID, AT_SECURE, AT_MINSIGSTKSZ, 27, 28};
  for (size_t i = 0; i < sizeof same / sizeof same[0]; i++)
    printf("auxv %lu = %#lx\n", same[i], getauxval(same[i]));
  printf("AT_PLATFORM: %s\n", (char *)getauxval(AT_PLATFORM));
  CHECK("AT_PHDR is the program headers", getauxval(AT_PHDR) == (uintptr_t)&__ehdr_start + __ehdr_start.e_phoff);
  CHECK("AT_ENTRY is _start", getauxval(AT_ENTRY) == (uintptr_t)_start);
  // AT_BASE: where the interpreter is (an ELF image, page aligned), or 0.
  const ElfW(Phdr) *ph = (const ElfW(Phdr) *)((const char *)&__ehdr_start + __ehdr_start.e_phoff);
  int has_interp = 0;
  for (int i = 0; i < __ehdr_start.e_phnum; i++) has_interp |= ph[i].p_type == PT_INTERP;
  const unsigned char *base = (const unsigned char *)getauxval(AT_BASE);
  if (has_interp)
    CHECK("AT_BASE is the interpreter's ELF image", base && ((uintptr_t)base & 4095) == 0 && memcmp(base, ELFMAG, 4) == 0);
  else
    CHECK("AT_BASE is 0 (no interpreter)", base == NULL);
  const unsigned char *vdso = (const unsigned char *)getauxval(AT_SYSINFO_EHDR);
  CHECK("AT_SYSINFO_EHDR is an ELF image", vdso && memcmp(vdso, ELFMAG, 4) == 0);
  char *execfn = (char *)getauxval(AT_EXECFN);
  CHECK("AT_EXECFN is argv[0] (the path run)", execfn && strcmp(execfn, argv[0]) == 0);

  // Layout of the top of the stack, as create_elf_tables writes it.
  uintptr_t lo = 0, hi = 0;
  CHECK("[stack] mapping exists", stack_bounds(&lo, &hi));
  printf("[stack] permissions: %s\n", stack_perms());
  CHECK("argc is inside [stack]", (uintptr_t)argv > lo && (uintptr_t)argv < hi);
  CHECK("stack top = execfn + its length + 8", hi == (uintptr_t)execfn + strlen(execfn) + 1 + 8);
  CHECK("8 zero bytes at the stack top", *(uint64_t *)(hi - 8) == 0);
  int contiguous = 1;
  char *p = argv[0];
  for (int i = 0; i < argc; i++) {
    contiguous &= argv[i] == p;
    p += strlen(p) + 1;
  }
  for (char **v = environ; *v; v++) {
    contiguous &= *v == p;
    p += strlen(p) + 1;
  }
  contiguous &= p == execfn;
  CHECK("argv and env strings contiguous, then execfn", contiguous);
  char *platform = (char *)getauxval(AT_PLATFORM);
  uintptr_t random = getauxval(AT_RANDOM);
  CHECK("AT_RANDOM directly below AT_PLATFORM", random + 16 == (uintptr_t)platform);
  CHECK("AT_PLATFORM below the strings by less than 8192+16",
        (uintptr_t)platform < (uintptr_t)argv[0] && (uintptr_t)argv[0] - (uintptr_t)platform < 8192 + 16 + 7);
  uintptr_t auxv_end = (uintptr_t)(auxv + n + 1);
  CHECK("auxv ends below AT_RANDOM, less than 16 bytes of padding", auxv_end <= random && random - auxv_end < 16);

  // /proc/self/{auxv,cmdline,environ} show the program's own.
  size_t len;
  char *buf = slurp("/proc/self/auxv", &len);
  CHECK("/proc/self/auxv is the auxv", buf && len >= (n + 1) * sizeof(ElfW(auxv_t)) &&
                                           memcmp(buf, auxv, (n + 1) * sizeof(ElfW(auxv_t))) == 0);
  buf = slurp("/proc/self/cmdline", &len);
  size_t args_len = (size_t)((environ[0] ? environ[0] : execfn) - argv[0]);
  CHECK("/proc/self/cmdline is argv", buf && len == args_len && memcmp(buf, argv[0], len) == 0);
  buf = slurp("/proc/self/environ", &len);
  CHECK("/proc/self/environ is the environment", buf && (!environ[0] || (len == (size_t)(execfn - environ[0]) && memcmp(buf, environ[0], len) == 0)));
  buf = slurp("/proc/self/comm", &len);
  printf("comm: %.*s", (int)len, buf);

  // brk where load_elf_binary puts it.
  buf = slurp("/proc/self/stat", &len);
  char *s = strrchr(buf, ')') + 4;  // past ") S ": field 4 (ppid) is field[0]
  unsigned long field[60];
  for (int i = 0; i < 60 && s; i++) {
    field[i] = strtoul(s, &s, 10);
    while (*s == ' ') s++;
  }
  unsigned long start_brk = field[43];  // field 47
  uintptr_t bss_end = ((uintptr_t)end + 4095) & ~4095UL;
  if (__ehdr_start.e_type == ET_EXEC || has_interp)
    CHECK("brk after the bss + a page + random < 1 GiB", start_brk >= bss_end + 4096 && start_brk < bss_end + 4096 + (1UL << 30));
  else
    CHECK("brk moved to ELF_ET_DYN_BASE + random < 1 GiB", start_brk >= 0x555555555000UL && start_brk < 0x555555555000UL + (1UL << 30));
  // static glibc takes its TLS block from brk before main.
  CHECK("sbrk(0) is in the heap that starts at start_brk", (uintptr_t)sbrk(0) >= start_brk && (uintptr_t)sbrk(0) - start_brk < (16 << 20));
  void *grown = sbrk(1 << 20);
  CHECK("sbrk grows the heap", grown != (void *)-1 && (memset(grown, 1, 1 << 20), 1));
  buf = slurp("/proc/self/maps", &len);
  CHECK("[heap] is labelled", buf && memmem(buf, len, "[heap]", 6));

  // The program's file mappings, in order, with their permissions.
  printf("file mappings:");
  {
    FILE *f = fopen("/proc/self/maps", "r");
    char line[1024];
    const char *name = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    while (fgets(line, sizeof line, f)) {
      char perms[8];
      char path[600] = "";
      sscanf(line, "%*s %7s %*s %*s %*s %599s", perms, path);
      const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
      if (strcmp(base, name) == 0) printf(" %s", perms);
    }
    fclose(f);
  }
  printf("\n");

  // Inherited process state: file descriptors, signals, alternate stack.
  printf("fds:");
  DIR *d = opendir("/proc/self/fd");
  int dfd = dirfd(d);
  struct dirent *ent;
  int fds[256], nfd = 0;
  while ((ent = readdir(d)) && nfd < 256)
    if (ent->d_name[0] != '.' && atoi(ent->d_name) != dfd) fds[nfd++] = atoi(ent->d_name);
  closedir(d);
  for (int i = 0; i < nfd; i++)
    for (int j = i + 1; j < nfd; j++)
      if (fds[j] < fds[i]) { int t = fds[i]; fds[i] = fds[j]; fds[j] = t; }
  for (int i = 0; i < nfd; i++) printf(" %d", fds[i]);
  printf("\n");
  printf("signals not default:");
  for (int sig = 1; sig < NSIG; sig++) {
    struct sigaction sa;
    if (sigaction(sig, NULL, &sa) == 0 && sa.sa_handler != SIG_DFL)
      printf(" %d%s", sig, sa.sa_handler == SIG_IGN ? "(ignored)" : "(handled)");
  }
  printf("\n");
  sigset_t mask;
  sigprocmask(SIG_BLOCK, NULL, &mask);
  printf("blocked signals:");
  for (int sig = 1; sig < NSIG; sig++)
    if (sigismember(&mask, sig) == 1) printf(" %d", sig);
  printf("\n");
  stack_t ss;
  sigaltstack(NULL, &ss);
  printf("sigaltstack: %s\n", (ss.ss_flags & SS_DISABLE) ? "disabled" : "ENABLED");
  printf("personality: %#x\n", personality(0xffffffff));
  printf("rseq registered: %s\n", __rseq_size > 0 ? "yes" : "no");
  CHECK("sched_getcpu", sched_getcpu() >= 0);
  printf("dumpable: %d\n", prctl(PR_GET_DUMPABLE));
  struct rlimit stack_limit;
  getrlimit(RLIMIT_STACK, &stack_limit);
  if (stack_limit.rlim_cur == RLIM_INFINITY) printf("RLIMIT_STACK: unlimited\n");
  else printf("RLIMIT_STACK: %lu KiB\n", (unsigned long)stack_limit.rlim_cur >> 10);
  return 0;
}
