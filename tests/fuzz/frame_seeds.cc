// Writes the frame target's seed corpus (tests/fuzz/corpus/frame/) with the
// code's own encoder: each seed is what one connection sends, a Hello and
// then requests, in the keys and state of tests/fuzz/frame_harness.h.
//
//   build-fuzz/fuzz/frame_seeds tests/fuzz/corpus/frame
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "ledger/ledger.h"
#include "ledger/limits.h"
#include "net/limits.h"
#include "net/wire.h"
#include "tests/fuzz/frame_harness.h"

namespace pointledger::fuzz {
namespace {

using ledger::Kind;
using ledger::Transaction;

constexpr int64_t kDayNs = ledger::kNanosPerDay;

// One connection's bytes, frame after frame.
class Stream {
 public:
  Stream& Hello(std::string_view key) {
    const auto body = wire::CreateHelloDirect(fbb_, net::kProtocolVersion, std::string(key).c_str(),
                                              "frame_seeds");
    return Finish(0, wire::RequestBody::Hello, body.Union());
  }
  Stream& Batch(uint64_t request_id, const std::vector<Transaction>& txs) {
    std::vector<flatbuffers::Offset<wire::Transaction>> offsets;
    for (const Transaction& t : txs) offsets.push_back(net::TransactionToWire(fbb_, t));
    const auto body = wire::CreateBatch(fbb_, fbb_.CreateVector(offsets));
    return Finish(request_id, wire::RequestBody::Batch, body.Union());
  }
  Stream& Balance(uint64_t request_id, const char* program, const char* member) {
    const auto body = wire::CreateBalanceQueryDirect(fbb_, program, member);
    return Finish(request_id, wire::RequestBody::BalanceQuery, body.Union());
  }
  Stream& History(uint64_t request_id, const char* program, const char* member) {
    const auto body = wire::CreateHistoryQueryDirect(fbb_, program, member, 10, 0);
    return Finish(request_id, wire::RequestBody::HistoryQuery, body.Union());
  }
  Stream& TxQuery(uint64_t request_id, const char* program, const char* key) {
    const wire::Id128 id = net::IdToWire(ledger::TxIdFromKey(program, key));
    const auto body = wire::CreateTxQuery(fbb_, fbb_.CreateString(program), &id);
    return Finish(request_id, wire::RequestBody::TxQuery, body.Union());
  }
  Stream& Head(uint64_t request_id) {
    return Finish(request_id, wire::RequestBody::HeadQuery, wire::CreateHeadQuery(fbb_).Union());
  }
  Stream& Statement(uint64_t request_id) {
    const auto body = wire::CreateStatementQueryDirect(fbb_, "acme", "hotelco", kFuzzStartNs,
                                                       kFuzzStartNs + 400 * kDayNs);
    return Finish(request_id, wire::RequestBody::StatementQuery, body.Union());
  }
  Stream& CollectDue(uint64_t request_id) {
    const auto body = wire::CreateCollectDueQuery(fbb_, 0, 100);
    return Finish(request_id, wire::RequestBody::CollectDueQuery, body.Union());
  }
  Stream& Stats(uint64_t request_id) {
    return Finish(request_id, wire::RequestBody::StatsQuery, wire::CreateStatsQuery(fbb_).Union());
  }

  bool Write(const std::string& path) const {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes_.data()), static_cast<std::streamsize>(bytes_.size()));
    return out.good();
  }

 private:
  Stream& Finish(uint64_t request_id, wire::RequestBody type, flatbuffers::Offset<void> body) {
    net::FinishRequest(fbb_, request_id, type, body);
    bytes_.insert(bytes_.end(), fbb_.GetBufferPointer(), fbb_.GetBufferPointer() + fbb_.GetSize());
    fbb_.Clear();
    return *this;
  }

  flatbuffers::FlatBufferBuilder fbb_;
  std::vector<uint8_t> bytes_;
};

Transaction Tx(Kind kind, const char* program, const char* key) {
  Transaction t;
  t.kind = kind;
  t.program = program;
  t.id = ledger::TxIdFromKey(program, key);
  return t;
}

Transaction Points(Kind kind, const char* program, const char* member, uint64_t points,
                   const char* key) {
  Transaction t = Tx(kind, program, key);
  t.member = member;
  t.points = points;
  return t;
}

std::vector<Transaction> EveryKind() {
  std::vector<Transaction> txs;
  Transaction program = Tx(Kind::kProgramCreate, "gamma", "program-create");
  program.currency = "EUR";
  program.point_value_micros = 1000;
  program.expiry_days = 30;
  program.lock_days = 1;
  txs.push_back(program);
  Transaction partner = Tx(Kind::kPartnerCreate, "gamma", "partner-create");
  partner.partner = "airline";
  partner.earn_price_micros = 8000;
  partner.redeem_price_micros = 6000;
  txs.push_back(partner);
  Transaction price = Tx(Kind::kPartnerPrice, "acme", "price-1");
  price.partner = "hotelco";
  price.earn_price_micros = 9500;
  price.redeem_price_micros = 7500;
  price.time_ns = kFuzzStartNs + kDayNs;
  txs.push_back(price);
  Transaction at_partner = Points(Kind::kEarn, "acme", "carol", 300, "earn-carol");
  at_partner.partner = "hotelco";
  at_partner.order_ref = "order-1";
  txs.push_back(at_partner);
  Transaction referral = Points(Kind::kReferral, "acme", "alice", 50, "ref-dave");
  referral.member2 = "dave";
  referral.points2 = 25;
  txs.push_back(referral);
  Transaction transfer = Points(Kind::kTransfer, "acme", "bob", 10, "gift-1");
  transfer.member2 = "carol";
  txs.push_back(transfer);
  Transaction adjust = Tx(Kind::kAdjust, "acme", "adj-1");
  adjust.member = "bob";
  adjust.delta = -20;
  adjust.reason = "service recovery";
  txs.push_back(adjust);
  Transaction reverse = Tx(Kind::kReverse, "acme", "refund-1");
  reverse.ref = ledger::TxIdFromKey("acme", "earn-bob");
  reverse.points = 60;
  reverse.clawback_partial = true;
  txs.push_back(reverse);
  Transaction hold = Points(Kind::kHold, "acme", "bob", 40, "hold-2");
  hold.timeout_s = 60;
  txs.push_back(hold);
  Transaction capture = Tx(Kind::kCapture, "acme", "cap-2");
  capture.ref = ledger::TxIdFromKey("acme", "hold-2");
  capture.points = 30;
  txs.push_back(capture);
  Transaction release = Tx(Kind::kRelease, "acme", "rel-1");
  release.ref = ledger::TxIdFromKey("acme", "hold-1");
  txs.push_back(release);
  Transaction redeem = Points(Kind::kRedeem, "acme", "carol", 100, "redeem-carol");
  redeem.partner = "hotelco";
  txs.push_back(redeem);
  Transaction close = Tx(Kind::kAccountClose, "acme", "close-dave");
  close.member = "dave";
  txs.push_back(close);
  return txs;
}

int WriteAll(const std::string& dir) {
  bool ok = true;
  auto write = [&](const char* name, const Stream& s) { ok = s.Write(dir + "/" + name) && ok; };

  write("hello_only", Stream().Hello(kAdminKey));
  write("hello_unknown_key", Stream().Hello("not-a-key").Head(1));
  write("earn_redeem", Stream().Hello(kAdminKey).Batch(
                           1, {Points(Kind::kEarn, "acme", "alice", 120, "order-1001"),
                               Points(Kind::kRedeem, "acme", "alice", 50, "reward-77")}));
  {
    // Three days on (a request id moves the clock by as many seconds), the
    // settlement of the first two.
    Transaction settle = Tx(Kind::kSettle, "acme", "settle-1");
    settle.partner = "hotelco";
    settle.time_ns = kFuzzStartNs + 2 * kDayNs;
    write("every_kind", Stream().Hello(kAdminKey).Batch(1, EveryKind()).Stats(2)
                            .Batch(3 * 86400, {settle}).Statement(4));
  }
  {
    // A chain across programs (a conversion), then the same batch again:
    // duplicates, and an id_conflict for the changed amount.
    Transaction out = Points(Kind::kRedeem, "acme", "alice", 200, "convert-out");
    out.linked = true;
    Transaction in = Points(Kind::kEarn, "beta", "alice", 100, "convert-in");
    Transaction conflict = Points(Kind::kRedeem, "acme", "alice", 201, "convert-out");
    write("linked_duplicate", Stream().Hello(kAdminKey).Batch(1, {out, in}).Batch(2, {out, in})
                                  .Batch(3, {conflict}));
  }
  {
    Transaction open = Points(Kind::kEarn, "acme", "alice", 5, "open-chain");
    open.linked = true;
    write("post_key", Stream().Hello(kPostKey)
                          .Batch(1, {Points(Kind::kEarn, "acme", "erin", 10, "erin-1"),
                                     Points(Kind::kEarn, "beta", "erin", 10, "erin-2")})
                          .Batch(2, {open}));
  }
  write("reads", Stream().Hello(kReadKey).Balance(1, "acme", "alice").History(2, "acme", "alice")
                     .TxQuery(3, "acme", "earn-alice").Head(4).Statement(5).Stats(6)
                     .Batch(7, {Points(Kind::kEarn, "acme", "alice", 1, "denied")}));
  {
    // Lots that expire and a hold that times out, then a day later the sweep.
    Transaction soon = Points(Kind::kEarn, "acme", "frank", 70, "earn-frank");
    soon.time_ns = kFuzzStartNs + 3600 * ledger::kNanosPerSecond;
    Transaction hold = Points(Kind::kHold, "acme", "frank", 20, "hold-frank");
    hold.timeout_s = 30;
    write("expire_sweep", Stream().Hello(kAdminKey).Batch(1, {soon, hold})
                              .CollectDue(86400).Balance(2, "acme", "frank").History(3, "acme", "frank"));
  }
  if (!ok) std::fprintf(stderr, "frame_seeds: cannot write into %s\n", dir.c_str());
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace pointledger::fuzz

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: frame_seeds DIR\n");
    return 2;
  }
  return pointledger::fuzz::WriteAll(argv[1]);
}
