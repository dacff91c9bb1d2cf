// What the freestanding launcher has instead of a C library and a runtime: its own start
// (_start, self-relocation), the few symbols Embedded Swift calls, a page allocator, and where
// its own image is.
#ifndef LAUNCHERRUNTIME_H
#define LAUNCHERRUNTIME_H

#include <stdint.h>

/// The launcher's own image, from its ELF header to the end of its bss.
uint64_t elfload_image_start(void);
uint64_t elfload_image_end(void);

/// The memory the allocator took from the kernel, as (start, length) pairs
/// (at most `capacity`); returns how many. The jump unmaps them.
uint64_t elfload_allocator_chunks(uint64_t *pairs, uint64_t capacity);

/// Bytes the allocator has handed out (for --verbose and the tests).
uint64_t elfload_allocated_bytes(void);
#endif
