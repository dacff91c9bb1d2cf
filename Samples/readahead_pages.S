# readahead_pages.S: no C library; runs through its code, then reads its read-only data, then
# its writable data, each page after the other, so that under --prefetch auto each fault past
# the pages brought in by the one before is a readahead hit that doubles them (the tests check
# the faults, hits and misses under both pagers). Every segment is 256 KiB-aligned (p_align
# too): the fault-around blocks fall at the same page numbers in every run and flavour. Exits 0.
#   code (256 pages): _start on page 0 calls a run of nops from page 1 to the end of page 250;
#   read-only data (250 pages): one byte of each page, 0 to 249;
#   writable data (256 pages): one byte of each page, 0 to 99, then page 200 (a miss).
        .text
        .p2align 18
        .globl _start
_start:
        call    sled
        leaq    rodata(%rip), %rbx
        movl    $250, %ecx
1:
        movb    (%rbx), %al
        addq    $4096, %rbx
        decl    %ecx
        jnz     1b
        leaq    data(%rip), %rbx
        movl    $100, %ecx
2:
        movb    (%rbx), %al
        addq    $4096, %rbx
        decl    %ecx
        jnz     2b
        leaq    data(%rip), %rbx
        movb    200 * 4096(%rbx), %al
        movl    $60, %eax       # exit(0)
        xorl    %edi, %edi
        syscall
        .p2align 12, 0x90
sled:
        .fill   250 * 4096 - 1, 1, 0x90
        ret
        .p2align 12, 0x90
        .fill   5 * 4096, 1, 0xcc

        .section .rodata
        .p2align 18
rodata:
        .fill   250 * 4096, 1, 1

        .data
        .p2align 18
data:
        .fill   256 * 4096, 1, 2
