# walk_pages.S: no C library; reads its 64 .data pages forward (0 to 63), then writes its 400 .bss
# pages backward (399 down to 0), and exits 0. Under --prefetch auto the faults are known exactly
# (the tests check them): a window that grows forward and is cut at the end of the .data pages,
# and one that grows backward and is cut at the start of the .bss -- the predictor in both
# directions, at both ends of a region.
        .text
        .globl _start
_start:
        leaq    data(%rip), %rsi
        movl    $64, %ecx
        xorl    %eax, %eax
1:
        addb    (%rsi), %al
        addq    $4096, %rsi
        decl    %ecx
        jnz     1b
        leaq    pages + 399 * 4096(%rip), %rdi
        movl    $400, %ecx
2:
        movb    %al, (%rdi)
        subq    $4096, %rdi
        decl    %ecx
        jnz     2b
        movl    $60, %eax       # exit(0)
        xorl    %edi, %edi
        syscall

        .data
        .p2align 12
data:
        .fill   64 * 4096, 1, 1

        .bss
        .p2align 12
pages:
        .zero   400 * 4096
