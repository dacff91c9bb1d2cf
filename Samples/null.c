/* null.c: faults that are the program's own; each must die by SIGSEGV (shell status 139), as natively. */
/*
 * Usage: null           write through a volatile NULL pointer
 *        null rodata    write to a const object (a page that is read-only)
 *        null raise     raise(SIGSEGV): sent, not a fault
 * A demand pager sees all three in its SIGSEGV handler and must tell them
 * from its own faults: it gives the signal back to the default action.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

static const int constant[1024] = { 1 };

int main(int argc, char **argv)
{
    const char *how = argc > 1 ? argv[1] : "null";
    printf("about to fault: %s\n", how);
    fflush(stdout);
    if (strcmp(how, "rodata") == 0) {
        volatile int *p = (volatile int *)&constant[512];
        *p = 1;                   /* SIGSEGV here */
    } else if (strcmp(how, "raise") == 0) {
        raise(SIGSEGV);
    } else {
        volatile int *volatile p = NULL;
        *p = 1;                   /* SIGSEGV here */
    }
    fputs("still alive?!\n", stdout); /* must never be printed */
    return 0;
}
