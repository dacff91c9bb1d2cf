/* refuse_ioctl.c: a test's helper, not a sample. Runs COMMAND ARGS... with every
 * ioctl(FD, REQUEST, ...) refused with ERRNO (by a seccomp filter, which the command and all it
 * starts inherit); every other ioctl, and every other system call, goes through.
 *
 * A refusal elfload cannot provoke otherwise: UFFDIO_REGISTER (0xc020aa00) on ranges elfload
 * has just mapped does not fail on a kernel that gave it a userfaultfd, but its failure has a
 * message of its own to check.
 *
 * Usage: refuse_ioctl REQUEST ERRNO COMMAND [ARGS...]   (REQUEST in hex, ERRNO 1-4095 in decimal)
 */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "filtered_exec.h"

int main(int argc, char **argv)
{
    char *end = NULL;
    errno = 0;
    unsigned long long request = argc > 1 ? strtoull(argv[1], &end, 16) : 0;
    int bad_request = argc < 2 || errno != 0 || end == argv[1] || *end != '\0' || request > UINT32_MAX;
    long error = argc > 2 ? strtol(argv[2], &end, 10) : 0;
    if (bad_request || argc < 4 || *argv[2] == '\0' || *end != '\0' || error < 1 || error > 4095) {
        fprintf(stderr, "usage: refuse_ioctl REQUEST ERRNO COMMAND [ARGS...]  (REQUEST hex, below 2^32; ERRNO 1-4095)\n");
        return 64;
    }
    /* ioctl's request is an unsigned int: the kernel reads the argument's low 32 bits only. */
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 0, 4),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_ioctl, 0, 2),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args) + 8),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)request, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (uint32_t)error),
    };
    return exec_filtered("refuse_ioctl: prctl", code, sizeof code / sizeof code[0], argv + 3);
}
