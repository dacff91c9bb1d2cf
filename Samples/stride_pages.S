# stride_pages.S: no C library; touches pages of its 400-page .bss in patterns whose faults under
# --prefetch auto are known exactly (the tests check them): first every 4th page, 0 to 396 (a
# stride the predictor finds at the third fault and follows with a doubling window), then pages
# 3, 2 and 1 (a miss that closes the window, then a new stride of -1 page). Exits 0.
        .text
        .globl _start
_start:
        leaq    pages(%rip), %rdi
        movl    $100, %ecx
1:
        movb    $1, (%rdi)
        addq    $4 * 4096, %rdi
        decl    %ecx
        jnz     1b
        leaq    pages(%rip), %rdi
        movb    $3, 3 * 4096(%rdi)
        movb    $2, 2 * 4096(%rdi)
        movb    $1, 1 * 4096(%rdi)
        movl    $60, %eax       # exit(0)
        xorl    %edi, %edi
        syscall

        .bss
        .p2align 12
pages:
        .zero   400 * 4096
