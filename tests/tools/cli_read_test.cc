// The read commands and the output formats, over a ledger created in-process
// and then opened read-only the way `--data DIR` opens it.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "gtest/gtest.h"
#include "ledger/ledger.h"
#include "ledger/limits.h"
#include "nlohmann/json.hpp"
#include "tools/cli_format.h"
#include "tools/cli_read.h"
#include "tools/cli_time.h"
#include "tests/tools/test_util.h"

namespace pointledger::tools {
namespace {

using ledger::Code;
using ledger::Kind;
using ledger::Transaction;
using ledger::TxIdFromKey;

class CliRead : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = tmp_.path();
    writer_ = OpenTestLedger(dir_, &clock_);
  }
  void TearDown() override { writer_.reset(); }

  ledger::Result Apply(Transaction t, std::string_view key) {
    t.id = TxIdFromKey(t.program, key);
    std::vector<ledger::Result> results;
    absl::Status s = writer_->ApplyBatch({&t, 1}, ledger::Auth::Admin(), &results);
    EXPECT_TRUE(s.ok()) << s;
    clock_.now_ns += 1'000'000'000;
    return results.at(0);
  }

  void Populate() {
    Transaction p;
    p.kind = Kind::kProgramCreate;
    p.program = "acme";
    p.currency = "USD";
    p.point_value_micros = 5000;
    p.expiry_days = 365;
    ASSERT_EQ(Apply(p, "acme-v1").code, Code::kOk);
    Transaction partner;
    partner.kind = Kind::kPartnerCreate;
    partner.program = "acme";
    partner.partner = "hotelco";
    partner.earn_price_micros = 9000;
    partner.redeem_price_micros = 7000;
    ASSERT_EQ(Apply(partner, "hotelco-v1").code, Code::kOk);
    Transaction earn;
    earn.kind = Kind::kEarn;
    earn.program = "acme";
    earn.member = "alice";
    earn.points = 120;
    ASSERT_EQ(Apply(earn, "order-1001").code, Code::kOk);
    earn.points = 30;
    earn.partner = "hotelco";
    earn.time_ns = *ParseTime("2027-01-01T00:00:00Z");
    ASSERT_EQ(Apply(earn, "order-1002").code, Code::kOk);
    Transaction redeem;
    redeem.kind = Kind::kRedeem;
    redeem.program = "acme";
    redeem.member = "alice";
    redeem.points = 50;
    ASSERT_EQ(Apply(redeem, "reward-77").code, Code::kOk);
    redeem.points = 5000;
    ASSERT_EQ(Apply(redeem, "reward-78").code, Code::kInsufficientPoints);
  }

  // The read-only view `--data DIR` uses, opened beside the writer.
  std::unique_ptr<Reader> DataDir() {
    absl::StatusOr<std::unique_ptr<Reader>> r = OpenDataDir(dir_);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? std::move(*r) : nullptr;
  }

  FixedClock clock_;
  TempDir tmp_;
  std::string dir_;
  std::unique_ptr<ledger::Ledger> writer_;
};

TEST_F(CliRead, BalanceJsonAndTable) {
  Populate();
  std::unique_ptr<Reader> reader = DataDir();
  ASSERT_NE(reader, nullptr);
  Captured c;
  ASSERT_EQ(RunBalance(*reader, c.output(true), "acme", "alice"), kExitOk) << c.err();
  nlohmann::json j = nlohmann::json::parse(c.out());
  EXPECT_EQ(j["program"], "acme");
  EXPECT_EQ(j["member"], "alice");
  EXPECT_EQ(j["posted"], 100);
  EXPECT_EQ(j["pending"], 0);
  EXPECT_EQ(j["available"], 100);
  // The redeem of 50 took the soonest-expiring lot (30, 2027-01-01) first,
  // then 20 of the 120 that expire 365 days after their earn.
  ASSERT_EQ(j["expiring"].size(), 1u);
  EXPECT_EQ(j["expiring"][0]["at"], "2027-11-22T10:00:02.000000000Z");
  EXPECT_EQ(j["expiring"][0]["points"], 100);
  EXPECT_EQ(c.out().back(), '\n');
  EXPECT_EQ(c.out().find('\n'), c.out().size() - 1) << "one object, one line";

  Captured t;
  ASSERT_EQ(RunBalance(*reader, t.output(false), "acme", "alice"), kExitOk);
  EXPECT_NE(t.out().find("available  100"), std::string::npos) << t.out();
  EXPECT_NE(t.out().find("2027-11-22T10:00:02.000000000Z  100"), std::string::npos) << t.out();
}

TEST_F(CliRead, UnknownMemberOrProgramIsExitOne) {
  Populate();
  std::unique_ptr<Reader> reader = DataDir();
  Captured c;
  EXPECT_EQ(RunBalance(*reader, c.output(true), "acme", "nobody"), kExitRejected);
  EXPECT_EQ(c.out(), "");
  EXPECT_NE(c.err().find("no member 'nobody' in program 'acme'"), std::string::npos) << c.err();
  Captured p;
  EXPECT_EQ(RunBalance(*reader, p.output(true), "nope", "alice"), kExitRejected);
  EXPECT_NE(p.err().find("no program 'nope'"), std::string::npos) << p.err();
}

TEST_F(CliRead, HistoryNewestFirst) {
  Populate();
  std::unique_ptr<Reader> reader = DataDir();
  Captured c;
  ASSERT_EQ(RunHistory(*reader, c.output(true), "acme", "alice", 50, 0), kExitOk) << c.err();
  std::vector<nlohmann::json> lines;
  std::string out = c.out();
  for (size_t pos = 0; pos < out.size();) {
    const size_t nl = out.find('\n', pos);
    lines.push_back(nlohmann::json::parse(out.substr(pos, nl - pos)));
    pos = nl + 1;
  }
  ASSERT_EQ(lines.size(), 3u) << out;  // the rejected redeem moved nothing
  EXPECT_EQ(lines[0]["kind"], "redeem");
  EXPECT_EQ(lines[0]["points"], -50);
  EXPECT_EQ(lines[0]["id"], ledger::IdToHex(TxIdFromKey("acme", "reward-77")));
  EXPECT_EQ(lines[2]["kind"], "earn");
  EXPECT_EQ(lines[2]["points"], 120);
  EXPECT_GT(lines[0]["seq"].get<uint64_t>(), lines[1]["seq"].get<uint64_t>());

  Captured page;
  ASSERT_EQ(RunHistory(*reader, page.output(true), "acme", "alice", 1, lines[0]["seq"].get<uint64_t>()),
            kExitOk);
  EXPECT_EQ(nlohmann::json::parse(page.out())["seq"], lines[1]["seq"]);

  Captured table;
  ASSERT_EQ(RunHistory(*reader, table.output(false), "acme", "alice", 50, 0), kExitOk);
  EXPECT_NE(table.out().find("redeem"), std::string::npos);
  EXPECT_NE(table.out().find("+120"), std::string::npos) << table.out();

  Captured bad;
  EXPECT_EQ(RunHistory(*reader, bad.output(false), "acme", "alice", 0, 0), kExitUsage);
}

TEST_F(CliRead, TxGetShowsFieldsResultAndPostings) {
  Populate();
  std::unique_ptr<Reader> reader = DataDir();
  Captured c;
  ASSERT_EQ(RunTxGet(*reader, c.output(true), "acme", "order-1002", TxIdFromKey("acme", "order-1002")),
            kExitOk)
      << c.err();
  nlohmann::json j = nlohmann::json::parse(c.out());
  EXPECT_EQ(j["id"], "order-1002");
  EXPECT_EQ(j["id_hex"], ledger::IdToHex(TxIdFromKey("acme", "order-1002")));
  EXPECT_EQ(j["kind"], "earn");
  EXPECT_EQ(j["status"], "ok");
  EXPECT_EQ(j["member"], "alice");
  EXPECT_EQ(j["points"], 30);
  EXPECT_EQ(j["partner"], "hotelco");
  EXPECT_EQ(j["expires_at"], "2027-01-01T00:00:00.000000000Z");
  ASSERT_EQ(j["postings"].size(), 1u);
  EXPECT_EQ(j["postings"][0]["debit"], "acme/partner/hotelco");
  EXPECT_EQ(j["postings"][0]["credit"], "acme/member/alice");
  EXPECT_EQ(j["postings"][0]["points"], 30);
  EXPECT_EQ(j["hash"].get<std::string>().size(), 64u);

  // A recorded rejection is a transaction too.
  Captured r;
  ASSERT_EQ(RunTxGet(*reader, r.output(true), "acme", "reward-78", TxIdFromKey("acme", "reward-78")), kExitOk);
  EXPECT_EQ(nlohmann::json::parse(r.out())["status"], "insufficient_points");

  Captured text;
  ASSERT_EQ(RunTxGet(*reader, text.output(false), "acme", "reward-77", TxIdFromKey("acme", "reward-77")),
            kExitOk);
  EXPECT_NE(text.out().find("acme/member/alice -> acme/redemption  50"), std::string::npos) << text.out();

  Captured missing;
  EXPECT_EQ(RunTxGet(*reader, missing.output(true), "acme", "nope", TxIdFromKey("acme", "nope")), kExitRejected);
  EXPECT_NE(missing.err().find("no transaction 'nope'"), std::string::npos);
  // The id of another program is not found in this one.
  Captured other;
  EXPECT_EQ(RunTxGet(*reader, other.output(true), "other", "order-1001", TxIdFromKey("acme", "order-1001")),
            kExitRejected);
}

TEST_F(CliRead, AuditHeadAndStatement) {
  std::unique_ptr<Reader> empty = DataDir();
  Captured e;
  ASSERT_EQ(RunAuditHead(*empty, e.output(true)), kExitOk);
  EXPECT_EQ(nlohmann::json::parse(e.out())["seq"], 0);
  empty.reset();

  Populate();
  std::unique_ptr<Reader> reader = DataDir();
  Captured c;
  ASSERT_EQ(RunAuditHead(*reader, c.output(true)), kExitOk);
  nlohmann::json head = nlohmann::json::parse(c.out());
  EXPECT_EQ(head["seq"], 6);
  EXPECT_EQ(head["hash"].get<std::string>().size(), 64u);
  Captured t;
  ASSERT_EQ(RunAuditHead(*reader, t.output(false)), kExitOk);
  EXPECT_NE(t.out().find(StrCat("head       6:", head["hash"].get<std::string>())), std::string::npos);

  Captured s;
  ASSERT_EQ(RunSettleStatement(*reader, s.output(true), "acme", "hotelco", 0, *ParseTime("2030-01-01T00:00:00Z")),
            kExitOk)
      << s.err();
  nlohmann::json st = nlohmann::json::parse(s.out());
  EXPECT_EQ(st["earned_points"], 30);
  EXPECT_EQ(st["partner_owes_micros"], 30 * 9000);
  EXPECT_EQ(st["payer"], "partner");
  Captured st_text;
  ASSERT_EQ(RunSettleStatement(*reader, st_text.output(false), "acme", "hotelco", 0,
                               *ParseTime("2030-01-01T00:00:00Z")),
            kExitOk);
  EXPECT_NE(st_text.out().find("0.270000  paid by the partner"), std::string::npos) << st_text.out();
  Captured nf;
  EXPECT_EQ(RunSettleStatement(*reader, nf.output(true), "acme", "nobody", 0, 1), kExitRejected);
}

TEST(CliDataDir, MissingDirectoryIsAUsageError) {
  absl::StatusOr<std::unique_ptr<Reader>> r = OpenDataDir("/nonexistent/pl");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("no such directory"), std::string::npos);
}

TEST(CliDataDir, TheRebuildBoundIsHalfTheAvailableMemoryAndNeverBelowTheServers) {
  constexpr uint64_t kGiB = uint64_t{1} << 30;
  constexpr uint64_t kServers = uint64_t{1} << 23;
  // Unknown (no /proc) or small: the server's fixed bound.
  EXPECT_EQ(DefaultRebuildMemoryRows(0), kServers);
  EXPECT_EQ(DefaultRebuildMemoryRows(2 * kGiB), kServers);
  // Half of 24 GiB at 300 bytes a row: ~43M rows, room for a 10M ledger's
  // whole rebuild (39M rows, BENCHMARKS.md), which the fixed bound spilled 5 times.
  EXPECT_EQ(DefaultRebuildMemoryRows(24 * kGiB), 24 * kGiB / 2 / 300);
  // A number of bytes no machine has stays within the config's cap.
  EXPECT_EQ(DefaultRebuildMemoryRows(UINT64_MAX), uint64_t{1} << 40);
  // This machine's figure is read (Linux always has MemAvailable).
  const uint64_t available = AvailableMemoryBytes();
  EXPECT_GT(available, uint64_t{0});
  EXPECT_GE(DefaultRebuildMemoryRows(available), kServers);
}

// A container's limit or systemd's MemoryMax= binds where MemAvailable
// (the host's) does not: without this, a 10M audit in a 4 GB container on
// a 32 GB host sized its rebuild at ~50M rows and was killed (found in
// review, session 29). Limits on ancestors count; "max" is no limit.
TEST(CliDataDir, CgroupLimitsBoundTheRoomAtEveryLevel) {
  TempDir tmp;
  const std::string v2 = tmp.path() + "/v2";
  const std::string v1 = tmp.path() + "/v1";
  auto write = [](const std::string& path, const std::string& text) {
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    std::ofstream(path) << text << "\n";
  };
  constexpr uint64_t kGiB = uint64_t{1} << 30;
  // No limit anywhere (v2 "max", v1's huge number is no tighter).
  write(v2 + "/memory.max", "max");
  write(v2 + "/pod/app/memory.max", "max");
  write(v2 + "/pod/app/memory.current", std::to_string(kGiB));
  EXPECT_EQ(CgroupRoomBytes("0::/pod/app\n", v2, v1), UINT64_MAX);
  // A limit on the parent (the pod) binds the child.
  write(v2 + "/pod/memory.max", std::to_string(4 * kGiB));
  write(v2 + "/pod/memory.current", std::to_string(kGiB));
  EXPECT_EQ(CgroupRoomBytes("0::/pod/app\n", v2, v1), 3 * kGiB);
  // A tighter one on the cgroup itself wins; usage over the limit is 0.
  write(v2 + "/pod/app/memory.max", std::to_string(2 * kGiB));
  EXPECT_EQ(CgroupRoomBytes("0::/pod/app\n", v2, v1), kGiB);
  write(v2 + "/pod/app/memory.current", std::to_string(3 * kGiB));
  EXPECT_EQ(CgroupRoomBytes("0::/pod/app/\n", v2, v1), 0u);
  // cgroup v1's memory controller, among others on its line.
  write(v1 + "/svc/memory.limit_in_bytes", std::to_string(6 * kGiB));
  write(v1 + "/svc/memory.usage_in_bytes", std::to_string(kGiB));
  write(v1 + "/memory.limit_in_bytes", "9223372036854771712");
  EXPECT_EQ(CgroupRoomBytes("4:memory:/svc\n0::/\n", v2, v1), 5 * kGiB);
  EXPECT_EQ(CgroupRoomBytes("4:cpu,memory:/svc\n", v2, v1), 5 * kGiB);
  EXPECT_EQ(CgroupRoomBytes("4:cpu:/svc\n", v2, v1), UINT64_MAX);
  // Nothing readable: no limit.
  EXPECT_EQ(CgroupRoomBytes("", v2, v1), UINT64_MAX);
  EXPECT_EQ(CgroupRoomBytes("0::/nowhere\n", tmp.path() + "/none", v1), UINT64_MAX);
}

TEST(CliFormat, ResultJsonIsExactlyTheSpecShape) {
  ledger::Result ok;
  ok.seq = 42;
  ok.timestamp_ns = *ParseTime("2026-11-22T10:00:00.123456789Z");
  EXPECT_EQ(ResultJson("order-1001", Kind::kEarn, ok),
            R"({"id":"order-1001","status":"ok","duplicate":false,"seq":42,"timestamp":"2026-11-22T10:00:00.123456789Z"})");
  ok.duplicate = true;
  ok.points = 60;
  EXPECT_EQ(ResultJson("refund-1", Kind::kReverse, ok),
            R"({"id":"refund-1","status":"ok","duplicate":true,"seq":42,"timestamp":"2026-11-22T10:00:00.123456789Z","points":60})");
  ledger::Result rejected;
  rejected.code = Code::kInsufficientPoints;
  EXPECT_EQ(ResultJson("reward-77", Kind::kRedeem, rejected), R"({"id":"reward-77","status":"insufficient_points"})");
  // A recorded rejection (it took the id, SPEC §3) is SPEC §8's shape in
  // JSON when it is decided; its retry says it is a duplicate, with the
  // original seq and time (SPEC §3). The text form shows both.
  ledger::Result recorded = rejected;
  recorded.seq = 43;
  recorded.timestamp_ns = ok.timestamp_ns;
  recorded.points = 7;  // never shown for a rejection
  EXPECT_EQ(ResultJson("reward-78", Kind::kReverse, recorded),
            R"({"id":"reward-78","status":"insufficient_points"})");
  recorded.duplicate = true;
  EXPECT_EQ(ResultJson("reward-78", Kind::kReverse, recorded),
            R"({"id":"reward-78","status":"insufficient_points","duplicate":true,"seq":43,"timestamp":"2026-11-22T10:00:00.123456789Z"})");
  EXPECT_EQ(ResultText("reward-78", Kind::kRedeem, recorded),
            "reward-78  rejected: insufficient_points (duplicate)  seq 43 - the member has fewer available "
            "points than asked");
  ledger::Result conflict;
  conflict.code = Code::kIdConflict;
  conflict.conflict_field = "points";
  EXPECT_EQ(ResultJson("x", Kind::kEarn, conflict), R"({"id":"x","status":"id_conflict","conflict_field":"points"})");
  // The differing field by the name the command line knows it by.
  conflict.conflict_field = "member2";
  EXPECT_EQ(ResultJson("x", Kind::kTransfer, conflict), R"({"id":"x","status":"id_conflict","conflict_field":"to"})");
  EXPECT_EQ(ResultText("x", Kind::kReferral, conflict).substr(0, 40), "x  rejected: id_conflict (field referee)");
  conflict.conflict_field = "time_ns";
  EXPECT_EQ(ResultJson("x", Kind::kEarn, conflict),
            R"({"id":"x","status":"id_conflict","conflict_field":"expires_at"})");
  conflict.conflict_field = "ref";
  EXPECT_EQ(ResultJson("x", Kind::kCapture, conflict), R"({"id":"x","status":"id_conflict","conflict_field":"hold"})");
  EXPECT_EQ(ResultJson("x", Kind::kReverse, conflict),
            R"({"id":"x","status":"id_conflict","conflict_field":"original"})");
  // Invalid UTF-8 in a key is replaced, never thrown.
  EXPECT_EQ(ResultJson("a\xff", Kind::kEarn, rejected), "{\"id\":\"a\xEF\xBF\xBD\",\"status\":\"insufficient_points\"}");
  EXPECT_EQ(ResultText("reward-77", Kind::kRedeem, rejected),
            "reward-77  rejected: insufficient_points - the member has fewer available points than asked");
  EXPECT_EQ(MicrosToDecimal(-1234567), "-1.234567");
  EXPECT_EQ(MicrosToDecimal(5), "0.000005");
}

// docs/cli.md, "Results": conflict_field is named as the command's flag.
// The kinds whose wire field has another name than their flag, beyond the
// ones above: a referral's two amounts, a hold's timeout, a settle's --to,
// a partner price's --effective-from, a program create's NAME.
TEST(CliFormat, EveryConflictFieldIsNamedAsTheFlag) {
  ledger::Result conflict;
  conflict.code = Code::kIdConflict;
  auto field = [&](Kind kind, const std::string& wire) {
    conflict.conflict_field = wire;
    return nlohmann::json::parse(ResultJson("x", kind, conflict))["conflict_field"].get<std::string>();
  };
  EXPECT_EQ(field(Kind::kReferral, "points"), "referrer_points");
  EXPECT_EQ(field(Kind::kReferral, "points2"), "referee_points");
  EXPECT_EQ(field(Kind::kReferral, "member"), "referrer");
  EXPECT_EQ(field(Kind::kTransfer, "member"), "from");
  EXPECT_EQ(field(Kind::kTransfer, "points"), "points");
  EXPECT_EQ(field(Kind::kHold, "timeout_s"), "timeout");
  EXPECT_EQ(field(Kind::kSettle, "time_ns"), "to");
  EXPECT_EQ(field(Kind::kPartnerPrice, "time_ns"), "effective_from");
  EXPECT_EQ(field(Kind::kProgramCreate, "program"), "name");
  EXPECT_EQ(field(Kind::kEarn, "program"), "program");
  conflict.conflict_field = "timeout_s";
  EXPECT_EQ(ResultText("x", Kind::kHold, conflict).substr(0, 40), "x  rejected: id_conflict (field timeout)");
}

// tx get names a transfer's members by their flags, and shows what a
// capture (reverse, account close) actually moved as result_points.
TEST(CliFormat, TxRecordJsonNamesTheFlagsAndTheResult) {
  ledger::TxRecord transfer;
  transfer.seq = 9;
  transfer.tx.kind = Kind::kTransfer;
  transfer.tx.program = "acme";
  transfer.tx.member = "alice";
  transfer.tx.member2 = "carol";
  transfer.tx.points = 10;
  const nlohmann::json t = nlohmann::json::parse(TxRecordJson("gift-1", transfer));
  EXPECT_EQ(t["from"], "alice") << t.dump();
  EXPECT_EQ(t["to"], "carol") << t.dump();
  EXPECT_EQ(t["points"], 10);
  EXPECT_FALSE(t.contains("result_points")) << t.dump();
  ledger::TxRecord capture;
  capture.seq = 13;
  capture.tx.kind = Kind::kCapture;
  capture.tx.program = "acme";
  capture.tx.points = 0;  // all that was held
  capture.result.points = 40;
  const nlohmann::json c = nlohmann::json::parse(TxRecordJson("cap-5", capture));
  EXPECT_EQ(c["result_points"], 40) << c.dump();
  EXPECT_FALSE(c.contains("points")) << c.dump();
  capture.result.code = Code::kHoldNotPending;  // nothing moved
  EXPECT_FALSE(nlohmann::json::parse(TxRecordJson("cap-5", capture)).contains("result_points"));
}

// Users' strings in the text output: an escape sequence in a member key or
// a line break in a reason would drive the reader's terminal or split a
// record over two lines; they are printed escaped (tools/cli_format.h),
// and --json keeps the string itself.
TEST(CliFormat, TextShowsControlCharactersEscaped) {
  EXPECT_EQ(Shown("caf\xc3\xa9 a\\b\x1b[2J\n\t\x7f"), "caf\xc3\xa9 a\\\\b\\x1b[2J\\n\\t\\x7f");
  ledger::Balance b;
  const std::string balance = BalanceText("acme", "eve\x1b]0;owned\x07", b);
  EXPECT_NE(balance.find("member     eve\\x1b]0;owned\\x07\n"), std::string::npos) << balance;
  EXPECT_EQ(balance.find('\x1b'), std::string::npos);
  EXPECT_EQ(nlohmann::json::parse(BalanceJson("acme", "eve\x1b", b))["member"], "eve\x1b");
  ledger::Result ok;
  ok.seq = 1;
  EXPECT_EQ(ResultText("a\nb", Kind::kEarn, ok).substr(0, 8), "a\\nb  ok");
  ledger::TxRecord rec;
  rec.seq = 3;
  rec.tx.kind = Kind::kAdjust;
  rec.tx.program = "acme";
  rec.tx.member = "m\r1";
  rec.tx.reason = "line one\nline two";
  rec.postings.push_back({ledger::MemberAccountId("acme", "m\r1"), ledger::SystemAccountId("acme", "adjustment"), 5});
  const std::string text = TxRecordText("adj\x1b", rec);
  EXPECT_NE(text.find("line one\\nline two\n"), std::string::npos) << text;
  EXPECT_NE(text.find("adj\\x1b\n"), std::string::npos) << text;
  EXPECT_NE(text.find("  acme/member/m\\r1 -> acme/adjustment  5\n"), std::string::npos) << text;
  for (char c : text) EXPECT_TRUE(c == '\n' || static_cast<unsigned char>(c) >= 0x20) << text;
}

// A statement the program pays prints its net unsigned, with the payer;
// an empty ledger's head has no time (docs/cli.md, `audit head`).
TEST(CliFormat, StatementNetAndTheEmptyHead) {
  ledger::Statement s;
  s.program = "acme";
  s.partner = "hotelco";
  s.redeemed_points = 30;
  s.program_owes_micros = 210000;
  s.net_micros = -210000;
  s.payer = "program";
  const std::string text = StatementText(s);
  EXPECT_NE(text.find("net                   0.210000  paid by the program\n"), std::string::npos) << text;
  EXPECT_EQ(nlohmann::json::parse(StatementJson(s))["net_micros"], -210000);
  EXPECT_EQ(HeadJson(ledger::ChainHead{}),
            StrCat(R"({"seq":0,"timestamp":null,"hash":")", std::string(64, '0'), R"("})"));
  EXPECT_EQ(HeadText(ledger::ChainHead{}), StrCat("empty ledger  head 0:", std::string(64, '0'), "\n"));
}

// --limit is 1 to 1000 (kHistoryLimitMax), both ends included.
TEST_F(CliRead, HistoryLimitIsOneToTheMaximum) {
  Populate();
  std::unique_ptr<Reader> reader = DataDir();
  Captured max;
  EXPECT_EQ(RunHistory(*reader, max.output(true), "acme", "alice", ledger::kHistoryLimitMax, 0), kExitOk)
      << max.err();
  const std::string lines = max.out();
  EXPECT_EQ(std::count(lines.begin(), lines.end(), '\n'), 3) << lines;
  Captured over;
  EXPECT_EQ(RunHistory(*reader, over.output(true), "acme", "alice", ledger::kHistoryLimitMax + 1, 0), kExitUsage);
  EXPECT_NE(over.err().find(StrCat("--limit must be from 1 to ", ledger::kHistoryLimitMax)), std::string::npos)
      << over.err();
  EXPECT_EQ(over.out(), "");
}

}  // namespace
}  // namespace pointledger::tools
