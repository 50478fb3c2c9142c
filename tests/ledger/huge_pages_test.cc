// The huge-page allocations of the writer's big tables (ledger/huge_pages.h):
// whether the kernel backs them with huge pages is its choice, so what is
// checked is what callers rely on: alignment, size, zeroed memory, an
// allocator that keeps a container's elements across the threshold, and
// pages given back being taken again (the arena's recycling).
#include "ledger/huge_pages.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <vector>

#include "gtest/gtest.h"

namespace pointledger::ledger {
namespace {

TEST(HugePagesTest, AnAllocationIsAlignedZeroedAndWritableToItsEnd) {
  for (const size_t bytes : {size_t{1}, kHugePage - 1, kHugePage, kHugePage + 1, 3 * kHugePage}) {
    auto* p = static_cast<unsigned char*>(AllocateHuge(bytes));
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % kHugePage, 0u) << bytes;
    EXPECT_EQ(p[0], 0) << bytes;
    EXPECT_EQ(p[bytes - 1], 0) << bytes;
    std::memset(p, 0xab, bytes);
    EXPECT_EQ(p[bytes - 1], 0xab);
    FreeHuge(p, bytes);
  }
}

TEST(HugePagesTest, AContainerKeepsItsElementsAcrossTheThreshold) {
  // Small arrays come from std::allocator, big ones from AllocateHuge; a
  // vector that grows from one to the other moves its elements across.
  std::vector<uint64_t, HugePageAllocator<uint64_t>> v;
  const size_t n = 3 * kHugePage / sizeof(uint64_t);
  for (size_t i = 0; i < n; ++i) v.push_back(i * 7);
  size_t wrong = 0;
  for (size_t i = 0; i < n; ++i) wrong += v[i] != i * 7;
  EXPECT_EQ(wrong, 0u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(v.data()) % kHugePage, 0u);
  v.resize(10);
  v.shrink_to_fit();  // back under the threshold: std::allocator's again
  EXPECT_EQ(v[9], 63u);
}

TEST(HugePagesTest, ABlockGivenBackIsTakenAgainForItsSizeOnly) {
  // A freed map's memory serves the next map: the same block comes back
  // for a request of its rounded size, still writable to its end; a
  // request of another size gets a block of its own.
  auto* p = static_cast<unsigned char*>(TakeHuge(kHugePage + 1));
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % kHugePage, 0u);
  std::memset(p, 0xcd, 2 * kHugePage);
  RecycleHuge(p, kHugePage + 1);
  void* other = TakeHuge(kHugePage);
  EXPECT_NE(other, p);
  auto* q = static_cast<unsigned char*>(TakeHuge(2 * kHugePage));
  EXPECT_EQ(q, p);
  // MADV_FREE: the block holds its old bytes or, where the kernel took a
  // page meanwhile, zeroes; either way it is ours to write.
  EXPECT_TRUE(q[2 * kHugePage - 1] == 0xcd || q[2 * kHugePage - 1] == 0);
  std::memset(q, 0x11, 2 * kHugePage);
  EXPECT_EQ(q[2 * kHugePage - 1], 0x11);
  RecycleHuge(q, 2 * kHugePage);
  RecycleHuge(other, kHugePage);
}

TEST(HugePagesTest, BlocksPastTheKeptBoundAreUnmapped) {
  // Whatever was kept before, giving back kHugeBytesKept and 4 pages more
  // in single pages fills what is kept and unmaps at least 4: the memory a
  // burst leaves behind is bounded.
  const size_t n = kHugeBytesKept / kHugePage + 4;
  std::vector<void*> pages;
  for (size_t i = 0; i < n; ++i) pages.push_back(TakeHuge(kHugePage));
  for (void* p : pages) RecycleHuge(p, kHugePage);
  // mincore fails with ENOMEM on a range that is not mapped.
  std::vector<unsigned char> resident(kHugePage / static_cast<size_t>(::sysconf(_SC_PAGESIZE)));
  size_t unmapped = 0;
  for (void* p : pages) unmapped += ::mincore(p, kHugePage, resident.data()) != 0 && errno == ENOMEM;
  EXPECT_GE(unmapped, 4u);
  // Taken again, every kept one is usable (and none is handed out twice).
  std::vector<void*> again;
  for (size_t i = 0; i < n - unmapped; ++i) again.push_back(TakeHuge(kHugePage));
  std::sort(again.begin(), again.end());
  EXPECT_EQ(std::adjacent_find(again.begin(), again.end()), again.end());
  for (void* p : again) {
    static_cast<unsigned char*>(p)[kHugePage - 1] = 1;
    RecycleHuge(p, kHugePage);
  }
}

}  // namespace
}  // namespace pointledger::ledger
