// `pointledger backup` (issue 5): a hot copy taken while the real server is
// under load must be a ledger of its own: it audits clean against the head
// the backup printed, pointledgerd opens it as it is with the same admin
// key, and every transaction acknowledged before that head is in it.
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/tools/subprocess.h"
#include "tests/tools/test_util.h"

namespace pointledger::tools {
namespace {

using nlohmann::json;

RunResult Cli(const std::vector<std::string>& args, const std::string& cwd) {
  std::vector<std::string> argv = {BinPath("pointledger")};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunProcess(argv, cwd);
}

TEST(BackupE2E, AHotCopyUnderLoadIsALedgerOfItsOwn) {
  if (!BinExists("pointledgerd") || !BinExists("pointledger")) GTEST_SKIP() << "binaries not built";
  TempDir dir;
  const std::string data = dir.path() + "/data";
  const std::string copy = dir.path() + "/copy";
  const std::string acks = dir.path() + "/acks.log";
  ServerProcess server(data);
  ASSERT_TRUE(server.ready()) << server.log();

  // Load in the background; back up once some of it is acknowledged.
  RunResult load;
  std::thread loader([&] {
    load = Cli({"load", "--count", "20000", "--connections", "2", "--batch", "20", "--members", "500",
                "--ack-log", acks, "--server", server.address(), "--key-file", server.key_file()},
               dir.path());
  });
  for (int i = 0; i < 2000 && ReadWholeFile(acks).size() < 4096; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  RunResult backup = Cli({"backup", "--data", data, "--to", copy, "--json"}, dir.path());
  loader.join();
  ASSERT_EQ(load.exit_code, 0) << load.err;
  ASSERT_EQ(backup.exit_code, 0) << backup.err;
  const json head = json::parse(backup.out);
  const uint64_t seq = head["seq"].get<uint64_t>();
  const std::string hash = head["hash"].get<std::string>();
  ASSERT_GT(seq, 1u);
  ASSERT_EQ(hash.size(), 64u);

  // The copy audits clean against the head the backup printed.
  RunResult verify = Cli({"audit", "verify", "--data", copy, "--expect-head",
                          std::to_string(seq) + ":" + hash, "--json"},
                         dir.path());
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
  RunResult books = Cli({"reconcile", "trial-balance", "--data", copy}, dir.path());
  EXPECT_EQ(books.exit_code, 0) << books.out;

  // Every acknowledged transaction up to that head is in the copy, at its seq.
  RunResult exported = Cli({"audit", "export", "--data", copy, "--format", "csv"}, dir.path());
  ASSERT_EQ(exported.exit_code, 0) << exported.err;
  std::map<std::string, uint64_t> seq_of;  // id hex -> seq
  for (const std::string& line : SplitLines(exported.out)) {
    std::vector<std::string> cols;
    std::stringstream ss(line);
    for (std::string c; std::getline(ss, c, ',');) cols.push_back(c);
    if (cols.size() > 2 && cols[0] != "seq") seq_of[cols[2]] = std::stoull(cols[0]);
  }
  EXPECT_EQ(seq_of.size(), seq);
  size_t checked = 0;
  for (const std::string& line : SplitLines(ReadWholeFile(acks))) {
    std::stringstream ss(line);
    std::string id;
    uint64_t acked_seq = 0;
    ss >> id >> acked_seq;
    if (acked_seq > seq) continue;
    ASSERT_TRUE(seq_of.contains(id)) << id << " (seq " << acked_seq << ") is not in the copy";
    EXPECT_EQ(seq_of[id], acked_seq) << id;
    ++checked;
  }
  EXPECT_GT(checked, 0u);
  server.Stop();

  // pointledgerd opens the copy as it is, with the same admin key, and
  // carries on from its head.
  ServerProcess restored(copy);
  ASSERT_TRUE(restored.ready()) << restored.log();
  const std::string key = "--key-file=" + data + "/admin.key";
  RunResult restored_head = Cli({"audit", "head", "--json", "--server", restored.address(), key}, dir.path());
  ASSERT_EQ(restored_head.exit_code, 0) << restored_head.err;
  EXPECT_EQ(json::parse(restored_head.out)["seq"].get<uint64_t>(), seq);
  RunResult earn = Cli({"earn", "--program", "load", "--member", "after-restore", "--points", "5", "--id",
                        "after-restore-1", "--json", "--server", restored.address(), key},
                       dir.path());
  ASSERT_EQ(earn.exit_code, 0) << earn.out << earn.err;
  EXPECT_EQ(json::parse(earn.out)["seq"].get<uint64_t>(), seq + 1);
}

TEST(BackupE2E, RefusesAnExistingDirectoryAndNeedsData) {
  if (!BinExists("pointledgerd") || !BinExists("pointledger")) GTEST_SKIP() << "binaries not built";
  TempDir dir;
  const std::string data = dir.path() + "/data";
  {
    ServerProcess server(data);
    ASSERT_TRUE(server.ready()) << server.log();
  }
  const std::string full = dir.path() + "/full";
  ASSERT_EQ(Cli({"backup", "--data", data, "--to", full}, dir.path()).exit_code, 0);
  RunResult again = Cli({"backup", "--data", data, "--to", full}, dir.path());
  EXPECT_EQ(again.exit_code, 2);
  EXPECT_NE(again.err.find("not empty"), std::string::npos) << again.err;
  // A wrong --to is a usage error: it ends with the help line (session 29).
  EXPECT_NE(again.err.find("Run `pointledger backup --help` for its options."), std::string::npos) << again.err;
  {
    std::ofstream(dir.path() + "/a-file") << "x";
  }
  RunResult onto_file = Cli({"backup", "--data", data, "--to", dir.path() + "/a-file"}, dir.path());
  EXPECT_EQ(onto_file.exit_code, 2);
  EXPECT_NE(onto_file.err.find("is not a directory"), std::string::npos) << onto_file.err;
  RunResult no_data = Cli({"backup", "--to", dir.path() + "/other"}, dir.path());
  EXPECT_EQ(no_data.exit_code, 2);
  EXPECT_NE(no_data.err.find("--data"), std::string::npos) << no_data.err;
  RunResult missing = Cli({"backup", "--data", dir.path() + "/nope", "--to", dir.path() + "/x"}, dir.path());
  EXPECT_EQ(missing.exit_code, 2);
}

}  // namespace
}  // namespace pointledger::tools
