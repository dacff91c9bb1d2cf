# bss_tail.S: no C library; its .data ends 904 bytes into a page and its .bss begins right
# there, so that page holds file bytes and then zeros. Counts the bytes from the end of its
# .data to the end of its .bss that are not zero, and exits with that count (at most 255):
# natively 0, as the kernel zeroes the rest of the page the file ends in (padzero) and maps
# the bss anonymous. A loader that leaves the file's bytes past p_filesz, or fills them with
# anything but zero, exits non-zero.
        .text
        .globl _start
_start:
        leaq    data_end(%rip), %rsi
        leaq    bss_end(%rip), %rcx
        xorl    %edi, %edi
1:
        cmpb    $0, (%rsi)
        je      2f
        incl    %edi
2:
        incq    %rsi
        cmpq    %rcx, %rsi
        jne     1b
        cmpl    $255, %edi
        jbe     3f
        movl    $255, %edi
3:
        movl    $60, %eax       # exit(count)
        syscall

        .data
        .p2align 12
        .fill   5000, 1, 0xa5   # 4096 + 904 bytes: the file's bytes end mid-page
data_end:

        .bss
        .zero   3 * 4096
bss_end:
