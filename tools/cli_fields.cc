#include "tools/cli_fields.h"

#include <algorithm>
#include <charconv>
#include <limits>
#include <map>

#include "absl/status/status.h"
#include "ledger/limits.h"
#include "ledger/status.h"
#include "net/wire.h"
#include "nlohmann/json.hpp"
#include "tools/cli_time.h"

namespace pointledger::tools {

using ledger::Kind;

bool IsJsonOnly(const FieldSpec& field) { return field.help.starts_with("(JSON only)"); }

namespace {

// A transaction's time fields use 0 for "not given" (the default: now, or
// the program's expiry), so the epoch itself would silently mean that:
// `settle close --to 1970-01-01T00:00:00Z` settled everything up to now
// (found in review, session 19).
constexpr const char* kEpochMeansUnset =
    "1970-01-01T00:00:00Z itself is not accepted here (it would mean \"not given\"); give a later time";

constexpr size_t kKeyBytesMax = 256;  // an --id / --original / --hold key

// Field setters. Captureless lambdas convert to the function pointer.
#define PL_SET(expr) [](const FieldValue& v, TxDraft* d) { expr; }

const std::vector<FieldSpec>& Common() {
  static const std::vector<FieldSpec> kCommon = {
      {"id", FieldType::kKey, true, false, kKeyBytesMax,
       "idempotency key; the transaction id is SHA-256(program + \"/tx/\" + KEY)",
       PL_SET(d->id_key = v.text)},
      {"program", FieldType::kString, true, false, ledger::kNameBytesMax, "program name",
       PL_SET(d->tx.program = v.text)},
      {"order_ref", FieldType::kString, false, false, ledger::kOrderRefBytesMax,
       "the client's order reference", PL_SET(d->tx.order_ref = v.text)},
      {"reason", FieldType::kString, false, false, ledger::kReasonBytesMax, "free-text reason",
       PL_SET(d->tx.reason = v.text)},
      {"metadata", FieldType::kString, false, false, ledger::kMetadataBytesMax,
       "opaque client data", PL_SET(d->tx.metadata = v.text)},
  };
  return kCommon;
}

FieldSpec Member(std::string_view help = "the member's key (customer number)") {
  return {"member", FieldType::kString, true, false, ledger::kMemberKeyBytesMax, help,
          PL_SET(d->tx.member = v.text)};
}
FieldSpec Points(bool required, std::string_view help) {
  return {"points", FieldType::kUint, required, false, 0, help, PL_SET(d->tx.points = v.u)};
}
FieldSpec OptionalPartner(std::string_view help) {
  return {"partner", FieldType::kString, false, false, ledger::kNameBytesMax, help,
          PL_SET(d->tx.partner = v.text)};
}
FieldSpec PartnerName(bool positional) {
  if (positional) {
    return {"name", FieldType::kString, true, true, ledger::kNameBytesMax, "partner name",
            PL_SET(d->tx.partner = v.text)};
  }
  return {"partner", FieldType::kString, false, false, ledger::kNameBytesMax,
          "(JSON only) partner name, same as \"name\"", PL_SET(d->tx.partner = v.text)};
}
FieldSpec EarnPrice() {
  return {"earn_price_micros", FieldType::kUint, true, false, 0,
          "what the partner pays per point it issues, in micros",
          PL_SET(d->tx.earn_price_micros = v.u)};
}
FieldSpec RedeemPrice() {
  return {"redeem_price_micros", FieldType::kUint, true, false, 0,
          "what the program pays per point redeemed at the partner, in micros",
          PL_SET(d->tx.redeem_price_micros = v.u)};
}
FieldSpec HoldKey() {
  return {"hold", FieldType::kKey, true, false, kKeyBytesMax, "the --id KEY of the hold",
          PL_SET(d->ref_key = v.text)};
}

// Program and partner configuration (admin).
void AddConfigKinds(std::vector<KindSpec>& kinds) {
  kinds.push_back(
      {Kind::kProgramCreate, "program create", "Create a loyalty program (admin).",
       "pointledger program create acme --currency USD --point-value-micros 5000 "
       "--expiry-days 365 --id acme-v1",
       {{"name", FieldType::kString, true, true, ledger::kNameBytesMax,
         "program name ([a-z0-9_-], at most 32 bytes)", PL_SET(d->tx.program = v.text)},
        {"currency", FieldType::kString, true, false, ledger::kCurrencyBytes,
         "ISO 4217 code, e.g. USD", PL_SET(d->tx.currency = v.text)},
        {"point_value_micros", FieldType::kUint, true, false, 0,
         "what one point is worth, in millionths of the currency unit",
         PL_SET(d->tx.point_value_micros = v.u)},
        {"expiry_days", FieldType::kUint32, true, false, 0, "days until earned points expire (0 = never)",
         PL_SET(d->tx.expiry_days = static_cast<uint32_t>(v.u))},
        {"lock_days", FieldType::kInt32, false, false, 0,
         "days earned points stay locked (a return window; default 0)",
         PL_SET(d->tx.lock_days = static_cast<int32_t>(v.i))},
        {"no_auto_open", FieldType::kBool, false, false, 0,
         "members must exist before their first earn", PL_SET(d->tx.auto_open = !v.b)},
        {"auto_open", FieldType::kBool, false, false, 0,
         "(JSON only) the opposite of no_auto_open", PL_SET(d->tx.auto_open = v.b)}}});
  kinds.push_back({Kind::kPartnerCreate, "partner create", "Create a partner agreement (admin).",
                   "pointledger partner create hotelco --program acme --earn-price-micros 9000 "
                   "--redeem-price-micros 7000 --id hotelco-v1",
                   {PartnerName(true), PartnerName(false), EarnPrice(), RedeemPrice()}});
  kinds.push_back(
      {Kind::kPartnerPrice, "partner price", "Change a partner's prices from a time on (admin).",
       "pointledger partner price hotelco --program acme --earn-price-micros 9500 "
       "--redeem-price-micros 7000 --effective-from 2027-01-01T00:00:00Z --id hotelco-2027",
       {PartnerName(true), PartnerName(false), EarnPrice(), RedeemPrice(),
        {"effective_from", FieldType::kTime, false, false, 0,
         "RFC 3339 time the prices apply from (default: now)", PL_SET(d->tx.time_ns = v.i)}}});
}

// What members' points go through.
void AddPointKinds(std::vector<KindSpec>& kinds) {
  kinds.push_back(
      {Kind::kEarn, "earn", "Credit points to a member (creates a lot).",
       "pointledger earn --program acme --member alice --points 120 --id order-1001",
       {Member(), Points(true, "points to credit"),
        OptionalPartner("earned at this partner (the partner owes the program)"),
        {"expires_at", FieldType::kTime, false, false, 0,
         "RFC 3339 expiry of this lot (default: now + the program's expiry_days)",
         PL_SET(d->tx.time_ns = v.i)},
        {"lock_days", FieldType::kInt32, false, false, 0,
         "lock the points for this many days (default: the program's lock_days)",
         PL_SET(d->tx.lock_days = static_cast<int32_t>(v.i))}}});
  kinds.push_back({Kind::kRedeem, "redeem", "Spend a member's available points.",
                   "pointledger redeem --program acme --member alice --points 50 --id reward-77",
                   {Member(), Points(true, "points to spend"),
                    OptionalPartner("redeemed at this partner (the program owes the partner)")}});
  kinds.push_back(
      {Kind::kReferral, "referral", "Reward a referrer and the member they referred.",
       "pointledger referral --program acme --referrer alice --referee bob --referrer-points 500 "
       "--referee-points 250 --id ref-bob",
       {{"referrer", FieldType::kString, true, false, ledger::kMemberKeyBytesMax,
         "the member who referred", PL_SET(d->tx.member = v.text)},
        {"referee", FieldType::kString, true, false, ledger::kMemberKeyBytesMax,
         "the member who was referred (rewarded at most once)", PL_SET(d->tx.member2 = v.text)},
        {"referrer_points", FieldType::kUint, true, false, 0, "points for the referrer",
         PL_SET(d->tx.points = v.u)},
        {"referee_points", FieldType::kUint, true, false, 0, "points for the referee",
         PL_SET(d->tx.points2 = v.u)}}});
  kinds.push_back({Kind::kTransfer, "transfer", "Move points between two members.",
                   "pointledger transfer --program acme --from alice --to carol --points 10 --id gift-1",
                   {{"from", FieldType::kString, true, false, ledger::kMemberKeyBytesMax,
                     "the sending member", PL_SET(d->tx.member = v.text)},
                    {"to", FieldType::kString, true, false, ledger::kMemberKeyBytesMax,
                     "the receiving member", PL_SET(d->tx.member2 = v.text)},
                    Points(true, "points to move")}});
  kinds.push_back({Kind::kAdjust, "adjust", "Correct a member's balance up or down (admin).",
                   "pointledger adjust --program acme --member alice --delta -20 "
                   "--reason \"service recovery\" --id adj-9",
                   {Member(),
                    {"delta", FieldType::kInt, true, false, 0,
                     "points to add (positive) or take (negative)", PL_SET(d->tx.delta = v.i)}}});
}

// Reversals, holds, settlement and closing.
void AddFollowUpKinds(std::vector<KindSpec>& kinds) {
  kinds.push_back(
      {Kind::kReverse, "reverse", "Reverse an earlier transaction, whole or in part.",
       "pointledger reverse --program acme --original order-1001 --points 60 --id refund-1001",
       {{"original", FieldType::kKey, true, false, kKeyBytesMax,
         "the --id KEY of the transaction to reverse", PL_SET(d->ref_key = v.text)},
        Points(false, "points to reverse (omit for all that is left)"),
        {"clawback_partial", FieldType::kBool, false, false, 0,
         "take what the member has if it is less than asked", PL_SET(d->tx.clawback_partial = v.b)}}});
  kinds.push_back({Kind::kHold, "hold", "Reserve a member's points (POS checkout).",
                   "pointledger hold --program acme --member alice --points 40 --timeout 300 --id hold-5",
                   {Member(), Points(true, "points to reserve"),
                    {"timeout", FieldType::kUint32, true, false, 0,
                     "seconds until the hold is released by itself",
                     PL_SET(d->tx.timeout_s = static_cast<uint32_t>(v.u))}}});
  kinds.push_back({Kind::kCapture, "capture", "Redeem held points.",
                   "pointledger capture --program acme --hold hold-5 --points 30 --id cap-5",
                   {HoldKey(), Points(false, "points to redeem (omit for all held; the rest is released)")}});
  kinds.push_back({Kind::kRelease, "release", "Release a hold.",
                   "pointledger release --program acme --hold hold-5 --id rel-5", {HoldKey()}});
  kinds.push_back({Kind::kSettle, "settle close",
                   "Settle a partner's clearing account up to a time (admin).",
                   "pointledger settle close --program acme --partner hotelco "
                   "--to 2026-12-01T00:00:00Z --id settle-2026-11",
                   {{"partner", FieldType::kString, true, false, ledger::kNameBytesMax, "partner name",
                     PL_SET(d->tx.partner = v.text)},
                    {"to", FieldType::kTime, false, false, 0,
                     "RFC 3339 end of the period, exclusive (default: now)", PL_SET(d->tx.time_ns = v.i)}}});
  kinds.push_back({Kind::kAccountOpen, "account open",
                   "Open (enroll) a member; needed before the first earn in a program created with "
                   "--no-auto-open.",
                   "pointledger account open --program acme --member alice --id enroll-alice",
                   {Member()}});
  kinds.push_back({Kind::kAccountClose, "account close",
                   "Close a member account; its points are forfeited to breakage (admin).",
                   "pointledger account close --program acme --member alice --id close-alice",
                   {Member()}});
}

std::vector<KindSpec> MakeKinds() {
  std::vector<KindSpec> kinds;
  AddConfigKinds(kinds);
  AddPointKinds(kinds);
  AddFollowUpKinds(kinds);
  return kinds;
}
#undef PL_SET

absl::Status FieldError(const FieldSpec& f, std::string_view text, std::string_view expected) {
  return absl::InvalidArgumentError(
      StrCat(FlagName(f.name), ": '", text, "' is not ", expected));
}

template <typename T>
bool ParseInteger(std::string_view text, T* out) {
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, *out);
  return ec == std::errc() && ptr == end && !text.empty();
}

}  // namespace

std::span<const FieldSpec> CommonFields() { return Common(); }

std::span<const KindSpec> PostableKinds() {
  static const std::vector<KindSpec> kKinds = MakeKinds();
  return kKinds;
}

const KindSpec* FindKind(std::string_view kind_name) {
  const std::optional<Kind> kind = ledger::KindFromName(kind_name);
  if (!kind) return nullptr;
  for (const KindSpec& k : PostableKinds()) {
    if (k.kind == *kind) return &k;
  }
  return nullptr;
}

std::string FlagName(std::string_view field_name) {
  std::string flag = StrCat("--", field_name);
  std::replace(flag.begin(), flag.end(), '_', '-');
  return flag;
}

absl::StatusOr<FieldValue> ParseFieldText(const FieldSpec& f, std::string_view text) {
  FieldValue v;
  switch (f.type) {
    case FieldType::kKey:
      // The key never reaches the server (only its hash), so it is checked here.
      // An empty key would hash to a real id: a script whose $ORDER is unset
      // would post once, then meet that id again as a duplicate.
      if (text.empty()) return absl::InvalidArgumentError(StrCat(FlagName(f.name), ": the key is empty"));
      if (text.size() > f.bytes_max) {
        return absl::InvalidArgumentError(
            StrCat(FlagName(f.name), ": the key is too long (", text.size(), " bytes, at most ", f.bytes_max, ")"));
      }
      [[fallthrough]];
    case FieldType::kString:
      // SPEC §1: keys and names are UTF-8; printed back, other bytes would
      // show as U+FFFD and no longer name what they named. Metadata is
      // opaque client data. (JSON lines are checked by the JSON parser.)
      if (f.name != "metadata" && !net::IsValidUtf8(text)) {
        return absl::InvalidArgumentError(StrCat(FlagName(f.name), ": not valid UTF-8"));
      }
      v.text = std::string(text);
      return v;
    case FieldType::kBool:
      if (text == "true" || text == "1") v.b = true;
      else if (text != "false" && text != "0") return FieldError(f, text, "true or false");
      return v;
    case FieldType::kUint:
      if (!ParseInteger(text, &v.u)) return FieldError(f, text, "an integer from 0 to 18446744073709551615");
      return v;
    case FieldType::kUint32: {
      uint32_t u32 = 0;
      if (!ParseInteger(text, &u32)) return FieldError(f, text, "an integer from 0 to 4294967295");
      v.u = u32;
      return v;
    }
    case FieldType::kInt:
      if (!ParseInteger(text, &v.i)) return FieldError(f, text, "an integer");
      return v;
    case FieldType::kInt32: {
      int32_t i32 = 0;
      if (!ParseInteger(text, &i32)) return FieldError(f, text, "a 32-bit integer");
      // -1 is the engine's "not given" for lock_days: typed, it silently
      // meant the program's default (found in review, session 19).
      if (i32 < 0) return FieldError(f, text, "a non-negative number of days");
      v.i = i32;
      return v;
    }
    case FieldType::kTime: {
      absl::StatusOr<int64_t> ns = ParseTime(text);
      if (!ns.ok()) {
        return absl::InvalidArgumentError(StrCat(FlagName(f.name), ": ", std::string(ns.status().message())));
      }
      if (*ns == 0) return absl::InvalidArgumentError(StrCat(FlagName(f.name), ": ", kEpochMeansUnset));
      v.i = *ns;
      return v;
    }
  }
  return v;
}

bool HasDefaultId(Kind kind) {
  return kind == Kind::kProgramCreate || kind == Kind::kPartnerCreate;
}

std::string DefaultIdKey(const ledger::Transaction& tx) {
  return tx.kind == Kind::kProgramCreate ? StrCat("program-create/", tx.program)
                                         : StrCat("partner-create/", tx.partner);
}

absl::Status FinishDraft(const KindSpec& kind, std::span<const std::string> given, TxDraft* draft) {
  auto has = [&](std::string_view name) {
    return std::find(given.begin(), given.end(), name) != given.end();
  };
  draft->tx.kind = kind.kind;
  const bool names_program = kind.kind == Kind::kProgramCreate;
  const bool names_partner = kind.kind == Kind::kPartnerCreate || kind.kind == Kind::kPartnerPrice;
  for (const FieldSpec& f : Common()) {
    if (!f.required || has(f.name)) continue;
    if (f.name == "program" && names_program && has("name")) continue;
    if (f.name == "id" && HasDefaultId(kind.kind)) continue;  // DefaultIdKey below
    return absl::InvalidArgumentError(StrCat("missing ", FlagName(f.name)));
  }
  for (const FieldSpec& f : kind.fields) {
    if (!f.required || has(f.name)) continue;
    if (f.name == "name" && names_program && has("program")) continue;
    if (f.name == "name" && names_partner && has("partner")) continue;
    return absl::InvalidArgumentError(f.positional ? std::string("missing NAME")
                                                   : StrCat("missing ", FlagName(f.name)));
  }
  if (!has("id") && HasDefaultId(kind.kind)) draft->id_key = DefaultIdKey(draft->tx);
  draft->tx.id = ledger::TxIdFromKey(draft->tx.program, draft->id_key);
  if (!draft->ref_key.empty() || has("original") || has("hold")) {
    draft->tx.ref = ledger::TxIdFromKey(draft->tx.program, draft->ref_key);
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// JSON lines.

namespace {

struct JsonScalar {
  enum class Type { kNull, kBool, kInt, kUint, kFloat, kString, kObject, kArray };
  static JsonScalar Of(Type t) {
    JsonScalar s;
    s.type = t;
    return s;
  }
  Type type = Type::kNull;
  bool b = false;
  int64_t i = 0;
  uint64_t u = 0;
  std::string s;
};

std::string_view TypeName(JsonScalar::Type t) {
  switch (t) {
    case JsonScalar::Type::kNull: return "null";
    case JsonScalar::Type::kBool: return "a boolean";
    case JsonScalar::Type::kInt: return "a negative integer";
    case JsonScalar::Type::kUint: return "an integer";
    case JsonScalar::Type::kFloat: return "a number with a fraction or out of range";
    case JsonScalar::Type::kString: return "a string";
    case JsonScalar::Type::kObject: return "an object";
    case JsonScalar::Type::kArray: return "an array";
  }
  return "?";
}

// A SAX handler for one flat object of scalars. Never throws: nlohmann
// reports syntax errors through parse_error(), which we record.
class FlatObjectSax final : public nlohmann::json_sax<nlohmann::json> {
 public:
  std::vector<std::pair<std::string, JsonScalar>> fields;
  std::string error;
  bool top_is_object = false;

  bool null() override { return Scalar(JsonScalar::Of(JsonScalar::Type::kNull)); }
  bool boolean(bool val) override {
    JsonScalar s = JsonScalar::Of(JsonScalar::Type::kBool);
    s.b = val;
    return Scalar(std::move(s));
  }
  bool number_integer(number_integer_t val) override {
    JsonScalar s = JsonScalar::Of(JsonScalar::Type::kInt);
    s.i = val;
    return Scalar(std::move(s));
  }
  bool number_unsigned(number_unsigned_t val) override {
    JsonScalar s = JsonScalar::Of(JsonScalar::Type::kUint);
    s.u = val;
    return Scalar(std::move(s));
  }
  bool number_float(number_float_t, const string_t&) override {
    return Scalar(JsonScalar::Of(JsonScalar::Type::kFloat));
  }
  bool string(string_t& val) override {
    JsonScalar s = JsonScalar::Of(JsonScalar::Type::kString);
    s.s = std::move(val);
    return Scalar(std::move(s));
  }
  bool binary(binary_t&) override { return Scalar(JsonScalar::Of(JsonScalar::Type::kNull)); }
  bool start_object(std::size_t) override {
    if (depth_ == 0) top_is_object = true;
    if (depth_ == 1) fields.emplace_back(key_, JsonScalar::Of(JsonScalar::Type::kObject));
    ++depth_;
    return true;
  }
  bool end_object() override {
    --depth_;
    return true;
  }
  bool start_array(std::size_t) override {
    if (depth_ == 1) fields.emplace_back(key_, JsonScalar::Of(JsonScalar::Type::kArray));
    ++depth_;
    return true;
  }
  bool end_array() override {
    --depth_;
    return true;
  }
  bool key(string_t& val) override {
    if (depth_ != 1) return true;
    for (const auto& [name, value] : fields) {
      if (name == val) {
        error = StrCat("field \"", val, "\" appears twice");
        return false;
      }
    }
    key_ = std::move(val);
    return true;
  }
  bool parse_error(std::size_t position, const std::string&,
                   const nlohmann::detail::exception& ex) override {
    // what() is "[json.exception.parse_error.101] parse error at ...".
    std::string_view what = ex.what();
    if (const size_t bracket = what.find("] "); bracket != std::string_view::npos) {
      what.remove_prefix(bracket + 2);
    }
    error = StrCat("invalid JSON (byte ", position, "): ", what);
    return false;
  }

 private:
  // Only the top object's own values are fields; nested ones were recorded
  // as kObject / kArray and are refused by FromJson.
  bool Scalar(JsonScalar value) {
    if (depth_ == 1) fields.emplace_back(key_, std::move(value));
    return true;
  }

  int depth_ = 0;
  std::string key_;
};

// Converts a JSON value to a FieldValue of the field's type.
absl::StatusOr<FieldValue> FromJson(const FieldSpec& f, const JsonScalar& j) {
  using T = JsonScalar::Type;
  auto wrong = [&](std::string_view expected) {
    return absl::InvalidArgumentError(StrCat("field \"", f.name, "\" must be ", expected,
                                             ", not ", TypeName(j.type)));
  };
  FieldValue v;
  switch (f.type) {
    case FieldType::kString:
    case FieldType::kKey:
      if (j.type != T::kString) return wrong("a string");
      if (f.type == FieldType::kKey && j.s.empty()) {
        return absl::InvalidArgumentError(StrCat("field \"", f.name, "\" is empty"));
      }
      if (f.bytes_max != 0 && j.s.size() > f.bytes_max) {
        return absl::InvalidArgumentError(StrCat("field \"", f.name, "\" is too long (", j.s.size(),
                                                 " bytes, at most ", f.bytes_max, ")"));
      }
      v.text = j.s;
      return v;
    case FieldType::kBool:
      if (j.type != T::kBool) return wrong("true or false");
      v.b = j.b;
      return v;
    case FieldType::kUint:
      if (j.type != T::kUint) return wrong("a non-negative integer");
      v.u = j.u;
      return v;
    case FieldType::kUint32:
      if (j.type != T::kUint || j.u > std::numeric_limits<uint32_t>::max()) {
        return wrong("an integer from 0 to 4294967295");
      }
      v.u = j.u;
      return v;
    case FieldType::kInt:
      if (j.type == T::kInt) v.i = j.i;
      else if (j.type == T::kUint && j.u <= uint64_t{std::numeric_limits<int64_t>::max()}) v.i = static_cast<int64_t>(j.u);
      else return wrong("a 64-bit integer");
      return v;
    case FieldType::kInt32:
      if (j.type == T::kInt && j.i < 0) return wrong("a non-negative number of days");
      if (j.type == T::kInt && j.i <= std::numeric_limits<int32_t>::max()) v.i = j.i;
      else if (j.type == T::kUint && j.u <= uint64_t{std::numeric_limits<int32_t>::max()}) v.i = static_cast<int64_t>(j.u);
      else return wrong("a 32-bit integer");
      return v;
    case FieldType::kTime: {
      if (j.type != T::kString) return wrong("an RFC 3339 time string");
      absl::StatusOr<int64_t> ns = ParseTime(j.s);
      if (!ns.ok()) {
        return absl::InvalidArgumentError(StrCat("field \"", f.name, "\": ", std::string(ns.status().message())));
      }
      if (*ns == 0) return absl::InvalidArgumentError(StrCat("field \"", f.name, "\": ", kEpochMeansUnset));
      v.i = *ns;
      return v;
    }
  }
  return v;
}

const FieldSpec* FindField(const KindSpec& kind, std::string_view name) {
  for (const FieldSpec& f : kind.fields) {
    if (f.name == name) return &f;
  }
  for (const FieldSpec& f : Common()) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

std::string KnownFields(const KindSpec& kind) {
  std::string out = "kind, linked";
  for (const FieldSpec& f : Common()) out += StrCat(", ", f.name);
  for (const FieldSpec& f : kind.fields) out += StrCat(", ", f.name);
  return out;
}

std::string PostableKindNames() {
  std::string out;
  for (const KindSpec& k : PostableKinds()) {
    if (!out.empty()) out += ", ";
    out += std::string(ledger::KindName(k.kind));
  }
  return out;
}

// Everything but the line-number prefix.
absl::StatusOr<PostLine> ParseObject(std::string_view line) {
  FlatObjectSax sax;
  nlohmann::json::sax_parse(line.begin(), line.end(), &sax);
  if (!sax.error.empty()) return absl::InvalidArgumentError(sax.error);
  if (!sax.top_is_object) return absl::InvalidArgumentError("expected a JSON object");
  const JsonScalar* kind_value = nullptr;
  for (const auto& [name, value] : sax.fields) {
    if (name == "kind") kind_value = &value;
  }
  if (kind_value == nullptr) {
    return absl::InvalidArgumentError(StrCat("missing \"kind\" (one of ", PostableKindNames(), ")"));
  }
  if (kind_value->type != JsonScalar::Type::kString) {
    return absl::InvalidArgumentError("field \"kind\" must be a string");
  }
  const KindSpec* kind = FindKind(kind_value->s);
  if (kind == nullptr) {
    return absl::InvalidArgumentError(StrCat("unknown kind \"", kind_value->s, "\" (one of ",
                                             PostableKindNames(), ")"));
  }
  TxDraft draft;
  std::vector<std::string> given;
  // "name" is the program's or partner's own field under another name:
  // both given must agree (found by a conformance test, session 33: the
  // later one silently won, and a program_create could make a program its
  // line's "program" did not name).
  const char* named_too = kind->kind == Kind::kProgramCreate ? "program"
                          : kind->kind == Kind::kPartnerCreate || kind->kind == Kind::kPartnerPrice
                              ? "partner"
                              : nullptr;
  const JsonScalar* name_value = nullptr;
  const JsonScalar* other_value = nullptr;
  for (const auto& [name, value] : sax.fields) {
    if (name == "name") name_value = &value;
    if (named_too != nullptr && name == named_too) other_value = &value;
  }
  if (name_value != nullptr && other_value != nullptr &&
      (name_value->type != other_value->type || name_value->s != other_value->s)) {
    return absl::InvalidArgumentError(StrCat("fields \"name\" and \"", named_too, "\" name different ",
                                             named_too, "s for kind ", kind_value->s, "; give one"));
  }
  for (const auto& [name, value] : sax.fields) {
    if (name == "kind") continue;
    if (name == "linked") {
      if (value.type != JsonScalar::Type::kBool) {
        return absl::InvalidArgumentError(StrCat("field \"linked\" must be true or false, not ",
                                                 TypeName(value.type)));
      }
      draft.tx.linked = value.b;
      continue;
    }
    const FieldSpec* f = FindField(*kind, name);
    if (f == nullptr) {
      return absl::InvalidArgumentError(StrCat("unknown field \"", name, "\" for kind ",
                                               kind_value->s, " (known: ", KnownFields(*kind), ")"));
    }
    PL_ASSIGN_OR_RETURN(const FieldValue v, FromJson(*f, value));
    f->set(v, &draft);
    given.push_back(name);
  }
  absl::Status finished = FinishDraft(*kind, given, &draft);
  if (!finished.ok()) {
    // FinishDraft speaks in flags; a JSON line speaks in field names.
    std::string message(std::string(finished.message()));
    if (message.starts_with("missing --")) {
      std::string field = message.substr(10);
      std::replace(field.begin(), field.end(), '-', '_');
      message = StrCat("missing field \"", field, "\"");
    } else if (message == "missing NAME") {
      message = "missing field \"name\"";
    }
    return absl::InvalidArgumentError(StrCat(message, " for kind ", kind_value->s));
  }
  PostLine out;
  out.tx = std::move(draft.tx);
  out.key = std::move(draft.id_key);
  return out;
}

}  // namespace

bool IsBlankLine(std::string_view line) {
  return std::all_of(line.begin(), line.end(),
                     [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; });
}

absl::StatusOr<PostLine> ParsePostLine(std::string_view line, uint64_t line_number) {
  absl::StatusOr<PostLine> parsed = ParseObject(line);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(StrCat("line ", line_number, ": ", std::string(parsed.status().message())));
  }
  parsed->line_number = line_number;
  return parsed;
}

}  // namespace pointledger::tools
