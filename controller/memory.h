#pragma once

namespace millrace::controller {

// The allocator's footprint. An operator's heap is mostly its caches; what else it allocates is
// short-lived (a list's decoding, a reconcile's copies) and would otherwise stay in the
// allocator's free lists. Both are no-ops where the C library is not glibc.

// Caps malloc's arenas at two, so memory freed by one thread is reused by the others rather than
// kept per thread. Call once at start-up, before threads start.
void LimitAllocatorArenas();

// Returns free heap pages to the kernel. Call after a burst of garbage: a list, the first pass.
void ReleaseFreeMemory();

}  // namespace millrace::controller
