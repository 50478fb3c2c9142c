#include "bench/loadgen.h"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <deque>
#include <latch>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "bench/histogram.h"
#include "ledger/limits.h"
#include "ledger/status.h"
#include "nlohmann/json.hpp"

namespace pointledger::bench {

using ledger::Code;
using ledger::Kind;
using ledger::Transaction;
using SteadyClock = std::chrono::steady_clock;

absl::StatusOr<Mix> ParseMix(std::string_view text) {
  Mix mix{0, 0, 0, 0};
  while (!text.empty()) {
    const size_t comma = text.find(',');
    const std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    const size_t eq = item.find('=');
    uint32_t weight = 0;
    const std::string_view name = item.substr(0, eq);
    const std::string_view number = eq == std::string_view::npos ? std::string_view() : item.substr(eq + 1);
    auto [ptr, ec] = std::from_chars(number.data(), number.data() + number.size(), weight);
    if (eq == std::string_view::npos || number.empty() || ec != std::errc() ||
        ptr != number.data() + number.size() || weight > 1'000'000) {
      return absl::InvalidArgumentError(StrCat("--mix: bad item '", item, "' (expected KIND=WEIGHT, e.g. earn=60)"));
    }
    if (name == "earn") mix.earn = weight;
    else if (name == "redeem") mix.redeem = weight;
    else if (name == "referral") mix.referral = weight;
    else if (name == "transfer") mix.transfer = weight;
    else {
      return absl::InvalidArgumentError(
          StrCat("--mix: unknown kind '", name, "' (earn, redeem, referral, transfer)"));
    }
  }
  if (mix.total() == 0) return absl::InvalidArgumentError("--mix: all weights are zero");
  return mix;
}

namespace {

// State shared by the workers and the reporter.
struct Shared {
  std::atomic<uint64_t> committed{0};
  std::atomic<uint64_t> rejected{0};
  std::atomic<int> alive{0};
  std::atomic<bool> done{false};
  std::mutex mu;  // guards error, ack_log
  std::string error;
  std::FILE* ack_log = nullptr;

  void Fail(int worker, const absl::Status& status) {
    std::lock_guard<std::mutex> lock(mu);
    if (error.empty()) error = StrCat("connection ", worker, ": ", std::string(status.message()));
  }
};

struct InFlight {
  std::vector<Transaction> txs;
  SteadyClock::time_point t0;
};

class Worker {
 public:
  Worker(const LoadOptions& o, int index, uint64_t nonce, uint64_t quota, Shared* shared)
      : o_(o), index_(index), nonce_(nonce), quota_(quota), shared_(shared),
        rng_(nonce ^ (uint64_t{0x9e3779b97f4a7c15} * static_cast<uint64_t>(index + 1))) {
    const uint64_t n = static_cast<uint64_t>(o.connections);
    const uint64_t w = static_cast<uint64_t>(index);
    // Members w, w+N, w+2N ... belong to this worker; with fewer than two
    // members a connection, every worker uses all of them (a worker with
    // one member of its own could only send same_account transfers and
    // referrals; found in review, session 16).
    shared_members_ = o.members < 2 * n;
    // members / n, plus one for the first members % n workers (written so
    // that nothing wraps near 2^64; found in review, session 19).
    local_members_ = shared_members_ ? o.members : o.members / n + (w < o.members % n ? 1 : 0);
    fresh_referee_ = rng_() % local_members_;
  }

  // Connects; the latch is counted down whether or not that worked.
  void Connect(std::latch* connected) {
    absl::StatusOr<std::unique_ptr<net::Client>> c = o_.connect();
    if (c.ok()) {
      client_ = std::move(*c);
      shared_->alive.fetch_add(1);
    } else {
      shared_->Fail(index_, c.status());
    }
    connected->count_down();
  }

  bool connected() const { return client_ != nullptr; }

  // Called once, on the driving thread, before the first SendReady.
  void Start(SteadyClock::time_point start) {
    deadline_ = start + std::chrono::nanoseconds(o_.duration_ns);
    const double per_worker_rate = o_.rate_tx_per_s / o_.connections;
    interval_ = std::chrono::duration_cast<SteadyClock::duration>(
        std::chrono::duration<double>(rated() ? o_.batch / per_worker_rate : 0));
    // The workers' first sends spread over one interval, not all at the
    // start: with --rate, every connection's first batch at once was a
    // burst the rate never allowed (found in review, session 19).
    next_send_ = start + interval_ * index_ / o_.connections;
  }

  // Sends every batch the window and the rate allow now. The time of the
  // next send the rate allows is *wake (unchanged when not rated).
  absl::Status SendReady(SteadyClock::time_point now, SteadyClock::time_point* wake) {
    while (!failed_ && busy_.ok() && window_.size() < static_cast<size_t>(o_.in_flight) && More(now)) {
      // Stamped with the time it was due: a slow server shows as latency.
      if (rated() && now < next_send_) {
        if (More(next_send_)) *wake = std::min(*wake, next_send_);  // not past the deadline
        break;
      }
      const absl::Status s = SendBatch(rated() ? std::optional(next_send_) : std::nullopt);
      if (!s.ok()) return Fail(s);
      next_send_ += interval_;
    }
    return absl::OkStatus();
  }

  bool waiting() const { return !failed_ && !window_.empty(); }
  // Waits for the oldest answer. REQUIRES: waiting().
  absl::Status ReceiveOne() {
    const absl::Status s = ReceiveBatch();
    if (!s.ok()) return Fail(s);
    // Refused once: the run stops (exit 2) after the batches sent before
    // the refusal are answered.
    if (!busy_.ok() && window_.empty()) return Fail(busy_);
    return s;
  }
  // Counts the connection out of `alive` once it has nothing in flight and
  // nothing more to send (`force`: the run is over). A failed one was
  // counted out by Fail.
  void MaybeDone(SteadyClock::time_point now, bool force) {
    if (done_ || failed_ || !window_.empty()) return;
    if (!force && More(now)) return;
    done_ = true;
    shared_->alive.fetch_sub(1);
  }

  Histogram histogram;
  uint64_t sent = 0;
  uint64_t batches = 0;
  std::array<uint64_t, ledger::kCodeMax + 1> by_code{};
  std::array<uint64_t, ledger::kKindMax + 1> committed_by_kind{};

 private:
  bool rated() const { return o_.rate_tx_per_s > 0; }
  bool More(SteadyClock::time_point now) const {
    if (o_.stop != nullptr && o_.stop->load(std::memory_order_relaxed)) return false;
    return o_.duration_ns > 0 ? now < deadline_ : sent < quota_;
  }
  absl::Status Fail(const absl::Status& s) {
    failed_ = true;
    shared_->Fail(index_, s);
    shared_->alive.fetch_sub(1);
    client_.reset();
    return s;
  }

  uint64_t MemberOf(uint64_t local) const {
    return shared_members_ ? local
                           : static_cast<uint64_t>(index_) + local * static_cast<uint64_t>(o_.connections);
  }
  static void SetMember(std::string* out, uint64_t member) {
    char buf[24];
    buf[0] = 'm';
    auto [ptr, ec] = std::to_chars(buf + 1, buf + sizeof(buf), member);
    out->assign(buf, static_cast<size_t>(ptr - buf));
  }
  uint64_t Funded() { return funded_[rng_() % funded_.size()]; }
  uint64_t RandomLocal() { return rng_() % local_members_; }

  // Unique per (run nonce, connection, counter). The counter part leads,
  // mixed by a bijection, so that ids arrive in random order as real
  // clients' hashed ids do (ascending ids kept the id index's inserts and
  // checkpoint writes on a few pages; found in review, session 21).
  ledger::Id NextId() {
    ledger::Id id{};
    const uint64_t low = Mix((static_cast<uint64_t>(index_) << 40) | ++counter_);
    for (int i = 0; i < 8; ++i) {
      id[static_cast<size_t>(i)] = static_cast<uint8_t>(low >> (56 - 8 * i));
      id[static_cast<size_t>(8 + i)] = static_cast<uint8_t>(nonce_ >> (56 - 8 * i));
    }
    return id;
  }
  // splitmix64's finalizer: a bijection of 64-bit integers.
  static uint64_t Mix(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
  }

  // Fills t (reused: its strings keep their capacity) with the next
  // transaction of the mix; returns the local member of an earn, else -1.
  int64_t NextTransaction(Transaction* t) {
    const uint32_t r = static_cast<uint32_t>(rng_() % o_.mix.total());
    Kind kind = r < o_.mix.earn                                  ? Kind::kEarn
                : r < o_.mix.earn + o_.mix.redeem                ? Kind::kRedeem
                : r < o_.mix.earn + o_.mix.redeem + o_.mix.referral ? Kind::kReferral
                                                                 : Kind::kTransfer;
    // Earn before redeem: until this connection sent an earn, redeems and
    // transfers have nobody to spend from. Sent, not acknowledged: the
    // server applies a connection's batches in the order they were sent,
    // and a choice that waited for answers made the transactions depend
    // on their timing, so that with --rate the same seed did not send the
    // same ones (found in review, session 29: a rerun got id_conflict).
    if ((kind == Kind::kRedeem || kind == Kind::kTransfer) && funded_.empty()) kind = Kind::kEarn;
    t->id = NextId();
    t->kind = kind;
    t->linked = false;
    t->program = o_.program;
    t->member2.clear();
    t->points2 = 0;
    int64_t earned = -1;
    switch (kind) {
      case Kind::kEarn: {
        const uint64_t local = RandomLocal();
        SetMember(&t->member, MemberOf(local));
        t->points = 100 + rng_() % 901;
        earned = static_cast<int64_t>(local);
        break;
      }
      case Kind::kRedeem:
        SetMember(&t->member, MemberOf(Funded()));
        t->points = 1 + rng_() % 50;
        break;
      case Kind::kReferral: {
        const uint64_t referrer = RandomLocal();
        uint64_t referee = fresh_referee_++ % local_members_;
        if (referee == referrer) referee = fresh_referee_++ % local_members_;
        SetMember(&t->member, MemberOf(referrer));
        SetMember(&t->member2, MemberOf(referee));
        t->points = 50;
        t->points2 = 25;
        break;
      }
      default: {  // transfer
        const uint64_t from = Funded();
        uint64_t to = RandomLocal();
        if (to == from) to = (to + 1) % local_members_;
        SetMember(&t->member, MemberOf(from));
        SetMember(&t->member2, MemberOf(to));
        t->points = 1 + rng_() % 10;
        break;
      }
    }
    return earned;
  }

  // `due`: the time a rated batch was due; unrated, it is stamped as it is
  // sent (not at the round's start, which counted the sends of the other
  // connections on this thread as its latency; found in review, session 21).
  absl::Status SendBatch(std::optional<SteadyClock::time_point> due) {
    size_t n = static_cast<size_t>(o_.batch);
    if (o_.duration_ns == 0) n = static_cast<size_t>(std::min<uint64_t>(n, quota_ - sent));
    InFlight batch;
    if (!spare_.empty()) {
      batch = std::move(spare_.back());
      spare_.pop_back();
    }
    batch.txs.resize(n);
    for (size_t i = 0; i < n; ++i) {
      if (const int64_t earned = NextTransaction(&batch.txs[i]); earned >= 0) {
        AddFunded(static_cast<uint64_t>(earned));
      }
    }
    batch.t0 = due ? *due : SteadyClock::now();
    PL_RETURN_IF_ERROR(client_->Send(batch.txs).status());
    sent += n;
    window_.push_back(std::move(batch));
    return absl::OkStatus();
  }

  absl::Status ReceiveBatch() {
    PL_ASSIGN_OR_RETURN(net::Client::BatchAnswer answer, client_->Receive());
    if (absl::StartsWith(answer.status.message(), "server_busy")) {
      // That batch was refused whole, and the connection stays open: the
      // ones sent after it are still answered, some committed, so they are
      // read (and go to --ack-log) before the run stops; leaving them
      // unread lost acknowledged ids from the log (found by a crash soak,
      // session 29). Nothing more is sent.
      if (busy_.ok()) busy_ = answer.status;
      spare_.push_back(std::move(window_.front()));
      window_.pop_front();
      return absl::OkStatus();
    }
    if (!answer.status.ok()) {
      // Refused otherwise (malformed_request ...): the run cannot go on;
      // the batch is done, so the window moves on with it.
      spare_.push_back(std::move(window_.front()));
      window_.pop_front();
      return answer.status;
    }
    InFlight& batch = window_.front();
    const auto latency = SteadyClock::now() - batch.t0;
    histogram.Record(static_cast<uint64_t>(std::max<int64_t>(
        0, std::chrono::duration_cast<std::chrono::nanoseconds>(latency).count())));
    if (answer.results.size() != batch.txs.size()) {
      return absl::DataLossError(StrCat("the server answered ", answer.results.size(), " results for a batch of ",
                                        batch.txs.size()));
    }
    uint64_t ok = 0;
    ack_lines_.clear();
    for (size_t i = 0; i < batch.txs.size(); ++i) {
      const ledger::Result& r = answer.results[i];
      by_code[static_cast<size_t>(r.code)]++;
      if (r.code == Code::kOk) {
        ++ok;
        committed_by_kind[static_cast<size_t>(batch.txs[i].kind)]++;
      }
      if (shared_->ack_log != nullptr && r.seq != 0) {
        ack_lines_ += StrCat(ledger::IdToHex(batch.txs[i].id), " ", r.seq, " ", ledger::CodeName(r.code), "\n");
      }
    }
    if (!ack_lines_.empty()) {
      std::lock_guard<std::mutex> lock(shared_->mu);
      std::fwrite(ack_lines_.data(), 1, ack_lines_.size(), shared_->ack_log);
      std::fflush(shared_->ack_log);
    }
    shared_->committed.fetch_add(ok, std::memory_order_relaxed);
    shared_->rejected.fetch_add(batch.txs.size() - ok, std::memory_order_relaxed);
    ++batches;
    spare_.push_back(std::move(batch));
    window_.pop_front();
    return absl::OkStatus();
  }

  // A sample of the members this connection has sent earns to, that
  // redeems and transfers pick from: every one until kFundedSampleMax (over
  // all connections), then a random slot is replaced. A ring of the last 4,096 kept them on
  // cache-hot members (found in review, session 21); the bound keeps a
  // long run's memory flat.
  void AddFunded(uint64_t local) {
    const size_t max = std::max<size_t>(4096, kFundedSampleMax / static_cast<size_t>(o_.connections));
    if (funded_.size() < max) {
      funded_.push_back(local);
    } else {
      funded_[rng_() % max] = local;
    }
  }
  static constexpr size_t kFundedSampleMax = size_t{1} << 20;

  const LoadOptions& o_;
  SteadyClock::time_point next_send_, deadline_;
  SteadyClock::duration interval_{};
  bool failed_ = false;
  bool done_ = false;
  absl::Status busy_;  // the first server_busy answer: send nothing more
  const int index_;
  const uint64_t nonce_;
  const uint64_t quota_;
  Shared* shared_;
  std::mt19937_64 rng_;
  std::unique_ptr<net::Client> client_;
  bool shared_members_ = false;
  uint64_t local_members_ = 1;
  uint64_t fresh_referee_ = 0;
  uint64_t counter_ = 0;
  std::vector<uint64_t> funded_;
  std::deque<InFlight> window_;
  std::vector<InFlight> spare_;
  std::string ack_lines_;
};

// Runs a thread's connections in rounds: every connection sends what its
// window allows, then each waits for its oldest answer. A thread per
// connection cost the generator as much CPU as the server at batch 1 (a
// wake-up per answer, paid partly by the server's send); in rounds, a
// group commit's answers are read by one thread that is already awake.
// The price: while a thread waits for one connection's answer, the others'
// due sends wait too, which is why --rate gets a thread per connection
// unless --threads says otherwise (ThreadCount; docs/cli.md, "load").
void Drive(const std::vector<Worker*>& workers, SteadyClock::time_point start) {
  for (Worker* w : workers) w->Start(start);
  for (;;) {
    const SteadyClock::time_point now = SteadyClock::now();
    SteadyClock::time_point wake = SteadyClock::time_point::max();
    for (Worker* w : workers) {
      (void)w->SendReady(now, &wake);  // a failure is recorded; the rest go on
    }
    bool waited = false;
    for (Worker* w : workers) {
      if (w->waiting()) {
        waited = true;
        (void)w->ReceiveOne();
      }
      w->MaybeDone(now, /*force=*/false);
    }
    if (waited) continue;
    // Nothing in flight: either every connection is finished, or the rate
    // holds them back until `wake`.
    if (wake == SteadyClock::time_point::max()) break;
    // In slices, so that a stop is seen while a slow rate waits.
    std::this_thread::sleep_until(std::min(wake, SteadyClock::now() + std::chrono::milliseconds(100)));
  }
  for (Worker* w : workers) w->MaybeDone(SteadyClock::now(), /*force=*/true);
}

// Automatic (0): four threads in rounds, or with --rate one per connection,
// so that a slow answer holds back no other connection's due sends.
size_t ThreadCount(const LoadOptions& o) {
  if (o.threads > 0) return static_cast<size_t>(o.threads);
  return o.rate_tx_per_s > 0 ? static_cast<size_t>(o.connections) : 4;
}

absl::Status CheckOptions(const LoadOptions& o) {
  if (!o.connect) return absl::InvalidArgumentError("no connect function");
  if (o.connections < 1 || o.connections > 4096) {
    return absl::InvalidArgumentError("--connections must be from 1 to 4096");
  }
  if (o.batch < 1 || static_cast<size_t>(o.batch) > ledger::kBatchTransactionsMax) {
    return absl::InvalidArgumentError(StrCat("--batch must be from 1 to ", ledger::kBatchTransactionsMax));
  }
  if (o.in_flight < 1 || o.in_flight > 64) return absl::InvalidArgumentError("--in-flight must be from 1 to 64");
  if (o.threads < 0 || o.threads > 4096) {
    return absl::InvalidArgumentError("--threads must be from 0 (automatic) to 4096");
  }
  if ((o.duration_ns > 0) == (o.count > 0)) {
    return absl::InvalidArgumentError("give exactly one of --duration and --count");
  }
  if (o.members < 2) return absl::InvalidArgumentError("--members must be at least 2");
  if (!(o.rate_tx_per_s >= 0) || !std::isfinite(o.rate_tx_per_s)) {
    return absl::InvalidArgumentError("--rate must be a finite number, not negative");
  }
  if (o.rate_tx_per_s > 0 && o.batch / (o.rate_tx_per_s / o.connections) > 86400.0) {
    return absl::InvalidArgumentError("--rate is too low: a connection would send one batch a day or less");
  }
  if (o.rate_tx_per_s > 0 && o.duration_ns > 0 &&
      o.batch / (o.rate_tx_per_s / o.connections) * 1e9 > static_cast<double>(o.duration_ns)) {
    return absl::InvalidArgumentError(
        "--rate with --duration: each connection would send less than one batch in the run; "
        "lower --batch or --connections, or raise --rate or --duration");
  }
  if (o.mix.total() == 0) return absl::InvalidArgumentError("--mix: all weights are zero");
  return absl::OkStatus();
}

// Creates the program unless it exists. Fixed id and content: a rerun is a
// duplicate.
absl::Status EnsureProgram(const LoadOptions& o) {
  PL_ASSIGN_OR_RETURN(std::unique_ptr<net::Client> client, o.connect());
  if (static_cast<uint32_t>(o.batch) > client->batch_transactions_max()) {
    return absl::InvalidArgumentError(StrCat("--batch ", o.batch, " is more than the server takes (",
                                             client->batch_transactions_max(), ")"));
  }
  Transaction t;
  t.kind = Kind::kProgramCreate;
  t.program = o.program;
  t.id = ledger::TxIdFromKey(o.program, "pointledger-load/program_create");
  t.currency = "USD";
  t.point_value_micros = 1000;
  t.expiry_days = 365;
  t.lock_days = 0;
  t.auto_open = true;
  PL_ASSIGN_OR_RETURN(std::vector<ledger::Result> results, client->Post({&t, 1}));
  if (results.size() != 1) return absl::DataLossError("program_create: wrong number of results");
  const Code code = results[0].code;
  // program_exists / id_conflict: someone (or an older run) made it already.
  if (code == Code::kOk || code == Code::kProgramExists || code == Code::kIdConflict) return absl::OkStatus();
  // A key without admin may still load a program that exists (found in
  // review, session 19: it was refused whatever the program); if the
  // program is missing, every transaction reports program_not_found.
  if (code == Code::kPermissionDenied) return absl::OkStatus();
  return absl::FailedPreconditionError(StrCat("creating program '", o.program, "': ", ledger::CodeName(code)));
}

void Report(const LoadOptions& o, Shared* shared, SteadyClock::time_point start) {
  uint64_t last = 0;
  SteadyClock::time_point last_t = start;
  while (!shared->done.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const SteadyClock::time_point now = SteadyClock::now();
    if (now - last_t < std::chrono::seconds(1)) continue;
    Progress p;
    p.committed = shared->committed.load();
    p.rejected = shared->rejected.load();
    p.elapsed_s = std::chrono::duration<double>(now - start).count();
    p.last_second_tx_per_s =
        static_cast<double>(p.committed + p.rejected - last) / std::chrono::duration<double>(now - last_t).count();
    p.connections_alive = static_cast<uint64_t>(std::max(0, shared->alive.load()));
    last = p.committed + p.rejected;
    last_t = now;
    if (o.on_progress) o.on_progress(p);
  }
}

double Ms(uint64_t ns) { return static_cast<double>(ns) / 1e6; }

// At most 2^53 - 1: `--json` prints it as a number, and a consumer that
// reads numbers as doubles (jq, JavaScript) would round a larger one, and
// then replay other ids with it.
uint64_t RandomSeed() {
  std::random_device rd;
  const uint64_t seed = ((uint64_t{rd()} << 32) ^ rd() ^
                         static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count())) &
                        kJsonSafeIntMax;
  return seed == 0 ? 1 : seed;
}

// The ids' first 8 bytes. The program is mixed in so that one seed used for
// two programs never gives the same ids (that would be id_conflict).
uint64_t RunNonce(std::string_view program, uint64_t seed) {
  const ledger::Id digest = ledger::DeriveId(StrCat(program, "/load/", seed));
  uint64_t nonce = 0;
  for (int i = 0; i < 8; ++i) nonce = (nonce << 8) | digest[static_cast<size_t>(i)];
  return nonce == 0 ? 1 : nonce;
}

// Merges the workers' counts and histograms.
LoadReport Summarize(const std::vector<std::unique_ptr<Worker>>& workers, double seconds);

}  // namespace

absl::StatusOr<LoadReport> RunLoad(const LoadOptions& o) {
  PL_RETURN_IF_ERROR(CheckOptions(o));
  PL_RETURN_IF_ERROR(EnsureProgram(o));
  Shared shared;
  if (!o.ack_log.empty()) {
    shared.ack_log = std::fopen(o.ack_log.c_str(), "a");
    if (shared.ack_log == nullptr) {
      return absl::FailedPreconditionError(StrCat("--ack-log ", o.ack_log, ": cannot open for appending"));
    }
  }
  const uint64_t seed = o.seed != 0 ? o.seed : RandomSeed();
  const uint64_t nonce = RunNonce(o.program, seed);
  const uint64_t n = static_cast<uint64_t>(o.connections);
  std::vector<std::unique_ptr<Worker>> workers;
  for (uint64_t w = 0; w < n; ++w) {
    const uint64_t quota = o.count / n + (w < o.count % n ? 1 : 0);
    workers.push_back(std::make_unique<Worker>(o, static_cast<int>(w), nonce, quota, &shared));
  }
  // Connect everything first, then start the clock.
  std::latch connected(static_cast<std::ptrdiff_t>(n));
  std::vector<std::thread> threads;
  for (auto& w : workers) threads.emplace_back([&w, &connected] { w->Connect(&connected); });
  for (std::thread& t : threads) t.join();
  threads.clear();
  if (shared.alive.load() == 0) {
    if (shared.ack_log != nullptr) std::fclose(shared.ack_log);
    return absl::UnavailableError(shared.error);
  }
  const SteadyClock::time_point start = SteadyClock::now();
  std::thread reporter([&] { Report(o, &shared, start); });
  const size_t thread_count = std::min<size_t>(workers.size(), ThreadCount(o));
  for (size_t t = 0; t < thread_count; ++t) {
    std::vector<Worker*> mine;
    for (size_t w = t; w < workers.size(); w += thread_count) {
      if (workers[w]->connected()) mine.push_back(workers[w].get());
    }
    threads.emplace_back([mine = std::move(mine), start] { Drive(mine, start); });
  }
  for (std::thread& t : threads) t.join();
  const double seconds = std::chrono::duration<double>(SteadyClock::now() - start).count();
  shared.done.store(true);
  reporter.join();
  if (shared.ack_log != nullptr) std::fclose(shared.ack_log);

  LoadReport r = Summarize(workers, seconds);
  r.connections = o.connections;
  r.batch = o.batch;
  r.seed = seed;
  r.error = shared.error;
  r.interrupted = o.stop != nullptr && o.stop->load();
  return r;
}

namespace {

LoadReport Summarize(const std::vector<std::unique_ptr<Worker>>& workers, double seconds) {
  LoadReport r;
  auto histogram = std::make_unique<Histogram>();
  for (const auto& w : workers) {
    histogram->Merge(w->histogram);
    r.sent += w->sent;
    r.batches += w->batches;
    for (int c = 0; c <= ledger::kCodeMax; ++c) {
      const uint64_t count = w->by_code[static_cast<size_t>(c)];
      if (count == 0) continue;
      if (c == 0) {
        r.committed += count;
      } else {
        r.rejected += count;
        r.rejected_by_code[std::string(ledger::CodeName(static_cast<Code>(c)))] += count;
      }
    }
    for (int k = 1; k <= ledger::kKindMax; ++k) {
      const uint64_t count = w->committed_by_kind[static_cast<size_t>(k)];
      if (count != 0) r.committed_by_kind[std::string(ledger::KindName(static_cast<Kind>(k)))] += count;
    }
  }
  r.seconds = seconds;
  r.transactions_per_second = seconds > 0 ? static_cast<double>(r.committed + r.rejected) / seconds : 0;
  r.p50_ms = Ms(histogram->ValueAtPercentile(50));
  r.p99_ms = Ms(histogram->ValueAtPercentile(99));
  r.p999_ms = Ms(histogram->ValueAtPercentile(99.9));
  r.max_ms = Ms(histogram->max());
  r.mean_ms = histogram->mean() / 1e6;
  return r;
}

}  // namespace

std::string ReportJson(const LoadReport& r) {
  nlohmann::ordered_json j;
  auto round3 = [](double v) { return static_cast<double>(static_cast<int64_t>(v * 1000 + 0.5)) / 1000; };
  j["transactions_per_second"] = round3(r.transactions_per_second);
  j["committed"] = r.committed;
  j["rejected"] = r.rejected;
  j["p50_ms"] = round3(r.p50_ms);
  j["p99_ms"] = round3(r.p99_ms);
  j["p999_ms"] = round3(r.p999_ms);
  j["max_ms"] = round3(r.max_ms);
  j["mean_ms"] = round3(r.mean_ms);
  j["seconds"] = round3(r.seconds);
  j["sent"] = r.sent;
  j["batches"] = r.batches;
  j["connections"] = r.connections;
  j["batch"] = r.batch;
  j["seed"] = r.seed;
  j["committed_by_kind"] = r.committed_by_kind;
  j["rejected_by_code"] = r.rejected_by_code;
  if (!r.error.empty()) j["error"] = r.error;
  if (r.interrupted) j["interrupted"] = true;
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

std::string ReportText(const LoadReport& r) {
  char buf[512];
  std::string out;
  std::snprintf(buf, sizeof(buf), "%llu transactions in %.2f s over %d connections, batch %d: %.0f tx/s\n",
                static_cast<unsigned long long>(r.committed + r.rejected), r.seconds, r.connections, r.batch,
                r.transactions_per_second);
  out += buf;
  out += StrCat("seed       ", r.seed, "  (--seed replays the same ids)\n");
  out += StrCat("committed  ", r.committed);
  std::string kinds;
  for (const auto& [kind, count] : r.committed_by_kind) kinds += StrCat(kinds.empty() ? "" : ", ", kind, " ", count);
  out += kinds.empty() ? "\n" : StrCat("  (", kinds, ")\n");
  out += StrCat("rejected   ", r.rejected);
  std::string codes;
  for (const auto& [code, count] : r.rejected_by_code) codes += StrCat(codes.empty() ? "" : ", ", code, " ", count);
  out += codes.empty() ? "\n" : StrCat("  (", codes, ")\n");
  std::snprintf(buf, sizeof(buf),
                "batch latency  p50 %.3f ms  p99 %.3f ms  p99.9 %.3f ms  max %.3f ms  (%llu batches)\n", r.p50_ms,
                r.p99_ms, r.p999_ms, r.max_ms, static_cast<unsigned long long>(r.batches));
  out += buf;
  if (r.interrupted) out += "interrupted: the run was stopped early; the figures cover what was answered\n";
  return out;
}

}  // namespace pointledger::bench
