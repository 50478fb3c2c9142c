// The finance reads of issue 4: LiabilityReport, Audit (chain + rebuild
// compared with the stored state, and what it says about tampered tables),
// GetRecords paging, and settlement statements across a price change.
//
// Every expected number is worked out by hand in the comments next to it;
// none is taken from a second call to the code under test.
#include <lmdb.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <ostream>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "ledger/sha256.h"
#include "tests/common/tmpfs.h"
#include "tests/ledger/ledger_fixture.h"

namespace pointledger::ledger {

// Readable failure messages for whole-report comparisons.
void PrintTo(const Liability& l, std::ostream* os) {
  *os << "{program=" << l.program << " currency=" << l.currency
      << " point_value_micros=" << l.point_value_micros << " from=" << l.from_ns
      << " to=" << l.to_ns << " as_of=" << l.as_of_ns << " as_of_seq=" << l.as_of_seq
      << " outstanding=" << l.outstanding_points << " value=" << l.outstanding_value_micros
      << " unswept=" << l.expired_unswept_points << " exp30=" << l.expiring_30d_points
      << " exp60=" << l.expiring_60d_points << " exp90=" << l.expiring_90d_points
      << " issued=" << l.issued_points << " redeemed=" << l.redeemed_points
      << " reversed=" << l.reversed_points << " (issued " << l.reversed_issued_points
      << ", redeemed " << l.reversed_redeemed_points << ") expired=" << l.expired_points
      << " forfeited=" << l.forfeited_points << " adjusted_down=" << l.adjusted_down_points
      << " breakage=" << l.breakage_rate << " partners=[";
  for (const PartnerMovement& p : l.partners) {
    *os << p.partner << ":" << p.earned_points << "/" << p.redeemed_points << " ";
  }
  *os << "]}";
}

namespace testing {
namespace {

constexpr int64_t kMinNs = std::numeric_limits<int64_t>::min();
constexpr int64_t kMaxNs = std::numeric_limits<int64_t>::max();

std::string DescribeAudit(const AuditReport& r) {
  std::string out = "head seq " + std::to_string(r.head.seq) + ", first_bad_seq " +
                    std::to_string(r.first_bad_seq) + ", " + std::to_string(r.discrepancy_count) +
                    " discrepancies\n";
  for (const Discrepancy& d : r.discrepancies) {
    out += d.what + " at " + d.where + " (seq " + std::to_string(d.seq) + "): expected " +
           d.expected + ", found " + d.found + "\n";
  }
  return out;
}

bool HasFinding(const std::vector<Discrepancy>& found, std::string_view what,
                std::string_view where_part) {
  for (const Discrepancy& d : found) {
    if (d.what == what && d.where.find(where_part) != std::string::npos) return true;
  }
  return false;
}

// Big-endian key components as docs/storage.md lays them out (written here
// by hand, not with ledger/codec.h, so the test also pins the format).
void PutBe(std::string* out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
std::string SeqKey(uint64_t seq) {
  std::string key;
  PutBe(&key, seq, 8);
  return key;
}
std::string IdKey(const Id& id) {
  return std::string(reinterpret_cast<const char*>(id.data()), 16);
}
std::string LotKeyOf(const Id& account, const LotInfo& lot) {
  std::string key = IdKey(account);
  PutBe(&key, static_cast<uint64_t>(lot.expires_at_ns) ^ (uint64_t{1} << 63), 8);
  PutBe(&key, lot.source_seq, 8);
  PutBe(&key, lot.index, 4);
  return key;
}
// What a liability report's movements add to the outstanding points.
int64_t Movement(const Liability& l) {
  auto i = [](uint64_t v) { return static_cast<int64_t>(v); };
  return i(l.issued_points) - i(l.redeemed_points) - i(l.reversed_issued_points) +
         i(l.reversed_redeemed_points) - i(l.expired_points) - i(l.forfeited_points) -
         i(l.adjusted_down_points);
}

uint64_t LeU64(const std::string& bytes, size_t offset) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i)
    v = (v << 8) | static_cast<uint8_t>(bytes[offset + static_cast<size_t>(i)]);
  return v;
}
void SetLeU64(std::string* bytes, size_t offset, uint64_t v) {
  for (size_t i = 0; i < 8; ++i) (*bytes)[offset + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

// One table of one of the data directory's LMDB environments, opened for
// writing with the C API (the ledger must be closed). Aborts the write
// unless Commit() ran.
struct RawTable {
  MDB_env* env = nullptr;
  MDB_txn* txn = nullptr;
  MDB_dbi dbi = 0;
  RawTable() = default;
  RawTable(const RawTable&) = delete;
  RawTable& operator=(const RawTable&) = delete;
  ~RawTable() {
    if (txn != nullptr) mdb_txn_abort(txn);
    if (env != nullptr) mdb_env_close(env);
  }
  void Commit() {
    ASSERT_EQ(mdb_txn_commit(txn), 0);
    txn = nullptr;
  }
};

void OpenRawTable(const std::string& env_dir, const char* table, RawTable* raw) {
  ASSERT_EQ(mdb_env_create(&raw->env), 0);
  ASSERT_EQ(mdb_env_set_maxdbs(raw->env, 32), 0);
  ASSERT_EQ(mdb_env_set_mapsize(raw->env, size_t{64} << 20), 0);
  ASSERT_EQ(mdb_env_open(raw->env, env_dir.c_str(), 0, 0644), 0) << env_dir;
  ASSERT_EQ(mdb_txn_begin(raw->env, nullptr, 0, &raw->txn), 0);
  ASSERT_EQ(mdb_dbi_open(raw->txn, table, 0, &raw->dbi), 0) << table;
}

// Reads table[key], lets `edit` change the value and writes it back. With
// `insert`, the key must be absent and `edit` starts from an empty value.
void TamperLmdb(const std::string& env_dir, const char* table, const std::string& key,
                const std::function<void(std::string*)>& edit, bool insert = false) {
  RawTable raw;
  ASSERT_NO_FATAL_FAILURE(OpenRawTable(env_dir, table, &raw));
  MDB_val k{key.size(), const_cast<char*>(key.data())};
  MDB_val v{0, nullptr};
  const int rc = mdb_get(raw.txn, raw.dbi, &k, &v);
  ASSERT_EQ(rc, insert ? MDB_NOTFOUND : 0) << table << (insert ? ": key exists" : ": key not found");
  std::string value = insert ? "" : std::string(static_cast<const char*>(v.mv_data), v.mv_size);
  const std::string before = value;
  edit(&value);
  ASSERT_NE(value, before) << "the edit changed nothing";
  MDB_val nv{value.size(), value.data()};
  ASSERT_EQ(mdb_put(raw.txn, raw.dbi, &k, &nv, 0), 0);
  raw.Commit();
}

// The first key of `table` (the ledger must be closed); empty if none.
std::string FirstLmdbKey(const std::string& env_dir, const char* table) {
  MDB_env* env = nullptr;
  std::string key;
  if (mdb_env_create(&env) != 0) return key;
  mdb_env_set_maxdbs(env, 32);
  MDB_txn* txn = nullptr;
  MDB_dbi dbi = 0;
  MDB_cursor* cursor = nullptr;
  MDB_val k{0, nullptr}, v{0, nullptr};
  if (mdb_env_open(env, env_dir.c_str(), MDB_RDONLY, 0644) == 0 &&
      mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn) == 0 && mdb_dbi_open(txn, table, 0, &dbi) == 0 &&
      mdb_cursor_open(txn, dbi, &cursor) == 0 && mdb_cursor_get(cursor, &k, &v, MDB_FIRST) == 0) {
    key.assign(static_cast<const char*>(k.mv_data), k.mv_size);
  }
  if (cursor != nullptr) mdb_cursor_close(cursor);
  if (txn != nullptr) mdb_txn_abort(txn);
  mdb_env_close(env);
  return key;
}

// Adds table[key] with an empty value (the ledger must be closed).
void PutEmptyLmdb(const std::string& env_dir, const char* table, const std::string& key) {
  RawTable raw;
  ASSERT_NO_FATAL_FAILURE(OpenRawTable(env_dir, table, &raw));
  MDB_val k{key.size(), const_cast<char*>(key.data())};
  MDB_val v{0, nullptr};
  ASSERT_EQ(mdb_put(raw.txn, raw.dbi, &k, &v, 0), 0) << table;
  raw.Commit();
}

// Deletes table[key] (the ledger must be closed).
void DeleteLmdb(const std::string& env_dir, const char* table, const std::string& key) {
  RawTable raw;
  ASSERT_NO_FATAL_FAILURE(OpenRawTable(env_dir, table, &raw));
  MDB_val k{key.size(), const_cast<char*>(key.data())};
  ASSERT_EQ(mdb_del(raw.txn, raw.dbi, &k, nullptr), 0) << table;
  raw.Commit();
}

// Adds an effects entry at `seq` (one lot of 5 points, expiring far ahead)
// where no transaction wrote one.
void InsertEffects(const std::string& dir, uint64_t seq) {
  TamperLmdb(
      dir + "/log", "effects", SeqKey(seq),
      [](std::string* v) {
        *v = std::string("\x01\0\0\0", 4) + std::string(8, '\x7f') + std::string("\x05", 1) +
             std::string(7, '\0');
      },
      /*insert=*/true);
}

// The audit's one finding is the effects entry at `seq` that no
// transaction wrote.
void ExpectOnlyStrayEffectsAt(const AuditReport& r, uint64_t seq) {
  EXPECT_EQ(r.first_bad_seq, seq) << DescribeAudit(r);
  ASSERT_EQ(r.discrepancy_count, 1u) << DescribeAudit(r);
  EXPECT_EQ(r.discrepancies[0].what, "replay");
  EXPECT_NE(r.discrepancies[0].found.find("the replay of that seq writes none"), std::string::npos)
      << DescribeAudit(r);
}

class FinanceTest : public LedgerTest {
 protected:
  void OpenWith(const std::function<void(Options*)>& tweak) {
    Options options;
    options.dir = dir_;
    options.map_size_bytes = MapSizeBytes();
    options.clock = &clock_;
    tweak(&options);
    absl::StatusOr<std::unique_ptr<Ledger>> opened = Ledger::Open(options);
    ASSERT_TRUE(opened.ok()) << opened.status();
    ledger_ = *std::move(opened);
  }
  void OpenReadOnly() {
    ledger_.reset();
    OpenWith([](Options* o) { o->read_only = true; });
  }
  // What is applied from here stays in the log past the checkpoint, as
  // after a crash.
  void OpenWithoutCheckpoints() {
    OpenWith([](Options* o) {
      o->checkpoint_on_close = false;
      o->checkpoint_interval_ms = 3'600'000;
    });
  }

  Liability MustLiability(std::string_view program, int64_t from_ns, int64_t to_ns,
                          int64_t as_of_ns) {
    absl::StatusOr<Liability> l = ledger_->LiabilityReport(program, from_ns, to_ns, as_of_ns);
    EXPECT_TRUE(l.ok()) << l.status();
    return l.ok() ? *l : Liability{};
  }

  AuditReport MustAudit() {
    absl::StatusOr<AuditReport> r = ledger_->Audit();
    EXPECT_TRUE(r.ok()) << r.status();
    if (r.ok()) return *r;
    AuditReport failed;
    failed.first_bad_seq = ~uint64_t{0};
    failed.discrepancy_count = 1;
    return failed;
  }

  RecordsPage MustRecords(uint64_t from_seq, uint32_t limit, std::string_view program) {
    absl::StatusOr<RecordsPage> page = ledger_->GetRecords(from_seq, limit, program);
    EXPECT_TRUE(page.ok()) << page.status();
    if (page.ok()) return *page;
    RecordsPage failed;
    failed.next_seq = ~uint64_t{0};  // ends a paging loop
    return failed;
  }

  Statement MustStatement(int64_t from_ns, int64_t to_ns) {
    absl::StatusOr<Statement> s = ledger_->SettlementStatement("acme", "hotelco", from_ns, to_ns);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *s : Statement{};
  }

  // Applies every due expire / hold_timeout at the clock's time.
  void Sweep() {
    const std::vector<Transaction> due = MustCollectDue(clock_.NowNs());
    if (!due.empty()) Apply(due);
  }
};

// ===========================================================================
// 1. Liability.

// The known-answer fixture. acme: point_value_micros 2,500, 365-day expiry.
// Partners hotelco (moves) and airco (never moves).
class LiabilityTest : public FinanceTest {
 protected:
  static constexpr int64_t D = kDayNs;
  static constexpr int64_t T0 = kStartNs;

  void BuildFixture() {
    BuildDays0And2();
    if (HasFatalFailure()) return;
    BuildSweepAndClose();
  }

  // Day 0 and day 2 (seq 1..26), leaving the clock at day 3.
  void BuildDays0And2() {
    Transaction create = ProgramCreate("acme", /*expiry_days=*/365);
    create.point_value_micros = 2500;
    Transaction bob_at_hotel = Earn("acme", "bob", 400, "e-bob");
    bob_at_hotel.partner = "hotelco";

    // Day 0, seq 1..12 (every transaction recorded, so seq = position).
    clock_.Set(T0);
    MustApply({create,                                                           // 1
               PartnerCreate("acme", "hotelco", 9000, 7000),                     // 2
               PartnerCreate("acme", "airco", 8000, 6000),                       // 3
               Earn("acme", "alice", 1000, "e-alice"),                           // 4  exp T0+365D
               bob_at_hotel,                                                     // 5  exp T0+365D
               EarnExpiring("acme", "carol", 300, T0 + 5 * D, "e-carol"),        // 6
               EarnExpiring("acme", "dave", 250, T0 + 25 * D, "e-dave"),         // 7
               EarnExpiring("acme", "erin", 70, T0 + 10 * D, "e-erin-10"),       // 8
               EarnExpiring("acme", "erin", 80, T0 + 40 * D, "e-erin-40"),       // 9
               EarnExpiring("acme", "erin", 90, T0 + 55 * D, "e-erin-55"),       // 10
               EarnExpiring("acme", "erin", 110, T0 + 95 * D, "e-erin-95"),      // 11
               EarnExpiring("acme", "erin", 120, T0 + 200 * D, "e-erin-200")});  // 12

    // Day 2, seq 13..26.
    clock_.Set(T0 + 2 * D);
    Transaction bob_redeem1 = Redeem("acme", "bob", 100, "r-bob-1");
    bob_redeem1.partner = "hotelco";
    Transaction bob_redeem2 = Redeem("acme", "bob", 50, "r-bob-2");
    bob_redeem2.partner = "hotelco";
    const std::vector<Result> day2 =
        Apply({Redeem("acme", "alice", 150, "r-alice"),                       // 13
               bob_redeem1,                                                   // 14
               bob_redeem2,                                                   // 15
               Reverse("acme", "r-bob-2", 0, "undo-r-bob-2"),                 // 16 gives 50 back
               Reverse("acme", "e-dave", 100, "undo-e-dave"),                 // 17 takes 100 back
               Referral("acme", "gina", "hank", 60, 40, "ref-hank"),          // 18
               Adjust("acme", "alice", 30, "adj-up"),                         // 19
               Adjust("acme", "alice", -20, "adj-down"),                      // 20
               Hold("acme", "alice", 100, 600, "h-alice"),                    // 21
               Capture("acme", "h-alice", 60, "cap-alice"),                   // 22
               Transfer("acme", "alice", "frank", 50, "t-frank"),             // 23
               Earn("acme", "frank", 25, "e-frank"),                          // 24
               Hold("acme", "frank", 10, kHoldTimeoutSecondsMax, "h-frank"),  // 25 stays pending
               Redeem("acme", "carol", 100000, "too-much")});  // 26 rejected, recorded
    for (size_t i = 0; i + 1 < day2.size(); ++i) {
      EXPECT_EQ(day2[i].code, Code::kOk) << i;
    }
    EXPECT_EQ(day2.back().code, Code::kInsufficientPoints);
    EXPECT_EQ(day2.back().seq, 26u);
    EXPECT_EQ(day2[3].points, 50u);
    EXPECT_EQ(day2[4].points, 100u);
    EXPECT_EQ(day2[9].points, 60u);
    clock_.Set(T0 + 3 * D);
  }

  // The sweep (seq 27) and the close (seq 28), leaving the clock at day 10.
  void BuildSweepAndClose() {
    // Day 5.5, seq 27: the sweep finds carol's lot (T0+5D) and nothing else
    // (erin's first lot expires at T0+10D; frank's hold is due at day 32).
    clock_.Set(T0 + 5 * D + D / 2);
    const std::vector<Transaction> due = MustCollectDue(clock_.NowNs());
    ASSERT_EQ(due.size(), 1u);
    EXPECT_EQ(due[0].member, "carol");
    const Result expired = Apply1(due[0]);
    EXPECT_EQ(expired.code, Code::kOk);
    EXPECT_EQ(expired.points, 300u);

    // Day 7, seq 28: frank is closed; his pending hold is voided and all his
    // posted points (50 transferred + 25 earned = 75) are forfeited.
    clock_.Set(T0 + 7 * D);
    const Result closed = Apply1(AccountClose("acme", "frank", "close-frank"));
    EXPECT_EQ(closed.code, Code::kOk);
    EXPECT_EQ(closed.points, 75u);
    EXPECT_EQ(closed.seq, 28u);

    clock_.Set(T0 + 10 * D);
  }
};

TEST_F(LiabilityTest, KnownAnswerNow) {
  BuildFixture();
  if (HasFatalFailure()) return;
  const int64_t now = T0 + 10 * D;
  const Liability l = MustLiability("acme", T0, now, now);
  EXPECT_EQ(l.program, "acme");
  EXPECT_EQ(l.currency, "USD");
  EXPECT_EQ(l.point_value_micros, 2500u);
  EXPECT_EQ(l.from_ns, T0);
  EXPECT_EQ(l.to_ns, now);
  EXPECT_EQ(l.as_of_ns, now);
  EXPECT_EQ(l.as_of_seq, 28u);

  // Members' posted points now:
  //   alice 1000 - 150 (redeem) + 30 (adj) - 20 (adj) - 60 (capture) - 50 (transfer) = 750
  //   bob   400 - 100 - 50 + 50 (reversed redeem)                                    = 300
  //   carol 300 - 300 (expired)                                                      =   0
  //   dave  250 - 100 (reversed earn)                                                = 150
  //   erin  70 + 80 + 90 + 110 + 120                                                 = 470
  //   gina 60, hank 40, frank 0 (closed)
  // 750 + 300 + 0 + 150 + 470 + 60 + 40 = 1770.
  EXPECT_EQ(l.outstanding_points, 1770u);
  EXPECT_EQ(l.outstanding_value_micros, 1770 * 2500);  // 4,425,000
  // as_of = T0+10D: erin's 70 expire exactly then (expiry <= as_of) and are
  // not swept.
  EXPECT_EQ(l.expired_unswept_points, 70u);
  // (T0+10D, T0+40D]: dave's 150 (T0+25D), erin's 80 (T0+40D, the bound).
  EXPECT_EQ(l.expiring_30d_points, 150u + 80u);
  // ... T0+70D: + erin's 90 (T0+55D).
  EXPECT_EQ(l.expiring_60d_points, 230u + 90u);
  // ... T0+100D: + erin's 110 (T0+95D). Her 120 (T0+200D) and everything on
  // the 365-day default is further out.
  EXPECT_EQ(l.expiring_90d_points, 320u + 110u);

  // Movements in [T0, T0+10D): all of them.
  // issued: day 0 1000+400+300+250+70+80+90+110+120 = 2420;
  //         day 2 referral 60+40, adjust up 30, frank 25 = 155;  2575.
  EXPECT_EQ(l.issued_points, 2575u);
  // redeemed: alice 150, bob 100 + 50 at hotelco, capture 60 = 360 (gross:
  // the reversed 50 are in reversed_redeemed).
  EXPECT_EQ(l.redeemed_points, 360u);
  EXPECT_EQ(l.reversed_points, 150u);          // 50 + 100
  EXPECT_EQ(l.reversed_issued_points, 100u);   // dave's earn
  EXPECT_EQ(l.reversed_redeemed_points, 50u);  // bob's redeem
  EXPECT_EQ(l.expired_points, 300u);
  EXPECT_EQ(l.forfeited_points, 75u);
  EXPECT_EQ(l.adjusted_down_points, 20u);
  EXPECT_EQ(l.adjusted_up_points, 30u);  // day 2's adjust up, of the issued
  // expired / (expired + redeemed) = 300 / 660.
  EXPECT_DOUBLE_EQ(l.breakage_rate, 300.0 / 660.0);
  // By name; airco never moved but is listed. hotelco: bob's earn 400;
  // redeems 100 + 50 (gross, as "redeems at the partner" says).
  ASSERT_EQ(l.partners.size(), 2u);
  EXPECT_EQ(l.partners[0], (PartnerMovement{"airco", 0, 0}));
  EXPECT_EQ(l.partners[1], (PartnerMovement{"hotelco", 400, 150}));

  // The identity over the whole history, from the report's own figures
  // (opening balance 0): 2575 - 360 - 100 + 50 - 300 - 75 - 20 = 1770.
  EXPECT_EQ(Movement(l), 1770);
  EXPECT_EQ(Movement(l), static_cast<int64_t>(l.outstanding_points));

  // "From the beginning of time" is the same period as [T0, now).
  Liability all_time = MustLiability("acme", kMinNs, kMaxNs, now);
  all_time.from_ns = T0;
  all_time.to_ns = now;
  EXPECT_EQ(all_time, l);

  // The CLI's --data DIR path: read-only, same answers, now and in the past.
  const Liability past = MustLiability("acme", T0 + D, T0 + 3 * D, T0 + 3 * D);
  OpenReadOnly();
  EXPECT_EQ(MustLiability("acme", T0, now, now), l);
  EXPECT_EQ(MustLiability("acme", T0 + D, T0 + 3 * D, T0 + 3 * D), past);
}

TEST_F(LiabilityTest, APeriodCountsOnlyItsOwnMovements) {
  BuildFixture();
  if (HasFatalFailure()) return;
  const int64_t now = T0 + 10 * D;
  // [T0+1D, T0+6D): day 2 and the sweep; not day 0's earns, not the close.
  const Liability mid = MustLiability("acme", T0 + D, T0 + 6 * D, now);
  EXPECT_EQ(mid.outstanding_points, 1770u);  // as_of is still now
  EXPECT_EQ(mid.issued_points, 155u);        // 60 + 40 + 30 + 25
  EXPECT_EQ(mid.redeemed_points, 360u);
  EXPECT_EQ(mid.reversed_points, 150u);
  EXPECT_EQ(mid.reversed_issued_points, 100u);
  EXPECT_EQ(mid.reversed_redeemed_points, 50u);
  EXPECT_EQ(mid.expired_points, 300u);
  EXPECT_EQ(mid.forfeited_points, 0u);
  EXPECT_EQ(mid.adjusted_down_points, 20u);
  EXPECT_EQ(mid.adjusted_up_points, 30u);
  ASSERT_EQ(mid.partners.size(), 2u);
  EXPECT_EQ(mid.partners[0], (PartnerMovement{"airco", 0, 0}));
  EXPECT_EQ(mid.partners[1], (PartnerMovement{"hotelco", 0, 150}));  // bob's earn was day 0

  // [T0+6D, T0+8D): only the close.
  const Liability late = MustLiability("acme", T0 + 6 * D, T0 + 8 * D, now);
  EXPECT_EQ(late.forfeited_points, 75u);
  EXPECT_EQ(late.issued_points + late.redeemed_points + late.reversed_points + late.expired_points +
                late.adjusted_down_points,
            0u);
  EXPECT_EQ(late.breakage_rate, 0.0);  // 0 / 0 is reported as 0

  // The bounds: from is inclusive, to exclusive. Seq 28 (the close) is at
  // exactly T0+7D.
  EXPECT_EQ(MustLiability("acme", T0 + 7 * D, T0 + 7 * D + 1, now).forfeited_points, 75u);
  EXPECT_EQ(MustLiability("acme", T0 + 6 * D, T0 + 7 * D, now).forfeited_points, 0u);
  // Seq 1..12 are at T0 .. T0+11: [T0+4, T0+6) holds seq 5 (bob, 400 at
  // hotelco) and seq 6 (carol, 300).
  const Liability two = MustLiability("acme", T0 + 4, T0 + 6, now);
  EXPECT_EQ(two.issued_points, 700u);
  EXPECT_EQ(two.partners[1], (PartnerMovement{"hotelco", 400, 0}));
  // An empty or backwards period moves nothing.
  EXPECT_EQ(MustLiability("acme", now, T0, now).issued_points, 0u);
}

TEST_F(LiabilityTest, AsOfInThePastIsTheBalanceThenAndWhatAReportThenSaid) {
  BuildDays0And2();
  if (HasFatalFailure()) return;
  // Day 3: the report as it is taken then (as_of is the present: no rebuild).
  const int64_t then = T0 + 3 * D;
  ASSERT_EQ(clock_.NowNs(), then);
  const Liability taken_then = MustLiability("acme", T0 + D, then, then);
  EXPECT_EQ(taken_then.as_of_seq, 26u);

  BuildSweepAndClose();
  if (HasFatalFailure()) return;
  // Day 10: the same report, now rebuilt from the log up to seq 26.
  const Liability past = MustLiability("acme", T0 + D, then, then);
  EXPECT_EQ(past, taken_then);
  EXPECT_EQ(past.as_of_ns, then);
  EXPECT_EQ(past.as_of_seq, 26u);  // the last of day 2
  // At T0+3D the sweep and the close have not happened:
  //   alice 750, bob 300, carol 300, dave 150, erin 470, gina 60, hank 40,
  //   frank 50 + 25 = 75  ->  2145.
  // Check: 2420 (day 0) + 155 - 360 - 100 + 50 - 20 (day 2) = 2145.
  EXPECT_EQ(past.outstanding_points, 2145u);
  EXPECT_EQ(past.outstanding_value_micros, 2145 * 2500);
  EXPECT_EQ(past.expired_unswept_points, 0u);
  // (T0+3D, T0+33D]: carol 300 (T0+5D), erin 70 (T0+10D), dave 150 (T0+25D).
  EXPECT_EQ(past.expiring_30d_points, 520u);
  // ... T0+63D: + erin 80 (T0+40D) + 90 (T0+55D).
  EXPECT_EQ(past.expiring_60d_points, 690u);
  // ... T0+93D: erin's 110 expire at T0+95D, just outside.
  EXPECT_EQ(past.expiring_90d_points, 690u);
  // Movements in [T0+1D, T0+3D): day 2.
  EXPECT_EQ(past.issued_points, 155u);
  EXPECT_EQ(past.redeemed_points, 360u);
  EXPECT_EQ(past.expired_points, 0u);
  EXPECT_EQ(past.forfeited_points, 0u);

  // At T0+6D (after the sweep, before the close): carol's lot is gone, and
  // erin's 70 (T0+10D) have not expired yet.
  const Liability after_sweep = MustLiability("acme", T0, T0 + 6 * D, T0 + 6 * D);
  EXPECT_EQ(after_sweep.as_of_seq, 27u);
  EXPECT_EQ(after_sweep.outstanding_points, 2145u - 300u);
  EXPECT_EQ(after_sweep.expired_unswept_points, 0u);
  // At T0+9D (after the close): frank's 75 are gone too.
  EXPECT_EQ(MustLiability("acme", T0, T0, T0 + 9 * D).outstanding_points, 2145u - 300u - 75u);
  // Before the program existed (the opening balance of a period that
  // starts before it): nothing outstanding, and still the program's report.
  const Liability before = MustLiability("acme", T0, T0 + 3 * D, T0 - 1);
  EXPECT_EQ(before.as_of_seq, 0u);
  EXPECT_EQ(before.currency, "USD");
  EXPECT_EQ(before.point_value_micros, 2500u);
  EXPECT_EQ(before.outstanding_points, 0u);
  EXPECT_EQ(before.outstanding_value_micros, 0);
  EXPECT_EQ(before.expiring_90d_points, 0u);
  EXPECT_EQ(before.issued_points, 2575u);  // day 0 + day 2
  ASSERT_EQ(before.partners.size(), 2u);
  EXPECT_EQ(before.partners[1], (PartnerMovement{"hotelco", 400, 150}));
  // In the future: the current balances, erin's 70 already past expiry.
  const Liability future = MustLiability("acme", T0, T0, T0 + 11 * D);
  EXPECT_EQ(future.outstanding_points, 1770u);
  EXPECT_EQ(future.expired_unswept_points, 70u);
}

// Points that never expire carry expires_at INT64_MAX as a marker, not a
// date: they are never "expiring", however close as_of comes to the end of
// time (found in review, session 20: an as_of within 90 days of 2262-04-11
// counted them all).
TEST_F(LiabilityTest, PointsThatNeverExpireAreNeverExpiring) {
  constexpr int64_t kEnd = std::numeric_limits<int64_t>::max();
  clock_.Set(T0);
  MustApply({ProgramCreate("never", /*expiry_days=*/0), Earn("never", "alice", 100, "e-forever"),
             EarnExpiring("never", "alice", 7, kEnd - 6 * D, "e-late")});
  const int64_t as_of = kEnd - 10 * D;
  const Liability l = MustLiability("never", T0, T0 + D, as_of);
  EXPECT_EQ(l.outstanding_points, 107u);
  EXPECT_EQ(l.expiring_30d_points, 7u);
  EXPECT_EQ(l.expiring_60d_points, 7u);
  EXPECT_EQ(l.expiring_90d_points, 7u);
  EXPECT_EQ(l.expired_unswept_points, 0u);
  // 40 days before the end: the 7 are 34 days out.
  const Liability earlier = MustLiability("never", T0, T0 + D, kEnd - 40 * D);
  EXPECT_EQ(earlier.expiring_30d_points, 0u);
  EXPECT_EQ(earlier.expiring_60d_points, 7u);
  EXPECT_EQ(earlier.expiring_90d_points, 7u);
  // At the very end of time the 7 have expired (not swept); the 100 never do.
  EXPECT_EQ(MustLiability("never", T0, T0 + D, kEnd).expired_unswept_points, 7u);
}

// The movements are what happened, not what was asked: an adjustment down
// of a single point counts, and a capture without `points` (the whole
// hold) counts what it captured (found by mutation testing, session 21:
// `delta < -1` and the capture's asked points both passed).
TEST_F(LiabilityTest, MovementsCountASinglePointDownAndAWholeCapture) {
  clock_.Set(T0);
  MustApply({ProgramCreate("acme"), Earn("acme", "alice", 100, "e1"), Adjust("acme", "alice", -1, "down-1"),
             Hold("acme", "alice", 30, 600, "h1"), Capture("acme", "h1", 0, "cap-all")});
  const Liability l = MustLiability("acme", T0, T0 + D, T0 + D);  // timestamps T0 … T0 + 4
  EXPECT_EQ(l.issued_points, 100u);
  EXPECT_EQ(l.adjusted_down_points, 1u);
  EXPECT_EQ(l.redeemed_points, 30u);
  EXPECT_EQ(l.outstanding_points, 69u);
  EXPECT_EQ(static_cast<int64_t>(l.outstanding_points), Movement(l));
}

// The outstanding value is refused from exactly 2^63 micros, and stated
// one point below it (found by mutation testing, session 21: refusing only
// past 2^63 passed).
TEST_F(LiabilityTest, AnOutstandingValueOf2To63IsRefused) {
  clock_.Set(T0);
  Transaction program = ProgramCreate("big");
  program.point_value_micros = kPriceMicrosMax;  // 2^31
  MustApply({program, Earn("big", "alice", (uint64_t{1} << 32) - 1, "e1")});
  const Liability below = MustLiability("big", T0, T0 + D, T0 + D);
  EXPECT_EQ(below.outstanding_value_micros, static_cast<int64_t>(((uint64_t{1} << 32) - 1) << 31));
  MustApply({Earn("big", "bob", 1, "e2")});  // 2^32 points: 2^63 micros
  absl::StatusOr<Liability> at = ledger_->LiabilityReport("big", T0, T0 + D, T0 + D);
  EXPECT_EQ(at.status().code(), absl::StatusCode::kOutOfRange) << at.status();
}

TEST_F(LiabilityTest, UnknownProgramIsNotFound) {
  BuildFixture();
  if (HasFatalFailure()) return;
  absl::StatusOr<Liability> l = ledger_->LiabilityReport("nosuch", T0, T0 + D, T0 + D);
  EXPECT_TRUE(absl::IsNotFound(l.status())) << l.status();
}

// A reversal moves points between a member and a system account; which way
// decides reversed_issued vs reversed_redeemed, and must not depend on the
// as_of chosen for the balances: a partner created after as_of is still a
// partner for the period's movements.
TEST_F(LiabilityTest, ReversalsAtAPartnerAreClassifiedWhateverTheAsOf) {
  clock_.Set(T0);
  MustApply({ProgramCreate("acme", 365), Earn("acme", "alice", 100, "e-alice")});
  // The period opens at T0+1D; the partner arrives in it.
  clock_.Set(T0 + 2 * D);
  Transaction at_hotel = Earn("acme", "bob", 80, "e-bob");
  at_hotel.partner = "hotelco";
  Transaction redeem_at_hotel = Redeem("acme", "alice", 30, "r-alice");
  redeem_at_hotel.partner = "hotelco";
  MustApply({PartnerCreate("acme", "hotelco", 9000, 7000), at_hotel, redeem_at_hotel,
             Reverse("acme", "e-bob", 20, "undo-e-bob"),
             Reverse("acme", "r-alice", 10, "undo-r-alice")});
  clock_.Set(T0 + 3 * D);
  const int64_t from = T0 + D, to = T0 + 3 * D;
  // Opening balance (as_of = from - 1): alice 100.
  const Liability open = MustLiability("acme", from, to, from - 1);
  // Closing balance (as_of = to - 1): alice 100 - 30 + 10 = 80, bob 80 - 20 = 60.
  const Liability close = MustLiability("acme", from, to, to - 1);
  EXPECT_EQ(open.outstanding_points, 100u);
  EXPECT_EQ(close.outstanding_points, 140u);
  for (const Liability* l : {&open, &close}) {
    SCOPED_TRACE(l == &open ? "as_of = from - 1" : "as_of = to - 1");
    EXPECT_EQ(l->issued_points, 80u);
    EXPECT_EQ(l->redeemed_points, 30u);
    EXPECT_EQ(l->reversed_points, 30u);
    EXPECT_EQ(l->reversed_issued_points, 20u);
    EXPECT_EQ(l->reversed_redeemed_points, 10u);
    ASSERT_EQ(l->partners.size(), 1u);
    EXPECT_EQ(l->partners[0], (PartnerMovement{"hotelco", 80, 30}));
  }
  // The period's movements carry the opening balance to the closing one:
  // 140 - 100 = 80 - 30 - 20 + 10.
  EXPECT_EQ(Movement(close), static_cast<int64_t>(close.outstanding_points) -
                                 static_cast<int64_t>(open.outstanding_points));
}

// outstanding(to) - outstanding(from) = issued - redeemed - reversed_issued
// + reversed_redeemed - expired - forfeited - adjusted_down, on a seeded
// random workload with every kind, a second program as noise, sweeps, and a
// partner that appears half way through.
TEST_F(LiabilityTest, MovementsExplainTheChangeInOutstanding) {
  std::mt19937_64 rng(20261124);
  auto below = [&](uint64_t n) { return rng() % n; };
  clock_.Set(T0);
  MustApply({ProgramCreate("acme", 30), ProgramCreate("beta", 30),
             PartnerCreate("acme", "hotelco", 9000, 7000)});
  std::vector<std::string> members = {"m0", "m1", "m2", "m3", "m4", "m5", "m6", "m7"};
  std::vector<std::string> reversible;  // keys of earlier transactions
  std::vector<std::string> holds;
  std::vector<std::string> partners = {"hotelco"};
  std::vector<int64_t> stamps;
  int referee = 0;
  const int kSteps = 700;
  // Five steps a batch (fewer fsyncs); the clock moves between batches.
  std::vector<Transaction> batch;
  auto flush = [&] {
    if (batch.empty()) return;
    for (const Result& r : Apply(batch)) {
      if (r.seq != 0) stamps.push_back(r.timestamp_ns);
    }
    batch.clear();
  };
  for (int step = 0; step < kSteps; ++step) {
    clock_.Advance(static_cast<int64_t>(below(6 * 3600)) * kNanosPerSecond);
    if (step == kSteps / 2) {
      flush();
      MustApply({PartnerCreate("acme", "spa", 5000, 4000)});
      partners.push_back("spa");
    }
    const std::string key = "k" + std::to_string(step);
    const std::string& m = members[below(members.size())];
    const std::string& m2 = members[below(members.size())];
    const uint64_t n = 1 + below(300);
    Transaction t;
    switch (below(14)) {
      case 0:
      case 1:
      case 2:
        t = below(3) == 0
                ? EarnExpiring("acme", m, n,
                               clock_.NowNs() + 1 + static_cast<int64_t>(below(10 * kDayNs)), key)
                : Earn("acme", m, n, key);
        if (below(3) == 0) t.partner = partners[below(partners.size())];
        reversible.push_back(key);
        break;
      case 3:
      case 4:
        t = Redeem("acme", m, n / 2 + 1, key);
        if (below(3) == 0) t.partner = partners[below(partners.size())];
        reversible.push_back(key);
        break;
      case 5:
        t = Referral("acme", m, "ref" + std::to_string(referee++), n, n / 3 + 1, key);
        members.push_back("ref" + std::to_string(referee - 1));
        reversible.push_back(key);
        break;
      case 6:
        t = Transfer("acme", m, m2, n / 4 + 1, key);
        reversible.push_back(key);
        break;
      case 7:
        t = Adjust("acme", m,
                   below(2) == 0 ? static_cast<int64_t>(n) : -static_cast<int64_t>(n / 5 + 1), key);
        reversible.push_back(key);
        break;
      case 8:
        t = Hold("acme", m, n / 4 + 1, static_cast<uint32_t>(1 + below(3 * 24 * 3600)), key);
        holds.push_back(key);
        break;
      case 9:
        if (holds.empty()) continue;
        if (below(3) == 0) {
          t = Release("acme", holds[below(holds.size())], key);
        } else {
          t = Capture("acme", holds[below(holds.size())], below(2) == 0 ? 0 : 1 + below(20), key);
          reversible.push_back(key);
        }
        break;
      case 10:
      case 11:
        if (reversible.empty()) continue;
        t = Reverse("acme", reversible[below(reversible.size())], below(2) == 0 ? 0 : 1 + below(50),
                    key);
        t.clawback_partial = below(2) == 0;
        break;
      case 12:
        if (below(8) != 0) continue;
        t = AccountClose("acme", m, key);
        break;
      default:
        t = Earn("beta", m, n, key);  // another program's noise
        break;
    }
    batch.push_back(t);
    if (batch.size() == 5) flush();
    if (step % 25 == 0) {
      flush();
      Sweep();
    }
  }
  flush();
  Sweep();
  clock_.Advance(kDayNs);
  const int64_t now = clock_.NowNs();
  ASSERT_GT(stamps.size(), 100u);

  // The current outstanding also equals Σ posted of every member.
  uint64_t posted = 0;
  for (const std::string& m : members) {
    if (std::optional<Balance> b = FindBalance("acme", m)) posted += b->posted;
  }
  const Liability current = MustLiability("acme", T0, now, now);
  EXPECT_EQ(current.outstanding_points, posted);

  // Periods: between random moments, and from/to exactly at records.
  std::vector<std::pair<int64_t, int64_t>> periods = {{T0, now}, {kMinNs, now}};
  for (int i = 0; i < 10; ++i) {
    int64_t a = stamps[below(stamps.size())];
    int64_t b = stamps[below(stamps.size())];
    if (i % 2 == 0) {
      a += static_cast<int64_t>(below(3600)) * kNanosPerSecond;
      b -= static_cast<int64_t>(below(3600)) * kNanosPerSecond;
    }
    periods.emplace_back(std::min(a, b), std::max(a, b) + 1);
  }
  for (const auto& [from, to] : periods) {
    SCOPED_TRACE("period [" + std::to_string(from) + ", " + std::to_string(to) + ")");
    // Balances just before from and just before to: the same cut as the period.
    const int64_t open_at = from == kMinNs ? kMinNs : from - 1;
    const Liability open = MustLiability("acme", from, to, open_at);
    const Liability close = MustLiability("acme", from, to, to - 1);
    const int64_t change = static_cast<int64_t>(close.outstanding_points) -
                           static_cast<int64_t>(open.outstanding_points);
    const int64_t explained =
        static_cast<int64_t>(close.issued_points) - static_cast<int64_t>(close.redeemed_points) -
        static_cast<int64_t>(close.reversed_issued_points) +
        static_cast<int64_t>(close.reversed_redeemed_points) -
        static_cast<int64_t>(close.expired_points) - static_cast<int64_t>(close.forfeited_points) -
        static_cast<int64_t>(close.adjusted_down_points);
    EXPECT_EQ(change, explained) << ::testing::PrintToString(open) << "\n"
                                 << ::testing::PrintToString(close);
    EXPECT_GE(close.reversed_points, close.reversed_issued_points + close.reversed_redeemed_points);
    // Movements do not depend on as_of.
    Liability open_moves = open;
    open_moves.as_of_ns = close.as_of_ns;
    open_moves.as_of_seq = close.as_of_seq;
    open_moves.outstanding_points = close.outstanding_points;
    open_moves.outstanding_value_micros = close.outstanding_value_micros;
    open_moves.expired_unswept_points = close.expired_unswept_points;
    open_moves.expiring_30d_points = close.expiring_30d_points;
    open_moves.expiring_60d_points = close.expiring_60d_points;
    open_moves.expiring_90d_points = close.expiring_90d_points;
    EXPECT_EQ(open_moves, close);
  }
}

// ===========================================================================
// 2. Audit.

class AuditTest : public FinanceTest {
 protected:
  // Every kind once, a pending hold, an expiry swept. Returns the seq of
  // alice's 500-point earn ("e1").
  uint64_t Workload() {
    clock_.Set(kStartNs);
    Transaction partner_earn = Earn("acme", "alice", 80, "p-e1");
    partner_earn.partner = "hotelco";
    const std::vector<Result> r = Apply(
        {ProgramCreate("acme"), PartnerCreate("acme", "hotelco", 9000, 7000),
         Earn("acme", "alice", 500, "e1"), partner_earn,
         EarnExpiring("acme", "erin", 40, kStartNs + kDayNs, "soon"),
         Redeem("acme", "alice", 50, "r1"), Referral("acme", "alice", "bob", 30, 20, "ref"),
         Transfer("acme", "alice", "carol", 25, "t1"), Adjust("acme", "carol", 5, "adj-up"),
         Adjust("acme", "carol", -3, "adj-down"), Hold("acme", "alice", 40, 600, "hold-1"),
         Capture("acme", "hold-1", 30, "cap-1"),
         Hold("acme", "bob", 10, kHoldTimeoutSecondsMax, "hold-bob"),  // stays pending
         Reverse("acme", "r1", 20, "undo-r1"), Reverse("acme", "e1", 10, "undo-e1"),
         Redeem("acme", "alice", 100000, "too-much"), AccountClose("acme", "carol", "close")});
    clock_.Advance(2 * kDayNs);
    Sweep();
    return r[2].seq;
  }

  // A new ledger in DIR, made by `workload` and closed (a final checkpoint:
  // the state is all in DIR/state); then the `table` entry at `key` (the
  // table's first key when empty) gets a byte appended, or, with `insert`,
  // a key of the same shape that no transaction wrote is added.
  void TamperAfresh(const std::function<void()>& workload, const char* table, std::string key,
                    bool insert) {
    ledger_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
    Open();
    workload();
    ledger_.reset();
    if (key.empty()) key = FirstLmdbKey(dir_ + "/state", table);
    ASSERT_FALSE(key.empty()) << "the workload leaves nothing in " << table;
    if (insert) key.back() = static_cast<char>(key.back() ^ 0x5a);
    TamperLmdb(dir_ + "/state", table, key, [](std::string* v) { v->push_back('\x01'); }, insert);
  }
};

TEST_F(AuditTest, ACleanLedgerHasNoDiscrepanciesAndReportsTheHead) {
  const uint64_t e1 = Workload();
  EXPECT_EQ(e1, 3u);
  AuditReport r = MustAudit();  // read-write, state still in memory
  EXPECT_EQ(r.discrepancy_count, 0u) << DescribeAudit(r);
  EXPECT_EQ(r.first_bad_seq, 0u);
  const ChainHead head = MustHead();
  EXPECT_EQ(head.seq, 18u);  // 17 + erin's expiry
  EXPECT_EQ(r.head.seq, head.seq);
  EXPECT_EQ(r.head.hash, head.hash);
  EXPECT_EQ(r.head.timestamp_ns, head.timestamp_ns);

  // After a clean close (final checkpoint), read-only.
  OpenReadOnly();
  r = MustAudit();
  EXPECT_EQ(r.discrepancy_count, 0u) << DescribeAudit(r);
  EXPECT_EQ(r.head.hash, head.hash);

  // With log past the checkpoint (the close writes none), read-only.
  ledger_.reset();
  OpenWithoutCheckpoints();
  MustApply({Earn("acme", "alice", 7, "later-1"), Redeem("acme", "bob", 5, "later-2")});
  const ChainHead later = MustHead();
  EXPECT_EQ(later.seq, 20u);
  r = MustAudit();
  EXPECT_EQ(r.discrepancy_count, 0u) << DescribeAudit(r);
  OpenReadOnly();
  r = MustAudit();
  EXPECT_EQ(r.discrepancy_count, 0u) << DescribeAudit(r);
  EXPECT_EQ(r.head.seq, 20u);
  EXPECT_EQ(r.head.hash, later.hash);

  // The progress callback sees the phases and ends at the head.
  std::map<std::string, std::pair<uint64_t, uint64_t>> last;
  absl::StatusOr<AuditReport> with_progress =
      ledger_->Audit([&](std::string_view phase, uint64_t done, uint64_t total) {
        last[std::string(phase)] = {done, total};
      });
  ASSERT_TRUE(with_progress.ok()) << with_progress.status();
  EXPECT_EQ(last["chain"], (std::pair<uint64_t, uint64_t>{20, 20}));
  EXPECT_EQ(last["rebuild"], (std::pair<uint64_t, uint64_t>{20, 20}));
}

// (a) One byte of a stored transaction: alice's earn of 500 (seq 3) now
// says 501 in its posting.
TEST_F(AuditTest, AChangedTransactionBreaksTheChainAtItsSeq) {
  const uint64_t e1 = Workload();
  const ChainHead head = MustHead();
  ledger_.reset();  // a final checkpoint: the state is all in DIR/state
  TamperLmdb(dir_ + "/log", "log", SeqKey(e1), [](std::string* v) {
    // hash(32) | record; the record ends with the one posting's
    // (debit 16, credit 16, U64 points, U8 type) then U8 has_statement = 0.
    const size_t points_at = v->size() - 1 - 1 - 8;
    ASSERT_EQ(LeU64(*v, points_at), 500u);
    SetLeU64(v, points_at, 501);
  });
  if (HasFatalFailure()) return;
  OpenReadOnly();

  const AuditReport r = MustAudit();
  EXPECT_EQ(r.first_bad_seq, e1) << DescribeAudit(r);
  ASSERT_GE(r.discrepancies.size(), 1u);
  EXPECT_EQ(r.discrepancies[0].what, "chain");
  EXPECT_EQ(r.discrepancies[0].seq, e1);
  EXPECT_EQ(r.discrepancy_count, r.discrepancies.size());

  const std::vector<Discrepancy> chain = MustVerifyChain();
  ASSERT_EQ(chain.size(), 1u);
  EXPECT_EQ(chain[0].what, "chain");
  EXPECT_EQ(chain[0].seq, e1);
  // The head is untouched: nothing stored after it changed.
  EXPECT_EQ(MustHead().hash, head.hash);

  // The trial balance replays the postings as now stored: alice's credits
  // and issuance's debits are each 1 off the stored accounts.
  absl::StatusOr<std::vector<Discrepancy>> books = ledger_->TrialBalance();
  ASSERT_TRUE(books.ok()) << books.status();
  EXPECT_TRUE(HasFinding(*books, "balance", "acme/member/alice")) << Describe(*books);
  EXPECT_TRUE(HasFinding(*books, "balance", "acme/issuance")) << Describe(*books);
  ledger_.reset();  // no healthy-ledger check in TearDown
}

// (b) One byte of a member's balance in the checkpointed state.
TEST_F(AuditTest, AChangedBalanceIsNamed) {
  Workload();
  ledger_.reset();
  TamperLmdb(dir_ + "/state", "accounts", IdKey(MemberAccountId("acme", "alice")),
             [](std::string* v) {
               // U8 kind, U8 closed, U64 debits_posted, U64 credits_posted ...
               (*v)[10] = static_cast<char>((*v)[10] + 1);
             });
  if (HasFatalFailure()) return;
  OpenReadOnly();
  const AuditReport r = MustAudit();
  EXPECT_EQ(r.first_bad_seq, 0u) << DescribeAudit(r);  // the chain is fine
  EXPECT_EQ(r.discrepancy_count, 1u) << DescribeAudit(r);
  EXPECT_TRUE(HasFinding(r.discrepancies, "balance", "alice")) << DescribeAudit(r);
  EXPECT_TRUE(HasFinding(r.discrepancies, "balance", IdToHex(MemberAccountId("acme", "alice"))))
      << DescribeAudit(r);
  EXPECT_TRUE(MustVerifyChain().empty());
  const std::vector<Discrepancy> books = MustTrialBalance();
  EXPECT_TRUE(HasFinding(books, "balance", "acme/member/alice")) << Describe(books);
  ledger_.reset();
}

// A balance tampered below zero is refused by a balance query, not
// printed as a wrapped number.
TEST_F(AuditTest, ABalanceBelowZeroIsRefusedByAQuery) {
  Workload();
  ledger_.reset();
  uint64_t credits = 0;
  TamperLmdb(dir_ + "/state", "accounts", IdKey(MemberAccountId("acme", "alice")),
             [&](std::string* v) {
               // U8 kind, U8 closed, U64 debits_posted, U64 credits_posted ...
               credits = LeU64(*v, 10);
               SetLeU64(v, 2, credits + 1);
             });
  if (HasFatalFailure()) return;
  OpenReadOnly();
  absl::StatusOr<std::optional<Balance>> b = ledger_->GetBalance("acme", "alice");
  ASSERT_FALSE(b.ok());
  EXPECT_TRUE(absl::IsDataLoss(b.status())) << b.status();
  const std::string message(b.status().message());
  EXPECT_NE(message.find("run audit verify"), std::string::npos) << message;
  EXPECT_NE(message.find(StrCat("exceed credits_posted ", credits)), std::string::npos) << message;
  ledger_.reset();
}

// (c) A lot's remaining.
TEST_F(AuditTest, AChangedLotIsNamed) {
  Workload();
  const Id alice = MemberAccountId("acme", "alice");
  const std::vector<LotInfo> lots = MustLots("acme", "alice");
  ASSERT_FALSE(lots.empty());
  const LotInfo lot = lots[0];
  ledger_.reset();
  TamperLmdb(dir_ + "/state", "lots", LotKeyOf(alice, lot), [&](std::string* v) {
    ASSERT_EQ(LeU64(*v, 0), lot.remaining);  // U64 remaining, I64 locked_until
    SetLeU64(v, 0, lot.remaining - 1);
  });
  if (HasFatalFailure()) return;
  OpenReadOnly();
  const AuditReport r = MustAudit();
  EXPECT_EQ(r.first_bad_seq, 0u) << DescribeAudit(r);
  EXPECT_EQ(r.discrepancy_count, 1u) << DescribeAudit(r);
  EXPECT_TRUE(HasFinding(r.discrepancies, "lot", IdToHex(alice))) << DescribeAudit(r);
  const std::vector<Discrepancy> books = MustTrialBalance();
  EXPECT_TRUE(HasFinding(books, "lot", "acme/member/alice")) << Describe(books);
  ledger_.reset();
}

// (d) A pending hold's amount (bob's 10 -> 11).
TEST_F(AuditTest, AChangedHoldIsNamed) {
  Workload();
  ledger_.reset();
  TamperLmdb(dir_ + "/state", "holds", IdKey(TxIdFromKey("acme", "hold-bob")), [](std::string* v) {
    // Str program ("acme": u16 4 + 4 bytes), member id 16, U8 state, U64 amount.
    const size_t amount_at = 2 + 4 + 16 + 1;
    ASSERT_EQ((*v)[amount_at - 1], 0);  // pending
    ASSERT_EQ(LeU64(*v, amount_at), 10u);
    SetLeU64(v, amount_at, 11);
  });
  if (HasFatalFailure()) return;
  OpenReadOnly();
  const AuditReport r = MustAudit();
  EXPECT_EQ(r.first_bad_seq, 0u) << DescribeAudit(r);
  EXPECT_EQ(r.discrepancy_count, 1u) << DescribeAudit(r);
  EXPECT_TRUE(HasFinding(r.discrepancies, "hold", "")) << DescribeAudit(r);
  const std::vector<Discrepancy> books = MustTrialBalance();
  EXPECT_TRUE(HasFinding(books, "hold", "acme/member/bob")) << Describe(books);
  ledger_.reset();
}

// (e) The effects of alice's earn (seq 3): the lot it created, which her
// partial reversal at seq 15 read back. A replay re-derives effects, so the
// rebuild names seq 3, though the chain and every state table are intact.
TEST_F(AuditTest, AChangedEffectsEntryIsNamedByItsSeq) {
  const uint64_t e1 = Workload();
  ledger_.reset();
  TamperLmdb(dir_ + "/log", "effects", SeqKey(e1), [](std::string* v) {
    // U32 n = 1, then I64 expiry, U64 points.
    ASSERT_EQ(v->size(), 4u + 16u);
    ASSERT_EQ(LeU64(*v, 12), 500u);
    SetLeU64(v, 12, 499);
  });
  if (HasFatalFailure()) return;
  OpenReadOnly();
  const AuditReport r = MustAudit();
  EXPECT_EQ(r.first_bad_seq, e1) << DescribeAudit(r);
  ASSERT_EQ(r.discrepancy_count, 1u) << DescribeAudit(r);
  EXPECT_EQ(r.discrepancies[0].what, "replay");
  EXPECT_EQ(r.discrepancies[0].seq, e1);
  EXPECT_TRUE(HasFinding(r.discrepancies, "replay", "seq 3")) << DescribeAudit(r);
  EXPECT_NE(r.discrepancies[0].found.find("stored [499 expiring"), std::string::npos)
      << DescribeAudit(r);
  EXPECT_NE(r.discrepancies[0].found.find("the replay gives [500 expiring"), std::string::npos)
      << DescribeAudit(r);
  EXPECT_TRUE(MustVerifyChain().empty());  // the records themselves are intact
  ledger_.reset();
}

// The effects of the redeem r1 (seq 6) say it took 10 points, not 50: a
// reversal that reads them is DataLoss, not a crash of the writer (found by
// a storage review, session 19: the server aborted at every such reverse).
TEST_F(AuditTest, AReversalReadingChangedEffectsIsDataLossNotACrash) {
  Workload();
  ledger_.reset();
  TamperLmdb(dir_ + "/log", "effects", SeqKey(6), [](std::string* v) {
    ASSERT_EQ(v->size(), 4u + 16u);  // U32 n = 1, then I64 expiry, U64 points
    ASSERT_EQ(LeU64(*v, 12), 50u);
    SetLeU64(v, 12, 10);
  });
  if (HasFatalFailure()) return;
  Open();
  std::vector<Result> results;
  const absl::Status s = ledger_->ApplyBatch(std::vector<Transaction>{Reverse("acme", "r1", 0, "undo-rest")},
                                             Auth::Admin(), &results);
  EXPECT_TRUE(absl::IsDataLoss(s)) << s;
  EXPECT_NE(s.message().find("effects"), std::string_view::npos) << s;
  ledger_.reset();
}

// The effects of the earn e1 (seq 3) name two lots for its one posting:
// reversing it is DataLoss, not a crash (same review).
TEST_F(AuditTest, AnEarnsEffectsWithTheWrongLotCountIsDataLossNotACrash) {
  Workload();
  ledger_.reset();
  TamperLmdb(dir_ + "/log", "effects", SeqKey(3), [](std::string* v) {
    ASSERT_EQ(v->size(), 4u + 16u);  // U32 n = 1, one (I64 expiry, U64 points)
    (*v)[0] = 2;
    v->append(v->substr(4, 16));
  });
  if (HasFatalFailure()) return;
  Open();
  std::vector<Result> results;
  const absl::Status s = ledger_->ApplyBatch(std::vector<Transaction>{Reverse("acme", "e1", 1, "undo-more")},
                                             Auth::Admin(), &results);
  EXPECT_TRUE(absl::IsDataLoss(s)) << s;
  ledger_.reset();
}

// A member's debits_pending below its pending hold (hold-bob, 10): ending
// the hold is DataLoss, not a crash of the writer.
TEST_F(AuditTest, AHoldPastItsMembersPendingPointsIsDataLossNotACrash) {
  Workload();
  ledger_.reset();
  TamperLmdb(dir_ + "/state", "accounts", IdKey(MemberAccountId("acme", "bob")), [](std::string* v) {
    // U8 kind, U8 closed, U64 debits_posted, U64 credits_posted, U64 debits_pending ...
    ASSERT_EQ(LeU64(*v, 18), 10u);
    SetLeU64(v, 18, 5);
  });
  if (HasFatalFailure()) return;
  Open();
  std::vector<Result> results;
  const absl::Status s = ledger_->ApplyBatch(std::vector<Transaction>{Release("acme", "hold-bob", "rel-bob")},
                                             Auth::Admin(), &results);
  EXPECT_TRUE(absl::IsDataLoss(s)) << s;
  EXPECT_NE(s.message().find("pending"), std::string_view::npos) << s;
  ledger_.reset();
}

// A programs row whose expiry or lock days are past what any program_create
// is accepted with (limits.h) is damage: every reader of it reports
// DataLoss. Before, an earn under expiry_days 256,000,365 computed its
// lot's expiry as ts + days * kNanosPerDay, which overflowed int64
// (undefined behaviour; UBSan stopped there): found by the state fuzz
// target (tests/fuzz/corpus/state/regress_program_expiry_days). A program
// at the bounds is still one.
TEST_F(AuditTest, AProgramPastItsBoundsIsDataLossNotAnOverflow) {
  Workload();
  ledger_.reset();
  // ProgramRec: Str currency ("USD": U16 3, 3 bytes), U64 point_value_micros,
  // U32 expiry_days at 13, U32 lock_days at 17, U8 auto_open.
  auto set_u32 = [](std::string* v, size_t offset, uint32_t value) {
    for (size_t i = 0; i < 4; ++i) (*v)[offset + i] = static_cast<char>((value >> (8 * i)) & 0xff);
  };
  // The audit names the program (before any transaction is decided by it:
  // those would be named first, by the replay).
  TamperLmdb(dir_ + "/state", "programs", "acme", [&](std::string* v) { set_u32(v, 13, 256'000'365); });
  if (HasFatalFailure()) return;
  OpenReadOnly();
  const AuditReport r = MustAudit();
  EXPECT_EQ(r.discrepancy_count, 1u) << DescribeAudit(r);
  EXPECT_TRUE(HasFinding(r.discrepancies, "programs", "61636d65")) << DescribeAudit(r);

  struct Case {
    size_t offset;
    uint32_t value;
    bool ok;
  };
  // point_value_micros is a U64 at 5; 5,000 leaves its high half zero.
  constexpr uint32_t kPriceMax = static_cast<uint32_t>(kPriceMicrosMax);
  for (const Case& c : {Case{13, kExpiryDaysMax, true}, Case{17, kLockDaysMax, true},
                        Case{5, kPriceMax, true}, Case{13, 256'000'365, false},
                        Case{13, kExpiryDaysMax + 1, false}, Case{17, kLockDaysMax + 1, false},
                        Case{5, kPriceMax + 1, false}}) {
    SCOPED_TRACE(StrCat("the U32 at ", c.offset, " := ", c.value));
    ledger_.reset();
    TamperLmdb(dir_ + "/state", "programs", "acme", [&](std::string* v) {
      ASSERT_EQ(v->size(), 22u);
      set_u32(v, c.offset, c.value);
    });
    if (HasFatalFailure()) return;
    Open();
    std::vector<Result> results;
    const absl::Status earned = ledger_->ApplyBatch(
        std::vector<Transaction>{Earn("acme", "alice", 7, StrCat("e-", c.offset, "-", c.value))},
        Auth::Admin(), &results);
    const absl::StatusOr<std::optional<ProgramInfo>> program = ledger_->GetProgram("acme");
    if (c.ok) {
      EXPECT_TRUE(earned.ok()) << earned;
      EXPECT_TRUE(program.ok()) << program.status();
    } else {
      EXPECT_TRUE(absl::IsDataLoss(earned)) << earned;
      EXPECT_TRUE(absl::IsDataLoss(program.status())) << program.status();
      EXPECT_TRUE(absl::IsDataLoss(ledger_->LiabilityReport("acme", 0, kMaxNs, kMaxNs).status()));
    }
    // Put back what the workload wrote (5,000 micros, 365 days, no lock)
    // for the next case.
    ledger_.reset();
    TamperLmdb(dir_ + "/state", "programs", "acme", [&](std::string* v) {
      set_u32(v, 5, 5000);
      set_u32(v, 13, 365);
      set_u32(v, 17, 0);
    });
    if (HasFatalFailure()) return;
  }
  ledger_.reset();
}

// A member_holds key (member id ‖ hold id) of another length is DataLoss
// naming the index for account_close, which voids the member's pending
// holds. Before (seen in the state fuzz target's review, session 25), such
// a key was read as a hold id all the same, and only a later check caught
// what it led to: a longer key counted its hold twice ("past the pending
// points"), a shorter one named no hold ("holds: missing").
TEST_F(AuditTest, AMemberHoldsKeyOfAnotherLengthIsDataLossForAccountClose) {
  Workload();
  ledger_.reset();
  const std::string bob = IdKey(MemberAccountId("acme", "bob"));
  const std::string hold = IdKey(TxIdFromKey("acme", "hold-bob"));
  for (const std::string& key : {bob + hold + "x", bob + hold.substr(0, 15)}) {
    SCOPED_TRACE(StrCat("a key of ", key.size(), " bytes"));
    ASSERT_NO_FATAL_FAILURE(PutEmptyLmdb(dir_ + "/state", "member_holds", key));
    Open();
    std::vector<Result> results;
    const absl::Status closed = ledger_->ApplyBatch(
        std::vector<Transaction>{AccountClose("acme", "bob", StrCat("close-bob-", key.size()))}, Auth::Admin(),
        &results);
    EXPECT_TRUE(absl::IsDataLoss(closed)) << closed;
    EXPECT_NE(closed.message().find("member_holds"), std::string_view::npos) << closed;
    ledger_.reset();
    DeleteLmdb(dir_ + "/state", "member_holds", key);
    if (HasFatalFailure()) return;
  }
  // The clean index closes bob's account, voiding his hold once.
  Open();
  EXPECT_EQ(Apply1(AccountClose("acme", "bob", "close-bob")).code, Code::kOk);
  ledger_.reset();
}

// A `member_holds` entry that names another member's pending hold (the
// index damaged: bob's own entry swapped for alice's hold, of no more
// points, so no total gives it away) is DataLoss for account_close. Before,
// closing bob voided alice's hold, spreading the damage to her books.
TEST_F(AuditTest, AMemberHoldsEntryNamingAnotherMembersHoldIsDataLoss) {
  Workload();
  EXPECT_EQ(Apply1(Hold("acme", "alice", 5, kHoldTimeoutSecondsMax, "hold-alice")).code, Code::kOk);
  ledger_.reset();
  const std::string bob = IdKey(MemberAccountId("acme", "bob"));
  const std::string own = bob + IdKey(TxIdFromKey("acme", "hold-bob"));
  const std::string alices = bob + IdKey(TxIdFromKey("acme", "hold-alice"));
  ASSERT_NO_FATAL_FAILURE(DeleteLmdb(dir_ + "/state", "member_holds", own));
  ASSERT_NO_FATAL_FAILURE(PutEmptyLmdb(dir_ + "/state", "member_holds", alices));
  Open();
  std::vector<Result> results;
  const absl::Status closed = ledger_->ApplyBatch(
      std::vector<Transaction>{AccountClose("acme", "bob", "close-bob")}, Auth::Admin(), &results);
  EXPECT_TRUE(absl::IsDataLoss(closed)) << closed;
  EXPECT_NE(closed.message().find("member_holds"), std::string_view::npos) << closed;
  // Alice's hold is untouched: she can still capture it.
  EXPECT_EQ(Apply1(Capture("acme", "hold-alice", 5, "cap-alice")).code, Code::kOk);
  ledger_.reset();
}

// An `expiry` entry whose key is shorter than its 8-byte expiry (the index
// of lots by expiry: BeI64 expires_at ‖ lot key) is DataLoss for the sweep,
// read-only (`pointledger expire`) and in the server. Before, CollectDue
// took it as due at once and its key.substr(8) threw std::out_of_range:
// the process aborted, and a server would at every start. Found by the
// state fuzz target (tests/fuzz/corpus/state/regress_expiry_key_cut_short).
TEST_F(AuditTest, AnExpiryKeyCutShortIsDataLossNotAnAbort) {
  Workload();
  ledger_.reset();
  const std::string first = FirstLmdbKey(dir_ + "/state", "expiry");
  ASSERT_EQ(first.size(), 8u + 36u);
  for (const size_t cut : {size_t{1}, size_t{7}}) {
    SCOPED_TRACE(StrCat("a key of ", cut, " bytes"));
    ASSERT_NO_FATAL_FAILURE(PutEmptyLmdb(dir_ + "/state", "expiry", first.substr(0, cut)));
    OpenReadOnly();
    EXPECT_TRUE(absl::IsDataLoss(ledger_->CollectDue(kMaxNs, 100).status()));
    const AuditReport r = MustAudit();
    EXPECT_TRUE(HasFinding(r.discrepancies, "lot", "expiry key")) << DescribeAudit(r);
    ledger_.reset();
    Open();
    EXPECT_TRUE(absl::IsDataLoss(ledger_->CollectDue(kMaxNs, 100).status()));
    ledger_.reset();
    DeleteLmdb(dir_ + "/state", "expiry", first.substr(0, cut));
    if (HasFatalFailure()) return;
  }
}

// (f) An effects entry for a transaction that has none: the rejected
// redeem "too-much" (seq 16).
TEST_F(AuditTest, AnEffectsEntryNoTransactionWroteIsNamed) {
  Workload();
  ledger_.reset();
  InsertEffects(dir_, 16);
  if (HasFatalFailure()) return;
  OpenReadOnly();
  ExpectOnlyStrayEffectsAt(MustAudit(), 16u);
  ledger_.reset();
}

// A state entry changed under a checkpoint, with log past it: the stored
// state (checkpoint + replayed tail) carries the change, and a tail whose
// outcome the change would alter is named by its seq.
TEST_F(AuditTest, AChangedCheckpointWithLogPastItIsNamed) {
  Workload();
  ledger_.reset();  // checkpoint at seq 18
  OpenWithoutCheckpoints();
  // seq 19: alice earns (her tampered credits will be carried forward);
  // seq 20: bob redeems all he has available: his 20 referral points less
  // the 10 held.
  const std::vector<Result> tail =
      Apply({Earn("acme", "alice", 7, "later-1"), Redeem("acme", "bob", 10, "later-2")});
  ASSERT_EQ(tail[1].code, Code::kOk);
  ASSERT_EQ(tail[1].seq, 20u);
  const std::vector<LotInfo> bob_lots = MustLots("acme", "bob");
  ledger_.reset();  // no checkpoint: the state is at seq 18

  TamperLmdb(dir_ + "/state", "accounts", IdKey(MemberAccountId("acme", "alice")),
             [](std::string* v) { (*v)[10] = static_cast<char>((*v)[10] + 1); });
  if (HasFatalFailure()) return;
  OpenReadOnly();
  AuditReport r = MustAudit();
  EXPECT_EQ(r.discrepancy_count, 1u) << DescribeAudit(r);
  EXPECT_TRUE(HasFinding(r.discrepancies, "balance", "alice")) << DescribeAudit(r);
  const std::vector<Discrepancy> books = MustTrialBalance();
  EXPECT_TRUE(HasFinding(books, "balance", "acme/member/alice")) << Describe(books);

  // Now bob's lot at seq 18 loses 5 points: the replayed redeem of 10 at
  // seq 20 would be refused, unlike the recorded one.
  ledger_.reset();
  ASSERT_TRUE(bob_lots.empty()) << "bob's redeem left lots";
  // bob's lot before seq 20 is the referral's (seq 7, index 1): 20 points,
  // 10 of them in the hold; it expires 365 days after seq 7's timestamp.
  LotInfo lot;
  lot.source_seq = 7;
  lot.index = 1;
  lot.expires_at_ns = kStartNs + 6 + 365 * kDayNs;  // seq 7 is at kStartNs + 6
  TamperLmdb(dir_ + "/state", "lots", LotKeyOf(MemberAccountId("acme", "bob"), lot),
             [](std::string* v) {
               ASSERT_EQ(LeU64(*v, 0), 10u);
               SetLeU64(v, 0, 5);
             });
  if (HasFatalFailure()) return;
  OpenReadOnly();
  r = MustAudit();
  EXPECT_EQ(r.first_bad_seq, 20u) << DescribeAudit(r);
  EXPECT_TRUE(HasFinding(r.discrepancies, "replay", "seq 20")) << DescribeAudit(r);
  // A read-only reader replays the same tail to serve a scan, and cannot:
  // the trial balance is refused as DataLoss rather than computed.
  EXPECT_TRUE(absl::IsDataLoss(ledger_->TrialBalance().status()));
  ledger_.reset();
}

// SPEC §7: tampering with any stored state is detected. Each state table
// in turn, on a ledger of every kind: its first entry's value changed (a
// byte appended), then a key no transaction wrote added. (Only accounts,
// lots and holds were tampered before; the comparison could skip any other
// table and no test failed: found by mutation testing, session 21.)
TEST_F(AuditTest, EveryStateTableIsCompared) {
  for (const char* table : {"ids", "programs", "accounts", "lots", "expiry", "holds", "hold_deadlines",
                            "member_holds", "history", "reversed", "referees", "partners", "prices",
                            "flows"}) {
    for (const bool insert : {false, true}) {
      SCOPED_TRACE(StrCat(table, insert ? ": a key added" : ": a value changed"));
      TamperAfresh([this] { Workload(); }, table, "", insert);
      if (HasFatalFailure()) return;
      OpenReadOnly();
      const AuditReport r = MustAudit();
      EXPECT_GT(r.discrepancy_count, 0u) << DescribeAudit(r);
      EXPECT_EQ(r.first_bad_seq, 0u) << DescribeAudit(r);  // the chain is fine
    }
  }
  ledger_.reset();
}

// Past Options::rebuild_memory_entries, the audit's rebuild moves its state
// to a scratch LMDB environment (RebuildScratch, ledger/ledger.cc) and
// reads it from there as its state layer: a ledger of any length audits in
// bounded memory. The comparison must see every rebuilt entry whichever
// layer holds it, and the lots deleted after they were moved must stay
// deleted.
class AuditSpillTest : public AuditTest {
 protected:
  // The workload, then 300 members each earning 10 points in even rounds
  // and redeeming all 10 in odd ones (the lot deleted): over 9,000 records,
  // so the rebuild, which may move its state every 4,096, moves it twice.
  void LongWorkload() {
    Workload();
    std::vector<Transaction> batch;
    for (int i = 0; i < 9000; ++i) {
      const std::string member = StrCat("m", i % 300);
      const bool earn = (i / 300) % 2 == 0;
      batch.push_back(earn ? Earn("acme", member, 10, StrCat("le", i))
                           : Redeem("acme", member, 10, StrCat("lr", i)));
      if (batch.size() == 1000) {
        MustApply(batch);
        batch.clear();
      }
    }
  }
  // Read-only, the rebuild bounded to 1,000 entries in memory.
  void OpenForAudit() {
    ledger_.reset();
    OpenWith([this](Options* o) {
      o->read_only = true;
      o->rebuild_memory_entries = 1000;
      o->scratch_dir = scratch_;
    });
  }
  void SetUp() override {
    AuditTest::SetUp();
    scratch_ = dir_ + "-scratch";
    std::filesystem::create_directories(scratch_);
  }
  void TearDown() override {
    AuditTest::TearDown();
    std::error_code ec;
    std::filesystem::remove_all(scratch_, ec);
  }
  std::string scratch_;
};

TEST_F(AuditSpillTest, ACleanLedgerAuditsCleanAcrossSpillsAndLeavesNoScratch) {
  LongWorkload();
  const ChainHead head = MustHead();
  OpenForAudit();
  // Its files are unlinked once open: even mid-rebuild, after a spill,
  // nothing is there for a killed process to leave behind.
  int looked = 0;
  absl::StatusOr<AuditReport> audited =
      ledger_->Audit([&](std::string_view phase, uint64_t done, uint64_t) {
        if (phase != "rebuild" || done < 2 * 4096) return;
        ++looked;
        EXPECT_TRUE(std::filesystem::is_empty(scratch_)) << "scratch files visible at " << done;
      });
  ASSERT_TRUE(audited.ok()) << audited.status();
  EXPECT_GT(looked, 0);
  const AuditReport& r = *audited;
  EXPECT_EQ(r.discrepancy_count, 0u) << DescribeAudit(r);
  EXPECT_GE(r.rebuild_spills, 2u);
  // The bound holds: at most 1,000 entries plus what one step of the
  // replay (4,096 transactions, ~3 entries each here) writes; a spill that
  // kept its map held 27,000.
  EXPECT_LT(r.rebuild_peak_entries, 1000u + 4096u * 4u);
  EXPECT_EQ(r.head.seq, head.seq);
  EXPECT_TRUE(std::filesystem::is_empty(scratch_)) << "the scratch environment was left behind";
  // Unbounded, the same ledger never spills.
  OpenReadOnly();
  const AuditReport unbounded = MustAudit();
  EXPECT_EQ(unbounded.discrepancy_count, 0u) << DescribeAudit(unbounded);
  EXPECT_EQ(unbounded.rebuild_spills, 0u);
}

// Tampering found in entries rebuilt before the first spill (each table's
// first key: the workload's early members), after the last one (the member
// who redeemed last), and keys added that no transaction wrote.
TEST_F(AuditSpillTest, ChangesAreFoundWhicheverLayerHoldsTheRebuiltEntry) {
  struct Case {
    const char* table;
    std::string key;  // empty: the table's first key
    bool insert;
  };
  const std::vector<Case> cases = {
      {"ids", "", false},     {"ids", "", true},      {"accounts", "", false},
      {"lots", "", false},    {"lots", "", true},     {"history", "", false},
      {"expiry", "", true},   {"referees", "", false},
      {"accounts", IdKey(MemberAccountId("acme", "m299")), false},
      {"ids", IdKey(TxIdFromKey("acme", "lr8999")), false}};
  for (const Case& c : cases) {
    SCOPED_TRACE(StrCat(c.table, " ", c.key.empty() ? "first key" : "a late key",
                        c.insert ? ": a key added" : ": a value changed"));
    TamperAfresh([this] { LongWorkload(); }, c.table, c.key, c.insert);
    if (HasFatalFailure()) return;
    OpenForAudit();
    const AuditReport r = MustAudit();
    EXPECT_GE(r.rebuild_spills, 2u);
    // Exactly the one key tampered with: a rebuild that lost or invented
    // entries across its spills shows up as more.
    EXPECT_EQ(r.discrepancy_count, 1u) << DescribeAudit(r);
    EXPECT_EQ(r.first_bad_seq, 0u) << DescribeAudit(r);  // the chain is fine
  }
  ledger_.reset();
}

// A liability report as of the past rebuilds the state from seq 1 as the
// audit does, in the same bounded memory: the same figures whether its
// rebuild moved to scratch or not (it did: without a scratch directory it
// fails).
TEST_F(AuditSpillTest, ALiabilityAsOfThePastIsTheSameWhenItsRebuildSpills) {
  LongWorkload();
  const int64_t as_of = MustHead().timestamp_ns - 100;  // in the last round
  ledger_.reset();
  OpenReadOnly();
  const Liability unbounded = MustLiability("acme", kStartNs, as_of + 1, as_of);
  EXPECT_GT(unbounded.as_of_seq, 2 * 4096u);
  EXPECT_GT(unbounded.outstanding_points, 0u);
  OpenForAudit();
  const Liability bounded = MustLiability("acme", kStartNs, as_of + 1, as_of);
  EXPECT_EQ(bounded, unbounded);
  EXPECT_TRUE(std::filesystem::is_empty(scratch_));
  ledger_.reset();
  OpenWith([this](Options* o) {
    o->read_only = true;
    o->rebuild_memory_entries = 1000;
    o->scratch_dir = dir_ + "/no/such/directory";
  });
  EXPECT_FALSE(ledger_->LiabilityReport("acme", kStartNs, as_of + 1, as_of).ok());
}

// A full disk under the scratch fails the rebuild with an error that says
// where, not the process: in the server a rebuild runs on its report
// thread, for any key with the read scope. (With MDB_WRITEMAP, a full disk
// under the written map was SIGBUS: found in review.) Nothing is left on
// the disk afterwards. Needs root to mount a 1 MB tmpfs; skipped without.
TEST_F(AuditSpillTest, AFullScratchDiskIsAnErrorNotACrash) {
  test::Tmpfs disk(dir_ + "-disk", 1);
  if (!disk.ok()) GTEST_SKIP() << disk.why();
  LongWorkload();
  ledger_.reset();
  OpenWith([&](Options* o) {
    o->read_only = true;
    o->rebuild_memory_entries = 1000;
    o->scratch_dir = dir_ + "-disk";
  });
  EXPECT_EXIT(
      {
        const absl::StatusOr<AuditReport> r = ledger_->Audit();
        std::fprintf(stderr, "audit: %s\n", r.ok() ? "ok" : std::string(r.status().message()).c_str());
        const bool named = !r.ok() && r.status().message().find("scratch environment under " + dir_ +
                                                                "-disk") != std::string::npos;
        std::_Exit(named && std::filesystem::is_empty(dir_ + "-disk") ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
  ledger_.reset();
}

// A scratch directory that cannot be made fails the audit with a message
// that names it; nothing is reported clean.
TEST_F(AuditSpillTest, AScratchDirectoryThatCannotBeMadeIsAnError) {
  LongWorkload();
  ledger_.reset();
  OpenWith([this](Options* o) {
    o->read_only = true;
    o->rebuild_memory_entries = 1000;
    o->scratch_dir = dir_ + "/no/such/directory";
  });
  const absl::StatusOr<AuditReport> r = ledger_->Audit();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("scratch environment under " + dir_ + "/no/such/directory"),
            std::string::npos)
      << r.status();
}

// The hash covers the timestamp: moving a transaction in time breaks the
// chain at its seq (found by mutation testing, session 21: a hash that
// skipped the 8 timestamp bytes passed every test).
TEST_F(AuditTest, AChangedTimestampBreaksTheChain) {
  Workload();
  ASSERT_EQ(MustHead().seq, 18u);
  ledger_.reset();
  // hash(32) | U8 format | U64 seq | I64 timestamp_ns ...
  TamperLmdb(dir_ + "/log", "log", SeqKey(18),
             [](std::string* v) { SetLeU64(v, 32 + 9, LeU64(*v, 32 + 9) + 1000); });
  if (HasFatalFailure()) return;
  OpenReadOnly();
  const AuditReport r = MustAudit();
  EXPECT_EQ(r.first_bad_seq, 18u) << DescribeAudit(r);
  EXPECT_TRUE(HasFinding(r.discrepancies, "chain", "")) << DescribeAudit(r);
  ledger_.reset();
}

// Timestamps strictly increase (SPEC §1): a record given its predecessor's
// timestamp, with the chain recomputed over it so that only the order is
// wrong, is a finding at its seq that expects a later timestamp.
TEST_F(AuditTest, ATimestampThatDoesNotIncreaseIsNamed) {
  Workload();
  ledger_.reset();
  std::string hash17;
  int64_t ts17 = 0;
  TamperLmdb(dir_ + "/log", "log", SeqKey(17), [&](std::string* v) {
    hash17 = v->substr(0, 32);
    ts17 = static_cast<int64_t>(LeU64(*v, 32 + 9));
    v->push_back('x');  // undone below: TamperLmdb needs a change
  });
  if (HasFatalFailure()) return;
  TamperLmdb(dir_ + "/log", "log", SeqKey(17), [](std::string* v) { v->pop_back(); });
  TamperLmdb(dir_ + "/log", "log", SeqKey(18), [&](std::string* v) {
    SetLeU64(v, 32 + 9, static_cast<uint64_t>(ts17));
    const Digest d = Sha256({hash17, std::string_view(*v).substr(32)});
    std::memcpy(v->data(), d.data(), 32);
  });
  if (HasFatalFailure()) return;
  OpenReadOnly();
  const AuditReport r = MustAudit();
  EXPECT_EQ(r.first_bad_seq, 18u) << DescribeAudit(r);
  ASSERT_EQ(r.discrepancies.size(), 1u) << DescribeAudit(r);
  EXPECT_EQ(r.discrepancies[0].expected, StrCat("timestamp: > ", ts17)) << DescribeAudit(r);
  ledger_.reset();
}

// The chain check compares all 32 bytes of a stored hash, not a prefix
// (found by mutation testing, session 21: only the first 16 were).
TEST_F(AuditTest, TheWholeStoredHashIsChecked) {
  Workload();
  ledger_.reset();
  TamperLmdb(dir_ + "/log", "log", SeqKey(9), [](std::string* v) { (*v)[20] = static_cast<char>((*v)[20] ^ 1); });
  if (HasFatalFailure()) return;
  OpenReadOnly();
  const std::vector<Discrepancy> chain = MustVerifyChain();
  ASSERT_FALSE(chain.empty());
  EXPECT_EQ(chain[0].what, "chain");
  EXPECT_EQ(chain[0].seq, 9u);
  ledger_.reset();
}

// An account missing from the stored state is found even when its postings
// net to zero, which no program sum shows (found by mutation testing,
// session 21).
TEST_F(AuditTest, AMissingAccountWhosePostingsNetToZeroIsNamed) {
  Workload();
  MustApply({Earn("acme", "dave", 10, "d1"), Redeem("acme", "dave", 10, "d2")});
  ledger_.reset();
  DeleteLmdb(dir_ + "/state", "accounts", IdKey(MemberAccountId("acme", "dave")));
  if (HasFatalFailure()) return;
  OpenReadOnly();
  const std::vector<Discrepancy> books = MustTrialBalance();
  EXPECT_FALSE(books.empty());
  const AuditReport r = MustAudit();
  EXPECT_GT(r.discrepancy_count, 0u) << DescribeAudit(r);
  EXPECT_TRUE(HasFinding(r.discrepancies, "balance", IdToHex(MemberAccountId("acme", "dave"))))
      << DescribeAudit(r);
  ledger_.reset();
}

// A checkpointed balance changed under a transaction still in the log past
// the checkpoint, whose outcome depends on it (a close forfeits the whole
// balance): its replay decides differently, and that is found at its seq,
// not carried on silently (found by mutation testing, session 21: the
// replay's hash check could go and no test failed).
TEST_F(AuditTest, AReplayThatDecidesDifferentlyIsNamedAtItsSeq) {
  Workload();
  ledger_.reset();  // checkpoint at seq 18
  OpenWithoutCheckpoints();
  const Result close = Apply1(AccountClose("acme", "bob", "close-bob"));
  ASSERT_EQ(close.code, Code::kOk);
  ledger_.reset();  // no checkpoint: the close is only in the log
  TamperLmdb(dir_ + "/state", "accounts", IdKey(MemberAccountId("acme", "bob")),
             [](std::string* v) { SetLeU64(v, 10, LeU64(*v, 10) + 5); });  // credits_posted
  if (HasFatalFailure()) return;
  OpenReadOnly();  // a reader replays the tail only to serve a scan
  if (HasFatalFailure()) return;
  const AuditReport r = MustAudit();
  EXPECT_EQ(r.first_bad_seq, close.seq) << DescribeAudit(r);
  EXPECT_TRUE(HasFinding(r.discrepancies, "replay", StrCat("seq ", close.seq))) << DescribeAudit(r);
  ledger_.reset();
}

// ===========================================================================
// 3. GetRecords.

using RecordsTest = FinanceTest;

TEST_F(RecordsTest, PagesYieldEverySeqOnceInOrder) {
  // seq 1 acme, seq 2 beta, then 3..40: every third (i % 3 == 0) is beta's.
  std::vector<Transaction> batch = {ProgramCreate("acme"), ProgramCreate("beta")};
  std::set<uint64_t> beta_seqs = {2};
  for (uint64_t seq = 3; seq <= 40; ++seq) {
    const std::string key = "k" + std::to_string(seq);
    if (seq % 3 == 0) {
      batch.push_back(seq % 2 == 0 ? Redeem("beta", "ghost", 1, key)  // recorded rejection
                                   : Earn("beta", "bob", seq, key));
      beta_seqs.insert(seq);
    } else {
      batch.push_back(Earn("acme", "alice", seq, key));
    }
  }
  const std::vector<Result> results = Apply(batch);
  for (size_t i = 0; i < results.size(); ++i) ASSERT_EQ(results[i].seq, i + 1);

  for (uint32_t limit : {1u, 3u, 7u, 40u, 41u}) {
    SCOPED_TRACE("limit " + std::to_string(limit));
    std::vector<uint64_t> seen;
    uint64_t next = 0;  // 0 is read as 1
    int pages = 0;
    for (;;) {
      const RecordsPage page = MustRecords(next, limit, "");
      EXPECT_EQ(page.head_seq, 40u);
      EXPECT_LE(page.records.size(), limit);
      for (const TxRecord& rec : page.records) seen.push_back(rec.seq);
      ASSERT_GT(page.next_seq, next);
      next = page.next_seq;
      if (next > page.head_seq) break;
      ASSERT_LT(++pages, 100);
    }
    ASSERT_EQ(seen.size(), 40u);
    for (size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], i + 1);
  }

  // The records are the stored ones.
  const RecordsPage one = MustRecords(4, 1, "");
  ASSERT_EQ(one.records.size(), 1u);
  EXPECT_EQ(one.records[0].tx, Earn("acme", "alice", 4, "k4"));
  EXPECT_EQ(one.records[0].timestamp_ns, results[3].timestamp_ns);
  EXPECT_EQ(one.next_seq, 5u);
  absl::StatusOr<std::optional<TxRecord>> by_seq = ledger_->GetTransactionBySeq(4);
  ASSERT_TRUE(by_seq.ok() && by_seq->has_value());
  EXPECT_EQ(one.records[0].hash, (*by_seq)->hash);

  // Only beta's, in pages of 2.
  std::vector<uint64_t> beta;
  uint64_t next = 1;
  for (int pages = 0; next <= 40; ++pages) {
    ASSERT_LT(pages, 100);
    const RecordsPage page = MustRecords(next, 2, "beta");
    for (const TxRecord& rec : page.records) {
      EXPECT_EQ(rec.tx.program, "beta");
      beta.push_back(rec.seq);
    }
    ASSERT_GT(page.next_seq, next);
    next = page.next_seq;
  }
  EXPECT_EQ(beta, std::vector<uint64_t>(beta_seqs.begin(), beta_seqs.end()));

  // Past the head: nothing, and next_seq says so.
  const RecordsPage past = MustRecords(41, 10, "");
  EXPECT_TRUE(past.records.empty());
  EXPECT_GT(past.next_seq, past.head_seq);
  // No such program: nothing, and it still ends.
  const RecordsPage none = MustRecords(1, 10, "nosuch");
  EXPECT_TRUE(none.records.empty());
  EXPECT_EQ(none.next_seq, 41u);
}

// More than kRecordsScanMax records: a filtered page stops scanning there,
// and a page never holds more than kRecordsPageMax records.
class BigRecordsTest : public FinanceTest {
 protected:
  uint64_t MapSizeBytes() const override { return uint64_t{1} << 30; }
};

TEST_F(BigRecordsTest, AFilteredPageStopsAfterTheScanLimitAndLimitsAreCapped) {
  // seq 1 acme, 2 beta, 3 beta earn, 4 .. 100,003 acme (recorded
  // rejections: cheap), 100,004 beta earn.
  MustApply({ProgramCreate("acme"), ProgramCreate("beta"), Earn("beta", "bob", 1, "b1")});
  const uint64_t filler = kRecordsScanMax;
  std::vector<Transaction> batch;
  for (uint64_t i = 0; i < filler; ++i) {
    batch.push_back(Redeem("acme", "ghost", 1, "g" + std::to_string(i)));
    if (batch.size() == kBatchTransactionsMax || i + 1 == filler) {
      Apply(batch);
      batch.clear();
    }
  }
  MustApply({Earn("beta", "bob", 2, "b2")});
  const uint64_t head = 3 + filler + 1;
  ASSERT_EQ(MustHead().seq, head);

  // Page 1 scans seq 1 .. 100,000 (kRecordsScanMax records) and finds 2, 3.
  RecordsPage page = MustRecords(1, 10, "beta");
  ASSERT_EQ(page.records.size(), 2u);
  EXPECT_EQ(page.records[0].seq, 2u);
  EXPECT_EQ(page.records[1].seq, 3u);
  EXPECT_EQ(page.next_seq, 1 + kRecordsScanMax);
  EXPECT_LE(page.next_seq, page.head_seq);  // not done
  // Page 2 scans the rest and finds 100,004; then it is done.
  page = MustRecords(page.next_seq, 10, "beta");
  ASSERT_EQ(page.records.size(), 1u);
  EXPECT_EQ(page.records[0].seq, head);
  EXPECT_GT(page.next_seq, head);

  // A limit above kRecordsPageMax is capped.
  page = MustRecords(1, kRecordsPageMax + 500, "");
  ASSERT_EQ(page.records.size(), kRecordsPageMax);
  EXPECT_EQ(page.records.front().seq, 1u);
  EXPECT_EQ(page.records.back().seq, kRecordsPageMax);
  EXPECT_EQ(page.next_seq, kRecordsPageMax + 1);
  page = MustRecords(5, std::numeric_limits<uint32_t>::max(), "acme");
  ASSERT_EQ(page.records.size(), kRecordsPageMax);
  EXPECT_EQ(page.records.front().seq, 5u);  // seq 4 .. 100,003 are all acme's
  EXPECT_EQ(page.next_seq, 5 + kRecordsPageMax);
}

// ===========================================================================
// 4. Settlement statements across a price change.

class StatementTest : public FinanceTest {
 protected:
  static constexpr int64_t D = kDayNs;
  static constexpr int64_t T0 = kStartNs;

  static Transaction AtHotel(Transaction t) {
    t.partner = "hotelco";
    return t;
  }
};

TEST_F(StatementTest, EachFlowIsPricedAtItsTimeAndAClosedPeriodNeverChanges) {
  // hotelco: earn 9,000 / redeem 7,000 micros a point until T0+5D, then
  // 9,500 / 6,500 (a future price, set on day 0).
  clock_.Set(T0);
  MustApply({ProgramCreate("acme"), PartnerCreate("acme", "hotelco", 9000, 7000),
             PartnerPrice("acme", "hotelco", 9500, 6500, T0 + 5 * D, "price-2"),
             Earn("acme", "erin", 1000, "not-at-partner")});
  clock_.Set(T0 + 1 * D);
  MustApply({AtHotel(Earn("acme", "alice", 100, "pe-a")),   // +100 @ 9000
             AtHotel(Redeem("acme", "alice", 30, "pr-a")),  // +30 @ 7000
             Redeem("acme", "erin", 100, "not-at-partner-r")});
  clock_.Set(T0 + 3 * D);
  const std::vector<Result> day3 =
      Apply({AtHotel(Earn("acme", "bob", 200, "pe-b")),  // +200 @ 9000
             Reverse("acme", "pe-a", 20, "rv-pe-a")});   // -20 earned @ 9000
  ASSERT_EQ(day3[1].code, Code::kOk);
  clock_.Set(T0 + 5 * D);  // exactly when the new price starts
  const Result at_change = Apply1(AtHotel(Earn("acme", "dave", 10, "pe-d")));  // +10 @ 9500
  ASSERT_EQ(at_change.timestamp_ns, T0 + 5 * D);
  clock_.Set(T0 + 6 * D);
  const std::vector<Result> day6 =
      Apply({AtHotel(Earn("acme", "carol", 50, "pe-c")),  // +50 @ 9500
             AtHotel(Redeem("acme", "bob", 40, "pr-b")),  // +40 @ 6500
             Reverse("acme", "pr-a", 10, "rv-pr-a")});    // -10 redeemed @ 7000 (pr-a's price)
  for (const Result& r : day6) ASSERT_EQ(r.code, Code::kOk);

  // The whole of it, [T0, T0+10D):
  //   earned   100 + 200 - 20 + 10 + 50 = 340
  //   partner  100*9000 + 200*9000 - 20*9000 + 10*9500 + 50*9500
  //          = 900,000 + 1,800,000 - 180,000 + 95,000 + 475,000 = 3,090,000
  //   redeemed 30 + 40 - 10 = 60
  //   program  30*7000 + 40*6500 - 10*7000 = 210,000 + 260,000 - 70,000 = 400,000
  //   net      3,090,000 - 400,000 = 2,690,000, the partner pays.
  Statement s = MustStatement(T0, T0 + 10 * D);
  EXPECT_EQ(s.earned_points, 340);
  EXPECT_EQ(s.partner_owes_micros, 3'090'000);
  EXPECT_EQ(s.redeemed_points, 60);
  EXPECT_EQ(s.program_owes_micros, 400'000);
  EXPECT_EQ(s.net_micros, 2'690'000);
  EXPECT_EQ(s.payer, "partner");
  EXPECT_EQ(s.from_ns, T0);
  EXPECT_EQ(s.to_ns, T0 + 10 * D);

  // Before the change, [T0, T0+5D): 280 earned -> 2,520,000; 30 redeemed ->
  // 210,000; net 2,310,000.
  const Statement before = MustStatement(T0, T0 + 5 * D);
  EXPECT_EQ(before.earned_points, 280);
  EXPECT_EQ(before.partner_owes_micros, 2'520'000);
  EXPECT_EQ(before.redeemed_points, 30);
  EXPECT_EQ(before.program_owes_micros, 210'000);
  EXPECT_EQ(before.net_micros, 2'310'000);
  // From the change, [T0+5D, T0+10D): earned 10 + 50 = 60 -> 570,000;
  // redeemed 40 at 6,500 less 10 at 7,000 -> 190,000; net 380,000.
  const Statement after = MustStatement(T0 + 5 * D, T0 + 10 * D);
  EXPECT_EQ(after.earned_points, 60);
  EXPECT_EQ(after.partner_owes_micros, 570'000);
  EXPECT_EQ(after.redeemed_points, 30);
  EXPECT_EQ(after.program_owes_micros, 190'000);
  EXPECT_EQ(after.net_micros, 380'000);
  // Bounds: [ts of pe-b, ts of pe-c) holds pe-b, rv-pe-a and pe-d only:
  // 200*9000 - 20*9000 + 10*9500 = 1,715,000.
  const Statement slice = MustStatement(day3[0].timestamp_ns, day6[0].timestamp_ns);
  EXPECT_EQ(slice.earned_points, 190);
  EXPECT_EQ(slice.partner_owes_micros, 1'715'000);
  EXPECT_EQ(slice.redeemed_points, 0);
  EXPECT_EQ(slice.payer, "partner");
  // A period with redeems only, [ts of pr-b, T0+7D): 40 at 6,500 less 10
  // at 7,000 -> 190,000 owed by the program.
  const Statement program_pays = MustStatement(day6[1].timestamp_ns, T0 + 7 * D);
  EXPECT_EQ(program_pays.net_micros, -190'000);
  EXPECT_EQ(program_pays.payer, "program");

  // Close [0, T0+5D) on day 7 (the first period starts at 0).
  clock_.Set(T0 + 7 * D);
  const Result settle1 = Apply1(Settle("acme", "hotelco", T0 + 5 * D, "settle-1"));
  ASSERT_EQ(settle1.code, Code::kOk);
  absl::StatusOr<std::optional<TxRecord>> rec =
      ledger_->GetTransaction(TxIdFromKey("acme", "settle-1"));
  ASSERT_TRUE(rec.ok() && rec->has_value());
  // issuance -> partner 280 (earned), partner -> redemption 30 (redeemed).
  ASSERT_EQ((*rec)->postings.size(), 2u);
  EXPECT_EQ((*rec)->postings[0], (Posting{SystemAccountId("acme", "issuance"),
                                          PartnerAccountId("acme", "hotelco"), 280}));
  EXPECT_EQ((*rec)->postings[1], (Posting{PartnerAccountId("acme", "hotelco"),
                                          SystemAccountId("acme", "redemption"), 30}));
  // The statement it recorded reads back with it (found in review, session
  // 17: it was in the chain but no read returned it): the period [0, T0+5D).
  ASSERT_TRUE((*rec)->statement.has_value());
  EXPECT_EQ(*(*rec)->statement, MustStatement(0, T0 + 5 * D));
  EXPECT_EQ((*rec)->statement->earned_points, 280);
  EXPECT_EQ((*rec)->statement->redeemed_points, 30);
  EXPECT_FALSE(ledger_->GetTransaction(TxIdFromKey("acme", "pe-a")).value()->statement.has_value());

  // More flows after the close (day 8, at the new price).
  clock_.Set(T0 + 8 * D);
  MustApply({AtHotel(Earn("acme", "frank", 70, "pe-f")),     // +70 @ 9500
             AtHotel(Redeem("acme", "carol", 5, "pr-c"))});  // +5 @ 6500
  // The closed period prints as before, to the byte.
  EXPECT_EQ(MustStatement(T0, T0 + 5 * D), before);
  Statement closed = MustStatement(0, T0 + 5 * D);
  closed.from_ns = T0;
  EXPECT_EQ(closed, before);

  // The next close starts where the last ended: [T0+5D, day 9).
  //   earned 10 + 50 + 70 = 130; redeemed 40 - 10 + 5 = 35.
  clock_.Set(T0 + 9 * D);
  const Result settle2 = Apply1(Settle("acme", "hotelco", 0, "settle-2"));
  ASSERT_EQ(settle2.code, Code::kOk);
  rec = ledger_->GetTransaction(TxIdFromKey("acme", "settle-2"));
  ASSERT_TRUE(rec.ok() && rec->has_value());
  ASSERT_EQ((*rec)->postings.size(), 2u);
  EXPECT_EQ((*rec)->postings[0].points, 130u);
  EXPECT_EQ((*rec)->postings[1].points, 35u);
  //   partner 95,000 + 475,000 + 70*9500 (665,000) = 1,235,000
  //   program 260,000 - 70,000 + 5*6500 (32,500)    =   222,500
  const Statement second = MustStatement(T0 + 5 * D, settle2.timestamp_ns);
  EXPECT_EQ(second.earned_points, 130);
  EXPECT_EQ(second.partner_owes_micros, 1'235'000);
  EXPECT_EQ(second.redeemed_points, 35);
  EXPECT_EQ(second.program_owes_micros, 222'500);
  EXPECT_EQ(second.net_micros, 1'012'500);
  // A settle with nothing new moves nothing.
  clock_.Set(T0 + 9 * D + 1000);
  const Result settle3 = Apply1(Settle("acme", "hotelco", 0, "settle-3"));
  ASSERT_EQ(settle3.code, Code::kOk);
  rec = ledger_->GetTransaction(TxIdFromKey("acme", "settle-3"));
  ASSERT_TRUE(rec.ok() && rec->has_value());
  for (const Posting& p : (*rec)->postings) EXPECT_EQ(p.points, 0u);

  // Everything is settled: the clearing account nets to zero.
  //   debits : earns at the partner 100+200+10+50+70 = 430, reversed
  //            redeem 10, settled redeems 30 + 35           -> 505
  //   credits: reversed earn 20, redeems 30+40+5 = 75,
  //            settled earns 280 + 130                      -> 505
  const AccountInfo clearing = MustPartnerAccount("acme", "hotelco");
  EXPECT_EQ(clearing.debits_posted, 505u);
  EXPECT_EQ(clearing.credits_posted, 505u);
}

// docs/semantics.md: a reversal is a flow of its own, priced at the price in
// effect at the reversal's time, not at the original's.
// A reversal refunds at the original flow's price (record format 2): a
// price change between the two used to leave money owed on points that
// net to zero (found in review, session 16).
TEST_F(StatementTest, AReversalIsPricedAsTheFlowItReverses) {
  clock_.Set(T0);
  MustApply({ProgramCreate("acme"), PartnerCreate("acme", "hotelco", 9000, 7000),
             PartnerPrice("acme", "hotelco", 9500, 6500, T0 + 5 * D, "price-2"),
             AtHotel(Earn("acme", "alice", 100, "pe-a")), AtHotel(Redeem("acme", "alice", 40, "pr-a"))});
  clock_.Set(T0 + 6 * D);
  MustApply({Reverse("acme", "pe-a", 60, "rv-pe-a"), Reverse("acme", "pr-a", 0, "rv-pr-a")});
  // Earned 100 - 60 at 9,000 = 360,000; redeemed 40 - 40 = 0.
  const Statement s = MustStatement(T0, T0 + 10 * D);
  EXPECT_EQ(s.earned_points, 40);
  EXPECT_EQ(s.partner_owes_micros, 360'000);
  EXPECT_EQ(s.redeemed_points, 0);
  EXPECT_EQ(s.program_owes_micros, 0);
  EXPECT_EQ(s.payer, "partner");
}

// Records keep the rules of their format (ledger.h, kRecordFormat): a
// ledger decided by format 1 (reversals priced at their own time, members
// past 2^63 - 1) replays, audits and reports as it was decided, and what
// is decided after the upgrade follows format 2.
TEST_F(StatementTest, AFormatOneLedgerReplaysByItsOwnRules) {
  record_format_ = 1;
  Reopen();
  clock_.Set(T0);
  MustApply({ProgramCreate("acme"), PartnerCreate("acme", "hotelco", 9000, 7000),
             PartnerPrice("acme", "hotelco", 9500, 6500, T0 + 5 * D, "price-2"),
             AtHotel(Earn("acme", "alice", 100, "pe-a")),
             Earn("acme", "big", kPointsMax, "big-1"), Earn("acme", "big", kPointsMax, "big-2")});
  clock_.Set(T0 + 6 * D);
  MustApply({Reverse("acme", "pe-a", 0, "rv-pe-a")});
  // Format 1: 100*9000 - 100*9500 = -50,000, and "big" holds 2^63 points.
  EXPECT_EQ(MustStatement(T0, T0 + 10 * D).partner_owes_micros, -50'000);
  EXPECT_EQ(Posted("acme", "big"), 2 * kPointsMax);

  record_format_ = kRecordFormat;
  Reopen();  // replays nothing: the close checkpointed
  EXPECT_EQ(MustStatement(T0, T0 + 10 * D).partner_owes_micros, -50'000);
  const AuditReport audit = MustAudit();  // rebuilds every record by its own rules
  EXPECT_EQ(audit.discrepancy_count, 0u) << Describe(audit.discrepancies);
  // New transactions follow format 2.
  clock_.Set(T0 + 7 * D);
  MustApply({AtHotel(Earn("acme", "carol", 10, "pe-c")), Reverse("acme", "pe-c", 0, "rv-pe-c")});
  EXPECT_EQ(MustStatement(T0 + 7 * D, T0 + 10 * D).partner_owes_micros, 0);
  EXPECT_EQ(Apply1(Earn("acme", "big", 1, "big-3")).code, Code::kOverflow);
  absl::StatusOr<std::optional<TxRecord>> old_rec = ledger_->GetTransaction(TxIdFromKey("acme", "rv-pe-a"));
  absl::StatusOr<std::optional<TxRecord>> new_rec = ledger_->GetTransaction(TxIdFromKey("acme", "rv-pe-c"));
  ASSERT_TRUE(old_rec.ok() && old_rec->has_value() && new_rec.ok() && new_rec->has_value());
  EXPECT_EQ((*old_rec)->format, 1);
  EXPECT_EQ((*new_rec)->format, kRecordFormat);
}

// A record is read by its seq only if it says that seq (ReadRecord): one
// stored under another seq (a log environment changed by hand, or keys
// mixed up by a restore) is DataLoss, never taken for the transaction that
// seq or an id names. Found by mutation testing (session 22): dropping the
// check passed.
TEST_F(AuditTest, ARecordStoredUnderAnotherSeqIsDataLoss) {
  const uint64_t e1 = Workload();
  ledger_.reset();  // a final checkpoint: the log is all in DIR/log
  TamperLmdb(dir_ + "/log", "log", SeqKey(e1), [](std::string* v) {
    SetLeU64(v, 32 + 1, LeU64(*v, 32 + 1) + 1);  // the record's own seq (after hash, format)
  });
  if (HasFatalFailure()) return;
  OpenReadOnly();
  absl::StatusOr<std::optional<TxRecord>> by_seq = ledger_->GetTransactionBySeq(e1);
  EXPECT_TRUE(absl::IsDataLoss(by_seq.status())) << by_seq.status();
  absl::StatusOr<std::optional<TxRecord>> by_id = ledger_->GetTransaction(TxIdFromKey("acme", "e1"));
  EXPECT_TRUE(absl::IsDataLoss(by_id.status())) << by_id.status();
  ledger_.reset();
}

// An effects entry past the last record: the open's replay walks the
// stored effects to the end of the log and refuses it (DataLoss). Opened
// anyway, the next transaction given that seq could never be checkpointed:
// the checkpoint appends its effects with MDB_APPEND, which finds the key
// taken, and fails (and retries) for good. Found by mutation testing
// (session 22): dropping the check after the replay loop passed.
TEST_F(AuditTest, AnEffectsEntryPastTheLastRecordIsDataLossAtOpen) {
  Workload();
  const uint64_t head = MustHead().seq;
  ledger_.reset();
  InsertEffects(dir_, head + 1);
  if (HasFatalFailure()) return;
  Options options;
  options.dir = dir_;
  options.map_size_bytes = MapSizeBytes();
  options.clock = &clock_;
  absl::StatusOr<std::unique_ptr<Ledger>> opened = Ledger::Open(options);
  ASSERT_FALSE(opened.ok()) << "opened over a stray effects entry at seq " << head + 1;
  EXPECT_TRUE(absl::IsDataLoss(opened.status())) << opened.status();
  EXPECT_NE(opened.status().message().find(std::to_string(head + 1)), std::string::npos)
      << opened.status();
}

// audit verify walks the stored effects in step with its replays too
// (docs/storage.md, "What is derived"): an entry past the last record,
// which stops the server's start (above) and every scan, is a finding, not
// a clean report. Found by mutation testing (session 22): the audit's
// replay of the stored state stopped at the head and never looked further.
TEST_F(AuditTest, AnEffectsEntryPastTheLastRecordIsNamedByAudit) {
  Workload();
  const uint64_t head = MustHead().seq;
  ledger_.reset();
  InsertEffects(dir_, head + 1);
  if (HasFatalFailure()) return;
  OpenReadOnly();
  ExpectOnlyStrayEffectsAt(MustAudit(), head + 1);
  ledger_.reset();
}

// meta/checkpoint_seq is one U64 (docs/storage.md): anything else is
// DataLoss at the open, not a checkpoint read from its first 8 bytes.
// Found by mutation testing (session 22).
TEST_F(AuditTest, AMalformedCheckpointSeqIsDataLossAtOpen) {
  Workload();
  ledger_.reset();
  TamperLmdb(dir_ + "/state", "meta", "checkpoint_seq", [](std::string* v) { v->push_back('\0'); });
  if (HasFatalFailure()) return;
  Options options;
  options.dir = dir_;
  options.map_size_bytes = MapSizeBytes();
  options.clock = &clock_;
  absl::StatusOr<std::unique_ptr<Ledger>> opened = Ledger::Open(options);
  ASSERT_FALSE(opened.ok()) << "opened over a 9-byte checkpoint_seq";
  EXPECT_TRUE(absl::IsDataLoss(opened.status())) << opened.status();
}

}  // namespace
}  // namespace testing
}  // namespace pointledger::ledger
