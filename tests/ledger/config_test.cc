// Configuration kinds (SPEC §2 last row, docs/semantics.md): program_create,
// partner_create, partner_price, and the request checks every kind shares
// (id_zero, field_too_long, permission_denied).
#include <string>

#include "tests/ledger/ledger_fixture.h"

namespace pointledger::ledger::testing {
namespace {

using ConfigTest = LedgerTest;
using PartnerTest = AcmeTest;
using RequestCheckTest = AcmeTest;

TEST_F(ConfigTest, ProgramCreateStoresConfigAndOpensSystemAccounts) {
  const Result r = Apply1(ProgramCreate("acme", /*expiry_days=*/90, /*lock_days=*/7,
                                        /*auto_open=*/false));
  EXPECT_EQ(r.code, Code::kOk);
  EXPECT_FALSE(r.duplicate);
  EXPECT_EQ(r.seq, 1u);
  EXPECT_EQ(r.timestamp_ns, kStartNs);

  absl::StatusOr<std::optional<ProgramInfo>> program = ledger_->GetProgram("acme");
  ASSERT_TRUE(program.ok()) << program.status();
  ASSERT_TRUE(program->has_value());
  EXPECT_EQ((*program)->currency, "USD");
  EXPECT_EQ((*program)->point_value_micros, 5000u);
  EXPECT_EQ((*program)->expiry_days, 90u);
  EXPECT_EQ((*program)->lock_days, 7u);
  EXPECT_FALSE((*program)->auto_open);

  for (const char* kind :
       {"issuance", "redemption", "referral", "adjustment", "breakage", "holds"}) {
    std::optional<AccountInfo> account = FindAccount(SystemAccountId("acme", kind));
    ASSERT_TRUE(account.has_value()) << kind;
    EXPECT_EQ(account->kind, kind);
    EXPECT_EQ(account->program, "acme");
  }
}

TEST_F(ConfigTest, ProgramCreateOfAnExistingNameIsProgramExists) {
  ASSERT_EQ(Apply1(ProgramCreate("acme")).code, Code::kOk);
  Transaction again = ProgramCreate("acme", /*expiry_days=*/0);
  again.id = TxIdFromKey("acme", "program-create-2");
  const Result r = Apply1(again);
  EXPECT_EQ(r.code, Code::kProgramExists);
  EXPECT_EQ(r.seq, 2u);  // a state rejection: recorded (SPEC §3)

  absl::StatusOr<std::optional<ProgramInfo>> program = ledger_->GetProgram("acme");
  ASSERT_TRUE(program.ok() && program->has_value());
  EXPECT_EQ((*program)->expiry_days, 365u);  // the first program stands
}

TEST_F(ConfigTest, ProgramCreateWithOutOfRangeConfigIsInvalidAmount) {
  Transaction lock_negative = ProgramCreate("acme", 365, /*lock_days=*/-2);
  Transaction lock_too_long = ProgramCreate("acme", 365, kLockDaysMax + 1);
  Transaction expiry_too_long = ProgramCreate("acme", kExpiryDaysMax + 1);
  for (const Transaction& t : {lock_negative, lock_too_long, expiry_too_long}) {
    const Result r = Apply1(t);
    EXPECT_EQ(r.code, Code::kInvalidAmount);
    EXPECT_EQ(r.seq, 0u);
  }
  EXPECT_EQ(MustHead().seq, 0u);
  // The id was not taken: the corrected request succeeds as new.
  const Result r = Apply1(ProgramCreate("acme", kExpiryDaysMax, kLockDaysMax));
  EXPECT_EQ(r.code, Code::kOk);
  EXPECT_FALSE(r.duplicate);
}

TEST_F(ConfigTest, ProgramNameAndCurrencyOutsideTheirAlphabetAreFieldTooLong) {
  Transaction bad_currency = ProgramCreate("acme");
  bad_currency.currency = "usd";
  Transaction short_currency = ProgramCreate("acme");
  short_currency.currency = "US";
  for (const Transaction& t :
       {ProgramCreate("Acme"), ProgramCreate(std::string(kNameBytesMax + 1, 'a')),
        ProgramCreate("ac me"), bad_currency, short_currency}) {
    const Result r = Apply1(t);
    EXPECT_EQ(r.code, Code::kFieldTooLong) << t.program << " " << t.currency;
    EXPECT_EQ(r.seq, 0u);
  }
  EXPECT_EQ(Apply1(ProgramCreate(std::string(kNameBytesMax, 'a'))).code, Code::kOk);
  EXPECT_EQ(MustHead().seq, 1u);
}

TEST_F(PartnerTest, PartnerCreateOpensItsClearingAccount) {
  const Result r = Apply1(PartnerCreate("acme", "hotelco", 9000, 7000));
  EXPECT_EQ(r.code, Code::kOk);
  EXPECT_EQ(r.seq, 2u);
  const AccountInfo clearing = MustPartnerAccount("acme", "hotelco");
  EXPECT_EQ(clearing.kind, "partner");
  EXPECT_EQ(clearing.name, "hotelco");
  EXPECT_EQ(clearing.program, "acme");
}

TEST_F(PartnerTest, PartnerCreateOfAnExistingPartnerIsProgramExists) {
  ASSERT_EQ(Apply1(PartnerCreate("acme", "hotelco", 9000, 7000)).code, Code::kOk);
  Transaction again = PartnerCreate("acme", "hotelco", 1, 1);
  again.id = TxIdFromKey("acme", "partner-create-again");
  const Result r = Apply1(again);
  EXPECT_EQ(r.code, Code::kProgramExists);
  EXPECT_EQ(r.seq, 3u);
}

TEST_F(PartnerTest, PartnerCreateInAnUnknownProgramIsProgramNotFound) {
  const Result r = Apply1(PartnerCreate("nope", "hotelco", 9000, 7000));
  EXPECT_EQ(r.code, Code::kProgramNotFound);
  EXPECT_EQ(r.seq, 2u);
  EXPECT_FALSE(FindAccount(PartnerAccountId("nope", "hotelco")).has_value());
}

TEST_F(PartnerTest, PartnerCreateWithAnOutOfRangePriceIsInvalidAmount) {
  const Result r = Apply1(PartnerCreate("acme", "hotelco", kPointsMax + 1, 7000));
  EXPECT_EQ(r.code, Code::kInvalidAmount);
  EXPECT_EQ(r.seq, 0u);
}

TEST_F(PartnerTest, PartnerPriceNeedsAKnownProgramAndPartner) {
  Result r = Apply1(PartnerPrice("acme", "hotelco", 1, 1, 0, "price-1"));
  EXPECT_EQ(r.code, Code::kPartnerNotFound);
  EXPECT_EQ(r.seq, 2u);
  r = Apply1(PartnerPrice("nope", "hotelco", 1, 1, 0, "price-1"));
  EXPECT_EQ(r.code, Code::kProgramNotFound);
  EXPECT_EQ(r.seq, 3u);
}

TEST_F(PartnerTest, PartnerPriceEffectiveInThePastIsExpiryInPast) {
  ASSERT_EQ(Apply1(PartnerCreate("acme", "hotelco", 9000, 7000)).code, Code::kOk);
  clock_.Advance(kDayNs);
  Result r = Apply1(PartnerPrice("acme", "hotelco", 1, 1, clock_.NowNs() - 1, "price-1"));
  EXPECT_EQ(r.code, Code::kExpiryInPast);
  EXPECT_EQ(r.seq, 0u);
  // Request-only: the id stays free for a corrected attempt.
  r = Apply1(PartnerPrice("acme", "hotelco", 1, 1, clock_.NowNs() + kDayNs, "price-1"));
  EXPECT_EQ(r.code, Code::kOk);
  EXPECT_FALSE(r.duplicate);
}

TEST_F(RequestCheckTest, ZeroIdIsIdZeroAndNotRecorded) {
  Transaction t = Earn("acme", "alice", 10, "e1");
  t.id = Id{};
  const Result r = Apply1(t);
  EXPECT_EQ(r.code, Code::kIdZero);
  EXPECT_EQ(r.seq, 0u);
  EXPECT_EQ(r.timestamp_ns, 0);
  EXPECT_EQ(MustHead().seq, 1u);
  EXPECT_FALSE(FindBalance("acme", "alice").has_value());
}

TEST_F(RequestCheckTest, OverlongFieldsAreFieldTooLong) {
  Transaction member = Earn("acme", std::string(kMemberKeyBytesMax + 1, 'm'), 10, "e1");
  Transaction empty_member = Earn("acme", "", 10, "e1");
  Transaction order_ref = Earn("acme", "alice", 10, "e1");
  order_ref.order_ref = std::string(kOrderRefBytesMax + 1, 'o');
  Transaction reason = Earn("acme", "alice", 10, "e1");
  reason.reason = std::string(kReasonBytesMax + 1, 'r');
  Transaction metadata = Earn("acme", "alice", 10, "e1");
  metadata.metadata = std::string(kMetadataBytesMax + 1, 'x');
  Transaction partner = Earn("acme", "alice", 10, "e1");
  partner.partner = std::string(kNameBytesMax + 1, 'p');
  Transaction member2 = Transfer("acme", "alice", std::string(kMemberKeyBytesMax + 1, 'm'), 1, "t");
  for (const Transaction& t :
       {member, empty_member, order_ref, reason, metadata, partner, member2}) {
    const Result r = Apply1(t);
    EXPECT_EQ(r.code, Code::kFieldTooLong);
    EXPECT_EQ(r.seq, 0u);
  }
  EXPECT_EQ(MustHead().seq, 1u);

  // Exactly at the limits is fine.
  Transaction max = Earn("acme", std::string(kMemberKeyBytesMax, 'm'), 10, "e1");
  max.order_ref = std::string(kOrderRefBytesMax, 'o');
  max.reason = std::string(kReasonBytesMax, 'r');
  max.metadata = std::string(kMetadataBytesMax, 'x');
  const Result r = Apply1(max);
  EXPECT_EQ(r.code, Code::kOk);
  EXPECT_FALSE(r.duplicate);
}

TEST_F(RequestCheckTest, AdminKindsWithoutAdminScopeArePermissionDenied) {
  ASSERT_EQ(Apply1(Earn("acme", "alice", 100, "e1")).code, Code::kOk);
  Transaction program = ProgramCreate("other");
  for (const Transaction& t :
       {program, PartnerCreate("acme", "hotelco", 1, 1),
        PartnerPrice("acme", "hotelco", 1, 1, 0, "p"), Adjust("acme", "alice", 5, "a1"),
        Settle("acme", "hotelco", 0, "s1"), AccountClose("acme", "alice", "c1")}) {
    const Result r = Apply1(t, PostOnly());
    EXPECT_EQ(r.code, Code::kPermissionDenied) << KindName(t.kind);
    EXPECT_EQ(r.seq, 0u);
  }
  EXPECT_EQ(MustHead().seq, 2u);
  EXPECT_EQ(Posted("acme", "alice"), 100u);
  // Not recorded: the same adjust with the right key is a fresh success.
  const Result r = Apply1(Adjust("acme", "alice", 5, "a1"));
  EXPECT_EQ(r.code, Code::kOk);
  EXPECT_FALSE(r.duplicate);
}

TEST_F(RequestCheckTest, PostKindsWithoutPostScopeArePermissionDenied) {
  MustApply({Earn("acme", "alice", 100, "e0"), Hold("acme", "alice", 10, 300, "h0")});
  const ChainHead head = MustHead();
  Auth admin_only;
  admin_only.scopes = kScopeAdmin;
  // Every kind SPEC §6 puts under `post` (account_open too: docs/semantics.md).
  const std::vector<Transaction> post_kinds = {
      Earn("acme", "bob", 10, "e1"),          Redeem("acme", "alice", 10, "r1"),
      Referral("acme", "alice", "carol", 5, 5, "ref1"),
      Transfer("acme", "alice", "dave", 10, "t1"),
      Hold("acme", "alice", 10, 300, "h1"),   Capture("acme", "h0", 5, "c1"),
      Release("acme", "h0", "rel1"),          Reverse("acme", "e0", 10, "rev1"),
      AccountOpen("acme", "erin", "open1")};
  for (const Transaction& t : post_kinds) {
    const Result r = Apply1(t, admin_only);
    EXPECT_EQ(r.code, Code::kPermissionDenied) << KindName(t.kind);
    EXPECT_EQ(r.seq, 0u) << KindName(t.kind);
  }
  EXPECT_EQ(MustHead().seq, head.seq);
  EXPECT_EQ(Posted("acme", "alice"), 100u);
  EXPECT_EQ(MustBalance("acme", "alice").pending, 10u);
  for (const char* m : {"bob", "carol", "dave", "erin"}) EXPECT_FALSE(FindBalance("acme", m).has_value()) << m;
  // With the post scope (and no admin) every one of them is decided.
  for (const Transaction& t : post_kinds) {
    EXPECT_NE(Apply1(t, PostOnly()).code, Code::kPermissionDenied) << KindName(t.kind);
  }
}

// A key limited to acme cannot convert points into another program: the
// foreign leg is permission_denied, the chain's other member
// linked_event_failed, and nothing moves (SPEC §4, §6).
TEST_F(RequestCheckTest, ALinkedChainLeavingTheKeysProgramsFailsWhole) {
  MustApply({ProgramCreate("hotel"), Earn("acme", "alice", 100, "e0")});
  Auth acme_only = PostOnly();
  acme_only.programs = {"acme"};
  const std::vector<Result> r =
      Apply({Linked(Redeem("acme", "alice", 50, "conv-out")), Earn("hotel", "alice", 25, "conv-in")},
            acme_only);
  EXPECT_EQ(r[0].code, Code::kLinkedEventFailed);
  EXPECT_EQ(r[1].code, Code::kPermissionDenied);
  EXPECT_EQ(r[1].seq, 0u);
  EXPECT_EQ(Posted("acme", "alice"), 100u);
  EXPECT_FALSE(FindBalance("hotel", "alice").has_value());
}

TEST_F(RequestCheckTest, AKeyOutsideItsProgramsIsPermissionDenied) {
  Auth other_program;
  other_program.programs = {"hotel"};
  Result r = Apply1(Earn("acme", "alice", 10, "e1"), other_program);
  EXPECT_EQ(r.code, Code::kPermissionDenied);
  EXPECT_EQ(r.seq, 0u);

  Auth acme_only;
  acme_only.programs = {"acme"};
  r = Apply1(Earn("acme", "alice", 10, "e1"), acme_only);
  EXPECT_EQ(r.code, Code::kOk);
  EXPECT_FALSE(r.duplicate);
}

}  // namespace
}  // namespace pointledger::ledger::testing
