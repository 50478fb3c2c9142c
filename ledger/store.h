// Internal to ledger/: the sub-databases (docs/storage.md) and the Applier,
// which turns transactions into stored state inside a write transaction.
#ifndef POINTLEDGER_LEDGER_STORE_H_
#define POINTLEDGER_LEDGER_STORE_H_

#include <array>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "ledger/codec.h"
#include "ledger/ledger.h"
#include "ledger/lmdb.h"
#include "ledger/view.h"

namespace pointledger::ledger {

// The chain head as stored: the last log entry (all zero when empty).
absl::StatusOr<ChainHead> ReadHead(const View& view, const Dbs& dbs);

// Reads a stored transaction by seq; nullopt if absent. DataLoss if it
// does not parse.
absl::StatusOr<std::optional<TxRecord>> ReadRecord(const View& view, const Dbs& dbs, uint64_t seq);

// The statement of a partner's flows with from <= ts < to. OutOfRange if a
// total (points or money, either way) exceeds 2^63 - 1.
absl::StatusOr<Statement> ComputeStatement(const View& view, const Dbs& dbs,
                                           const Id& partner_account, int64_t from_ns,
                                           int64_t to_ns);

// Audit over one read snapshot (Ledger::VerifyChain, Ledger::TrialBalance).
absl::StatusOr<std::vector<Discrepancy>> VerifyChainIn(const View& view, const Dbs& dbs,
                                                       const Progress& progress = nullptr);
absl::StatusOr<std::vector<Discrepancy>> TrialBalanceIn(const View& view, const Dbs& dbs);

// Compares every state table of `rebuilt` (the log replayed from seq 1)
// with `stored`, calling `add` for each key whose value differs or that
// only one side has.
absl::Status CompareState(const View& rebuilt, const View& stored,
                          const std::function<void(Discrepancy)>& add,
                          const Progress& progress);

// The last seq whose timestamp is <= ts (0: none), by binary search.
absl::StatusOr<uint64_t> SeqAtOrBefore(const View& view, const Dbs& dbs, int64_t ts);

// Liability report (ledger/report.cc): balances and lots from `at` (the
// state at as_of), movements from the log of `log`.
absl::StatusOr<Liability> LiabilityIn(const View& at, const View& log, const Dbs& dbs,
                                      std::string_view program, int64_t from_ns, int64_t to_ns,
                                      int64_t as_of_ns, uint64_t as_of_seq);

// A lot as loaded for a transaction: its key and contents. The key is
// fixed-size and held inline, so a vector of them that is cleared and
// refilled for each redeem allocates nothing (SPEC §9).
struct LotEntry {
  std::array<char, kLotKeyBytes> key_bytes{};
  LotInfo info;
  std::string_view key() const { return {key_bytes.data(), key_bytes.size()}; }
};
// A member's lots in consumption order.
absl::Status LoadLots(const View& view, const Dbs& dbs, const Id& account,
                      std::vector<LotEntry>* lots);
// The same through `cursor` (on the lots table, any prefix), which it
// re-bounds to the member's lots: a caller that keeps one cursor loads
// lots without opening an LMDB cursor each time.
absl::Status LoadLots(ViewCursor& cursor, const Id& account, std::vector<LotEntry>* lots);

// Applies batches inside a group commit. Owned by a Ledger::Writer.
class Applier {
 public:
  struct Buffers;
  // `view` is a writer View. `buffers`: what it reuses from transaction to
  // transaction, lent for its lifetime (a Ledger keeps one across its
  // group commits); null: its own.
  Applier(View& view, Clock* clock, const ChainHead& head, Buffers* buffers = nullptr);

  // See Ledger::Writer::Apply. A batch that takes the group's pending log
  // entries past the limit is refused whole with ResourceExhausted.
  absl::Status ApplyBatch(std::span<const Transaction> batch, const Auth& auth,
                          std::vector<Result>* results);
  // What the log environment can still take, in LogChunk::lmdb_bytes().
  void set_log_bytes_limit(uint64_t limit) { log_bytes_limit_ = limit; }

  // Re-applies the next stored transaction (recovery and private
  // snapshots): `rec` decoded from `stored`, its log value (hash ‖
  // record). DataLoss if the stored record does not hash to its hash
  // (checked first), or its outcome or hash differ from the replay's.
  // REQUIRES: the view is replaying; stored.size() >= 32.
  absl::Status Replay(const TxRecord& rec, std::string_view stored);

  const ChainHead& head() const { return head_; }
  uint64_t recorded_count() const { return recorded_; }
  // The record format new transactions are decided by and written in
  // (Options::record_format; tests only). Replay uses each record's own.
  void set_record_format(uint8_t format) { rules_ = format; }

 private:
  struct Slot {
    Id id{};
    AccountRec rec;
    bool exists = false;
    bool dirty = false;
  };
  // Scratch for one transaction; reused to avoid allocation.
  struct Ctx {
    const Transaction* tx = nullptr;
    int64_t ts = 0;
    uint64_t seq = 0;
    ProgramRec program;
    std::array<Slot, 8> slots;
    size_t slot_count = 0;
    std::vector<Posting> postings;
    uint64_t result_points = 0;
    bool has_statement = false;
    Statement statement;
    bool not_recorded = false;  // a hold_timeout before its deadline
  };

 public:
  // SPEC §9 asks for no allocation per transaction on the writer's path,
  // and a std::string over 15 bytes allocates: these keep their capacity.
  // A Ledger lends its writer's to each group commit's Applier, so that a
  // commit of one transaction does not grow them again (41 allocations a
  // transaction at batch 1 before, BENCHMARKS.md "Session 27").
  struct Buffers {
    Ctx ctx;
    // The record's and the encoders'.
    std::string scratch;
    // The leaf writes' (a lot and its expiry entry, a history row), never
    // held across a call that may use them.
    std::string key, key2, value;
    TxRecord record;  // Record()'s: copies into its strings keep capacity
    std::vector<LotEntry> lots_a, lots_b;
    std::vector<Piece> pieces;
    HoldRec hold;  // a hold's, decoded or built: its pieces keep capacity
    std::string flow_key;  // AddFlow's, while it uses the others
  };

 private:

  absl::StatusOr<Result> ApplyOne(const Transaction& tx, const Auth& auth);
  // The checks that need only the request, then exactly-once: the refusal,
  // the decided id's outcome (duplicate, or id_conflict), or nullopt for an
  // id to decide now.
  absl::StatusOr<std::optional<Result>> Precheck(const Transaction& tx, const Auth& auth);
  absl::Status ApplyChain(std::span<const Transaction> chain, const Auth& auth,
                          std::span<Result> results);
  absl::StatusOr<Result> Record(const Transaction& tx, Code code, int64_t ts);
  int64_t NextTimestamp() const;

  absl::StatusOr<Code> ApplyKind(Ctx& c);
  absl::StatusOr<Code> ProgramCreate(Ctx& c);
  absl::StatusOr<Code> PartnerCreate(Ctx& c);
  absl::StatusOr<Code> PartnerPrice(Ctx& c);
  absl::StatusOr<Code> Earn(Ctx& c);
  absl::StatusOr<Code> Redeem(Ctx& c);
  absl::StatusOr<Code> Referral(Ctx& c);
  absl::StatusOr<Code> Transfer(Ctx& c);
  absl::StatusOr<Code> Adjust(Ctx& c);
  absl::StatusOr<Code> Hold(Ctx& c);
  absl::StatusOr<Code> EndHold(Ctx& c);  // capture, release, hold_timeout
  absl::StatusOr<Code> Expire(Ctx& c);
  absl::StatusOr<Code> Settle(Ctx& c);
  absl::StatusOr<Code> AccountClose(Ctx& c);
  absl::StatusOr<Code> AccountOpen(Ctx& c);
  absl::StatusOr<Code> Reverse(Ctx& c);
  absl::StatusOr<Code> ReverseIntoSource(Ctx& c, const TxRecord& original,
                                         std::array<uint64_t, 2> leg_done, uint64_t amount,
                                         std::array<uint64_t, 2>* taken);
  absl::StatusOr<Code> ReverseIntoMember(Ctx& c, const TxRecord& original, uint64_t done,
                                         uint64_t amount);
  absl::StatusOr<Code> ReverseTransfer(Ctx& c, const TxRecord& original, uint64_t amount,
                                       uint64_t* taken);

  // Account cache of the current transaction.
  absl::StatusOr<Slot*> Account(Ctx& c, const Id& id);
  // Resolves a member: opened if absent and open_if_needed and the program
  // auto-opens; account_not_found / account_closed otherwise.
  absl::StatusOr<Code> Member(Ctx& c, std::string_view key, bool open_if_needed, Slot** out);
  // Adds a posting to the cache; overflow (nothing is written yet).
  Code Post(Ctx& c, Slot* debit, Slot* credit, uint64_t points, PostingType type);
  absl::Status Flush(Ctx& c);

  // Lots.
  int64_t DefaultExpiry(const Ctx& c) const;
  absl::Status AddLot(const Id& account, int64_t expires_at_ns, uint64_t seq, uint32_t index,
                      uint64_t points, int64_t locked_until_ns);
  absl::Status TakeFromLot(const LotEntry& lot, uint64_t points);
  // LoadLots through lots_cursor_, opened at the first call and again
  // whenever the view's state layer has changed (a rebuild's spill).
  absl::Status MemberLots(const Id& account, std::vector<LotEntry>* lots);
  // A cursor on `t` kept for this Applier's lifetime in `kept`, opened
  // at the first call and again whenever the view's state layer changed.
  struct KeptCursor {
    std::optional<ViewCursor> cursor;
    uint64_t generation = 0;  // the view's state_generation() at its opening
  };
  absl::StatusOr<ViewCursor*> Kept(KeptCursor& kept, Table t);
  // Consumes `points` from the available lots (FIFO), skipping `skip_key`.
  // Appends the consumed pieces, and (if `sources`) the lot each came from.
  // REQUIRES: enough available.
  absl::Status Consume(std::vector<LotEntry>& lots, int64_t ts, uint64_t points,
                       std::string_view skip_key, std::vector<Piece>* pieces,
                       std::vector<HoldRec::Source>* sources = nullptr);
  // What a hold did not capture of one piece, back to `member`: into its
  // source lot `from` (null: none, before format 8), else a new lot keyed
  // (c.seq, index).
  absl::Status GiveBack(const Ctx& c, const Id& member, int64_t expires_at_ns, uint64_t points,
                        const HoldRec::Source* from, uint32_t index);
  // Gives `points` back to the lot of `account` keyed (expiry, seq, index)
  // if it is there; false (nothing done) if it is not.
  absl::StatusOr<bool> RefillLot(const Id& account, int64_t expires_at_ns, uint64_t seq,
                                 uint32_t index, uint64_t points);
  absl::Status PutEffects(uint64_t seq, const std::vector<Piece>& pieces);
  // A flow at the price in effect at c.ts, or, for the reversal of a flow
  // (`reversed`: the original transaction; record format 2 on), at the
  // original flow's own price.
  absl::Status AddFlow(const Ctx& c, const Id& partner, FlowKind kind, int64_t points,
                       const TxRecord* reversed = nullptr);
  absl::Status PutHold(const Id& hold_id, const HoldRec& hold);

  View& view_;
  uint64_t log_bytes_limit_ = UINT64_MAX;
  const Dbs dbs_;
  Clock* clock_;
  ChainHead head_;
  uint64_t recorded_ = 0;
  // The rules (record format, ledger.h) of the transaction being decided:
  // the newest, or the stored record's own while it is replayed.
  uint8_t rules_ = kRecordFormat;
  // Set by Precheck: a sweep's transaction whose id another holds (format 7).
  bool sweep_id_held_ = false;
  std::unique_ptr<Buffers> own_buffers_;  // when none was lent
  Buffers& buffers_;
  // Names for buffers_' members.
  Ctx& ctx_;
  std::string& scratch_;
  std::string &key_buf_, &key2_buf_, &value_buf_;
  TxRecord& record_;
  std::vector<LotEntry>&lots_a_, &lots_b_;
  std::vector<Piece>& pieces_;
  HoldRec& hold_;
  // For MemberLots: one cursor (and one LMDB cursor, whose opening
  // mallocs) for every redeem of the group commit. Declared last, so it is
  // closed before anything it reads through.
  KeptCursor lots_cursor_, prices_cursor_;
};

}  // namespace pointledger::ledger

#endif  // POINTLEDGER_LEDGER_STORE_H_
