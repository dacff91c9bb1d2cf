/* filtered_exec.h: the tail the seccomp helpers (refuse_mprotect.c, refuse_ioctl.c) share. */
#ifndef FILTERED_EXEC_H
#define FILTERED_EXEC_H
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <unistd.h>

/* Installs the filter `code` (which the command and all it starts inherit), then runs `argv`.
 * Returns only on failure: 71 when the filter is refused (`what` names it, as perror does), 127
 * when the command cannot be run. */
static int exec_filtered(const char *what, struct sock_filter *code, unsigned short length, char **argv)
{
    struct sock_fprog filter = {.len = length, .filter = code};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &filter) != 0) {
        perror(what);
        return 71;
    }
    execvp(argv[0], argv);
    perror(argv[0]);
    return 127;
}
#endif
