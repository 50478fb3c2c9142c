// The hash chain and the books (SPEC §7), time (docs/semantics.md "Time"),
// history, and what survives closing and reopening the directory.
#include <string>

#include "tests/ledger/ledger_fixture.h"

namespace pointledger::ledger::testing {
namespace {

using ChainTest = LedgerTest;
using ReopenTest = AcmeTest;
using HistoryTest = AcmeTest;

// Every kind once, with a partner, a lock, a hold left pending and an expiry.
std::vector<Transaction> MixedWorkload() {
  Transaction partner_earn = Earn("acme", "alice", 80, "p-e1");
  partner_earn.partner = "hotelco";
  Transaction locked = Earn("acme", "dave", 15, "locked");
  locked.lock_days = 10;
  return {PartnerCreate("acme", "hotelco", 9000, 7000),
          PartnerPrice("acme", "hotelco", 9500, 7000, 0, "price-2"),
          Earn("acme", "alice", 500, "e1"),
          partner_earn,
          locked,
          EarnExpiring("acme", "erin", 40, kStartNs + kDayNs, "soon"),
          Redeem("acme", "alice", 50, "r1"),
          Referral("acme", "alice", "bob", 30, 20, "ref-bob"),
          Transfer("acme", "alice", "carol", 25, "t1"),
          Adjust("acme", "carol", 5, "adj-up"),
          Adjust("acme", "carol", -3, "adj-down"),
          Hold("acme", "alice", 40, 600, "hold-1"),
          Capture("acme", "hold-1", 30, "cap-1"),
          Hold("acme", "alice", 20, 600, "hold-2"),
          Release("acme", "hold-2", "rel-2"),
          Hold("acme", "bob", 10, 600, "hold-3"),  // left pending
          Reverse("acme", "r1", 20, "undo-r1"),
          Reverse("acme", "e1", 10, "undo-e1"),
          Redeem("acme", "alice", 100000, "too-much"),
          Settle("acme", "hotelco", 0, "settle-1"),
          AccountClose("acme", "carol", "close-carol")};
}

TEST_F(ChainTest, TheHeadStartsEmptyAndAdvancesWithEveryRecordedTransaction) {
  ChainHead head = MustHead();
  EXPECT_EQ(head.seq, 0u);
  EXPECT_EQ(head.hash, (std::array<uint8_t, 32>{}));

  const Result created = Apply1(ProgramCreate("acme"));
  head = MustHead();
  EXPECT_EQ(head.seq, 1u);
  EXPECT_EQ(head.timestamp_ns, created.timestamp_ns);
  EXPECT_NE(head.hash, (std::array<uint8_t, 32>{}));
  absl::StatusOr<std::optional<TxRecord>> rec = ledger_->GetTransactionBySeq(1);
  ASSERT_TRUE(rec.ok() && rec->has_value());
  EXPECT_EQ((*rec)->hash, head.hash);
  EXPECT_EQ((*rec)->tx, ProgramCreate("acme"));

  const std::array<uint8_t, 32> first_hash = head.hash;
  ASSERT_EQ(Apply1(Redeem("acme", "ghost", 1, "r1")).code, Code::kAccountNotFound);
  head = MustHead();
  EXPECT_EQ(head.seq, 2u);  // a recorded rejection is in the chain too
  EXPECT_NE(head.hash, first_hash);
  rec = ledger_->GetTransactionBySeq(2);
  ASSERT_TRUE(rec.ok() && rec->has_value());
  EXPECT_EQ((*rec)->result.code, Code::kAccountNotFound);
  EXPECT_TRUE((*rec)->postings.empty());

  const std::array<uint8_t, 32> second_hash = head.hash;
  ASSERT_EQ(Apply1(Earn("acme", "alice", 0, "e0")).code, Code::kInvalidAmount);
  head = MustHead();
  EXPECT_EQ(head.seq, 2u);
  EXPECT_EQ(head.hash, second_hash);
}

TEST_F(ChainTest, TimestampsStayStrictlyIncreasingWhenTheClockStepsBack) {
  const Result first = Apply1(ProgramCreate("acme"));
  clock_.Advance(-kDayNs);
  const Result second = Apply1(Earn("acme", "alice", 10, "e1"));
  EXPECT_EQ(second.timestamp_ns, first.timestamp_ns + 1);
  // What is not recorded does not use up a timestamp.
  ASSERT_EQ(Apply1(Earn("acme", "alice", 0, "bad")).code, Code::kInvalidAmount);
  EXPECT_EQ(Apply1(Earn("acme", "alice", 10, "e1b")).timestamp_ns, first.timestamp_ns + 2);
  clock_.Set(first.timestamp_ns + 1000);
  const Result third = Apply1(Earn("acme", "alice", 10, "e2"));
  EXPECT_EQ(third.timestamp_ns, first.timestamp_ns + 1000);
}

TEST_F(ChainTest, AHealthyLedgerVerifiesAndBalances) {
  ASSERT_EQ(Apply1(ProgramCreate("acme")).code, Code::kOk);
  const std::vector<Transaction> workload = MixedWorkload();
  const std::vector<Result> results = Apply(workload);
  for (size_t i = 0; i + 3 < results.size(); ++i) {
    EXPECT_EQ(results[i].code, Code::kOk) << KindName(workload[i].kind) << " " << i;
  }
  clock_.Advance(2 * kDayNs);
  const std::vector<Transaction> due = MustCollectDue(clock_.NowNs());
  ASSERT_EQ(due.size(), 2u);  // erin's lot and bob's hold
  for (const Result& r : Apply(due)) EXPECT_EQ(r.code, Code::kOk);

  const std::vector<Discrepancy> chain = MustVerifyChain();
  EXPECT_TRUE(chain.empty()) << Describe(chain);
  const std::vector<Discrepancy> books = MustTrialBalance();
  EXPECT_TRUE(books.empty()) << Describe(books);
  EXPECT_EQ(MustHead().seq, 1 + workload.size() + 2);
}

TEST_F(ReopenTest, ReopeningTheDirectoryKeepsBalancesHeadAndDecidedIds) {
  const std::vector<Transaction> workload = MixedWorkload();
  const std::vector<Result> results = Apply(workload);
  const ChainHead head = MustHead();
  const Balance alice = MustBalance("acme", "alice");
  const Balance bob = MustBalance("acme", "bob");
  const std::vector<LotInfo> lots = MustLots("acme", "alice");

  Reopen();
  EXPECT_EQ(MustHead().hash, head.hash);
  EXPECT_EQ(MustHead().seq, head.seq);
  const Balance alice_after = MustBalance("acme", "alice");
  EXPECT_EQ(alice_after.posted, alice.posted);
  EXPECT_EQ(alice_after.available, alice.available);
  EXPECT_EQ(MustBalance("acme", "bob").pending, bob.pending);
  EXPECT_TRUE(MustBalance("acme", "carol").closed);
  EXPECT_EQ(MustLots("acme", "alice").size(), lots.size());

  // Every id is still decided, with its original outcome.
  const std::vector<Result> again = Apply(workload);
  for (size_t i = 0; i < again.size(); ++i) {
    EXPECT_TRUE(again[i].duplicate) << i;
    EXPECT_EQ(again[i].code, results[i].code) << i;
    EXPECT_EQ(again[i].seq, results[i].seq) << i;
    EXPECT_EQ(again[i].timestamp_ns, results[i].timestamp_ns) << i;
  }
  // And the ledger goes on where it stopped: the pending hold is capturable.
  const Result captured = Apply1(Capture("acme", "hold-3", 0, "cap-3"));
  EXPECT_EQ(captured.code, Code::kOk);
  EXPECT_EQ(captured.seq, head.seq + 1);
  EXPECT_GT(captured.timestamp_ns, head.timestamp_ns);
  EXPECT_EQ(MustBalance("acme", "bob").pending, 0u);
}

TEST_F(HistoryTest, HistoryListsAMembersChangesNewestFirst) {
  const std::vector<Result> r =
      Apply({Earn("acme", "alice", 100, "e1"), Redeem("acme", "alice", 30, "r1"),
             Earn("acme", "bob", 5, "e2"), Hold("acme", "alice", 20, 300, "h1")});
  absl::StatusOr<std::vector<HistoryEntry>> history = ledger_->GetHistory("acme", "alice", 10, 0);
  ASSERT_TRUE(history.ok()) << history.status();
  ASSERT_EQ(history->size(), 3u);
  EXPECT_EQ((*history)[0].seq, r[3].seq);
  EXPECT_EQ((*history)[0].kind, Kind::kHold);
  EXPECT_EQ((*history)[0].points, -20);
  EXPECT_EQ((*history)[1].kind, Kind::kRedeem);
  EXPECT_EQ((*history)[1].points, -30);
  EXPECT_EQ((*history)[2].id, TxIdFromKey("acme", "e1"));
  EXPECT_EQ((*history)[2].points, 100);
  EXPECT_EQ((*history)[2].timestamp_ns, r[0].timestamp_ns);

  history = ledger_->GetHistory("acme", "alice", 1, r[1].seq);  // a page before the redeem
  ASSERT_TRUE(history.ok()) << history.status();
  ASSERT_EQ(history->size(), 1u);
  EXPECT_EQ((*history)[0].seq, r[0].seq);
}

}  // namespace
}  // namespace pointledger::ledger::testing
