// The no-runtime zone at start-up: the original stack, rseq, and the jump.
#include "CElfload.h"

#include <sys/platform/x86.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/rseq.h>
#include <sys/syscall.h>

static struct elfload_original_stack original;

// The program's RLIMIT_STACK soft limit when elfload raised it for itself, or 0.
static uint64_t lowered_stack_limit;

// glibc calls init_array functions with (argc, argv, envp): the pointers into
// the stack the kernel built, before anything could have changed them. This
// one runs first (priority 101): it also gives elfload enough stack for
// itself before the Swift runtime starts (a static program runs in 16 KiB of
// stack; the runtime's own start-up needs more).
__attribute__((constructor(101))) static void elfload_capture(int argc, char **argv, char **envp) {
  struct rlimit limit;
  if (getrlimit(RLIMIT_STACK, &limit) == 0 && limit.rlim_cur < ELFLOAD_LOADER_STACK) {
    uint64_t soft = limit.rlim_cur;
    limit.rlim_cur = limit.rlim_max < ELFLOAD_LOADER_STACK ? limit.rlim_max : ELFLOAD_LOADER_STACK;
    if (limit.rlim_cur < ELFLOAD_LOADER_STACK_MINIMUM) {
      static const char message[] =
          "elfload: RLIMIT_STACK's hard limit is below 64 KiB, the least elfload needs for itself "
          "before the program starts (the program's own limit would be restored)\n";
      elfload_syscall6(SYS_write, 2, (long)message, sizeof message - 1, 0, 0, 0);
      elfload_syscall6(SYS_exit_group, 126, 0, 0, 0, 0, 0);
    }
    if (setrlimit(RLIMIT_STACK, &limit) == 0) lowered_stack_limit = soft;
  }
  original.argc = argc;
  original.argv = argv;
  original.envp = envp;
  char **p = envp;
  while (*p != NULL) p++;
  original.auxv = (const uint64_t *)(p + 1);
}

const struct elfload_original_stack *elfload_original(void) { return &original; }

uint64_t elfload_program_stack_limit(void) { return lowered_stack_limit; }

long elfload_unregister_rseq(void) {
  if (__rseq_size == 0) return 0;
  void *area = (char *)__builtin_thread_pointer() + __rseq_offset;
  // glibc registers sizeof(struct rseq_area) = 32 bytes but may advertise a
  // smaller __rseq_size; the kernel wants the registered length back.
  long ret = elfload_syscall6(SYS_rseq, (long)area, 32, RSEQ_FLAG_UNREGISTER, RSEQ_SIG, 0, 0);
  if (ret != 0)
    ret = elfload_syscall6(SYS_rseq, (long)area, (long)__rseq_size, RSEQ_FLAG_UNREGISTER,
                           RSEQ_SIG, 0, 0);
  return ret;
}

// glibc's cached CPU features: a cpuid instruction costs a VM exit (~4 us here).
int elfload_vector_state(void) {
  if (CPU_FEATURE_ACTIVE(AVX512F)) return 2;
  if (CPU_FEATURE_ACTIVE(AVX)) return 1;
  return 0;
}

// The target of the final indirect jump: jumping through memory leaves every
// register zero, as the kernel's start_thread does.
static uint64_t entry_target;
static const uint32_t default_mxcsr = 0x1f80;

void elfload_enter(const struct elfload_entry *e) {
  entry_target = e->entry;
  __asm__ volatile(
      // Load everything into registers: the copy may overwrite `e`'s frame.
      "mov  %c[img](%%rdi), %%rsi\n\t"
      "mov  %c[len](%%rdi), %%rcx\n\t"
      "mov  %c[top](%%rdi), %%r8\n\t"
      "mov  %c[sp](%%rdi), %%r9\n\t"
      "mov  %c[low](%%rdi), %%r10\n\t"
      "movl %c[avx](%%rdi), %%r12d\n\t"
      // rdi = top - length: the copy's destination, the image's first byte.
      "mov  %%r8, %%rdi\n\t"
      "sub  %%rcx, %%rdi\n\t"
      "mov  %%rdi, %%rbx\n\t"
      "cld\n\t"
      "rep movsb\n\t"
      // Hand back the loader's stack pages below the image's page:
      // madvise(scrub_low, page_of(image) - scrub_low, MADV_DONTNEED).
      "mov  %%rbx, %%rsi\n\t"
      "and  $-4096, %%rsi\n\t"
      "mov  %%rsi, %%r13\n\t"
      "sub  %%r10, %%rsi\n\t"
      "jbe  1f\n\t"
      "mov  %%r10, %%rdi\n\t"
      "mov  $4, %%edx\n\t"
      "mov  $28, %%eax\n\t"
      "syscall\n"
      "1:\n\t"
      // Zero the rest of the image's own page below the image.
      "mov  %%r13, %%rdi\n\t"
      "mov  %%rbx, %%rcx\n\t"
      "sub  %%r13, %%rcx\n\t"
      "xor  %%eax, %%eax\n\t"
      "rep stosb\n\t"
      // arch_prctl(ARCH_SET_FS, 0): the program starts with no thread pointer.
      "mov  $0x1002, %%edi\n\t"
      "xor  %%esi, %%esi\n\t"
      "mov  $158, %%eax\n\t"
      "syscall\n\t"
      // A fresh FPU and SSE state, as after execve.
      "fninit\n\t"
      "ldmxcsr %[mxcsr]\n\t"
      "test %%r12d, %%r12d\n\t"
      "jz   2f\n\t"
      "vzeroall\n\t"
      "cmp  $2, %%r12d\n\t"
      "jne  3f\n\t"
      // AVX-512: zmm16-31 and the mask registers too (glibc's memcpy uses them).
      "vpxord %%zmm16, %%zmm16, %%zmm16\n\t vpxord %%zmm17, %%zmm17, %%zmm17\n\t"
      "vpxord %%zmm18, %%zmm18, %%zmm18\n\t vpxord %%zmm19, %%zmm19, %%zmm19\n\t"
      "vpxord %%zmm20, %%zmm20, %%zmm20\n\t vpxord %%zmm21, %%zmm21, %%zmm21\n\t"
      "vpxord %%zmm22, %%zmm22, %%zmm22\n\t vpxord %%zmm23, %%zmm23, %%zmm23\n\t"
      "vpxord %%zmm24, %%zmm24, %%zmm24\n\t vpxord %%zmm25, %%zmm25, %%zmm25\n\t"
      "vpxord %%zmm26, %%zmm26, %%zmm26\n\t vpxord %%zmm27, %%zmm27, %%zmm27\n\t"
      "vpxord %%zmm28, %%zmm28, %%zmm28\n\t vpxord %%zmm29, %%zmm29, %%zmm29\n\t"
      "vpxord %%zmm30, %%zmm30, %%zmm30\n\t vpxord %%zmm31, %%zmm31, %%zmm31\n\t"
      "kxorw %%k0, %%k0, %%k0\n\t kxorw %%k1, %%k1, %%k1\n\t kxorw %%k2, %%k2, %%k2\n\t"
      "kxorw %%k3, %%k3, %%k3\n\t kxorw %%k4, %%k4, %%k4\n\t kxorw %%k5, %%k5, %%k5\n\t"
      "kxorw %%k6, %%k6, %%k6\n\t kxorw %%k7, %%k7, %%k7\n\t"
      "vzeroupper\n\t"
      "jmp  3f\n"
      "2:\n\t"
      "pxor %%xmm0, %%xmm0\n\t pxor %%xmm1, %%xmm1\n\t pxor %%xmm2, %%xmm2\n\t"
      "pxor %%xmm3, %%xmm3\n\t pxor %%xmm4, %%xmm4\n\t pxor %%xmm5, %%xmm5\n\t"
      "pxor %%xmm6, %%xmm6\n\t pxor %%xmm7, %%xmm7\n\t pxor %%xmm8, %%xmm8\n\t"
      "pxor %%xmm9, %%xmm9\n\t pxor %%xmm10, %%xmm10\n\t pxor %%xmm11, %%xmm11\n\t"
      "pxor %%xmm12, %%xmm12\n\t pxor %%xmm13, %%xmm13\n\t pxor %%xmm14, %%xmm14\n\t"
      "pxor %%xmm15, %%xmm15\n"
      "3:\n\t"
      // The program's stack; flags as the kernel sets them (only IF).
      "mov  %%r9, %%rsp\n\t"
      "pushq $0x202\n\t"
      "popfq\n\t"
      // mov, not xor: xor would set ZF and PF again.
      "mov  $0, %%eax\n\t mov $0, %%ebx\n\t mov $0, %%ecx\n\t mov $0, %%edx\n\t"
      "mov  $0, %%esi\n\t mov $0, %%edi\n\t mov $0, %%ebp\n\t mov $0, %%r8d\n\t"
      "mov  $0, %%r9d\n\t mov $0, %%r10d\n\t mov $0, %%r11d\n\t mov $0, %%r12d\n\t"
      "mov  $0, %%r13d\n\t mov $0, %%r14d\n\t mov $0, %%r15d\n\t"
      "jmp  *%[target]\n\t"
      :
      : "D"(e), [img] "i"(offsetof(struct elfload_entry, image)),
        [len] "i"(offsetof(struct elfload_entry, image_length)),
        [top] "i"(offsetof(struct elfload_entry, stack_top)),
        [sp] "i"(offsetof(struct elfload_entry, stack_pointer)),
        [low] "i"(offsetof(struct elfload_entry, scrub_low)),
        [avx] "i"(offsetof(struct elfload_entry, vector_state)), [mxcsr] "m"(default_mxcsr),
        [target] "m"(entry_target)
      : "memory");
  __builtin_unreachable();
}

extern const char __executable_start[];
extern const char _end[];
const void *elfloadImageStart(void) { return __executable_start; }
const void *elfloadImageEnd(void) { return _end; }
