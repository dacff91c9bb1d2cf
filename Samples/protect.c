/* protect.c: the program changes the protection of its own pages, then breaks the new rule.
 * Natively each case dies by SIGSEGV; a demand pager must not serve such a fault again
 * and again (an endless fault loop), nor undo the program's mprotect.
 *
 * Usage: protect data-ro            write .data, mprotect its page read-only, write it again
 *                                   (what a PT_GNU_RELRO reaching past the data does)
 *        protect data-ro-untouched  mprotect a never-touched .data page read-only, then write it
 *        protect bss-ro             mprotect a never-touched .bss page read-only, then write it
 *        protect bss-ro-read        the same, but read it before the write
 *        protect bss-next-ro        write a .bss page, mprotect the next one (which a hybrid
 *                                   pager has mapped ahead, but nothing has touched) read-only,
 *                                   then write that
 *        protect text-nx            call a function, mprotect its page non-executable, call it
 *        protect text-nx-untouched  mprotect a never-executed code page non-executable, call it
 *        protect bss-call           call a never-touched .bss page (not executable: the kernel
 *                                   maps the page on the fetch, which then faults on it)
 *        protect ok                 mprotect .data read-only and back, then write: no fault
 * Prints `about to fault: HOW` (flushed) first, and `survived` if the access went through.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Pages of their own: nothing else of the program is on them. */
static char data_page[2][4096] __attribute__((aligned(4096))) = { { 1 }, { 2 } };
static char bss_page[4][4096] __attribute__((aligned(4096)));

/* Two functions, each alone on its page (so mprotect cannot hit main). */
int victim(void);
int untouched_victim(void);
__asm__(".text\n"
        ".balign 4096\n"
        ".globl victim\n.type victim,@function\n"
        "victim: mov $42, %eax\n ret\n"
        ".balign 4096\n"
        ".globl untouched_victim\n.type untouched_victim,@function\n"
        "untouched_victim: mov $43, %eax\n ret\n"
        ".balign 4096\n");

static void *page_of(const void *p) { return (void *)((uintptr_t)p & ~(uintptr_t)4095); }

static void protect(const void *p, int protection)
{
    if (mprotect(page_of(p), 4096, protection) != 0) {
        perror("mprotect");
        _exit(2);
    }
}

int main(int argc, char **argv)
{
    const char *how = argc > 1 ? argv[1] : "data-ro";
    int (*volatile call)(void) = victim;
    int (*volatile call_untouched)(void) = untouched_victim;
    if (strcmp(how, "text-nx") == 0) printf("victim: %d\n", call());
    printf("about to fault: %s\n", how);
    fflush(stdout);
    if (strcmp(how, "data-ro") == 0) {
        volatile char *p = &data_page[0][100];
        *p = 5;
        protect((const void *)p, PROT_READ);
        *p = 6;
    } else if (strcmp(how, "data-ro-untouched") == 0) {
        protect(&data_page[1][0], PROT_READ);
        *(volatile char *)&data_page[1][100] = 6;
    } else if (strcmp(how, "bss-ro") == 0) {
        protect(&bss_page[2][0], PROT_READ);
        *(volatile char *)&bss_page[2][100] = 6;
    } else if (strcmp(how, "bss-ro-read") == 0) {
        protect(&bss_page[3][0], PROT_READ);
        printf("read %d\n", *(volatile char *)&bss_page[3][100]);
        fflush(stdout);
        *(volatile char *)&bss_page[3][100] = 6;
    } else if (strcmp(how, "bss-next-ro") == 0) {
        *(volatile char *)&bss_page[0][100] = 5;
        protect(&bss_page[1][0], PROT_READ);
        *(volatile char *)&bss_page[1][100] = 6;
    } else if (strcmp(how, "text-nx") == 0) {
        protect((const void *)victim, PROT_READ);
        printf("victim again: %d\n", call());
    } else if (strcmp(how, "text-nx-untouched") == 0) {
        protect((const void *)untouched_victim, PROT_READ);
        printf("untouched victim: %d\n", call_untouched());
    } else if (strcmp(how, "bss-call") == 0) {
        int (*volatile into_bss)(void) = (int (*)(void))(uintptr_t)&bss_page[3][0];
        printf("bss: %d\n", into_bss());
    } else if (strcmp(how, "ok") == 0) {
        protect(&data_page[0][0], PROT_READ);
        protect(&data_page[0][0], PROT_READ | PROT_WRITE);
        data_page[0][100] = 7;
        printf("data: %d %d\n", data_page[0][0], data_page[0][100]);
    } else {
        printf("unknown case\n");
        return 2;
    }
    printf("survived\n");
    return 0;
}
