# stride_data.S: no C library; writes one byte on every 72nd page of its 640-page initialised
# .data (pages 0 to 576), then on page 300: under --prefetch auto, a stride in writable data
# (file pages) opens a window along it while each fault also brings in its fault-around block;
# page 300 is a miss, and the block around it stops at page 288, there already (the tests check
# the faults and pages under both pagers). .data is 256 KiB-aligned (p_align too): the blocks
# fall at the same page numbers in every run and flavour. Exits 0.
        .text
        .globl _start
_start:
        leaq    data(%rip), %rdi
        movl    $9, %ecx
1:
        movb    $1, (%rdi)
        addq    $72 * 4096, %rdi
        decl    %ecx
        jnz     1b
        leaq    data(%rip), %rdi
        movb    $1, 300 * 4096(%rdi)
        movl    $60, %eax       # exit(0)
        xorl    %edi, %edi
        syscall

        .data
        .p2align 18
data:
        .fill   640 * 4096, 1, 2
