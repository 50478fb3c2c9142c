// Test support for tests/crash: the real pointledgerd and pointledger
// binaries in child processes, killed with SIGKILL at chosen moments; the
// ack log the load generator writes; and the checks that a data directory
// must pass after any crash (docs/guarantees.md).
//
// Every wait polls with a deadline; nothing sleeps to decide an outcome.
// Randomness comes from one seed (PL_SEED=N replays the choices: kill
// thresholds, delays, ids; the scheduler's timing is not replayable).
#ifndef POINTLEDGER_TESTS_CRASH_HARNESS_H_
#define POINTLEDGER_TESTS_CRASH_HARNESS_H_

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "ledger/ledger.h"
#include "ledger/status.h"
#include "net/client.h"
#include "tests/common/temp_dir.h"

#ifndef PL_BIN_DIR
#define PL_BIN_DIR "build/bin"
#endif

namespace pointledger::crash {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

inline std::string Bin(const std::string& name) { return std::string(PL_BIN_DIR) + "/" + name; }

// PL_SEED, or a fresh random seed.
inline uint64_t SeedFromEnvOrRandom() {
  if (const char* s = std::getenv("PL_SEED"); s != nullptr && *s != '\0') return std::strtoull(s, nullptr, 10);
  std::random_device rd;
  const uint64_t seed = (uint64_t{rd()} << 32) ^ rd();
  return seed == 0 ? 1 : seed;
}

inline int EnvInt(const char* name, int fallback) {
  const char* s = std::getenv(name);
  return s != nullptr && *s != '\0' ? std::atoi(s) : fallback;
}

// Uniform in [lo, hi] (our own reduction: std distributions differ between
// library versions, so a seed would not replay).
inline uint64_t Uniform(std::mt19937_64& rng, uint64_t lo, uint64_t hi) {
  PL_CHECK(lo <= hi);
  return lo + rng() % (hi - lo + 1);
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  PL_CHECK(out.good());
}

// A directory removed (with its contents) when the object goes.
// Each test's own directory (tests/common/temp_dir.h).
class TempDir : public ::pointledger::test::TempDir {
 public:
  TempDir() : ::pointledger::test::TempDir("pl_crash") {}
};

// A child process with stdout and stderr in files (stderr may also be read
// while it runs). SIGKILLed and reaped by the destructor if still running.
class Child {
 public:
  // `out_prefix`: the child writes OUT_PREFIX.out and OUT_PREFIX.err.
  Child(const std::vector<std::string>& argv, const std::string& out_prefix)
      : out_path_(out_prefix + ".out"), err_path_(out_prefix + ".err") {
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_ = ::fork();
    PL_CHECK(pid_ >= 0);
    if (pid_ == 0) {
      // Only async-signal-safe calls between fork and exec.
      const int in = ::open("/dev/null", O_RDONLY);
      const int out = ::open(out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      const int err = ::open(err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      if (in < 0 || out < 0 || err < 0) ::_exit(126);
      ::dup2(in, 0);
      ::dup2(out, 1);
      ::dup2(err, 2);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
  }
  ~Child() {
    if (running()) {
      ::kill(pid_, SIGKILL);
      Reap(/*block=*/true);
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  bool running() { return pid_ > 0 && !Reap(/*block=*/false); }
  void Signal(int signal) {
    if (running()) ::kill(pid_, signal);
  }
  // Waits for the exit; false if it is still running after `timeout`.
  bool WaitExit(milliseconds timeout) {
    const Clock::time_point deadline = Clock::now() + timeout;
    while (running()) {
      if (Clock::now() >= deadline) return false;
      std::this_thread::sleep_for(milliseconds(2));
    }
    return true;
  }
  // The exit code, or 128 + the signal; -1 while running.
  int exit_code() const { return exit_code_; }
  std::string out() const { return ReadFile(out_path_); }
  std::string err() const { return ReadFile(err_path_); }

 private:
  // True once the child has exited (and was reaped).
  bool Reap(bool block) {
    if (pid_ <= 0) return true;
    int status = 0;
    pid_t r;
    do {
      r = ::waitpid(pid_, &status, block ? 0 : WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r == 0) return false;
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -1;
    pid_ = -1;
    return true;
  }

  std::string out_path_;
  std::string err_path_;
  pid_t pid_ = -1;
  int exit_code_ = -1;
};

// Runs a command to its end (at most `timeout`, then SIGKILL).
struct CommandResult {
  int exit_code = -1;
  bool timed_out = false;
  std::string out, err;
};
inline CommandResult RunCommand(const std::vector<std::string>& argv, const std::string& out_prefix,
                                milliseconds timeout = milliseconds(120'000)) {
  Child child(argv, out_prefix);
  CommandResult r;
  r.timed_out = !child.WaitExit(timeout);
  if (r.timed_out) {
    child.Signal(SIGKILL);
    child.WaitExit(milliseconds(10'000));
  }
  r.exit_code = child.exit_code();
  r.out = child.out();
  r.err = child.err();
  return r;
}

// pointledgerd --data DIR --listen 127.0.0.1:PORT [--config FILE], one
// run. Port 0: a free one.
class Daemon {
 public:
  Daemon(const std::string& data_dir, const std::string& config, const std::string& out_prefix,
         uint16_t port = 0)
      : data_dir_(data_dir), err_path_(out_prefix + ".err") {
    std::vector<std::string> argv = {Bin("pointledgerd"), "--data", data_dir, "--listen",
                                     StrCat("127.0.0.1:", port)};
    if (!config.empty()) {
      argv.push_back("--config");
      argv.push_back(config);
    }
    child_ = std::make_unique<Child>(argv, out_prefix);
  }

  // Waits for the ready line; false if the server exits first or `timeout`
  // passes.
  bool WaitReady(milliseconds timeout = milliseconds(30'000)) {
    const Clock::time_point deadline = Clock::now() + timeout;
    for (;;) {
      const std::string log = child_->err();
      const size_t at = log.find("listening on ");
      if (at != std::string::npos && log.find('\n', at) != std::string::npos) {
        const size_t colon = log.find(':', at + 13);
        port_ = static_cast<uint16_t>(std::stoi(log.substr(colon + 1)));
        return true;
      }
      if (!child_->running() || Clock::now() >= deadline) return false;
      std::this_thread::sleep_for(milliseconds(2));
    }
  }

  void Kill() {
    child_->Signal(SIGKILL);
    PL_CHECK(child_->WaitExit(milliseconds(30'000)));
  }
  // SIGTERM; the exit code, or -1 (and a SIGKILL) if it did not exit in time.
  int Stop(milliseconds timeout = milliseconds(60'000)) {
    child_->Signal(SIGTERM);
    if (!child_->WaitExit(timeout)) {
      child_->Signal(SIGKILL);
      child_->WaitExit(milliseconds(30'000));
      return -1;
    }
    return child_->exit_code();
  }
  bool running() { return child_->running(); }

  uint16_t port() const { return port_; }
  std::string address() const { return StrCat("127.0.0.1:", port_); }
  std::string key_file() const { return data_dir_ + "/admin.key"; }
  std::string log() const { return child_->err(); }
  std::string LogTail(size_t bytes = 3000) const {
    const std::string l = log();
    return l.size() <= bytes ? l : l.substr(l.size() - bytes);
  }

  // The CLI's connection flags for this server.
  std::vector<std::string> CliArgs() const { return {"--server", address(), "--key-file", key_file()}; }

  absl::StatusOr<std::unique_ptr<net::Client>> Connect() const {
    net::ClientOptions o;
    o.host = "127.0.0.1";
    o.port = port_;
    o.api_key = ReadFile(key_file());
    while (!o.api_key.empty() && (o.api_key.back() == '\n' || o.api_key.back() == '\r')) o.api_key.pop_back();
    o.client_name = "pl_crash_tests";
    o.timeout_ms = 20'000;
    return net::Client::Connect(o);
  }

 private:
  std::string data_dir_;
  std::string err_path_;
  std::unique_ptr<Child> child_;
  uint16_t port_ = 0;
};

// The load generator's ack log: "<id hex> <seq> <code>" per answered
// transaction, appended by every run. Read incrementally while the load
// runs; every line of one id must agree (a retry is answered with the
// original seq and outcome).
class AckLog {
 public:
  struct Ack {
    uint64_t seq = 0;
    std::string code;
  };

  explicit AckLog(std::string path) : path_(std::move(path)) {}

  // Reads the complete lines added since the last call. A disagreement is
  // a test failure.
  void Poll() {
    std::ifstream in(path_, std::ios::binary);
    if (!in) return;
    in.seekg(static_cast<std::streamoff>(offset_));
    std::string chunk((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const size_t end = chunk.rfind('\n');
    if (end == std::string::npos) return;
    offset_ += end + 1;
    size_t pos = 0;
    while (pos <= end) {
      const size_t eol = chunk.find('\n', pos);
      Add(chunk.substr(pos, eol - pos));
      pos = eol + 1;
    }
  }

  const std::map<std::string, Ack>& acks() const { return acks_; }
  uint64_t max_seq() const { return max_seq_; }
  uint64_t lines() const { return lines_; }
  uint64_t repeated() const { return repeated_; }  // lines for ids acknowledged before

 private:
  void Add(const std::string& line) {
    char hex[64] = {0};
    char code[64] = {0};
    unsigned long long seq = 0;
    if (std::sscanf(line.c_str(), "%63s %llu %63s", hex, &seq, code) != 3) {
      ADD_FAILURE() << "ack log: bad line '" << line << "'";
      return;
    }
    ++lines_;
    auto [it, fresh] = acks_.try_emplace(hex, Ack{seq, code});
    if (!fresh) {
      ++repeated_;
      EXPECT_EQ(it->second.seq, seq) << "id " << hex << " was acknowledged with two seqs";
      EXPECT_EQ(it->second.code, code) << "id " << hex << " was acknowledged with two outcomes";
    }
    max_seq_ = std::max<uint64_t>(max_seq_, seq);
  }

  std::string path_;
  uint64_t offset_ = 0;
  std::map<std::string, Ack> acks_;
  uint64_t max_seq_ = 0;
  uint64_t lines_ = 0;
  uint64_t repeated_ = 0;
};

inline std::string Describe(const std::vector<ledger::Discrepancy>& list) {
  std::string out;
  for (size_t i = 0; i < list.size() && i < 10; ++i) {
    const ledger::Discrepancy& d = list[i];
    out += StrCat("  ", d.what, " at ", d.where, ": expected ", d.expected, ", found ", d.found, "\n");
  }
  if (list.size() > 10) out += StrCat("  ... ", list.size() - 10, " more\n");
  return out;
}

inline std::unique_ptr<ledger::Ledger> OpenReadOnly(const std::string& data_dir) {
  absl::StatusOr<std::unique_ptr<ledger::Ledger>> l =
      ledger::Ledger::Open({.dir = data_dir, .read_only = true});
  EXPECT_TRUE(l.ok()) << data_dir << ": " << l.status();
  return l.ok() ? *std::move(l) : nullptr;
}

// What a data directory must satisfy after any crash: the hash chain
// verifies, the trial balance is clean (nothing half-applied), and every
// acknowledged id is stored at its acknowledged seq with its acknowledged
// outcome. Opens the directory read-only in this process (safe beside a
// running server). Returns the head.
inline ledger::ChainHead CheckDataDir(const std::string& data_dir, const AckLog* acks) {
  std::unique_ptr<ledger::Ledger> l = OpenReadOnly(data_dir);
  if (l == nullptr) return {};
  absl::StatusOr<ledger::ChainHead> head = l->GetHead();
  EXPECT_TRUE(head.ok()) << head.status();
  if (!head.ok()) return {};
  absl::StatusOr<std::vector<ledger::Discrepancy>> chain = l->VerifyChain();
  EXPECT_TRUE(chain.ok()) << chain.status();
  if (chain.ok()) {
    EXPECT_TRUE(chain->empty()) << "the chain does not verify:\n" << Describe(*chain);
  }
  absl::StatusOr<std::vector<ledger::Discrepancy>> trial = l->TrialBalance();
  EXPECT_TRUE(trial.ok()) << trial.status();
  if (trial.ok()) {
    EXPECT_TRUE(trial->empty()) << "the trial balance is not clean:\n" << Describe(*trial);
  }
  if (acks != nullptr) {
    EXPECT_GE(head->seq, acks->max_seq()) << "an acknowledged seq is past the head: acknowledged work was lost";
    int failures = 0;
    for (const auto& [hex, ack] : acks->acks()) {
      absl::StatusOr<std::optional<ledger::TxRecord>> rec = l->GetTransactionBySeq(ack.seq);
      const bool same = rec.ok() && rec->has_value() && ledger::IdToHex((*rec)->tx.id) == hex &&
                        ledger::CodeName((*rec)->result.code) == ack.code;
      if (!same && ++failures <= 10) {
        ADD_FAILURE() << "acknowledged " << hex << " at seq " << ack.seq << " (" << ack.code << ") but seq "
                      << ack.seq << " holds "
                      << (rec.ok() && rec->has_value()
                              ? StrCat(ledger::IdToHex((*rec)->tx.id), " (",
                                       ledger::CodeName((*rec)->result.code), ")")
                              : std::string("nothing"));
      }
    }
    EXPECT_EQ(failures, 0) << "acknowledged transactions missing or changed";
  }
  return *head;
}

// Every record from seq 1 to the head, in order (log reads only).
inline std::vector<ledger::TxRecord> ReadLog(const std::string& data_dir) {
  std::vector<ledger::TxRecord> out;
  std::unique_ptr<ledger::Ledger> l = OpenReadOnly(data_dir);
  if (l == nullptr) return out;
  absl::StatusOr<ledger::ChainHead> head = l->GetHead();
  EXPECT_TRUE(head.ok());
  if (!head.ok()) return out;
  out.reserve(head->seq);
  for (uint64_t seq = 1; seq <= head->seq; ++seq) {
    absl::StatusOr<std::optional<ledger::TxRecord>> rec = l->GetTransactionBySeq(seq);
    EXPECT_TRUE(rec.ok() && rec->has_value()) << "seq " << seq;
    if (!rec.ok() || !rec->has_value()) break;
    out.push_back(**std::move(rec));
  }
  return out;
}

// Fails the test if any id is stored twice (the one thing a retry after a
// crash must never cause).
inline void ExpectIdsUnique(const std::vector<ledger::TxRecord>& log) {
  std::map<ledger::Id, uint64_t> seen;
  int failures = 0;
  for (const ledger::TxRecord& r : log) {
    auto [it, fresh] = seen.emplace(r.tx.id, r.seq);
    if (!fresh && ++failures <= 10) {
      ADD_FAILURE() << "id " << ledger::IdToHex(r.tx.id) << " stored twice: seq " << it->second << " and " << r.seq;
    }
  }
}

// Progress lines on stderr, stamped with the seconds since the first one.
inline void Note(const std::string& text) {
  static const Clock::time_point start = Clock::now();
  std::fprintf(stderr, "[%7.2fs] %s\n", std::chrono::duration<double>(Clock::now() - start).count(), text.c_str());
}

// Polls `done` every 2 ms until it returns true or `timeout` passes.
template <typename F>
bool PollUntil(F done, milliseconds timeout) {
  const Clock::time_point deadline = Clock::now() + timeout;
  for (;;) {
    if (done()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(milliseconds(2));
  }
}

}  // namespace pointledger::crash

#endif  // POINTLEDGER_TESTS_CRASH_HARNESS_H_
