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

// The launcher's allocator. Every block has a 16-byte header just below it. Blocks up to
// 32 KiB (header included) come from size classes, powers of two, carved from 256 KiB chunks
// and reused once freed: parsing a profile allocates per line, and 2^22 lines must not add up.
// Larger blocks (a 64 MiB profile, the array of its pages) get a mapping of their own, unmapped
// when freed. Every mapping, chunk or block, is on one list, which the jump unmaps
// (elfload_allocator_chunks); from elfload_allocator_freeze on, nothing is unmapped any more, so
// that list cannot go stale while the jump is prepared. A mapping the kernel refuses ends the
// run with one line: Embedded Swift would trap on the failed allocation.
struct mapping {
  struct mapping *next, *prev;
  uint64_t length, unused;
};
struct header {
  uint32_t magic, class;  // class: the size class's index, or `large`
  uint64_t offset;        // from the block's start (small) or the mapping's (large) to the pointer
};
enum { chunk_size = 256 << 10, smallest = 5, classes = 11, large = 0xffff };
static const uint32_t magic = 0xe1f10ad;
static struct {
  struct mapping *mappings;
  uint64_t top, end, frozen;
  void *free[classes];
} heap;

// `elfload: out of memory: ...`, then exit 126 (cannot run), as for any other refusal.
static void out_of_memory(uint64_t length, long error) {
  char line[120] = "elfload: out of memory: mmap of ";
  char *p = line + sizeof "elfload: out of memory: mmap of " - 1;
  char digits[24];
  int n = 0;
  do digits[n++] = (char)('0' + length % 10); while ((length /= 10) != 0);
  while (n > 0) *p++ = digits[--n];
  const char *middle = " bytes for elfload's own use failed (errno ";
  while (*middle) *p++ = *middle++;
  do digits[n++] = (char)('0' + error % 10); while ((error /= 10) != 0);
  while (n > 0) *p++ = digits[--n];
  *p++ = ')';
  *p++ = '\n';
  elfload_syscall6(__NR_write, 2, (long)line, p - line, 0, 0, 0);
  elfload_syscall6(__NR_exit_group, 126, 0, 0, 0, 0, 0);
  __builtin_unreachable();
}

// A mapping of `length` bytes (a multiple of the page), on the list.
static struct mapping *map(uint64_t length) {
  long address = elfload_syscall6(__NR_mmap, 0, (long)length, PROT_READ | PROT_WRITE,
                                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (address < 0 && address > -4096) out_of_memory(length, -address);
  struct mapping *m = (struct mapping *)address;
  m->length = length;
  m->prev = 0;
  m->next = heap.mappings;
  if (heap.mappings) heap.mappings->prev = m;
  heap.mappings = m;
  return m;
}

// A block of class `c` (2^(c + smallest) bytes): a freed one, else carved from the chunk. The
// rest of a chunk too small for it goes to the smaller classes' lists.
static uint64_t take(uint32_t c) {
  if (heap.free[c]) {
    void *block = heap.free[c];
    heap.free[c] = *(void **)block;
    return (uint64_t)block;
  }
  uint64_t size = (uint64_t)1 << (c + smallest);
  if (heap.end - heap.top < size) {
    for (int k = (int)c - 1; k >= 0; k--) {
      uint64_t piece = (uint64_t)1 << (k + smallest);
      while (heap.end - heap.top >= piece) {
        *(void **)heap.top = heap.free[k];
        heap.free[k] = (void *)heap.top;
        heap.top += piece;
      }
    }
    struct mapping *m = map(chunk_size);
    heap.top = (uint64_t)m + sizeof *m;
    heap.end = (uint64_t)m + chunk_size;
  }
  uint64_t block = heap.top;
  heap.top += size;
  return block;
}

EXPORT int posix_memalign(void **out, size_t alignment, size_t size) {
  if (alignment < 16) alignment = 16;
  // The most a block needs: the header, the size, and room to align the pointer.
  uint64_t need = sizeof(struct header) + (alignment - 16);
  if (size > ((uint64_t)1 << 46) || alignment > ((uint64_t)1 << 30)) out_of_memory(size, 12);
  need += size;
  uint64_t at;
  uint32_t c = 0;
  if (need <= ((uint64_t)1 << (classes - 1 + smallest))) {
    while (((uint64_t)1 << (c + smallest)) < need) c++;
    uint64_t block = take(c);
    at = (block + sizeof(struct header) + alignment - 1) & ~(uint64_t)(alignment - 1);
    ((struct header *)at)[-1] = (struct header){magic, c, at - block};
  } else {
    uint64_t length = (need + sizeof(struct mapping) + 4095) & ~(uint64_t)4095;
    uint64_t m = (uint64_t)map(length);
    at = (m + sizeof(struct mapping) + sizeof(struct header) + alignment - 1) & ~(uint64_t)(alignment - 1);
    ((struct header *)at)[-1] = (struct header){magic, large, at - m};
  }
  *out = (void *)at;
  return 0;
}

EXPORT void *malloc(size_t size) {
  void *p;
  return posix_memalign(&p, 16, size) == 0 ? p : 0;
}

EXPORT void free(void *p) {
  if (!p) return;
  struct header *h = (struct header *)p - 1;
  if (h->magic != magic) return;  // not one of ours: leave it
  uint64_t start = (uint64_t)p - h->offset;
  uint32_t c = h->class;
  h->magic = 0;
  if (c != large) {  // (the list's link may overwrite the header: read before)
    *(void **)start = heap.free[c];
    heap.free[c] = (void *)start;
    return;
  }
  if (heap.frozen) return;  // stays on the list: the jump unmaps it
  struct mapping *m = (struct mapping *)start;
  if (m->prev) m->prev->next = m->next; else heap.mappings = m->next;
  if (m->next) m->next->prev = m->prev;
  elfload_syscall6(__NR_munmap, (long)m, (long)m->length, 0, 0, 0, 0);
}

uint64_t elfload_allocator_chunks(uint64_t *pairs, uint64_t capacity) {
  uint64_t n = 0;
  for (struct mapping *m = heap.mappings; m; m = m->next, n++) {
    if (n < capacity) {
      pairs[2 * n] = (uint64_t)m;
      pairs[2 * n + 1] = m->length;
    }
  }
  return n;
}

void elfload_allocator_freeze(void) { heap.frozen = 1; }

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
