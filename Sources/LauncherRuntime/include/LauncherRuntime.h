// What the freestanding launcher has instead of a C library and a runtime: its own start
// (_start, self-relocation), the few symbols Embedded Swift calls, a page allocator, and where
// its own image is.
#ifndef LAUNCHERRUNTIME_H
#define LAUNCHERRUNTIME_H

#include <stdint.h>

/// The launcher's own image, from its ELF header to the end of its bss.
uint64_t elfload_image_start(void);
uint64_t elfload_image_end(void);

/// The memory the allocator holds from the kernel, as (start, length) pairs
/// (at most `capacity` of them); returns how many there are. The jump unmaps them.
uint64_t elfload_allocator_chunks(uint64_t *pairs, uint64_t capacity);

/// From now on freed memory stays mapped (and listed), so that the list the
/// jump unmaps stays true while it is made and used.
void elfload_allocator_freeze(void);
#endif
