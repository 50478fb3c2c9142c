#include "ledger/huge_pages.h"

#include <sanitizer/asan_interface.h>
#include <sys/mman.h>

#include <cstdint>
#include <iterator>
#include <mutex>
#include <utility>
#include <vector>

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

namespace {

// Taken by the writer, given back by whoever frees a map (the
// checkpointer, mostly): a lock per block of 2 MiB or more is nothing.
struct Kept {
  static constexpr size_t kBlocksMax = kHugeBytesKept / kHugePage;
  std::mutex mu;
  std::vector<std::pair<void*, size_t>> blocks;  // capacity kBlocksMax: push_back never allocates
  size_t bytes = 0;
  Kept() { blocks.reserve(kBlocksMax); }
};

Kept& TheKept() {
  static Kept* kept = new Kept();  // never destroyed: a map may be freed after main returns
  return *kept;
}

}  // namespace

void* TakeHuge(size_t bytes) {
  const size_t size = Rounded(bytes);
  {
    Kept& k = TheKept();
    std::lock_guard<std::mutex> lock(k.mu);
    // From the back: the most recently freed, the likeliest still backed.
    for (auto it = k.blocks.rbegin(); it != k.blocks.rend(); ++it) {
      if (it->second != size) continue;
      void* p = it->first;
      k.blocks.erase(std::next(it).base());
      k.bytes -= size;
      ASAN_UNPOISON_MEMORY_REGION(p, size);
      return p;
    }
  }
  return AllocateHuge(bytes);
}

void RecycleHuge(void* p, size_t bytes) noexcept {
  const size_t size = Rounded(bytes);
  if (size > kHugeBytesKept) {
    FreeHuge(p, size);
    return;
  }
  // Lazily freed, not unmapped: until the kernel needs the memory, the
  // pages stay backed and their next write costs no fault. Before it is
  // listed: once listed, another thread may take it and write to it.
  (void)::madvise(p, size, MADV_FREE);
  // A use after free in a kept block is reported, as in an unmapped one
  // it was a crash.
  ASAN_POISON_MEMORY_REGION(p, size);
  // The oldest make room: blocks of a size no longer asked for (a bigger
  // map's index, once) must not hold the bound for good. Unmapped under
  // the lock: rare (a full list), and off the writer's path (maps are
  // freed by the checkpointer); no allocation, so nothing here throws.
  Kept& k = TheKept();
  std::lock_guard<std::mutex> lock(k.mu);
  size_t drop = 0;
  for (; k.bytes + size > kHugeBytesKept; ++drop) {
    auto [q, n] = k.blocks[drop];
    k.bytes -= n;
    ASAN_UNPOISON_MEMORY_REGION(q, n);
    FreeHuge(q, n);
  }
  k.blocks.erase(k.blocks.begin(), k.blocks.begin() + static_cast<std::ptrdiff_t>(drop));
  k.blocks.emplace_back(p, size);  // within the reserved capacity: kept bytes <= the bound
  k.bytes += size;
}

size_t HugeBytesKept() {
  Kept& k = TheKept();
  std::lock_guard<std::mutex> lock(k.mu);
  return k.bytes;
}

}  // namespace pointledger::ledger
