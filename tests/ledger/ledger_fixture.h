// Shared by the ledger engine tests: a fresh LMDB directory per test, a fake
// clock the test moves by hand, transaction builders and small read helpers.
// Everything goes through the public API in ledger/ledger.h only, so these
// tests keep guarding the engine while its storage is rewritten.
#ifndef POINTLEDGER_TESTS_LEDGER_LEDGER_FIXTURE_H_
#define POINTLEDGER_TESTS_LEDGER_LEDGER_FIXTURE_H_

#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "ledger/ledger.h"
#include "ledger/limits.h"

namespace pointledger::ledger::testing {

// 2026-01-01T00:00:00Z: far from 0 so that "expiry at 0" cannot pass by luck.
inline constexpr int64_t kStartNs = int64_t{1'767'225'600} * kNanosPerSecond;
inline constexpr int64_t kDayNs = kNanosPerDay;
inline constexpr int64_t kNeverNs = INT64_MAX;

// Time stands still until the test moves it; the engine adds 1 ns per
// transaction on its own, so timestamps stay strictly increasing.
class FakeClock final : public Clock {
 public:
  int64_t NowNs() override { return now_ns_; }
  void Set(int64_t now_ns) { now_ns_ = now_ns; }
  void Advance(int64_t delta_ns) { now_ns_ += delta_ns; }

 private:
  int64_t now_ns_ = kStartNs;
};

// ---------------------------------------------------------------------------
// Transaction builders. Ids derive from (program, key) like the CLI's --id.

inline Transaction Tx(Kind kind, const std::string& program, const std::string& key) {
  Transaction t;
  t.id = TxIdFromKey(program, key);
  t.kind = kind;
  t.program = program;
  return t;
}

inline Transaction ProgramCreate(const std::string& program, uint32_t expiry_days = 365,
                                 int32_t lock_days = 0, bool auto_open = true) {
  Transaction t = Tx(Kind::kProgramCreate, program, "program-create");
  t.currency = "USD";
  t.point_value_micros = 5000;
  t.expiry_days = expiry_days;
  t.lock_days = lock_days;
  t.auto_open = auto_open;
  return t;
}

inline Transaction PartnerCreate(const std::string& program, const std::string& partner,
                                 uint64_t earn_price_micros, uint64_t redeem_price_micros) {
  Transaction t = Tx(Kind::kPartnerCreate, program, "partner-create-" + partner);
  t.partner = partner;
  t.earn_price_micros = earn_price_micros;
  t.redeem_price_micros = redeem_price_micros;
  return t;
}

inline Transaction PartnerPrice(const std::string& program, const std::string& partner,
                                uint64_t earn_price_micros, uint64_t redeem_price_micros,
                                int64_t from_ns, const std::string& key) {
  Transaction t = Tx(Kind::kPartnerPrice, program, key);
  t.partner = partner;
  t.earn_price_micros = earn_price_micros;
  t.redeem_price_micros = redeem_price_micros;
  t.time_ns = from_ns;
  return t;
}

inline Transaction Earn(const std::string& program, const std::string& member, uint64_t points,
                        const std::string& key) {
  Transaction t = Tx(Kind::kEarn, program, key);
  t.member = member;
  t.points = points;
  return t;
}

inline Transaction EarnExpiring(const std::string& program, const std::string& member,
                                uint64_t points, int64_t expires_at_ns, const std::string& key) {
  Transaction t = Earn(program, member, points, key);
  t.time_ns = expires_at_ns;
  return t;
}

inline Transaction Redeem(const std::string& program, const std::string& member, uint64_t points,
                          const std::string& key) {
  Transaction t = Tx(Kind::kRedeem, program, key);
  t.member = member;
  t.points = points;
  return t;
}

inline Transaction Referral(const std::string& program, const std::string& referrer,
                            const std::string& referee, uint64_t referrer_points,
                            uint64_t referee_points, const std::string& key) {
  Transaction t = Tx(Kind::kReferral, program, key);
  t.member = referrer;
  t.member2 = referee;
  t.points = referrer_points;
  t.points2 = referee_points;
  return t;
}

inline Transaction Transfer(const std::string& program, const std::string& from,
                            const std::string& to, uint64_t points, const std::string& key) {
  Transaction t = Tx(Kind::kTransfer, program, key);
  t.member = from;
  t.member2 = to;
  t.points = points;
  return t;
}

inline Transaction Adjust(const std::string& program, const std::string& member, int64_t delta,
                          const std::string& key) {
  Transaction t = Tx(Kind::kAdjust, program, key);
  t.member = member;
  t.delta = delta;
  t.reason = "service recovery";
  return t;
}

// `original_key` is the key the original's id was derived from.
inline Transaction Reverse(const std::string& program, const std::string& original_key,
                           uint64_t points, const std::string& key) {
  Transaction t = Tx(Kind::kReverse, program, key);
  t.ref = TxIdFromKey(program, original_key);
  t.points = points;
  return t;
}

inline Transaction Hold(const std::string& program, const std::string& member, uint64_t points,
                        uint32_t timeout_s, const std::string& key) {
  Transaction t = Tx(Kind::kHold, program, key);
  t.member = member;
  t.points = points;
  t.timeout_s = timeout_s;
  return t;
}

inline Transaction Capture(const std::string& program, const std::string& hold_key, uint64_t points,
                           const std::string& key) {
  Transaction t = Tx(Kind::kCapture, program, key);
  t.ref = TxIdFromKey(program, hold_key);
  t.points = points;
  return t;
}

inline Transaction Release(const std::string& program, const std::string& hold_key,
                           const std::string& key) {
  Transaction t = Tx(Kind::kRelease, program, key);
  t.ref = TxIdFromKey(program, hold_key);
  return t;
}

inline Transaction Settle(const std::string& program, const std::string& partner, int64_t to_ns,
                          const std::string& key) {
  Transaction t = Tx(Kind::kSettle, program, key);
  t.partner = partner;
  t.time_ns = to_ns;
  return t;
}

inline Transaction AccountClose(const std::string& program, const std::string& member,
                                const std::string& key) {
  Transaction t = Tx(Kind::kAccountClose, program, key);
  t.member = member;
  return t;
}

inline Transaction AccountOpen(const std::string& program, const std::string& member,
                               const std::string& key) {
  Transaction t = Tx(Kind::kAccountOpen, program, key);
  t.member = member;
  return t;
}

inline Transaction Linked(Transaction t) {
  t.linked = true;
  return t;
}

inline Auth PostOnly() {
  Auth auth;
  auth.scopes = kScopePost | kScopeRead;
  return auth;
}

// For failure messages: one line per finding.
inline std::string Describe(const std::vector<Discrepancy>& found) {
  std::string out;
  for (const Discrepancy& d : found) {
    out += d.what + " at " + d.where + ": expected " + d.expected + ", found " + d.found + "\n";
  }
  return out;
}

// ---------------------------------------------------------------------------

class LedgerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/pl_ledger_test.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    Open();
  }

  // A test that leaves a ledger behind leaves a healthy one: every rule the
  // test checks must also keep the chain and the books consistent.
  void TearDown() override {
    if (ledger_ != nullptr && !HasFatalFailure()) {
      const std::vector<Discrepancy> chain = MustVerifyChain();
      EXPECT_TRUE(chain.empty()) << Describe(chain);
      const std::vector<Discrepancy> books = MustTrialBalance();
      EXPECT_TRUE(books.empty()) << Describe(books);
    }
    ledger_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // Small by default: many tests share one disk and address space.
  virtual uint64_t MapSizeBytes() const { return uint64_t{64} << 20; }

  void Open() {
    Options options;
    options.dir = dir_;
    options.map_size_bytes = MapSizeBytes();
    options.clock = &clock_;
    options.record_format = record_format_;
    absl::StatusOr<std::unique_ptr<Ledger>> opened = Ledger::Open(options);
    ASSERT_TRUE(opened.ok()) << opened.status();
    ledger_ = *std::move(opened);
  }
  // The record format (and rules) new transactions are decided by: an
  // older one makes the ledger an older binary would have (Reopen to apply).
  uint8_t record_format_ = kRecordFormat;

  void Reopen() {
    ledger_.reset();
    Open();
  }

  std::vector<Result> Apply(const std::vector<Transaction>& batch,
                            const Auth& auth = Auth::Admin()) {
    std::vector<Result> results;
    const absl::Status status = ledger_->ApplyBatch(batch, auth, &results);
    EXPECT_TRUE(status.ok()) << status;
    EXPECT_EQ(results.size(), batch.size());
    results.resize(batch.size());  // keeps indexing safe after a failure
    return results;
  }

  Result Apply1(const Transaction& tx, const Auth& auth = Auth::Admin()) {
    return Apply({tx}, auth)[0];
  }

  // Applies and expects every result to be a fresh ok.
  void MustApply(const std::vector<Transaction>& batch) {
    const std::vector<Result> results = Apply(batch);
    for (size_t i = 0; i < results.size(); ++i) {
      EXPECT_EQ(results[i].code, Code::kOk)
          << "transaction " << i << ": " << CodeName(results[i].code);
      EXPECT_FALSE(results[i].duplicate) << "transaction " << i;
    }
  }

  std::optional<Balance> FindBalance(const std::string& program, const std::string& member) {
    absl::StatusOr<std::optional<Balance>> balance = ledger_->GetBalance(program, member);
    EXPECT_TRUE(balance.ok()) << balance.status();
    return balance.ok() ? *balance : std::nullopt;
  }

  // The member's balance; a zero Balance (and a failure) if it does not exist.
  Balance MustBalance(const std::string& program, const std::string& member) {
    std::optional<Balance> balance = FindBalance(program, member);
    EXPECT_TRUE(balance.has_value()) << program << "/" << member << " does not exist";
    return balance.value_or(Balance{});
  }

  uint64_t Available(const std::string& program, const std::string& member) {
    return MustBalance(program, member).available;
  }

  uint64_t Posted(const std::string& program, const std::string& member) {
    return MustBalance(program, member).posted;
  }

  std::optional<AccountInfo> FindAccount(const Id& id) {
    std::optional<AccountInfo> found;
    const absl::Status status = ledger_->ForEachAccount([&](const AccountInfo& info) {
      if (info.id == id) found = info;
    });
    EXPECT_TRUE(status.ok()) << status;
    return found;
  }

  AccountInfo MustSystemAccount(const std::string& program, const std::string& kind) {
    std::optional<AccountInfo> info = FindAccount(SystemAccountId(program, kind));
    EXPECT_TRUE(info.has_value()) << program << "/" << kind;
    return info.value_or(AccountInfo{});
  }

  AccountInfo MustPartnerAccount(const std::string& program, const std::string& partner) {
    std::optional<AccountInfo> info = FindAccount(PartnerAccountId(program, partner));
    EXPECT_TRUE(info.has_value()) << program << "/partner/" << partner;
    return info.value_or(AccountInfo{});
  }

  std::vector<LotInfo> MustLots(const std::string& program, const std::string& member) {
    absl::StatusOr<std::vector<LotInfo>> lots = ledger_->GetLots(MemberAccountId(program, member));
    EXPECT_TRUE(lots.ok()) << lots.status();
    return lots.ok() ? *lots : std::vector<LotInfo>();
  }

  ChainHead MustHead() {
    absl::StatusOr<ChainHead> head = ledger_->GetHead();
    EXPECT_TRUE(head.ok()) << head.status();
    return head.ok() ? *head : ChainHead{};
  }

  std::optional<TxRecord> FindTx(const std::string& program, const std::string& key) {
    absl::StatusOr<std::optional<TxRecord>> rec =
        ledger_->GetTransaction(TxIdFromKey(program, key));
    EXPECT_TRUE(rec.ok()) << rec.status();
    return rec.ok() ? *rec : std::nullopt;
  }

  // The rebuild from seq 1 agrees with the stored state.
  void ExpectAuditClean() {
    absl::StatusOr<AuditReport> audit = ledger_->Audit();
    ASSERT_TRUE(audit.ok()) << audit.status();
    EXPECT_EQ(audit->discrepancy_count, 0u) << Describe(audit->discrepancies);
  }

  std::vector<Transaction> MustCollectDue(int64_t as_of_ns) {
    absl::StatusOr<std::vector<Transaction>> due = ledger_->CollectDue(as_of_ns, 1000);
    EXPECT_TRUE(due.ok()) << due.status();
    return due.ok() ? *due : std::vector<Transaction>();
  }

  std::vector<Discrepancy> MustVerifyChain() {
    absl::StatusOr<std::vector<Discrepancy>> found = ledger_->VerifyChain();
    EXPECT_TRUE(found.ok()) << found.status();
    return found.ok() ? *found : std::vector<Discrepancy>{{"status", "", "", ""}};
  }

  std::vector<Discrepancy> MustTrialBalance() {
    absl::StatusOr<std::vector<Discrepancy>> found = ledger_->TrialBalance();
    EXPECT_TRUE(found.ok()) << found.status();
    return found.ok() ? *found : std::vector<Discrepancy>{{"status", "", "", ""}};
  }

  FakeClock clock_;
  std::string dir_;
  std::unique_ptr<Ledger> ledger_;
};

// A ledger with program "acme" (365-day expiry, no lock, auto-open) at seq 1.
class AcmeTest : public LedgerTest {
 protected:
  void SetUp() override {
    LedgerTest::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_EQ(Apply1(ProgramCreate("acme")).code, Code::kOk);
  }
};

}  // namespace pointledger::ledger::testing

#endif  // POINTLEDGER_TESTS_LEDGER_LEDGER_FIXTURE_H_
