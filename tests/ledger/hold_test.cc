// hold, capture, release and the server's timeout of holds (SPEC §2).
#include <string>

#include "tests/ledger/ledger_fixture.h"

namespace pointledger::ledger::testing {
namespace {

class HoldTest : public AcmeTest {
 protected:
  void SetUp() override {
    AcmeTest::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_EQ(Apply1(Earn("acme", "alice", 100, "e1")).code, Code::kOk);
  }

  // 61 s on: the sweep's one due item, a timeout, releases alice's held points.
  void ExpectTheSweepTimesItOut() {
    clock_.Set(clock_.NowNs() + 61 * kNanosPerSecond);
    const std::vector<Transaction> due = MustCollectDue(clock_.NowNs());
    ASSERT_EQ(due.size(), 1u);
    const Result timed_out = Apply1(due[0]);
    EXPECT_EQ(timed_out.code, Code::kOk);
    EXPECT_FALSE(timed_out.duplicate);
    EXPECT_EQ(MustBalance("acme", "alice").pending, 0u);
  }
};

TEST_F(HoldTest, HoldReservesPointsAsPending) {
  const Result r = Apply1(Hold("acme", "alice", 40, 300, "hold-5"));
  EXPECT_EQ(r.code, Code::kOk);
  EXPECT_EQ(r.seq, 3u);
  const Balance b = MustBalance("acme", "alice");
  EXPECT_EQ(b.posted, 100u);
  EXPECT_EQ(b.pending, 40u);
  EXPECT_EQ(b.debits_pending, 40u);
  EXPECT_EQ(b.available, 60u);
  EXPECT_EQ(MustSystemAccount("acme", "holds").credits_pending, 40u);
  EXPECT_EQ(Apply1(Redeem("acme", "alice", 61, "r1")).code, Code::kInsufficientPoints);
  EXPECT_EQ(Apply1(Redeem("acme", "alice", 60, "r2")).code, Code::kOk);
}

TEST_F(HoldTest, HoldBeyondAvailableIsInsufficientPoints) {
  const Result r = Apply1(Hold("acme", "alice", 101, 300, "hold-5"));
  EXPECT_EQ(r.code, Code::kInsufficientPoints);
  EXPECT_EQ(r.seq, 3u);
  EXPECT_EQ(MustBalance("acme", "alice").pending, 0u);
}

TEST_F(HoldTest, HoldOfAnUnknownMemberIsAccountNotFound) {
  const Result r = Apply1(Hold("acme", "ghost", 1, 300, "hold-5"));
  EXPECT_EQ(r.code, Code::kAccountNotFound);
  EXPECT_FALSE(FindBalance("acme", "ghost").has_value());
}

TEST_F(HoldTest, ZeroPointsOrATimeoutOutOfRangeIsInvalidAmount) {
  for (const Transaction& t :
       {Hold("acme", "alice", 0, 300, "hold-5"), Hold("acme", "alice", 10, 0, "hold-5"),
        Hold("acme", "alice", 10, kHoldTimeoutSecondsMax + 1, "hold-5")}) {
    const Result r = Apply1(t);
    EXPECT_EQ(r.code, Code::kInvalidAmount);
    EXPECT_EQ(r.seq, 0u);
  }
  EXPECT_EQ(Apply1(Hold("acme", "alice", 10, kHoldTimeoutSecondsMax, "hold-5")).code, Code::kOk);
}

TEST_F(HoldTest, CaptureRedeemsPartOfTheHoldAndReleasesTheRest) {
  ASSERT_EQ(Apply1(Hold("acme", "alice", 40, 300, "hold-5")).code, Code::kOk);
  const Result r = Apply1(Capture("acme", "hold-5", 30, "cap-5"));
  EXPECT_EQ(r.code, Code::kOk);
  EXPECT_EQ(r.points, 30u);
  const Balance b = MustBalance("acme", "alice");
  EXPECT_EQ(b.posted, 70u);
  EXPECT_EQ(b.pending, 0u);
  EXPECT_EQ(b.available, 70u);
  EXPECT_EQ(MustSystemAccount("acme", "redemption").credits_posted, 30u);
  EXPECT_EQ(MustSystemAccount("acme", "holds").credits_pending, 0u);
}

TEST_F(HoldTest, CaptureOfZeroTakesTheWholeHold) {
  ASSERT_EQ(Apply1(Hold("acme", "alice", 40, 300, "hold-5")).code, Code::kOk);
  const Result r = Apply1(Capture("acme", "hold-5", 0, "cap-5"));
  EXPECT_EQ(r.code, Code::kOk);
  EXPECT_EQ(r.points, 40u);
  EXPECT_EQ(Posted("acme", "alice"), 60u);
}

TEST_F(HoldTest, CaptureBeyondTheHoldIsCaptureExceedsHoldAndLeavesItPending) {
  ASSERT_EQ(Apply1(Hold("acme", "alice", 40, 300, "hold-5")).code, Code::kOk);
  Result r = Apply1(Capture("acme", "hold-5", 41, "cap-5"));
  EXPECT_EQ(r.code, Code::kCaptureExceedsHold);
  EXPECT_EQ(r.seq, 4u);
  EXPECT_EQ(MustBalance("acme", "alice").pending, 40u);
  r = Apply1(Capture("acme", "hold-5", 40, "cap-6"));
  EXPECT_EQ(r.code, Code::kOk);
}

TEST_F(HoldTest, CaptureTakesTheHoldsSoonestExpiringPiecesFirst) {
  const int64_t soon = kStartNs + 10 * kDayNs;
  MustApply({EarnExpiring("acme", "alice", 30, soon, "e2"),
             Hold("acme", "alice", 50, 300, "hold-5"),  // 30 from e2, 20 from e1
             Capture("acme", "hold-5", 40, "cap-5")});  // e2's 30, then 10 of e1's
  const Balance b = MustBalance("acme", "alice");
  EXPECT_EQ(b.posted, 90u);
  ASSERT_EQ(b.expiring.size(), 1u);
  EXPECT_NE(b.expiring[0].expires_at_ns, soon);
  EXPECT_EQ(b.expiring[0].points, 90u);
}

TEST_F(HoldTest, HeldPointsThatExpireMeanwhileComeBackExpiredAndAreSwept) {
  const int64_t soon = kStartNs + 3600 * kNanosPerSecond;
  MustApply(
      {EarnExpiring("acme", "alice", 30, soon, "e2"), Hold("acme", "alice", 30, 7200, "hold-5")});
  clock_.Set(soon + 1);
  EXPECT_TRUE(MustCollectDue(clock_.NowNs()).empty());  // the hold has them, not a lot
  ASSERT_EQ(Apply1(Release("acme", "hold-5", "rel-5")).code, Code::kOk);
  Balance b = MustBalance("acme", "alice");
  EXPECT_EQ(b.expired, 30u);
  EXPECT_EQ(b.available, 100u);

  const std::vector<Transaction> due = MustCollectDue(clock_.NowNs());
  ASSERT_EQ(due.size(), 1u);
  const Result swept = Apply1(due[0]);
  EXPECT_EQ(swept.code, Code::kOk);
  EXPECT_EQ(swept.points, 30u);
  b = MustBalance("acme", "alice");
  EXPECT_EQ(b.posted, 100u);
  EXPECT_EQ(b.expired, 0u);
}

// A hold reserves its points while they are available; a capture before
// the deadline redeems them even if their expiry has passed since, like a
// card authorization (docs/semantics.md, "Holds and lots").
TEST_F(HoldTest, ACaptureRedeemsPiecesThatExpiredDuringTheHold) {
  const int64_t soon = kStartNs + 3600 * kNanosPerSecond;
  MustApply(
      {EarnExpiring("acme", "alice", 30, soon, "e2"), Hold("acme", "alice", 30, 7200, "hold-5")});
  clock_.Set(soon + 1);
  const Result captured = Apply1(Capture("acme", "hold-5", 0, "cap-5"));
  ASSERT_EQ(captured.code, Code::kOk);
  EXPECT_EQ(captured.points, 30u);
  const Balance b = MustBalance("acme", "alice");
  EXPECT_EQ(b.posted, 100u);
  EXPECT_EQ(b.pending, 0u);
  EXPECT_EQ(b.expired, 0u);
  EXPECT_EQ(b.available, 100u);
  EXPECT_TRUE(MustCollectDue(clock_.NowNs()).empty());  // nothing left to expire
}

TEST_F(HoldTest, AnEndedHoldIsHoldNotPending) {
  MustApply({Hold("acme", "alice", 40, 300, "hold-5"), Capture("acme", "hold-5", 10, "cap-5"),
             Hold("acme", "alice", 20, 300, "hold-6"), Release("acme", "hold-6", "rel-6")});
  for (const Transaction& t :
       {Capture("acme", "hold-5", 10, "cap-again"), Release("acme", "hold-5", "rel-5"),
        Capture("acme", "hold-6", 10, "cap-6"), Release("acme", "hold-6", "rel-again")}) {
    const Result r = Apply1(t);
    EXPECT_EQ(r.code, Code::kHoldNotPending);
    EXPECT_NE(r.seq, 0u);
  }
  EXPECT_EQ(Posted("acme", "alice"), 90u);
  EXPECT_EQ(MustBalance("acme", "alice").pending, 0u);
}

TEST_F(HoldTest, AnUnknownHoldIsHoldNotFound) {
  ASSERT_EQ(Apply1(ProgramCreate("hotel")).code, Code::kOk);
  ASSERT_EQ(Apply1(Hold("acme", "alice", 40, 300, "hold-5")).code, Code::kOk);
  Transaction other_program = Capture("hotel", "hold-5", 0, "cap-1");
  other_program.ref = TxIdFromKey("acme", "hold-5");
  for (const Transaction& t :
       {Capture("acme", "no-such-hold", 0, "cap-2"), Release("acme", "no-such-hold", "rel-2"),
        Capture("acme", "e1", 0, "cap-3"),  // an earn, not a hold
        other_program}) {
    const Result r = Apply1(t);
    EXPECT_EQ(r.code, Code::kHoldNotFound);
    EXPECT_NE(r.seq, 0u);
  }
  EXPECT_EQ(MustBalance("acme", "alice").pending, 40u);
}

TEST_F(HoldTest, ReleaseGivesEveryHeldPointBackWithItsExpiry) {
  const int64_t soon = kStartNs + 10 * kDayNs;
  MustApply({EarnExpiring("acme", "alice", 30, soon, "e2"),
             Hold("acme", "alice", 50, 300, "hold-5")});  // 30 from e2, 20 from e1
  ASSERT_EQ(Available("acme", "alice"), 80u);
  const Result r = Apply1(Release("acme", "hold-5", "rel-5"));
  EXPECT_EQ(r.code, Code::kOk);
  const Balance b = MustBalance("acme", "alice");
  EXPECT_EQ(b.posted, 130u);
  EXPECT_EQ(b.pending, 0u);
  EXPECT_EQ(b.available, 130u);
  ASSERT_EQ(b.expiring.size(), 2u);
  EXPECT_EQ(b.expiring[0].expires_at_ns, soon);
  EXPECT_EQ(b.expiring[0].points, 30u);
  EXPECT_EQ(b.expiring[1].points, 100u);
}

TEST_F(HoldTest, AHoldPastItsTimeoutCannotBeCapturedAndTheSweepReleasesIt) {
  const Result hold = Apply1(Hold("acme", "alice", 40, 60, "hold-5"));
  ASSERT_EQ(hold.code, Code::kOk);
  EXPECT_TRUE(MustCollectDue(hold.timestamp_ns + 60 * kNanosPerSecond - 1).empty());

  clock_.Set(hold.timestamp_ns + 60 * kNanosPerSecond);  // the deadline itself
  EXPECT_EQ(Apply1(Capture("acme", "hold-5", 0, "cap-5")).code, Code::kHoldNotPending);
  EXPECT_EQ(MustBalance("acme", "alice").pending, 40u);  // until the sweep runs

  const std::vector<Transaction> due = MustCollectDue(clock_.NowNs());
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].kind, Kind::kHoldTimeout);
  EXPECT_EQ(due[0].ref, TxIdFromKey("acme", "hold-5"));
  EXPECT_EQ(due[0].id, DeriveId("acme/hold-timeout/" + IdToHex(TxIdFromKey("acme", "hold-5"))));
  EXPECT_EQ(Apply1(due[0], PostOnly()).code, Code::kPermissionDenied);  // the server's own kind
  const Result swept = Apply1(due[0]);
  EXPECT_EQ(swept.code, Code::kOk);
  const Balance b = MustBalance("acme", "alice");
  EXPECT_EQ(b.pending, 0u);
  EXPECT_EQ(b.available, 100u);
  EXPECT_TRUE(MustCollectDue(clock_.NowNs()).empty());

  const Result again = Apply1(due[0]);  // a second sweep books nothing
  EXPECT_EQ(again.code, Code::kOk);
  EXPECT_TRUE(again.duplicate);
  EXPECT_EQ(again.seq, swept.seq);
  EXPECT_EQ(Apply1(Release("acme", "hold-5", "rel-5")).code, Code::kHoldNotPending);
}

// A timeout applied before the deadline (a sweep with a future --as-of, a
// clock that stepped back) is refused without taking the hold's derived id:
// the real timeout, later, still releases the hold.
TEST_F(HoldTest, AnEarlyTimeoutIsRefusedWithoutTakingTheId) {
  const Result hold = Apply1(Hold("acme", "alice", 40, 60, "hold-6"));
  ASSERT_EQ(hold.code, Code::kOk);
  const int64_t deadline = hold.timestamp_ns + 60 * kNanosPerSecond;
  const std::vector<Transaction> due = MustCollectDue(deadline);
  ASSERT_EQ(due.size(), 1u);
  const Result early = Apply1(due[0]);  // the clock is still before the deadline
  EXPECT_EQ(early.code, Code::kHoldNotPending);
  EXPECT_EQ(early.seq, 0u);  // not recorded
  EXPECT_EQ(MustBalance("acme", "alice").pending, 40u);

  clock_.Set(deadline);
  const Result swept = Apply1(due[0]);
  EXPECT_EQ(swept.code, Code::kOk);
  EXPECT_FALSE(swept.duplicate);
  EXPECT_EQ(MustBalance("acme", "alice").pending, 0u);
}

// A timeout posted before its hold exists (ids are predictable: the hold's
// is the client's, the timeout's derives from it) takes no id, so the
// hold made later still times out (record format 5; found in review,
// session 19).
TEST_F(HoldTest, ATimeoutBeforeItsHoldTakesNoId) {
  const Result hold = Apply1(Hold("acme", "alice", 40, 60, "hold-7"));
  ASSERT_EQ(hold.code, Code::kOk);
  const std::vector<Transaction> due = MustCollectDue(hold.timestamp_ns + 60 * kNanosPerSecond);
  ASSERT_EQ(due.size(), 1u);
  Transaction early = due[0];
  early.ref = TxIdFromKey("acme", "hold-8");  // not made yet
  early.id = DeriveId("acme/hold-timeout/" + IdToHex(early.ref));
  const Result pre = Apply1(early);
  EXPECT_EQ(pre.code, Code::kHoldNotFound);
  EXPECT_EQ(pre.seq, 0u);  // not recorded
  ASSERT_EQ(Apply1(Hold("acme", "alice", 10, 60, "hold-8")).code, Code::kOk);
  clock_.Set(clock_.NowNs() + 61 * kNanosPerSecond);
  size_t timed_out = 0;
  for (const Transaction& t : MustCollectDue(clock_.NowNs())) {
    const Result r = Apply1(t);
    EXPECT_EQ(r.code, Code::kOk);
    EXPECT_FALSE(r.duplicate);
    ++timed_out;
  }
  EXPECT_EQ(timed_out, 2u);
  EXPECT_EQ(MustBalance("acme", "alice").pending, 0u);
}

// A timeout must carry the id derived from the hold it names (format 6).
// With hold A's id and hold B's ref (B captured), it was recorded as
// hold_not_pending, took A's one timeout id, and A's points stayed
// reserved for good: the sweep's timeout was an id_conflict, and a
// capture or release past the deadline is hold_not_pending (found in
// review, session 21).
TEST_F(HoldTest, ATimeoutWithAnotherHoldsIdTakesNoId) {
  MustApply({Hold("acme", "alice", 40, 60, "hold-a"), Hold("acme", "alice", 10, 60, "hold-b"),
             Capture("acme", "hold-b", 0, "cap-b")});
  Transaction forged;
  forged.kind = Kind::kHoldTimeout;
  forged.program = "acme";
  forged.ref = TxIdFromKey("acme", "hold-b");
  forged.id = HoldTimeoutId("acme", TxIdFromKey("acme", "hold-a"));
  const Result r = Apply1(forged);
  EXPECT_EQ(r.code, Code::kInvalidAmount);
  EXPECT_EQ(r.seq, 0u);  // not recorded
  ExpectTheSweepTimesItOut();
}

// Nor may a timeout carry anything the sweep's would not (a time, a
// reason): stored under the hold's one timeout id, it left the sweep's own
// timeout an id_conflict (found in review, session 21).
TEST_F(HoldTest, ATimeoutWithFieldsTheSweepsHasNotTakesNoId) {
  ASSERT_EQ(Apply1(Hold("acme", "alice", 40, 60, "hold-a")).code, Code::kOk);
  clock_.Set(clock_.NowNs() + 61 * kNanosPerSecond);
  const std::vector<Transaction> due = MustCollectDue(clock_.NowNs());
  ASSERT_EQ(due.size(), 1u);
  Transaction with_time = due[0];
  with_time.time_ns = -7;
  Transaction with_reason = due[0];
  with_reason.reason = "by hand";
  for (const Transaction& t : {with_time, with_reason}) {
    const Result r = Apply1(t);
    EXPECT_EQ(r.code, Code::kInvalidAmount);
    EXPECT_EQ(r.seq, 0u);
  }
  const Result timed_out = Apply1(due[0]);
  EXPECT_EQ(timed_out.code, Code::kOk);
  EXPECT_FALSE(timed_out.duplicate);
}

// A hold's timeout id is derived from the hold's id, so any client can
// compute it and take it first with a transaction of another kind (a
// redeem of nobody, recorded as account_not_found). The sweep's timeout
// was then id_conflict every second, and the hold stayed pending for good
// (found in review, session 31). Since record format 7 the timeout is
// decided by the hold's state and leaves the id to its holder.
Transaction RedeemUnderId(const Id& id) {
  Transaction t = Redeem("acme", "nobody", 1, "unused");
  t.id = id;
  return t;
}

TEST_F(HoldTest, AnotherKindUnderAHoldsTimeoutIdDoesNotKeepItPending) {
  ASSERT_EQ(Apply1(Hold("acme", "alice", 30, 60, "hold-a")).code, Code::kOk);
  const Id timeout_id = HoldTimeoutId("acme", TxIdFromKey("acme", "hold-a"));
  const Result squat = Apply1(RedeemUnderId(timeout_id));
  ASSERT_EQ(squat.code, Code::kAccountNotFound);
  ASSERT_NE(squat.seq, 0u);  // recorded: the id is taken
  clock_.Set(clock_.NowNs() + 61 * kNanosPerSecond);
  const std::vector<Transaction> due = MustCollectDue(clock_.NowNs());
  ASSERT_EQ(due.size(), 1u);
  ASSERT_EQ(due[0].id, timeout_id);
  const Result timed_out = Apply1(due[0]);
  EXPECT_EQ(timed_out.code, Code::kOk);
  EXPECT_FALSE(timed_out.duplicate);
  EXPECT_GT(timed_out.seq, squat.seq);
  EXPECT_EQ(MustBalance("acme", "alice").pending, 0u);
  EXPECT_EQ(MustBalance("acme", "alice").available, 100u);
  EXPECT_TRUE(MustCollectDue(clock_.NowNs()).empty());
  // Sent again (a sweep's retry): the hold's state answers, nothing is
  // recorded, and the id still names the redeem.
  const uint64_t head = MustHead().seq;
  const Result again = Apply1(due[0]);
  EXPECT_EQ(again.code, Code::kHoldNotPending);
  EXPECT_EQ(again.seq, 0u);
  EXPECT_EQ(MustHead().seq, head);
  absl::StatusOr<std::optional<TxRecord>> holder = ledger_->GetTransaction(timeout_id);
  ASSERT_TRUE(holder.ok() && holder->has_value());
  EXPECT_EQ((*holder)->tx.kind, Kind::kRedeem);
  // The rebuild from seq 1 decides the same: the id stays the redeem's.
  ExpectAuditClean();
}

// The hold's own timeout, as the sweep makes it, posted before its time.
Transaction TimeoutOf(const std::string& hold_key) {
  Transaction t;
  t.kind = Kind::kHoldTimeout;
  t.program = "acme";
  t.ref = TxIdFromKey("acme", hold_key);
  t.id = HoldTimeoutId("acme", t.ref);
  return t;
}

// A linked chain [release H, H's timeout] before H's deadline: the release
// succeeds in the chain, the timeout is hold_not_pending, the chain rolls
// back and H is pending again. Until format 7 that rejection was recorded
// again outside the chain, under the one id H's timeout has, and H's
// points stayed reserved for good (found in review, session 31). Since,
// a sweep's item never takes its id with a rejection.
TEST_F(HoldTest, AChainThatFailsOnAHoldsTimeoutLeavesTheIdToTheSweep) {
  ASSERT_EQ(Apply1(Hold("acme", "alice", 30, 60, "hold-a")).code, Code::kOk);
  const uint64_t head = MustHead().seq;
  const std::vector<Result> chain = Apply({Linked(Release("acme", "hold-a", "rel-a")), TimeoutOf("hold-a")});
  EXPECT_EQ(chain[0].code, Code::kLinkedEventFailed);
  EXPECT_EQ(chain[1].code, Code::kHoldNotPending);
  EXPECT_EQ(chain[1].seq, 0u);  // not recorded
  EXPECT_EQ(MustHead().seq, head);
  EXPECT_EQ(MustBalance("acme", "alice").pending, 30u);
  ExpectTheSweepTimesItOut();
}

// A hold's points go back into their lot only while it is there (format 8):
// once the sweep booked the lot (here with an --as-of past its expiry,
// while the hold was pending), they come back as a new lot, which the
// next sweep books under its own id. Refilled, the booked lot's id would
// be taken and those points would never expire.
TEST_F(HoldTest, PointsGivenBackAfterTheSweepBookedTheirLotExpireAtTheNextSweep) {
  ASSERT_EQ(Apply1(EarnExpiring("acme", "bob", 100, kStartNs + kDayNs, "e")).code, Code::kOk);
  ASSERT_EQ(Apply1(Hold("acme", "bob", 60, 3 * 86400, "hold-b")).code, Code::kOk);
  const int64_t as_of = kStartNs + 2 * kDayNs;
  std::vector<Transaction> due = MustCollectDue(as_of);
  ASSERT_EQ(due.size(), 1u);
  Result swept = Apply1(due[0]);
  ASSERT_EQ(swept.code, Code::kOk);
  EXPECT_EQ(swept.points, 40u);
  ASSERT_EQ(Apply1(Release("acme", "hold-b", "rel-b")).code, Code::kOk);
  const std::vector<LotInfo> lots = MustLots("acme", "bob");
  ASSERT_EQ(lots.size(), 1u);
  EXPECT_EQ(lots[0].source_seq, FindTx("acme", "rel-b")->seq);
  EXPECT_EQ(lots[0].remaining, 60u);
  due = MustCollectDue(as_of);
  ASSERT_EQ(due.size(), 1u);
  swept = Apply1(due[0]);
  ASSERT_EQ(swept.code, Code::kOk);
  EXPECT_FALSE(swept.duplicate);
  EXPECT_EQ(swept.points, 60u);
  EXPECT_TRUE(MustLots("acme", "bob").empty());
  EXPECT_EQ(MustSystemAccount("acme", "breakage").credits_posted, 100u);
  ExpectAuditClean();
}

// Points given back to a lot past its expiry, not swept yet (the lot
// there, or made again), expire with it at the next sweep, once.
TEST_F(HoldTest, PointsGivenBackToALotPastItsExpiryAreSweptWithIt) {
  ASSERT_EQ(Apply1(EarnExpiring("acme", "bob", 100, kStartNs + 30 * kNanosPerSecond, "e")).code,
            Code::kOk);
  ASSERT_EQ(Apply1(EarnExpiring("acme", "carol", 50, kStartNs + 30 * kNanosPerSecond, "f")).code,
            Code::kOk);
  ASSERT_EQ(Apply1(Hold("acme", "bob", 60, 600, "hold-b")).code, Code::kOk);    // e keeps 40
  ASSERT_EQ(Apply1(Hold("acme", "carol", 50, 600, "hold-c")).code, Code::kOk);  // f emptied
  clock_.Set(kStartNs + 60 * kNanosPerSecond);  // both lots past expiry, not swept
  ASSERT_EQ(Apply1(Release("acme", "hold-b", "rel-b")).code, Code::kOk);
  ASSERT_EQ(Apply1(Release("acme", "hold-c", "rel-c")).code, Code::kOk);
  std::vector<LotInfo> lots = MustLots("acme", "bob");
  ASSERT_EQ(lots.size(), 1u);
  EXPECT_EQ(lots[0].remaining, 100u);
  EXPECT_EQ(lots[0].source_seq, FindTx("acme", "e")->seq);
  lots = MustLots("acme", "carol");
  ASSERT_EQ(lots.size(), 1u);
  EXPECT_EQ(lots[0].remaining, 50u);
  EXPECT_EQ(lots[0].source_seq, FindTx("acme", "f")->seq);
  const std::vector<Transaction> due = MustCollectDue(clock_.NowNs());
  ASSERT_EQ(due.size(), 2u);
  uint64_t expired = 0;
  for (const Transaction& t : due) {
    const Result r = Apply1(t);
    ASSERT_EQ(r.code, Code::kOk);
    expired += r.points;
  }
  EXPECT_EQ(expired, 150u);
  EXPECT_TRUE(MustCollectDue(clock_.NowNs()).empty());
  EXPECT_EQ(MustSystemAccount("acme", "breakage").credits_posted, 150u);
  ExpectAuditClean();
}

// A ledger where format 6 recorded that rejection heals under format 7:
// the sweep's item, answered by a recorded rejection, is decided again by
// the hold's state.
TEST_F(HoldTest, ATimeoutRecordedAsARejectionByFormatSixIsDecidedAgain) {
  record_format_ = 6;
  Reopen();
  ASSERT_EQ(Apply1(Hold("acme", "alice", 30, 60, "hold-a")).code, Code::kOk);
  const std::vector<Result> chain = Apply({Linked(Release("acme", "hold-a", "rel-a")), TimeoutOf("hold-a")});
  ASSERT_EQ(chain[1].code, Code::kHoldNotPending);
  ASSERT_NE(chain[1].seq, 0u);  // format 6: recorded, the id taken
  clock_.Set(clock_.NowNs() + 61 * kNanosPerSecond);
  std::vector<Transaction> due = MustCollectDue(clock_.NowNs());
  ASSERT_EQ(due.size(), 1u);
  const Result stuck = Apply1(due[0]);
  EXPECT_EQ(stuck.code, Code::kHoldNotPending);
  EXPECT_TRUE(stuck.duplicate);
  record_format_ = kRecordFormat;
  Reopen();
  due = MustCollectDue(clock_.NowNs());
  ASSERT_EQ(due.size(), 1u);
  const Result timed_out = Apply1(due[0]);
  EXPECT_EQ(timed_out.code, Code::kOk);
  EXPECT_FALSE(timed_out.duplicate);
  EXPECT_NE(timed_out.seq, 0u);
  EXPECT_EQ(MustBalance("acme", "alice").pending, 0u);
  // The id keeps its first record; the reopened ledger and the rebuild agree.
  absl::StatusOr<std::optional<TxRecord>> holder = ledger_->GetTransaction(due[0].id);
  ASSERT_TRUE(holder.ok() && holder->has_value());
  EXPECT_EQ((*holder)->seq, chain[1].seq);
  Reopen();
  EXPECT_EQ(MustBalance("acme", "alice").pending, 0u);
  ExpectAuditClean();
}

// Format 6 keeps its rule: a ledger written by an older binary replays as
// it was decided (docs/storage.md, "Compatibility").
TEST_F(HoldTest, AFormatSixTimeoutUnderATakenIdStaysAConflict) {
  record_format_ = 6;
  Reopen();
  ASSERT_EQ(Apply1(Hold("acme", "alice", 30, 60, "hold-a")).code, Code::kOk);
  const Id timeout_id = HoldTimeoutId("acme", TxIdFromKey("acme", "hold-a"));
  ASSERT_EQ(Apply1(RedeemUnderId(timeout_id)).code, Code::kAccountNotFound);
  clock_.Set(clock_.NowNs() + 61 * kNanosPerSecond);
  const std::vector<Transaction> due = MustCollectDue(clock_.NowNs());
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(Apply1(due[0]).code, Code::kIdConflict);
  EXPECT_EQ(MustBalance("acme", "alice").pending, 30u);
}
}  // namespace
}  // namespace pointledger::ledger::testing
