// The huge-page allocations of the writer's big tables (ledger/huge_pages.h):
// whether the kernel backs them with huge pages is its choice, so what is
// checked is what callers rely on: alignment, size, zeroed memory, and an
// allocator that keeps a container's elements across the threshold.
#include "ledger/huge_pages.h"

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

}  // namespace
}  // namespace pointledger::ledger
