// libFuzzer target: the state environment's stored rows, damaged on disk or
// tampered with (issue 4: `audit verify` and `reconcile trial-balance` must
// notice a changed byte of a balance, a lot, a stored transaction). No
// other target reaches them: the frame target's ledger only ever holds what
// the engine wrote, and the wal target's ledgers have no checkpoint.
//
// Once per process the harness builds a real ledger in /dev/shm with every
// kind of transaction (a program, a partner with a second price, earns at
// home and at the partner, a locked earn, a redeem, a referral, a transfer,
// adjustments both ways, a captured hold and a pending one, reversals, a
// refused redeem, an account closed, an expiry swept, a settle), so that
// each of the 14 state tables has rows, and closes it: the final checkpoint
// leaves the whole state in DIR/state and nothing past it in the log. It
// keeps a pristine copy of the directory and of every state row.
//
// Per input (tests/fuzz/state_input.h): the pristine directory is copied
// back, the input's edits change rows of the state environment through the
// LMDB API (values and keys changed, rows deleted and added; the
// checkpoint seq in `meta` too), then:
//   1. a read-only Ledger, as `pointledger audit verify --data` and the
//      other `--data` commands open it: Audit, TrialBalance and the reads
//      (balances, history, lots, programs, transactions, due items, the
//      partner's statement, liability, every account);
//   2. a read-write Ledger, as the server opens it, applying the input's
//      menu of transactions one batch each (a sweep, a clock moved 40
//      days on, among them), reading everything again, and closing (its
//      final checkpoint writes the state back);
//   3. over an unchanged state, a read-only Ledger again, audited.
//
// Oracles beyond "no crash, no hang, no sanitizer report":
// - every error is DataLoss, but for the answers that name a missing thing
//   or a total past its type (NotFound, OutOfRange) where the API says so;
//   with no effective edit, nothing fails at all;
// - THE AUDIT: if the edits left any row of the tables Audit compares
//   (CompareState: every state table, ids ... flows) different from the
//   pristine ones, or changed the checkpoint seq in `meta`, then Audit on
//   the read-only ledger reports at least one discrepancy or fails with
//   DataLoss; if they changed nothing there (edits that put the bytes back,
//   or only added rows to `meta` under keys nothing reads), it is clean,
//   and so are TrialBalance and the audits after the writer's batches.
//   The exception, stated: `meta` is not compared; only its
//   `checkpoint_seq` means anything, and a change of it is found by the
//   replay from the wrong seq (DataLoss, or a "replay" discrepancy).
//   LMDB's own pages and its main database (the table directory) are not
//   edited: LMDB trusts them, and a damaged page is MDB_CORRUPTED at best;
// - THE BOOKS: if the edits changed an account's four totals (or its row
//   is gone or unreadable), or, with that account and the holds as they
//   were, a member's lots to another sum (or one unreadable), TrialBalance
//   on the read-only ledger reports a discrepancy or fails with DataLoss
//   (`reconcile trial-balance`; its other changes are Audit's alone:
//   BooksDiffer says which).
//
// PL_FUZZ_TRACE=1 in the environment prints each edit and each finding.
#include <lmdb.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "ledger/ledger.h"
#include "ledger/codec.h"
#include "ledger/limits.h"
#include "ledger/status.h"
#include "ledger/view.h"
#include "tests/fuzz/scratch_dir.h"
#include "tests/fuzz/state_input.h"

namespace pointledger::fuzz {
namespace {

using ledger::Kind;
using ledger::Transaction;

inline constexpr int64_t kStartNs = int64_t{1'767'225'600} * ledger::kNanosPerSecond;
inline constexpr size_t kMapBytes = size_t{16} << 20;

class FakeClock final : public ledger::Clock {
 public:
  int64_t NowNs() override { return now_ns_; }
  void Set(int64_t now_ns) { now_ns_ = now_ns; }

 private:
  int64_t now_ns_ = kStartNs;
};

Transaction Tx(Kind kind, const std::string& key) {
  Transaction t;
  t.kind = kind;
  t.program = "acme";
  t.id = ledger::TxIdFromKey("acme", key);
  return t;
}

Transaction Points(Kind kind, const char* member, uint64_t points, const std::string& key) {
  Transaction t = Tx(kind, key);
  t.member = member;
  t.points = points;
  return t;
}

Transaction Ref(Kind kind, const char* original_key, uint64_t points, const std::string& key) {
  Transaction t = Tx(kind, key);
  t.ref = ledger::TxIdFromKey("acme", original_key);
  t.points = points;
  return t;
}

Transaction Pair(Kind kind, const char* a, const char* b, uint64_t pa, uint64_t pb,
                 const std::string& key) {
  Transaction t = Points(kind, a, pa, key);
  t.member2 = b;
  t.points2 = pb;
  return t;
}

Transaction AtPartner(Transaction t) {
  t.partner = "hotelco";
  return t;
}

// The ledger every input starts from: every kind, every state table.
std::vector<Transaction> Workload(int64_t start_ns) {
  Transaction program = Tx(Kind::kProgramCreate, "program-create");
  program.currency = "USD";
  program.point_value_micros = 5000;
  program.expiry_days = 365;
  Transaction partner = Tx(Kind::kPartnerCreate, "partner-create");
  partner.partner = "hotelco";
  partner.earn_price_micros = 9000;
  partner.redeem_price_micros = 7000;
  Transaction price = Tx(Kind::kPartnerPrice, "price-2");
  price.partner = "hotelco";
  price.earn_price_micros = 9500;
  price.redeem_price_micros = 7000;
  Transaction locked = Points(Kind::kEarn, "dave", 15, "locked");
  locked.lock_days = 10;
  Transaction soon = Points(Kind::kEarn, "erin", 40, "soon");
  soon.time_ns = start_ns + ledger::kNanosPerDay;
  Transaction hold1 = Points(Kind::kHold, "alice", 40, "hold-1");
  hold1.timeout_s = 600;
  Transaction hold_bob = Points(Kind::kHold, "bob", 10, "hold-bob");
  hold_bob.timeout_s = ledger::kHoldTimeoutSecondsMax;  // stays pending
  Transaction up = Tx(Kind::kAdjust, "adj-up");
  up.member = "carol";
  up.delta = 5;
  Transaction down = Tx(Kind::kAdjust, "adj-down");
  down.member = "carol";
  down.delta = -3;
  Transaction close = Tx(Kind::kAccountClose, "close");
  close.member = "carol";
  return {program,
          partner,
          price,
          Points(Kind::kEarn, "alice", 500, "e1"),
          AtPartner(Points(Kind::kEarn, "alice", 80, "p-e1")),
          locked,
          soon,
          Points(Kind::kRedeem, "alice", 50, "r1"),
          AtPartner(Points(Kind::kRedeem, "bob", 0, "p-r0")),  // invalid_amount: not recorded
          Pair(Kind::kReferral, "alice", "bob", 30, 20, "ref"),
          Pair(Kind::kTransfer, "alice", "carol", 25, 0, "t1"),
          up,
          down,
          hold1,
          Ref(Kind::kCapture, "hold-1", 30, "cap-1"),
          hold_bob,
          Ref(Kind::kReverse, "r1", 20, "undo-r1"),
          Ref(Kind::kReverse, "e1", 10, "undo-e1"),
          Points(Kind::kRedeem, "alice", 100000, "too-much"),
          close};
}

// What a menu byte applies (state_input.h), over whatever the edits left.
// `key` makes the id: each position of the menu is a new attempt.
Transaction MenuTransaction(uint8_t item, const std::string& key) {
  switch (item) {
    case 0: return Points(Kind::kEarn, "alice", 7, key);
    case 1: {
      Transaction t = Points(Kind::kEarn, "dave", 5, key);
      t.lock_days = 3;
      return t;
    }
    case 2: return Points(Kind::kRedeem, "alice", 5, key);
    case 3: return Points(Kind::kRedeem, "bob", 3, key);
    case 4: return Pair(Kind::kTransfer, "alice", "bob", 2, 0, key);
    case 5: return Pair(Kind::kReferral, "alice", "gina", 4, 3, key);
    case 6: {
      Transaction t = Points(Kind::kHold, "alice", 4, key);
      t.timeout_s = 60;
      return t;
    }
    case 7: return Ref(Kind::kCapture, "hold-bob", 5, key);
    case 8: return Ref(Kind::kRelease, "hold-bob", 0, key);
    case 9: return Ref(Kind::kReverse, "e1", 5, key);
    case 10: return Ref(Kind::kReverse, "r1", 0, key);
    case 11: {
      Transaction t = Tx(Kind::kAdjust, key);
      t.member = "alice";
      t.delta = -2;
      return t;
    }
    case 12: {
      Transaction t = Tx(Kind::kAdjust, key);
      t.member = "bob";
      t.delta = 2;
      return t;
    }
    case 13: {
      Transaction t = Tx(Kind::kAccountClose, key);
      t.member = "bob";
      return t;
    }
    case 14: {
      Transaction t = Tx(Kind::kSettle, key);
      t.partner = "hotelco";
      return t;
    }
    case 15: return AtPartner(Points(Kind::kEarn, "alice", 9, key));
    case 16: return AtPartner(Points(Kind::kRedeem, "bob", 1, key));
    case 17: {
      Transaction t = Tx(Kind::kPartnerPrice, key);
      t.partner = "hotelco";
      t.earn_price_micros = 9900;
      t.redeem_price_micros = 7100;
      return t;
    }
    case 18: return Ref(Kind::kReverse, "hold-1", 10, key);  // the captured hold, by its id
    case 19: return Ref(Kind::kReverse, "ref", 0, key);
    case 20: return Ref(Kind::kReverse, "t1", 0, key);
    case 21: {
      Transaction t = Ref(Kind::kReverse, "e1", 400, key);
      t.clawback_partial = true;
      return t;
    }
    default: return Points(Kind::kRedeem, "dave", 1, key);  // locked
  }
}
inline constexpr uint8_t kMenuTransactions = 23;
// Two more items: the clock moves 40 days on; the sweep (CollectDue) is
// applied as the server's would.
inline constexpr uint8_t kMenuAdvance = kMenuTransactions;
inline constexpr uint8_t kMenuSweep = kMenuTransactions + 1;
inline constexpr uint8_t kMenuCount = kMenuTransactions + 2;

// ---------------------------------------------------------------------------
// The state environment through the LMDB API, as someone with the files
// would edit it (and as tests/ledger/finance_test.cc does).

using Rows = std::vector<std::pair<std::string, std::string>>;

// The LMDB name of an edit's table choice: the 14 state tables, then meta.
const char* ChoiceName(uint8_t choice) {
  return choice < kStateTableChoices - 1 ? ledger::TableName(static_cast<ledger::Table>(choice + 2))
                                         : "meta";
}

class RawState {
 public:
  explicit RawState(const std::string& state_dir) {
    PL_CHECK(mdb_env_create(&env_) == 0);
    PL_CHECK(mdb_env_set_maxdbs(env_, 32) == 0);
    PL_CHECK(mdb_env_set_mapsize(env_, kMapBytes) == 0);
    PL_CHECK(mdb_env_open(env_, state_dir.c_str(), 0, 0644) == 0);
    PL_CHECK(mdb_txn_begin(env_, nullptr, 0, &txn_) == 0);
    for (uint8_t c = 0; c < kStateTableChoices; ++c) {
      PL_CHECK(mdb_dbi_open(txn_, ChoiceName(c), 0, &dbi_[c]) == 0);
    }
  }
  RawState(const RawState&) = delete;
  RawState& operator=(const RawState&) = delete;
  ~RawState() {
    if (txn_ != nullptr) mdb_txn_abort(txn_);
    mdb_env_close(env_);
  }
  void Commit() { PL_CHECK(mdb_txn_commit(std::exchange(txn_, nullptr)) == 0); }

  Rows Read(uint8_t choice) const {
    Rows rows;
    MDB_cursor* cursor = nullptr;
    PL_CHECK(mdb_cursor_open(txn_, dbi_[choice], &cursor) == 0);
    MDB_val k{0, nullptr}, v{0, nullptr};
    for (int rc = mdb_cursor_get(cursor, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT)) {
      rows.emplace_back(std::string(static_cast<const char*>(k.mv_data), k.mv_size),
                        std::string(static_cast<const char*>(v.mv_data), v.mv_size));
    }
    mdb_cursor_close(cursor);
    return rows;
  }
  // False for a key LMDB cannot store (empty, or past 511 bytes).
  bool Put(uint8_t choice, const std::string& key, const std::string& value) {
    MDB_val k{key.size(), const_cast<char*>(key.data())};
    MDB_val v{value.size(), const_cast<char*>(value.data())};
    const int rc = mdb_put(txn_, dbi_[choice], &k, &v, 0);
    PL_CHECK(rc == 0 || rc == MDB_BAD_VALSIZE);
    return rc == 0;
  }
  void Del(uint8_t choice, const std::string& key) {
    MDB_val k{key.size(), const_cast<char*>(key.data())};
    const int rc = mdb_del(txn_, dbi_[choice], &k, nullptr);
    PL_CHECK(rc == 0 || rc == MDB_NOTFOUND);
  }

 private:
  MDB_env* env_ = nullptr;
  MDB_txn* txn_ = nullptr;
  MDB_dbi dbi_[kStateTableChoices] = {};
};

// One edit's new row. Returns false when it changes nothing it can store.
bool EditRow(const StateEdit& e, const Rows& rows, std::string* key, std::string* value,
             bool* keep_old) {
  const auto& [old_key, old_value] = rows[e.row % rows.size()];
  *key = old_key;
  *value = old_value;
  *keep_old = false;
  std::string& v = *value;
  switch (e.op) {
    case Op::kOverwrite: {
      const size_t at = e.a % (v.size() + 1);
      v.resize(std::max(v.size(), at + e.payload.size()));
      v.replace(at, e.payload.size(), e.payload);
      break;
    }
    case Op::kFlipBit:
      if (v.empty()) return false;
      v[e.a % v.size()] = static_cast<char>(v[e.a % v.size()] ^ (1 << (e.b % 8)));
      break;
    case Op::kTruncate:
      if (v.empty()) return false;
      v.resize(e.a % v.size());
      break;
    case Op::kAppend: v += e.payload.empty() ? std::string(1, static_cast<char>(e.a)) : e.payload; break;
    case Op::kSetWord: {
      if (v.size() < 8) v.resize(8, '\0');
      const size_t at = std::min<size_t>(e.a % v.size(), v.size() - 8);
      uint64_t old = 0;
      for (size_t i = 0; i < 8; ++i) old |= uint64_t{static_cast<uint8_t>(v[at + i])} << (8 * i);
      const uint64_t now = Interesting(e.b, old);
      for (size_t i = 0; i < 8; ++i) v[at + i] = static_cast<char>(now >> (8 * i));
      break;
    }
    case Op::kKeyOverwrite: {
      std::string& k = *key;
      const size_t at = e.a % k.size();
      if (e.payload.empty()) {
        k[at] = static_cast<char>(k[at] ^ (e.b == 0 ? 0x5a : e.b));
      } else {
        k.resize(std::max(k.size(), at + e.payload.size()));
        k.replace(at, e.payload.size(), e.payload);
      }
      break;
    }
    case Op::kKeyResize:
      if (e.payload.empty()) {
        key->resize(std::max<size_t>(1, e.a % key->size()));
      } else {
        *key += e.payload;
      }
      break;
    case Op::kDelete: key->clear(); break;
    case Op::kInsert: {
      std::string& k = *key;
      k[e.a % k.size()] = static_cast<char>(k[e.a % k.size()] ^ (e.b == 0 ? 0x5a : e.b));
      if (!e.payload.empty()) v = e.payload;
      *keep_old = true;
      break;
    }
    case Op::kCopyValue: v = rows[(e.row % rows.size() + e.a + 1) % rows.size()].second; break;
    case Op::kReplace: v = e.payload; break;
  }
  return true;
}

// ---------------------------------------------------------------------------

bool Allowed(const absl::Status& s, bool tampered, bool names_a_thing = false,
             bool sums = false) {
  if (s.ok()) return true;
  if (!tampered) return false;
  return absl::IsDataLoss(s) || (names_a_thing && absl::IsNotFound(s)) ||
         (sums && absl::IsOutOfRange(s));
}

class StateHarness {
 public:
  StateHarness() : root_(NewScratchDir()), pristine_(root_ + "/pristine"), dir_(root_ + "/work") {
    Build();
  }
  StateHarness(const StateHarness&) = delete;
  StateHarness& operator=(const StateHarness&) = delete;

  const std::string& root() const { return root_; }

  void Run(std::span<const uint8_t> data) {
    const StateInput input = DecodeStateInput(data);
    Restore();
    books_differ_ = false;
    const bool tampered = Edit(input.edits);
    if (trace_) std::fprintf(stderr, "tampered: %d, books: %d\n", tampered, books_differ_);
    ReadOnly(tampered, "after the edits");
    books_differ_ = false;
    Write(input.menu, tampered);
    if (!tampered) ReadOnly(false, "after the writer");
  }

 private:
  ledger::Options LedgerOptions(bool read_only) {
    ledger::Options options;
    options.dir = dir_;
    options.read_only = read_only;
    options.map_size_bytes = kMapBytes;
    options.clock = &clock_;
    options.checkpoint_entries = uint64_t{1} << 30;  // one checkpoint: at close
    options.checkpoint_interval_ms = int64_t{1} << 40;
    options.wal_segment_bytes = 16 << 10;
    return options;
  }

  void Build() {
    std::filesystem::remove_all(root_);
    {
      auto opened = ledger::Ledger::Open(LedgerOptions(false));
      PL_CHECK(opened.ok());
      ledger::Ledger& l = **opened;
      clock_.Set(kStartNs);
      std::vector<ledger::Result> results;
      const std::vector<Transaction> workload = Workload(kStartNs);
      PL_CHECK(l.ApplyBatch(workload, ledger::Auth::Admin(), &results).ok());
      clock_.Set(kStartNs + 2 * ledger::kNanosPerDay);
      absl::StatusOr<std::vector<Transaction>> due = l.CollectDue(clock_.NowNs(), 64);
      PL_CHECK(due.ok() && due->size() == 1);  // erin's lot
      PL_CHECK(l.ApplyBatch(*due, ledger::Auth::Admin(), &results).ok());
      Transaction settle = Tx(Kind::kSettle, "settle-1");
      settle.partner = "hotelco";
      PL_CHECK(l.ApplyBatch({&settle, 1}, ledger::Auth::Admin(), &results).ok());
      PL_CHECK(results[0].code == ledger::Code::kOk);
      end_ns_ = clock_.NowNs();
    }
    std::filesystem::rename(dir_, pristine_);
    Restore();
    {
      // Closed before any Ledger opens the files: LMDB's locks are per
      // process, so a second environment on them in this process would
      // initialize the lock file again under this one's write transaction
      // (a robust mutex held across it corrupts the thread's robust list:
      // a SEGV in a later pthread_mutex_lock).
      RawState raw(dir_ + "/state");
      for (uint8_t c = 0; c < kStateTableChoices; ++c) {
        pristine_rows_[c] = raw.Read(c);
        PL_CHECK(!pristine_rows_[c].empty());  // every table has rows to edit
      }
    }
    ReadOnly(false, "as built");
  }

  void Restore() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
    std::filesystem::copy(pristine_, dir_, std::filesystem::copy_options::recursive, ec);
    PL_CHECK(!ec);
    clock_.Set(end_ns_);
  }

  // Returns whether the state differs from the pristine one anywhere Audit
  // must notice (the header comment says where that is).
  bool Edit(const std::vector<StateEdit>& edits) {
    if (edits.empty()) return false;
    RawState raw(dir_ + "/state");
    for (const StateEdit& e : edits) {
      const Rows rows = raw.Read(e.table);
      if (rows.empty()) continue;
      std::string key, value;
      bool keep_old = false;
      if (!EditRow(e, rows, &key, &value, &keep_old)) continue;
      const std::string& old_key = rows[e.row % rows.size()].first;
      if (trace_) {
        std::fprintf(stderr, "edit %d of %s row %zu: key %zu -> %zu bytes, value %zu bytes%s\n",
                     static_cast<int>(e.op), ChoiceName(e.table), e.row % rows.size(),
                     old_key.size(), key.size(), value.size(), key.empty() ? " (deleted)" : "");
      }
      if (key.empty()) {
        raw.Del(e.table, old_key);
        continue;
      }
      if (!raw.Put(e.table, key, value)) continue;
      if (key != old_key && !keep_old) raw.Del(e.table, old_key);
    }
    bool tampered = false;
    Rows now[kStateTableChoices];
    for (uint8_t c = 0; c + 1 < kStateTableChoices; ++c) {
      now[c] = raw.Read(c);
      tampered = tampered || now[c] != pristine_rows_[c];
    }
    books_differ_ = BooksDiffer(now);
    const Rows meta = raw.Read(kStateTableChoices - 1);
    tampered = tampered || CheckpointOf(meta) != CheckpointOf(pristine_rows_[kStateTableChoices - 1]);
    raw.Commit();
    return tampered;
  }

  // Whether the edits changed what TrialBalance checks (ledger.h: stored
  // balances equal the replay of the postings; a member's lots plus its
  // pending holds equal its posted balance), so that it must say so
  // (issue 4: `reconcile trial-balance` too). Only what no second edit
  // can hide from it: an account's four totals changed, its row gone or
  // unreadable; a member's lots summing to another total (or one of them
  // unreadable) while its account and the holds are as they were. Other
  // changes (an account's kind or name, a hold, the indexes) are Audit's.
  bool BooksDiffer(const Rows* now) const {
    const uint8_t accounts = 2, lots = 3, holds = 5;  // choices: Dbs numbers less 2
    std::map<std::string, std::string> stored(now[accounts].begin(), now[accounts].end());
    const bool holds_unchanged = now[holds] == pristine_rows_[holds];
    for (const auto& [key, value] : pristine_rows_[accounts]) {
      ledger::AccountRec before, after;
      PL_CHECK(ledger::DecodeAccount(value, &before));
      auto it = stored.find(key);
      if (it == stored.end() || !ledger::DecodeAccount(it->second, &after)) return true;
      if (after.debits_posted != before.debits_posted ||
          after.credits_posted != before.credits_posted ||
          after.debits_pending != before.debits_pending ||
          after.credits_pending != before.credits_pending) {
        return true;
      }
      if (before.kind != ledger::AccountKind::kMember || after.kind != before.kind ||
          !holds_unchanged) {
        continue;
      }
      std::optional<__int128> sum_before = LotSum(pristine_rows_[lots], key);
      std::optional<__int128> sum_after = LotSum(now[lots], key);
      PL_CHECK(sum_before.has_value());
      if (!sum_after || *sum_after != *sum_before) return true;
    }
    return false;
  }

  // Σ remaining of the account's lots; nullopt if one of them is malformed.
  static std::optional<__int128> LotSum(const Rows& lots, const std::string& account) {
    __int128 sum = 0;
    for (const auto& [key, value] : lots) {
      if (key.compare(0, 16, account) != 0 || key.size() < 16) continue;
      ledger::Id owner;
      ledger::LotInfo info;
      if (value.size() != 16 || !ledger::DecodeLotKey(key, &owner, &info)) return std::nullopt;
      uint64_t remaining = 0;
      for (size_t i = 0; i < 8; ++i) remaining |= uint64_t{static_cast<uint8_t>(value[i])} << (8 * i);
      sum += remaining;
    }
    return sum;
  }

  static std::optional<std::string> CheckpointOf(const Rows& meta) {
    for (const auto& [k, v] : meta) {
      if (k == "checkpoint_seq") return v;
    }
    return std::nullopt;
  }

  void ReadOnly(bool tampered, const char* when) {
    absl::StatusOr<std::unique_ptr<ledger::Ledger>> opened = ledger::Ledger::Open(LedgerOptions(true));
    Trace("read-only open", opened.status());
    PL_CHECK(Allowed(opened.status(), tampered));
    if (!opened.ok()) return;
    ledger::Ledger& l = **opened;
    absl::StatusOr<ledger::AuditReport> audit = l.Audit();
    Trace("audit", audit.status());
    PL_CHECK(Allowed(audit.status(), tampered));
    if (audit.ok()) {
      for (const ledger::Discrepancy& d : audit->discrepancies) {
        if (trace_ || !tampered) {
          std::fprintf(stderr, "audit %s: %s at %s: expected %s, found %s\n", when, d.what.c_str(),
                       d.where.c_str(), d.expected.c_str(), d.found.c_str());
        }
      }
      // The key oracle: a changed state is never clean; an unchanged one is.
      if (tampered && audit->discrepancy_count == 0) {
        std::fprintf(stderr, "audit %s: clean over a changed state\n", when);
      }
      PL_CHECK(tampered == (audit->discrepancy_count > 0));
    }
    ReadAll(l, tampered);
  }

  void Write(const std::vector<uint8_t>& menu, bool tampered) {
    {
      absl::StatusOr<std::unique_ptr<ledger::Ledger>> opened =
          ledger::Ledger::Open(LedgerOptions(false));
      Trace("read-write open", opened.status());
      PL_CHECK(Allowed(opened.status(), tampered));
      if (!opened.ok()) return;
      ledger::Ledger& l = **opened;
      std::vector<ledger::Result> results;
      for (size_t i = 0; i < menu.size(); ++i) {
        const uint8_t item = menu[i] % kMenuCount;
        std::vector<Transaction> batch;
        if (item == kMenuAdvance) {
          clock_.Set(clock_.NowNs() + 40 * ledger::kNanosPerDay);
          continue;
        }
        if (item == kMenuSweep) {
          absl::StatusOr<std::vector<Transaction>> due = l.CollectDue(clock_.NowNs(), 64);
          Trace("collect due", due.status());
          PL_CHECK(Allowed(due.status(), tampered));
          if (!due.ok() || due->empty()) continue;
          batch = *std::move(due);
        } else {
          batch.push_back(MenuTransaction(item, "menu-" + std::to_string(i)));
        }
        const absl::Status applied = l.ApplyBatch(batch, ledger::Auth::Admin(), &results);
        Trace("apply", applied);
        PL_CHECK(Allowed(applied, tampered));
        if (trace_ && applied.ok()) {
          for (const ledger::Result& r : results) {
            std::fprintf(stderr, "  item %d: %s seq %llu\n", item,
                         std::string(ledger::CodeName(r.code)).c_str(),
                         static_cast<unsigned long long>(r.seq));
          }
        }
      }
      ReadAll(l, tampered);
      if (!tampered) {
        // Over a changed state the writer's batches may carry the change on
        // or write over it: only an unchanged one has an answer to check.
        absl::StatusOr<ledger::AuditReport> audit = l.Audit();
        Trace("writer's audit", audit.status());
        PL_CHECK(audit.ok() && audit->discrepancy_count == 0);
      }
    }
  }

  // Every read the CLI and the server make, over every member.
  void ReadAll(ledger::Ledger& l, bool tampered) {
    absl::StatusOr<std::vector<ledger::Discrepancy>> books = l.TrialBalance();
    Trace("trial balance", books.status());
    PL_CHECK(Allowed(books.status(), tampered));
    PL_CHECK(tampered || books->empty());
    if (books_differ_ && books.ok() && books->empty()) {
      std::fprintf(stderr, "trial balance: clean over changed balances or lots\n");
    }
    PL_CHECK(!books_differ_ || !books.ok() || !books->empty());
    for (const char* member : {"alice", "bob", "carol", "dave", "erin", "gina"}) {
      auto balance = l.GetBalance("acme", member);
      PL_CHECK(Allowed(balance.status(), tampered));
      auto history = l.GetHistory("acme", member, 50, 0);
      PL_CHECK(Allowed(history.status(), tampered));
      auto lots = l.GetLots(ledger::MemberAccountId("acme", member));
      PL_CHECK(Allowed(lots.status(), tampered));
    }
    PL_CHECK(Allowed(l.GetProgram("acme").status(), tampered));
    for (const char* key : {"e1", "hold-bob", "ref", "menu-0"}) {
      PL_CHECK(Allowed(l.GetTransaction(ledger::TxIdFromKey("acme", key)).status(), tampered));
    }
    PL_CHECK(Allowed(l.CollectDue(clock_.NowNs() + 400 * ledger::kNanosPerDay, 64).status(), tampered));
    PL_CHECK(Allowed(
        l.SettlementStatement("acme", "hotelco", ledger::kSinceLastSettlement, clock_.NowNs()).status(),
        tampered, /*names_a_thing=*/true, /*sums=*/true));
    // As of now, past the head: the stored state's (a time in the past
    // rebuilds from the log, as Audit does, and costs as much).
    const int64_t later_ns = clock_.NowNs() + 400 * ledger::kNanosPerDay;
    PL_CHECK(Allowed(l.LiabilityReport("acme", 0, later_ns, later_ns).status(), tampered,
                     /*names_a_thing=*/true, /*sums=*/true));
    PL_CHECK(Allowed(l.ForEachAccount([](const ledger::AccountInfo&) {}), tampered));
  }

  void Trace(const char* what, const absl::Status& status) const {
    if (trace_) std::fprintf(stderr, "%s: %s\n", what, status.ToString().c_str());
  }

  const std::string root_;
  const std::string pristine_;
  const std::string dir_;
  FakeClock clock_;
  int64_t end_ns_ = 0;
  Rows pristine_rows_[kStateTableChoices];
  // What the edits did to the books (BooksDiffer): set by Edit, read by
  // the first read-only pass (the writer's batches may write over them).
  bool books_differ_ = false;
  const bool trace_ = std::getenv("PL_FUZZ_TRACE") != nullptr;
};

}  // namespace
}  // namespace pointledger::fuzz

namespace {

// One directory for the whole run. Never destroyed: libFuzzer may exit from
// any thread; at exit only the directory is removed (as wal_fuzz.cc does).
pointledger::fuzz::StateHarness* harness = nullptr;

void RemoveDir() {
  std::error_code ec;
  std::filesystem::remove_all(harness->root(), ec);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (harness == nullptr) {
    harness = new pointledger::fuzz::StateHarness();
    std::atexit(RemoveDir);
  }
  harness->Run(std::span<const uint8_t>(data, size));
  return 0;
}
