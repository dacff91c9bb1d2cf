# below_rsp.S: no C library; what is in the 4096 bytes below rsp at _start? Natively the kernel
# hands over a fresh stack: all zero. A loader that reuses its own stack must leave nothing of its
# own there (a program may read its red zone, or its uninitialised locals, before writing them).
# Copies those bytes away before anything else touches the stack, then prints how many are not
# zero and the first 16 of them as "rsp-OFFSET: 0xVALUE" (nearest to rsp first). Exits 0.
        .globl _start
        .text
_start:
        leaq    -4096(%rsp), %rsi
        leaq    below(%rip), %rdi
        movl    $4096, %ecx
        rep movsb                       # rflags at entry: DF clear
        leaq    out(%rip), %r14         # the output, built in .bss
        xorl    %r13d, %r13d            # non-zero bytes seen
        leaq    lines(%rip), %r15       # the per-byte lines, after the count
        movl    $1, %r12d               # offset below rsp: 1..4096
1:
        leaq    below(%rip), %rbx
        movl    $4096, %eax
        subl    %r12d, %eax
        movzbl  (%rbx,%rax), %ebx
        testl   %ebx, %ebx
        jz      2f
        incl    %r13d
        cmpl    $16, %r13d
        ja      2f
        xchgq   %r14, %r15
        leaq    msg_line(%rip), %rsi
        movl    $len_line, %edx
        call    put_str
        movl    %r12d, %eax
        call    put_dec
        leaq    msg_value(%rip), %rsi
        movl    $len_value, %edx
        call    put_str
        movl    %ebx, %eax
        call    put_hex2
        movb    $10, (%r14)
        incq    %r14
        xchgq   %r14, %r15
2:
        incl    %r12d
        cmpl    $4096, %r12d
        jbe     1b
        leaq    msg_count(%rip), %rsi
        movl    $len_count, %edx
        call    put_str
        movl    %r13d, %eax
        call    put_dec
        movb    $10, (%r14)
        incq    %r14
        # write(1, out, r14 - out), then write(1, lines, r15 - lines)
        movl    $1, %edi
        leaq    out(%rip), %rsi
        movq    %r14, %rdx
        subq    %rsi, %rdx
        movl    $1, %eax
        syscall
        movl    $1, %edi
        leaq    lines(%rip), %rsi
        movq    %r15, %rdx
        subq    %rsi, %rdx
        movl    $1, %eax
        syscall
        movl    $60, %eax               # exit(0)
        xorl    %edi, %edi
        syscall

# Appends rdx bytes from rsi at r14.
put_str:
        movq    %r14, %rdi
        movq    %rdx, %rcx
        rep movsb
        movq    %rdi, %r14
        ret

# Appends eax in decimal at r14.
put_dec:
        leaq    digits_end(%rip), %rsi
        movl    $10, %ecx
3:
        xorl    %edx, %edx
        divl    %ecx
        addb    $'0', %dl
        decq    %rsi
        movb    %dl, (%rsi)
        testl   %eax, %eax
        jnz     3b
        leaq    digits_end(%rip), %rdx
        subq    %rsi, %rdx
        jmp     put_str

# Appends "0x" and al as two hex digits at r14.
put_hex2:
        movw    $0x7830, (%r14)         # "0x"
        movl    %eax, %edx
        shrl    $4, %edx
        andl    $15, %edx
        leaq    hex(%rip), %rcx
        movb    (%rcx,%rdx), %dl
        movb    %dl, 2(%r14)
        andl    $15, %eax
        movb    (%rcx,%rax), %al
        movb    %al, 3(%r14)
        addq    $4, %r14
        ret

        .section .rodata
msg_count: .ascii "non-zero bytes in the 4096 below rsp at entry: "
        .set len_count, . - msg_count
msg_line:  .ascii "rsp-"
        .set len_line, . - msg_line
msg_value: .ascii ": "
        .set len_value, . - msg_value
hex:       .ascii "0123456789abcdef"

        .bss
below:  .zero   4096
out:    .zero   256
lines:  .zero   1024
digits: .zero   24
digits_end:
        .section .note.GNU-stack,"",@progbits
