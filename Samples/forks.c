/* forks.c: fork, exec and posix_spawn from a loaded program; the child touches pages the parent never did. */
/*
 * Usage: forks PROGRAM   fork; the child sums pages of .data and .bss that
 *                        the parent has not touched, then execs PROGRAM;
 *                        the parent waits, then touches those pages itself.
 *        forks --spawn PROGRAM
 *                        the same child work, then posix_spawn(PROGRAM) from
 *                        the parent (glibc's posix_spawn, which system() and
 *                        popen() use too).
 * Under demand paging the forked child inherits the fault handler and its
 * state: its first touches are served in its own address space, and the
 * parent's pages stay untouched until the parent touches them.
 */
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096
#define PAGES 64

#define P1(n) [(n) * PAGE] = (n) + 1,
#define P8(n) P1(n) P1(n + 1) P1(n + 2) P1(n + 3) P1(n + 4) P1(n + 5) P1(n + 6) P1(n + 7)
#define P64 P8(0) P8(8) P8(16) P8(24) P8(32) P8(40) P8(48) P8(56)
static unsigned char data[PAGES * PAGE] __attribute__((aligned(PAGE))) = { P64 };
static unsigned char bss[PAGES * PAGE] __attribute__((aligned(PAGE)));

extern char **environ;

/* Reads the first byte of pages [from, to) of .data and writes .bss ones. */
static unsigned long touch(int from, int to) {
    unsigned long sum = 0;
    for (int p = from; p < to; p++) {
        sum += data[p * PAGE] * (unsigned long)(p + 1);
        bss[p * PAGE] = (unsigned char)p;
        sum += bss[p * PAGE];
    }
    return sum;
}

static void report(const char *who, int status) {
    if (WIFEXITED(status)) printf("%s exited with status %d\n", who, WEXITSTATUS(status));
    else if (WIFSIGNALED(status)) printf("%s killed by signal %d\n", who, WTERMSIG(status));
}

int main(int argc, char **argv) {
    int spawn = argc > 1 && strcmp(argv[1], "--spawn") == 0;
    if (argc != 2 + spawn) {
        fprintf(stderr, "usage: forks [--spawn] PROGRAM\n");
        return 2;
    }
    const char *program = argv[1 + spawn];
    printf("parent: first half %lu\n", touch(0, PAGES / 2));
    fflush(stdout);

    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 1;
    }
    if (pid == 0) {
        printf("child: second half %lu\n", touch(PAGES / 2, PAGES));
        fflush(stdout);
        if (spawn) _exit(0);
        char *args[] = { (char *)program, "from the forked child", NULL };
        execve(program, args, environ);
        perror("execve");
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
    report("child", status);

    if (spawn) {
        char *args[] = { (char *)program, "spawned", NULL };
        pid_t spawned;
        int error = posix_spawn(&spawned, program, NULL, NULL, args, environ);
        if (error != 0) {
            printf("posix_spawn: %s\n", strerror(error));
            return 1;
        }
        waitpid(spawned, &status, 0);
        report("spawned program", status);
    }
    printf("parent: second half %lu\n", touch(PAGES / 2, PAGES));
    return 0;
}
