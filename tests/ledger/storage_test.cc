// The storage contract of Ledger::Writer (ledger/ledger.h): a batch that does
// not fit in the map fails as a whole with ResourceExhausted, earlier batches
// of the same group commit are kept, and the ledger stays consistent.
#include <string>

#include "tests/ledger/ledger_fixture.h"

namespace pointledger::ledger::testing {
namespace {

class MapFullTest : public LedgerTest {
 protected:
  uint64_t MapSizeBytes() const override { return uint64_t{1} << 20; }  // ~2,000 records

  void SetUp() override {
    LedgerTest::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_EQ(Apply1(ProgramCreate("acme")).code, Code::kOk);
  }

  // Enough earns with full metadata to overflow a 1 MiB map several times.
  static std::vector<Transaction> BigBatch(const std::string& prefix) {
    std::vector<Transaction> batch;
    for (int i = 0; i < 4000; ++i) {
      Transaction t = Earn("acme", prefix + std::to_string(i), 1, prefix + std::to_string(i));
      t.metadata = std::string(kMetadataBytesMax, 'm');
      batch.push_back(std::move(t));
    }
    return batch;
  }
};

TEST_F(MapFullTest, ABatchThatDoesNotFitFailsWholeAndEarlierBatchesAreKept) {
  absl::StatusOr<Ledger::Writer> writer = ledger_->BeginWrite();
  ASSERT_TRUE(writer.ok()) << writer.status();
  std::vector<Result> results;
  const std::vector<Transaction> small = {Earn("acme", "alice", 100, "e1")};
  ASSERT_TRUE(writer->Apply(small, Auth::Admin(), &results).ok());
  const absl::Status full = writer->Apply(BigBatch("big-"), Auth::Admin(), &results);
  EXPECT_TRUE(absl::IsResourceExhausted(full)) << full;
  EXPECT_EQ(writer->recorded_count(), 1u);
  ASSERT_TRUE(std::move(*writer).Commit().ok());

  EXPECT_EQ(MustHead().seq, 2u);
  EXPECT_EQ(Posted("acme", "alice"), 100u);
  EXPECT_FALSE(FindBalance("acme", "big-0").has_value());
  // The ledger goes on: the next small batch commits with the next seq.
  const Result r = Apply1(Redeem("acme", "alice", 10, "r1"));
  EXPECT_EQ(r.code, Code::kOk);
  EXPECT_EQ(r.seq, 3u);
}

}  // namespace
}  // namespace pointledger::ledger::testing
