// The C symbols Embedded Swift needs, for a launcher with no C library: memory primitives, an
// allocator, and the odd helper (docs/EmbeddedSwift/EmbeddedSwiftStatus.md lists them).
#include <stddef.h>
#include <stdint.h>

#include "CKernel.h"

// The kernel's own definitions (uapi headers).
#include <asm/unistd.h>
#include <linux/mman.h>
#include "LauncherRuntime.h"

#define EXPORT __attribute__((visibility("default")))

EXPORT void *memset(void *to, int c, size_t n) {
  void *d = to;
  __asm__ volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
  return to;
}

EXPORT void *memcpy(void *to, const void *from, size_t n) {
  void *d = to;
  __asm__ volatile("rep movsb" : "+D"(d), "+S"(from), "+c"(n) : : "memory");
  return to;
}

EXPORT void *memmove(void *to, const void *from, size_t n) {
  if ((uintptr_t)to - (uintptr_t)from >= n) return memcpy(to, from, n);
  // Overlapping with the destination above: copy backwards.
  unsigned char *d = (unsigned char *)to + n;
  const unsigned char *s = (const unsigned char *)from + n;
  while (n--) *--d = *--s;
  return to;
}

EXPORT int memcmp(const void *a, const void *b, size_t n) {
  const unsigned char *p = a, *q = b;
  for (; n > 0; n--, p++, q++)
    if (*p != *q) return *p - *q;
  return 0;
}

EXPORT size_t strlen(const char *s) {
  size_t n = 0;
  while (s[n] != 0) n++;
  return n;
}

// A bump allocator over chunks of anonymous memory. The launcher runs once
// and leaves at the jump, which unmaps every chunk: freeing would buy nothing.
enum { chunk_size = 256 << 10, max_chunks = 64 };
static struct {
  uint64_t start[max_chunks], length[max_chunks];
  uint64_t count, top, end, handed_out;
} heap;

static int grow(size_t at_least) {
  if (heap.count == max_chunks) return 0;
  uint64_t length = at_least + 64 > chunk_size ? (at_least + 64 + 4095) & ~(uint64_t)4095 : chunk_size;
  long address = elfload_syscall6(__NR_mmap, 0, (long)length, PROT_READ | PROT_WRITE,
                                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (address < 0 && address > -4096) return 0;
  heap.start[heap.count] = (uint64_t)address;
  heap.length[heap.count++] = length;
  heap.top = (uint64_t)address;
  heap.end = (uint64_t)address + length;
  return 1;
}

EXPORT int posix_memalign(void **out, size_t alignment, size_t size) {
  if (alignment < 16) alignment = 16;
  uint64_t at = (heap.top + alignment - 1) & ~(uint64_t)(alignment - 1);
  if (heap.count == 0 || at + size > heap.end) {
    if (!grow(size + alignment)) return 12;  // ENOMEM
    at = (heap.top + alignment - 1) & ~(uint64_t)(alignment - 1);
  }
  heap.top = at + size;
  heap.handed_out += size;
  *out = (void *)at;
  return 0;
}

EXPORT void *malloc(size_t size) {
  void *p;
  return posix_memalign(&p, 16, size) == 0 ? p : 0;
}

EXPORT void free(void *p) { (void)p; }

uint64_t elfload_allocator_chunks(uint64_t *pairs, uint64_t capacity) {
  uint64_t n = 0;
  for (; n < heap.count && n < capacity; n++) {
    pairs[2 * n] = heap.start[n];
    pairs[2 * n + 1] = heap.length[n];
  }
  return n;
}

uint64_t elfload_allocated_bytes(void) { return heap.handed_out; }

// print() in Embedded Swift writes through putchar: to stderr, unbuffered.
EXPORT int putchar(int c) {
  char ch = (char)c;
  elfload_syscall6(__NR_write, 2, (long)&ch, 1, 0, 0, 0);
  return c;
}

// Hashing seeds (Dictionary, Set) come from here: getrandom.
EXPORT void arc4random_buf(void *buffer, size_t n) {
  while (n > 0) {
    long got = elfload_syscall6(__NR_getrandom, (long)buffer, (long)n, 0, 0, 0, 0);
    if (got <= 0) break;
    buffer = (char *)buffer + got;
    n -= (size_t)got;
  }
}

// Dictionary's capacity arithmetic rounds with ceil.
EXPORT double ceil(double x) {
  double t = (double)(int64_t)x;
  return t < x ? t + 1 : t;
}

// Without a thread pointer there is no stack-protector canary to check.
EXPORT void __stack_chk_fail(void) {
  elfload_syscall6(__NR_exit_group, 127, 0, 0, 0, 0, 0);
  for (;;) {
  }
}
