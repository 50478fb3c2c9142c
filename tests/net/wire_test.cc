// Wire <-> ledger conversion and frame verification (no server needed).
#include <cstring>

#include "gtest/gtest.h"
#include "ledger/limits.h"
#include "net/wire.h"
#include "tests/net/test_tx.h"

namespace pointledger::net {
namespace {

// Copies a finished builder into 8-aligned storage, as the server reads it.
std::vector<uint64_t> Aligned(const flatbuffers::FlatBufferBuilder& fbb) {
  std::vector<uint64_t> storage((fbb.GetSize() + 7) / 8);
  std::memcpy(storage.data(), fbb.GetBufferPointer(), fbb.GetSize());
  return storage;
}

std::span<const uint8_t> Bytes(const std::vector<uint64_t>& storage, size_t size) {
  return std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(storage.data()), size);
}

ledger::Transaction Full() {
  ledger::Transaction t;
  t.id = ledger::TxIdFromKey("acme", "k");
  t.kind = ledger::Kind::kReverse;
  t.linked = true;
  t.program = "acme";
  t.member = "alice";
  t.member2 = "bob";
  t.partner = "hotelco";
  t.points = 1;
  t.points2 = 2;
  t.delta = -3;
  t.ref = ledger::TxIdFromKey("acme", "orig");
  t.time_ns = 123456789;
  t.lock_days = 7;
  t.timeout_s = 300;
  t.clawback_partial = true;
  t.currency = "USD";
  t.point_value_micros = 5000;
  t.expiry_days = 365;
  t.auto_open = false;
  t.earn_price_micros = 9000;
  t.redeem_price_micros = 7000;
  t.lot_seq = 11;
  t.lot_index = 2;
  t.order_ref = "o";
  t.reason = "r";
  t.metadata = std::string("\0\1\2", 3);
  return t;
}

TEST(Wire, TransactionRoundTripsEveryField) {
  for (const ledger::Transaction& in : {Full(), ledger::Transaction{}}) {
    flatbuffers::FlatBufferBuilder fbb;
    std::vector<flatbuffers::Offset<wire::Transaction>> txs = {TransactionToWire(fbb, in)};
    const auto batch = wire::CreateBatch(fbb, fbb.CreateVector(txs));
    FinishRequest(fbb, 7, wire::RequestBody::Batch, batch.Union());
    const auto storage = Aligned(fbb);
    absl::StatusOr<const wire::Request*> r = VerifyRequestFrame(Bytes(storage, fbb.GetSize()));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ((*r)->request_id(), 7u);
    ledger::Transaction out = Full();  // reused objects are reset field by field
    out.kind = ledger::Kind::kEarn;
    ASSERT_TRUE(TransactionFromWire(*(*r)->body_as_Batch()->transactions()->Get(0), &out).ok());
    EXPECT_EQ(out, in);
  }
}

// Every string field of every transaction may point at one long string
// (the Verifier allows shared offsets): each is copied only up to one byte
// past its limit, which is still field_too_long for the ledger (found by a
// hostile-client review, session 19: a 49 KB frame cost gigabytes).
TEST(Wire, AnOverlongSharedStringIsCopiedOnlyPastItsLimit) {
  flatbuffers::FlatBufferBuilder fbb;
  const auto big = fbb.CreateString(std::string(100'000, 'a'));
  std::vector<flatbuffers::Offset<wire::Transaction>> txs;
  for (int i = 0; i < 100; ++i) {
    txs.push_back(testing::EarnWithEveryStringField(fbb, "k", big));
  }
  const auto batch = wire::CreateBatch(fbb, fbb.CreateVector(txs));
  FinishRequest(fbb, 7, wire::RequestBody::Batch, batch.Union());
  ASSERT_LT(fbb.GetSize(), 120'000u);
  const auto storage = Aligned(fbb);
  absl::StatusOr<const wire::Request*> r = VerifyRequestFrame(Bytes(storage, fbb.GetSize()));
  ASSERT_TRUE(r.ok()) << r.status();
  size_t copied = 0;
  for (const wire::Transaction* in : *(*r)->body_as_Batch()->transactions()) {
    ledger::Transaction out;
    ASSERT_TRUE(TransactionFromWire(*in, &out).ok());
    EXPECT_EQ(out.program.size(), ledger::kNameBytesMax + 1);
    EXPECT_EQ(out.member.size(), ledger::kMemberKeyBytesMax + 1);
    EXPECT_EQ(out.metadata.size(), ledger::kMetadataBytesMax + 1);
    EXPECT_EQ(out.currency.size(), ledger::kCurrencyBytes + 1);
    copied += out.program.size() + out.member.size() + out.member2.size() + out.partner.size() +
              out.currency.size() + out.order_ref.size() + out.reason.size() + out.metadata.size();
  }
  EXPECT_LT(copied, 100u * 1024);  // not 100 × 8 × 100,000 bytes
}

TEST(Wire, RejectsUnknownKindsAndMissingKinds) {
  flatbuffers::FlatBufferBuilder fbb;
  const auto t0 = wire::CreateTransaction(fbb, nullptr, static_cast<wire::Kind>(ledger::kKindMax + 1));
  const auto t1 = wire::CreateTransaction(fbb, nullptr, flatbuffers::nullopt);
  const auto t2 = wire::CreateTransaction(fbb, nullptr, static_cast<wire::Kind>(0));
  fbb.Finish(wire::CreateBatch(fbb, fbb.CreateVector(std::vector{t0, t1, t2})));
  const wire::Batch* batch = flatbuffers::GetRoot<wire::Batch>(fbb.GetBufferPointer());
  ledger::Transaction out;
  for (flatbuffers::uoffset_t i = 0; i < 3; ++i) {
    const absl::Status s = TransactionFromWire(*batch->transactions()->Get(i), &out);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << i;
  }
}

TEST(Wire, ResultsAndRecordsRoundTrip) {
  flatbuffers::FlatBufferBuilder fbb;
  ledger::TxRecord rec;
  rec.seq = 5;
  rec.timestamp_ns = 99;
  rec.tx = Full();
  rec.result.code = ledger::Code::kIdConflict;
  rec.result.conflict_field = "points";
  rec.postings.push_back({ledger::TxIdFromKey("a", "1"), ledger::TxIdFromKey("a", "2"), 10,
                          ledger::PostingType::kPending});
  rec.hash[0] = 0xab;
  rec.statement = ledger::Statement{"acme", "hotelco", 1, 2, 280, 30, 2'520'000, 210'000, 2'310'000, "partner"};
  const auto body = TxRecordToWire(fbb, rec);
  FinishResponse(fbb, 3, wire::ConnError::none, "", wire::ResponseBody::TxRecord, body.Union());
  const auto storage = Aligned(fbb);
  absl::StatusOr<const wire::Response*> r = VerifyResponseFrame(Bytes(storage, fbb.GetSize()));
  ASSERT_TRUE(r.ok()) << r.status();
  absl::StatusOr<ledger::TxRecord> out = TxRecordFromWire(*(*r)->body_as_TxRecord());
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->seq, rec.seq);
  EXPECT_EQ(out->tx, rec.tx);
  EXPECT_EQ(out->result, rec.result);
  EXPECT_EQ(out->postings, rec.postings);
  EXPECT_EQ(out->hash, rec.hash);
  EXPECT_EQ(out->statement, rec.statement);

  flatbuffers::FlatBufferBuilder bad;
  bad.Finish(wire::CreateResult(bad, static_cast<wire::Code>(99)));
  ledger::Result result;
  EXPECT_FALSE(
      ResultFromWire(*flatbuffers::GetRoot<wire::Result>(bad.GetBufferPointer()), &result).ok());
}

TEST(Wire, VerifierRefusesTruncatedAndForeignFrames) {
  flatbuffers::FlatBufferBuilder fbb;
  const auto hello = wire::CreateHelloDirect(fbb, 1, "key", "name");
  FinishRequest(fbb, 1, wire::RequestBody::Hello, hello.Union());
  const auto storage = Aligned(fbb);
  EXPECT_TRUE(VerifyRequestFrame(Bytes(storage, fbb.GetSize())).ok());
  // Every truncation fails (the length prefix no longer matches).
  for (size_t n = 0; n < fbb.GetSize(); ++n) {
    EXPECT_FALSE(VerifyRequestFrame(Bytes(storage, n)).ok()) << n;
  }
  // A request is not a response.
  EXPECT_FALSE(VerifyResponseFrame(Bytes(storage, fbb.GetSize())).ok());
  // A corrupted root offset.
  auto corrupt = storage;
  reinterpret_cast<uint8_t*>(corrupt.data())[4] = 0xff;
  EXPECT_FALSE(VerifyRequestFrame(Bytes(corrupt, fbb.GetSize())).ok());
}

// A hand-made client's commonest mistake: Finish, then the length prepended.
// A request with an 8-byte field (any request_id but 0) is then misaligned
// counted from the prefix; the refusal says how to build it (session 30).
TEST(Wire, AFrameFinishedWithoutItsSizePrefixIsRefusedSayingHowToBuildIt) {
  flatbuffers::FlatBufferBuilder fbb;
  const auto q = wire::CreateHeadQuery(fbb);
  wire::RequestBuilder b(fbb);
  b.add_version(1);
  b.add_request_id(7);
  b.add_body_type(wire::RequestBody::HeadQuery);
  b.add_body(q.Union());
  fbb.Finish(b.Finish(), wire::RequestIdentifier());  // no size prefix
  std::vector<uint8_t> frame(4);
  const uint32_t n = fbb.GetSize();
  std::memcpy(frame.data(), &n, 4);  // little-endian here
  frame.insert(frame.end(), fbb.GetBufferPointer(), fbb.GetBufferPointer() + n);
  std::vector<uint64_t> storage((frame.size() + 7) / 8);
  std::memcpy(storage.data(), frame.data(), frame.size());
  const absl::StatusOr<const wire::Request*> r = VerifyRequestFrame(Bytes(storage, frame.size()));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("FinishSizePrefixedRequestBuffer"), std::string::npos) << r.status();
  // Built as the protocol says, the same request passes.
  flatbuffers::FlatBufferBuilder good;
  FinishRequest(good, 7, wire::RequestBody::HeadQuery, wire::CreateHeadQuery(good).Union());
  EXPECT_TRUE(VerifyRequestFrame(Bytes(Aligned(good), good.GetSize())).ok());
}

// Every kind the ledger knows, the last one (account_open) included, is
// taken from the wire; 0 and kKindMax + 1 are not (RejectsUnknownKinds...).
TEST(Wire, EveryKnownKindIsAccepted) {
  for (int k = 1; k <= ledger::kKindMax; ++k) {
    flatbuffers::FlatBufferBuilder fbb;
    const auto t = wire::CreateTransaction(fbb, nullptr, static_cast<wire::Kind>(k));
    fbb.Finish(wire::CreateBatch(fbb, fbb.CreateVector(std::vector{t})));
    const wire::Batch* batch = flatbuffers::GetRoot<wire::Batch>(fbb.GetBufferPointer());
    ledger::Transaction out;
    ASSERT_TRUE(TransactionFromWire(*batch->transactions()->Get(0), &out).ok()) << k;
    EXPECT_EQ(static_cast<int>(out.kind), k);
  }
}

// Reads decoded by the client: every field of a Balance and a Liability
// comes back as sent, each with a value of its own so that a field copied
// from its neighbour shows.
TEST(Wire, BalanceAndLiabilityRoundTripEveryField) {
  ledger::Balance b;
  b.debits_posted = 1;
  b.credits_posted = 2;
  b.debits_pending = 3;
  b.credits_pending = 4;
  b.posted = 5;
  b.pending = 6;
  b.locked = 7;
  b.expired = 8;
  b.available = 9;
  b.closed = true;
  b.expiring = {{100, 10}, {200, 11}};
  flatbuffers::FlatBufferBuilder fbb;
  const auto body = BalanceToWire(fbb, "acme", "alice", b);
  FinishResponse(fbb, 3, wire::ConnError::none, "", wire::ResponseBody::Balance, body.Union());
  auto storage = Aligned(fbb);
  absl::StatusOr<const wire::Response*> r = VerifyResponseFrame(Bytes(storage, fbb.GetSize()));
  ASSERT_TRUE(r.ok()) << r.status();
  const ledger::Balance out = BalanceFromWire(*(*r)->body_as_Balance());
  EXPECT_EQ(out.debits_posted, 1u);
  EXPECT_EQ(out.credits_posted, 2u);
  EXPECT_EQ(out.debits_pending, 3u);
  EXPECT_EQ(out.credits_pending, 4u);
  EXPECT_EQ(out.posted, 5u);
  EXPECT_EQ(out.pending, 6u);
  EXPECT_EQ(out.locked, 7u);
  EXPECT_EQ(out.expired, 8u);
  EXPECT_EQ(out.available, 9u);
  EXPECT_TRUE(out.closed);
  ASSERT_EQ(out.expiring.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(out.expiring[i].expires_at_ns, b.expiring[i].expires_at_ns);
    EXPECT_EQ(out.expiring[i].points, b.expiring[i].points);
  }

  ledger::Liability l;
  l.program = "acme";
  l.currency = "USD";
  uint64_t v = 1;
  for (uint64_t* f : {&l.point_value_micros, &l.as_of_seq, &l.outstanding_points,
                      &l.expired_unswept_points, &l.expiring_30d_points, &l.expiring_60d_points,
                      &l.expiring_90d_points, &l.issued_points, &l.redeemed_points,
                      &l.reversed_points, &l.reversed_issued_points, &l.reversed_redeemed_points,
                      &l.expired_points, &l.forfeited_points, &l.adjusted_down_points,
                      &l.adjusted_up_points}) {
    *f = ++v;
  }
  l.from_ns = 101;
  l.to_ns = 102;
  l.as_of_ns = 103;
  l.outstanding_value_micros = -104;
  l.breakage_rate = 0.25;
  l.partners = {{"hotelco", 105, 106}, {"airline", 107, 108}};
  flatbuffers::FlatBufferBuilder lf;
  const auto lbody = LiabilityToWire(lf, l);
  FinishResponse(lf, 4, wire::ConnError::none, "", wire::ResponseBody::Liability, lbody.Union());
  storage = Aligned(lf);
  r = VerifyResponseFrame(Bytes(storage, lf.GetSize()));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(LiabilityFromWire(*(*r)->body_as_Liability()), l);
}

// The names in refusal messages and client statuses are SPEC §5's words.
TEST(Wire, ConnErrorNamesAreTheSpecWords) {
  EXPECT_EQ(ConnErrorName(wire::ConnError::none), "none");
  EXPECT_EQ(ConnErrorName(wire::ConnError::unauthorized), "unauthorized");
  EXPECT_EQ(ConnErrorName(wire::ConnError::malformed_request), "malformed_request");
  EXPECT_EQ(ConnErrorName(wire::ConnError::request_too_large), "request_too_large");
  EXPECT_EQ(ConnErrorName(wire::ConnError::batch_too_large), "batch_too_large");
  EXPECT_EQ(ConnErrorName(wire::ConnError::unsupported_version), "unsupported_version");
  EXPECT_EQ(ConnErrorName(wire::ConnError::server_busy), "server_busy");
}

}  // namespace
}  // namespace pointledger::net
