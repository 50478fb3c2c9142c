// Identifiers and names (SPEC §1 "account id", "transaction", §5 spellings):
// any client must be able to compute the same ids, so the derivations are
// pinned to SHA-256 test vectors rather than to the engine's own output.
#include <string>

#include "tests/ledger/ledger_fixture.h"

namespace pointledger::ledger::testing {
namespace {

TEST(IdsTest, DeriveIdIsTheFirstSixteenBytesOfSha256) {
  // SHA-256("abc") = ba7816bf8f01cfea414140de5dae2223 b00361a396177a9cb410ff61f20015ad
  EXPECT_EQ(IdToHex(DeriveId("abc")), "ba7816bf8f01cfea414140de5dae2223");
  // SHA-256("") = e3b0c44298fc1c149afbf4c8996fb924 27ae41e4649b934ca495991b7852b855
  EXPECT_EQ(IdToHex(DeriveId("")), "e3b0c44298fc1c149afbf4c8996fb924");
}

TEST(IdsTest, AccountAndTransactionIdsDeriveFromTheirDocumentedText) {
  EXPECT_EQ(MemberAccountId("acme", "alice"), DeriveId("acme/member/alice"));
  EXPECT_EQ(SystemAccountId("acme", "issuance"), DeriveId("acme/issuance"));
  EXPECT_EQ(PartnerAccountId("acme", "hotelco"), DeriveId("acme/partner/hotelco"));
  EXPECT_EQ(TxIdFromKey("acme", "order-1001"), DeriveId("acme/tx/order-1001"));
  EXPECT_NE(MemberAccountId("acme", "alice"), MemberAccountId("hotel", "alice"));
}

TEST(IdsTest, HexRoundTripsAndRejectsAnythingElse) {
  const Id id = TxIdFromKey("acme", "order-1001");
  const std::string hex = IdToHex(id);
  EXPECT_EQ(hex.size(), 32u);
  EXPECT_EQ(IdFromHex(hex), id);
  EXPECT_FALSE(IdFromHex(hex.substr(1)).has_value());
  EXPECT_FALSE(IdFromHex(hex + "0").has_value());
  EXPECT_FALSE(IdFromHex(std::string(31, '0') + "g").has_value());
}

TEST(NamesTest, EveryCodeAndKindHasItsSpecSpellingBothWays) {
  EXPECT_EQ(CodeName(Code::kOk), "ok");
  EXPECT_EQ(CodeName(Code::kInsufficientPoints), "insufficient_points");
  EXPECT_EQ(CodeName(Code::kPermissionDenied), "permission_denied");
  for (int i = 0; i <= kCodeMax; ++i) {
    const Code code = static_cast<Code>(i);
    EXPECT_EQ(CodeFromName(CodeName(code)), code) << i;
  }
  EXPECT_EQ(KindName(Kind::kAccountClose), "account_close");
  for (int i = 1; i <= kKindMax; ++i) {
    const Kind kind = static_cast<Kind>(i);
    EXPECT_EQ(KindFromName(KindName(kind)), kind) << i;
  }
  EXPECT_FALSE(CodeFromName("nope").has_value());
  EXPECT_FALSE(KindFromName("nope").has_value());
}

TEST(NamesTest, RequestOnlyRejectionsAreExactlyTheOnesSpecThreeLists) {
  const Code request_only[] = {
      Code::kIdZero,           Code::kInvalidAmount,     Code::kFieldTooLong,   Code::kExpiryInPast,
      Code::kPermissionDenied, Code::kLinkedEventFailed, Code::kLinkedChainOpen};
  for (Code code : request_only) EXPECT_TRUE(IsRequestOnlyRejection(code)) << CodeName(code);
  const Code recorded[] = {Code::kOk,
                           Code::kProgramNotFound,
                           Code::kProgramExists,
                           Code::kAccountNotFound,
                           Code::kAccountClosed,
                           Code::kPartnerNotFound,
                           Code::kOverflow,
                           Code::kSameAccount,
                           Code::kInsufficientPoints,
                           Code::kReferralAlreadyRewarded,
                           Code::kOriginalNotFound,
                           Code::kOriginalNotReversible,
                           Code::kReversalExceedsOriginal,
                           Code::kHoldNotFound,
                           Code::kHoldNotPending,
                           Code::kCaptureExceedsHold};
  for (Code code : recorded) EXPECT_FALSE(IsRequestOnlyRejection(code)) << CodeName(code);
}

}  // namespace
}  // namespace pointledger::ledger::testing
