/* refuse_mprotect.c: a test's helper, not a sample. Runs COMMAND ARGS... with every
 * mprotect(ADDRESS, LENGTH, PROT_READ | PROT_WRITE) where LOW <= ADDRESS < HIGH and
 * LENGTH < 2 MiB refused with ENOMEM (by a seccomp filter, which the command and all it
 * starts inherit); a change of 2 MiB or more, or of another protection, goes through.
 *
 * ENOMEM is what mprotect says when the split it needs would pass vm.max_map_count. The
 * signal pager keeps its own splits within a budget, so the kernel's refusal comes only when
 * something else holds the count; then it maps a 2 MiB window at a time, which splits nothing.
 * This makes the refusal come where a test wants it: on small changes in [LOW, HIGH) only.
 *
 * With -e ERRNO (decimal) the refusal is that error instead: one mprotect does not give for a
 * full map count (EACCES, say), which the pager cannot work around and must report. With -a
 * changes of every length under 4 GiB are refused, 2 MiB windows too.
 *
 * Usage: refuse_mprotect [-a] [-e ERRNO] LOW HIGH COMMAND [ARGS...]   (LOW and HIGH in hex, below 4 GiB)
 */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "filtered_exec.h"

/* The low and high 32 bits of argument `i` (x86-64 is little-endian). */
#define LOW_WORD(i) (offsetof(struct seccomp_data, args) + 8 * (i))
#define HIGH_WORD(i) (LOW_WORD(i) + 4)

static int address(const char *text, uint32_t *value)
{
    char *end;
    errno = 0;
    unsigned long long parsed = strtoull(text, &end, 16);
    if (errno != 0 || end == text || *end != '\0' || parsed > UINT32_MAX) return -1;
    *value = (uint32_t)parsed;
    return 0;
}

int main(int argc, char **argv)
{
    uint32_t low, high;
    long error = ENOMEM;
    uint32_t longest = 2 << 20;
    if (argc > 1 && strcmp(argv[1], "-a") == 0) {
        longest = UINT32_MAX;
        argc--;
        argv++;
    }
    if (argc > 2 && strcmp(argv[1], "-e") == 0) {
        char *end;
        error = strtol(argv[2], &end, 10);
        if (*argv[2] == '\0' || *end != '\0' || error < 1 || error > 4095) error = -1;
        argc -= 2;
        argv += 2;
    }
    if (error < 0 || argc < 4 || address(argv[1], &low) != 0 || address(argv[2], &high) != 0 || low >= high) {
        fprintf(stderr, "usage: refuse_mprotect [-a] [-e ERRNO] LOW HIGH COMMAND [ARGS...]  (LOW < HIGH, hex, below 4 GiB; ERRNO 1-4095, default ENOMEM)\n");
        return 64;
    }
    /* Each test jumps over the refusal (to ALLOW, the last statement) when it fails. */
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 0, 12),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_mprotect, 0, 10),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, LOW_WORD(2)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PROT_READ | PROT_WRITE, 0, 8),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, HIGH_WORD(1)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 6),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, LOW_WORD(1)),
        BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, longest, 4, 0),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, HIGH_WORD(0)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 2),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, LOW_WORD(0)),
        BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, low, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, high, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (uint32_t)error),
    };
    return exec_filtered("refuse_mprotect: prctl", code, sizeof code / sizeof code[0], argv + 3);
}
