/* limits.c: what user-space demand paging cannot do, each in isolation (see the README's known limits). */
/*
 * Usage: limits efault    read() into a .bss page nothing has touched yet
 *        limits handler   install a SIGSEGV handler, then touch a fresh page
 *        limits blocked   block every signal, then touch a fresh page
 * Natively each one just works. A SIGSEGV-based demand pager cannot serve
 * the first (the kernel, not the program, touches the page: EFAULT), hands
 * the second's faults to the program's handler, and cannot run at all in the
 * third (the kernel kills a thread that faults with SIGSEGV blocked).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define PAGE 4096
/* Far from anything else in .bss, out of reach of a 64-page prefetch. */
static unsigned char bss[512 * PAGE] __attribute__((aligned(PAGE)));
static const char caught[] = "the program's own SIGSEGV handler ran\n";

/* Raw system calls: the handler must not run code it has never run before. */
static long raw3(long n, long a, long b, long c) {
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return ret;
}

static void on_segv(int signal) {
    (void)signal;
    raw3(1, 1, (long)caught, sizeof caught - 1);  /* write */
    raw3(231, 3, 0, 0);                           /* exit_group(3) */
}

int main(int argc, char **argv) {
    const char *what = argc > 1 ? argv[1] : "";
    if (strcmp(what, "efault") == 0) {
        int fd = open("/dev/zero", O_RDONLY);
        ssize_t n = read(fd, &bss[300 * PAGE], PAGE);
        if (n < 0) printf("read into untouched .bss: %s\n", strerror(errno));
        else printf("read into untouched .bss: %zd bytes\n", n);
        return 0;
    }
    if (strcmp(what, "handler") == 0) {
        volatile char first = caught[0];  /* the message's page is touched now */
        (void)first;
        raw3(39, 0, 0, 0);                 /* and so is raw3's (getpid) */
        struct sigaction action;
        memset(&action, 0, sizeof action);
        action.sa_handler = on_segv;
        sigaction(SIGSEGV, &action, NULL);
        bss[400 * PAGE] = 1;
        printf("touched a fresh page: no fault\n");
        return 0;
    }
    if (strcmp(what, "blocked") == 0) {
        sigset_t all;
        sigfillset(&all);
        sigprocmask(SIG_BLOCK, &all, NULL);
        bss[200 * PAGE] = 1;
        printf("touched a fresh page with every signal blocked: no fault\n");
        return 0;
    }
    fprintf(stderr, "usage: limits efault|handler|blocked\n");
    return 2;
}
