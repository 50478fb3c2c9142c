// Hostile input on raw sockets: each gets its error (where the server can
// tell) and its connection closes, while another client keeps working and
// nothing changes in the ledger.
#include <functional>
#include <random>

#include "gtest/gtest.h"
#include "ledger/ledger.h"
#include "net/client.h"
#include "net/limits.h"
#include "net/wire.h"
#include "tests/net/server_process.h"
#include "tests/net/test_tx.h"

namespace pointledger::net {
namespace {

using testing::RawSocket;
using testing::ServerProcess;
using testing::TempDir;

class Hostile : public ::testing::Test {
 protected:
  void SetUp() override { StartServer(); }

  // pointledgerd with `args`, program acme created.
  void StartServer(const std::vector<std::string>& args = {}) {
    server_ = ServerProcess::Start(dir_.Sub("data"), args);
    ASSERT_NE(server_, nullptr);
    good_ = server_->AdminClient();
    const ledger::Transaction t = testing::ProgramCreate("acme");
    auto r = good_->Post(std::span<const ledger::Transaction>(&t, 1));
    ASSERT_TRUE(r.ok()) << r.status();
    head_seq_ = Head();
    ASSERT_EQ(head_seq_, 1u);
  }

  uint64_t Head() {
    auto head = good_->GetHead();
    EXPECT_TRUE(head.ok()) << head.status();
    return head.ok() ? head->seq : 0;
  }

  // The other client still works, and the hostile one changed nothing.
  void ExpectServerUnharmed() {
    EXPECT_EQ(Head(), head_seq_);
    const ledger::Transaction t = testing::Earn("acme", "alice", 1, StrCat("ok-", ++posts_));
    auto r = good_->Post(std::span<const ledger::Transaction>(&t, 1));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ((*r)[0].code, ledger::Code::kOk);
    head_seq_ = Head();
  }

  // A socket that has said a good Hello.
  std::unique_ptr<RawSocket> Authenticated() {
    auto s = std::make_unique<RawSocket>(server_->port());
    flatbuffers::FlatBufferBuilder fbb;
    const std::string key = server_->admin_key();
    const auto hello = wire::CreateHelloDirect(fbb, kProtocolVersion, key.c_str(), "hostile");
    FinishRequest(fbb, 0, wire::RequestBody::Hello, hello.Union());
    EXPECT_TRUE(s->Send(fbb));
    auto answer = s->ReadResponse();
    EXPECT_TRUE(answer.has_value());
    if (answer) {
      EXPECT_EQ(answer->response->error(), wire::ConnError::none);
    }
    return s;
  }

  // Expects `error` as the answer, then the connection to close.
  void ExpectRefusal(RawSocket& s, wire::ConnError error) {
    auto answer = s.ReadResponse();
    ASSERT_TRUE(answer.has_value()) << "no answer; server log:\n" << server_->log();
    EXPECT_EQ(answer->response->error(), error)
        << ConnErrorName(answer->response->error()) << ": "
        << (answer->response->message() ? answer->response->message()->str() : "");
    EXPECT_TRUE(s.WaitForClose());
  }

  TempDir dir_;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<Client> good_;
  uint64_t head_seq_ = 0;
  int posts_ = 0;
};

TEST_F(Hostile, RandomBytes) {
  std::mt19937_64 rng(42);
  std::vector<uint8_t> bytes(1000);
  for (uint8_t& b : bytes) b = static_cast<uint8_t>(rng());
  // A plausible length, then noise: the verifier refuses it.
  bytes[0] = 200;
  bytes[1] = bytes[2] = bytes[3] = 0;
  RawSocket s(server_->port());
  ASSERT_TRUE(s.Send(bytes));
  ExpectRefusal(s, wire::ConnError::malformed_request);
  ExpectServerUnharmed();

  // Pure noise: whatever its first four bytes claim, the connection ends.
  for (uint8_t& b : bytes) b = static_cast<uint8_t>(rng());
  RawSocket noise(server_->port());
  noise.Send(bytes);
  noise.ShutdownWrite();  // a length the noise does not fill ends at EOF
  EXPECT_TRUE(noise.WaitForClose());
  ExpectServerUnharmed();
}

TEST_F(Hostile, TruncatedFrameThenClose) {
  auto s = Authenticated();
  const uint8_t header[4] = {100, 0, 0, 0};
  const std::vector<uint8_t> half(50, 7);
  ASSERT_TRUE(s->Send(header, 4));
  ASSERT_TRUE(s->Send(half));
  s->ShutdownWrite();
  EXPECT_TRUE(s->WaitForClose());
  ExpectServerUnharmed();
}

// A read padded to 1 MiB (a valid BalanceQuery with an unused vector in
// its buffer): reads are at most kReadFrameBytesMax, so a client cannot
// park megabytes behind its own batch as reads waiting for it.
TEST_F(Hostile, OversizeReadIsRefused) {
  auto s = Authenticated();
  flatbuffers::FlatBufferBuilder fbb;
  fbb.CreateVector(std::vector<uint8_t>(1 << 20, 0x5a));  // referenced by nothing
  const auto q = wire::CreateBalanceQueryDirect(fbb, "acme", "alice");
  FinishRequest(fbb, 7, wire::RequestBody::BalanceQuery, q.Union());
  ASSERT_GT(fbb.GetSize(), kReadFrameBytesMax);
  ASSERT_TRUE(s->Send(fbb));
  auto answer = s->ReadResponse();
  ASSERT_TRUE(answer.has_value()) << server_->log();
  EXPECT_EQ(answer->response->error(), wire::ConnError::request_too_large);
  EXPECT_EQ(answer->response->request_id(), 7u);
  EXPECT_TRUE(s->WaitForClose());
  ExpectServerUnharmed();

  // The same read unpadded is answered.
  auto t = Authenticated();
  flatbuffers::FlatBufferBuilder small;
  const auto q2 = wire::CreateBalanceQueryDirect(small, "acme", "alice");
  FinishRequest(small, 8, wire::RequestBody::BalanceQuery, q2.Union());
  ASSERT_TRUE(t->Send(small));
  answer = t->ReadResponse();
  ASSERT_TRUE(answer.has_value());
  EXPECT_EQ(answer->response->error(), wire::ConnError::none);
  EXPECT_EQ(answer->response->request_id(), 8u);
}

TEST_F(Hostile, LengthPrefixOfFourGiB) {
  RawSocket s(server_->port());
  const uint8_t header[4] = {0xff, 0xff, 0xff, 0xff};
  ASSERT_TRUE(s.Send(header, 4));
  ExpectRefusal(s, wire::ConnError::request_too_large);
  ExpectServerUnharmed();

  // Also after Hello, with the frame's body on its way.
  auto t = Authenticated();
  const uint8_t big[4] = {0x01, 0x00, 0x50, 0x00};  // 5 MiB + 1 > 4 MiB
  ASSERT_TRUE(t->Send(big, 4));
  t->Send(std::vector<uint8_t>(64 * 1024, 0));
  ExpectRefusal(*t, wire::ConnError::request_too_large);
  ExpectServerUnharmed();
}

TEST_F(Hostile, ValidFlatBufferOfTheWrongType) {
  // A Response (identifier PLRS) sent as a request.
  flatbuffers::FlatBufferBuilder fbb;
  FinishResponse(fbb, 1, wire::ConnError::none, "", wire::ResponseBody::NONE, 0);
  RawSocket s(server_->port());
  ASSERT_TRUE(s.Send(fbb));
  ExpectRefusal(s, wire::ConnError::malformed_request);
  ExpectServerUnharmed();

  auto t = Authenticated();
  ASSERT_TRUE(t->Send(fbb));
  ExpectRefusal(*t, wire::ConnError::malformed_request);
  ExpectServerUnharmed();

  // A well-formed Request whose first message is not Hello.
  flatbuffers::FlatBufferBuilder head;
  const auto q = wire::CreateHeadQuery(head);
  FinishRequest(head, 5, wire::RequestBody::HeadQuery, q.Union());
  RawSocket u(server_->port());
  ASSERT_TRUE(u.Send(head));
  ExpectRefusal(u, wire::ConnError::unauthorized);
  ExpectServerUnharmed();
}

TEST_F(Hostile, OutOfRangeEnumValues) {
  flatbuffers::FlatBufferBuilder fbb;
  ledger::Transaction earn = testing::Earn("acme", "mallory", 10, "evil-1");
  std::vector<flatbuffers::Offset<wire::Transaction>> txs = {TransactionToWire(fbb, earn)};
  const wire::Id128 id = IdToWire(ledger::TxIdFromKey("acme", "evil-2"));
  const auto program = fbb.CreateString("acme");
  txs.push_back(wire::CreateTransaction(fbb, &id, static_cast<wire::Kind>(200), false, program));
  const auto batch = wire::CreateBatch(fbb, fbb.CreateVector(txs));
  FinishRequest(fbb, 9, wire::RequestBody::Batch, batch.Union());
  auto s = Authenticated();
  ASSERT_TRUE(s->Send(fbb));
  ExpectRefusal(*s, wire::ConnError::malformed_request);
  ExpectServerUnharmed();  // the good earn in that batch was not applied either

  // An unknown union tag.
  flatbuffers::FlatBufferBuilder tag;
  const auto q = wire::CreateHeadQuery(tag);
  FinishRequest(tag, 10, static_cast<wire::RequestBody>(77), q.Union());
  auto t = Authenticated();
  ASSERT_TRUE(t->Send(tag));
  ExpectRefusal(*t, wire::ConnError::malformed_request);
  ExpectServerUnharmed();
}

// Any batch past the limit that fits a frame is batch_too_large: one of
// 8,191, and one of 30,000 small transactions (until session 20 a batch of
// more than 16,394 hit the FlatBuffers verifier's table limit first and was
// answered malformed_request; found in review).
TEST_F(Hostile, BatchOf8191) {
  for (const int n : {8191, 30000}) {
    flatbuffers::FlatBufferBuilder fbb;
    std::vector<flatbuffers::Offset<wire::Transaction>> txs;
    for (int i = 0; i < n; ++i) {
      txs.push_back(TransactionToWire(fbb, testing::Earn("acme", "m", 1, StrCat("x-", i))));
    }
    const auto batch = wire::CreateBatch(fbb, fbb.CreateVector(txs));
    FinishRequest(fbb, 3, wire::RequestBody::Batch, batch.Union());
    ASSERT_LT(fbb.GetSize(), kFrameBytesMaxDefault) << n;
    auto s = Authenticated();
    ASSERT_TRUE(s->Send(fbb));
    ExpectRefusal(*s, wire::ConnError::batch_too_large);
    ExpectServerUnharmed();
  }
}

TEST_F(Hostile, EarlierAnswersStillComeBeforeTheRefusal) {
  auto s = Authenticated();
  flatbuffers::FlatBufferBuilder fbb;
  const auto q = wire::CreateHeadQuery(fbb);
  FinishRequest(fbb, 21, wire::RequestBody::HeadQuery, q.Union());
  std::vector<uint8_t> bytes(fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize());
  const uint8_t junk[12] = {8, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8};
  bytes.insert(bytes.end(), junk, junk + sizeof(junk));
  ASSERT_TRUE(s->Send(bytes));
  auto head = s->ReadResponse();
  ASSERT_TRUE(head.has_value());
  EXPECT_EQ(head->response->request_id(), 21u);
  EXPECT_EQ(head->response->body_type(), wire::ResponseBody::Head);
  ExpectRefusal(*s, wire::ConnError::malformed_request);
  ExpectServerUnharmed();
}

// SPEC §5: a protocol version the server does not speak, in the Hello or
// in a later request's envelope, is unsupported_version and ends the
// connection.
TEST_F(Hostile, UnsupportedVersionsAreRefused) {
  flatbuffers::FlatBufferBuilder hello;
  const std::string key = server_->admin_key();
  const auto h = wire::CreateHelloDirect(hello, kProtocolVersion + 1, key.c_str(), "future");
  FinishRequest(hello, 0, wire::RequestBody::Hello, h.Union());
  RawSocket s(server_->port());
  ASSERT_TRUE(s.Send(hello));
  ExpectRefusal(s, wire::ConnError::unsupported_version);
  ExpectServerUnharmed();

  // A batch whose envelope says version 2, after a good Hello.
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<flatbuffers::Offset<wire::Transaction>> txs = {
      TransactionToWire(fbb, testing::Earn("acme", "mallory", 10, "v2-earn"))};
  const auto batch = wire::CreateBatch(fbb, fbb.CreateVector(txs));
  const auto request =
      wire::CreateRequest(fbb, /*version=*/2, 4, wire::RequestBody::Batch, batch.Union());
  wire::FinishSizePrefixedRequestBuffer(fbb, request);
  auto t = Authenticated();
  ASSERT_TRUE(t->Send(fbb));
  ExpectRefusal(*t, wire::ConnError::unsupported_version);
  ExpectServerUnharmed();  // the earn was not applied
}

// One report thread serves every connection: a connection may have at most
// four reports queued; more are answered server_busy, in order, and the
// connection stays open (found by a hostile-client review, session 19).
TEST_F(Hostile, AtMostFourReportsQueueOnAConnection) {
  auto s = Authenticated();
  std::vector<uint8_t> bytes;
  for (uint64_t id = 1; id <= 8; ++id) {
    flatbuffers::FlatBufferBuilder fbb;
    const auto q = wire::CreateTrialBalanceQuery(fbb);
    FinishRequest(fbb, id, wire::RequestBody::TrialBalanceQuery, q.Union());
    bytes.insert(bytes.end(), fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize());
  }
  ASSERT_TRUE(s->Send(bytes));  // one send: read and queued in one go
  int busy = 0;
  for (uint64_t id = 1; id <= 8; ++id) {
    auto answer = s->ReadResponse();
    ASSERT_TRUE(answer.has_value()) << server_->log();
    EXPECT_EQ(answer->response->request_id(), id);
    if (answer->response->error() == wire::ConnError::server_busy) {
      ++busy;
      EXPECT_GT(id, 4u);
    } else {
      EXPECT_EQ(answer->response->body_type(), wire::ResponseBody::Discrepancies);
    }
  }
  EXPECT_EQ(busy, 4);
  ExpectServerUnharmed();
}

TEST_F(Hostile, AnEmptyBatchIsMalformed) {
  flatbuffers::FlatBufferBuilder fbb;
  const auto batch =
      wire::CreateBatch(fbb, fbb.CreateVector(std::vector<flatbuffers::Offset<wire::Transaction>>{}));
  FinishRequest(fbb, 6, wire::RequestBody::Batch, batch.Union());
  auto s = Authenticated();
  ASSERT_TRUE(s->Send(fbb));
  ExpectRefusal(*s, wire::ConnError::malformed_request);
  ExpectServerUnharmed();
}

// A request whose union names a body type but carries no body: the
// FlatBuffers verifier accepts a missing union value, so VerifyRequestFrame
// must refuse it (malformed_request), before Hello and after it, or the
// server dereferences a null body (found by mutation testing, session 22).
TEST_F(Hostile, ARequestTypeWithoutItsBodyIsMalformed) {
  const auto bodiless = [](wire::RequestBody type, uint64_t rid) {
    auto fbb = std::make_unique<flatbuffers::FlatBufferBuilder>();
    const auto request = wire::CreateRequest(*fbb, /*version=*/1, rid, type, /*body=*/0);
    wire::FinishSizePrefixedRequestBuffer(*fbb, request);
    return fbb;
  };
  RawSocket s(server_->port());
  ASSERT_TRUE(s.Send(*bodiless(wire::RequestBody::Hello, 0)));
  ExpectRefusal(s, wire::ConnError::malformed_request);
  ExpectServerUnharmed();
  if (HasFailure()) return;  // the server is gone: no more sockets to it

  for (const wire::RequestBody type : {wire::RequestBody::BalanceQuery, wire::RequestBody::Batch,
                                       wire::RequestBody::StatementQuery}) {
    auto t = Authenticated();
    ASSERT_TRUE(t->Send(*bodiless(type, 5)));
    ExpectRefusal(*t, wire::ConnError::malformed_request);
    ExpectServerUnharmed();
  }
}

// SPEC §5: a Hello with a protocol_version other than 1 is
// unsupported_version, an older one (0) as much as a newer one.
TEST_F(Hostile, AnOlderHelloVersionIsRefusedToo) {
  flatbuffers::FlatBufferBuilder hello;
  const std::string key = server_->admin_key();
  const auto h = wire::CreateHelloDirect(hello, kProtocolVersion - 1, key.c_str(), "past");
  FinishRequest(hello, 0, wire::RequestBody::Hello, h.Union());
  RawSocket s(server_->port());
  ASSERT_TRUE(s.Send(hello));
  ExpectRefusal(s, wire::ConnError::unsupported_version);
  ExpectServerUnharmed();
}

// docs/protocol.md, "Connection-level errors": after a refused request the
// server reads nothing more; a batch pipelined behind a malformed frame is
// not applied (nor answered).
TEST_F(Hostile, ABatchBehindARefusedFrameIsNotApplied) {
  auto s = Authenticated();
  const uint8_t junk[12] = {8, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8};
  std::vector<uint8_t> bytes(junk, junk + sizeof(junk));
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<flatbuffers::Offset<wire::Transaction>> txs = {
      TransactionToWire(fbb, testing::Earn("acme", "mallory", 10, "behind-junk"))};
  const auto batch = wire::CreateBatch(fbb, fbb.CreateVector(txs));
  FinishRequest(fbb, 2, wire::RequestBody::Batch, batch.Union());
  bytes.insert(bytes.end(), fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize());
  ASSERT_TRUE(s->Send(bytes));  // one send: both frames arrive in one read
  ExpectRefusal(*s, wire::ConnError::malformed_request);
  // A batch of another client, queued after anything the refused
  // connection could have submitted: once it is answered, the earn behind
  // the junk would be committed too.
  const ledger::Transaction t = testing::Earn("acme", "alice", 1, "after-junk");
  auto r = good_->Post(std::span<const ledger::Transaction>(&t, 1));
  ASSERT_TRUE(r.ok()) << r.status();
  auto behind = good_->GetTransaction("acme", ledger::TxIdFromKey("acme", "behind-junk"));
  ASSERT_TRUE(behind.ok()) << behind.status();
  EXPECT_FALSE(behind->has_value()) << "the batch behind the refused frame was applied";
  EXPECT_EQ(Head(), head_seq_ + 1);
}

// A frame of exactly a limit is served; one byte more is refused. The limits
// are on the length prefix (docs/protocol.md): 4 KiB before Hello and for a
// read, frame_bytes_max for a batch. FlatBuffers sizes are multiples of 8,
// so the frames are padded past the buffer's end (the prefix covers it).
std::vector<uint8_t> PaddedTo(const flatbuffers::FlatBufferBuilder& fbb, uint32_t length) {
  std::vector<uint8_t> bytes(fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize());
  PL_CHECK(bytes.size() <= kFrameHeaderBytes + length);
  bytes.resize(kFrameHeaderBytes + length, 0);
  for (int i = 0; i < 4; ++i) bytes[i] = static_cast<uint8_t>(length >> (8 * i));
  return bytes;
}

TEST_F(Hostile, FramesOfExactlyTheLimitAreServed) {
  const std::string key = server_->admin_key();
  for (const uint32_t extra : {0u, 1u}) {
    flatbuffers::FlatBufferBuilder hello;
    const auto h = wire::CreateHelloDirect(hello, kProtocolVersion, key.c_str(), "edge");
    FinishRequest(hello, 0, wire::RequestBody::Hello, h.Union());
    RawSocket s(server_->port());
    ASSERT_TRUE(s.Send(PaddedTo(hello, kHelloFrameBytesMax + extra)));
    if (extra == 1) {
      ExpectRefusal(s, wire::ConnError::request_too_large);
      continue;
    }
    auto answer = s.ReadResponse();
    ASSERT_TRUE(answer.has_value()) << server_->log();
    ASSERT_EQ(answer->response->error(), wire::ConnError::none);
    ASSERT_EQ(answer->response->body_type(), wire::ResponseBody::HelloOk);
  }
  ExpectServerUnharmed();

  for (const uint32_t extra : {0u, 1u}) {
    flatbuffers::FlatBufferBuilder read;
    const auto q = wire::CreateBalanceQueryDirect(read, "acme", "alice");
    FinishRequest(read, 9, wire::RequestBody::BalanceQuery, q.Union());
    auto t = Authenticated();
    ASSERT_TRUE(t->Send(PaddedTo(read, kReadFrameBytesMax + extra)));
    if (extra == 1) {
      ExpectRefusal(*t, wire::ConnError::request_too_large);
      continue;
    }
    auto answer = t->ReadResponse();
    ASSERT_TRUE(answer.has_value()) << server_->log();
    EXPECT_EQ(answer->response->error(), wire::ConnError::none);
    EXPECT_EQ(answer->response->body_type(), wire::ResponseBody::Balance);
  }
  ExpectServerUnharmed();
}

// docs/protocol.md: a second Hello on a connection is malformed_request.
TEST_F(Hostile, ASecondHelloIsMalformed) {
  auto s = Authenticated();
  flatbuffers::FlatBufferBuilder fbb;
  const std::string key = server_->admin_key();
  const auto hello = wire::CreateHelloDirect(fbb, kProtocolVersion, key.c_str(), "again");
  FinishRequest(fbb, 4, wire::RequestBody::Hello, hello.Union());
  ASSERT_TRUE(s->Send(fbb));
  ExpectRefusal(*s, wire::ConnError::malformed_request);
  ExpectServerUnharmed();
}

// docs/protocol.md, "Frames": a peer whose frames are not multiples of 8
// bytes is served all the same (the server reads a misaligned frame from an
// aligned copy). A Hello 4 bytes longer than its buffer puts the read sent
// with it at 4 mod 8 in the server's read buffer.
TEST_F(Hostile, AFrameAtAnOddOffsetIsServed) {
  flatbuffers::FlatBufferBuilder hello;
  const std::string key = server_->admin_key();
  const auto h = wire::CreateHelloDirect(hello, kProtocolVersion, key.c_str(), "odd");
  FinishRequest(hello, 0, wire::RequestBody::Hello, h.Union());
  std::vector<uint8_t> bytes = PaddedTo(hello, static_cast<uint32_t>(hello.GetSize()));  // +4 bytes
  ASSERT_EQ(bytes.size() % 8, 4u);
  flatbuffers::FlatBufferBuilder head;
  FinishRequest(head, 1, wire::RequestBody::HeadQuery, wire::CreateHeadQuery(head).Union());
  bytes.insert(bytes.end(), head.GetBufferPointer(), head.GetBufferPointer() + head.GetSize());
  RawSocket s(server_->port());
  ASSERT_TRUE(s.Send(bytes));  // one send: both frames in one read
  for (uint64_t rid = 0; rid <= 1; ++rid) {
    auto answer = s.ReadResponse();
    ASSERT_TRUE(answer.has_value()) << rid << "\n" << server_->log();
    EXPECT_EQ(answer->response->request_id(), rid);
    EXPECT_EQ(answer->response->error(), wire::ConnError::none);
  }
  ExpectServerUnharmed();
}

// A client that pipelines many requests and then half-closes (shutdown of
// its sending side, as `nc -N` or a script's `sendall; shutdown` does) is
// answered every one, in order, before the server closes: past
// inflight_requests_max (64) the frames wait in the buffer for slots. Until
// session 30 the server took the EOF as the end and dropped what it had
// not yet taken: 76 of 300 batches applied and answered, 224 silently not.
TEST_F(Hostile, AHalfCloseAfterPipeliningIsAnsweredWhole) {
  auto s = Authenticated();
  constexpr uint64_t kBatches = 300, kHeads = 300;
  std::vector<uint8_t> bytes;
  auto add = [&](const flatbuffers::FlatBufferBuilder& fbb) {
    bytes.insert(bytes.end(), fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize());
  };
  for (uint64_t rid = 1; rid <= kBatches + kHeads; ++rid) {
    flatbuffers::FlatBufferBuilder fbb;
    if (rid <= kBatches) {
      std::vector<flatbuffers::Offset<wire::Transaction>> txs = {
          TransactionToWire(fbb, testing::Earn("acme", "half", 1, StrCat("half-", rid)))};
      FinishRequest(fbb, rid, wire::RequestBody::Batch, wire::CreateBatch(fbb, fbb.CreateVector(txs)).Union());
    } else {
      FinishRequest(fbb, rid, wire::RequestBody::HeadQuery, wire::CreateHeadQuery(fbb).Union());
    }
    add(fbb);
  }
  // And half a frame: the client stopped in the middle of it.
  const uint8_t partial[6] = {64, 0, 0, 0, 1, 2};
  bytes.insert(bytes.end(), partial, partial + sizeof(partial));
  ASSERT_TRUE(s->Send(bytes));
  s->ShutdownWrite();
  for (uint64_t rid = 1; rid <= kBatches + kHeads; ++rid) {
    auto answer = s->ReadResponse();
    ASSERT_TRUE(answer.has_value()) << "answer " << rid << " of " << kBatches + kHeads << " missing\n"
                                    << server_->log();
    EXPECT_EQ(answer->response->request_id(), rid);
    EXPECT_EQ(answer->response->error(), wire::ConnError::none);
    if (rid <= kBatches) {
      ASSERT_EQ(answer->response->body_type(), wire::ResponseBody::BatchResult);
      EXPECT_EQ(answer->response->body_as_BatchResult()->results()->Get(0)->code(), wire::Code::ok);
    } else {
      ASSERT_EQ(answer->response->body_type(), wire::ResponseBody::Head);
      EXPECT_EQ(answer->response->body_as_Head()->seq(), head_seq_ + kBatches);  // reads see the writes
    }
  }
  EXPECT_TRUE(s->WaitForClose());
  EXPECT_EQ(Head(), head_seq_ + kBatches);
  EXPECT_TRUE(server_->WaitForLog("closed by client in the middle of a frame (6 bytes of it)",
                                  std::chrono::seconds(5)))
      << server_->log();
  head_seq_ = Head();
  ExpectServerUnharmed();
}

// A client that pipelines reads whose answers pass output_bytes_max, and
// reads them, gets every one: the cap stops the server reading the socket
// until answers go out; it does not close a client that reads (until
// session 30, an answer that found others still unsent past the cap closed
// the connection: a Head answer and a 15 KB history page behind it, with a
// cap of 4 KB, got neither).
class OutputCap : public Hostile {
 protected:
  void SetUp() override {
    testing::WriteFile(dir_.Sub("config.toml"), "[limits]\noutput_bytes_max = 4096\n");
    StartServer({"--config", dir_.Sub("config.toml")});
    if (HasFatalFailure()) return;
    // Member big's history: each 1,000-entry page (~15 KB) passes the cap alone.
    std::vector<ledger::Transaction> earns;
    for (int i = 0; i < kHistory; ++i) earns.push_back(testing::Earn("acme", "big", 1, StrCat("big-", i)));
    ASSERT_TRUE(good_->Post(earns).ok());
  }

  // Sends the requests `make(rid)` builds for rids 1..n in one write, then
  // reads every answer and hands it to `check`, in order.
  void PipelineAndReadAll(uint64_t n, const std::function<void(flatbuffers::FlatBufferBuilder&, uint64_t)>& make,
                          const std::function<void(const wire::Response&, uint64_t)>& check) {
    auto s = Authenticated();
    std::vector<uint8_t> bytes;
    for (uint64_t rid = 1; rid <= n; ++rid) {
      flatbuffers::FlatBufferBuilder fbb;
      make(fbb, rid);
      bytes.insert(bytes.end(), fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize());
    }
    ASSERT_TRUE(s->Send(bytes));
    for (uint64_t rid = 1; rid <= n; ++rid) {
      auto answer = s->ReadResponse();
      ASSERT_TRUE(answer.has_value()) << "answer " << rid << " missing\n" << server_->log();
      EXPECT_EQ(answer->response->request_id(), rid);
      ASSERT_EQ(answer->response->error(), wire::ConnError::none);
      check(*answer->response, rid);
    }
  }

  static void History(flatbuffers::FlatBufferBuilder& fbb, uint64_t rid) {
    FinishRequest(fbb, rid, wire::RequestBody::HistoryQuery,
                  wire::CreateHistoryQueryDirect(fbb, "acme", "big", 1000, 0).Union());
  }
  static void ExpectHistory(const wire::Response& r) {
    ASSERT_EQ(r.body_type(), wire::ResponseBody::History);
    EXPECT_EQ(r.body_as_History()->entries()->size(), static_cast<size_t>(kHistory));
  }

  static constexpr int kHistory = 300;
};

TEST_F(OutputCap, AnswersPastItAreAllDeliveredToAReader) {
  PipelineAndReadAll(
      40,
      [](flatbuffers::FlatBufferBuilder& fbb, uint64_t rid) {
        if (rid % 2 == 1) {
          FinishRequest(fbb, rid, wire::RequestBody::HeadQuery, wire::CreateHeadQuery(fbb).Union());
        } else {
          History(fbb, rid);
        }
      },
      [](const wire::Response& r, uint64_t rid) {
        if (rid % 2 == 0) ExpectHistory(r);
      });
  EXPECT_FALSE(server_->WaitForLog("output_bytes_max", std::chrono::milliseconds(100))) << server_->log();
}

// Reads behind a batch of the same connection wait for its commit, then are
// answered as the cap allows, the rest as answers go out (session 30):
// a reader still gets every one, in order, even when the batches after
// them were answered first and alone fill the cap.
TEST_F(OutputCap, ReadsBehindABatchAreAllAnsweredInOrder) {
  PipelineAndReadAll(
      60,
      [](flatbuffers::FlatBufferBuilder& fbb, uint64_t rid) {
        if (rid % 3 != 1) {
          History(fbb, rid);  // two pages behind each batch
          return;
        }
        std::vector<flatbuffers::Offset<wire::Transaction>> txs;
        for (int i = 0; i < 200; ++i) {
          txs.push_back(TransactionToWire(fbb, testing::Earn("acme", "m", 1, StrCat("cap-", rid, "-", i))));
        }
        FinishRequest(fbb, rid, wire::RequestBody::Batch, wire::CreateBatch(fbb, fbb.CreateVector(txs)).Union());
      },
      [](const wire::Response& r, uint64_t rid) {
        if (rid % 3 != 1) {
          ExpectHistory(r);
          return;
        }
        ASSERT_EQ(r.body_type(), wire::ResponseBody::BatchResult);
        EXPECT_EQ(r.body_as_BatchResult()->results()->size(), 200u);
      });
}

// connections_max bounds the connections served; refused ones linger for
// up to 2 s (so that they read their server_busy) and are bounded apart.
// Until session 30 they counted against connections_max while they
// lingered: a slot a served client freed stayed unusable.
class ConnectionsMax : public Hostile {
 protected:
  void SetUp() override {
    testing::WriteFile(dir_.Sub("config.toml"), "[limits]\nconnections_max = 2\n");
    StartServer({"--config", dir_.Sub("config.toml")});  // good_ is the first
  }
};

TEST_F(ConnectionsMax, AFreedSlotIsServedWhileRefusalsLinger) {
  auto a = Authenticated();  // the second: the limit
  std::vector<std::unique_ptr<RawSocket>> refused;
  for (int i = 0; i < 3; ++i) {
    refused.push_back(std::make_unique<RawSocket>(server_->port()));
    auto answer = refused.back()->ReadResponse();
    ASSERT_TRUE(answer.has_value()) << server_->log();
    EXPECT_EQ(answer->response->error(), wire::ConnError::server_busy);
  }
  // The refused sockets stay open: their connections linger. A leaves.
  a.reset();
  ASSERT_TRUE(server_->WaitForLog("closed: closed by client", std::chrono::seconds(5))) << server_->log();
  auto d = Authenticated();  // expects a good Hello, not server_busy
  EXPECT_EQ(server_->log().find("connections_max (2) reached", server_->log().rfind("closed: closed by client")),
            std::string::npos)
      << server_->log();
  ExpectServerUnharmed();
}

// SPEC §6: the [limits] of the config file are what the server enforces,
// not only the defaults.
class ConfiguredLimits : public Hostile {
 protected:
  void SetUp() override {
    testing::WriteFile(dir_.Sub("config.toml"),
                       "[limits]\nbatch_transactions_max = 3\nframe_bytes_max = 2048\n");
    StartServer({"--config", dir_.Sub("config.toml")});
  }

  // A Batch request of n small earns, padded with `pad` unused bytes.
  static void BuildBatch(flatbuffers::FlatBufferBuilder& fbb, int n, size_t pad, uint64_t rid) {
    if (pad > 0) fbb.CreateVector(std::vector<uint8_t>(pad, 0x5a));  // referenced by nothing
    std::vector<flatbuffers::Offset<wire::Transaction>> txs;
    for (int i = 0; i < n; ++i) {
      txs.push_back(TransactionToWire(fbb, testing::Earn("acme", "m", 1, StrCat("lim-", rid, "-", i))));
    }
    const auto batch = wire::CreateBatch(fbb, fbb.CreateVector(txs));
    FinishRequest(fbb, rid, wire::RequestBody::Batch, batch.Union());
  }
};

TEST_F(ConfiguredLimits, ABatchPastTheConfiguredMaximumIsRefused) {
  flatbuffers::FlatBufferBuilder four;
  BuildBatch(four, 4, 0, 1);
  ASSERT_LT(four.GetSize(), 2048u);
  auto s = Authenticated();
  ASSERT_TRUE(s->Send(four));
  ExpectRefusal(*s, wire::ConnError::batch_too_large);
  ExpectServerUnharmed();

  flatbuffers::FlatBufferBuilder three;  // at the limit: applied
  BuildBatch(three, 3, 0, 2);
  auto t = Authenticated();
  ASSERT_TRUE(t->Send(three));
  auto answer = t->ReadResponse();
  ASSERT_TRUE(answer.has_value());
  EXPECT_EQ(answer->response->error(), wire::ConnError::none);
  EXPECT_EQ(Head(), head_seq_ + 3);
}

TEST_F(ConfiguredLimits, AFramePastTheConfiguredMaximumIsRefused) {
  flatbuffers::FlatBufferBuilder big;
  BuildBatch(big, 1, 4096, 1);
  ASSERT_GT(big.GetSize(), 2048u);
  auto s = Authenticated();
  ASSERT_TRUE(s->Send(big));
  ExpectRefusal(*s, wire::ConnError::request_too_large);
  ExpectServerUnharmed();
}

// HelloOk states the configured limits, not the defaults, and the client
// library sizes its requests by them (docs/protocol.md, "A connection"),
// refusing a larger batch or frame itself.
TEST_F(ConfiguredLimits, HelloOkStatesTheConfiguredLimits) {
  RawSocket s(server_->port());
  flatbuffers::FlatBufferBuilder fbb;
  const std::string key = server_->admin_key();
  FinishRequest(fbb, 0, wire::RequestBody::Hello,
                wire::CreateHelloDirect(fbb, kProtocolVersion, key.c_str(), "limits").Union());
  ASSERT_TRUE(s.Send(fbb));
  auto answer = s.ReadResponse();
  ASSERT_TRUE(answer.has_value());
  const wire::HelloOk* ok = answer->response->body_as_HelloOk();
  ASSERT_NE(ok, nullptr);
  EXPECT_EQ(ok->batch_transactions_max(), 3u);
  EXPECT_EQ(ok->frame_bytes_max(), 2048u);

  EXPECT_EQ(good_->batch_transactions_max(), 3u);
  EXPECT_EQ(good_->frame_bytes_max(), 2048u);
  // The client refuses what the server would, without sending it: its
  // connection (and anything pipelined on it) goes on.
  absl::StatusOr<Client::ServerStats> before = good_->GetStats();
  ASSERT_TRUE(before.ok()) << before.status();
  std::vector<ledger::Transaction> four;
  for (int i = 0; i < 4; ++i) four.push_back(testing::Earn("acme", "m", 1, StrCat("four-", i)));
  EXPECT_EQ(good_->Post(four).status().code(), absl::StatusCode::kOutOfRange);
  ledger::Transaction fat = testing::Earn("acme", "m", 1, "fat");
  fat.metadata = std::string(3000, 'x');
  EXPECT_EQ(good_->Post(std::span<const ledger::Transaction>(&fat, 1)).status().code(),
            absl::StatusCode::kOutOfRange);
  absl::StatusOr<Client::ServerStats> after = good_->GetStats();
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->connections_accepted, before->connections_accepted)
      << "the server refused them and the client reconnected";
  ExpectServerUnharmed();
}

}  // namespace
}  // namespace pointledger::net
