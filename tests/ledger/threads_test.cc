// The ledger's background threads (ledger/background_thread.h) are named,
// and block every signal, so that SIGTERM and SIGINT reach the threads
// that handle them (a server's I/O threads), while the thread that opened
// the ledger keeps its own mask.
#include <signal.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "gtest/gtest.h"
#include "tests/ledger/ledger_fixture.h"

namespace pointledger::ledger::testing {
namespace {

// SigBlk of each of this process's threads, by name.
std::multimap<std::string, uint64_t> BlockedByThread() {
  std::multimap<std::string, uint64_t> out;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::string name;
    std::getline(std::ifstream(task.path() / "comm"), name);
    std::ifstream status(task.path() / "status");
    for (std::string line; std::getline(status, line);) {
      if (line.rfind("SigBlk:", 0) == 0) {
        out.emplace(name, std::stoull(line.substr(7), nullptr, 16));
      }
    }
  }
  return out;
}

bool Blocks(uint64_t mask, int signal) { return (mask >> (signal - 1)) & 1; }

class ThreadsTest : public LedgerTest {};

TEST_F(ThreadsTest, BackgroundThreadsBlockSignalsAndTheOpenersMaskIsKept) {
  const auto threads = BlockedByThread();
  for (const char* name : {"pl-checkpoint", "pl-wal-prepare"}) {
    ASSERT_EQ(threads.count(name), 1u) << name << " is not running (or not named)";
    const uint64_t mask = threads.find(name)->second;
    for (int signal : {SIGTERM, SIGINT, SIGHUP}) {
      EXPECT_TRUE(Blocks(mask, signal)) << name << " takes signal " << signal;
    }
  }
  sigset_t mine;
  ASSERT_EQ(pthread_sigmask(SIG_SETMASK, nullptr, &mine), 0);
  EXPECT_EQ(sigismember(&mine, SIGTERM), 0) << "opening the ledger left SIGTERM blocked here";
}

}  // namespace
}  // namespace pointledger::ledger::testing
