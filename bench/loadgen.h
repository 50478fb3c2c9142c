// The load generator behind `pointledger load`: N connections to
// pointledgerd (shared out among a few threads, each driving its
// connections in rounds), each keeping a few batches pipelined, posting a
// mix of earn / redeem / referral / transfer over a member population, with
// an optional target rate. Measures throughput and batch latency (send to
// answer) in an HDR-style histogram (bench/histogram.h).
//
// Workload rules:
// - The program (`load` by default) is created first if missing, with a
//   fixed id (so a second run is a duplicate, not a conflict).
// - Members are split between the connections (member m belongs to worker
//   m mod N), so no two connections race on one member.
// - A redeem or transfer only targets a member that connection sent an
//   earn to before (the server applies a connection's batches in the order
//   sent); until there is one, it is sent as an earn.
//   Redeems may still be refused (insufficient_points) — rejections are
//   counted by code, never hidden.
// - Ids are 8 bytes of a run nonce, then the worker and a counter. The nonce
//   derives from the seed and the program: a random seed makes ids unique
//   per run; a given seed (with the same program, connections, batch,
//   in_flight, mix, members and count) replays the same transactions in the
//   same order, so a rerun after a crash gets its decided ids back as
//   duplicates (each worker's choices depend only on the seed, never on
//   answers or when they came, so --rate and --threads change nothing).
#ifndef POINTLEDGER_BENCH_LOADGEN_H_
#define POINTLEDGER_BENCH_LOADGEN_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "net/client.h"

namespace pointledger::bench {

// Relative weights of the kinds; "earn=60,redeem=30,referral=10".
struct Mix {
  uint32_t earn = 60;
  uint32_t redeem = 30;
  uint32_t referral = 10;
  uint32_t transfer = 0;
  uint32_t total() const { return earn + redeem + referral + transfer; }
};
// InvalidArgument for an unknown kind, a bad number or an all-zero mix.
absl::StatusOr<Mix> ParseMix(std::string_view text);

struct Progress {
  double elapsed_s = 0;
  uint64_t committed = 0;
  uint64_t rejected = 0;
  double last_second_tx_per_s = 0;
  uint64_t connections_alive = 0;
};

struct LoadOptions {
  net::ClientOptions client;
  int connections = 1;
  int batch = 1;                 // transactions per request, 1 .. 8190
  int in_flight = 4;             // requests pipelined per connection
  int threads = 0;               // the connections are shared out among these; 0: 4, or
                                 // one per connection with a rate (docs/cli.md)
  int64_t duration_ns = 0;       // run this long ...
  uint64_t count = 0;            // ... or post exactly this many (one of the two)
  Mix mix;
  uint64_t members = 1'000'000;
  double rate_tx_per_s = 0;      // 0: as fast as the server answers
  std::string program = "load";
  uint64_t seed = 0;             // 0: a random seed below 2^53 (reported in LoadReport::seed)
  std::string ack_log;           // append "<id hex> <seq> <code>" per recorded result; "" = none
  // Called about once a second from a reporter thread.
  std::function<void(const Progress&)> on_progress;
  // How to open a connection; default: net::Client::Connect(client).
  std::function<absl::StatusOr<std::unique_ptr<net::Client>>()> connect;
  // When set (by a signal handler: Ctrl-C), the run ends early: nothing more
  // is sent, the answers in flight are awaited, and the report covers what
  // was answered, with `interrupted`. May be null.
  const std::atomic<bool>* stop = nullptr;
};

// The largest integer every JSON reader keeps exactly (a double's 53 bits).
inline constexpr uint64_t kJsonSafeIntMax = (uint64_t{1} << 53) - 1;

struct LoadReport {
  uint64_t sent = 0;
  uint64_t committed = 0;  // ok, duplicates included
  uint64_t rejected = 0;
  std::map<std::string, uint64_t> rejected_by_code;  // "insufficient_points" -> n
  std::map<std::string, uint64_t> committed_by_kind;  // "earn" -> n
  uint64_t batches = 0;
  double seconds = 0;
  double transactions_per_second = 0;  // answered transactions / seconds
  double p50_ms = 0, p99_ms = 0, p999_ms = 0, max_ms = 0, mean_ms = 0;
  int connections = 0;
  int batch = 0;
  uint64_t seed = 0;  // what --seed replays this run with
  std::string error;  // a connection failed (the figures cover what was answered)
  bool interrupted = false;  // LoadOptions::stop ended the run early
};

// Runs the load. A non-OK status means nothing ran (bad options, the setup
// connection or the program creation failed); a failure during the run is
// reported in LoadReport::error with the figures of what was answered.
absl::StatusOr<LoadReport> RunLoad(const LoadOptions& options);

// {"transactions_per_second":..,"committed":..,"rejected":..,"p50_ms":..,
//  "p99_ms":..,"p999_ms":..,"max_ms":.., ...} on one line.
std::string ReportJson(const LoadReport& report);
// A few readable lines.
std::string ReportText(const LoadReport& report);

}  // namespace pointledger::bench

#endif  // POINTLEDGER_BENCH_LOADGEN_H_
