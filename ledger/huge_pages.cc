#include "ledger/huge_pages.h"

#include <sys/mman.h>

#include <cstdint>

namespace pointledger::ledger {

namespace {
size_t Rounded(size_t bytes) { return (bytes + kHugePage - 1) / kHugePage * kHugePage; }
}  // namespace

void* AllocateHuge(size_t bytes) {
  // Fresh pages from the kernel, aligned to a huge page, marked before
  // their first touch: a malloc'd region may already be backed by small
  // pages, which the hint does not change.
  const size_t size = Rounded(bytes);
  void* raw = ::mmap(nullptr, size + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) throw std::bad_alloc();
  const uintptr_t start = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = (start + kHugePage - 1) / kHugePage * kHugePage;
  if (aligned > start) ::munmap(raw, aligned - start);
  const size_t after = (start + size + kHugePage) - (aligned + size);
  if (after > 0) ::munmap(reinterpret_cast<void*>(aligned + size), after);
  // A hint: refused (THP `never`, an old kernel), the pages stay small.
  (void)::madvise(reinterpret_cast<void*>(aligned), size, MADV_HUGEPAGE);
  return reinterpret_cast<void*>(aligned);
}

void FreeHuge(void* p, size_t bytes) noexcept { ::munmap(p, Rounded(bytes)); }

}  // namespace pointledger::ledger
