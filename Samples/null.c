/* null.c: faults that are the program's own; each must die by SIGSEGV (shell status 139), as natively. */
/*
 * Usage: null                   write through a volatile NULL pointer
 *        null rodata            write to a const object (a page that is read-only)
 *        null raise             raise(SIGSEGV): sent, not a fault
 *        null text              write into main's own code, which has run (its page is mapped)
 *        null rodata-read       read a const object, then write to it (a mapped read-only page)
 *        null rodata-by-kernel  read() from /dev/zero into a const object (the kernel writes:
 *                               EFAULT, printed), then write to it directly
 * A demand pager sees these in its SIGSEGV handler and must tell them
 * from its own faults: it gives the signal back to the default action.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const int constant[1024] = { 1 };
/* Its own page or two of read-only data, apart from constant's. */
static const int other_constant[2048] __attribute__((aligned(4096))) = { 2, [1024] = 3 };

int main(int argc, char **argv)
{
    const char *how = argc > 1 ? argv[1] : "null";
    printf("about to fault: %s\n", how);
    fflush(stdout);
    if (strcmp(how, "rodata") == 0) {
        volatile int *p = (volatile int *)&constant[512];
        *p = 1;                   /* SIGSEGV here */
    } else if (strcmp(how, "text") == 0) {
        volatile unsigned char *code = (volatile unsigned char *)(void *)main;
        *code = *code;            /* SIGSEGV here: code is not writable */
    } else if (strcmp(how, "rodata-read") == 0) {
        volatile const int *c = &other_constant[1024];
        printf("read %d\n", *c);
        fflush(stdout);
        *(volatile int *)c = 4;   /* SIGSEGV here */
    } else if (strcmp(how, "rodata-by-kernel") == 0) {
        int fd = open("/dev/zero", O_RDONLY);
        ssize_t n = read(fd, (void *)&other_constant[1024], sizeof(int));
        if (n < 0) printf("read() into .rodata: %s\n", strerror(errno));
        else printf("read() into .rodata: %zd bytes, now %d\n", n, other_constant[1024]);
        fflush(stdout);
        *(volatile int *)&other_constant[1024] = 4;   /* SIGSEGV here */
    } else if (strcmp(how, "raise") == 0) {
        raise(SIGSEGV);
    } else {
        volatile int *volatile p = NULL;
        *p = 1;                   /* SIGSEGV here */
    }
    fputs("still alive?!\n", stdout); /* must never be printed */
    return 0;
}
