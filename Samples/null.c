/* null.c: dereferences NULL through a volatile pointer; must die by SIGSEGV (shell status 139). */
#include <stdio.h>

int main(void)
{
    volatile int *volatile p = NULL;
    fputs("about to dereference NULL\n", stdout);
    fflush(stdout);
    *p = 1;                       /* SIGSEGV here */
    fputs("still alive?!\n", stdout); /* must never be printed */
    return 0;
}
