#include "controller/memory.h"

#include <cstdlib>  // defines __GLIBC__ on glibc

// Under AddressSanitizer malloc is ASan's: glibc's allocator is never set up, and its
// malloc_trim can fault on the arena it never initialised (seen in scripts/test's ASan operator).
#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__)
#define MILLRACE_GLIBC_MALLOC 1
#include <malloc.h>
#endif

namespace millrace::controller {

void LimitAllocatorArenas() {
#if defined(MILLRACE_GLIBC_MALLOC)
  mallopt(M_ARENA_MAX, 2);
#endif
}

void ReleaseFreeMemory() {
#if defined(MILLRACE_GLIBC_MALLOC)
  malloc_trim(0);
#endif
}

}  // namespace millrace::controller
