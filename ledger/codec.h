// Byte layouts of everything PointLedger stores (docs/storage.md).
// Values are little-endian fixed-width fields and u16-length-prefixed
// strings; key components are big-endian so that LMDB's byte order is
// numeric order. Internal to ledger/.
#ifndef POINTLEDGER_LEDGER_CODEC_H_
#define POINTLEDGER_LEDGER_CODEC_H_

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "ledger/ledger.h"

namespace pointledger::ledger {

// Appends fields to a reusable buffer.
class ByteWriter {
 public:
  explicit ByteWriter(std::string* out) : out_(out) {}
  void U8(uint8_t v) { out_->push_back(static_cast<char>(v)); }
  void U16(uint16_t v) { Le(v); }
  void U32(uint32_t v) { Le(v); }
  void U64(uint64_t v) { Le(v); }
  void I32(int32_t v) { Le(static_cast<uint32_t>(v)); }
  void I64(int64_t v) { Le(static_cast<uint64_t>(v)); }
  void BeU32(uint32_t v) { Be(v); }
  void BeU64(uint64_t v) { Be(v); }
  // Signed times sort correctly as big-endian once the sign bit is flipped.
  void BeI64(int64_t v) { Be(static_cast<uint64_t>(v) ^ (uint64_t{1} << 63)); }
  void Bytes(std::string_view s) { out_->append(s); }
  void IdBytes(const Id& id) { out_->append(reinterpret_cast<const char*>(id.data()), id.size()); }
  // REQUIRES: s.size() < 65536 (every field is bounded far below).
  void Str(std::string_view s) {
    PL_CHECK(s.size() < 65536);
    U16(static_cast<uint16_t>(s.size()));
    out_->append(s);
  }

 private:
  // One append per integer: a push_back per byte checked the capacity
  // eight times and was 2% of the writer's time at batch 8190.
  template <typename T>
  void Le(T v) {
    char b[sizeof(T)];
    for (size_t i = 0; i < sizeof(T); ++i) b[i] = static_cast<char>((v >> (8 * i)) & 0xff);
    out_->append(b, sizeof(T));
  }
  template <typename T>
  void Be(T v) {
    char b[sizeof(T)];
    for (size_t i = 0; i < sizeof(T); ++i) b[sizeof(T) - 1 - i] = static_cast<char>((v >> (8 * i)) & 0xff);
    out_->append(b, sizeof(T));
  }
  std::string* out_;
};

// Reads fields back. Bytes come from the disk, so every read is bounds
// checked: a short or malformed value sets ok() to false (and reads return
// zeros) instead of crashing; callers turn !ok() into DataLoss.
class ByteReader {
 public:
  explicit ByteReader(std::string_view in) : in_(in) {}
  uint8_t U8() { return Le<uint8_t>(); }
  uint16_t U16() { return Le<uint16_t>(); }
  uint32_t U32() { return Le<uint32_t>(); }
  uint64_t U64() { return Le<uint64_t>(); }
  int32_t I32() { return static_cast<int32_t>(Le<uint32_t>()); }
  int64_t I64() { return static_cast<int64_t>(Le<uint64_t>()); }
  uint32_t BeU32() { return Be<uint32_t>(); }
  uint64_t BeU64() { return Be<uint64_t>(); }
  int64_t BeI64() { return static_cast<int64_t>(Be<uint64_t>() ^ (uint64_t{1} << 63)); }
  Id IdBytes() {
    Id id{};
    if (Need(id.size())) {
      std::memcpy(id.data(), in_.data() + pos_, id.size());
      pos_ += id.size();
    }
    return id;
  }
  std::string_view Str() {
    const uint16_t n = U16();
    if (!Need(n)) return {};
    std::string_view s = in_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  // The next n bytes as they are.
  std::string_view Bytes(size_t n) {
    if (!Need(n)) return {};
    std::string_view s = in_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  bool ok() const { return ok_; }
  bool done() const { return ok_ && pos_ == in_.size(); }
  size_t position() const { return pos_; }

 private:
  bool Need(size_t n) {
    if (!ok_ || in_.size() - pos_ < n) {
      ok_ = false;
      return false;
    }
    return true;
  }
  template <typename T>
  T Le() {
    if (!Need(sizeof(T))) return 0;
    T v = 0;
    for (size_t i = 0; i < sizeof(T); ++i) {
      v |= static_cast<T>(static_cast<T>(static_cast<uint8_t>(in_[pos_ + i])) << (8 * i));
    }
    pos_ += sizeof(T);
    return v;
  }
  template <typename T>
  T Be() {
    if (!Need(sizeof(T))) return 0;
    T v = 0;
    for (size_t i = 0; i < sizeof(T); ++i) {
      v = static_cast<T>((v << 8) | static_cast<uint8_t>(in_[pos_ + i]));
    }
    pos_ += sizeof(T);
    return v;
  }
  std::string_view in_;
  size_t pos_ = 0;
  bool ok_ = true;
};

inline std::string_view IdView(const Id& id) {
  return {reinterpret_cast<const char*>(id.data()), id.size()};
}

// ---- The transaction record (SPEC §7): canonical bytes, hashed. ----

// Appends the canonical bytes of a stored transaction to *out.
void EncodeRecord(const TxRecord& record, std::string* out);
// Parses canonical bytes. false on malformed input.
bool DecodeRecord(std::string_view bytes, TxRecord* record);

// ---- Stored state. ----

enum class AccountKind : uint8_t {
  kMember = 0,
  kIssuance = 1,
  kRedemption = 2,
  kReferral = 3,
  kAdjustment = 4,
  kBreakage = 5,
  kHolds = 6,
  kPartner = 7,
};
std::string_view AccountKindName(AccountKind kind);

struct AccountRec {
  AccountKind kind = AccountKind::kMember;
  bool closed = false;
  std::string program;
  std::string name;  // member key or partner name; empty for system accounts
  uint64_t debits_posted = 0;
  uint64_t credits_posted = 0;
  uint64_t debits_pending = 0;
  uint64_t credits_pending = 0;
};
void EncodeAccount(const AccountRec& a, std::string* out);
bool DecodeAccount(std::string_view bytes, AccountRec* a);

struct ProgramRec {
  std::string currency;
  uint64_t point_value_micros = 0;
  uint32_t expiry_days = 0;
  uint32_t lock_days = 0;
  bool auto_open = true;
};
void EncodeProgram(const ProgramRec& p, std::string* out);
// False for bytes that do not parse, or a program outside the bounds every
// program_create is accepted with (expiry and lock days, point value:
// limits.h), which the engine's time arithmetic relies on.
bool DecodeProgram(std::string_view bytes, ProgramRec* p);

// A piece of points with its expiry: what a hold reserves, what a redeem
// consumed (kept for its reversal), what an earn created.
struct Piece {
  int64_t expires_at_ns = 0;
  uint64_t points = 0;
  bool operator==(const Piece&) const = default;
};
void EncodePieces(const std::vector<Piece>& pieces, std::string* out);
bool DecodePieces(std::string_view bytes, std::vector<Piece>* pieces);

// A lot's expires_at_ns when its program's points never expire.
inline constexpr int64_t kNever = INT64_MAX;

// lots: account(16) | BeI64 expires_at | BeU64 source seq | BeU32 index
//   -> U64 remaining | I64 locked_until
inline constexpr size_t kLotKeyBytes = 16 + 8 + 8 + 4;
std::string LotKey(const Id& account, int64_t expires_at_ns, uint64_t seq, uint32_t index);
// The same key appended to `out` (the writer reuses one buffer).
void AppendLotKey(const Id& account, int64_t expires_at_ns, uint64_t seq, uint32_t index,
                  std::string* out);
bool DecodeLotKey(std::string_view key, Id* account, LotInfo* lot);

enum class HoldState : uint8_t { kPending = 0, kCaptured = 1, kReleased = 2, kTimedOut = 3 };
struct HoldRec {
  std::string program;
  Id member{};
  HoldState state = HoldState::kPending;
  uint64_t amount = 0;
  int64_t deadline_ns = 0;
  uint64_t hold_seq = 0;
  std::vector<Piece> pieces;  // in consumption order
  // The seq of the capture that ended it (record format 5; 0 before, and
  // for a hold not captured): a captured hold is reversed by its own id.
  uint64_t capture_seq = 0;
  // The lot each piece came from, by its key's (seq, index), one per piece
  // (record format 8; empty before): what the hold does not capture goes
  // back into that lot (made again if gone and not booked by the sweep),
  // so an earn's points held and released are still its own lot's (SPEC
  // §2 reverse).
  struct Source {
    uint64_t seq = 0;
    uint32_t index = 0;
    bool operator==(const Source&) const = default;
  };
  std::vector<Source> sources;
};
void EncodeHold(const HoldRec& h, std::string* out);
bool DecodeHold(std::string_view bytes, HoldRec* h);

// flows: partner account(16) | BeI64 ts | BeU64 seq -> U8 kind | I64 points | U64 price
enum class FlowKind : uint8_t { kEarn = 0, kRedeem = 1 };

std::string BeU64Key(uint64_t v);

}  // namespace pointledger::ledger

#endif  // POINTLEDGER_LEDGER_CODEC_H_
