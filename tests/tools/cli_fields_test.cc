// The JSON-lines parser of `post --file`: every accepted shape and every
// error, each with its line number.
#include "tools/cli_fields.h"

#include <string>

#include "gtest/gtest.h"
#include "ledger/ledger.h"
#include "tools/cli_time.h"

namespace pointledger::tools {
namespace {

using ledger::Kind;
using ledger::TxIdFromKey;

PostLine MustParse(std::string_view line) {
  absl::StatusOr<PostLine> p = ParsePostLine(line, 7);
  EXPECT_TRUE(p.ok()) << line << " -> " << p.status();
  return p.ok() ? *p : PostLine{};
}

std::string ErrorOf(std::string_view line, uint64_t line_number = 12) {
  absl::StatusOr<PostLine> p = ParsePostLine(line, line_number);
  EXPECT_FALSE(p.ok()) << line;
  return p.ok() ? "" : std::string(p.status().message());
}

TEST(PostLine, ParsesAnEarn) {
  PostLine p = MustParse(
      R"({"kind":"earn","id":"order-1001","program":"acme","member":"alice","points":120,)"
      R"("partner":"hotelco","expires_at":"2027-12-31T00:00:00Z","lock_days":3,"order_ref":"o1",)"
      R"("reason":"r","metadata":"m","linked":true})");
  EXPECT_EQ(p.line_number, 7u);
  EXPECT_EQ(p.key, "order-1001");
  EXPECT_EQ(p.tx.kind, Kind::kEarn);
  EXPECT_EQ(p.tx.id, TxIdFromKey("acme", "order-1001"));
  EXPECT_EQ(p.tx.program, "acme");
  EXPECT_EQ(p.tx.member, "alice");
  EXPECT_EQ(p.tx.points, 120u);
  EXPECT_EQ(p.tx.partner, "hotelco");
  EXPECT_EQ(p.tx.time_ns, *ParseTime("2027-12-31T00:00:00Z"));
  EXPECT_EQ(p.tx.lock_days, 3);
  EXPECT_EQ(p.tx.order_ref, "o1");
  EXPECT_EQ(p.tx.reason, "r");
  EXPECT_EQ(p.tx.metadata, "m");
  EXPECT_TRUE(p.tx.linked);
}

TEST(PostLine, ParsesEveryPostableKind) {
  PostLine p = MustParse(R"({"kind":"program_create","id":"p","name":"acme","currency":"USD",)"
                         R"("point_value_micros":5000,"expiry_days":365,"lock_days":2,"no_auto_open":true})");
  EXPECT_EQ(p.tx.kind, Kind::kProgramCreate);
  EXPECT_EQ(p.tx.program, "acme");
  EXPECT_EQ(p.tx.currency, "USD");
  EXPECT_EQ(p.tx.point_value_micros, 5000u);
  EXPECT_EQ(p.tx.expiry_days, 365u);
  EXPECT_EQ(p.tx.lock_days, 2);
  EXPECT_FALSE(p.tx.auto_open);
  EXPECT_EQ(p.tx.id, TxIdFromKey("acme", "p"));
  // "program" works as well as "name" for program_create.
  p = MustParse(R"({"kind":"program_create","id":"p","program":"acme","currency":"USD",)"
                R"("point_value_micros":5000,"expiry_days":0})");
  EXPECT_EQ(p.tx.program, "acme");
  EXPECT_TRUE(p.tx.auto_open);

  p = MustParse(R"({"kind":"partner_create","id":"x","program":"acme","name":"hotelco",)"
                R"("earn_price_micros":9000,"redeem_price_micros":7000})");
  EXPECT_EQ(p.tx.partner, "hotelco");
  EXPECT_EQ(p.tx.earn_price_micros, 9000u);
  EXPECT_EQ(p.tx.redeem_price_micros, 7000u);
  p = MustParse(R"({"kind":"partner_price","id":"x","program":"acme","partner":"hotelco",)"
                R"("earn_price_micros":1,"redeem_price_micros":2,"effective_from":"2027-01-01T00:00:00Z"})");
  EXPECT_EQ(p.tx.kind, Kind::kPartnerPrice);
  EXPECT_EQ(p.tx.partner, "hotelco");
  EXPECT_EQ(p.tx.time_ns, *ParseTime("2027-01-01T00:00:00Z"));

  p = MustParse(R"({"kind":"redeem","id":"r","program":"acme","member":"alice","points":5})");
  EXPECT_EQ(p.tx.kind, Kind::kRedeem);
  p = MustParse(R"({"kind":"referral","id":"r","program":"acme","referrer":"alice","referee":"bob",)"
                R"("referrer_points":500,"referee_points":250})");
  EXPECT_EQ(p.tx.member, "alice");
  EXPECT_EQ(p.tx.member2, "bob");
  EXPECT_EQ(p.tx.points, 500u);
  EXPECT_EQ(p.tx.points2, 250u);
  p = MustParse(R"({"kind":"transfer","id":"t","program":"acme","from":"alice","to":"carol","points":10})");
  EXPECT_EQ(p.tx.member, "alice");
  EXPECT_EQ(p.tx.member2, "carol");
  p = MustParse(R"({"kind":"adjust","id":"a","program":"acme","member":"alice","delta":-20,"reason":"x"})");
  EXPECT_EQ(p.tx.delta, -20);
  p = MustParse(R"({"kind":"reverse","id":"rv","program":"acme","original":"order-1","points":60,)"
                R"("clawback_partial":true})");
  EXPECT_EQ(p.tx.ref, TxIdFromKey("acme", "order-1"));
  EXPECT_EQ(p.tx.points, 60u);
  EXPECT_TRUE(p.tx.clawback_partial);
  p = MustParse(R"({"kind":"hold","id":"h","program":"acme","member":"alice","points":40,"timeout":300})");
  EXPECT_EQ(p.tx.timeout_s, 300u);
  p = MustParse(R"({"kind":"capture","id":"c","program":"acme","hold":"h","points":30})");
  EXPECT_EQ(p.tx.ref, TxIdFromKey("acme", "h"));
  p = MustParse(R"({"kind":"release","id":"c","program":"acme","hold":"h"})");
  EXPECT_EQ(p.tx.kind, Kind::kRelease);
  EXPECT_EQ(p.tx.ref, TxIdFromKey("acme", "h"));
  p = MustParse(R"({"kind":"settle","id":"s","program":"acme","partner":"hotelco","to":"2026-12-01T00:00:00Z"})");
  EXPECT_EQ(p.tx.kind, Kind::kSettle);
  EXPECT_EQ(p.tx.time_ns, *ParseTime("2026-12-01T00:00:00Z"));
  p = MustParse(R"({"kind":"account_close","id":"c","program":"acme","member":"alice"})");
  EXPECT_EQ(p.tx.kind, Kind::kAccountClose);
}

TEST(PostLine, AHexLookingIdIsStillAKey) {
  const std::string hex = "0123456789abcdef0123456789abcdef";
  PostLine p = MustParse(R"({"kind":"release","id":")" + hex + R"(","program":"acme","hold":"h"})");
  EXPECT_EQ(p.key, hex);
  EXPECT_EQ(p.tx.id, TxIdFromKey("acme", hex));
}

TEST(PostLine, ToleratesWhitespaceAndFieldOrder) {
  PostLine p = MustParse("  { \"points\" : 1 , \"member\":\"m\", \"program\":\"p\", \"id\":\"i\", "
                         "\"kind\":\"earn\" }\r");
  EXPECT_EQ(p.tx.points, 1u);
  EXPECT_TRUE(IsBlankLine(" \t\r"));
  EXPECT_TRUE(IsBlankLine(""));
  EXPECT_FALSE(IsBlankLine(" {}"));
}

TEST(PostLine, BadJson) {
  EXPECT_EQ(ErrorOf(R"({"kind":"earn",)").rfind("line 12: invalid JSON", 0), 0u);
  EXPECT_EQ(ErrorOf("not json").rfind("line 12: invalid JSON", 0), 0u);
  EXPECT_EQ(ErrorOf(R"({"kind":"earn"} {})").rfind("line 12: invalid JSON", 0), 0u);
  EXPECT_EQ(ErrorOf("[1,2]"), "line 12: expected a JSON object");
  EXPECT_EQ(ErrorOf("42"), "line 12: expected a JSON object");
  EXPECT_EQ(ErrorOf(R"({"kind":"earn","kind":"redeem"})"), "line 12: field \"kind\" appears twice");
}

TEST(PostLine, UnknownKind) {
  EXPECT_NE(ErrorOf(R"({"id":"x","program":"acme"})").find("line 12: missing \"kind\""),
            std::string::npos);
  const std::string e = ErrorOf(R"({"kind":"earnn","id":"x"})");
  EXPECT_EQ(e.rfind("line 12: unknown kind \"earnn\" (one of program_create,", 0), 0u) << e;
  // Generated by the sweep, never posted.
  EXPECT_NE(ErrorOf(R"({"kind":"expire","id":"x"})").find("unknown kind \"expire\""), std::string::npos);
  EXPECT_NE(ErrorOf(R"({"kind":"hold_timeout","id":"x"})").find("unknown kind"), std::string::npos);
  EXPECT_EQ(ErrorOf(R"({"kind":4,"id":"x"})"), "line 12: field \"kind\" must be a string");
}

TEST(PostLine, UnknownField) {
  const std::string e =
      ErrorOf(R"({"kind":"earn","id":"x","program":"acme","member":"a","pointz":1})", 3);
  EXPECT_EQ(e.rfind("line 3: unknown field \"pointz\" for kind earn (known: kind, linked, id,", 0), 0u)
      << e;
  // A field of another kind is unknown here.
  EXPECT_NE(ErrorOf(R"({"kind":"redeem","id":"x","program":"acme","member":"a","points":1,"delta":3})")
                .find("unknown field \"delta\""),
            std::string::npos);
}

TEST(PostLine, WrongTypes) {
  const std::string base = R"({"kind":"earn","id":"x","program":"acme","member":"a",)";
  EXPECT_EQ(ErrorOf(base + R"("points":"120"})"),
            "line 12: field \"points\" must be a non-negative integer, not a string");
  EXPECT_EQ(ErrorOf(base + R"("points":-1})"),
            "line 12: field \"points\" must be a non-negative integer, not a negative integer");
  EXPECT_EQ(ErrorOf(base + R"("points":1.5})"),
            "line 12: field \"points\" must be a non-negative integer, not a number with a fraction or out of range");
  EXPECT_EQ(ErrorOf(base + R"("points":18446744073709551616})"),
            "line 12: field \"points\" must be a non-negative integer, not a number with a fraction or out of range");
  EXPECT_EQ(ErrorOf(base + R"("points":null})"),
            "line 12: field \"points\" must be a non-negative integer, not null");
  EXPECT_EQ(ErrorOf(base + R"("points":{"a":1}})"),
            "line 12: field \"points\" must be a non-negative integer, not an object");
  EXPECT_EQ(ErrorOf(base + R"("points":1,"linked":"yes"})"),
            "line 12: field \"linked\" must be true or false, not a string");
  EXPECT_EQ(ErrorOf(R"({"kind":"earn","id":7,"program":"acme","member":"a","points":1})"),
            "line 12: field \"id\" must be a string, not an integer");
  EXPECT_EQ(ErrorOf(base + R"("points":1,"lock_days":3000000000})"),
            "line 12: field \"lock_days\" must be a 32-bit integer, not an integer");
  // -1 was the engine's "not given", silently (session 19).
  EXPECT_EQ(ErrorOf(base + R"("points":1,"lock_days":-1})"),
            "line 12: field \"lock_days\" must be a non-negative number of days, not a negative integer");
  EXPECT_EQ(ErrorOf(base + R"("points":1,"expires_at":"tomorrow"})")
                .rfind("line 12: field \"expires_at\": invalid time 'tomorrow'", 0),
            0u);
  // The epoch itself would mean "not given" (session 19).
  EXPECT_EQ(ErrorOf(base + R"("points":1,"expires_at":"1970-01-01T00:00:00Z"})")
                .rfind("line 12: field \"expires_at\": 1970-01-01T00:00:00Z itself is not accepted here", 0),
            0u);
  EXPECT_EQ(ErrorOf(R"({"kind":"settle","id":"x","program":"acme","partner":"p","to":"1970-01-01T00:00:00Z"})")
                .rfind("line 12: field \"to\": 1970-01-01T00:00:00Z itself", 0),
            0u);
  EXPECT_EQ(ErrorOf(R"({"kind":"hold","id":"x","program":"acme","member":"a","points":1,"timeout":4294967296})"),
            "line 12: field \"timeout\" must be an integer from 0 to 4294967295, not an integer");
  EXPECT_EQ(ErrorOf(R"({"kind":"adjust","id":"x","program":"acme","member":"a","delta":9223372036854775808})"),
            "line 12: field \"delta\" must be a 64-bit integer, not an integer");
}

TEST(PostLine, MissingFields) {
  EXPECT_EQ(ErrorOf(R"({"kind":"earn","id":"x","program":"acme","member":"a"})"),
            "line 12: missing field \"points\" for kind earn");
  EXPECT_EQ(ErrorOf(R"({"kind":"earn","program":"acme","member":"a","points":1})"),
            "line 12: missing field \"id\" for kind earn");
  EXPECT_EQ(ErrorOf(R"({"kind":"earn","id":"x","member":"a","points":1})"),
            "line 12: missing field \"program\" for kind earn");
  EXPECT_EQ(ErrorOf(R"({"kind":"partner_create","id":"x","program":"acme","earn_price_micros":1,"redeem_price_micros":1})"),
            "line 12: missing field \"name\" for kind partner_create");
  EXPECT_EQ(ErrorOf(R"({"kind":"program_create","id":"x","currency":"USD","point_value_micros":1,"expiry_days":1})"),
            "line 12: missing field \"program\" for kind program_create");
}

// "name" and the field it stands for must agree when both are given
// (session 33: the later one silently won).
TEST(PostLine, NameAndTheFieldItStandsForMustAgree) {
  EXPECT_EQ(ErrorOf(R"({"kind":"program_create","program":"gamma","name":"gamma2","currency":"EUR",)"
                    R"("point_value_micros":1,"expiry_days":0,"id":"g"})"),
            "line 12: fields \"name\" and \"program\" name different programs for kind program_create; give one");
  EXPECT_EQ(ErrorOf(R"({"kind":"partner_create","program":"acme","partner":"px","name":"py",)"
                    R"("earn_price_micros":1,"redeem_price_micros":1,"id":"x"})"),
            "line 12: fields \"name\" and \"partner\" name different partners for kind partner_create; give one");
  EXPECT_EQ(ErrorOf(R"({"kind":"partner_price","program":"acme","partner":"px","name":"py",)"
                    R"("earn_price_micros":1,"redeem_price_micros":1,"id":"x"})"),
            "line 12: fields \"name\" and \"partner\" name different partners for kind partner_price; give one");
  // The same name twice is no conflict.
  PostLine p = MustParse(R"({"kind":"program_create","program":"gamma","name":"gamma","currency":"EUR",)"
                         R"("point_value_micros":1,"expiry_days":0,"id":"g"})");
  EXPECT_EQ(p.tx.program, "gamma");
  p = MustParse(R"({"kind":"partner_create","program":"acme","partner":"px","name":"px",)"
                R"("earn_price_micros":1,"redeem_price_micros":1,"id":"x"})");
  EXPECT_EQ(p.tx.partner, "px");
  EXPECT_EQ(p.tx.program, "acme");
}

TEST(PostLine, FieldTooLong) {
  const std::string long_member(65, 'm');
  EXPECT_EQ(ErrorOf(R"({"kind":"earn","id":"x","program":"acme","member":")" + long_member +
                    R"(","points":1})"),
            "line 12: field \"member\" is too long (65 bytes, at most 64)");
  EXPECT_EQ(ErrorOf(R"({"kind":"earn","id":"x","program":")" + std::string(33, 'p') +
                    R"(","member":"m","points":1})"),
            "line 12: field \"program\" is too long (33 bytes, at most 32)");
  EXPECT_EQ(ErrorOf(R"({"kind":"earn","id":"x","program":"acme","member":"m","points":1,"metadata":")" +
                    std::string(257, 'x') + R"("})"),
            "line 12: field \"metadata\" is too long (257 bytes, at most 256)");
  // Exactly at the limit is fine.
  MustParse(R"({"kind":"earn","id":"x","program":"acme","member":")" + std::string(64, 'm') +
            R"(","points":1})");
}

TEST(FieldText, ParsesFlagValues) {
  const FieldSpec* points = nullptr;
  const FieldSpec* delta = nullptr;
  for (const FieldSpec& f : FindKind("adjust")->fields) {
    if (f.name == "delta") delta = &f;
  }
  for (const FieldSpec& f : FindKind("earn")->fields) {
    if (f.name == "points") points = &f;
  }
  ASSERT_NE(points, nullptr);
  ASSERT_NE(delta, nullptr);
  EXPECT_EQ(ParseFieldText(*points, "120")->u, 120u);
  EXPECT_EQ(ParseFieldText(*delta, "-20")->i, -20);
  EXPECT_EQ(ParseFieldText(*points, "x").status().message(), "--points: 'x' is not an integer from 0 to 18446744073709551615");
  EXPECT_FALSE(ParseFieldText(*points, "-1").ok());
  EXPECT_FALSE(ParseFieldText(*points, "").ok());
  EXPECT_EQ(FlagName("referrer_points"), "--referrer-points");
  // Keys never reach the server (only their hash): their limit is checked here.
  const FieldSpec& id = CommonFields()[0];
  ASSERT_EQ(id.name, "id");
  EXPECT_TRUE(ParseFieldText(id, std::string(256, 'k')).ok());
  EXPECT_EQ(ParseFieldText(id, std::string(257, 'k')).status().message(),
            "--id: the key is too long (257 bytes, at most 256)");
}

// An empty key hashes to a real id: `--id "$ORDER"` with ORDER unset would
// post once and then collide with every later empty key.
TEST(FieldText, AnEmptyKeyIsRefused) {
  const FieldSpec& id = CommonFields()[0];
  ASSERT_EQ(id.name, "id");
  EXPECT_EQ(ParseFieldText(id, "").status().message(), "--id: the key is empty");
  EXPECT_EQ(ErrorOf(R"({"kind":"earn","id":"","program":"acme","member":"a","points":1})"),
            "line 12: field \"id\" is empty");
  EXPECT_EQ(ErrorOf(R"({"kind":"reverse","id":"r","program":"acme","original":""})"),
            "line 12: field \"original\" is empty");
}

// `--delta +20` reads as the opposite of `--delta -20`; a 32-bit flag
// (--timeout, --expiry-days) past 4294967295 is refused here, not wrapped
// around to a small number on its way into the transaction.
TEST(FieldText, SignedAndThirtyTwoBitValues) {
  const FieldSpec* delta = nullptr;
  const FieldSpec* timeout = nullptr;
  for (const FieldSpec& f : FindKind("adjust")->fields) {
    if (f.name == "delta") delta = &f;
  }
  for (const FieldSpec& f : FindKind("hold")->fields) {
    if (f.name == "timeout") timeout = &f;
  }
  ASSERT_NE(delta, nullptr);
  ASSERT_NE(timeout, nullptr);
  ASSERT_TRUE(ParseFieldText(*delta, "+20").ok());
  EXPECT_EQ(ParseFieldText(*delta, "+20")->i, 20);
  EXPECT_EQ(ParseFieldText(*timeout, "4294967295")->u, 4294967295u);
  EXPECT_EQ(ParseFieldText(*timeout, "4294967296").status().message(),
            "--timeout: '4294967296' is not an integer from 0 to 4294967295");
  EXPECT_FALSE(ParseFieldText(*timeout, "18446744073709551616").ok());
}

}  // namespace
}  // namespace pointledger::tools
