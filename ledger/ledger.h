// PointLedger's engine: an exactly-once, double-entry loyalty-points ledger
// stored in LMDB. This is the one header other modules include.
//
// The semantics are ../shared/SPEC.md §1-§5 and §7; the decisions the spec
// leaves open are written down in docs/semantics.md, the on-disk layout in
// docs/storage.md.
//
// Threading: one writer at a time (Ledger::Writer, owned by the committer
// thread); any number of concurrent readers on other threads. Every read
// runs in its own LMDB read transaction and never waits for the writer.
#ifndef POINTLEDGER_LEDGER_LEDGER_H_
#define POINTLEDGER_LEDGER_LEDGER_H_

#include <array>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ledger/log_sink.h"
#include "ledger/status.h"

namespace pointledger::ledger {

// ---------------------------------------------------------------------------
// Identifiers.

// A 128-bit identifier: an account id or a transaction id. All zero is "none".
using Id = std::array<uint8_t, 16>;

inline bool IsZero(const Id& id) {
  for (uint8_t b : id) {
    if (b != 0) return false;
  }
  return true;
}

// The first 16 bytes of SHA-256(text).
Id DeriveId(std::string_view text);
// SHA-256(program + "/member/" + key).
Id MemberAccountId(std::string_view program, std::string_view member_key);
// SHA-256(program + "/" + kind), e.g. "acme/issuance".
Id SystemAccountId(std::string_view program, std::string_view kind);
// SHA-256(program + "/partner/" + partner): the partner's clearing account.
Id PartnerAccountId(std::string_view program, std::string_view partner);
// SHA-256(program + "/tx/" + key): a transaction id from a natural key.
Id TxIdFromKey(std::string_view program, std::string_view key);
// The ids the sweep (Ledger::CollectDue) books under, derived from what it
// books, so that a sweep run twice books nothing twice (SPEC §2):
// SHA-256(program + "/expire/" + hex(member account) + "/" + lot_seq + "/"
// + lot_index) and SHA-256(program + "/hold-timeout/" + hex(hold id)).
Id ExpireId(std::string_view program, const Id& member_account, uint64_t lot_seq,
            uint32_t lot_index);
Id HoldTimeoutId(std::string_view program, const Id& hold);
// A program or partner name: 1 to 32 bytes of [a-z0-9_-] (SPEC §1).
bool IsValidName(std::string_view name);
// Lower-case hex, 32 characters.
std::string IdToHex(const Id& id);
// Parses 32 hex digits; nullopt on anything else.
std::optional<Id> IdFromHex(std::string_view hex);

// ---------------------------------------------------------------------------
// Transaction kinds and result codes (SPEC §2, §5). The numeric values are
// stored on disk and sent on the wire: never renumber, only append.

enum class Kind : uint8_t {
  kProgramCreate = 1,
  kPartnerCreate = 2,
  kPartnerPrice = 3,
  kEarn = 4,
  kRedeem = 5,
  kReferral = 6,
  kTransfer = 7,
  kAdjust = 8,
  kReverse = 9,
  kHold = 10,
  kCapture = 11,
  kRelease = 12,
  kExpire = 13,
  kSettle = 14,
  kAccountClose = 15,
  // Server-generated release of a hold past its timeout (docs/semantics.md).
  kHoldTimeout = 16,
  // Opens a member, for programs without auto_open (docs/semantics.md).
  kAccountOpen = 17,
};
inline constexpr int kKindMax = 17;

enum class Code : uint8_t {
  kOk = 0,
  kIdZero,
  kIdConflict,
  kProgramNotFound,
  kProgramExists,
  kAccountNotFound,
  kAccountClosed,
  kPartnerNotFound,
  kInvalidAmount,
  kOverflow,
  kSameAccount,
  kInsufficientPoints,
  kExpiryInPast,
  kReferralAlreadyRewarded,
  kOriginalNotFound,
  kOriginalNotReversible,
  kReversalExceedsOriginal,
  kHoldNotFound,
  kHoldNotPending,
  kCaptureExceedsHold,
  kLinkedEventFailed,
  kLinkedChainOpen,
  kFieldTooLong,
  kPermissionDenied,
};
inline constexpr int kCodeMax = static_cast<int>(Code::kPermissionDenied);

// SPEC spellings: "earn", "insufficient_points" ...
std::string_view KindName(Kind kind);
std::string_view CodeName(Code code);
std::optional<Kind> KindFromName(std::string_view name);
std::optional<Code> CodeFromName(std::string_view name);

// True for the codes that depend only on the request (SPEC §3): they do not
// take the id and are not recorded.
bool IsRequestOnlyRejection(Code code);

// ---------------------------------------------------------------------------
// A transaction as a client posts it. One flat struct for every kind; each
// kind reads the fields named in its comment and expects the others at their
// defaults (a non-default unused field is part of the content compared by
// id_conflict, nothing more).
struct Transaction {
  Id id{};  // idempotency key; never zero
  Kind kind = Kind::kEarn;
  bool linked = false;        // succeeds or fails with the next one (§4)
  std::string program;        // every kind
  std::string member;         // earn redeem adjust hold account_close; transfer from; referral referrer
  std::string member2;        // transfer to; referral referee
  std::string partner;        // earn/redeem at a partner; partner_*; settle
  uint64_t points = 0;        // earn redeem transfer hold; capture (0 = all); reverse (0 = all); referral referrer
  uint64_t points2 = 0;       // referral referee
  int64_t delta = 0;          // adjust
  Id ref{};                   // reverse: original id; capture/release/hold_timeout: the hold's id
  int64_t time_ns = 0;        // earn: expires_at (0 = default); partner_price: effective from (0 = now);
                              // settle: period end; expire: the lot's expiry
  int32_t lock_days = -1;     // earn: override (-1 = program's); program_create: the program's
  uint32_t timeout_s = 0;     // hold
  bool clawback_partial = false;  // reverse
  std::string currency;           // program_create
  uint64_t point_value_micros = 0;  // program_create
  uint32_t expiry_days = 0;         // program_create
  bool auto_open = true;            // program_create
  uint64_t earn_price_micros = 0;   // partner_create, partner_price
  uint64_t redeem_price_micros = 0;  // partner_create, partner_price
  uint64_t lot_seq = 0;             // expire: the lot (seq of the transaction that made it)
  uint32_t lot_index = 0;           // expire: the lot's index within that transaction
  std::string order_ref;
  std::string reason;
  std::string metadata;

  bool operator==(const Transaction&) const = default;
};

// Returns the name of the first field (in declaration order, SPEC spelling:
// "points", "member" ...) in which a and b differ, or "" if equal. `linked`
// is not content: it describes the batch, not the attempt.
std::string_view FirstDifference(const Transaction& a, const Transaction& b);

// One transaction's outcome.
struct Result {
  Code code = Code::kOk;
  bool duplicate = false;
  uint64_t seq = 0;           // 0 when not recorded (request-only rejections)
  int64_t timestamp_ns = 0;   // 0 when not recorded
  uint64_t points = 0;        // reverse: points actually reversed; capture: points captured;
                              // expire: points expired; account_close: points forfeited
  std::string conflict_field;  // id_conflict: the first field that differs

  bool operator==(const Result&) const = default;
};

// How a posting moves the four balance totals (SPEC §1 "balance").
enum class PostingType : uint8_t {
  kPosted = 0,   // debits_posted / credits_posted += points
  kPending = 1,  // debits_pending / credits_pending += points (a hold)
  kVoid = 2,     // debits_pending / credits_pending -= points (hold ended)
};

// One posting: debit `debit`, credit `credit`, by `points`.
struct Posting {
  Id debit{};
  Id credit{};
  uint64_t points = 0;
  PostingType type = PostingType::kPosted;
  bool operator==(const Posting&) const = default;
};

// A settlement statement (SPEC §2 settle). Money in micros of the program's
// currency; each flow is priced at the agreement in effect at its time.
struct Statement {
  std::string program;
  std::string partner;
  int64_t from_ns = 0;  // inclusive
  int64_t to_ns = 0;    // exclusive
  int64_t earned_points = 0;    // earned at the partner, net of reversals
  int64_t redeemed_points = 0;  // redeemed at the partner, net of reversals
  int64_t partner_owes_micros = 0;
  int64_t program_owes_micros = 0;
  int64_t net_micros = 0;  // partner_owes - program_owes
  std::string payer;       // "partner", "program" or "none"
  bool operator==(const Statement&) const = default;
};

// SettlementStatement's from_ns for "after the last settled period".
inline constexpr int64_t kSinceLastSettlement = std::numeric_limits<int64_t>::min();

// A stored transaction (SPEC §7): what the hash chain covers.
// The format of a stored transaction record (docs/storage.md), which also
// names the rules it was decided by: a record is replayed (at open, by
// scans, by audit verify) by the rules of its own format, so that a newer
// binary reads an older ledger exactly as it was decided.
//   1  the first.
//   2  session 16, the same layout; a member's posted balance past 2^63 - 1
//      is overflow; a reversal of an earn or redeem at a partner is priced
//      as the original flow, not at the reversal's own time.
//   3  session 17, the same layout; a referral is reversible in part
//      (SPEC §2: "whole or for points of it"), the referrer's points first,
//      and a reversal past what is left of it is reversal_exceeds_original.
//   4  session 18, the same layout; a referral's reversals count what each
//      leg gave back, not what was asked: points a clawback_partial could
//      not take stay reversible, from their own leg; with it, a closed leg
//      gives nothing instead of being account_closed.
//   5  session 19, the same layout; a captured hold is reversible by the
//      hold's own id (SPEC §2), as its capture: a capture records its seq
//      in the hold (HoldRec::capture_seq); account_close voids the
//      member's pending holds in one posting, not one per hold; an expire
//      of a lot that never expires or is not made yet is invalid_amount,
//      and a hold_timeout of a hold not found is not recorded.
//   6  session 21, the same layout; an expire or hold_timeout must be
//      exactly what the sweep makes (the id derived from its content by
//      ExpireId or HoldTimeoutId, no other field set), and an expire must
//      name its lot's own expiry, a time after the epoch;
//      a settle's end must be after the epoch. Each is invalid_amount and
//      not recorded: recorded, a hand-made one took the id the sweep books
//      a real lot or hold under, and it never expired or timed out.
//   7  session 31, the same layout; an expire or hold_timeout whose derived
//      id another transaction already holds (any client can compute it and
//      post, say, a redeem under it) is decided all the same, by its lot's
//      or hold's state, and leaves the id to that transaction: it was
//      id_conflict, and the lot never expired or the hold never timed out.
//      Decided so, a rejection or an expire that books nothing is not
//      recorded (the state alone keeps it from being booked twice). Nor
//      is any rejection of a sweep's item (a linked chain made one take
//      the id while its hold stayed pending), and one an older format
//      recorded is decided again.
//   8  session 33, the same layout; what a hold gives back (a release, a
//      timeout, a capture's unused rest) goes into the lot it was taken
//      from, made again if it is gone, unless the sweep's id for that lot
//      is taken, so an earn's points held and given back are still its own
//      lot's for its reversal (SPEC §2); before, they came back as a new
//      lot of the ending transaction's. A hold records its pieces' lots for
//      it (docs/storage.md, `holds`).
inline constexpr uint8_t kRecordFormatMin = 1;
inline constexpr uint8_t kRecordFormat = 8;

struct TxRecord {
  uint8_t format = kRecordFormat;
  uint64_t seq = 0;
  int64_t timestamp_ns = 0;
  Transaction tx;
  Result result;  // duplicate is always false here
  std::vector<Posting> postings;
  std::array<uint8_t, 32> hash{};  // SHA-256(previous hash || canonical bytes)
  // A committed settle: the statement it recorded (SPEC §2), in the chain.
  std::optional<Statement> statement;
};

struct ChainHead {
  uint64_t seq = 0;  // 0 for an empty ledger
  int64_t timestamp_ns = 0;
  std::array<uint8_t, 32> hash{};  // all zero for an empty ledger
};

struct ExpiringLot {
  int64_t expires_at_ns = 0;  // INT64_MAX: never
  uint64_t points = 0;
};

// A member's balance at `as_of_ns` (SPEC §1 "balance").
struct Balance {
  uint64_t debits_posted = 0;
  uint64_t credits_posted = 0;
  uint64_t debits_pending = 0;
  uint64_t credits_pending = 0;
  uint64_t posted = 0;     // credits_posted - debits_posted
  uint64_t pending = 0;    // debits_pending
  uint64_t locked = 0;     // in lots still locked
  uint64_t expired = 0;    // in lots past expiry, not yet swept
  uint64_t available = 0;  // posted - pending - locked - expired
  bool closed = false;
  std::vector<ExpiringLot> expiring;  // unexpired lots, soonest first, merged by expiry
};

struct HistoryEntry {
  uint64_t seq = 0;
  int64_t timestamp_ns = 0;
  Id id{};
  Kind kind = Kind::kEarn;
  int64_t points = 0;  // the member's posted change (negative = out); holds: pending change
};

// Scopes (SPEC §6). A key used outside its programs or scopes gets
// permission_denied for that transaction.
enum Scope : uint8_t { kScopePost = 1, kScopeRead = 2, kScopeAdmin = 4 };
struct Auth {
  uint8_t scopes = kScopePost | kScopeRead | kScopeAdmin;
  std::vector<std::string> programs;  // empty: every program
  bool AllowsProgram(std::string_view program) const;
  static Auth Admin() { return Auth{}; }
};

// Time source. Tests inject a fake; the server uses the system clock.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t NowNs() = 0;
};
Clock* SystemClock();

struct Options {
  std::string dir;  // created if missing (unless read_only)
  uint64_t map_size_bytes = uint64_t{64} << 30;
  // For tools reading a live server's directory, from another process:
  // LMDB's locks are per process, so a second open of a directory in the
  // process that writes it would initialize the lock file again under the
  // writer (tests run their readers as other processes, each exec'd at
  // once after fork; tests/ledger/checkpoint_test.cc).
  bool read_only = false;
  Clock* clock = nullptr;  // nullptr: SystemClock()
  // Checkpoints (docs/storage.md): the state changed since the last one is
  // kept in memory and written to the state environment in the background
  // once it holds this many entries, or is this old. Bigger means fewer
  // page writes per transaction, more memory, longer replays on open.
  uint64_t checkpoint_entries = uint64_t{1} << 21;
  int64_t checkpoint_interval_ms = 1000;
  // Backpressure: once this many entries wait in memory for a checkpoint
  // (~200 bytes each), a new group commit first waits for the checkpoint
  // under way; if the last one failed (a full disk or state map), its
  // batches are refused (ResourceExhausted: server_busy) until one
  // succeeds, instead of memory growing until the process is killed.
  uint64_t memory_entries_max = uint64_t{1} << 23;
  // Audit, and a liability report as of the past, rebuild the state from
  // seq 1. Past this many entries in memory (~200 bytes each), a rebuild
  // moves them to a scratch LMDB environment in a new directory under
  // `scratch_dir` (empty: $TMPDIR, or /var/tmp without it), whose files
  // are unlinked as soon as they are open: its memory stays bounded
  // whatever the ledger's length (docs/operations.md).
  uint64_t rebuild_memory_entries = uint64_t{1} << 23;
  std::string scratch_dir = {};
  // A clean close writes a final checkpoint, so the next open replays
  // nothing. Tests turn it off to exercise the replay a crash would need.
  bool checkpoint_on_close = true;
  // The write-ahead log's segment files (docs/storage.md) start at 256 KiB
  // and double up to this size.
  uint64_t wal_segment_bytes = uint64_t{16} << 20;
  // The engine's operational messages (log_sink.h); null: stderr.
  LogSink log = nullptr;
  // Tests: called on the checkpointer's thread before each checkpoint
  // attempt; a non-OK status fails the attempt as a full disk would.
  std::function<absl::Status(uint64_t)> before_checkpoint = nullptr;
  // Tests: called on the checkpointer's thread with the checkpoint's seq
  // once it is written and its in-memory map dropped.
  std::function<void(uint64_t)> after_checkpoint = nullptr;
  // Tests: called on the checkpointer's thread after it freed frozen maps
  // that writers parked, with how many it held the last reference to.
  std::function<void(size_t)> after_free = nullptr;
  // Tests: Backup asks it at each step ("copied": both environments under
  // TO/.partial; "tail": the write-ahead log's tail added there; "state":
  // state/ moved into place); true stops the backup there, its files left
  // as a process killed at that moment would leave them.
  std::function<bool(std::string_view step)> backup_stop_at = nullptr;
  // Tests only: decide and write new transactions in this older record
  // format (kRecordFormatMin ... kRecordFormat), to make the ledgers an
  // older binary made and check that this one replays them as decided.
  uint8_t record_format = kRecordFormat;
};

// One account as stored, for reports, audits and tests.
struct AccountInfo {
  Id id{};
  std::string program;
  std::string kind;  // "member", "issuance", "partner" ...
  std::string name;  // the member key, or the partner name
  bool closed = false;
  uint64_t debits_posted = 0;
  uint64_t credits_posted = 0;
  uint64_t debits_pending = 0;
  uint64_t credits_pending = 0;
};

struct LotInfo {
  int64_t expires_at_ns = 0;
  uint64_t source_seq = 0;
  uint32_t index = 0;
  uint64_t remaining = 0;
  int64_t locked_until_ns = 0;
};

struct ProgramInfo {
  std::string name;
  std::string currency;
  uint64_t point_value_micros = 0;
  uint32_t expiry_days = 0;
  uint32_t lock_days = 0;
  bool auto_open = true;
};

// A finding of TrialBalance or VerifyChain.
struct Discrepancy {
  std::string what;      // "chain", "balance", "lot", "program_sum", "hold", "replay" ...
  std::string where;     // account id hex, seq ...
  std::string expected;
  std::string found;
  uint64_t seq = 0;  // the transaction concerned, when there is one
};

// `pointledger reconcile liability` (docs/finance.md): one program's
// outstanding points at as_of_ns, and its movements with
// from_ns <= timestamp < to_ns.
struct PartnerMovement {
  std::string partner;
  uint64_t earned_points = 0;    // earns at the partner
  uint64_t redeemed_points = 0;  // redeems at the partner
  bool operator==(const PartnerMovement&) const = default;
};
struct Liability {
  std::string program;
  std::string currency;
  uint64_t point_value_micros = 0;
  int64_t from_ns = 0;
  int64_t to_ns = 0;
  int64_t as_of_ns = 0;
  uint64_t as_of_seq = 0;  // the last transaction at or before as_of_ns
  // At as_of_ns.
  uint64_t outstanding_points = 0;  // Σ members' posted points (holds included)
  int64_t outstanding_value_micros = 0;
  uint64_t expired_unswept_points = 0;  // in lots past expiry, not yet swept
  uint64_t expiring_30d_points = 0;     // expiring in (as_of, as_of + 30 days]
  uint64_t expiring_60d_points = 0;     // ... 60 days (includes the 30)
  uint64_t expiring_90d_points = 0;
  // Movements in [from_ns, to_ns).
  uint64_t issued_points = 0;        // earn, referral, adjust up
  uint64_t adjusted_up_points = 0;   // adjust up (of issued_points)
  uint64_t redeemed_points = 0;      // redeem and capture, at partners too
  uint64_t reversed_points = 0;      // Σ points reversed (either way)
  uint64_t reversed_issued_points = 0;    // reversals that took points back
  uint64_t reversed_redeemed_points = 0;  // reversals that gave points back
  uint64_t expired_points = 0;
  uint64_t forfeited_points = 0;     // account_close
  uint64_t adjusted_down_points = 0;
  double breakage_rate = 0;          // expired / (expired + redeemed); 0 when both 0
  std::vector<PartnerMovement> partners;  // every partner of the program, by name
  bool operator==(const Liability&) const = default;
};

// `pointledger audit verify`: the chain recomputed, and every balance, lot
// and hold rebuilt from the transactions and compared with what is stored.
struct AuditReport {
  ChainHead head;
  uint64_t first_bad_seq = 0;            // the first transaction to blame; 0: none is
  uint64_t discrepancy_count = 0;        // all of them
  std::vector<Discrepancy> discrepancies;  // the first kAuditListedMax
  // How often the rebuild moved its state to scratch, and the most entries
  // it held in memory (Options::rebuild_memory_entries: at most that plus
  // what 4,096 transactions write, the replay's step between checks).
  uint64_t rebuild_spills = 0;
  uint64_t rebuild_peak_entries = 0;
};
inline constexpr size_t kAuditListedMax = 100;

// Long reads report progress: phase ("chain", "rebuild" ...), done of total.
using Progress = std::function<void(std::string_view phase, uint64_t done, uint64_t total)>;

// A page of stored transactions (audit export, reconcile external).
struct RecordsPage {
  std::vector<TxRecord> records;
  uint64_t next_seq = 0;  // where the next page starts; > head_seq: no more
  uint64_t head_seq = 0;
};
inline constexpr uint32_t kRecordsPageMax = 1000;
// A program-filtered page stops after scanning this many records, so one
// call is bounded in time even when the program has few transactions.
inline constexpr uint64_t kRecordsScanMax = 100'000;

class Ledger {
 public:
  // Opens (creating if needed) the environment in options.dir.
  // Errors: InvalidArgument for a bad directory, DataLoss for a corrupt or
  // foreign environment, and what LMDB reports.
  static absl::StatusOr<std::unique_ptr<Ledger>> Open(const Options& options);
  ~Ledger();
  Ledger(const Ledger&) = delete;
  Ledger& operator=(const Ledger&) = delete;

  // A group commit: one LMDB write transaction in which any number of
  // batches are applied. Results handed out by Apply are final only once
  // Commit() has returned OK; if the Writer is destroyed or Commit fails,
  // nothing it applied exists. Only one Writer may exist at a time (LMDB
  // serialises writers). Not thread-safe; use from one thread.
  class Writer {
   public:
    Writer(Writer&&) noexcept;
    Writer& operator=(Writer&&) = delete;
    ~Writer();

    // Applies one batch (SPEC §4) in order, one result per transaction into
    // *results (cleared first). A non-OK Status means storage failed for
    // this batch (ResourceExhausted: the map is full): the batch is rolled
    // back entirely, earlier batches of this Writer are kept, and the
    // caller answers the batch's client with server_busy.
    // REQUIRES: 1 <= batch.size() <= kBatchTransactionsMax.
    absl::Status Apply(std::span<const Transaction> batch, const Auth& auth,
                       std::vector<Result>* results);

    // Makes everything applied durable (fsync) and visible to readers.
    absl::Status Commit() &&;

    // How many transactions this Writer has recorded so far.
    uint64_t recorded_count() const;

   private:
    friend class Ledger;
    struct Rep;
    explicit Writer(std::unique_ptr<Rep> rep);
    std::unique_ptr<Rep> rep_;
  };

  // Starts a group commit. REQUIRES: not read_only.
  absl::StatusOr<Writer> BeginWrite();

  // Starts a checkpoint if one is due by checkpoint_interval_ms. A commit
  // checks that as it ends; a writer that goes idle after a burst calls
  // this now and then, or the burst's state would stay in memory (and a
  // crash would replay it) until the next commit. From the thread that
  // writes; a no-op while a Writer exists or when read_only.
  void CheckpointIfDue();

  // BeginWrite + Apply + Commit, for callers that need no grouping.
  absl::Status ApplyBatch(std::span<const Transaction> batch, const Auth& auth,
                          std::vector<Result>* results);

  // ---- Reads. Thread-safe; each runs in its own read transaction. ----

  // nullopt if the program or the member does not exist.
  absl::StatusOr<std::optional<Balance>> GetBalance(std::string_view program,
                                                    std::string_view member);
  // Newest first; entries with seq < before_seq (0: from the newest).
  absl::StatusOr<std::vector<HistoryEntry>> GetHistory(std::string_view program,
                                                       std::string_view member,
                                                       uint32_t limit,
                                                       uint64_t before_seq);
  absl::StatusOr<std::optional<TxRecord>> GetTransaction(const Id& id);
  absl::StatusOr<std::optional<TxRecord>> GetTransactionBySeq(uint64_t seq);
  absl::StatusOr<ChainHead> GetHead();
  absl::StatusOr<std::optional<ProgramInfo>> GetProgram(std::string_view name);

  // Transactions that are due at as_of_ns: an expire for every lot with
  // unconsumed points whose expiry <= as_of_ns, and a hold_timeout for every
  // pending hold whose deadline <= as_of_ns. Their ids derive from the lot or
  // the hold, so applying them twice books nothing twice. At most `limit`.
  absl::StatusOr<std::vector<Transaction>> CollectDue(int64_t as_of_ns, size_t limit);

  // The statement of the partner's flows with from_ns <= timestamp < to_ns,
  // priced at the time of each flow. from_ns == kSinceLastSettlement starts
  // where the last `settle` closed (the beginning if none has). partner_not_found / program_not_found
  // are reported as NotFound; totals beyond 2^63 - 1 as OutOfRange.
  absl::StatusOr<Statement> SettlementStatement(std::string_view program,
                                                std::string_view partner,
                                                int64_t from_ns, int64_t to_ns);

  // Every account (in key order), and a member's lots (in consumption order).
  absl::Status ForEachAccount(const std::function<void(const AccountInfo&)>& fn);
  absl::StatusOr<std::vector<LotInfo>> GetLots(const Id& account);

  // Audit (SPEC §7). VerifyChain recomputes every hash from seq 1; the
  // first bad seq is reported. TrialBalance checks that each program's
  // postings sum to zero, that stored balances equal the replay of all
  // postings, and that each member's lots plus its pending holds equal its
  // posted balance. Both return an empty list when all is well.
  absl::StatusOr<std::vector<Discrepancy>> VerifyChain();
  absl::StatusOr<std::vector<Discrepancy>> TrialBalance();

  // VerifyChain, then a rebuild of the whole state from seq 1 compared
  // table by table with the stored state. Holds the rebuilt state in
  // memory (about as much as the server's, see docs/finance.md).
  absl::StatusOr<AuditReport> Audit(const Progress& progress = nullptr);

  // NotFound for an unknown program. An as_of_ns before the last
  // transaction rebuilds the state at that time from the log (slow on a
  // big ledger: every transaction up to then is re-applied).
  absl::StatusOr<Liability> LiabilityReport(std::string_view program, int64_t from_ns,
                                            int64_t to_ns, int64_t as_of_ns);

  // Up to `limit` (0 or above kRecordsPageMax: kRecordsPageMax) transactions with seq >= from_seq,
  // in seq order; only `program`'s when it is not empty.
  absl::StatusOr<RecordsPage> GetRecords(uint64_t from_seq, uint32_t limit,
                                         std::string_view program);

  // A consistent copy of the ledger into `to_dir` (which must not exist or
  // be empty), compacted, safe beside a running writer: the state first,
  // then the log (which always reaches at least the state's checkpoint), so
  // opening the copy replays the log past it. Returns the copy's head.
  // InvalidArgument for a `to_dir` that cannot take one (a file, inside
  // the data directory, a cut-short backup, not empty).
  absl::StatusOr<ChainHead> Backup(const std::string& to_dir);

  // LMDB map usage (bytes in use, map size) of the log and state
  // environments: a full map refuses batches with server_busy.
  struct MapUsage {
    uint64_t log_used = 0, log_size = 0, state_used = 0, state_size = 0;
  };
  absl::StatusOr<MapUsage> GetMapUsage() const;

  // The seq up to which the state environment holds the state (0: none
  // yet). The log past it is what an open after a crash, or a read-only
  // open, replays.
  absl::StatusOr<uint64_t> CheckpointSeq() const;

  int64_t NowNs() const;

 private:
  struct Rep;
  explicit Ledger(std::unique_ptr<Rep> rep);
  std::unique_ptr<Rep> rep_;
};

}  // namespace pointledger::ledger

#endif  // POINTLEDGER_LEDGER_LEDGER_H_
