// Exactly once (SPEC §3): a decided id answers with its original outcome
// forever, state-dependent rejections included; different content under a
// decided id is id_conflict; request-only rejections leave the id free.
#include <string>

#include "tests/ledger/ledger_fixture.h"

namespace pointledger::ledger::testing {
namespace {

using ExactlyOnceTest = AcmeTest;

TEST_F(ExactlyOnceTest, ADuplicateGetsTheOriginalSeqAndTimestamp) {
  const Result first = Apply1(Earn("acme", "alice", 120, "order-1001"));
  ASSERT_EQ(first.code, Code::kOk);
  clock_.Advance(kDayNs);
  const Result again = Apply1(Earn("acme", "alice", 120, "order-1001"));
  EXPECT_EQ(again.code, Code::kOk);
  EXPECT_TRUE(again.duplicate);
  EXPECT_EQ(again.seq, first.seq);
  EXPECT_EQ(again.timestamp_ns, first.timestamp_ns);
  EXPECT_EQ(Posted("acme", "alice"), 120u);
  EXPECT_EQ(MustHead().seq, first.seq);
}

TEST_F(ExactlyOnceTest, AnIdRepeatedWithinOneBatchIsADuplicate) {
  const std::vector<Result> r =
      Apply({Earn("acme", "alice", 10, "e1"), Earn("acme", "alice", 10, "e1")});
  EXPECT_EQ(r[0].code, Code::kOk);
  EXPECT_FALSE(r[0].duplicate);
  EXPECT_EQ(r[1].code, Code::kOk);
  EXPECT_TRUE(r[1].duplicate);
  EXPECT_EQ(r[1].seq, r[0].seq);
  EXPECT_EQ(Posted("acme", "alice"), 10u);
}

TEST_F(ExactlyOnceTest, ADuplicateOfAReversalReportsTheOriginalPoints) {
  MustApply({Earn("acme", "alice", 100, "e1"), Redeem("acme", "alice", 70, "r1")});
  Transaction undo = Reverse("acme", "e1", 0, "undo-1");
  undo.clawback_partial = true;
  const Result first = Apply1(undo);
  ASSERT_EQ(first.code, Code::kOk);
  ASSERT_EQ(first.points, 30u);
  const Result again = Apply1(undo);
  EXPECT_TRUE(again.duplicate);
  EXPECT_EQ(again.points, 30u);
  EXPECT_EQ(again.seq, first.seq);
}

TEST_F(ExactlyOnceTest, DifferentContentUnderADecidedIdIsIdConflictNamingTheField) {
  Transaction original = Earn("acme", "alice", 10, "e1");
  ASSERT_EQ(Apply1(original).code, Code::kOk);
  struct Case {
    Transaction tx;
    const char* field;
  };
  std::vector<Case> cases;
  cases.push_back({Redeem("acme", "alice", 10, "e1"), "kind"});
  cases.push_back({Earn("acme", "bob", 11, "e1"), "member"});  // first of two differences
  cases.push_back({Earn("acme", "alice", 11, "e1"), "points"});
  cases.push_back({EarnExpiring("acme", "alice", 10, kStartNs + kDayNs, "e1"), "time_ns"});
  cases.push_back({original, "metadata"});
  cases.back().tx.metadata = "x";
  cases.push_back({original, "order_ref"});
  cases.back().tx.order_ref = "pos-7";
  for (const Case& c : cases) {
    const Result r = Apply1(c.tx);
    EXPECT_EQ(r.code, Code::kIdConflict) << c.field;
    EXPECT_EQ(r.conflict_field, c.field);
    EXPECT_EQ(r.seq, 0u);
    EXPECT_FALSE(r.duplicate);
  }
  EXPECT_EQ(MustHead().seq, 2u);
  EXPECT_EQ(Posted("acme", "alice"), 10u);
  EXPECT_FALSE(FindBalance("acme", "bob").has_value());
}

// A program_create's lock_days -1 means 0: sent again with an explicit 0
// it is the same content, a duplicate (found in a docs test drive: the
// CLI's help says the default is 0, and the explicit 0 was id_conflict).
// An earn's -1 (the program's) and 0 (none) stay different.
TEST_F(ExactlyOnceTest, AProgramCreateLockDaysOfMinusOneIsTheSameAsZero) {
  Transaction implicit = ProgramCreate("shop");
  implicit.lock_days = -1;
  const Result first = Apply1(implicit);
  ASSERT_EQ(first.code, Code::kOk);
  Transaction explicit_zero = implicit;
  explicit_zero.lock_days = 0;
  const Result again = Apply1(explicit_zero);
  EXPECT_EQ(again.code, Code::kOk);
  EXPECT_TRUE(again.duplicate);
  EXPECT_EQ(again.seq, first.seq);
  explicit_zero.lock_days = 1;
  EXPECT_EQ(Apply1(explicit_zero).conflict_field, "lock_days");

  Transaction earn = Earn("shop", "alice", 10, "e1");  // lock_days -1
  ASSERT_EQ(Apply1(earn).code, Code::kOk);
  earn.lock_days = 0;
  EXPECT_EQ(Apply1(earn).conflict_field, "lock_days");
}

// The first differing field in declaration order: `points` before
// `points2`, and `clawback_partial` is content too (found by mutation
// testing, session 21: only the model test caught either).
TEST_F(ExactlyOnceTest, IdConflictNamesPointsBeforePoints2AndSeesClawbackPartial) {
  MustApply({Earn("acme", "alice", 100, "e1"), Referral("acme", "alice", "bob", 30, 20, "ref")});
  Result r = Apply1(Referral("acme", "alice", "bob", 31, 21, "ref"));
  EXPECT_EQ(r.code, Code::kIdConflict);
  EXPECT_EQ(r.conflict_field, "points");
  r = Apply1(Referral("acme", "alice", "bob", 30, 21, "ref"));
  EXPECT_EQ(r.conflict_field, "points2");
  Transaction reverse = Reverse("acme", "e1", 10, "undo-e1");
  ASSERT_EQ(Apply1(reverse).code, Code::kOk);
  reverse.clawback_partial = true;
  r = Apply1(reverse);
  EXPECT_EQ(r.code, Code::kIdConflict);
  EXPECT_EQ(r.conflict_field, "clawback_partial");
}

// Ids are global, but a key may be limited to its programs (SPEC §6): a
// conflict with another program's transaction names the program and
// nothing else, so that a caller cannot learn that transaction's kind,
// member or amount by varying its own, field by field.
TEST_F(ExactlyOnceTest, AConflictWithAnotherProgramsTransactionNamesOnlyTheProgram) {
  MustApply({ProgramCreate("hotel"), Earn("hotel", "guest", 10, "h1")});
  Transaction probe = Redeem("acme", "alice", 99, "h1");
  probe.id = Earn("hotel", "guest", 10, "h1").id;  // the hotel's id, posted to acme
  ASSERT_NE(probe.kind, Kind::kEarn);
  const Result r = Apply1(probe);
  EXPECT_EQ(r.code, Code::kIdConflict);
  EXPECT_EQ(r.conflict_field, "program");
  EXPECT_EQ(r.seq, 0u);
  // Within one program the first differing field is still named.
  Transaction same_program = Redeem("hotel", "guest", 10, "h1");
  EXPECT_EQ(Apply1(same_program).conflict_field, "kind");
}

TEST_F(ExactlyOnceTest, InsufficientPointsStaysARejectionAfterPointsArrive) {
  ASSERT_EQ(Apply1(Earn("acme", "alice", 10, "e1")).code, Code::kOk);
  const Result first = Apply1(Redeem("acme", "alice", 50, "reward-1"));
  ASSERT_EQ(first.code, Code::kInsufficientPoints);
  ASSERT_NE(first.seq, 0u);
  ASSERT_EQ(Apply1(Earn("acme", "alice", 100, "e2")).code, Code::kOk);

  const Result retry = Apply1(Redeem("acme", "alice", 50, "reward-1"));
  EXPECT_EQ(retry.code, Code::kInsufficientPoints);
  EXPECT_TRUE(retry.duplicate);
  EXPECT_EQ(retry.seq, first.seq);
  EXPECT_EQ(retry.timestamp_ns, first.timestamp_ns);
  EXPECT_EQ(Posted("acme", "alice"), 110u);
}

TEST_F(ExactlyOnceTest, AccountAndProgramNotFoundStayRejectionsAfterTheyAppear) {
  const Result no_member = Apply1(Redeem("acme", "ghost", 5, "r1"));
  const Result no_program = Apply1(Earn("hotel", "alice", 5, "e1"));
  ASSERT_EQ(no_member.code, Code::kAccountNotFound);
  ASSERT_EQ(no_program.code, Code::kProgramNotFound);
  MustApply({Earn("acme", "ghost", 100, "e-ghost"), ProgramCreate("hotel")});

  Result r = Apply1(Redeem("acme", "ghost", 5, "r1"));
  EXPECT_EQ(r.code, Code::kAccountNotFound);
  EXPECT_TRUE(r.duplicate);
  EXPECT_EQ(r.seq, no_member.seq);
  r = Apply1(Earn("hotel", "alice", 5, "e1"));
  EXPECT_EQ(r.code, Code::kProgramNotFound);
  EXPECT_TRUE(r.duplicate);
  EXPECT_EQ(r.seq, no_program.seq);
  EXPECT_EQ(Posted("acme", "ghost"), 100u);
  EXPECT_FALSE(FindBalance("hotel", "alice").has_value());
}

TEST_F(ExactlyOnceTest, HoldAndOriginalNotFoundStayRejectionsAfterTheyAppear) {
  const Result no_hold = Apply1(Capture("acme", "hold-9", 0, "cap-9"));
  const Result no_original = Apply1(Reverse("acme", "e-late", 0, "undo-9"));
  ASSERT_EQ(no_hold.code, Code::kHoldNotFound);
  ASSERT_EQ(no_original.code, Code::kOriginalNotFound);
  MustApply({Earn("acme", "alice", 100, "e-late"), Hold("acme", "alice", 40, 300, "hold-9")});

  Result r = Apply1(Capture("acme", "hold-9", 0, "cap-9"));
  EXPECT_EQ(r.code, Code::kHoldNotFound);
  EXPECT_TRUE(r.duplicate);
  r = Apply1(Reverse("acme", "e-late", 0, "undo-9"));
  EXPECT_EQ(r.code, Code::kOriginalNotFound);
  EXPECT_TRUE(r.duplicate);
  const Balance b = MustBalance("acme", "alice");
  EXPECT_EQ(b.posted, 100u);
  EXPECT_EQ(b.pending, 40u);
}

TEST_F(ExactlyOnceTest, OverflowAndPartnerNotFoundStayRejectionsAfterTheCauseIsGone) {
  MustApply({Earn("acme", "alice", kPointsMax, "big-1")});
  const Result over = Apply1(Earn("acme", "alice", kPointsMax, "big-2"));  // posted past 2^63 - 1
  ASSERT_EQ(over.code, Code::kOverflow);
  ASSERT_EQ(Apply1(Redeem("acme", "alice", kPointsMax, "spend")).code, Code::kOk);
  Result r = Apply1(Earn("acme", "alice", kPointsMax, "big-2"));  // it would fit now
  EXPECT_EQ(r.code, Code::kOverflow);
  EXPECT_TRUE(r.duplicate);
  EXPECT_EQ(r.seq, over.seq);

  Transaction at_partner = Earn("acme", "bob", 10, "p-1");
  at_partner.partner = "shop";
  const Result missing = Apply1(at_partner);
  ASSERT_EQ(missing.code, Code::kPartnerNotFound);
  ASSERT_EQ(Apply1(PartnerCreate("acme", "shop", 1000, 1000)).code, Code::kOk);
  r = Apply1(at_partner);
  EXPECT_EQ(r.code, Code::kPartnerNotFound);
  EXPECT_TRUE(r.duplicate);
  EXPECT_EQ(r.seq, missing.seq);
  EXPECT_FALSE(FindBalance("acme", "bob").has_value());
}

TEST_F(ExactlyOnceTest, ADecidedEarnIsADuplicateEvenAfterItsExpiryHasPassed) {
  const Result first = Apply1(EarnExpiring("acme", "alice", 10, kStartNs + kDayNs, "e1"));
  ASSERT_EQ(first.code, Code::kOk);
  clock_.Advance(2 * kDayNs);
  const Result retry = Apply1(EarnExpiring("acme", "alice", 10, kStartNs + kDayNs, "e1"));
  EXPECT_EQ(retry.code, Code::kOk);
  EXPECT_TRUE(retry.duplicate);
  EXPECT_EQ(retry.seq, first.seq);
}

TEST_F(ExactlyOnceTest, RequestOnlyRejectionsDoNotTakeTheId) {
  Transaction too_long = Earn("acme", "alice", 10, "e1");
  too_long.reason = std::string(kReasonBytesMax + 1, 'r');
  const std::vector<std::pair<Transaction, Auth>> attempts = {
      {Earn("acme", "alice", 0, "e1"), Auth::Admin()},
      {too_long, Auth::Admin()},
      {EarnExpiring("acme", "alice", 10, kStartNs - 1, "e1"), Auth::Admin()},
      {Earn("acme", "alice", 10, "e1"), Auth{kScopeRead, {}}},
  };
  const Code expected[] = {Code::kInvalidAmount, Code::kFieldTooLong, Code::kExpiryInPast,
                           Code::kPermissionDenied};
  for (size_t i = 0; i < attempts.size(); ++i) {
    const Result r = Apply1(attempts[i].first, attempts[i].second);
    EXPECT_EQ(r.code, expected[i]) << i;
    EXPECT_EQ(r.seq, 0u) << i;
    EXPECT_EQ(r.timestamp_ns, 0) << i;
  }
  EXPECT_EQ(MustHead().seq, 1u);
  // Each retry differed in content, yet the valid one is new: nothing was decided.
  const Result r = Apply1(Earn("acme", "alice", 10, "e1"));
  EXPECT_EQ(r.code, Code::kOk);
  EXPECT_FALSE(r.duplicate);
  EXPECT_EQ(r.seq, 2u);
}

}  // namespace
}  // namespace pointledger::ledger::testing
