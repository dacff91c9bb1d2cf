// The launcher's first instructions: like ld.so's _dl_start and musl's _dlstart_c, relocate
// this position-independent image (loaded wherever the kernel put it) before any code that
// reads a pointer from data runs, then call the Swift entry point with the kernel's stack.
#include <elf.h>
#include <stdint.h>

#include "CKernel.h"

// The kernel's own definitions (uapi headers).
#include <asm/unistd.h>
#include <linux/mman.h>

// Hidden: reached PC-relatively, so reading them needs no relocation.
extern const Elf64_Ehdr __ehdr_start __attribute__((visibility("hidden")));
extern Elf64_Dyn _DYNAMIC[] __attribute__((visibility("hidden")));

/// The Swift entry point (Launcher/main.swift).
_Noreturn void elfload_main(uint64_t *stack);

// Applies this image's R_X86_64_RELATIVE relocations. A static PIE linked
// with every symbol local has no other kind; anything else means the build is
// wrong, and the launcher stops before running code that would use it.
__attribute__((used, visibility("hidden"))) _Noreturn void elfload_start_c(uint64_t *stack) {
  uint64_t base = (uint64_t)&__ehdr_start;
  const Elf64_Rela *rela = 0;
  uint64_t size = 0;
  for (const Elf64_Dyn *d = _DYNAMIC; d->d_tag != DT_NULL; d++) {
    if (d->d_tag == DT_RELA) rela = (const Elf64_Rela *)(base + d->d_un.d_ptr);
    if (d->d_tag == DT_RELASZ) size = d->d_un.d_val;
  }
  for (uint64_t i = 0; rela != 0 && i < size / sizeof *rela; i++) {
    if (ELF64_R_TYPE(rela[i].r_info) != R_X86_64_RELATIVE) {
      static const char message[] = "elfload: built wrong: a relocation other than R_X86_64_RELATIVE\n";
      elfload_syscall6(__NR_write, 2, (long)message, sizeof message - 1, 0, 0, 0);
      elfload_syscall6(__NR_exit_group, 127, 0, 0, 0, 0, 0);
    }
    *(uint64_t *)(base + rela[i].r_offset) = base + (uint64_t)rela[i].r_addend;
  }
  elfload_main(stack);
}

// The kernel enters here with rsp at argc; no frame above, stack 16-byte aligned for the call.
__asm__(
    ".text\n"
    ".globl _start\n"
    ".type _start,@function\n"
    "_start:\n\t"
    "xor  %ebp, %ebp\n\t"
    "mov  %rsp, %rdi\n\t"
    "and  $-16, %rsp\n\t"
    "call elfload_start_c\n\t"
    "hlt\n"
    ".size _start, .-_start\n");

extern const char _end[] __attribute__((visibility("hidden")));
uint64_t elfload_image_start(void) { return (uint64_t)&__ehdr_start; }
uint64_t elfload_image_end(void) { return (uint64_t)_end; }
