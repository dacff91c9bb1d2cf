/* bench1_args.c: benchmark 1 - checks argv/envp/auxv, malloc, sbrk, /proc/self/{maps,cmdline,environ}. */
/*
 * Everything printed is a fact that must be identical natively and under the
 * loader: no addresses, PIDs or times.  Every check prints one "ok" line, or a
 * "FAIL" line; if any check fails the program exits 1.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

#define ENV_NAME "ELFLOAD_SAMPLE_ENV"

extern const ElfW(Ehdr) __ehdr_start; /* linker-defined: our own ELF header */
extern char _start[];                 /* the ELF entry point */

int main(int argc, char **argv, char **envp);

int global_rw = 12345; /* initialised, writable: lives in .data */

static int failures;

static void check(int cond, const char *what)
{
    if (cond) {
        printf("%s ok\n", what);
    } else {
        printf("%s FAIL\n", what);
        failures++;
    }
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* Reads a whole (proc) file into a malloc'd buffer; returns length or -1. */
static long read_file(const char *path, char **out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap + 1);
    if (!buf) {
        close(fd);
        return -1;
    }
    for (;;) {
        if (len == cap) {
            cap *= 2;
            char *nb = realloc(buf, cap + 1);
            if (!nb) {
                free(buf);
                close(fd);
                return -1;
            }
            buf = nb;
        }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0) {
            free(buf);
            close(fd);
            return -1;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';
    *out = buf;
    return (long)len;
}

/* Finds the /proc/self/maps line containing addr and copies its 4 perm chars. */
static int maps_perms(const char *maps, uintptr_t addr, char perms[5])
{
    const char *line = maps;
    while (*line) {
        unsigned long lo, hi;
        char p[5];
        if (sscanf(line, "%lx-%lx %4s", &lo, &hi, p) == 3 && lo <= addr && addr < hi) {
            memcpy(perms, p, 5);
            return 1;
        }
        const char *nl = strchr(line, '\n');
        if (!nl)
            break;
        line = nl + 1;
    }
    return 0;
}

static void check_maps(void)
{
    char *maps;
    if (read_file("/proc/self/maps", &maps) < 0) {
        puts("maps: cannot read /proc/self/maps FAIL");
        exit(1);
    }
    char perms[5];
    int bad = 0;
    if (maps_perms(maps, (uintptr_t)&main, perms) && strncmp(perms, "r-x", 3) == 0) {
        puts("maps: text r-x ok");
    } else {
        puts("maps: text r-x FAIL");
        bad = 1;
    }
    if (maps_perms(maps, (uintptr_t)&global_rw, perms) && strncmp(perms, "rw-", 3) == 0) {
        puts("maps: data rw- ok");
    } else {
        puts("maps: data rw- FAIL");
        bad = 1;
    }
    free(maps);
    if (bad) {
        fflush(stdout);
        exit(1);
    }
}

static void check_auxv(void)
{
    check(getauxval(AT_PAGESZ) == 4096, "auxv: AT_PAGESZ == 4096");

    const unsigned char *rnd = (const unsigned char *)getauxval(AT_RANDOM);
    int rnd_ok = rnd != NULL;
    if (rnd_ok) { /* the 16 random bytes must be readable */
        unsigned acc = 0;
        for (int i = 0; i < 16; i++)
            acc += rnd[i];
        (void)acc;
    }
    check(rnd_ok, "auxv: AT_RANDOM non-zero");

    uintptr_t entry = getauxval(AT_ENTRY);
    check(entry != 0, "auxv: AT_ENTRY non-zero");
    check(entry == (uintptr_t)_start, "auxv: AT_ENTRY == _start");

    const char *execfn = (const char *)getauxval(AT_EXECFN);
    check(execfn != NULL && execfn[0] != '\0', "auxv: AT_EXECFN non-NULL");

    /* AT_PHDR must point at our program-header table. */
    const ElfW(Phdr) *phdr = (const ElfW(Phdr) *)getauxval(AT_PHDR);
    size_t phnum = getauxval(AT_PHNUM);
    size_t phent = getauxval(AT_PHENT);
    check(phdr != NULL && phnum > 0 && phnum < 256 && phent == sizeof(ElfW(Phdr)),
          "auxv: AT_PHDR/AT_PHNUM/AT_PHENT sane");
    if (!(phdr != NULL && phnum > 0 && phnum < 256))
        return;

    const ElfW(Ehdr) *eh = &__ehdr_start;
    check(memcmp(eh->e_ident, ELFMAG, SELFMAG) == 0 && eh->e_phnum == phnum &&
              (const char *)eh + eh->e_phoff == (const char *)phdr,
          "auxv: AT_PHDR matches ELF header");

    /* Load bias: PT_PHDR if present (PIE has one), otherwise derive it
     * from the PT_LOAD that maps file offset 0 (the ELF header). */
    uintptr_t bias = 0;
    int have_bias = 0;
    for (size_t i = 0; i < phnum; i++) {
        if (phdr[i].p_type == PT_PHDR) {
            bias = (uintptr_t)phdr - phdr[i].p_vaddr;
            have_bias = 1;
        }
    }
    if (!have_bias) {
        for (size_t i = 0; i < phnum; i++) {
            if (phdr[i].p_type == PT_LOAD && phdr[i].p_offset == 0) {
                bias = (uintptr_t)eh - phdr[i].p_vaddr;
                have_bias = 1;
                break;
            }
        }
    }
    check(have_bias && (eh->e_type == ET_DYN || bias == 0), "auxv: load bias consistent with e_type");

    uintptr_t pmain = (uintptr_t)&main, pdata = (uintptr_t)&global_rw;
    int main_ok = 0, data_ok = 0;
    for (size_t i = 0; i < phnum; i++) {
        if (phdr[i].p_type != PT_LOAD)
            continue;
        uintptr_t lo = bias + phdr[i].p_vaddr, hi = lo + phdr[i].p_memsz;
        if (lo <= pmain && pmain < hi && (phdr[i].p_flags & PF_X))
            main_ok = 1;
        if (lo <= pdata && pdata < hi && (phdr[i].p_flags & PF_W))
            data_ok = 1;
    }
    check(main_ok, "auxv: PT_LOAD (R-X) contains main");
    check(data_ok, "auxv: PT_LOAD (RW-) contains global");
}

static void check_sbrk(void)
{
    char *b0 = sbrk(0);
    check(b0 != (char *)-1, "sbrk: sbrk(0) works");
    char *p = sbrk(4096);
    char *b1 = sbrk(0);
    int grown = p != (char *)-1 && p == b0 && b1 == b0 + 4096;
    check(grown, "sbrk: sbrk(4096) grows heap");
    if (!grown)
        return;
    memset(p, 0x5a, 4096);
    int good = 1;
    for (int i = 0; i < 4096; i++)
        good &= p[i] == 0x5a;
    check(good, "sbrk: new memory writable");
}

static void check_malloc(void)
{
    char *small = malloc(64);
    if (small)
        strcpy(small, "small buffer contents");
    printf("malloc small: %s\n", small ? small : "(null)");
    check(small && strcmp(small, "small buffer contents") == 0, "malloc: small buffer");
    free(small);

    size_t big_len = 4u << 20;
    unsigned char *big = malloc(big_len);
    int good = big != NULL;
    if (good) {
        for (size_t off = 0; off < big_len; off += 4096)
            big[off] = (unsigned char)(off >> 12);
        for (size_t off = 0; off < big_len; off += 4096)
            good &= big[off] == (unsigned char)(off >> 12);
        big[big_len - 1] = 0xee;
        good &= big[big_len - 1] == 0xee;
    }
    check(good, "malloc: 4 MiB buffer, every page written and read back");
    free(big);
}

static void check_cmdline(int argc, char **argv)
{
    char *buf;
    long len = read_file("/proc/self/cmdline", &buf);
    if (len < 0) {
        check(0, "cmdline: readable");
        return;
    }
    /* Split on NULs: each argument is NUL-terminated. */
    int n = 0, match = 1;
    for (long off = 0; off < len; n++) {
        const char *arg = buf + off;
        size_t l = strnlen(arg, (size_t)(len - off));
        if (n >= 1)
            printf("cmdline[%d] = \"%s\"\n", n, arg);
        if (n >= argc || (n >= 1 && strcmp(arg, argv[n]) != 0))
            match = 0;
        off += (long)l + 1;
    }
    printf("cmdline: %d args\n", n);
    check(match && n == argc, "cmdline: matches argv");
    free(buf);
}

static void check_environ(void)
{
    const char *val = getenv(ENV_NAME);
    if (!val) {
        puts("environ: " ENV_NAME " not set, skipped");
        return;
    }
    char *want;
    if (asprintf(&want, "%s=%s", ENV_NAME, val) < 0)
        return;
    char *buf;
    long len = read_file("/proc/self/environ", &buf);
    int found = 0;
    for (long off = 0; len > 0 && off < len;) {
        const char *e = buf + off;
        size_t l = strnlen(e, (size_t)(len - off));
        if (l == strlen(want) && memcmp(e, want, l) == 0)
            found = 1;
        off += (long)l + 1;
    }
    check(found, "environ: /proc/self/environ has " ENV_NAME);
    if (len >= 0)
        free(buf);
    free(want);
}

int main(int argc, char **argv, char **envp)
{
    printf("argc: %d\n", argc);
    printf("argv[0] basename: %s\n", base_name(argv[0]));
    for (int i = 1; i < argc; i++)
        printf("argv[%d] = \"%s\"\n", i, argv[i]);
    check(argv[argc] == NULL, "argv: NULL-terminated");

    int envc = 0;
    while (envp[envc])
        envc++;
    printf("envc: %d\n", envc);
    const char *val = getenv(ENV_NAME);
    if (val)
        printf(ENV_NAME " = \"%s\"\n", val);
    else
        puts(ENV_NAME " not set");

    check_malloc();
    check_maps();
    check_auxv();
    check_sbrk();
    check_cmdline(argc, argv);
    check_environ();

    check(global_rw == 12345, "data: initialised global value");

    if (failures) {
        printf("%d check(s) FAILED\n", failures);
        return 1;
    }
    puts("all checks ok");
    return 0;
}
