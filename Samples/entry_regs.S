# Entry-state probe, no C library: at _start, are the registers, flags, FPU and
# thread pointer exactly as execve leaves them? Prints one line, exits 0 or 1.
        .globl _start
        .text
_start:
        # rflags: only IF (0x202) may be set.
        pushfq
        popq    %r15
        # Every general-purpose register but rsp must be zero: OR them together
        # (r15 excepted: it now holds the flags, and was checked by the push).
        movq    %rax, %r14
        orq     %rbx, %r14
        orq     %rcx, %r14
        orq     %rdx, %r14
        orq     %rsi, %r14
        orq     %rdi, %r14
        orq     %rbp, %r14
        orq     %r8, %r14
        orq     %r9, %r14
        orq     %r10, %r14
        orq     %r11, %r14
        orq     %r12, %r14
        orq     %r13, %r14
        jnz     fail_gpr
        cmpq    $0x202, %r15
        jne     fail_flags
        testq   $15, %rsp
        jnz     fail_align
        # rsp points at argc; argv[argc] must be NULL.
        movq    (%rsp), %rax
        cmpq    $0, 8(%rsp,%rax,8)
        jne     fail_argc
        # SSE state: MXCSR default, xmm0..15 zero.
        subq    $16, %rsp
        stmxcsr (%rsp)
        movl    (%rsp), %eax
        addq    $16, %rsp
        cmpl    $0x1f80, %eax
        jne     fail_mxcsr
        por     %xmm1, %xmm0
        por     %xmm2, %xmm0
        por     %xmm3, %xmm0
        por     %xmm4, %xmm0
        por     %xmm5, %xmm0
        por     %xmm6, %xmm0
        por     %xmm7, %xmm0
        por     %xmm8, %xmm0
        por     %xmm9, %xmm0
        por     %xmm10, %xmm0
        por     %xmm11, %xmm0
        por     %xmm12, %xmm0
        por     %xmm13, %xmm0
        por     %xmm14, %xmm0
        por     %xmm15, %xmm0
        ptest   %xmm0, %xmm0
        jnz     fail_xmm
        # x87 control word 0x37f.
        subq    $16, %rsp
        fnstcw  (%rsp)
        movzwl  (%rsp), %eax
        addq    $16, %rsp
        cmpl    $0x37f, %eax
        jne     fail_fpu
        # AVX-512, when the CPU and kernel have it: zmm16-31 and k0-k7 zero too.
        movl    $7, %eax
        xorl    %ecx, %ecx
        cpuid
        btl     $16, %ebx
        jnc     no_avx512
        xorl    %ecx, %ecx
        xgetbv
        andl    $0xe6, %eax
        cmpl    $0xe6, %eax
        jne     no_avx512
        kmovw   %k0, %eax
        kmovw   %k1, %ebx
        orl     %ebx, %eax
        kmovw   %k2, %ebx
        orl     %ebx, %eax
        kmovw   %k3, %ebx
        orl     %ebx, %eax
        kmovw   %k4, %ebx
        orl     %ebx, %eax
        kmovw   %k5, %ebx
        orl     %ebx, %eax
        kmovw   %k6, %ebx
        orl     %ebx, %eax
        kmovw   %k7, %ebx
        orl     %ebx, %eax
        jnz     fail_mask
        vpord   %zmm17, %zmm16, %zmm16
        vpord   %zmm18, %zmm16, %zmm16
        vpord   %zmm19, %zmm16, %zmm16
        vpord   %zmm20, %zmm16, %zmm16
        vpord   %zmm21, %zmm16, %zmm16
        vpord   %zmm22, %zmm16, %zmm16
        vpord   %zmm23, %zmm16, %zmm16
        vpord   %zmm24, %zmm16, %zmm16
        vpord   %zmm25, %zmm16, %zmm16
        vpord   %zmm26, %zmm16, %zmm16
        vpord   %zmm27, %zmm16, %zmm16
        vpord   %zmm28, %zmm16, %zmm16
        vpord   %zmm29, %zmm16, %zmm16
        vpord   %zmm30, %zmm16, %zmm16
        vpord   %zmm31, %zmm16, %zmm16
        vptestmd %zmm16, %zmm16, %k1
        kortestw %k1, %k1
        jnz     fail_zmm
no_avx512:
        # arch_prctl(ARCH_GET_FS, &value): no thread pointer yet.
        subq    $16, %rsp
        movq    $0x1003, %rdi
        movq    %rsp, %rsi
        movl    $158, %eax
        syscall
        movq    (%rsp), %rax
        addq    $16, %rsp
        testq   %rax, %rax
        jnz     fail_fs
        leaq    msg_ok(%rip), %rsi
        movl    $len_ok, %edx
        xorl    %r12d, %r12d
        jmp     out
fail_gpr:   leaq msg_gpr(%rip), %rsi;   movl $len_gpr, %edx;   jmp failed
fail_flags: leaq msg_flags(%rip), %rsi; movl $len_flags, %edx; jmp failed
fail_align: leaq msg_align(%rip), %rsi; movl $len_align, %edx; jmp failed
fail_argc:  leaq msg_argc(%rip), %rsi;  movl $len_argc, %edx;  jmp failed
fail_mxcsr: leaq msg_mxcsr(%rip), %rsi; movl $len_mxcsr, %edx; jmp failed
fail_xmm:   leaq msg_xmm(%rip), %rsi;   movl $len_xmm, %edx;   jmp failed
fail_fpu:   leaq msg_fpu(%rip), %rsi;   movl $len_fpu, %edx;   jmp failed
fail_fs:    leaq msg_fs(%rip), %rsi;    movl $len_fs, %edx;    jmp failed
fail_mask:  leaq msg_mask(%rip), %rsi;  movl $len_mask, %edx;  jmp failed
fail_zmm:   leaq msg_zmm(%rip), %rsi;   movl $len_zmm, %edx;   jmp failed
failed:
        movl    $1, %r12d
out:
        movl    $1, %edi
        movl    $1, %eax
        syscall
        movl    %r12d, %edi
        movl    $60, %eax
        syscall

        .section .rodata
msg_ok:    .ascii "entry state: registers zero, rflags 0x202, rsp aligned, FPU/SSE reset, no thread pointer\n"
        .set len_ok, . - msg_ok
msg_gpr:   .ascii "entry state: FAIL general-purpose registers not zero\n"
        .set len_gpr, . - msg_gpr
msg_flags: .ascii "entry state: FAIL rflags is not 0x202\n"
        .set len_flags, . - msg_flags
msg_align: .ascii "entry state: FAIL rsp not 16-byte aligned\n"
        .set len_align, . - msg_align
msg_argc:  .ascii "entry state: FAIL argv[argc] is not NULL\n"
        .set len_argc, . - msg_argc
msg_mxcsr: .ascii "entry state: FAIL MXCSR is not 0x1f80\n"
        .set len_mxcsr, . - msg_mxcsr
msg_xmm:   .ascii "entry state: FAIL xmm registers not zero\n"
        .set len_xmm, . - msg_xmm
msg_fpu:   .ascii "entry state: FAIL x87 control word is not 0x37f\n"
        .set len_fpu, . - msg_fpu
msg_fs:    .ascii "entry state: FAIL thread pointer (fs base) is set\n"
        .set len_fs, . - msg_fs
msg_mask:  .ascii "entry state: FAIL AVX-512 mask registers not zero\n"
        .set len_mask, . - msg_mask
msg_zmm:   .ascii "entry state: FAIL zmm16-31 not zero\n"
        .set len_zmm, . - msg_zmm
        .section .note.GNU-stack,"",@progbits
