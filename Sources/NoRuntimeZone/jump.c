// The no-runtime zone at the jump: the trampoline that replaces elfload with the loaded program.
#include "NoRuntimeZone.h"

// The kernel's own definitions (uapi headers): no C library here.
#include <asm/unistd.h>
#include <linux/mman.h>
#include <linux/prctl.h>

#define STR_(x) #x
#define STR(x) STR_(x)

// An x86 feature probe costs a VM exit (~4 us here), so it is asked once: is
// XSAVE enabled by the OS (CPUID.1:ECX.OSXSAVE), then which register states
// XCR0 enables (bit 2: AVX; bits 5-7: AVX-512's opmask and upper ZMM).
int elfload_vector_state(void) {
  uint32_t eax = 1, ebx, ecx = 0, edx;
  __asm__ volatile("cpuid" : "+a"(eax), "=b"(ebx), "+c"(ecx), "=d"(edx));
  if (!(ecx & (1u << 27))) return 0;
  uint32_t low, high;
  __asm__ volatile("xgetbv" : "=a"(low), "=d"(high) : "c"(0));
  if ((low & 0xe0) == 0xe0) return 2;
  if (low & 0x4) return 1;
  return 0;
}

// The trampoline: position-independent code that is copied to a page of its
// own and run from there, because it unmaps the loader's image. It takes a
// data block (rdi, laid out as struct trampoline_data) and uses no stack.
struct trampoline_data {
  uint64_t image_length;   // 0
  uint64_t stack_top;      // 8
  uint64_t stack_pointer;  // 16
  uint64_t scrub_low;      // 24
  int64_t exe_fd;          // 32
  uint64_t vector_state;   // 40
  uint64_t unmap_count;    // 48
  uint64_t block_length;   // 56: this block's own length, unmapped once the image is copied
  struct elfload_mm_map mm_map;  // 64: the program as exe_fd, no auxv
  uint64_t unmap[];        // 168: (start, length) pairs, then the image bytes
};
// The trampoline below reads these offsets.
_Static_assert(offsetof(struct trampoline_data, image_length) == 0, "");
_Static_assert(offsetof(struct trampoline_data, stack_top) == 8, "");
_Static_assert(offsetof(struct trampoline_data, stack_pointer) == 16, "");
_Static_assert(offsetof(struct trampoline_data, scrub_low) == 24, "");
_Static_assert(offsetof(struct trampoline_data, exe_fd) == 32, "");
_Static_assert(offsetof(struct trampoline_data, vector_state) == 40, "");
_Static_assert(offsetof(struct trampoline_data, unmap_count) == 48, "");
_Static_assert(offsetof(struct trampoline_data, block_length) == 56, "");
_Static_assert(offsetof(struct trampoline_data, mm_map) == 64, "");
_Static_assert(offsetof(struct trampoline_data, unmap) == 168, "");

extern const char elfload_trampoline[], elfload_trampoline_end[], elfload_trampoline_entry[];

__asm__(
    ".pushsection .text\n"
    ".p2align 6\n"
    "elfload_trampoline:\n\t"
    "mov  %rdi, %rbx\n\t"
    // munmap(start, length) for each pair: the loader is gone after this.
    "mov  48(%rbx), %r12\n\t"
    "lea  168(%rbx), %r13\n"
    "1:\n\t"
    "test %r12, %r12\n\t"
    "jz   2f\n\t"
    "mov  (%r13), %rdi\n\t"
    "mov  8(%r13), %rsi\n\t"
    "mov  $" STR(__NR_munmap) ", %eax\n\t"
    "syscall\n\t"
    "add  $16, %r13\n\t"
    "dec  %r12\n\t"
    "jmp  1b\n"
    // /proc/self/exe becomes the program: prctl(PR_SET_MM, PR_SET_MM_MAP)
    // with it as exe_fd (needs CAP_CHECKPOINT_RESTORE or CAP___NR_ADMIN), else
    // prctl(PR_SET_MM, PR_SET_MM_EXE_FILE, fd) (needs CAP___NR_RESOURCE); both
    // need every mapping of the old executable gone. Then close(fd).
    "2:\n\t"
    "mov  32(%rbx), %rdx\n\t"
    "test %rdx, %rdx\n\t"
    "js   3f\n\t"
    "mov  $" STR(PR_SET_MM) ", %edi\n\t"
    "mov  $" STR(PR_SET_MM_MAP) ", %esi\n\t"
    "lea  64(%rbx), %rdx\n\t"
    "mov  $104, %r10d\n\t"  // sizeof(struct prctl_mm_map)
    
    "xor  %r8d, %r8d\n\t"
    "mov  $" STR(__NR_prctl) ", %eax\n\t"
    "syscall\n\t"
    "test %rax, %rax\n\t"
    "jz   7f\n\t"
    "mov  $" STR(PR_SET_MM) ", %edi\n\t"
    "mov  $" STR(PR_SET_MM_EXE_FILE) ", %esi\n\t"
    "mov  32(%rbx), %rdx\n\t"
    "xor  %r10d, %r10d\n\t"
    "xor  %r8d, %r8d\n\t"
    "mov  $" STR(__NR_prctl) ", %eax\n\t"
    "syscall\n"
    "7:\n\t"
    "mov  32(%rbx), %rdi\n\t"
    "mov  $" STR(__NR_close) ", %eax\n\t"
    "syscall\n"
    "3:\n\t"
    // The peak RSS starts again from here (echo 5 > /proc/self/clear_refs):
    // what the program uses, not what elfload used before it.
    "mov  $-100, %edi\n\t"
    "lea  elfload_trampoline_clear_refs(%rip), %rsi\n\t"
    "mov  $1, %edx\n\t"
    "xor  %r10d, %r10d\n\t"
    "mov  $" STR(__NR_openat) ", %eax\n\t"
    "syscall\n\t"
    "test %rax, %rax\n\t"
    "js   8f\n\t"
    "mov  %rax, %rbp\n\t"
    "mov  %rax, %rdi\n\t"
    "lea  elfload_trampoline_five(%rip), %rsi\n\t"
    "mov  $1, %edx\n\t"
    "mov  $" STR(__NR_write) ", %eax\n\t"
    "syscall\n\t"
    "mov  %rbp, %rdi\n\t"
    "mov  $" STR(__NR_close) ", %eax\n\t"
    "syscall\n"
    "8:\n\t"
    // The image follows the pairs (r13): copy it to [top - length, top).
    "mov  (%rbx), %rcx\n\t"
    "mov  8(%rbx), %r8\n\t"
    "mov  16(%rbx), %r9\n\t"
    "mov  24(%rbx), %r10\n\t"
    "mov  40(%rbx), %r12\n\t"
    "mov  56(%rbx), %r15\n\t"
    "mov  %r13, %rsi\n\t"
    "mov  %r8, %rdi\n\t"
    "sub  %rcx, %rdi\n\t"
    "mov  %rdi, %r14\n\t"
    "cld\n\t"
    "rep movsb\n\t"
    // The data block is done with.
    "mov  %rbx, %rdi\n\t"
    "mov  %r15, %rsi\n\t"
    "mov  $" STR(__NR_munmap) ", %eax\n\t"
    "syscall\n\t"
    // Hand back the loader's stack pages below the image's page:
    // madvise(scrub_low, page_of(image) - scrub_low, MADV_DONTNEED).
    "mov  %r14, %rsi\n\t"
    "and  $-4096, %rsi\n\t"
    "mov  %rsi, %r13\n\t"
    "sub  %r10, %rsi\n\t"
    "jbe  4f\n\t"
    "mov  %r10, %rdi\n\t"
    "mov  $" STR(MADV_DONTNEED) ", %edx\n\t"
    "mov  $" STR(__NR_madvise) ", %eax\n\t"
    "syscall\n"
    "4:\n\t"
    // Zero the rest of the image's own page below the image.
    "mov  %r13, %rdi\n\t"
    "mov  %r14, %rcx\n\t"
    "sub  %r13, %rcx\n\t"
    "xor  %eax, %eax\n\t"
    "rep stosb\n\t"
    // arch_prctl(ARCH_SET_FS, 0): the program starts with no thread pointer.
    "mov  $0x1002, %edi\n\t"  // ARCH_SET_FS
    
    "xor  %esi, %esi\n\t"
    "mov  $" STR(__NR_arch_prctl) ", %eax\n\t"
    "syscall\n\t"
    // A fresh FPU and SSE state, as after execve.
    "fninit\n\t"
    "ldmxcsr elfload_trampoline_mxcsr(%rip)\n\t"
    "test %r12d, %r12d\n\t"
    "jz   5f\n\t"
    "vzeroall\n\t"
    "cmp  $2, %r12d\n\t"
    "jne  6f\n\t"
    // AVX-512: zmm16-31 and the mask registers too (glibc's memcpy uses them).
    "vpxord %zmm16, %zmm16, %zmm16\n\t vpxord %zmm17, %zmm17, %zmm17\n\t"
    "vpxord %zmm18, %zmm18, %zmm18\n\t vpxord %zmm19, %zmm19, %zmm19\n\t"
    "vpxord %zmm20, %zmm20, %zmm20\n\t vpxord %zmm21, %zmm21, %zmm21\n\t"
    "vpxord %zmm22, %zmm22, %zmm22\n\t vpxord %zmm23, %zmm23, %zmm23\n\t"
    "vpxord %zmm24, %zmm24, %zmm24\n\t vpxord %zmm25, %zmm25, %zmm25\n\t"
    "vpxord %zmm26, %zmm26, %zmm26\n\t vpxord %zmm27, %zmm27, %zmm27\n\t"
    "vpxord %zmm28, %zmm28, %zmm28\n\t vpxord %zmm29, %zmm29, %zmm29\n\t"
    "vpxord %zmm30, %zmm30, %zmm30\n\t vpxord %zmm31, %zmm31, %zmm31\n\t"
    "kxorw %k0, %k0, %k0\n\t kxorw %k1, %k1, %k1\n\t kxorw %k2, %k2, %k2\n\t"
    "kxorw %k3, %k3, %k3\n\t kxorw %k4, %k4, %k4\n\t kxorw %k5, %k5, %k5\n\t"
    "kxorw %k6, %k6, %k6\n\t kxorw %k7, %k7, %k7\n\t"
    "vzeroupper\n\t"
    "jmp  6f\n"
    "5:\n\t"
    "pxor %xmm0, %xmm0\n\t pxor %xmm1, %xmm1\n\t pxor %xmm2, %xmm2\n\t"
    "pxor %xmm3, %xmm3\n\t pxor %xmm4, %xmm4\n\t pxor %xmm5, %xmm5\n\t"
    "pxor %xmm6, %xmm6\n\t pxor %xmm7, %xmm7\n\t pxor %xmm8, %xmm8\n\t"
    "pxor %xmm9, %xmm9\n\t pxor %xmm10, %xmm10\n\t pxor %xmm11, %xmm11\n\t"
    "pxor %xmm12, %xmm12\n\t pxor %xmm13, %xmm13\n\t pxor %xmm14, %xmm14\n\t"
    "pxor %xmm15, %xmm15\n"
    "6:\n\t"
    // The program's stack; flags as the kernel sets them (only IF).
    "mov  %r9, %rsp\n\t"
    "pushq $0x202\n\t"
    "popfq\n\t"
    // ... and the word that carried them is zero again, as all of the red zone is after execve.
    "movq $0, -8(%rsp)\n\t"
    // mov, not xor: xor would set ZF and PF again.
    "mov  $0, %eax\n\t mov $0, %ebx\n\t mov $0, %ecx\n\t mov $0, %edx\n\t"
    "mov  $0, %esi\n\t mov $0, %edi\n\t mov $0, %ebp\n\t mov $0, %r8d\n\t"
    "mov  $0, %r9d\n\t mov $0, %r10d\n\t mov $0, %r11d\n\t mov $0, %r12d\n\t"
    "mov  $0, %r13d\n\t mov $0, %r14d\n\t mov $0, %r15d\n\t"
    // Through memory, so that no register holds the target.
    "jmp  *elfload_trampoline_entry(%rip)\n\t"
    ".p2align 3\n"
    "elfload_trampoline_mxcsr:\n\t"
    ".long 0x1f80, 0\n"
    "elfload_trampoline_entry:\n\t"
    ".quad 0\n"
    "elfload_trampoline_clear_refs:\n\t"
    ".asciz \"/proc/self/clear_refs\"\n"
    "elfload_trampoline_five:\n\t"
    ".ascii \"5\"\n"
    "elfload_trampoline_end:\n\t"
    ".popsection\n");

static int failed(long r) { return r < 0 && r > -4096; }

// No C library: byte copies are spelled out (and cannot become calls to one).
static void copy(void *to, const void *from, uint64_t length) {
  __asm__ volatile("rep movsb" : "+D"(to), "+S"(from), "+c"(length) : : "memory");
}

long elfload_enter(const struct elfload_entry *e) {
  const long anonymous = MAP_PRIVATE | MAP_ANONYMOUS;
  // The code page and the data block, mapped where the kernel likes.
  uint64_t code_length = (uint64_t)(elfload_trampoline_end - elfload_trampoline);
  long code = elfload_syscall6(__NR_mmap, 0, 4096, PROT_READ | PROT_WRITE, anonymous, -1, 0);
  if (failed(code)) return code;
  uint64_t header = sizeof(struct trampoline_data) + 16 * e->unmap_count;
  uint64_t block_length = (header + e->image_length + 4095) & ~(uint64_t)4095;
  long block = elfload_syscall6(__NR_mmap, 0, (long)block_length, PROT_READ | PROT_WRITE, anonymous, -1, 0);
  if (failed(block)) return block;

  elfload_trampoline_page = (uint64_t)code;  // before the handler's state is copied below
  copy((void *)code, elfload_trampoline, code_length);
  *(uint64_t *)(code + (elfload_trampoline_entry - elfload_trampoline)) = e->entry;
  long ret = elfload_syscall6(__NR_mprotect, code, 4096, PROT_READ | PROT_EXEC, 0, 0, 0);
  if (ret != 0) return ret;

  struct trampoline_data *d = (struct trampoline_data *)block;
  d->image_length = e->image_length;
  d->stack_top = e->stack_top;
  d->stack_pointer = e->stack_pointer;
  d->scrub_low = e->scrub_low;
  d->exe_fd = e->exe_fd;
  d->vector_state = (uint64_t)e->vector_state;
  d->unmap_count = e->unmap_count;
  d->block_length = block_length;
  if (e->mm_map != NULL) {
    d->mm_map = *e->mm_map;
    d->mm_map.auxv = 0;  // no auxv: the one set before stays
    d->mm_map.auxv_size = 0;
    d->mm_map.exe_fd = (uint32_t)e->exe_fd;
  } else {
    d->exe_fd = -1;
  }
  copy(d->unmap, e->unmap, 16 * e->unmap_count);
  copy((char *)block + header, e->image, e->image_length);

  // The pages to keep become anonymous copies of themselves, in place: the
  // same bytes at the same addresses, no longer the loader's file.
  for (uint64_t i = 0; i < e->keep_count; i++) {
    uint64_t start = e->keep[3 * i], length = e->keep[3 * i + 1];
    long twin = elfload_syscall6(__NR_mmap, 0, (long)length, PROT_READ | PROT_WRITE, anonymous, -1, 0);
    if (failed(twin)) return twin;
    copy((void *)twin, (const void *)start, length);
    ret = elfload_syscall6(__NR_mprotect, twin, (long)length, (long)e->keep[3 * i + 2], 0, 0, 0);
    if (ret == 0)
      ret = elfload_syscall6(__NR_mremap, twin, (long)length, (long)length, MREMAP_MAYMOVE | MREMAP_FIXED, (long)start, 0);
    if (failed(ret)) return ret;
  }

  ((void (*)(struct trampoline_data *))code)(d);
  __builtin_unreachable();
}

extern const char __start_elfload_handler[], __stop_elfload_handler[];
extern const char __start_elfload_handler_rodata[], __stop_elfload_handler_rodata[];
extern const char __start_elfload_handler_bss[], __stop_elfload_handler_bss[];

void elfload_handler_ranges(uint64_t r[9]) {
  const char *bounds[3][2] = {{__start_elfload_handler, __stop_elfload_handler},
                              {__start_elfload_handler_rodata, __stop_elfload_handler_rodata},
                              {__start_elfload_handler_bss, __stop_elfload_handler_bss}};
  const long protection[3] = {PROT_READ | PROT_EXEC, PROT_READ, PROT_READ | PROT_WRITE};
  for (int i = 0; i < 3; i++) {
    r[3 * i] = (uint64_t)bounds[i][0] & ~(uint64_t)4095;
    r[3 * i + 1] = ((uint64_t)bounds[i][1] + 4095) & ~(uint64_t)4095;
    r[3 * i + 2] = (uint64_t)protection[i];
  }
}
