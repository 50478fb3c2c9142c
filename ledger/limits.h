// Every bound in PointLedger, each with the reason for it.
#ifndef POINTLEDGER_LEDGER_LIMITS_H_
#define POINTLEDGER_LEDGER_LIMITS_H_

#include <cstddef>
#include <cstdint>

namespace pointledger::ledger {

// SPEC §4: a request carries 1 ... 8,190 transactions (TigerBeetle's batch
// size; ~1 MiB of wire transactions at ~128 bytes each).
inline constexpr size_t kBatchTransactionsMax = 8190;

// SPEC §1 field limits.
inline constexpr size_t kNameBytesMax = 32;       // program and partner names
inline constexpr size_t kMemberKeyBytesMax = 64;
inline constexpr size_t kOrderRefBytesMax = 64;
inline constexpr size_t kReasonBytesMax = 64;
inline constexpr size_t kMetadataBytesMax = 256;
inline constexpr size_t kCurrencyBytes = 3;       // ISO 4217

// One amount in one transaction. Keeping amounts below 2^62 lets signed
// 64-bit arithmetic (history deltas, settlement nets) hold any sum of two,
// while balance totals still use the full unsigned range and report overflow.
inline constexpr uint64_t kPointsMax = uint64_t{1} << 62;

// Money: price per point in micros times points must fit in int64 for a
// statement line; prices above 2^31 micros (2,147 currency units a point)
// are refused, and statements accumulate in __int128 before narrowing.
inline constexpr uint64_t kPriceMicrosMax = uint64_t{1} << 31;

// Program configuration bounds: a century of expiry, ten years of lock.
inline constexpr uint32_t kExpiryDaysMax = 36500;
inline constexpr int32_t kLockDaysMax = 3650;

// A hold reserves points for at most 30 days (a POS checkout is minutes).
inline constexpr uint32_t kHoldTimeoutSecondsMax = 30 * 24 * 3600;

inline constexpr int64_t kNanosPerSecond = 1'000'000'000;
inline constexpr int64_t kNanosPerDay = 86'400 * kNanosPerSecond;

// The latest time a transaction is recorded at (2116-02-20T23:53:38Z): up
// to it, the expiry and lock arithmetic cannot overflow int64 nanoseconds.
// No clock gets there; a stored record past it is damage (Applier::Replay).
inline constexpr int64_t kTimestampMax = int64_t{1} << 62;
static_assert(int64_t{kExpiryDaysMax} * kNanosPerDay < (int64_t{1} << 62));
static_assert((int64_t{kExpiryDaysMax} + kLockDaysMax) * kNanosPerDay +
                  int64_t{kHoldTimeoutSecondsMax} * kNanosPerSecond <
              INT64_MAX - kTimestampMax);

// A stored transaction record: the largest wire strings plus fixed fields
// and up to 3 postings must fit comfortably in one LMDB overflow-free value.
inline constexpr size_t kRecordBytesMax = 2048;
static_assert(kNameBytesMax * 2 + kMemberKeyBytesMax * 2 + kOrderRefBytesMax +
                  kReasonBytesMax + kMetadataBytesMax + 512 <
              kRecordBytesMax);

// History pages: a client may ask for at most this many entries at once.
inline constexpr uint32_t kHistoryLimitMax = 1000;

}  // namespace pointledger::ledger

#endif  // POINTLEDGER_LEDGER_LIMITS_H_
