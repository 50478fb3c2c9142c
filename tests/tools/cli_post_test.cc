// post --file (batching that never splits a linked chain, pipelining,
// results in input order), single posts and expire, against an in-process
// ledger behind the net::Client interface.
#include "tools/cli_post.h"

#include <fstream>
#include <mutex>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/tools/ledger_client.h"
#include "net/wire.h"
#include "tests/tools/test_util.h"
#include "tools/cli_format.h"

namespace pointledger::tools {
namespace {

using ledger::Code;
using ledger::Kind;

PostLine Line(uint64_t n, bool linked) {
  PostLine p;
  p.line_number = n;
  p.tx.linked = linked;
  return p;
}

// The line numbers of each batch.
std::vector<std::vector<uint64_t>> Batches(const std::vector<bool>& linked, size_t batch_max) {
  ChainBatcher batcher(batch_max);
  std::vector<std::vector<PostLine>> ready;
  for (size_t i = 0; i < linked.size(); ++i) {
    EXPECT_TRUE(batcher.Add(Line(i + 1, linked[i]), &ready).ok());
  }
  batcher.Finish(&ready);
  std::vector<std::vector<uint64_t>> out;
  for (const auto& batch : ready) {
    out.emplace_back();
    for (const PostLine& p : batch) out.back().push_back(p.line_number);
  }
  return out;
}

TEST(ChainBatcher, FillsBatchesAndNeverSplitsAChain) {
  using V = std::vector<std::vector<uint64_t>>;
  EXPECT_EQ(Batches({false, false, false, false, false}, 2), (V{{1, 2}, {3, 4}, {5}}));
  // 2-3-4 is a chain: it does not fit after 1 in a batch of 3 with room 2.
  EXPECT_EQ(Batches({false, true, true, false, false}, 3), (V{{1}, {2, 3, 4}, {5}}));
  EXPECT_EQ(Batches({true, false, true, false, false}, 2), (V{{1, 2}, {3, 4}, {5}}));
  // An open chain at the end is sent as it is.
  EXPECT_EQ(Batches({false, false, true, true}, 3), (V{{1, 2}, {3, 4}}));
  EXPECT_EQ(Batches({false, true, true, true}, 3), (V{{1}, {2, 3, 4}}));
  EXPECT_EQ(Batches({false, false, true}, 8190), (V{{1, 2, 3}}));
}

TEST(ChainBatcher, ChainLongerThanABatchIsAnError) {
  ChainBatcher batcher(3);
  std::vector<std::vector<PostLine>> ready;
  ASSERT_TRUE(batcher.Add(Line(1, false), &ready).ok());
  ASSERT_TRUE(batcher.Add(Line(2, true), &ready).ok());
  ASSERT_TRUE(batcher.Add(Line(3, true), &ready).ok());
  ASSERT_TRUE(batcher.Add(Line(4, true), &ready).ok());
  absl::Status s = batcher.Add(Line(5, false), &ready);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message(), "line 5: a linked chain starting at line 2 is longer than a batch (3 transactions); "
                         "a chain must fit in one request");
}

// Batches are cut by bytes too, so that a file of long lines fits the
// server's frame limit (a valid file of 8,190 long earns used to be refused
// whole with request_too_large; found in review, session 16).
TEST(ChainBatcher, CutsBatchesToTheFrameLimit) {
  PostLine line = Line(1, false);
  line.tx.program = "acme";
  line.tx.metadata = std::string(200, 'm');
  const size_t one = WireBytesBound(line.tx);
  ChainBatcher batcher(8190, kBatchFrameOverheadBytes + 2 * one);  // two a batch
  std::vector<std::vector<PostLine>> ready;
  for (uint64_t n = 1; n <= 5; ++n) {
    line.line_number = n;
    ASSERT_TRUE(batcher.Add(line, &ready).ok());
  }
  batcher.Finish(&ready);
  ASSERT_EQ(ready.size(), 3u);
  EXPECT_EQ(ready[0].size(), 2u);
  EXPECT_EQ(ready[2].size(), 1u);
  // A chain that cannot fit one request is an error naming its lines.
  ChainBatcher small(8190, kBatchFrameOverheadBytes + 2 * one);
  ready.clear();
  for (uint64_t n = 1; n <= 2; ++n) {
    line.line_number = n;
    line.tx.linked = true;
    ASSERT_TRUE(small.Add(line, &ready).ok());
  }
  line.line_number = 3;
  line.tx.linked = false;
  const absl::Status s = small.Add(line, &ready);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message().rfind("line 3: a linked chain starting at line 1 is larger than a request can be", 0),
            0u)
      << s.message();
  // One unlinked line too big alone is not called a chain (session 30).
  ChainBatcher tiny(8190, kBatchFrameOverheadBytes + one / 2);
  line.line_number = 4;
  const absl::Status alone = tiny.Add(line, &ready);
  ASSERT_FALSE(alone.ok());
  EXPECT_EQ(alone.message().rfind("line 4: the transaction is larger than a request can be", 0), 0u)
      << alone.message();
}

// WireBytesBound is an upper bound of what the request frame really takes,
// with every string at its longest and with the smallest transactions; and
// a close one (since session 33: it was three times a small earn's size).
TEST(ChainBatcher, TheBoundCoversTheRealFrame) {
  ledger::Transaction big;
  big.id[0] = 1;
  big.kind = Kind::kTransfer;
  big.program = std::string(ledger::kNameBytesMax, 'p');
  big.member = std::string(ledger::kMemberKeyBytesMax, 'm');
  big.member2 = std::string(ledger::kMemberKeyBytesMax, 'n');
  big.partner = std::string(ledger::kNameBytesMax, 'q');
  big.currency = "USD";
  big.order_ref = std::string(ledger::kOrderRefBytesMax, 'o');
  big.reason = std::string(ledger::kReasonBytesMax, 'r');
  big.metadata = std::string(ledger::kMetadataBytesMax, 'x');
  big.points = big.points2 = big.point_value_micros = big.lot_seq = ~uint64_t{0} >> 2;
  ledger::Transaction small;
  small.id[0] = 2;
  small.kind = Kind::kEarn;
  small.program = "a";
  small.member = "m";
  small.points = 1;
  ledger::Transaction odd = small;  // strings of odd lengths: padding
  odd.program = "abc";
  odd.member = "mmmmm";
  odd.order_ref = "o";
  for (const ledger::Transaction& tx : {big, small, odd}) {
    for (size_t n : {size_t{1}, size_t{2}, size_t{100}, size_t{8190}}) {
      flatbuffers::FlatBufferBuilder fbb;
      std::vector<flatbuffers::Offset<wire::Transaction>> offsets;
      for (size_t i = 0; i < n; ++i) offsets.push_back(net::TransactionToWire(fbb, tx));
      const auto batch = wire::CreateBatch(fbb, fbb.CreateVector(offsets));
      net::FinishRequest(fbb, ~uint64_t{0}, wire::RequestBody::Batch, batch.Union());
      EXPECT_LE(fbb.GetSize(), kBatchFrameOverheadBytes + n * WireBytesBound(tx)) << n << " " << tx.program;
      // Close: within its vtable (which a batch shares) and padding.
      if (n == 100) {
        EXPECT_GE(fbb.GetSize() + 100 * 80, 100 * WireBytesBound(tx)) << "a loose bound: " << tx.program;
      }
    }
  }
  // The case found (a linked redeem and earn): two small linked
  // transactions fit a 1 KiB frame.
  ChainBatcher batcher(8190, 1024);
  std::vector<std::vector<PostLine>> ready;
  PostLine first = Line(1, true);
  first.tx = small;
  first.tx.linked = true;
  PostLine second = Line(2, false);
  second.tx = small;
  ASSERT_TRUE(batcher.Add(first, &ready).ok());
  const absl::Status s = batcher.Add(second, &ready);
  EXPECT_TRUE(s.ok()) << s;
}

class CliPost : public ::testing::Test {
 protected:
  void SetUp() override {
    ledger_ = OpenTestLedger(tmp_.path(), &clock_);
    client_ = std::make_unique<LedgerClient>(ledger_.get(), &mu_);
  }
  std::string WriteFile(const std::string& text) {
    const std::string path = tmp_.path() + "/input.jsonl";
    std::ofstream(path) << text;
    return path;
  }
  uint64_t Available(const std::string& member) {
    absl::StatusOr<std::optional<ledger::Balance>> b = ledger_->GetBalance("acme", member);
    EXPECT_TRUE(b.ok() && b->has_value());
    return b.ok() && b->has_value() ? (*b)->available : 0;
  }

  FixedClock clock_;
  TempDir tmp_;
  std::mutex mu_;
  std::unique_ptr<ledger::Ledger> ledger_;
  std::unique_ptr<LedgerClient> client_;
};

constexpr char kProgram[] =
    R"({"kind":"program_create","id":"acme-v1","name":"acme","currency":"USD","point_value_micros":5000,"expiry_days":365})";

// A batch the server refuses whole (server_busy: nothing of it applied) is
// that batch's answer: its lines print nothing, the error names them, and
// the batches sent after it are still read and printed under their own
// lines. Until session 30 the refusal left its batch in the window, and the
// next batch's results were printed under the refused batch's lines: "ok"
// for transactions never applied.
TEST_F(CliPost, ARefusedBatchPrintsNothingAndTheOnesAfterItKeepTheirOwnLines) {
  {
    Captured setup;
    ASSERT_EQ(RunPostFile(*client_, setup.output(true), WriteFile(std::string(kProgram) + "\n"), nullptr), kExitOk)
        << setup.err();
  }
  LedgerClient client(ledger_.get(), &mu_);
  client.busy_at_send = 2;  // the third batch: input lines 7-9
  std::string text;
  for (int i = 1; i <= 24; ++i) {
    text += R"({"kind":"earn","id":"b)" + std::to_string(i) + R"(","program":"acme","member":"alice","points":1})" "\n";
  }
  Captured c;
  PostFileOptions options;
  options.batch_max = 3;
  options.in_flight = 2;
  EXPECT_EQ(RunPostFile(client, c.output(true), WriteFile(text), nullptr, options), kExitUsage) << c.err();
  EXPECT_NE(c.err().find("server_busy"), std::string::npos) << c.err();
  EXPECT_NE(c.err().find("input lines 7-9, not applied"), std::string::npos) << c.err();
  const std::vector<std::string> lines = SplitLines(c.out());
  // Batches 1 and 2 were answered before the refusal, batch 4 was already
  // sent; nothing more is sent after a refusal.
  ASSERT_EQ(lines.size(), 9u) << c.out();
  for (const std::string& line : lines) {
    const nlohmann::json j = nlohmann::json::parse(line);
    EXPECT_EQ(j["status"], "ok") << line;
    EXPECT_NE(j["id"], "b7");
    EXPECT_NE(j["id"], "b8");
    EXPECT_NE(j["id"], "b9");
    // The seq printed is the seq of that very transaction.
    absl::StatusOr<std::optional<ledger::TxRecord>> rec = ledger_->GetTransactionBySeq(j["seq"].get<uint64_t>());
    ASSERT_TRUE(rec.ok() && rec->has_value()) << line;
    EXPECT_EQ((*rec)->tx.id, ledger::TxIdFromKey("acme", j["id"].get<std::string>())) << line;
  }
  for (const char* refused : {"b7", "b8", "b9"}) {
    absl::StatusOr<std::optional<ledger::TxRecord>> rec = ledger_->GetTransaction(ledger::TxIdFromKey("acme", refused));
    ASSERT_TRUE(rec.ok());
    EXPECT_FALSE(rec->has_value()) << refused;
  }
}

// An answer that does not read right (DataLoss) is not a refusal: the batch
// may well be committed, and the error says so, not "not applied"; nothing
// more is read from that stream (found in review, session 30).
TEST_F(CliPost, AGarbledAnswerIsNotCalledARefusal) {
  {
    Captured setup;
    ASSERT_EQ(RunPostFile(*client_, setup.output(true), WriteFile(std::string(kProgram) + "\n"), nullptr), kExitOk)
        << setup.err();
  }
  LedgerClient client(ledger_.get(), &mu_);
  client.garbled_at_send = 0;
  const std::string text = R"({"kind":"earn","id":"g1","program":"acme","member":"alice","points":1})" "\n"
                           R"({"kind":"earn","id":"g2","program":"acme","member":"alice","points":1})" "\n";
  Captured c;
  PostFileOptions options;
  options.batch_max = 1;
  EXPECT_EQ(RunPostFile(client, c.output(true), WriteFile(text), nullptr, options), kExitUsage) << c.err();
  EXPECT_NE(c.err().find("(the batch of input lines 1-1: it may or may not be committed)"), std::string::npos)
      << c.err();
  EXPECT_EQ(c.err().find("not applied"), std::string::npos) << c.err();
  absl::StatusOr<std::optional<ledger::TxRecord>> g1 = ledger_->GetTransaction(ledger::TxIdFromKey("acme", "g1"));
  ASSERT_TRUE(g1.ok());
  EXPECT_TRUE(g1->has_value()) << "the garbled batch was committed";
}

TEST_F(CliPost, PostsAFileInBatchesAndPrintsResultsInOrder) {
  std::string text = std::string(kProgram) + "\n\n";  // a blank line is skipped
  for (int i = 0; i < 20; ++i) {
    text += R"({"kind":"earn","id":"e)" + std::to_string(i) + R"(","program":"acme","member":"alice","points":10})" "\n";
  }
  // A linked chain whose second member fails: both are rolled back.
  text += R"({"kind":"redeem","id":"r1","program":"acme","member":"alice","points":50,"linked":true})" "\n";
  text += R"({"kind":"redeem","id":"r2","program":"acme","member":"alice","points":500})" "\n";
  text += R"({"kind":"redeem","id":"r3","program":"acme","member":"alice","points":150})" "\n";
  const std::string path = WriteFile(text);
  absl::StatusOr<uint64_t> count = ValidatePostFile(path, nullptr, 4);
  ASSERT_TRUE(count.ok()) << count.status();
  EXPECT_EQ(*count, 24u);

  Captured c;
  PostFileOptions options;
  options.batch_max = 4;
  options.in_flight = 2;
  EXPECT_EQ(RunPostFile(*client_, c.output(true), path, nullptr, options), kExitRejected) << c.err();
  EXPECT_LE(client_->max_batch, 4u);
  EXPECT_EQ(client_->max_in_flight, 2u);
  const std::vector<std::string> lines = SplitLines(c.out());
  ASSERT_EQ(lines.size(), 24u);
  EXPECT_EQ(nlohmann::json::parse(lines[0])["id"], "acme-v1");
  for (int i = 0; i < 20; ++i) {
    nlohmann::json j = nlohmann::json::parse(lines[static_cast<size_t>(i) + 1]);
    EXPECT_EQ(j["id"], "e" + std::to_string(i));
    EXPECT_EQ(j["status"], "ok");
    EXPECT_EQ(j["seq"], i + 2);
  }
  EXPECT_EQ(nlohmann::json::parse(lines[21])["status"], "linked_event_failed");
  EXPECT_EQ(nlohmann::json::parse(lines[22])["status"], "insufficient_points");
  EXPECT_EQ(nlohmann::json::parse(lines[23])["status"], "ok");
  EXPECT_EQ(Available("alice"), 50u);

  // Again: every transaction is a duplicate with its first outcome.
  Captured again;
  EXPECT_EQ(RunPostFile(*client_, again.output(false), path, nullptr, options), kExitRejected);
  EXPECT_NE(again.out().find("e3  ok (duplicate)  seq 5"), std::string::npos) << again.out();
  EXPECT_NE(again.err().find("24 transactions: 22 ok (22 duplicates), 2 rejected"), std::string::npos)
      << again.err();
  EXPECT_EQ(Available("alice"), 50u);

  // One line: one transaction, one duplicate.
  const std::string one =
      WriteFile(R"({"kind":"earn","id":"e0","program":"acme","member":"alice","points":10})" "\n");
  Captured single;
  EXPECT_EQ(RunPostFile(*client_, single.output(false), one, nullptr, options), kExitOk);
  EXPECT_NE(single.err().find("1 transaction: 1 ok (1 duplicate), 0 rejected"), std::string::npos)
      << single.err();
}

// When sending stops early (a connection lost), the answers to the batches
// already sent are read and printed first: those transactions may be
// committed, and their lines must say how (found in review, session 16:
// they were committed but never printed).
TEST_F(CliPost, AnswersToWhatWasSentArePrintedWhenSendingStops) {
  std::string text = std::string(kProgram) + "\n";
  for (int i = 0; i < 11; ++i) {
    text += R"({"kind":"earn","id":"e)" + std::to_string(i) + R"(","program":"acme","member":"alice","points":10})" "\n";
  }
  const std::string path = WriteFile(text);
  client_->fail_after_posts = 2;  // the third batch's Send fails
  Captured c;
  PostFileOptions options;
  options.batch_max = 4;
  options.in_flight = 4;
  EXPECT_EQ(RunPostFile(*client_, c.output(true), path, nullptr, options), kExitUsage);
  const std::vector<std::string> lines = SplitLines(c.out());
  ASSERT_EQ(lines.size(), 8u) << c.out();  // the two batches sent: acme-v1, e0 ... e6
  EXPECT_EQ(nlohmann::json::parse(lines[7])["id"], "e6");
  EXPECT_NE(c.err().find("8 transactions were answered before this error"), std::string::npos) << c.err();
  EXPECT_EQ(Available("alice"), 70u);
}

TEST_F(CliPost, ReadsStdinText) {
  const std::string text = std::string(kProgram) + "\n" +
                           R"({"kind":"earn","id":"e","program":"acme","member":"bob","points":7})";
  ASSERT_TRUE(ValidatePostFile("-", &text).ok());
  Captured c;
  EXPECT_EQ(RunPostFile(*client_, c.output(true), "-", &text), kExitOk) << c.err();
  EXPECT_EQ(SplitLines(c.out()).size(), 2u);
  EXPECT_EQ(Available("bob"), 7u);
}

TEST_F(CliPost, ValidationNamesTheLine) {
  const std::string path = WriteFile(std::string(kProgram) + "\n" + R"({"kind":"earn","id":"e"})" "\n");
  absl::StatusOr<uint64_t> v = ValidatePostFile(path, nullptr);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().message(), "line 2: missing field \"program\" for kind earn");
  EXPECT_FALSE(ValidatePostFile(WriteFile("\n \n"), nullptr).ok());
  absl::StatusOr<uint64_t> missing = ValidatePostFile(tmp_.path() + "/nope.jsonl", nullptr);
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(missing.status()));
  EXPECT_NE(missing.status().message().find("No such file"), std::string::npos);
  std::string chain;
  for (int i = 0; i < 4; ++i) chain += R"({"kind":"release","id":"x","program":"acme","hold":"h","linked":true})" "\n";
  absl::StatusOr<uint64_t> long_chain = ValidatePostFile(WriteFile(chain), nullptr, 3);
  ASSERT_FALSE(long_chain.ok());
  EXPECT_EQ(long_chain.status().message().rfind("line 4: a linked chain starting at line 1", 0), 0u);
}

TEST_F(CliPost, PostOnePrintsTheResult) {
  const std::string text = kProgram;
  Captured setup;
  ASSERT_EQ(RunPostFile(*client_, setup.output(true), "-", &text), kExitOk);
  ledger::Transaction t;
  t.kind = Kind::kEarn;
  t.program = "acme";
  t.member = "carol";
  t.points = 5;
  t.id = ledger::TxIdFromKey("acme", "order-1");
  Captured c;
  EXPECT_EQ(RunPostOne(*client_, c.output(true), "order-1", t), kExitOk);
  nlohmann::json j = nlohmann::json::parse(c.out());
  EXPECT_EQ(j["id"], "order-1");
  EXPECT_EQ(j["status"], "ok");
  EXPECT_EQ(j["duplicate"], false);
  t.points = 6;  // same id, different content
  Captured conflict;
  EXPECT_EQ(RunPostOne(*client_, conflict.output(true), "order-1", t), kExitRejected);
  EXPECT_EQ(conflict.out(), "{\"id\":\"order-1\",\"status\":\"id_conflict\",\"conflict_field\":\"points\"}\n");
}

TEST_F(CliPost, ExpireBooksDueLotsAndOnlyPastHolds) {
  std::string text = std::string(kProgram) + "\n";
  for (int i = 0; i < 30; ++i) {
    text += R"({"kind":"earn","id":"x)" + std::to_string(i) + R"(","program":"acme","member":"m)" +
            std::to_string(i % 3) + R"(","points":10,"expires_at":"2026-12-01T00:00:00Z"})" "\n";
  }
  text += R"({"kind":"earn","id":"late","program":"acme","member":"m9","points":5})" "\n";
  text += R"({"kind":"hold","id":"h","program":"acme","member":"m9","points":5,"timeout":60})" "\n";
  Captured setup;
  ASSERT_EQ(RunPostFile(*client_, setup.output(true), "-", &text), kExitOk) << setup.err();

  // As of the future: the lots are due; the hold's deadline is not reached on
  // the (test) server clock, so it is left alone even though as_of is past it.
  const int64_t as_of = *ParseTime("2026-12-02T00:00:00Z");
  Captured c;
  ASSERT_EQ(RunExpire(*client_, c.output(true), as_of, clock_.now_ns), kExitOk) << c.err();
  nlohmann::json j = nlohmann::json::parse(c.out());
  EXPECT_EQ(j["expired_points"], 300);
  EXPECT_EQ(j["expired_lots"], 30);
  EXPECT_EQ(j["holds_released"], 0);
  EXPECT_EQ(Available("m1"), 0u);
  absl::StatusOr<std::optional<ledger::Balance>> m9 = ledger_->GetBalance("acme", "m9");
  EXPECT_EQ((*m9)->pending, 5u);

  // Time passes: the hold's deadline is past on both clocks.
  clock_.now_ns += int64_t{600} * 1'000'000'000;
  Captured later;
  ASSERT_EQ(RunExpire(*client_, later.output(false), clock_.now_ns, clock_.now_ns), kExitOk);
  EXPECT_NE(later.out().find("expired 0 points in 0 lots, released 1 timed-out holds"), std::string::npos)
      << later.out();
  m9 = ledger_->GetBalance("acme", "m9");
  EXPECT_EQ((*m9)->pending, 0u);
  EXPECT_EQ((*m9)->available, 5u);
}

// A round whose answer was lost and sent again by the client library
// answers all duplicates though this run booked them: the rounds go on to
// what is still due (found in review, session 30: `expire` stopped there,
// "expired 0 points in 0 lots", with 10 lots left due).
TEST_F(CliPost, ExpireGoesOnPastARoundAnsweredAsDuplicates) {
  std::string text = std::string(kProgram) + "\n";
  constexpr int kLots = static_cast<int>(ledger::kBatchTransactionsMax) + 10;  // two rounds
  for (int i = 0; i < kLots; ++i) {
    text += R"({"kind":"earn","id":"d)" + std::to_string(i) + R"(","program":"acme","member":"m)" +
            std::to_string(i % 50) + R"(","points":1,"expires_at":"2026-12-01T00:00:00Z"})" "\n";
  }
  Captured setup;
  ASSERT_EQ(RunPostFile(*client_, setup.output(true), "-", &text), kExitOk) << setup.err();
  LedgerClient client(ledger_.get(), &mu_);
  client.resent_post = 0;  // the first round
  const int64_t as_of = *ParseTime("2026-12-02T00:00:00Z");
  Captured c;
  ASSERT_EQ(RunExpire(client, c.output(true), as_of, clock_.now_ns), kExitOk) << c.err();
  const nlohmann::json j = nlohmann::json::parse(c.out());
  EXPECT_EQ(j["expired_lots"], 10) << c.out();  // the second round's, booked the first time
  EXPECT_EQ(j["duplicates"], ledger::kBatchTransactionsMax) << c.out();
  absl::StatusOr<std::vector<ledger::Transaction>> due = ledger_->CollectDue(as_of, 100);
  ASSERT_TRUE(due.ok());
  EXPECT_TRUE(due->empty()) << due->size() << " lots left due";
  EXPECT_EQ(Available("m7"), 0u);
}

// docs/cli.md, `expire`: a future --as-of that expired lots says so on
// stderr (an expiry is not reversible); one that expired nothing has
// nothing to warn about.
TEST_F(CliPost, ExpireNotesAFutureAsOfOnlyWhenItExpiredLots) {
  const std::string text = std::string(kProgram) + "\n" +
                           R"({"kind":"earn","id":"soon","program":"acme","member":"m","points":10,"expires_at":"2026-12-01T00:00:00Z"})" "\n";
  Captured setup;
  ASSERT_EQ(RunPostFile(*client_, setup.output(true), "-", &text), kExitOk) << setup.err();
  const int64_t as_of = *ParseTime("2026-12-02T00:00:00Z");  // after the server's (test) clock
  Captured first;
  ASSERT_EQ(RunExpire(*client_, first.output(true), as_of, clock_.now_ns), kExitOk) << first.err();
  EXPECT_EQ(nlohmann::json::parse(first.out())["expired_lots"], 1);
  EXPECT_NE(first.err().find("note: --as-of 2026-12-02T00:00:00.000000000Z is in the future"), std::string::npos)
      << first.err();
  Captured again;
  ASSERT_EQ(RunExpire(*client_, again.output(true), as_of, clock_.now_ns), kExitOk) << again.err();
  EXPECT_EQ(nlohmann::json::parse(again.out())["expired_lots"], 0);
  EXPECT_EQ(again.err(), "");
}

}  // namespace
}  // namespace pointledger::tools
