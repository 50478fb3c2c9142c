// referral, transfer and adjust (SPEC §2).
#include <string>

#include "tests/ledger/ledger_fixture.h"

namespace pointledger::ledger::testing {
namespace {

using ReferralTest = AcmeTest;
using TransferTest = AcmeTest;
using AdjustTest = AcmeTest;

TEST_F(ReferralTest, ReferralCreditsBothMembersFromTheReferralAccount) {
  const Result r = Apply1(Referral("acme", "alice", "bob", 500, 250, "ref-bob"));
  EXPECT_EQ(r.code, Code::kOk);
  EXPECT_EQ(r.seq, 2u);
  EXPECT_EQ(Available("acme", "alice"), 500u);
  EXPECT_EQ(Available("acme", "bob"), 250u);
  EXPECT_EQ(MustSystemAccount("acme", "referral").debits_posted, 750u);
  for (const char* member : {"alice", "bob"}) {
    const std::vector<LotInfo> lots = MustLots("acme", member);
    ASSERT_EQ(lots.size(), 1u) << member;
    EXPECT_EQ(lots[0].expires_at_ns, r.timestamp_ns + 365 * kDayNs) << member;
  }
}

TEST_F(ReferralTest, ReferralLotsAreNeverLocked) {
  ASSERT_EQ(Apply1(ProgramCreate("locky", 365, /*lock_days=*/30)).code, Code::kOk);
  ASSERT_EQ(Apply1(Referral("locky", "alice", "bob", 5, 3, "ref-bob")).code, Code::kOk);
  EXPECT_EQ(Available("locky", "alice"), 5u);
  EXPECT_EQ(Available("locky", "bob"), 3u);
}

TEST_F(ReferralTest, ReferringYourselfIsSameAccount) {
  const Result r = Apply1(Referral("acme", "alice", "alice", 500, 250, "ref-1"));
  EXPECT_EQ(r.code, Code::kSameAccount);
  EXPECT_EQ(r.seq, 2u);
  EXPECT_FALSE(FindBalance("acme", "alice").has_value());
}

TEST_F(ReferralTest, ARefereeIsRewardedOncePerProgram) {
  ASSERT_EQ(Apply1(Referral("acme", "alice", "bob", 500, 250, "ref-1")).code, Code::kOk);
  const Result r = Apply1(Referral("acme", "carol", "bob", 500, 250, "ref-2"));
  EXPECT_EQ(r.code, Code::kReferralAlreadyRewarded);
  EXPECT_EQ(r.seq, 3u);
  EXPECT_EQ(Posted("acme", "bob"), 250u);
  EXPECT_FALSE(FindBalance("acme", "carol").has_value());  // both or neither

  // Once per program: the same person in another program is a new referee.
  ASSERT_EQ(Apply1(ProgramCreate("hotel")).code, Code::kOk);
  EXPECT_EQ(Apply1(Referral("hotel", "alice", "bob", 5, 5, "ref-1")).code, Code::kOk);
}

// The rule is keyed on the referee only: a referrer refers many, and a
// former referrer can still be referred once.
TEST_F(ReferralTest, OnlyTheRefereeIsLimited) {
  MustApply({Referral("acme", "alice", "bob", 500, 250, "ref-1"),
             Referral("acme", "alice", "carol", 500, 250, "ref-2"),
             Referral("acme", "dave", "alice", 100, 50, "ref-3")});
  EXPECT_EQ(Posted("acme", "alice"), 1050u);
  EXPECT_EQ(Apply1(Referral("acme", "bob", "alice", 1, 1, "ref-4")).code,
            Code::kReferralAlreadyRewarded);
}

TEST_F(ReferralTest, AZeroLegIsInvalidAmount) {
  Result r = Apply1(Referral("acme", "alice", "bob", 500, 0, "ref-1"));
  EXPECT_EQ(r.code, Code::kInvalidAmount);
  EXPECT_EQ(r.seq, 0u);
  r = Apply1(Referral("acme", "alice", "bob", 0, 250, "ref-1"));
  EXPECT_EQ(r.code, Code::kInvalidAmount);
  EXPECT_FALSE(FindBalance("acme", "bob").has_value());
}

TEST_F(TransferTest, TransferMovesPointsAndTheReceiverKeepsTheSendersExpiry) {
  const int64_t soon = kStartNs + 20 * kDayNs;
  const std::vector<Result> earned =
      Apply({EarnExpiring("acme", "alice", 30, soon, "e1"), Earn("acme", "alice", 30, "e2")});
  ASSERT_EQ(earned[1].code, Code::kOk);
  clock_.Advance(kDayNs);
  const Result r = Apply1(Transfer("acme", "alice", "carol", 40, "gift-1"));
  ASSERT_EQ(r.code, Code::kOk);
  EXPECT_EQ(Posted("acme", "alice"), 20u);
  EXPECT_EQ(Available("acme", "carol"), 40u);

  // Alice's soonest lot went first; Carol's lots carry the same expiries.
  const Balance carol = MustBalance("acme", "carol");
  ASSERT_EQ(carol.expiring.size(), 2u);
  EXPECT_EQ(carol.expiring[0].expires_at_ns, soon);
  EXPECT_EQ(carol.expiring[0].points, 30u);
  EXPECT_EQ(carol.expiring[1].expires_at_ns, earned[1].timestamp_ns + 365 * kDayNs);
  EXPECT_EQ(carol.expiring[1].points, 10u);
}

// The receiver's lots are not locked, also in a program whose earns are.
TEST_F(TransferTest, TransferredPointsAreNotLockedInALockingProgram) {
  ASSERT_EQ(Apply1(ProgramCreate("locky", 365, /*lock_days=*/10)).code, Code::kOk);
  Transaction unlocked = Earn("locky", "alice", 30, "e1");
  unlocked.lock_days = 0;  // the earn's own 0 overrides the program's 10
  MustApply({unlocked, Earn("locky", "dave", 5, "e2")});
  ASSERT_GT(MustLots("locky", "dave")[0].locked_until_ns, clock_.NowNs());  // the program locks
  ASSERT_EQ(Apply1(Transfer("locky", "alice", "carol", 20, "gift-1")).code, Code::kOk);
  const std::vector<LotInfo> lots = MustLots("locky", "carol");
  ASSERT_EQ(lots.size(), 1u);
  EXPECT_EQ(lots[0].locked_until_ns, 0);
  EXPECT_EQ(Available("locky", "carol"), 20u);
}

TEST_F(TransferTest, ZeroPointsIsInvalidAmount) {
  ASSERT_EQ(Apply1(Earn("acme", "alice", 30, "e1")).code, Code::kOk);
  const Result r = Apply1(Transfer("acme", "alice", "carol", 0, "gift-0"));
  EXPECT_EQ(r.code, Code::kInvalidAmount);
  EXPECT_EQ(r.seq, 0u);  // a field check: not recorded
  EXPECT_FALSE(FindBalance("acme", "carol").has_value());
}

// In a program that does not open accounts on first use, every kind that
// could open one answers account_not_found instead, and opens nothing.
TEST_F(TransferTest, WithoutAutoOpenUnknownMembersAreAccountNotFound) {
  ASSERT_EQ(Apply1(ProgramCreate("closed", 365, 0, /*auto_open=*/false)).code, Code::kOk);
  MustApply({AccountOpen("closed", "alice", "open-alice"), Adjust("closed", "alice", 100, "adj-0")});
  EXPECT_EQ(Apply1(Transfer("closed", "alice", "carol", 10, "gift-1")).code, Code::kAccountNotFound);
  EXPECT_EQ(Apply1(Referral("closed", "alice", "bob", 5, 5, "ref-1")).code, Code::kAccountNotFound);
  EXPECT_EQ(Apply1(Referral("closed", "bob", "alice", 5, 5, "ref-2")).code, Code::kAccountNotFound);
  EXPECT_EQ(Apply1(Adjust("closed", "dave", 10, "adj-1")).code, Code::kAccountNotFound);
  for (const char* m : {"carol", "bob", "dave"}) EXPECT_FALSE(FindBalance("closed", m).has_value()) << m;
  EXPECT_EQ(Posted("closed", "alice"), 100u);
  // Opened explicitly, the same transfer goes through.
  ASSERT_EQ(Apply1(AccountOpen("closed", "carol", "open-carol")).code, Code::kOk);
  EXPECT_EQ(Apply1(Transfer("closed", "alice", "carol", 10, "gift-2")).code, Code::kOk);
}

TEST_F(TransferTest, TransferToYourselfIsSameAccount) {
  ASSERT_EQ(Apply1(Earn("acme", "alice", 30, "e1")).code, Code::kOk);
  const Result r = Apply1(Transfer("acme", "alice", "alice", 10, "gift-1"));
  EXPECT_EQ(r.code, Code::kSameAccount);
  EXPECT_EQ(r.seq, 3u);
  EXPECT_EQ(Posted("acme", "alice"), 30u);
}

TEST_F(TransferTest, TransferBeyondAvailableIsInsufficientPoints) {
  ASSERT_EQ(Apply1(Earn("acme", "alice", 30, "e1")).code, Code::kOk);
  const Result r = Apply1(Transfer("acme", "alice", "carol", 31, "gift-1"));
  EXPECT_EQ(r.code, Code::kInsufficientPoints);
  EXPECT_EQ(r.seq, 3u);
  EXPECT_EQ(Posted("acme", "alice"), 30u);
  EXPECT_FALSE(FindBalance("acme", "carol").has_value());
}

TEST_F(TransferTest, TransferFromAnUnknownMemberIsAccountNotFound) {
  const Result r = Apply1(Transfer("acme", "ghost", "carol", 1, "gift-1"));
  EXPECT_EQ(r.code, Code::kAccountNotFound);
  EXPECT_EQ(r.seq, 2u);
  EXPECT_FALSE(FindBalance("acme", "carol").has_value());
}

TEST_F(AdjustTest, PositiveDeltaCreditsMemberFromAdjustment) {
  const Result r = Apply1(Adjust("acme", "alice", 25, "adj-1"));
  EXPECT_EQ(r.code, Code::kOk);
  EXPECT_EQ(Available("acme", "alice"), 25u);  // opened by the adjustment
  EXPECT_EQ(MustSystemAccount("acme", "adjustment").debits_posted, 25u);
  const std::vector<LotInfo> lots = MustLots("acme", "alice");
  ASSERT_EQ(lots.size(), 1u);
  EXPECT_EQ(lots[0].expires_at_ns, r.timestamp_ns + 365 * kDayNs);
}

TEST_F(AdjustTest, NegativeDeltaDebitsMemberToAdjustment) {
  ASSERT_EQ(Apply1(Earn("acme", "alice", 100, "e1")).code, Code::kOk);
  ASSERT_EQ(Apply1(Adjust("acme", "alice", -20, "adj-9")).code, Code::kOk);
  EXPECT_EQ(Posted("acme", "alice"), 80u);
  EXPECT_EQ(MustSystemAccount("acme", "adjustment").credits_posted, 20u);
  EXPECT_EQ(MustLots("acme", "alice")[0].remaining, 80u);
}

TEST_F(AdjustTest, NegativeDeltaNeedsAvailablePoints) {
  ASSERT_EQ(Apply1(Earn("acme", "alice", 10, "e1")).code, Code::kOk);
  const Result r = Apply1(Adjust("acme", "alice", -11, "adj-1"));
  EXPECT_EQ(r.code, Code::kInsufficientPoints);
  EXPECT_EQ(r.seq, 3u);
  EXPECT_EQ(Posted("acme", "alice"), 10u);
}

TEST_F(AdjustTest, NegativeDeltaOnAnUnknownMemberIsAccountNotFound) {
  const Result r = Apply1(Adjust("acme", "ghost", -1, "adj-1"));
  EXPECT_EQ(r.code, Code::kAccountNotFound);
  EXPECT_EQ(r.seq, 2u);
  EXPECT_FALSE(FindBalance("acme", "ghost").has_value());
}

TEST_F(AdjustTest, ZeroOrHugeDeltaIsInvalidAmount) {
  const int64_t huge = static_cast<int64_t>(kPointsMax) + 1;
  for (int64_t delta : {int64_t{0}, huge, -huge}) {
    const Result r = Apply1(Adjust("acme", "alice", delta, "adj-1"));
    EXPECT_EQ(r.code, Code::kInvalidAmount) << delta;
    EXPECT_EQ(r.seq, 0u);
  }
}

TEST_F(AdjustTest, AdjustNeedsTheAdminScope) {
  ASSERT_EQ(Apply1(Earn("acme", "alice", 10, "e1")).code, Code::kOk);
  for (int64_t delta : {int64_t{5}, int64_t{-5}}) {
    const Result r = Apply1(Adjust("acme", "alice", delta, "adj-1"), PostOnly());
    EXPECT_EQ(r.code, Code::kPermissionDenied);
    EXPECT_EQ(r.seq, 0u);
  }
  EXPECT_EQ(Posted("acme", "alice"), 10u);
}

}  // namespace
}  // namespace pointledger::ledger::testing
