// SPEC §9: "no allocation per transaction on the hot path". The writer's
// path is counted here through a replacement operator new (below) that
// counts on this thread while a flag is set; the figure with the real
// workload's mix is `allocs_per_tx` in BM_LedgerApply (BENCHMARKS.md).
#include <cstdint>
#include <cstdlib>
#include <new>
#include <sanitizer/asan_interface.h>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/ledger/ledger_fixture.h"

// Not under a sanitizer: its runtime replaces the allocation functions
// itself, pairs each new with its delete (the nothrow and array forms too)
// and reports mismatches, which a partial replacement here would cause.
#if __has_feature(address_sanitizer) || defined(__SANITIZE_ADDRESS__) || \
    __has_feature(thread_sanitizer) || defined(__SANITIZE_THREAD__)
#define PL_COUNT_ALLOCATIONS 0
#else
#define PL_COUNT_ALLOCATIONS 1
#endif

namespace pointledger::ledger::testing {
namespace {

thread_local bool g_counting = false;
thread_local uint64_t g_allocations = 0;

}  // namespace

// Called by the replacement operator new below.
void CountAllocation() {
  if (g_counting) ++g_allocations;
}

namespace {

class AllocationTest : public LedgerTest {
 protected:
  void SetUp() override {
    if (!PL_COUNT_ALLOCATIONS) GTEST_SKIP() << "counted in builds without a sanitizer (make test)";
    LedgerTest::SetUp();
  }

  static constexpr int kMembers = 500;
  static constexpr int kBatch = 2000;

  // Earn 60%, redeem 30%, referral 10% (a new referee each), as the
  // benchmark's mix, over members who all hold points.
  std::vector<Transaction> Batch(int round) {
    std::vector<Transaction> batch;
    for (int i = 0; i < kBatch; ++i) {
      const std::string member = "m" + std::to_string((i * 7 + round) % kMembers);
      const std::string key = "r" + std::to_string(round) + "-" + std::to_string(i);
      if (i % 10 < 6) {
        batch.push_back(Earn("acme", member, 10, key));
      } else if (i % 10 < 9) {
        batch.push_back(Redeem("acme", member, 3, key));
      } else {
        batch.push_back(Referral("acme", member, "new-" + key, 5, 5, key));
      }
    }
    return batch;
  }

  // The operator new calls on this thread while the batch is applied and
  // committed as one group.
  uint64_t AllocationsToCommit(const std::vector<Transaction>& batch) {
    std::vector<Result> results;
    results.reserve(batch.size());
    g_allocations = 0;
    g_counting = true;
    absl::StatusOr<Ledger::Writer> writer = ledger_->BeginWrite();
    absl::Status status = writer.status();
    if (status.ok()) status = writer->Apply(batch, Auth::Admin(), &results);
    if (status.ok()) status = std::move(*writer).Commit();
    g_counting = false;
    EXPECT_TRUE(status.ok()) << status;
    for (size_t i = 0; i < results.size(); ++i) {
      EXPECT_EQ(results[i].code, Code::kOk) << "transaction " << i << ": " << CodeName(results[i].code);
    }
    return g_allocations;
  }
};

TEST_F(AllocationTest, TheCounterSeesAnAllocation) {
  // Without this, a build that lost the replacement would pass the test
  // below for nothing.
  g_allocations = 0;
  g_counting = true;
  auto* s = new std::string(100, 'x');
  g_counting = false;
  delete s;
  EXPECT_GE(g_allocations, 1u);
}

TEST_F(AllocationTest, AGroupCommitAllocatesPerCommitNotPerTransaction) {
  MustApply({ProgramCreate("acme")});
  std::vector<Transaction> opening;
  for (int m = 0; m < kMembers; ++m) {
    opening.push_back(Earn("acme", "m" + std::to_string(m), 1000, "open-" + std::to_string(m)));
  }
  MustApply(opening);
  // The first groups grow the buffers the writer keeps across commits.
  AllocationsToCommit(Batch(1));
  AllocationsToCommit(Batch(2));
  const uint64_t allocations = AllocationsToCommit(Batch(3));
  // What is left is per group commit (the log chunk growing to the
  // group's size, the history run, the read transactions, an arena block
  // or the hash map's growth now and then): a few dozen for the whole
  // group. One per redeem, say, would be 600.
  EXPECT_LE(allocations, uint64_t{kBatch} / 20) << "allocations for " << kBatch << " transactions";
}

// The other kinds a till or a web shop posts: earns and redeems at a
// partner (priced flows), holds captured or released, transfers and
// adjustments.
TEST_F(AllocationTest, TheOtherPointOfSaleKindsAllocatePerCommitToo) {
  MustApply({ProgramCreate("acme"), PartnerCreate("acme", "hotelco", 2000, 1500)});
  std::vector<Transaction> opening;
  for (int m = 0; m < kMembers; ++m) {
    opening.push_back(Earn("acme", "m" + std::to_string(m), 100000, "open-" + std::to_string(m)));
  }
  MustApply(opening);
  auto batch = [&](int round) {
    std::vector<Transaction> b;
    for (int i = 0; i < kBatch; ++i) {
      const std::string member = "m" + std::to_string((i * 7 + round) % kMembers);
      const std::string other = "m" + std::to_string((i * 7 + round + 1) % kMembers);
      const std::string key = "p" + std::to_string(round) + "-" + std::to_string(i);
      switch (i % 8) {
        case 0: {
          Transaction t = Earn("acme", member, 20, key);
          t.partner = "hotelco";
          b.push_back(t);
          break;
        }
        case 1: {
          Transaction t = Redeem("acme", member, 5, key);
          t.partner = "hotelco";
          b.push_back(t);
          break;
        }
        case 2:
        case 4:
          b.push_back(Hold("acme", member, 7, 3600, key));
          break;
        case 3:  // captures the hold of case 2
          b.push_back(Capture("acme", "p" + std::to_string(round) + "-" + std::to_string(i - 1), 7, key));
          break;
        case 5:  // releases the hold of case 4
          b.push_back(Release("acme", "p" + std::to_string(round) + "-" + std::to_string(i - 1), key));
          break;
        case 6:
          b.push_back(Transfer("acme", member, other, 3, key));
          break;
        default:
          b.push_back(Adjust("acme", member, 2, key));
          break;
      }
    }
    return b;
  };
  AllocationsToCommit(batch(1));
  AllocationsToCommit(batch(2));
  const uint64_t allocations = AllocationsToCommit(batch(3));
  EXPECT_LE(allocations, uint64_t{kBatch} / 20) << "allocations for " << kBatch << " transactions";
}

}  // namespace
}  // namespace pointledger::ledger::testing

#if PL_COUNT_ALLOCATIONS
// The counting replacement: every operator new of this test binary goes
// through malloc, and both deletes through free. The nothrow and array
// forms that libstdc++ provides call these two, so every pair stays
// matched.
void* operator new(std::size_t n) {
  pointledger::ledger::testing::CountAllocation();
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop
#endif  // PL_COUNT_ALLOCATIONS
