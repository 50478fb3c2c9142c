// `pointledger stats` and `pointledger ping` (issue 5, operations) against
// the real pointledgerd: the counters move with what was posted, rejected
// transactions are counted under their code, and ping fails (exit 2) when
// nothing answers or the key is wrong.
#include <fstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/tools/subprocess.h"
#include "tests/tools/test_util.h"

namespace pointledger::tools {
namespace {

using nlohmann::json;

class OpsE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!BinExists("pointledgerd") || !BinExists("pointledger")) GTEST_SKIP() << "binaries not built";
    server_ = std::make_unique<ServerProcess>(dir_.path() + "/data");
    ASSERT_TRUE(server_->ready()) << server_->log();
  }

  RunResult Cli(std::vector<std::string> args) {
    std::vector<std::string> argv = {BinPath("pointledger")};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), {"--server", server_->address(), "--key-file", server_->key_file()});
    return RunProcess(argv, dir_.path());
  }

  json Stats() {
    RunResult r = Cli({"stats", "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    json j = json::parse(r.out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.out;
    return j;
  }

  TempDir dir_;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(OpsE2E, StatsCountWhatWasCommittedAndRejectedByCode) {
  const json before = Stats();
  EXPECT_EQ(before["committed"], 0);
  EXPECT_EQ(before["rejected"], 0);
  EXPECT_GE(before["connections_open"].get<uint64_t>(), 1u);  // this very client
  EXPECT_GT(before["log_map_size_bytes"].get<uint64_t>(), 0u);
  EXPECT_GT(before["state_map_size_bytes"].get<uint64_t>(), 0u);

  ASSERT_EQ(Cli({"program", "create", "acme", "--currency", "USD", "--point-value-micros", "5000", "--expiry-days", "365", "--id", "p1"}).exit_code, 0);
  ASSERT_EQ(Cli({"earn", "--program", "acme", "--member", "alice", "--points", "100", "--id", "e1"}).exit_code, 0);
  // A duplicate is answered from the record: not a new commit, not a rejection.
  ASSERT_EQ(Cli({"earn", "--program", "acme", "--member", "alice", "--points", "100", "--id", "e1"}).exit_code, 0);
  EXPECT_EQ(Cli({"redeem", "--program", "acme", "--member", "alice", "--points", "500", "--id", "r1"}).exit_code, 1);
  EXPECT_EQ(Cli({"earn", "--program", "nope", "--member", "alice", "--points", "1", "--id", "e2"}).exit_code, 1);

  const json after = Stats();
  EXPECT_EQ(after["committed"], 2) << after.dump();
  EXPECT_EQ(after["duplicates"], 1) << after.dump();
  EXPECT_EQ(after["rejected"], 2) << after.dump();
  EXPECT_EQ(after["rejected_by_code"]["insufficient_points"], 1) << after.dump();
  EXPECT_EQ(after["rejected_by_code"]["program_not_found"], 1) << after.dump();
  EXPECT_GE(after["connections_accepted"].get<uint64_t>(),
            before["connections_accepted"].get<uint64_t>() + 5);
  EXPECT_GE(after["commits"].get<uint64_t>(), 4u);
  EXPECT_GE(after["group_commit_max_transactions"].get<uint64_t>(), 1u);
  EXPECT_GE(after["commit_max_us"].get<uint64_t>(), after["commit_p50_us"].get<uint64_t>());
  EXPECT_GT(after["commit_p99_us"].get<uint64_t>(), 0u);
  EXPECT_GT(after["log_map_used_bytes"].get<uint64_t>(), 0u);
  EXPECT_LE(after["log_map_used_bytes"].get<uint64_t>(), after["log_map_size_bytes"].get<uint64_t>());

  // The readable form names the same figures.
  RunResult text = Cli({"stats"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("insufficient_points"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("commit_p99_us"), std::string::npos) << text.out;
}

TEST_F(OpsE2E, PingIsHealthyOnlyWhenTheServerAnswersTheKey) {
  RunResult ok = Cli({"ping", "--json"});
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  const json j = json::parse(ok.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << ok.out;
  EXPECT_EQ(j["ok"], true);
  EXPECT_EQ(j["server"], server_->address());
  EXPECT_FALSE(j["principal"].get<std::string>().empty());

  const std::string bad_key = dir_.path() + "/bad.key";
  std::ofstream(bad_key) << "pl_not_a_key\n";
  RunResult wrong = RunProcess({BinPath("pointledger"), "ping", "--server", server_->address(), "--key-file", bad_key},
                               dir_.path());
  EXPECT_EQ(wrong.exit_code, 2) << wrong.out;

  const std::string address = server_->address();
  server_->Stop();
  RunResult down = RunProcess({BinPath("pointledger"), "ping", "--server", address, "--key-file",
                               server_->key_file()},
                              dir_.path());
  EXPECT_EQ(down.exit_code, 2) << down.out;
  EXPECT_FALSE(down.err.empty());
}

}  // namespace
}  // namespace pointledger::tools
