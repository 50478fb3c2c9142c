// Internal to ledger/: memory for the writer's big, randomly read tables in
// transparent huge pages where the kernel gives them on request
// (/sys/kernel/mm/transparent_hugepage/enabled: `madvise`, Debian's
// default, or `always`).
//
// Why: the MemTable's hash index, its arena and the id filter are tens to
// hundreds of megabytes read at random, one cache line here and there. With
// 4 KiB pages nearly every such read also misses the TLB, and in a VM a
// TLB miss walks two levels of page tables. A 2 MiB page covers 512 times
// as much.
#ifndef POINTLEDGER_LEDGER_HUGE_PAGES_H_
#define POINTLEDGER_LEDGER_HUGE_PAGES_H_

#include <cstddef>
#include <memory>
#include <new>

namespace pointledger::ledger {

inline constexpr size_t kHugePage = size_t{2} << 20;

// `bytes` rounded up to whole huge pages, aligned to one, asked to be
// backed by huge pages (a hint: without them it is ordinary memory).
// Zeroed (fresh from the kernel). Throws std::bad_alloc. Release with
// FreeHuge and the same `bytes`.
void* AllocateHuge(size_t bytes);
void FreeHuge(void* p, size_t bytes) noexcept;

// Like AllocateHuge, but NOT zeroed: a block of the same rounded size
// given back by RecycleHuge if one is kept, else AllocateHuge(bytes).
//
// Why: a MemTable's map (its arena's pages, its hash index's slot array)
// is freed whole once its checkpoint is written, while the next map grows
// by as much. The kernel zeroes every fresh page at its first touch: that
// was 7–16% of the writer's time at batch 8190 (BENCHMARKS.md, "Session
// 32"). A block kept here is already backed, so the writer skips the
// fault and the zeroing.
void* TakeHuge(size_t bytes);
// Keeps `p` (from TakeHuge or AllocateHuge, of `bytes`) for a later
// TakeHuge, unmapping the oldest kept blocks as needed to keep them all
// within kHugeBytesKept (a block bigger than that is unmapped at once). A
// kept block is marked MADV_FREE: under memory pressure the kernel may
// reclaim its pages (they then read as zeroes), so what is kept never
// holds memory the machine needs. Under AddressSanitizer it is poisoned
// until taken again.
void RecycleHuge(void* p, size_t bytes) noexcept;
// About two and a half checkpoints' maps at the default checkpoint_entries
// (2M entries: ~300 MB of arena and ~100 MB of hash index each).
inline constexpr size_t kHugeBytesKept = size_t{1} << 30;
// What is kept now, in bytes (for tests and the curious).
size_t HugeBytesKept();

// An allocator that takes huge pages for allocations of a huge page or
// more (a hash map's slot array; recycled: TakeHuge) and std::allocator's
// below. Its memory is not zeroed, as std::allocator's is not.
template <typename T>
class HugePageAllocator {
 public:
  using value_type = T;
  HugePageAllocator() = default;
  template <typename U>
  HugePageAllocator(const HugePageAllocator<U>&) {}  // NOLINT: rebinding
  T* allocate(size_t n) {
    if (n * sizeof(T) < kHugePage) return std::allocator<T>().allocate(n);
    static_assert(alignof(T) <= kHugePage);
    return static_cast<T*>(TakeHuge(n * sizeof(T)));
  }
  void deallocate(T* p, size_t n) {
    if (n * sizeof(T) < kHugePage) {
      std::allocator<T>().deallocate(p, n);
    } else {
      RecycleHuge(p, n * sizeof(T));
    }
  }
  template <typename U>
  bool operator==(const HugePageAllocator<U>&) const {
    return true;
  }
};

}  // namespace pointledger::ledger

#endif  // POINTLEDGER_LEDGER_HUGE_PAGES_H_
