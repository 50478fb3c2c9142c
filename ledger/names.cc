// Identifiers, names of kinds and codes, content comparison, auth, clock.
#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <initializer_list>
#include <string_view>

#include "ledger/ledger.h"
#include "ledger/limits.h"
#include "ledger/sha256.h"

namespace pointledger::ledger {

namespace {

// The id of the concatenation of `parts`, hashed in place: the writer
// derives a member's id on every transaction, and joining the parts into
// a string first was an allocation each time (SPEC §9).
Id DeriveIdOfParts(std::initializer_list<std::string_view> parts) {
  const Digest digest = Sha256(parts);
  Id id;
  std::memcpy(id.data(), digest.data(), id.size());
  return id;
}

}  // namespace

Id DeriveId(std::string_view text) { return DeriveIdOfParts({text}); }

Id MemberAccountId(std::string_view program, std::string_view member_key) {
  return DeriveIdOfParts({program, "/member/", member_key});
}
Id SystemAccountId(std::string_view program, std::string_view kind) {
  return DeriveIdOfParts({program, "/", kind});
}
Id PartnerAccountId(std::string_view program, std::string_view partner) {
  return DeriveIdOfParts({program, "/partner/", partner});
}
Id TxIdFromKey(std::string_view program, std::string_view key) {
  return DeriveIdOfParts({program, "/tx/", key});
}
Id ExpireId(std::string_view program, const Id& member_account, uint64_t lot_seq,
            uint32_t lot_index) {
  return DeriveId(StrCat(program, "/expire/", IdToHex(member_account), "/", lot_seq, "/", lot_index));
}
Id HoldTimeoutId(std::string_view program, const Id& hold) {
  return DeriveId(StrCat(program, "/hold-timeout/", IdToHex(hold)));
}

bool IsValidName(std::string_view name) {
  if (name.empty() || name.size() > kNameBytesMax) return false;
  return std::all_of(name.begin(), name.end(), [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-';
  });
}

std::string IdToHex(const Id& id) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex(32, '0');
  for (size_t i = 0; i < id.size(); ++i) {
    hex[2 * i] = kDigits[id[i] >> 4];
    hex[2 * i + 1] = kDigits[id[i] & 0xf];
  }
  return hex;
}

std::optional<Id> IdFromHex(std::string_view hex) {
  if (hex.size() != 32) return std::nullopt;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  Id id{};
  for (size_t i = 0; i < id.size(); ++i) {
    const int hi = nibble(hex[2 * i]);
    const int lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    id[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return id;
}

namespace {

constexpr std::array<std::string_view, kKindMax + 1> kKindNames = {
    "",        "program_create", "partner_create", "partner_price", "earn",
    "redeem",  "referral",       "transfer",       "adjust",        "reverse",
    "hold",    "capture",        "release",        "expire",        "settle",
    "account_close", "hold_timeout",  "account_open"};

constexpr std::array<std::string_view, kCodeMax + 1> kCodeNames = {
    "ok",
    "id_zero",
    "id_conflict",
    "program_not_found",
    "program_exists",
    "account_not_found",
    "account_closed",
    "partner_not_found",
    "invalid_amount",
    "overflow",
    "same_account",
    "insufficient_points",
    "expiry_in_past",
    "referral_already_rewarded",
    "original_not_found",
    "original_not_reversible",
    "reversal_exceeds_original",
    "hold_not_found",
    "hold_not_pending",
    "capture_exceeds_hold",
    "linked_event_failed",
    "linked_chain_open",
    "field_too_long",
    "permission_denied"};

}  // namespace

std::string_view KindName(Kind kind) {
  const auto i = static_cast<size_t>(kind);
  return i >= 1 && i < kKindNames.size() ? kKindNames[i] : "unknown";
}

std::string_view CodeName(Code code) {
  const auto i = static_cast<size_t>(code);
  return i < kCodeNames.size() ? kCodeNames[i] : "unknown";
}

std::optional<Kind> KindFromName(std::string_view name) {
  for (size_t i = 1; i < kKindNames.size(); ++i) {
    if (kKindNames[i] == name) return static_cast<Kind>(i);
  }
  return std::nullopt;
}

std::optional<Code> CodeFromName(std::string_view name) {
  for (size_t i = 0; i < kCodeNames.size(); ++i) {
    if (kCodeNames[i] == name) return static_cast<Code>(i);
  }
  return std::nullopt;
}

bool IsRequestOnlyRejection(Code code) {
  switch (code) {
    case Code::kIdZero:
    case Code::kInvalidAmount:
    case Code::kFieldTooLong:
    case Code::kExpiryInPast:
    case Code::kPermissionDenied:
    case Code::kLinkedEventFailed:
    case Code::kLinkedChainOpen:
    case Code::kIdConflict:  // the id is already taken by another content
      return true;
    default:
      return false;
  }
}

std::string_view FirstDifference(const Transaction& a, const Transaction& b) {
#define PL_DIFF(field) \
  if (a.field != b.field) return #field
  PL_DIFF(kind);
  PL_DIFF(program);
  PL_DIFF(member);
  PL_DIFF(member2);
  PL_DIFF(partner);
  PL_DIFF(points);
  PL_DIFF(points2);
  PL_DIFF(delta);
  PL_DIFF(ref);
  PL_DIFF(time_ns);
  // A program_create's lock_days -1 means 0 (docs/semantics.md): the same
  // content, so `program create` with and without `--lock-days 0` agree.
  auto lock_days = [](const Transaction& t) {
    return t.kind == Kind::kProgramCreate && t.lock_days == -1 ? 0 : t.lock_days;
  };
  if (lock_days(a) != lock_days(b)) return "lock_days";
  PL_DIFF(timeout_s);
  PL_DIFF(clawback_partial);
  PL_DIFF(currency);
  PL_DIFF(point_value_micros);
  PL_DIFF(expiry_days);
  PL_DIFF(auto_open);
  PL_DIFF(earn_price_micros);
  PL_DIFF(redeem_price_micros);
  PL_DIFF(lot_seq);
  PL_DIFF(lot_index);
  PL_DIFF(order_ref);
  PL_DIFF(reason);
  PL_DIFF(metadata);
#undef PL_DIFF
  return "";
}

bool Auth::AllowsProgram(std::string_view program) const {
  if (programs.empty()) return true;
  return std::any_of(programs.begin(), programs.end(),
                     [&](const std::string& p) { return p == "*" || p == program; });
}

namespace {
class RealClock final : public Clock {
 public:
  int64_t NowNs() override {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};
}  // namespace

Clock* SystemClock() {
  static RealClock clock;
  return &clock;
}

}  // namespace pointledger::ledger
