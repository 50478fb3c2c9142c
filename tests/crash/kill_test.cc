// kill -9 of pointledgerd at random moments under real work: the load
// generator, an expiry sweep and a settlement, each through the real CLI
// against the real server on a real data directory. After every restart the
// directory must pass CheckDataDir (chain, trial balance, every
// acknowledged id at its seq with its outcome) and the interrupted work,
// run again with the same ids, must book nothing twice.
//
// PL_CRASH_KILLS=N (default 5) kills the load N times (and the expiry sweep
// N/4, at least 3, and the settlement N/2, at least 5); PL_SEED=N replays
// the random choices of a run (each test prints its seed).
#include <lmdb.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "ledger/limits.h"
#include "nlohmann/json.hpp"
#include "tests/crash/harness.h"

namespace pointledger::crash {
namespace {

using ledger::Kind;

int LoadKills() { return std::max(1, EnvInt("PL_CRASH_KILLS", 5)); }
// The expiry test kills less often: each kill there is a whole restart and
// check around a sweep of 12,000 or more lots. Settlement kills are cheap.
int ExpireKills() { return std::max(3, LoadKills() / 4); }
int SettleKills() { return std::max(5, LoadKills() / 2); }

uint64_t StartRun(const char* what, int kills) {
  const uint64_t seed = SeedFromEnvOrRandom();
  Note(StrCat(what, ": ", kills, " kills; PL_SEED=", seed, " replays this run's choices"));
  return seed;
}

void SleepMicros(uint64_t us) { std::this_thread::sleep_for(std::chrono::microseconds(us)); }

std::string Rfc3339(int64_t ns) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E9SZ", absl::FromUnixNanos(ns), absl::UTCTimeZone());
}

// The load: fixed shape, so that the same seed sends the same transactions.
std::vector<std::string> LoadCommand(const Daemon& server, const std::string& program, uint64_t seed,
                                     uint64_t count, const std::string& mix, const std::string& ack_log,
                                     uint64_t members = 4000) {
  std::vector<std::string> argv = {Bin("pointledger"), "load", "--program", program, "--connections", "4",
                                   "--batch", "50", "--in-flight", "4", "--members", std::to_string(members),
                                   "--mix", mix,
                                   "--count", std::to_string(count), "--seed", std::to_string(seed),
                                   "--ack-log", ack_log, "--json"};
  for (const std::string& a : server.CliArgs()) argv.push_back(a);
  return argv;
}

// Kills a server that is still opening (replaying its log, checkpointing)
// after a random delay of at most 50 ms.
void KillDuringStartup(const std::string& data, const std::string& out_prefix, std::mt19937_64& rng) {
  Daemon early(data, "", out_prefix);
  SleepMicros(Uniform(rng, 0, 50'000));
  early.Kill();
}

// ---------------------------------------------------------------------------
// The load generator, killed PL_CRASH_KILLS times.

constexpr uint64_t kLoadPerKill = 3000;  // transactions of the run per kill
constexpr char kLoadMix[] = "earn=50,redeem=25,referral=10,transfer=15";

TEST(KillNine, LoadResumesWithTheSameIdsAndNothingTwice) {
  const int kills = LoadKills();
  const uint64_t seed = StartRun("KillNine.Load", kills);
  SCOPED_TRACE(StrCat("PL_SEED=", seed));
  std::mt19937_64 rng(seed);
  const uint64_t load_seed = rng() | 1;
  const uint64_t count = kLoadPerKill * static_cast<uint64_t>(kills);
  const Clock::time_point t0 = Clock::now();

  TempDir dir;
  const std::string data = dir.Sub("data");
  const std::string ack_path = dir.Sub("acks.log");
  AckLog acks(ack_path);
  uint64_t checked = 0;  // acknowledged ids checked, summed over restarts
  int startup_kills = 0, load_runs = 0, reconnected = 0, mid_run_kills = 0;
  uint16_t port = 0;         // after a kill, sometimes the server comes back on the same port ...
  std::unique_ptr<Child> load;  // ... and the load's client reconnects and resends
  for (int k = 0; k < kills; ++k) {
    auto server = std::make_unique<Daemon>(data, "", dir.Sub(StrCat("server-", k)), port);
    if (!server->WaitReady() && port != 0) {
      // The port was taken meanwhile (by an outgoing connection): any will do.
      server = std::make_unique<Daemon>(data, "", dir.Sub(StrCat("server-", k, "-any")));
      server->WaitReady();
    }
    ASSERT_TRUE(server->running() && server->port() != 0) << "restart " << k << " failed:\n" << server->LogTail();
    if (k > 0) {
      // A load that outlived the kill is paused meanwhile, so that the next
      // kill still finds it with work to do.
      if (load != nullptr) load->Signal(SIGSTOP);
      CheckDataDir(data, &acks);
      checked += acks.acks().size();
      if (load != nullptr) load->Signal(SIGCONT);
      if (HasFailure()) return;
    }
    if (load != nullptr && load->running() && server->port() == port) {
      ++reconnected;
    } else {
      if (load != nullptr) {
        // Its server went away for good: 0 it finished, 2 its connections broke.
        ASSERT_TRUE(load->WaitExit(milliseconds(30'000))) << "the load hung after the server died";
        EXPECT_TRUE(load->exit_code() == 0 || load->exit_code() == 2) << load->exit_code() << "\n" << load->err();
      }
      load = std::make_unique<Child>(LoadCommand(*server, "load", load_seed, count, kLoadMix, ack_path),
                                     dir.Sub(StrCat("load-", k)));
      ++load_runs;
    }
    port = server->port();
    // Kill once the run has committed up to `target` (0 .. a fair share of
    // what is left past what was acknowledged: sometimes while a rerun
    // still replays its decided prefix), plus up to 20 ms.
    const uint64_t left = count + 1 - std::min(count + 1, acks.max_seq());
    const uint64_t target =
        acks.max_seq() + Uniform(rng, 0, std::max<uint64_t>(1, left / static_cast<uint64_t>(kills - k)));
    const uint64_t jitter_us = Uniform(rng, 0, 20'000);
    const bool reached = PollUntil(
        [&] {
          acks.Poll();
          return acks.max_seq() >= target || !load->running();
        },
        milliseconds(120'000));
    ASSERT_TRUE(reached) << "no progress to seq " << target << ":\n" << server->LogTail();
    SleepMicros(jitter_us);
    if (load->running()) ++mid_run_kills;
    server->Kill();
    const bool same_port = Uniform(rng, 0, 1) == 0;
    if (!same_port) port = 0;
    acks.Poll();
    Note(StrCat("kill ", k + 1, ": target seq ", target, ", acknowledged up to seq ", acks.max_seq(),
                same_port ? "; back on the same port" : "; back on another port"));
    if (Uniform(rng, 0, 3) == 0) {
      KillDuringStartup(data, dir.Sub(StrCat("early-", k)), rng);
      ++startup_kills;
    }
  }
  if (load != nullptr) {
    ASSERT_TRUE(load->WaitExit(milliseconds(60'000))) << "the load hung after the server died";
    EXPECT_TRUE(load->exit_code() == 0 || load->exit_code() == 2) << load->exit_code() << "\n" << load->err();
    acks.Poll();
  }

  // The last run completes, replaying every id from the first.
  Daemon server(data, "", dir.Sub("server-final"));
  ASSERT_TRUE(server.WaitReady()) << server.LogTail();
  CheckDataDir(data, &acks);
  checked += acks.acks().size();
  const uint64_t acked_before_final = acks.acks().size();
  const CommandResult final_run =
      RunCommand(LoadCommand(server, "load", load_seed, count, kLoadMix, ack_path), dir.Sub("load-final"));
  ASSERT_EQ(final_run.exit_code, 0) << final_run.err << "\n" << server.LogTail();
  acks.Poll();
  EXPECT_EQ(acks.acks().size(), count) << "every transaction of the run is decided and acknowledged";
  EXPECT_EQ(server.Stop(), 0) << server.LogTail();

  // Nothing twice: one record per id, and exactly count + 1 records (the
  // program, then the run). The final run's own report (every transaction,
  // original or duplicate) must match the ledger kind by kind.
  const ledger::ChainHead head = CheckDataDir(data, &acks);
  EXPECT_EQ(head.seq, count + 1) << "a retried id was booked again";
  const std::vector<ledger::TxRecord> log = ReadLog(data);
  ExpectIdsUnique(log);
  std::map<std::string, uint64_t> ok_by_kind;
  for (const ledger::TxRecord& r : log) {
    if (r.tx.kind != Kind::kProgramCreate && r.result.code == ledger::Code::kOk) {
      ok_by_kind[std::string(ledger::KindName(r.tx.kind))]++;
    }
  }
  const nlohmann::json report = nlohmann::json::parse(final_run.out, nullptr, /*allow_exceptions=*/false);
  ASSERT_TRUE(report.is_object()) << final_run.out;
  EXPECT_EQ(report["committed"].get<uint64_t>() + report["rejected"].get<uint64_t>(), count);
  const auto reported_by_kind = report["committed_by_kind"].get<std::map<std::string, uint64_t>>();
  EXPECT_EQ(reported_by_kind, ok_by_kind);

  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  Note(StrCat("KillNine.Load: ", kills, " kills (", mid_run_kills, " while the load ran) + ", startup_kills,
              " during startup; ", load_runs,
              " load runs + the final one (", reconnected,
              " times a run outlived a kill: the server came back on its port, its client reconnected and "
              "resent); ",
              count, " transactions; ", checked, " acknowledged ids checked over the restarts (", acked_before_final,
              " before the final run); ", acks.repeated(), " answers were duplicates of earlier acks; ",
              static_cast<int64_t>(seconds), " s"));
}

// ---------------------------------------------------------------------------
// An expiry sweep over many lots, killed part way; run again it books each
// lot once.

// Lots added before each kill: two rounds of the sweep (it posts up to
// 8,190 expiries a batch), plus what the last kill left.
constexpr uint64_t kLotsPerKill = 12'000;
// Few members (120 lots each): a read-only TrialBalance over a log tail of
// many deleted lots costs members x deleted lots cursor steps (a known
// cost, docs/guarantees.md), and these checks run after every kill.
constexpr uint64_t kExpireMembers = 100;
constexpr char kFarFuture[] = "2100-01-01T00:00:00Z";

struct ExpireTally {
  uint64_t earned_points = 0;
  uint64_t lots = 0;  // ok earns: one lot each
  uint64_t expire_records = 0;
  uint64_t expired_points = 0;
};

// Scans the log: every lot expired at most once, the totals.
ExpireTally TallyExpiry(const std::string& data) {
  ExpireTally t;
  std::set<std::tuple<std::string, uint64_t, uint32_t>> lots;
  const std::vector<ledger::TxRecord> log = ReadLog(data);
  ExpectIdsUnique(log);
  for (const ledger::TxRecord& r : log) {
    if (r.result.code != ledger::Code::kOk) continue;
    if (r.tx.kind == Kind::kEarn) {
      t.earned_points += r.tx.points;
      ++t.lots;
    } else if (r.tx.kind == Kind::kExpire) {
      ++t.expire_records;
      t.expired_points += r.result.points;
      EXPECT_TRUE(lots.emplace(r.tx.member, r.tx.lot_seq, r.tx.lot_index).second)
          << "lot " << r.tx.member << "/" << r.tx.lot_seq << "/" << r.tx.lot_index << " expired twice";
    }
  }
  return t;
}

std::vector<std::string> ExpireCommand(const Daemon& server) {
  std::vector<std::string> argv = {Bin("pointledger"), "expire", "--as-of", kFarFuture, "--json"};
  for (const std::string& a : server.CliArgs()) argv.push_back(a);
  return argv;
}

TEST(KillNine, ExpireSweepRunAgainBooksEachLotOnce) {
  const int kills = ExpireKills();
  const uint64_t seed = StartRun("KillNine.Expire", kills);
  SCOPED_TRACE(StrCat("PL_SEED=", seed));
  std::mt19937_64 rng(seed);
  TempDir dir;
  const std::string data = dir.Sub("data");
  uint64_t lots = 0;
  for (int k = 0; k < kills; ++k) {
    Daemon server(data, "", dir.Sub(StrCat("server-", k)));
    ASSERT_TRUE(server.WaitReady()) << server.LogTail();
    // More lots (one per earn), with ids of their own.
    const CommandResult more = RunCommand(LoadCommand(server, "exp", rng() | 1, kLotsPerKill, "earn=100",
                                                      dir.Sub("earn-acks.log"), kExpireMembers),
                                          dir.Sub(StrCat("earn-", k)));
    ASSERT_EQ(more.exit_code, 0) << more.err;
    lots += kLotsPerKill;
    absl::StatusOr<std::unique_ptr<net::Client>> client = server.Connect();
    ASSERT_TRUE(client.ok()) << client.status();
    absl::StatusOr<ledger::ChainHead> head = (*client)->GetHead();
    ASSERT_TRUE(head.ok()) << head.status();
    const uint64_t due = lots - TallyExpiry(data).expire_records;
    // Kill once `target` more lots are booked (a round commits up to 8,190
    // at once), plus up to 100 ms: before, inside or between rounds.
    const uint64_t target = head->seq + Uniform(rng, 0, due - 1);
    const uint64_t jitter_us = Uniform(rng, 0, 100'000);
    Child expire(ExpireCommand(server), dir.Sub(StrCat("expire-", k)));
    const bool reached = PollUntil(
        [&] {
          absl::StatusOr<ledger::ChainHead> h = (*client)->GetHead();
          return !expire.running() || (h.ok() && h->seq >= target);
        },
        milliseconds(120'000));
    ASSERT_TRUE(reached) << server.LogTail();
    SleepMicros(jitter_us);
    server.Kill();
    ASSERT_TRUE(expire.WaitExit(milliseconds(30'000))) << "expire hung after the server died";
    EXPECT_TRUE(expire.exit_code() == 0 || expire.exit_code() == 2) << expire.exit_code() << expire.err();
    if (Uniform(rng, 0, 3) == 0) KillDuringStartup(data, dir.Sub(StrCat("early-", k)), rng);
    CheckDataDir(data, nullptr);
    const ExpireTally t = TallyExpiry(data);
    EXPECT_EQ(t.lots, lots);
    EXPECT_LE(t.expire_records, lots);
    Note(StrCat("kill ", k + 1, ": ", due, " lots due, killed after seq ", target, " (+", jitter_us / 1000,
                " ms): ", t.expire_records, " of ", lots, " lots expired, expire exit ", expire.exit_code()));
    if (HasFailure()) return;
  }

  Daemon server(data, "", dir.Sub("server-final"));
  ASSERT_TRUE(server.WaitReady()) << server.LogTail();
  const CommandResult finish = RunCommand(ExpireCommand(server), dir.Sub("expire-final"));
  ASSERT_EQ(finish.exit_code, 0) << finish.err;
  // A second run finds nothing due: each expiry's id derives from its lot.
  const CommandResult again = RunCommand(ExpireCommand(server), dir.Sub("expire-again"));
  ASSERT_EQ(again.exit_code, 0) << again.err;
  const nlohmann::json j = nlohmann::json::parse(again.out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << again.out;
  EXPECT_EQ(j["expired_points"], 0);
  EXPECT_EQ(j["expired_lots"], 0);
  // And every expiry sent again as it was booked (what a sweep interrupted
  // after its commit resends) is a duplicate with its original seq.
  {
    std::vector<ledger::TxRecord> booked;
    for (ledger::TxRecord& r : ReadLog(data)) {
      if (r.tx.kind == Kind::kExpire) booked.push_back(std::move(r));
    }
    absl::StatusOr<std::unique_ptr<net::Client>> client = server.Connect();
    ASSERT_TRUE(client.ok()) << client.status();
    int wrong = 0;
    for (size_t begin = 0; begin < booked.size(); begin += ledger::kBatchTransactionsMax) {
      std::vector<ledger::Transaction> batch;
      for (size_t i = begin; i < std::min(booked.size(), begin + ledger::kBatchTransactionsMax); ++i) {
        batch.push_back(booked[i].tx);
      }
      absl::StatusOr<std::vector<ledger::Result>> results = (*client)->Post(batch);
      ASSERT_TRUE(results.ok()) << results.status();
      for (size_t i = 0; i < batch.size(); ++i) {
        const ledger::Result& r = (*results)[i];
        if ((r.code != ledger::Code::kOk || !r.duplicate || r.seq != booked[begin + i].seq) && ++wrong <= 5) {
          ADD_FAILURE() << "expiry " << ledger::IdToHex(batch[i].id) << " sent again: " << ledger::CodeName(r.code)
                        << " duplicate " << r.duplicate << " seq " << r.seq << ", booked at seq "
                        << booked[begin + i].seq;
        }
      }
    }
    EXPECT_EQ(wrong, 0);
  }
  EXPECT_EQ(server.Stop(), 0);

  CheckDataDir(data, nullptr);
  const ExpireTally t = TallyExpiry(data);
  EXPECT_EQ(t.lots, lots);
  EXPECT_EQ(t.expire_records, lots) << "each lot expired exactly once";
  EXPECT_EQ(t.expired_points, t.earned_points);
  std::unique_ptr<ledger::Ledger> l = OpenReadOnly(data);
  ASSERT_NE(l, nullptr);
  uint64_t member_points = 0, breakage_points = 0;
  const ledger::Id breakage = ledger::SystemAccountId("exp", "breakage");
  ASSERT_TRUE(l->ForEachAccount([&](const ledger::AccountInfo& a) {
                 if (a.program != "exp") return;
                 if (a.kind == "member") member_points += a.credits_posted - a.debits_posted;
                 if (a.id == breakage) breakage_points += a.credits_posted - a.debits_posted;
               }).ok());
  EXPECT_EQ(member_points, 0u);
  EXPECT_EQ(breakage_points, t.earned_points);
}

// ---------------------------------------------------------------------------
// settle close, killed around its commit; run again with the same id it is
// a duplicate if it had been committed, and books once either way.

constexpr int kFlowsPerRound = 600;

// Earns at the partner, then redeems at the partner of a third of them.
std::string FlowsFile(int round) {
  std::string text;
  for (int i = 0; i < kFlowsPerRound; ++i) {
    text += StrCat(R"({"kind":"earn","program":"set","partner":"hotelco","member":"m)", i % 50,
                   R"(","points":)", 100 + i % 7, R"(,"id":"flow-)", round, "-", i, "\"}\n");
  }
  for (int i = 0; i < kFlowsPerRound / 3; ++i) {
    text += StrCat(R"({"kind":"redeem","program":"set","partner":"hotelco","member":"m)", i % 50,
                   R"(","points":)", 30 + i % 5, R"(,"id":"flow-)", round, "-r", i, "\"}\n");
  }
  return text;
}

std::vector<std::string> Cli(const Daemon& server, std::vector<std::string> args) {
  args.insert(args.begin(), Bin("pointledger"));
  for (const std::string& a : server.CliArgs()) args.push_back(a);
  return args;
}

size_t Count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

std::optional<ledger::TxRecord> FindTx(const std::string& data, const std::string& program,
                                       const std::string& key) {
  std::unique_ptr<ledger::Ledger> l = OpenReadOnly(data);
  if (l == nullptr) return std::nullopt;
  absl::StatusOr<std::optional<ledger::TxRecord>> r = l->GetTransaction(ledger::TxIdFromKey(program, key));
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : std::nullopt;
}

TEST(KillNine, SettleCloseRunAgainBooksOnce) {
  const int rounds = SettleKills();
  const uint64_t seed = StartRun("KillNine.Settle", rounds);
  SCOPED_TRACE(StrCat("PL_SEED=", seed));
  std::mt19937_64 rng(seed);
  TempDir dir;
  const std::string data = dir.Sub("data");
  {
    Daemon server(data, "", dir.Sub("setup"));
    ASSERT_TRUE(server.WaitReady()) << server.LogTail();
    for (const std::vector<std::string>& args :
         {std::vector<std::string>{"program", "create", "set", "--currency", "USD", "--point-value-micros", "5000",
                                   "--expiry-days", "365"},
          std::vector<std::string>{"partner", "create", "hotelco", "--program", "set", "--earn-price-micros", "9000",
                                   "--redeem-price-micros", "7000"}}) {
      const CommandResult r = RunCommand(Cli(server, args), dir.Sub("setup-cli"));
      ASSERT_EQ(r.exit_code, 0) << r.err;
    }
    ASSERT_EQ(server.Stop(), 0);
  }
  int acked_then_found = 0, lost_before_commit = 0, committed_unacked = 0, startup_kills = 0;
  for (int round = 0; round < rounds; ++round) {
    Daemon server(data, "", dir.Sub(StrCat("server-", round)));
    ASSERT_TRUE(server.WaitReady()) << server.LogTail();
    const std::string flows = dir.Sub(StrCat("flows-", round, ".jsonl"));
    WriteFile(flows, FlowsFile(round));
    const CommandResult posted = RunCommand(Cli(server, {"post", "--file", flows}), dir.Sub("post"));
    ASSERT_EQ(posted.exit_code, 0) << posted.err;
    absl::StatusOr<std::unique_ptr<net::Client>> client = server.Connect();
    ASSERT_TRUE(client.ok()) << client.status();
    absl::StatusOr<ledger::ChainHead> head = (*client)->GetHead();
    ASSERT_TRUE(head.ok()) << head.status();
    // The same content every time it is run: the period ends just after
    // this round's flows.
    const std::vector<std::string> settle =
        Cli(server, {"settle", "close", "--program", "set", "--partner", "hotelco", "--to",
                     Rfc3339(head->timestamp_ns + 1), "--id", StrCat("settle-", round), "--json"});
    // Kill at a random moment after the CLI's hello: before, during or
    // after the commit (which takes a few milliseconds, fsync included).
    const uint64_t delay_us = Uniform(rng, 0, 8'000);
    const size_t hellos = Count(server.log(), "hello from");
    Child first(settle, dir.Sub(StrCat("settle-", round)));
    ASSERT_TRUE(PollUntil([&] { return Count(server.log(), "hello from") > hellos || !first.running(); },
                          milliseconds(30'000)));
    SleepMicros(delay_us);
    server.Kill();
    ASSERT_TRUE(first.WaitExit(milliseconds(30'000))) << "settle close hung after the server died";
    const bool acked = first.exit_code() == 0;
    EXPECT_TRUE(acked || first.exit_code() == 2) << first.exit_code() << first.err();
    if (Uniform(rng, 0, 3) == 0) {
      KillDuringStartup(data, dir.Sub(StrCat("early-", round)), rng);
      ++startup_kills;
    }

    Daemon again(data, "", dir.Sub(StrCat("server-again-", round)));
    ASSERT_TRUE(again.WaitReady()) << again.LogTail();
    CheckDataDir(data, nullptr);
    const bool stored = FindTx(data, "set", StrCat("settle-", round)).has_value();
    if (acked) {
      EXPECT_TRUE(stored) << "settle-" << round << " was acknowledged but is gone";
      ++acked_then_found;
    } else {
      ++(stored ? committed_unacked : lost_before_commit);
    }
    // The same command again (the port changed; the content did not).
    std::vector<std::string> retry = settle;
    for (size_t i = 0; i + 1 < retry.size(); ++i) {
      if (retry[i] == "--server") retry[i + 1] = again.address();
    }
    const CommandResult second = RunCommand(retry, dir.Sub(StrCat("settle-retry-", round)));
    ASSERT_EQ(second.exit_code, 0) << second.err;
    const nlohmann::json j = nlohmann::json::parse(second.out, nullptr, false);
    ASSERT_TRUE(j.is_object()) << second.out;
    EXPECT_EQ(j["status"], "ok");
    EXPECT_EQ(j["duplicate"], stored) << second.out;
    EXPECT_EQ(again.Stop(), 0);
  }

  // A last settlement up to now (a future end is refused) closes every flow.
  Daemon server(data, "", dir.Sub("server-final"));
  ASSERT_TRUE(server.WaitReady()) << server.LogTail();
  const CommandResult last = RunCommand(
      Cli(server, {"settle", "close", "--program", "set", "--partner", "hotelco", "--id", "settle-final"}),
      dir.Sub("settle-final"));
  ASSERT_EQ(last.exit_code, 0) << last.out << last.err;
  EXPECT_EQ(server.Stop(), 0);

  CheckDataDir(data, nullptr);
  const std::vector<ledger::TxRecord> log = ReadLog(data);
  ExpectIdsUnique(log);
  const ledger::Id partner = ledger::PartnerAccountId("set", "hotelco");
  uint64_t earned = 0, redeemed = 0, settled_earned = 0, settled_redeemed = 0;
  int settles = 0;
  for (const ledger::TxRecord& r : log) {
    if (r.result.code != ledger::Code::kOk) continue;
    if (r.tx.kind == Kind::kEarn) earned += r.tx.points;
    if (r.tx.kind == Kind::kRedeem) redeemed += r.tx.points;
    if (r.tx.kind != Kind::kSettle) continue;
    ++settles;
    for (const ledger::Posting& p : r.postings) {
      if (p.credit == partner) settled_earned += p.points;
      if (p.debit == partner) settled_redeemed += p.points;
    }
  }
  EXPECT_EQ(settles, rounds + 1);
  EXPECT_EQ(settled_earned, earned) << "every point earned at the partner settled once";
  EXPECT_EQ(settled_redeemed, redeemed) << "every point redeemed at the partner settled once";
  std::unique_ptr<ledger::Ledger> l = OpenReadOnly(data);
  ASSERT_NE(l, nullptr);
  bool seen = false;
  ASSERT_TRUE(l->ForEachAccount([&](const ledger::AccountInfo& a) {
                 if (a.id != partner) return;
                 seen = true;
                 EXPECT_EQ(a.debits_posted, a.credits_posted) << "the clearing account is settled to zero";
               }).ok());
  EXPECT_TRUE(seen);
  Note(StrCat("KillNine.Settle: ", rounds, " kills: ", acked_then_found, " acknowledged before the kill, ",
              committed_unacked, " committed but not acknowledged, ", lost_before_commit,
              " killed before the commit; ", startup_kills, " more during startup"));
}

// ---------------------------------------------------------------------------
// A reader killed inside a read transaction (kill -9 of a `--data` tool)
// leaves its slot in LMDB's lock table, and LMDB then keeps every page that
// reader could see: the server's files only grow. The server must free such
// slots itself, without a restart.

// The reader table of the LMDB environment in `dir`, as mdb_stat -r prints it.
std::string ReaderTable(const std::string& dir) {
  MDB_env* env = nullptr;
  PL_CHECK(mdb_env_create(&env) == 0);
  std::string out;
  if (mdb_env_open(env, dir.c_str(), MDB_RDONLY | MDB_NOTLS, 0644) == 0) {
    mdb_reader_list(
        env,
        [](const char* msg, void* ctx) {
          static_cast<std::string*>(ctx)->append(msg);
          return 0;
        },
        &out);
  }
  mdb_env_close(env);
  return out;
}

bool HasReader(const std::string& table, pid_t pid) {
  const std::string needle = StrCat(" ", pid, " ");
  return table.find(needle) != std::string::npos;
}

TEST(KillNine, AKilledReaderPinsNoSpace) {
  TempDir dir;
  const std::string data = dir.Sub("data");
  Daemon server(data, "", dir.Sub("server"));
  ASSERT_TRUE(server.WaitReady()) << server.LogTail();
  const CommandResult setup = RunCommand(
      LoadCommand(server, "load", 7, 2000, "earn=100", dir.Sub("acks.log")), dir.Sub("setup"));
  ASSERT_EQ(setup.exit_code, 0) << setup.err;

  // A reader in another process, stopped inside a scan (a read transaction
  // in each environment), then killed. A bare fork is safe here only
  // because this process has no other thread at this point (none can hold
  // a lock the child would need); docs/testing.md.
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t reader = ::fork();
  ASSERT_GE(reader, 0);
  if (reader == 0) {
    absl::StatusOr<std::unique_ptr<ledger::Ledger>> l = ledger::Ledger::Open({.dir = data, .read_only = true});
    if (l.ok()) {
      (void)(*l)->ForEachAccount([&](const ledger::AccountInfo&) {
        const char byte = 1;
        (void)!::write(ready[1], &byte, 1);
        for (;;) ::pause();
      });
    }
    ::_exit(1);
  }
  ::close(ready[1]);
  char byte = 0;
  ASSERT_EQ(::read(ready[0], &byte, 1), 1) << "the reader did not start its scan";
  ::close(ready[0]);
  ::kill(reader, SIGKILL);
  ASSERT_EQ(::waitpid(reader, nullptr, 0), reader);
  ASSERT_TRUE(HasReader(ReaderTable(data + "/state"), reader)) << ReaderTable(data + "/state");

  // The server frees the slot as it goes on writing (before a checkpoint).
  absl::StatusOr<std::unique_ptr<net::Client>> client = server.Connect();
  ASSERT_TRUE(client.ok()) << client.status();
  int n = 0;
  const bool freed = PollUntil(
      [&] {
        ledger::Transaction t;
        t.kind = Kind::kEarn;
        t.program = "load";
        t.member = "after-the-kill";
        t.points = 1;
        t.id = ledger::TxIdFromKey("load", StrCat("after-the-kill-", ++n));
        EXPECT_TRUE((*client)->Post({&t, 1}).ok());
        return !HasReader(ReaderTable(data + "/state"), reader) && !HasReader(ReaderTable(data + "/log"), reader);
      },
      milliseconds(30'000));
  EXPECT_TRUE(freed) << "the dead reader still holds its slot:\n" << ReaderTable(data + "/state");
  EXPECT_NE(server.log().find("reader slot(s) left by dead processes"), std::string::npos) << server.LogTail();
  EXPECT_EQ(server.Stop(), 0);
  CheckDataDir(data, nullptr);
}

// A backup killed at any moment leaves either no ledger (the copies are
// still under TO/.partial, which no tool opens, and a new backup into TO is
// refused with a reason) or a whole one that audits clean: never a
// truncated copy that reads past its end, nor one without the write-ahead
// log's tail.
TEST(KillNine, ABackupKilledMidwayIsNeverTakenForALedger) {
  const int kills = std::max(4, LoadKills());
  const uint64_t seed = StartRun("KillNine.Backup", kills);
  SCOPED_TRACE(StrCat("PL_SEED=", seed));
  std::mt19937_64 rng(seed);
  TempDir dir;
  const std::string data = dir.Sub("data");
  Daemon server(data, "", dir.Sub("server"));
  ASSERT_TRUE(server.WaitReady()) << server.LogTail();
  const CommandResult setup = RunCommand(
      LoadCommand(server, "load", rng() | 1, 40'000, "earn=100", dir.Sub("acks.log")), dir.Sub("setup"));
  ASSERT_EQ(setup.exit_code, 0) << setup.err;
  auto backup = [&](const std::string& to) {
    return std::vector<std::string>{Bin("pointledger"), "backup", "--data", data, "--to", to, "--json"};
  };
  // Timed twice, the shorter kept: the first copy reads the files cold,
  // later ones from the page cache, and kills drawn over the cold time
  // could all land after a warm copy had finished (the check below then
  // failed now and then; found by a reviewer, session 21).
  int64_t took_us = std::numeric_limits<int64_t>::max();
  for (const char* name : {"whole", "whole-warm"}) {
    const Clock::time_point start = Clock::now();
    const CommandResult whole = RunCommand(backup(dir.Sub(name)), dir.Sub(name));
    took_us = std::min<int64_t>(
        took_us, std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count());
    ASSERT_EQ(whole.exit_code, 0) << whole.err;
  }
  // The server is idle from here: every whole copy has this head, the
  // write-ahead log's tail included.
  const ledger::ChainHead expected = CheckDataDir(dir.Sub("whole"), nullptr);
  ASSERT_GE(expected.seq, 40'000u);

  int cut_short = 0;
  for (int k = 0; k < kills; ++k) {
    const std::string to = dir.Sub(StrCat("copy-", k));
    // The first kill within the first eighth of a warm copy: on a loaded
    // machine the timed copies can take longer than the killed ones, and
    // then kills drawn over the whole time could all land after the end
    // (the check below failed once, session 22, with builds beside it).
    const uint64_t delay_us = Uniform(rng, 0, static_cast<uint64_t>(k == 0 ? took_us / 8 : took_us));
    Child copy(backup(to), dir.Sub(StrCat("backup-", k)));
    SleepMicros(delay_us);
    copy.Signal(SIGKILL);
    ASSERT_TRUE(copy.WaitExit(milliseconds(30'000)));
    const CommandResult head =
        RunCommand({Bin("pointledger"), "audit", "head", "--data", to}, dir.Sub(StrCat("head-", k)));
    if (head.exit_code == 0) {
      const ledger::ChainHead got = CheckDataDir(to, nullptr);  // finished, or killed while syncing it
      EXPECT_EQ(got.seq, expected.seq) << "a copy that opens lacks commits";
    } else {
      ++cut_short;
      EXPECT_EQ(head.exit_code, 2);
      EXPECT_TRUE(head.err.find("no ledger in") != std::string::npos ||
                  head.err.find("cut short") != std::string::npos ||  // copies under .partial
                  head.err.find("no such directory") != std::string::npos)  // killed before mkdir
          << head.err;
      if (std::filesystem::exists(to + "/.partial")) {
        EXPECT_NE(head.err.find("cut short"), std::string::npos) << head.err;
      }
      if (std::filesystem::exists(to + "/.partial")) {
        const CommandResult again = RunCommand(backup(to), dir.Sub(StrCat("again-", k)));
        EXPECT_EQ(again.exit_code, 2);
        EXPECT_NE(again.err.find("cut short"), std::string::npos) << again.err;
      }
    }
    Note(StrCat("kill ", k + 1, " after ", delay_us / 1000, " of ", took_us / 1000, " ms: exit ",
                copy.exit_code(), head.exit_code == 0 ? ", a whole ledger" : ", no ledger"));
    if (HasFailure()) return;
  }
  // Kills spread over one backup's duration: most land before it ends.
  EXPECT_GT(cut_short, 0) << "no kill landed inside a backup";
  EXPECT_EQ(server.Stop(), 0);
}

}  // namespace
}  // namespace pointledger::crash
