// reverse (SPEC §2, docs/semantics.md "Reversals"): whole and partial,
// clawback_partial, and the mirror of each reversible kind.
#include <string>

#include "tests/ledger/ledger_fixture.h"

namespace pointledger::ledger::testing {
namespace {

using ReverseTest = AcmeTest;

Transaction Clawback(Transaction t) {
  t.clawback_partial = true;
  return t;
}

TEST_F(ReverseTest, WholeEarnReversalReturnsThePointsToIssuance) {
  ASSERT_EQ(Apply1(Earn("acme", "alice", 100, "order-1")).code, Code::kOk);
  const Result r = Apply1(Reverse("acme", "order-1", 0, "refund-1"));
  EXPECT_EQ(r.code, Code::kOk);
  EXPECT_EQ(r.points, 100u);
  EXPECT_EQ(Posted("acme", "alice"), 0u);
  EXPECT_TRUE(MustLots("acme", "alice").empty());
  const AccountInfo issuance = MustSystemAccount("acme", "issuance");
  EXPECT_EQ(issuance.debits_posted, 100u);
  EXPECT_EQ(issuance.credits_posted, 100u);

  const Result again = Apply1(Reverse("acme", "order-1", 0, "refund-2"));
  EXPECT_EQ(again.code, Code::kReversalExceedsOriginal);
  EXPECT_EQ(again.seq, 4u);  // recorded
}

TEST_F(ReverseTest, PartialReversalsNeverSumPastTheOriginal) {
  ASSERT_EQ(Apply1(Earn("acme", "alice", 100, "order-1")).code, Code::kOk);
  Result r = Apply1(Reverse("acme", "order-1", 40, "refund-1"));
  EXPECT_EQ(r.code, Code::kOk);
  EXPECT_EQ(r.points, 40u);
  EXPECT_EQ(Posted("acme", "alice"), 60u);

  r = Apply1(Reverse("acme", "order-1", 61, "refund-2"));
  EXPECT_EQ(r.code, Code::kReversalExceedsOriginal);
  EXPECT_EQ(Posted("acme", "alice"), 60u);

  r = Apply1(Reverse("acme", "order-1", 0, "refund-3"));  // 0: the rest
  EXPECT_EQ(r.code, Code::kOk);
  EXPECT_EQ(r.points, 60u);
  EXPECT_EQ(Posted("acme", "alice"), 0u);

  r = Apply1(Reverse("acme", "order-1", 1, "refund-4"));
  EXPECT_EQ(r.code, Code::kReversalExceedsOriginal);
}

TEST_F(ReverseTest, EarnReversalTakesTheEarnsOwnLotFirstThenOtherLots) {
  MustApply({EarnExpiring("acme", "alice", 50, kStartNs + 10 * kDayNs, "a"),  // seq 2
             Earn("acme", "alice", 100, "b"),                                 // seq 3
             Redeem("acme", "alice", 80, "r1"),  // a: 50 (soonest), b: 30
             Earn("acme", "alice", 40, "c")});   // seq 5
  ASSERT_EQ(Apply1(Reverse("acme", "b", 0, "refund-b")).code, Code::kOk);
  // b's own 70 first, then 30 of c (FIFO would also have taken c, but not b first).
  const std::vector<LotInfo> lots = MustLots("acme", "alice");
  ASSERT_EQ(lots.size(), 1u);
  EXPECT_EQ(lots[0].source_seq, 5u);
  EXPECT_EQ(lots[0].remaining, 10u);
}

TEST_F(ReverseTest, EarnReversalPrefersItsOwnLotOverSoonerExpiringOnes) {
  MustApply({EarnExpiring("acme", "alice", 50, kStartNs + 10 * kDayNs, "a"),
             Earn("acme", "alice", 100, "b")});
  ASSERT_EQ(Apply1(Reverse("acme", "b", 30, "refund-b")).code, Code::kOk);
  const std::vector<LotInfo> lots = MustLots("acme", "alice");
  ASSERT_EQ(lots.size(), 2u);
  EXPECT_EQ(lots[0].remaining, 50u);  // a untouched
  EXPECT_EQ(lots[1].remaining, 70u);
}

TEST_F(ReverseTest, EarnReversalCountsItsOwnLockedLot) {
  ASSERT_EQ(Apply1(ProgramCreate("locky", 365, /*lock_days=*/30)).code, Code::kOk);
  ASSERT_EQ(Apply1(Earn("locky", "alice", 100, "order-1")).code, Code::kOk);
  ASSERT_EQ(Available("locky", "alice"), 0u);
  const Result r = Apply1(Reverse("locky", "order-1", 0, "refund-1"));
  EXPECT_EQ(r.code, Code::kOk);
  EXPECT_EQ(r.points, 100u);
  EXPECT_EQ(Posted("locky", "alice"), 0u);
}

TEST_F(ReverseTest, EarnReversalCountsItsOwnExpiredButUnsweptLot) {
  ASSERT_EQ(Apply1(EarnExpiring("acme", "alice", 100, kStartNs + kDayNs, "order-1")).code,
            Code::kOk);
  clock_.Advance(2 * kDayNs);
  const Result r = Apply1(Reverse("acme", "order-1", 0, "refund-1"));
  EXPECT_EQ(r.code, Code::kOk);
  EXPECT_EQ(r.points, 100u);
  EXPECT_TRUE(MustLots("acme", "alice").empty());
}

TEST_F(ReverseTest, EarnReversalBeyondWhatIsLeftIsInsufficientPoints) {
  MustApply({Earn("acme", "alice", 100, "order-1"), Redeem("acme", "alice", 80, "r1")});
  const Result r = Apply1(Reverse("acme", "order-1", 0, "refund-1"));
  EXPECT_EQ(r.code, Code::kInsufficientPoints);
  EXPECT_EQ(r.seq, 4u);
  EXPECT_EQ(Posted("acme", "alice"), 20u);
}

TEST_F(ReverseTest, ClawbackPartialTakesWhatThereIsAndReportsIt) {
  MustApply({Earn("acme", "alice", 100, "order-1"), Redeem("acme", "alice", 80, "r1")});
  Result r = Apply1(Clawback(Reverse("acme", "order-1", 0, "refund-1")));
  EXPECT_EQ(r.code, Code::kOk);
  EXPECT_EQ(r.points, 20u);
  EXPECT_EQ(Posted("acme", "alice"), 0u);
  EXPECT_EQ(MustSystemAccount("acme", "issuance").credits_posted, 20u);

  // Only what was taken counts against the original: 80 may still be reversed.
  r = Apply1(Clawback(Reverse("acme", "order-1", 80, "refund-2")));
  EXPECT_EQ(r.code, Code::kOk);
  EXPECT_EQ(r.points, 0u);
}

TEST_F(ReverseTest, RedeemReversalGivesLotsBackWithTheConsumedExpiry) {
  const int64_t e1 = kStartNs + 30 * kDayNs;
  const int64_t e2 = kStartNs + 60 * kDayNs;
  MustApply({EarnExpiring("acme", "alice", 10, e1, "a"), EarnExpiring("acme", "alice", 10, e2, "b"),
             Redeem("acme", "alice", 15, "r1")});         // a: 10, b: 5
  Result r = Apply1(Reverse("acme", "r1", 5, "undo-1"));  // the last consumed comes back first
  ASSERT_EQ(r.code, Code::kOk);
  EXPECT_EQ(r.points, 5u);
  Balance b = MustBalance("acme", "alice");
  ASSERT_EQ(b.expiring.size(), 1u);
  EXPECT_EQ(b.expiring[0].expires_at_ns, e2);
  EXPECT_EQ(b.expiring[0].points, 10u);

  r = Apply1(Reverse("acme", "r1", 0, "undo-2"));
  ASSERT_EQ(r.code, Code::kOk);
  EXPECT_EQ(r.points, 10u);
  b = MustBalance("acme", "alice");
  EXPECT_EQ(b.available, 20u);
  ASSERT_EQ(b.expiring.size(), 2u);
  EXPECT_EQ(b.expiring[0].expires_at_ns, e1);
  EXPECT_EQ(b.expiring[0].points, 10u);
  EXPECT_EQ(b.expiring[1].expires_at_ns, e2);
  EXPECT_EQ(b.expiring[1].points, 10u);
  const AccountInfo redemption = MustSystemAccount("acme", "redemption");
  EXPECT_EQ(redemption.credits_posted, 15u);
  EXPECT_EQ(redemption.debits_posted, 15u);

  EXPECT_EQ(Apply1(Reverse("acme", "r1", 1, "undo-3")).code, Code::kReversalExceedsOriginal);
}

TEST_F(ReverseTest, RedeemReversalLotsAreNotLocked) {
  ASSERT_EQ(Apply1(ProgramCreate("locky", 365, /*lock_days=*/30)).code, Code::kOk);
  Transaction unlocked = Earn("locky", "alice", 100, "e1");
  unlocked.lock_days = 0;
  MustApply({unlocked, Redeem("locky", "alice", 40, "r1"), Reverse("locky", "r1", 0, "undo-r1")});
  EXPECT_EQ(Available("locky", "alice"), 100u);
}

TEST_F(ReverseTest, TransferReversalMovesPointsBackWithTheirExpiry) {
  const int64_t e1 = kStartNs + 30 * kDayNs;
  MustApply({EarnExpiring("acme", "alice", 30, e1, "e1"),
             Transfer("acme", "alice", "carol", 20, "gift-1")});
  const Result r = Apply1(Reverse("acme", "gift-1", 0, "ungift-1"));
  ASSERT_EQ(r.code, Code::kOk);
  EXPECT_EQ(r.points, 20u);
  EXPECT_EQ(Posted("acme", "carol"), 0u);
  const Balance alice = MustBalance("acme", "alice");
  EXPECT_EQ(alice.available, 30u);
  ASSERT_EQ(alice.expiring.size(), 1u);
  EXPECT_EQ(alice.expiring[0].expires_at_ns, e1);
}

TEST_F(ReverseTest, TransferReversalNeedsTheReceiversPointsUnlessClawbackPartial) {
  MustApply({Earn("acme", "alice", 30, "e1"), Transfer("acme", "alice", "carol", 20, "gift-1"),
             Redeem("acme", "carol", 15, "r1")});
  Result r = Apply1(Reverse("acme", "gift-1", 0, "ungift-1"));
  EXPECT_EQ(r.code, Code::kInsufficientPoints);
  EXPECT_EQ(Posted("acme", "carol"), 5u);

  r = Apply1(Clawback(Reverse("acme", "gift-1", 0, "ungift-2")));
  EXPECT_EQ(r.code, Code::kOk);
  EXPECT_EQ(r.points, 5u);
  EXPECT_EQ(Posted("acme", "carol"), 0u);
  EXPECT_EQ(Posted("acme", "alice"), 15u);
}

// A clawback counts what it took, not what it asked: the rest of the
// transfer stays reversible once the receiver has points again (found by
// mutation testing, session 21: only the model test caught the count of
// the points asked).
TEST_F(ReverseTest, ATransferClawbackCountsWhatItTook) {
  MustApply({Earn("acme", "alice", 30, "e1"), Transfer("acme", "alice", "carol", 20, "gift-1"),
             Redeem("acme", "carol", 15, "r1")});
  Result r = Apply1(Clawback(Reverse("acme", "gift-1", 0, "ungift-1")));
  ASSERT_EQ(r.code, Code::kOk);
  EXPECT_EQ(r.points, 5u);
  MustApply({Earn("acme", "carol", 100, "e2")});
  r = Apply1(Reverse("acme", "gift-1", 15, "ungift-2"));
  EXPECT_EQ(r.code, Code::kOk);
  EXPECT_EQ(r.points, 15u);
  EXPECT_EQ(Apply1(Reverse("acme", "gift-1", 1, "ungift-3")).code, Code::kReversalExceedsOriginal);
  EXPECT_EQ(Posted("acme", "alice"), 30u);
}

// Points reversed back to a closed member are refused, for a redeem (the
// member gets its points back) and a transfer (the sender does), and
// recorded (found by mutation testing, session 21: only the model test
// caught either).
TEST_F(ReverseTest, ReversingIntoAClosedMemberIsAccountClosed) {
  MustApply({Earn("acme", "alice", 100, "e1"), Redeem("acme", "alice", 30, "r1"),
             Transfer("acme", "alice", "carol", 20, "gift-1"), AccountClose("acme", "alice", "close")});
  for (const Transaction& t : {Reverse("acme", "r1", 0, "unredeem"), Reverse("acme", "gift-1", 0, "ungift")}) {
    const Result r = Apply1(t);
    EXPECT_EQ(r.code, Code::kAccountClosed);
    EXPECT_NE(r.seq, 0u);
  }
  EXPECT_EQ(Posted("acme", "carol"), 20u);
  EXPECT_EQ(MustSystemAccount("acme", "redemption").credits_posted, 30u);
}

TEST_F(ReverseTest, CapturedHoldReversalGivesTheCapturedPointsBack) {
  MustApply({Earn("acme", "alice", 100, "e1"), Hold("acme", "alice", 40, 300, "hold-5"),
             Capture("acme", "hold-5", 30, "cap-5")});
  ASSERT_EQ(Posted("acme", "alice"), 70u);
  Result r = Apply1(Reverse("acme", "cap-5", 0, "uncap-5"));
  EXPECT_EQ(r.code, Code::kOk);
  EXPECT_EQ(r.points, 30u);
  EXPECT_EQ(Available("acme", "alice"), 100u);
  EXPECT_EQ(MustSystemAccount("acme", "redemption").debits_posted, 30u);

  r = Apply1(Reverse("acme", "cap-5", 0, "uncap-6"));
  EXPECT_EQ(r.code, Code::kReversalExceedsOriginal);
}

// SPEC §2: "captured holds are reversible". Named by the hold's own id
// (record format 5; found by a semantics review, session 19), the reversal
// is its capture's: what it gave back counts for both ids.
TEST_F(ReverseTest, ACapturedHoldIsReversibleByItsOwnId) {
  MustApply({Earn("acme", "alice", 100, "e1"), Hold("acme", "alice", 40, 300, "hold-5"),
             Capture("acme", "hold-5", 30, "cap-5")});
  Result r = Apply1(Reverse("acme", "hold-5", 10, "unhold-1"));
  ASSERT_EQ(r.code, Code::kOk);
  EXPECT_EQ(r.points, 10u);
  EXPECT_EQ(Available("acme", "alice"), 80u);
  EXPECT_EQ(MustSystemAccount("acme", "redemption").debits_posted, 10u);
  // One count for both names: 20 of the capture's 30 are left.
  EXPECT_EQ(Apply1(Reverse("acme", "cap-5", 21, "uncap-1")).code, Code::kReversalExceedsOriginal);
  r = Apply1(Reverse("acme", "cap-5", 15, "uncap-2"));
  ASSERT_EQ(r.code, Code::kOk);
  r = Apply1(Reverse("acme", "hold-5", 0, "unhold-2"));  // the rest
  ASSERT_EQ(r.code, Code::kOk);
  EXPECT_EQ(r.points, 5u);
  EXPECT_EQ(Available("acme", "alice"), 100u);
  EXPECT_EQ(Apply1(Reverse("acme", "hold-5", 0, "unhold-3")).code, Code::kReversalExceedsOriginal);
  EXPECT_TRUE(MustTrialBalance().empty());
}

TEST_F(ReverseTest, AHoldNotCapturedIsNotReversible) {
  MustApply({Earn("acme", "alice", 100, "e1"), Hold("acme", "alice", 40, 300, "pending"),
             Hold("acme", "alice", 10, 300, "released"), Release("acme", "released", "rel-1")});
  EXPECT_EQ(Apply1(Reverse("acme", "pending", 0, "r1")).code, Code::kOriginalNotReversible);
  EXPECT_EQ(Apply1(Reverse("acme", "released", 0, "r2")).code, Code::kOriginalNotReversible);
  EXPECT_EQ(Apply1(Reverse("acme", "rel-1", 0, "r3")).code, Code::kOriginalNotReversible);
  // Recorded (SPEC §3): capturing the hold later does not turn r1 into a success.
  ASSERT_EQ(Apply1(Capture("acme", "pending", 0, "cap")).code, Code::kOk);
  Result again = Apply1(Reverse("acme", "pending", 0, "r1"));
  EXPECT_EQ(again.code, Code::kOriginalNotReversible);
  EXPECT_TRUE(again.duplicate);
  EXPECT_EQ(Apply1(Reverse("acme", "pending", 0, "r4")).code, Code::kOk);
}

// Before format 5 a hold's own id was not reversible, and a hold captured
// then carries no capture seq: such a ledger replays and audits as it was
// decided, and its holds stay reversible through their captures.
TEST_F(ReverseTest, AFormatFourHoldKeepsItsRule) {
  record_format_ = 4;
  Reopen();
  MustApply({Earn("acme", "alice", 100, "e1"), Hold("acme", "alice", 40, 300, "hold-5"),
             Capture("acme", "hold-5", 30, "cap-5")});
  EXPECT_EQ(Apply1(Reverse("acme", "hold-5", 0, "unhold-1")).code, Code::kOriginalNotReversible);
  record_format_ = kRecordFormat;
  Reopen();
  absl::StatusOr<AuditReport> audit = ledger_->Audit();
  ASSERT_TRUE(audit.ok()) << audit.status();
  EXPECT_EQ(audit->discrepancy_count, 0u);
  EXPECT_EQ(Apply1(Reverse("acme", "hold-5", 0, "unhold-2")).code, Code::kOriginalNotReversible);
  EXPECT_EQ(Apply1(Reverse("acme", "cap-5", 0, "uncap")).code, Code::kOk);
}

// SPEC §2: an earn's reversal takes "that earn's own lot first". Points a
// hold took from that lot and gave back are in it again (record format 8;
// found by a conformance test, session 33: they came back as a new lot of
// the release's, and the reversal took a sooner-expiring earn's instead).
TEST_F(ReverseTest, AnEarnsPointsHeldAndGivenBackAreStillItsOwnLot) {
  MustApply({EarnExpiring("acme", "alice", 100, kStartNs + 90 * kDayNs, "b"),  // seq 2
             Hold("acme", "alice", 60, 300, "h"),                             // 60 of b
             EarnExpiring("acme", "alice", 100, kStartNs + 60 * kDayNs, "d"),  // seq 4, sooner
             Release("acme", "h", "rel")});
  std::vector<LotInfo> lots = MustLots("acme", "alice");
  ASSERT_EQ(lots.size(), 2u);  // by expiry: d, then b whole again
  EXPECT_EQ(lots[1].source_seq, 2u);
  EXPECT_EQ(lots[1].remaining, 100u);
  const Result r = Apply1(Reverse("acme", "b", 0, "refund-b"));
  ASSERT_EQ(r.code, Code::kOk);
  EXPECT_EQ(r.points, 100u);
  lots = MustLots("acme", "alice");
  ASSERT_EQ(lots.size(), 1u);
  EXPECT_EQ(lots[0].source_seq, 4u);  // d untouched
  EXPECT_EQ(lots[0].remaining, 100u);

  // A capture's unused rest goes back alike, and so does a timeout.
  MustApply({EarnExpiring("acme", "bob", 100, kStartNs + 90 * kDayNs, "e"),
             Hold("acme", "bob", 60, 300, "h2"), Capture("acme", "h2", 20, "cap"),
             Hold("acme", "bob", 30, 60, "h3")});
  const uint64_t e_seq = FindTx("acme", "e")->seq;
  clock_.Advance(61 * kNanosPerSecond);
  const std::vector<Transaction> due = MustCollectDue(clock_.NowNs());
  ASSERT_EQ(due.size(), 1u);
  ASSERT_EQ(Apply1(due[0]).code, Code::kOk);
  lots = MustLots("acme", "bob");
  ASSERT_EQ(lots.size(), 1u);
  EXPECT_EQ(lots[0].source_seq, e_seq);
  EXPECT_EQ(lots[0].remaining, 80u);
  ExpectAuditClean();
  Reopen();
  EXPECT_EQ(MustLots("acme", "bob")[0].remaining, 80u);
}

// A hold that emptied the lot makes it again under its own key (format 8;
// found in review, session 33: a new lot of the release's left the
// reversal taking a sooner-expiring earn's points, and holds empty every
// lot but the last they take from).
TEST_F(ReverseTest, AHoldThatEmptiedALotGivesItBackWhole) {
  MustApply({EarnExpiring("acme", "alice", 100, kStartNs + 90 * kDayNs, "b"),  // seq 2
             Hold("acme", "alice", 100, 300, "h"),
             EarnExpiring("acme", "alice", 100, kStartNs + 60 * kDayNs, "d"),  // seq 4
             Release("acme", "h", "rel")});
  std::vector<LotInfo> lots = MustLots("acme", "alice");
  ASSERT_EQ(lots.size(), 2u);
  EXPECT_EQ(lots[1].source_seq, 2u);
  EXPECT_EQ(lots[1].remaining, 100u);
  EXPECT_EQ(lots[1].locked_until_ns, 0);
  ASSERT_EQ(Apply1(Reverse("acme", "b", 0, "refund-b")).code, Code::kOk);
  lots = MustLots("acme", "alice");
  ASSERT_EQ(lots.size(), 1u);
  EXPECT_EQ(lots[0].source_seq, 4u);  // d untouched
  EXPECT_EQ(lots[0].remaining, 100u);
  ExpectAuditClean();
}

// Format 7 keeps its rule: a hold it recorded gives back a new lot, also
// when a format 8 binary releases it (the hold has no sources), and the
// rebuild agrees.
TEST_F(ReverseTest, AFormatSevenHoldGivesBackANewLot) {
  record_format_ = 7;
  Reopen();
  MustApply({EarnExpiring("acme", "alice", 100, kStartNs + 90 * kDayNs, "b"),
             Hold("acme", "alice", 60, 300, "h"),
             Hold("acme", "alice", 10, 300, "h-later"),
             EarnExpiring("acme", "alice", 100, kStartNs + 60 * kDayNs, "d"),
             Release("acme", "h", "rel")});
  const uint64_t rel_seq = FindTx("acme", "rel")->seq;
  ASSERT_EQ(MustLots("acme", "alice").size(), 3u);
  record_format_ = kRecordFormat;
  Reopen();
  ASSERT_EQ(Apply1(Release("acme", "h-later", "rel-later")).code, Code::kOk);
  const uint64_t later_seq = FindTx("acme", "rel-later")->seq;
  const std::vector<LotInfo> lots = MustLots("acme", "alice");
  ASSERT_EQ(lots.size(), 4u);  // d, b's 30, rel's 60, rel-later's 10
  EXPECT_EQ(lots[2].source_seq, rel_seq);
  EXPECT_EQ(lots[3].source_seq, later_seq);
  ExpectAuditClean();
}

// SPEC §2: reverse "whole or for points of it", a referral too (record
// format 3; found in review, session 17): the referrer's points go back
// first, then the referee's, and never more than the referral gave.
TEST_F(ReverseTest, ReferralReversesInPartReferrerFirst) {
  ASSERT_EQ(Apply1(Referral("acme", "alice", "bob", 500, 250, "ref-bob")).code, Code::kOk);
  Result r = Apply1(Reverse("acme", "ref-bob", 900, "unref-0"));
  EXPECT_EQ(r.code, Code::kReversalExceedsOriginal);  // more than the 750 it gave

  r = Apply1(Reverse("acme", "ref-bob", 400, "unref-1"));  // the referrer's only
  ASSERT_EQ(r.code, Code::kOk);
  EXPECT_EQ(r.points, 400u);
  EXPECT_EQ(Posted("acme", "alice"), 100u);
  EXPECT_EQ(Posted("acme", "bob"), 250u);

  r = Apply1(Reverse("acme", "ref-bob", 150, "unref-2"));  // 100 of alice's, 50 of bob's
  ASSERT_EQ(r.code, Code::kOk);
  EXPECT_EQ(r.points, 150u);
  EXPECT_EQ(Posted("acme", "alice"), 0u);
  EXPECT_EQ(Posted("acme", "bob"), 200u);

  EXPECT_EQ(Apply1(Reverse("acme", "ref-bob", 201, "unref-3")).code, Code::kReversalExceedsOriginal);
  r = Apply1(Reverse("acme", "ref-bob", 0, "unref-4"));  // the rest: bob's 200
  ASSERT_EQ(r.code, Code::kOk);
  EXPECT_EQ(r.points, 200u);
  EXPECT_EQ(Posted("acme", "bob"), 0u);
  EXPECT_EQ(MustSystemAccount("acme", "referral").credits_posted, 750u);
  EXPECT_EQ(Apply1(Reverse("acme", "ref-bob", 0, "unref-5")).code, Code::kReversalExceedsOriginal);
  // The referee stays rewarded.
  EXPECT_EQ(Apply1(Referral("acme", "carol", "bob", 5, 5, "ref-bob-2")).code,
            Code::kReferralAlreadyRewarded);
  EXPECT_TRUE(MustTrialBalance().empty());
}

// A leg this reversal takes nothing from may be closed; one it takes from
// may not.
TEST_F(ReverseTest, ReferralInPartNeedsOnlyTheLegsItTakesFrom) {
  MustApply({Referral("acme", "alice", "bob", 500, 250, "ref-bob"), AccountClose("acme", "bob", "close-bob")});
  EXPECT_EQ(Apply1(Reverse("acme", "ref-bob", 500, "unref-1")).code, Code::kOk);
  EXPECT_EQ(Posted("acme", "alice"), 0u);
  EXPECT_EQ(Apply1(Reverse("acme", "ref-bob", 1, "unref-2")).code, Code::kAccountClosed);
}

// Before record format 3 a referral was reversed whole, once: a ledger
// decided then replays and audits as it was decided.
TEST_F(ReverseTest, AFormatTwoReferralIsReversedWholeOnly) {
  record_format_ = 2;
  Reopen();
  MustApply({ProgramCreate("old"), Referral("old", "alice", "bob", 500, 250, "ref-bob")});
  EXPECT_EQ(Apply1(Reverse("old", "ref-bob", 500, "unref-1")).code, Code::kOriginalNotReversible);
  Result r = Apply1(Reverse("old", "ref-bob", 0, "unref-2"));
  ASSERT_EQ(r.code, Code::kOk);
  EXPECT_EQ(r.points, 750u);
  EXPECT_EQ(Apply1(Reverse("old", "ref-bob", 0, "unref-3")).code, Code::kReversalExceedsOriginal);
  record_format_ = kRecordFormat;
  Reopen();
  absl::StatusOr<AuditReport> audit = ledger_->Audit();
  ASSERT_TRUE(audit.ok()) << audit.status();
  EXPECT_EQ(audit->discrepancy_count, 0u);
}

TEST_F(ReverseTest, ReferralReversalChecksBothLegsTogether) {
  MustApply(
      {Referral("acme", "alice", "bob", 500, 250, "ref-bob"), Redeem("acme", "bob", 200, "r1")});
  Result r = Apply1(Reverse("acme", "ref-bob", 0, "unref-1"));
  EXPECT_EQ(r.code, Code::kInsufficientPoints);
  EXPECT_EQ(Posted("acme", "alice"), 500u);  // the referrer's leg was not taken alone

  Transaction clawback = Reverse("acme", "ref-bob", 0, "unref-2");
  clawback.clawback_partial = true;
  r = Apply1(clawback);
  EXPECT_EQ(r.code, Code::kOk);
  EXPECT_EQ(r.points, 550u);
  EXPECT_EQ(Posted("acme", "alice"), 0u);
  EXPECT_EQ(Posted("acme", "bob"), 0u);
  // The 200 of bob's the clawback could not take stay reversible (record
  // format 4): only what was taken counts, as for an earn.
  EXPECT_EQ(Apply1(Reverse("acme", "ref-bob", 0, "unref-3")).code, Code::kInsufficientPoints);
  ASSERT_EQ(Apply1(Earn("acme", "bob", 300, "e-bob")).code, Code::kOk);
  r = Apply1(Reverse("acme", "ref-bob", 0, "unref-4"));
  ASSERT_EQ(r.code, Code::kOk);
  EXPECT_EQ(r.points, 200u);
  EXPECT_EQ(Posted("acme", "bob"), 100u);
  EXPECT_EQ(MustSystemAccount("acme", "referral").credits_posted, 750u);
  EXPECT_EQ(Apply1(Reverse("acme", "ref-bob", 0, "unref-5")).code, Code::kReversalExceedsOriginal);
}

// Found in review (session 18): a clawback that took nothing from the
// referrer used up the referrer's share, so the next reversal went to the
// referee and the referrer's points could never be taken back.
TEST_F(ReverseTest, AClawbackCountsWhatEachLegGaveBack) {
  MustApply({Referral("acme", "al", "bo", 500, 250, "ref-1"), Redeem("acme", "al", 500, "spent")});
  Result r = Apply1(Clawback(Reverse("acme", "ref-1", 500, "unref-1")));
  ASSERT_EQ(r.code, Code::kOk);
  EXPECT_EQ(r.points, 0u);
  ASSERT_EQ(Apply1(Earn("acme", "al", 1000, "e-al")).code, Code::kOk);
  r = Apply1(Reverse("acme", "ref-1", 1, "unref-2"));
  ASSERT_EQ(r.code, Code::kOk);
  EXPECT_EQ(Posted("acme", "al"), 999u);  // from the referrer's leg, still open
  EXPECT_EQ(Posted("acme", "bo"), 250u);
  r = Apply1(Reverse("acme", "ref-1", 0, "unref-3"));  // the rest: 499 of al's, 250 of bo's
  ASSERT_EQ(r.code, Code::kOk);
  EXPECT_EQ(r.points, 749u);
  EXPECT_EQ(Posted("acme", "al"), 500u);
  EXPECT_EQ(Posted("acme", "bo"), 0u);
  EXPECT_EQ(Apply1(Reverse("acme", "ref-1", 0, "unref-4")).code, Code::kReversalExceedsOriginal);
}

// Found in review (session 18): with the referrer's untaken points still
// asked for first, a referrer closed after a clawback kept every later
// reversal at account_closed and the referee's points out of reach. With
// clawback_partial a closed leg gives nothing and the reversal goes on.
TEST_F(ReverseTest, AClosedReferrerDoesNotKeepTheRefereesPointsOutOfReach) {
  MustApply({Referral("acme", "cl", "cr", 500, 250, "ref-1"), Redeem("acme", "cl", 500, "spent")});
  Result r = Apply1(Clawback(Reverse("acme", "ref-1", 500, "unref-1")));
  ASSERT_EQ(r.code, Code::kOk);
  EXPECT_EQ(r.points, 0u);
  ASSERT_EQ(Apply1(AccountClose("acme", "cl", "close-cl")).code, Code::kOk);
  // Without clawback_partial the closed referrer is still account_closed.
  EXPECT_EQ(Apply1(Reverse("acme", "ref-1", 0, "unref-2")).code, Code::kAccountClosed);
  r = Apply1(Clawback(Reverse("acme", "ref-1", 0, "unref-3")));  // all that is left
  ASSERT_EQ(r.code, Code::kOk);
  EXPECT_EQ(r.points, 250u);  // the referee's; the closed referrer gave nothing
  EXPECT_EQ(Posted("acme", "cr"), 0u);
  EXPECT_EQ(MustSystemAccount("acme", "referral").debits_posted, 750u);
  EXPECT_EQ(MustSystemAccount("acme", "referral").credits_posted, 250u);
}

// A ledger whose referral reversals were decided by format 3 rules (what
// was asked counts) replays and audits as decided, and a format-4 reversal
// after them starts from the leg format 3 would have asked next.
TEST_F(ReverseTest, AFormatThreeReferralClawbackKeepsItsRule) {
  record_format_ = 3;
  Reopen();
  MustApply({Referral("acme", "al", "bo", 500, 250, "ref-1"), Redeem("acme", "al", 500, "spent")});
  Result r = Apply1(Clawback(Reverse("acme", "ref-1", 500, "unref-1")));
  ASSERT_EQ(r.code, Code::kOk);
  EXPECT_EQ(r.points, 0u);
  ASSERT_EQ(Apply1(Earn("acme", "al", 1000, "e-al")).code, Code::kOk);
  record_format_ = kRecordFormat;
  Reopen();
  absl::StatusOr<AuditReport> audit = ledger_->Audit();
  ASSERT_TRUE(audit.ok()) << audit.status();
  EXPECT_EQ(audit->discrepancy_count, 0u);
  r = Apply1(Reverse("acme", "ref-1", 1, "unref-2"));  // the referee's: 500 were asked of al
  ASSERT_EQ(r.code, Code::kOk);
  EXPECT_EQ(Posted("acme", "al"), 1000u);
  EXPECT_EQ(Posted("acme", "bo"), 249u);
  EXPECT_EQ(Apply1(Reverse("acme", "ref-1", 250, "unref-3")).code, Code::kReversalExceedsOriginal);
}

TEST_F(ReverseTest, AdjustReversalWorksBothWays) {
  MustApply({Adjust("acme", "alice", 50, "adj-up"), Adjust("acme", "alice", -20, "adj-down")});
  ASSERT_EQ(Posted("acme", "alice"), 30u);
  Result r = Apply1(Reverse("acme", "adj-down", 0, "undo-down"));
  EXPECT_EQ(r.code, Code::kOk);
  EXPECT_EQ(r.points, 20u);
  EXPECT_EQ(Posted("acme", "alice"), 50u);
  r = Apply1(Reverse("acme", "adj-up", 0, "undo-up"));
  EXPECT_EQ(r.code, Code::kOk);
  EXPECT_EQ(r.points, 50u);
  EXPECT_EQ(Posted("acme", "alice"), 0u);
  const AccountInfo adjustment = MustSystemAccount("acme", "adjustment");
  EXPECT_EQ(adjustment.debits_posted, 70u);
  EXPECT_EQ(adjustment.credits_posted, 70u);
}

TEST_F(ReverseTest, OnlyEarnRedeemReferralTransferAdjustAndCaptureAreReversible) {
  MustApply({Earn("acme", "alice", 100, "e1"), Hold("acme", "alice", 10, 300, "hold-1"),
             Release("acme", "hold-1", "rel-1"), Hold("acme", "alice", 10, 300, "hold-2")});
  ASSERT_EQ(Apply1(Redeem("acme", "alice", 1000, "rejected")).code, Code::kInsufficientPoints);
  for (const char* original : {"program-create", "hold-1", "rel-1", "hold-2", "rejected"}) {
    const Result r = Apply1(Reverse("acme", original, 0, std::string("undo-") + original));
    EXPECT_EQ(r.code, Code::kOriginalNotReversible) << original;
    EXPECT_NE(r.seq, 0u) << original;
  }
  EXPECT_EQ(Posted("acme", "alice"), 100u);
  EXPECT_EQ(MustBalance("acme", "alice").pending, 10u);
}

// The rest of SPEC §2's kinds, each an ok original: none is reversible,
// and trying records original_not_reversible and moves nothing.
TEST_F(ReverseTest, EveryOtherKindIsOriginalNotReversible) {
  MustApply({Earn("acme", "alice", 100, "e1"),
             EarnExpiring("acme", "alice", 5, kStartNs + kDayNs, "e-soon"),
             PartnerCreate("acme", "shop", 1000, 2000),
             PartnerPrice("acme", "shop", 1100, 2100, kStartNs + kDayNs / 2, "price-1"),
             AccountOpen("acme", "dave", "open-dave"), AccountClose("acme", "dave", "close-dave"),
             Reverse("acme", "e1", 10, "rev-1"), Hold("acme", "alice", 10, 60, "hold-t"),
             Settle("acme", "shop", kStartNs, "settle-1")});
  clock_.Set(kStartNs + 2 * kDayNs);
  // The hold took the soon-expiring lot first: its timeout gives the
  // points back expired, and a second sweep expires them.
  std::vector<Transaction> due;
  for (int sweep = 0; sweep < 3; ++sweep) {
    const std::vector<Transaction> more = MustCollectDue(clock_.NowNs());
    if (more.empty()) break;
    MustApply(more);
    due.insert(due.end(), more.begin(), more.end());
  }
  ASSERT_EQ(due.size(), 2u);
  EXPECT_EQ(due[0].kind, Kind::kHoldTimeout);
  EXPECT_EQ(due[1].kind, Kind::kExpire);
  std::vector<Id> originals;
  for (const char* key : {"partner-create-shop", "price-1", "open-dave", "close-dave", "rev-1",
                          "settle-1"}) {
    originals.push_back(TxIdFromKey("acme", key));
  }
  for (const Transaction& t : due) originals.push_back(t.id);  // expire, hold_timeout
  const Balance before = MustBalance("acme", "alice");
  const ChainHead head = MustHead();
  int n = 0;
  for (const Id& original : originals) {
    Transaction undo = Reverse("acme", "unused", 0, StrCat("undo-", n++));
    undo.ref = original;
    const Result r = Apply1(undo);
    EXPECT_EQ(r.code, Code::kOriginalNotReversible) << IdToHex(original);
    EXPECT_NE(r.seq, 0u) << IdToHex(original);  // recorded
  }
  EXPECT_EQ(MustHead().seq, head.seq + originals.size());
  const Balance after = MustBalance("acme", "alice");
  EXPECT_EQ(after.posted, before.posted);
  EXPECT_EQ(after.pending, before.pending);
  EXPECT_EQ(Posted("acme", "dave"), 0u);
}

TEST_F(ReverseTest, UnknownOrForeignOriginalIsOriginalNotFound) {
  Result r = Apply1(Reverse("acme", "never-posted", 0, "undo-1"));
  EXPECT_EQ(r.code, Code::kOriginalNotFound);
  EXPECT_EQ(r.seq, 2u);

  // The same id in another program is not this program's transaction.
  ASSERT_EQ(Apply1(ProgramCreate("hotel")).code, Code::kOk);
  ASSERT_EQ(Apply1(Earn("hotel", "alice", 100, "order-1")).code, Code::kOk);
  Transaction foreign = Reverse("acme", "order-1", 0, "undo-2");
  foreign.ref = TxIdFromKey("hotel", "order-1");
  r = Apply1(foreign);
  EXPECT_EQ(r.code, Code::kOriginalNotFound);
  EXPECT_EQ(Posted("hotel", "alice"), 100u);
}

}  // namespace
}  // namespace pointledger::ledger::testing
