# around_pages.S: no C library; touches pages far apart in its code, read-only data and writable
# data, with no pattern between them, so that under --prefetch auto each fault brings in its
# fault-around block and nothing else (the tests check the faults, in order, under both pagers).
# Every segment is 256 KiB-aligned (p_align too), so the blocks (16 pages under userfaultfd, 64
# under the signal pager) fall at the same page numbers in every run and flavour. Exits 0.
#   code (256 pages, page 0 is _start; every other page starts with a ret): calls pages 100,
#     37, 200, 130, 60;
#   read-only data (250 pages: the last block is cut at the segment's end): reads pages 5, 77,
#     249, 20;
#   writable data (256 pages): reads pages 3, 150, 90, 33, 200.
        .text
        .p2align 18
        .globl _start
_start:
        leaq    code(%rip), %rbx
        .irp    page, 100, 37, 200, 130, 60
        leaq    \page * 4096(%rbx), %rax
        call    *%rax
        .endr
        leaq    rodata(%rip), %rbx
        .irp    page, 5, 77, 249, 20
        movb    \page * 4096(%rbx), %al
        .endr
        leaq    data(%rip), %rbx
        .irp    page, 3, 150, 90, 33, 200
        movb    \page * 4096(%rbx), %al
        .endr
        movl    $60, %eax       # exit(0)
        xorl    %edi, %edi
        syscall
        .p2align 12, 0x90
        .rept   255
        ret
        .p2align 12, 0x90
        .endr
code = _start

        .section .rodata
        .p2align 18
rodata:
        .fill   250 * 4096, 1, 1

        .data
        .p2align 18
data:
        .fill   256 * 4096, 1, 2
