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
  // A freed map's memory serves the next map: the block given back is
  // kept (counted), and comes back for a request of its rounded size,
  // still writable to its end; a request of another size is not served
  // from it. Sizes no other test gives back (7 and 11 pages), so that what
  // earlier tests left kept does not answer these requests.
  constexpr size_t kSeven = 7 * kHugePage;
  constexpr size_t kEleven = 11 * kHugePage;
  auto* p = static_cast<unsigned char*>(TakeHuge(kSeven - 1));
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % kHugePage, 0u);
  std::memset(p, 0xcd, kSeven);
  const size_t before = HugeBytesKept();
  RecycleHuge(p, kSeven - 1);
  EXPECT_EQ(HugeBytesKept(), before + kSeven);
  void* other = TakeHuge(kEleven);
  EXPECT_NE(other, p);
  EXPECT_EQ(HugeBytesKept(), before + kSeven);  // not served from the 7 pages
  auto* q = static_cast<unsigned char*>(TakeHuge(kSeven));
  EXPECT_EQ(q, p);
  EXPECT_EQ(HugeBytesKept(), before);
  std::memset(q, 0x11, kSeven);
  EXPECT_EQ(q[kSeven - 1], 0x11);
  RecycleHuge(q, kSeven);
  RecycleHuge(other, kEleven);
  EXPECT_EQ(HugeBytesKept(), before + kSeven + kEleven);
  // Left as found: unmapped, not kept.
  FreeHuge(TakeHuge(kSeven), kSeven);
  FreeHuge(TakeHuge(kEleven), kEleven);
  EXPECT_EQ(HugeBytesKept(), before);
}

TEST(HugePagesTest, TheOldestBlocksMakeRoomWithinTheBound) {
  // Whatever was kept before, giving back kHugeBytesKept and 4 pages more
  // keeps exactly the bound: the 4 oldest are unmapped, the newest kept.
  // The pages are never touched: this maps address space, not memory.
  const size_t n = kHugeBytesKept / kHugePage + 4;
  std::vector<void*> pages;
  for (size_t i = 0; i < n; ++i) pages.push_back(TakeHuge(kHugePage));
  for (void* p : pages) RecycleHuge(p, kHugePage);
  EXPECT_EQ(HugeBytesKept(), kHugeBytesKept);
  // mincore fails with ENOMEM on a range that is not mapped.
  std::vector<unsigned char> resident(kHugePage / static_cast<size_t>(::sysconf(_SC_PAGESIZE)));
  auto unmapped = [&](void* p) { return ::mincore(p, kHugePage, resident.data()) != 0 && errno == ENOMEM; };
  for (size_t i = 0; i < 4; ++i) EXPECT_TRUE(unmapped(pages[i])) << i;
  for (size_t i = 4; i < n; ++i) EXPECT_FALSE(unmapped(pages[i])) << i;
  // A block bigger than the bound is never kept.
  RecycleHuge(TakeHuge(kHugeBytesKept + kHugePage), kHugeBytesKept + kHugePage);
  EXPECT_EQ(HugeBytesKept(), kHugeBytesKept);
  // Every kept one is a page of these, taken back newest first; the list
  // is left empty for the other tests.
  for (size_t i = n; i-- > 4;) {
    void* p = TakeHuge(kHugePage);
    EXPECT_EQ(p, pages[i]);
    FreeHuge(p, kHugePage);
  }
  EXPECT_EQ(HugeBytesKept(), 0u);
}

}  // namespace
}  // namespace pointledger::ledger
