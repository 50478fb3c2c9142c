#include "net/server.h"

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include "absl/strings/match.h"
#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/signal_set.hpp"
#include "boost/asio/ssl/context.hpp"
#include "boost/asio/steady_timer.hpp"
#include "boost/asio/thread_pool.hpp"
#include "ledger/status.h"
#include "net/committer.h"
#include "net/connection.h"
#include "net/limits.h"
#include "net/listen.h"
#include "net/log.h"
#include "net/metrics.h"
#include "net/service.h"

namespace pointledger::net {

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using ErrorCode = boost::system::error_code;
using WorkGuard = asio::executor_work_guard<asio::io_context::executor_type>;

absl::StatusOr<std::unique_ptr<asio::ssl::context>> MakeTlsContext(const ServerConfig& config) {
  auto tls = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
  ErrorCode ec;
  tls->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                       asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                       asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use,
                   ec);
  // OpenSSL says only "asio.ssl error" for a file it cannot read: say
  // which, whether it is there at all, and why the server's user cannot
  // read it (a root-owned 0600 key under the unit's User= read as "not a
  // PEM private key": found by an operator review, session 31).
  auto file_error = [](std::string_view key, const std::string& path, std::string_view want,
                       const ErrorCode& e) {
    std::error_code exists_ec;
    if (!std::filesystem::exists(path, exists_ec)) {
      return absl::InvalidArgumentError(StrCat(key, " ", path, ": no such file"));
    }
    std::FILE* f = std::fopen(path.c_str(), "r");
    if (f == nullptr) {
      return absl::InvalidArgumentError(StrCat(key, " ", path, ": cannot read it: ", std::strerror(errno)));
    }
    std::fclose(f);
    if (absl::StrContains(e.message(), "key values mismatch")) {
      return absl::InvalidArgumentError(StrCat(key, " ", path, ": does not match the certificate in tls_cert"));
    }
    return absl::InvalidArgumentError(StrCat(key, " ", path, ": not ", want, " OpenSSL can read (", e.message(), ")"));
  };
  // An encrypted key would make OpenSSL ask for a pass phrase on the
  // terminal and wait: refuse it at once instead.
  if (!ec) tls->set_password_callback([](std::size_t, asio::ssl::context::password_purpose) { return std::string(); }, ec);
  if (!ec) tls->use_certificate_chain_file(config.tls_cert, ec);
  if (ec) return file_error("tls_cert", config.tls_cert, "a PEM certificate chain", ec);
  tls->use_private_key_file(config.tls_key, asio::ssl::context::pem, ec);
  if (ec) return file_error("tls_key", config.tls_key, "a PEM private key (unencrypted) for tls_cert", ec);
  return tls;
}

// Receives the sweep's batch back from the committer.
class SweepSink : public JobSink {
 public:
  explicit SweepSink(asio::io_context* io) : io_(io) {}
  void OnCommitted(std::unique_ptr<CommitJob> job) override {
    asio::post(*io_, [this, job = std::move(job)]() mutable { Done(std::move(job)); });
  }
  bool in_flight = false;  // touched on io_ only
  std::unique_ptr<CommitJob> spare;

 private:
  void Done(std::unique_ptr<CommitJob> job) {
    in_flight = false;
    if (!job->status.ok()) {
      LogLine(StrCat("sweep: not committed, retrying next time: ", job->status.ToString()));
    } else {
      size_t expired = 0, released = 0, refused = 0, first_refused = 0;
      for (size_t i = 0; i < job->results.size(); ++i) {
        const ledger::Result& r = job->results[i];
        if (r.code != ledger::Code::kOk) {
          if (refused++ == 0) first_refused = i;
          continue;
        }
        // Booked now: not a duplicate, nor an expire of a lot consumed
        // meanwhile decided under an id another holds (not recorded, seq 0).
        if (r.duplicate || r.seq == 0) continue;
        if (job->transactions[i].kind == ledger::Kind::kExpire) {
          ++expired;
        } else {
          ++released;
        }
      }
      if (expired + released > 0) {
        LogLine(StrCat("sweep: ", expired, " lots expired, ", released, " holds timed out"));
      }
      // A refused item stays due and is refused again every second. Since
      // record format 7 no id taken before it, nor a rejection recorded for
      // it by an older format, refuses it (docs/semantics.md, step 5), so
      // this is for what nobody foresaw: said, but not every second (found
      // in review, session 21: it was silent).
      const auto now = std::chrono::steady_clock::now();
      if (refused > 0 && (!refusal_logged_ || now - *refusal_logged_ >= std::chrono::minutes(1))) {
        refusal_logged_ = now;
        const ledger::Transaction& t = job->transactions[first_refused];
        LogLine(StrCat("sweep: ", refused, " due item(s) refused and left due, e.g. ",
                       ledger::KindName(t.kind), " ", ledger::IdToHex(t.id), ": ",
                       ledger::CodeName(job->results[first_refused].code),
                       " (pointledger tx get --program P --hex ID shows what holds that id)"));
      }
    }
    job->sink.reset();
    spare = std::move(job);
  }
  asio::io_context* io_;
  // When a refusal was last logged (none yet: log the first at once, even
  // within a minute of the steady clock's epoch, i.e. of boot).
  std::optional<std::chrono::steady_clock::time_point> refusal_logged_;  // on io_ only
};

class ServerImpl final : public Server, private ConnectionRegistry {
 public:
  ServerImpl(ledger::Ledger* ledger, const ServerConfig* config, KeyLoader load_keys)
      : ledger_(ledger),
        config_(config),
        load_keys_(std::move(load_keys)),
        committer_(ledger),
        service_(ledger, config, &committer_, &counters_) {
    for (uint32_t i = 0; i < config->io_threads; ++i) {
      contexts_.push_back(std::make_unique<asio::io_context>(1));
      guards_.emplace_back(contexts_.back()->get_executor());
    }
    env_ = ConnectionEnv{&service_, &committer_, config_, &counters_, this, &reports_};
  }

  // A Server whose Init succeeded stops as Run() would; one whose Init
  // failed has no threads to stop.
  ~ServerImpl() override {
    if (started_) {
      RequestStop();
      Run();
    }
  }

  absl::Status Init(bool handle_signals) {
    if (!config_->tls_cert.empty()) {
      PL_ASSIGN_OR_RETURN(tls_, MakeTlsContext(*config_));
    }
    asio::io_context& io = *contexts_[0];
    acceptor_.emplace(io);
    sweep_timer_.emplace(io);
    sweep_sink_ = std::make_shared<SweepSink>(&io);
    PL_RETURN_IF_ERROR(Bind());
    if (!config_->metrics_listen.empty()) {
      PL_ASSIGN_OR_RETURN(metrics_, MetricsEndpoint::Start(&io, config_->metrics_listen, [this] {
                            return Metrics();
                          }));
    }
    if (handle_signals) {
      signals_.emplace(io, SIGINT, SIGTERM);
      // SIGHUP reloads the keys (since session 32; it stopped the server
      // before, and there was no way to change a key without a restart).
      // Without a loader (pointledgerd under nohup) it is left alone.
      if (load_keys_) {
        hup_signal_.emplace(io, SIGHUP);
        WaitForHangup();
      }
      signals_->async_wait([this](const ErrorCode& ec, int signal) {
        if (ec) return;
        LogLine(StrCat("signal ", signal,
                       ": stopping (answering what is in flight; another signal a second or more "
                       "later stops at once)"));
        first_signal_ = std::chrono::steady_clock::now();
        WaitForAnotherSignal();
        RequestStop();
      });
    }
    committer_.Start();
    for (auto& context : contexts_) {
      threads_.emplace_back([c = context.get()] { c->run(); });
    }
    asio::post(io, [this] {
      Accept();
      ArmSweep();
    });
    started_ = true;
    return absl::OkStatus();
  }

  std::string bound_address() const override {
    return EndpointText(endpoint_);
  }
  uint16_t port() const override { return endpoint_.port(); }
  std::string metrics_address() const override {
    return metrics_ ? metrics_->bound_address() : std::string();
  }

  void RequestStop() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_requested_ = true;
    }
    changed_.notify_all();
  }

  void Run() override {
    {
      std::unique_lock<std::mutex> lock(mu_);
      changed_.wait(lock, [this] { return stop_requested_; });
      if (stopped_) return;
    }
    Stop();
  }

  void ReplaceKeys(std::vector<ApiKey> keys) override { service_.ReplaceKeys(std::move(keys)); }

 private:
  absl::Status Bind() {
    return BindAcceptor(*acceptor_, config_->listen, "", &endpoint_);
  }

  // An operator's second Ctrl-C is not swallowed while the stop waits: it
  // ends the process at once (what was acknowledged is durable either
  // way). One within a second of the first is the same Ctrl-C, forwarded
  // by a wrapper to the whole process group, and is ignored.
  void WaitForAnotherSignal() {
    signals_->async_wait([this](const ErrorCode& ec, int signal) {
      if (ec) return;
      if (std::chrono::steady_clock::now() - first_signal_ < std::chrono::seconds(1)) {
        WaitForAnotherSignal();
        return;
      }
      LogLine(StrCat("signal ", signal, " again: stopping at once"));
      std::_Exit(128 + signal);
    });
  }

  void WaitForHangup() {
    hup_signal_->async_wait([this](const ErrorCode& ec, int) {
      if (ec) return;
      ReloadKeys();
      WaitForHangup();
    });
  }

  // On contexts_[0]: a short file read, once per SIGHUP.
  void ReloadKeys() {
    absl::StatusOr<std::vector<ApiKey>> keys = load_keys_();
    if (!keys.ok()) {
      LogLine(StrCat("SIGHUP: keys not reloaded, the old ones stay: ", keys.status().message()));
      return;
    }
    std::string principals;
    for (const ApiKey& k : *keys) principals += StrCat(principals.empty() ? "" : ", ", k.principal);
    const size_t n = keys->size();
    ReplaceKeys(*std::move(keys));
    LogLine(StrCat("SIGHUP: reloaded ", n, n == 1 ? " key (" : " keys (", principals,
                   "); connections whose key is gone close at their next request; other settings "
                   "take a restart"));
  }

  // ---- Accepting (on contexts_[0]).

  void Accept() {
    if (accepting_stopped_) return;
    // Refused connections linger (kLingerMs) and cost memory and a
    // descriptor each: with kRefusedConnectionsMax of them on top of
    // connections_max, leave further connections in the kernel's backlog
    // until some have gone.
    const uint64_t open = counters_.open.load(std::memory_order_relaxed);
    const uint64_t open_max = uint64_t{config_->limits.connections_max} + kRefusedConnectionsMax;
    if ((open >= open_max) != accept_paused_) {
      accept_paused_ = open >= open_max;
      LogLine(accept_paused_ ? StrCat("accepting paused: ", open, " connections open (",
                                      config_->limits.connections_max, " served + ",
                                      kRefusedConnectionsMax, " being refused)")
                             : std::string("accepting resumed"));
    }
    if (accept_paused_) {
      AcceptLater();
      return;
    }
    asio::io_context& target = *contexts_[next_context_++ % contexts_.size()];
    acceptor_->async_accept(target, [this](const ErrorCode& ec, tcp::socket socket) {
      OnAccept(ec, std::move(socket));
    });
  }

  // Accepts again after kAcceptRetryMs.
  void AcceptLater() {
    auto timer = std::make_shared<asio::steady_timer>(*contexts_[0]);
    timer->expires_after(std::chrono::milliseconds(kAcceptRetryMs));
    timer->async_wait([this, timer](const ErrorCode&) { Accept(); });
  }

  void OnAccept(const ErrorCode& ec, tcp::socket socket) {
    if (accepting_stopped_) return;
    if (ec) {
      LogLine(StrCat("accept error: ", ec.message()));
      AcceptLater();  // out of descriptors and the like: pause instead of spinning
      return;
    }
    ErrorCode ignored;
    socket.set_option(tcp::no_delay(true), ignored);  // answers are small and latency-bound
    const uint64_t id = ++next_connection_id_;
    counters_.open.fetch_add(1, std::memory_order_relaxed);
    const uint64_t served = counters_.served.fetch_add(1, std::memory_order_relaxed) + 1;
    counters_.accepted.fetch_add(1, std::memory_order_relaxed);
    std::shared_ptr<Connection> connection =
        tls_ ? NewTlsConnection(std::move(socket), tls_.get(), id, &env_)
             : NewConnection(std::move(socket), id, &env_);
    {
      std::lock_guard<std::mutex> lock(mu_);
      connections_.emplace(id, connection);
    }
    if (served > config_->limits.connections_max) {
      counters_.served.fetch_sub(1, std::memory_order_relaxed);
      counters_.refused.fetch_add(1, std::memory_order_relaxed);
      connection->StartRefused(
          StrCat("connections_max (", config_->limits.connections_max, ") reached"));
    } else {
      connection->Start();
    }
    Accept();
  }

  void Remove(uint64_t connection_id) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      connections_.erase(connection_id);
    }
    changed_.notify_all();
  }

  absl::StatusOr<std::string> Metrics() const {
    PL_ASSIGN_OR_RETURN(const ServerSnapshot snapshot, service_.Snapshot());
    return FormatMetrics(snapshot);
  }

  // ---- The sweep (on contexts_[0]).

  void ArmSweep() {
    if (accepting_stopped_) return;
    sweep_timer_->expires_after(std::chrono::milliseconds(kSweepIntervalMs));
    sweep_timer_->async_wait([this](const ErrorCode& ec) {
      if (ec) return;
      Sweep();
      ArmSweep();
    });
  }

  void Sweep() {
    if (sweep_sink_->in_flight) return;  // the last one is not committed yet
    absl::StatusOr<std::vector<ledger::Transaction>> due =
        ledger_->CollectDue(ledger_->NowNs(), kSweepTransactionsMax);
    if (!due.ok()) {
      LogLine(StrCat("sweep: cannot collect due transactions: ", due.status().ToString()));
      return;
    }
    if (due->empty()) return;
    std::unique_ptr<CommitJob> job =
        sweep_sink_->spare ? std::move(sweep_sink_->spare) : std::make_unique<CommitJob>();
    job->transactions = *std::move(due);
    // Aliasing, owning nothing: admin_auth_ lives as long as the server.
    job->auth = std::shared_ptr<const ledger::Auth>(std::shared_ptr<const ledger::Auth>(), &admin_auth_);
    job->sink = sweep_sink_;
    if (committer_.Submit(&job)) {
      sweep_sink_->in_flight = true;
    } else {
      job->sink.reset();
      sweep_sink_->spare = std::move(job);
    }
  }

  // ---- Stopping (on the thread that called Run).

  void Stop() {
    RunOn0([this] {
      accepting_stopped_ = true;
      ErrorCode ignored;
      acceptor_->close(ignored);
      sweep_timer_->cancel();
      if (hup_signal_) hup_signal_->cancel(ignored);
      if (metrics_) metrics_->Close();
    });
    LogLine("stopped accepting; answering requests in flight");
    std::vector<std::shared_ptr<Connection>> open = Snapshot();
    for (const auto& c : open) c->Shutdown();
    if (!WaitForConnections(std::chrono::milliseconds(kShutdownGraceMs))) {
      LogLine("shutdown: closing connections that did not finish in time");
      for (const auto& c : Snapshot()) c->Abort();
      WaitForConnections(std::chrono::milliseconds(kShutdownGraceMs));
    }
    reports_.join();  // a report still running (an audit of a big ledger) ends first
    committer_.Stop();  // commits whatever is still queued
    for (WorkGuard& g : guards_) g.reset();
    for (auto& c : contexts_) c->stop();
    for (std::thread& t : threads_) t.join();
    const CommitterStats s = committer_.stats();
    LogLine(StrCat("stopped: ", s.commits, " commits, ", s.batches, " batches, ",
                   s.transactions, " transactions"));
    std::lock_guard<std::mutex> lock(mu_);
    stopped_ = true;
  }

  // Runs fn on contexts_[0] and waits for it.
  template <typename Fn>
  void RunOn0(Fn fn) {
    std::mutex done_mu;
    std::condition_variable done_cv;
    bool done = false;
    asio::post(*contexts_[0], [&] {
      fn();
      std::lock_guard<std::mutex> lock(done_mu);
      done = true;
      done_cv.notify_all();
    });
    std::unique_lock<std::mutex> lock(done_mu);
    done_cv.wait(lock, [&] { return done; });
  }

  std::vector<std::shared_ptr<Connection>> Snapshot() {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::shared_ptr<Connection>> out;
    out.reserve(connections_.size());
    for (const auto& [id, c] : connections_) out.push_back(c);
    return out;
  }

  bool WaitForConnections(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return changed_.wait_for(lock, timeout, [this] { return connections_.empty(); });
  }

  ledger::Ledger* const ledger_;
  const ServerConfig* const config_;
  const KeyLoader load_keys_;
  const ledger::Auth admin_auth_ = ledger::Auth::Admin();
  ConnectionCounters counters_;
  Committer committer_;
  Service service_;
  // One thread for reports (Service::IsReport): they queue behind each
  // other instead of taking I/O threads, and their reads never block the
  // committer (LMDB readers do not).
  asio::thread_pool reports_{1};
  ConnectionEnv env_;

  std::vector<std::unique_ptr<asio::io_context>> contexts_;
  std::vector<WorkGuard> guards_;
  std::vector<std::thread> threads_;
  std::unique_ptr<asio::ssl::context> tls_;

  // Touched only on contexts_[0].
  std::optional<tcp::acceptor> acceptor_;
  std::optional<asio::steady_timer> sweep_timer_;
  std::optional<asio::signal_set> signals_;
  std::optional<asio::signal_set> hup_signal_;
  std::chrono::steady_clock::time_point first_signal_;  // on contexts_[0]
  std::shared_ptr<SweepSink> sweep_sink_;
  std::unique_ptr<MetricsEndpoint> metrics_;  // with metrics_listen
  bool accepting_stopped_ = false;
  bool accept_paused_ = false;  // too many connections being refused
  size_t next_context_ = 0;
  uint64_t next_connection_id_ = 0;
  tcp::endpoint endpoint_;

  std::mutex mu_;
  std::condition_variable changed_;
  std::unordered_map<uint64_t, std::shared_ptr<Connection>> connections_;  // guarded by mu_
  bool started_ = false;         // set once by Init, on the creating thread
  bool stop_requested_ = false;  // guarded by mu_
  bool stopped_ = false;         // guarded by mu_
};

}  // namespace

absl::Status Server::ProbeListen(const ServerConfig& config) {
  // The TLS files too: a typo there is found before the data directory
  // is made (found by a hostile-client review, session 19).
  if (!config.tls_cert.empty()) PL_RETURN_IF_ERROR(MakeTlsContext(config).status());
  asio::io_context io;
  tcp::acceptor acceptor(io);
  tcp::endpoint bound;
  PL_RETURN_IF_ERROR(BindAcceptor(acceptor, config.listen, "", &bound));
  // The metrics port too, while the first is held: a taken one, or the
  // same address as `listen`, failed only after the data directory and
  // admin.key were made (found in review, session 20).
  if (config.metrics_listen.empty()) return absl::OkStatus();
  tcp::acceptor metrics(io);
  return BindAcceptor(metrics, config.metrics_listen, "metrics_listen", &bound);  // both closed on return
}

absl::StatusOr<std::unique_ptr<Server>> Server::Start(ledger::Ledger* ledger,
                                                      const ServerConfig* config,
                                                      bool handle_signals, KeyLoader load_keys) {
  auto server = std::make_unique<ServerImpl>(ledger, config, std::move(load_keys));
  PL_RETURN_IF_ERROR(server->Init(handle_signals));
  return std::unique_ptr<Server>(std::move(server));
}

}  // namespace pointledger::net
