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

// A program created by a batch that is then refused does not exist for
// the rest of the group commit, though a transaction of that batch used
// it: nothing the writer read inside a rolled-back batch outlives it.
TEST_F(MapFullTest, AProgramCreatedByARefusedBatchIsNotFoundLaterInTheGroup) {
  absl::StatusOr<Ledger::Writer> writer = ledger_->BeginWrite();
  ASSERT_TRUE(writer.ok()) << writer.status();
  std::vector<Transaction> refused = {ProgramCreate("hotel"), Earn("hotel", "alice", 5, "h1")};
  for (Transaction& t : BigBatch("big-")) refused.push_back(std::move(t));
  std::vector<Result> results;
  EXPECT_TRUE(absl::IsResourceExhausted(writer->Apply(refused, Auth::Admin(), &results)));
  const std::vector<Transaction> after = {Earn("hotel", "alice", 5, "h2")};
  ASSERT_TRUE(writer->Apply(after, Auth::Admin(), &results).ok());
  EXPECT_EQ(results.at(0).code, Code::kProgramNotFound);
  ASSERT_TRUE(std::move(*writer).Commit().ok());
  EXPECT_EQ(Apply1(Earn("hotel", "alice", 5, "h3")).code, Code::kProgramNotFound);
}

}  // namespace
}  // namespace pointledger::ledger::testing

namespace pointledger::ledger::testing {
namespace {

// Found by the frame fuzzer: a TxQuery naming the program "" reached
// mdb_get with an empty key, which LMDB refuses with MDB_BAD_VALSIZE (as it
// does keys over 511 bytes); the server answered server_busy and logged a
// storage error. No such key can be stored, so it is simply not found.
TEST_F(LedgerTest, ReadsOfKeysLmdbCannotStoreAreNotFoundNotErrors) {
  ASSERT_EQ(Apply1(ProgramCreate("acme")).code, Code::kOk);
  ASSERT_EQ(Apply1(Earn("acme", "alice", 100, "e1")).code, Code::kOk);
  for (const std::string& name : {std::string(), std::string(600, 'p')}) {
    absl::StatusOr<std::optional<ProgramInfo>> p = ledger_->GetProgram(name);
    ASSERT_TRUE(p.ok()) << name.size() << " bytes: " << p.status();
    EXPECT_FALSE(p->has_value());
    absl::StatusOr<Liability> l = ledger_->LiabilityReport(name, 0, INT64_MAX, INT64_MAX);
    EXPECT_TRUE(absl::IsNotFound(l.status())) << name.size() << " bytes: " << l.status();
  }
  absl::StatusOr<std::optional<ProgramInfo>> acme = ledger_->GetProgram("acme");
  ASSERT_TRUE(acme.ok()) << acme.status();
  EXPECT_TRUE(acme->has_value());
}

}  // namespace
}  // namespace pointledger::ledger::testing
