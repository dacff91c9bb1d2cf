# touch_pages.S: no C library; writes one byte to each of the first 100 of its 200 .bss pages,
# then exits 0. Its page touches are known exactly (one code page, 100 bss pages), so the tests
# can check the loader's counters and trace: under demand, 101 faults and 101 pages; under hybrid
# with N pages of prefetch, 1 + ceil(100 / (N + 1)) faults, and the last fault's prefetch may
# run past page 99 into pages that are never touched (prefetched_unused).
        .text
        .globl _start
_start:
        leaq    pages(%rip), %rdi
        movl    $100, %ecx
1:
        movb    $1, (%rdi)
        addq    $4096, %rdi
        decl    %ecx
        jnz     1b
        movl    $60, %eax       # exit(0)
        xorl    %edi, %edi
        syscall

        .bss
        .p2align 12
pages:
        .zero   200 * 4096
