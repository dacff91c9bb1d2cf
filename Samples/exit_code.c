/* exit_code.c: writes to stdout and stderr, then exits with status argv[1] (default 3). */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    int status = 3;
    if (argc > 1)
        status = atoi(argv[1]);
    printf("to stdout: exiting with status %d\n", status & 0xff);
    fprintf(stderr, "to stderr\n");
    return status;
}
