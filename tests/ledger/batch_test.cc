// Batches, linked chains (SPEC §4) and group commit through Ledger::Writer.
#include <string>

#include "tests/ledger/ledger_fixture.h"

namespace pointledger::ledger::testing {
namespace {

using BatchTest = LedgerTest;
using LinkedTest = AcmeTest;
using GroupCommitTest = AcmeTest;

TEST_F(BatchTest, LaterTransactionsInABatchSeeTheEarlierOnes) {
  const std::vector<Result> r =
      Apply({ProgramCreate("acme"), Earn("acme", "alice", 100, "e1"),
             Redeem("acme", "alice", 60, "r1"), Transfer("acme", "alice", "bob", 40, "t1")});
  for (size_t i = 0; i < r.size(); ++i) {
    EXPECT_EQ(r[i].code, Code::kOk) << i;
    EXPECT_EQ(r[i].seq, i + 1);
    if (i > 0) {
      EXPECT_GT(r[i].timestamp_ns, r[i - 1].timestamp_ns);
    }
  }
  EXPECT_EQ(Posted("acme", "alice"), 0u);
  EXPECT_EQ(Posted("acme", "bob"), 40u);
}

TEST_F(BatchTest, ARejectionDoesNotStopTheRestOfTheBatch) {
  const std::vector<Result> r = Apply(
      {ProgramCreate("acme"), Earn("acme", "alice", 10, "e1"), Redeem("acme", "alice", 50, "r1"),
       Earn("acme", "alice", 0, "bad"), Earn("acme", "alice", 5, "e2")});
  EXPECT_EQ(r[2].code, Code::kInsufficientPoints);
  EXPECT_EQ(r[2].seq, 3u);
  EXPECT_EQ(r[3].code, Code::kInvalidAmount);
  EXPECT_EQ(r[3].seq, 0u);
  EXPECT_EQ(r[4].code, Code::kOk);
  EXPECT_EQ(r[4].seq, 4u);
  EXPECT_EQ(Posted("acme", "alice"), 15u);
}

TEST_F(LinkedTest, AChainSucceedsTogether) {
  const std::vector<Result> r =
      Apply({Linked(Earn("acme", "alice", 100, "e1")), Linked(Redeem("acme", "alice", 60, "r1")),
             Transfer("acme", "alice", "bob", 40, "t1")});
  for (size_t i = 0; i < r.size(); ++i) {
    EXPECT_EQ(r[i].code, Code::kOk) << i;
    EXPECT_EQ(r[i].seq, i + 2);
  }
  EXPECT_EQ(Posted("acme", "bob"), 40u);
}

TEST_F(LinkedTest, AFailingChainIsRolledBackEntirely) {
  const std::vector<Transaction> chain = {
      Linked(Earn("acme", "alice", 100, "e1")), Linked(Transfer("acme", "alice", "bob", 50, "t1")),
      Redeem("acme", "alice", 500, "r1"), Earn("acme", "carol", 7, "e2")};
  std::vector<Result> r = Apply(chain);
  EXPECT_EQ(r[0].code, Code::kLinkedEventFailed);
  EXPECT_EQ(r[0].seq, 0u);
  EXPECT_EQ(r[1].code, Code::kLinkedEventFailed);
  EXPECT_EQ(r[1].seq, 0u);
  EXPECT_EQ(r[2].code, Code::kInsufficientPoints);
  EXPECT_NE(r[2].seq, 0u);
  EXPECT_EQ(r[3].code, Code::kOk);  // after the chain: applied on its own
  EXPECT_FALSE(FindBalance("acme", "alice").has_value());
  EXPECT_FALSE(FindBalance("acme", "bob").has_value());
  EXPECT_EQ(MustSystemAccount("acme", "issuance").debits_posted, 7u);
  EXPECT_EQ(MustHead().seq, 3u);  // program, the recorded rejection, carol's earn
}

// The failing member's state rejection is recorded, so the same chain retried
// fails the same way (SPEC §3); the other members' ids stay free.
TEST_F(LinkedTest, ARetriedChainFailsTheSameWayAndOtherIdsStayFree) {
  const std::vector<Transaction> chain = {Linked(Earn("acme", "alice", 100, "e1")),
                                          Redeem("acme", "alice", 500, "r1")};
  const std::vector<Result> first = Apply(chain);
  ASSERT_EQ(first[1].code, Code::kInsufficientPoints);
  const std::vector<Result> retry = Apply(chain);
  EXPECT_EQ(retry[0].code, Code::kLinkedEventFailed);
  EXPECT_EQ(retry[1].code, Code::kInsufficientPoints);
  EXPECT_TRUE(retry[1].duplicate);
  EXPECT_EQ(retry[1].seq, first[1].seq);
  EXPECT_FALSE(FindBalance("acme", "alice").has_value());

  const Result alone = Apply1(Earn("acme", "alice", 100, "e1"));
  EXPECT_EQ(alone.code, Code::kOk);
  EXPECT_FALSE(alone.duplicate);
}

TEST_F(LinkedTest, ARequestOnlyFailureRollsBackTheChainAndRecordsNothing) {
  const std::vector<Result> r =
      Apply({Linked(Earn("acme", "alice", 100, "e1")), Redeem("acme", "alice", 0, "r1")});
  EXPECT_EQ(r[0].code, Code::kLinkedEventFailed);
  EXPECT_EQ(r[1].code, Code::kInvalidAmount);
  EXPECT_EQ(r[1].seq, 0u);
  EXPECT_EQ(MustHead().seq, 1u);
  EXPECT_FALSE(FindBalance("acme", "alice").has_value());
}

TEST_F(LinkedTest, ADuplicateOkCountsAsSuccessInAChain) {
  const Result earned = Apply1(Earn("acme", "alice", 100, "e1"));
  ASSERT_EQ(earned.code, Code::kOk);
  const std::vector<Result> r =
      Apply({Linked(Earn("acme", "alice", 100, "e1")), Redeem("acme", "alice", 60, "r1")});
  EXPECT_EQ(r[0].code, Code::kOk);
  EXPECT_TRUE(r[0].duplicate);
  EXPECT_EQ(r[0].seq, earned.seq);
  EXPECT_EQ(r[1].code, Code::kOk);
  EXPECT_EQ(Posted("acme", "alice"), 40u);
}

// SPEC §3 before §4: in a chain that fails, a member decided before the
// chain (ok or a recorded rejection, before or after the failing member)
// still answers its original outcome as a duplicate, never
// linked_event_failed: a POS must not read "failed" for points it gave.
TEST_F(LinkedTest, AMemberDecidedBeforeAFailingChainKeepsItsOutcome) {
  const Result earned = Apply1(Earn("acme", "alice", 100, "e1"));
  ASSERT_EQ(earned.code, Code::kOk);
  const Result refused = Apply1(Redeem("acme", "bob", 5, "r-bob"));
  ASSERT_EQ(refused.code, Code::kAccountNotFound);
  const std::vector<Result> r =
      Apply({Linked(Earn("acme", "alice", 100, "e1")), Linked(Earn("acme", "carol", 9, "e-new")),
             Linked(Redeem("acme", "alice", 500, "r-big")), Redeem("acme", "bob", 5, "r-bob")});
  EXPECT_EQ(r[0].code, Code::kOk);
  EXPECT_TRUE(r[0].duplicate);
  EXPECT_EQ(r[0].seq, earned.seq);
  EXPECT_EQ(r[1].code, Code::kLinkedEventFailed);  // decided by this chain: rolled back
  EXPECT_EQ(r[1].seq, 0u);
  EXPECT_EQ(r[2].code, Code::kInsufficientPoints);
  EXPECT_FALSE(r[2].duplicate);
  EXPECT_EQ(r[3].code, Code::kAccountNotFound);  // after the failing member: never reached
  EXPECT_TRUE(r[3].duplicate);
  EXPECT_EQ(r[3].seq, refused.seq);
  EXPECT_EQ(Posted("acme", "alice"), 100u);
  EXPECT_FALSE(FindBalance("acme", "carol").has_value());
  EXPECT_EQ(MustHead().seq, 4u);  // program, e1, r-bob, r-big's recorded rejection
}

// The failing member's id again, later in its chain: one attempt, one
// outcome. It answers as the recorded rejection's duplicate, not
// linked_event_failed (found in review, session 19).
TEST_F(LinkedTest, TheFailingMembersIdLaterInItsChainIsItsDuplicate) {
  const std::vector<Result> r =
      Apply({Linked(Redeem("acme", "alice", 5, "r-x")), Linked(Earn("acme", "bob", 9, "e-bob")),
             Redeem("acme", "alice", 5, "r-x")});
  EXPECT_EQ(r[0].code, Code::kAccountNotFound);
  EXPECT_FALSE(r[0].duplicate);
  EXPECT_EQ(r[1].code, Code::kLinkedEventFailed);
  EXPECT_EQ(r[2].code, Code::kAccountNotFound);
  EXPECT_TRUE(r[2].duplicate);
  EXPECT_EQ(r[2].seq, r[0].seq);
}

TEST_F(LinkedTest, AChainMaySpanProgramsToConvertPoints) {
  MustApply({ProgramCreate("hotel"), Earn("acme", "alice", 100, "e1")});
  std::vector<Result> r = Apply({Linked(Redeem("acme", "alice", 60, "convert-out")),
                                 Earn("hotel", "alice", 30, "convert-in")});
  EXPECT_EQ(r[0].code, Code::kOk);
  EXPECT_EQ(r[1].code, Code::kOk);
  EXPECT_EQ(Posted("acme", "alice"), 40u);
  EXPECT_EQ(Posted("hotel", "alice"), 30u);

  // Either side failing undoes the other side, in the other program.
  r = Apply({Linked(Redeem("acme", "alice", 1000, "convert-out-2")),
             Earn("hotel", "carol", 30, "convert-in-2")});
  EXPECT_EQ(r[0].code, Code::kInsufficientPoints);
  EXPECT_EQ(r[1].code, Code::kLinkedEventFailed);
  EXPECT_FALSE(FindBalance("hotel", "carol").has_value());

  Transaction unknown_partner = Earn("hotel", "alice", 30, "convert-in-3");
  unknown_partner.partner = "nobody";
  r = Apply({Linked(Redeem("acme", "alice", 10, "convert-out-3")), unknown_partner});
  EXPECT_EQ(r[0].code, Code::kLinkedEventFailed);
  EXPECT_EQ(r[1].code, Code::kPartnerNotFound);
  EXPECT_EQ(Posted("acme", "alice"), 40u);
  EXPECT_EQ(Posted("hotel", "alice"), 30u);
}

TEST_F(LinkedTest, ABatchEndingInsideAChainRejectsThatChainOnly) {
  std::vector<Result> r =
      Apply({Linked(Earn("acme", "alice", 1, "e1")), Earn("acme", "alice", 2, "e2"),
             Earn("acme", "alice", 4, "e3"), Linked(Earn("acme", "alice", 8, "e4")),
             Linked(Earn("acme", "alice", 16, "e5"))});
  EXPECT_EQ(r[0].code, Code::kOk);
  EXPECT_EQ(r[1].code, Code::kOk);
  EXPECT_EQ(r[2].code, Code::kOk);
  EXPECT_EQ(r[3].code, Code::kLinkedChainOpen);
  EXPECT_EQ(r[3].seq, 0u);
  EXPECT_EQ(r[4].code, Code::kLinkedChainOpen);
  EXPECT_EQ(r[4].seq, 0u);
  EXPECT_EQ(Posted("acme", "alice"), 7u);
  EXPECT_EQ(MustHead().seq, 4u);

  // A member of an open chain decided before keeps its outcome (SPEC §3
  // before §4, as in a chain that fails): e2 answers as the duplicate.
  const std::vector<Result> open = Apply({Linked(Earn("acme", "alice", 2, "e2")), Linked(Earn("acme", "alice", 8, "e4"))});
  EXPECT_EQ(open[0].code, Code::kOk);
  EXPECT_TRUE(open[0].duplicate);
  EXPECT_EQ(open[0].seq, r[1].seq);
  EXPECT_EQ(open[1].code, Code::kLinkedChainOpen);
  EXPECT_EQ(MustHead().seq, 4u);

  // Not recorded: the same ids are new when the chain is closed.
  r = Apply({Linked(Earn("acme", "alice", 8, "e4")), Earn("acme", "alice", 16, "e5")});
  EXPECT_EQ(r[0].code, Code::kOk);
  EXPECT_FALSE(r[0].duplicate);
  EXPECT_EQ(r[1].code, Code::kOk);
  EXPECT_EQ(Posted("acme", "alice"), 31u);
}

// A program created in a chain that fails does not exist afterwards, though
// the chain's own transactions used it: not later in the batch, nor in the
// group's next batch. Nothing the writer read inside the chain outlives
// its rollback.
TEST_F(GroupCommitTest, AProgramCreatedInAFailedChainIsNotFoundAfterIt) {
  absl::StatusOr<Ledger::Writer> writer = ledger_->BeginWrite();
  ASSERT_TRUE(writer.ok()) << writer.status();
  std::vector<Result> results;
  const std::vector<Transaction> first = {
      Linked(ProgramCreate("hotel")), Linked(Earn("hotel", "alice", 100, "h1")),
      Redeem("hotel", "alice", 500, "h2"), Earn("hotel", "bob", 7, "h3")};
  ASSERT_TRUE(writer->Apply(first, Auth::Admin(), &results).ok());
  EXPECT_EQ(results.at(0).code, Code::kLinkedEventFailed);
  EXPECT_EQ(results.at(1).code, Code::kLinkedEventFailed);
  EXPECT_EQ(results.at(2).code, Code::kInsufficientPoints);
  EXPECT_EQ(results.at(3).code, Code::kProgramNotFound);
  const std::vector<Transaction> second = {Earn("hotel", "carol", 9, "h4")};
  ASSERT_TRUE(writer->Apply(second, Auth::Admin(), &results).ok());
  EXPECT_EQ(results.at(0).code, Code::kProgramNotFound);
  ASSERT_TRUE(std::move(*writer).Commit().ok());
  EXPECT_EQ(Apply1(Earn("hotel", "dave", 1, "h5")).code, Code::kProgramNotFound);
}

TEST_F(GroupCommitTest, TwoBatchesInOneWriterCommitTogether) {
  absl::StatusOr<Ledger::Writer> writer = ledger_->BeginWrite();
  ASSERT_TRUE(writer.ok()) << writer.status();
  std::vector<Result> results;
  const std::vector<Transaction> first = {Earn("acme", "alice", 100, "e1")};
  const std::vector<Transaction> second = {Redeem("acme", "alice", 60, "r1")};
  ASSERT_TRUE(writer->Apply(first, Auth::Admin(), &results).ok());
  EXPECT_EQ(results.at(0).code, Code::kOk);
  EXPECT_EQ(results.at(0).seq, 2u);
  ASSERT_TRUE(writer->Apply(second, Auth::Admin(), &results).ok());
  EXPECT_EQ(results.at(0).code, Code::kOk);  // sees the first batch
  EXPECT_EQ(results.at(0).seq, 3u);
  EXPECT_EQ(writer->recorded_count(), 2u);

  // Readers see only committed state while the writer is open.
  EXPECT_EQ(MustHead().seq, 1u);
  EXPECT_FALSE(FindBalance("acme", "alice").has_value());

  ASSERT_TRUE(std::move(*writer).Commit().ok());
  EXPECT_EQ(MustHead().seq, 3u);
  EXPECT_EQ(Posted("acme", "alice"), 40u);
}

TEST_F(GroupCommitTest, AWriterDroppedWithoutCommitLeavesNothing) {
  {
    absl::StatusOr<Ledger::Writer> writer = ledger_->BeginWrite();
    ASSERT_TRUE(writer.ok()) << writer.status();
    std::vector<Result> results;
    const std::vector<Transaction> batch = {Earn("acme", "alice", 100, "e1"),
                                            Redeem("acme", "alice", 500, "r1")};
    ASSERT_TRUE(writer->Apply(batch, Auth::Admin(), &results).ok());
    EXPECT_EQ(results.at(0).code, Code::kOk);
    EXPECT_EQ(results.at(1).code, Code::kInsufficientPoints);
  }
  EXPECT_EQ(MustHead().seq, 1u);
  EXPECT_FALSE(FindBalance("acme", "alice").has_value());
  // Neither id was decided: both apply afresh, and the redeem now succeeds.
  const std::vector<Result> r =
      Apply({Earn("acme", "alice", 100, "e1"), Redeem("acme", "alice", 50, "r1")});
  EXPECT_EQ(r[0].code, Code::kOk);
  EXPECT_FALSE(r[0].duplicate);
  EXPECT_EQ(r[0].seq, 2u);
  EXPECT_EQ(r[1].code, Code::kOk);
  EXPECT_FALSE(r[1].duplicate);
}

}  // namespace
}  // namespace pointledger::ledger::testing
