/* late_pidfd_open.c: a test's helper, not a sample. Runs COMMAND ARGS... with every
 * pidfd_open(PID, ...) held back until process PID has ended and been reaped, then let through
 * (a seccomp filter with a user-space listener, which the command and all it starts inherit).
 *
 * The race it makes happen every time: elfload's residency watcher opens a pidfd for the program
 * as its first act, and only if the program had already ended and been reaped by then does the
 * kernel answer ESRCH. The watcher almost always wins; held back, it always loses.
 *
 * Exits as COMMAND did (its status, or 128 + the signal that ended it).
 * Usage: late_pidfd_open COMMAND [ARGS...]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Whether process `pid` is gone (reaped): no /proc entry. */
static int gone(long pid)
{
    char path[32];
    struct stat st;
    snprintf(path, sizeof path, "/proc/%ld", pid);
    return stat(path, &st) != 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: late_pidfd_open COMMAND [ARGS...]\n");
        return 64;
    }
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 0, 2),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_pidfd_open, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
    };
    struct sock_fprog filter = {.len = sizeof code / sizeof code[0], .filter = code};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        perror("late_pidfd_open: prctl");
        return 71;
    }
    int listener = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &filter);
    if (listener < 0) {
        perror("late_pidfd_open: seccomp");
        return 71;
    }
    pid_t child = fork();
    if (child < 0) {
        perror("late_pidfd_open: fork");
        return 71;
    }
    if (child == 0) {
        close(listener);
        execvp(argv[1], argv + 1);
        perror(argv[1]);
        _exit(127);
    }
    for (;;) {
        int status;
        pid_t ended = waitpid(child, &status, WNOHANG);
        if (ended == child) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        struct pollfd p = {.fd = listener, .events = POLLIN};
        if (poll(&p, 1, 10) <= 0 || !(p.revents & POLLIN)) continue;
        struct seccomp_notif request;
        memset(&request, 0, sizeof request);
        if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &request) != 0) continue;  /* the caller is gone */
        /* Held until the process it names is gone, for at most 10 s. */
        long pid = (long)request.data.args[0];
        for (int i = 0; i < 10000 && !gone(pid); i++) {
            struct timespec ms = {0, 1000000};
            nanosleep(&ms, NULL);
        }
        struct seccomp_notif_resp response = {.id = request.id, .flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE};
        ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &response);
    }
}
