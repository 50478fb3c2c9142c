#include "net/metrics.h"

#include <chrono>
#include <optional>
#include <string_view>
#include <utility>

#include "boost/asio/ip/tcp.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http.hpp"
#include "ledger/status.h"
#include "ledger/ledger.h"
#include "net/listen.h"
#include "net/log.h"

namespace pointledger::net {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using ErrorCode = boost::system::error_code;

// A scraper is a trusted, well-behaved program; these bound what anything
// else that finds the port can cost.
constexpr size_t kSessionsMax = 16;
constexpr uint32_t kHeaderBytesMax = 8 * 1024;
constexpr auto kIoTimeout = std::chrono::seconds(10);  // per read or write; also the keep-alive idle

void Metric(std::string* out, std::string_view name, std::string_view type, std::string_view help) {
  *out += StrCat("# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n");
}

void Value(std::string* out, std::string_view name, std::string_view labels, uint64_t value) {
  *out += StrCat(name, labels.empty() ? "" : "{", labels, labels.empty() ? "" : "}", " ", value, "\n");
}

// Shared by the endpoint and its sessions, which may outlive it.
struct State {
  MetricsEndpoint::Render render;
  size_t sessions = 0;  // on the io thread only
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, std::shared_ptr<State> state)
      : stream_(std::move(socket)), state_(std::move(state)) {
    ++state_->sessions;
  }
  ~Session() { --state_->sessions; }

  void Read() {
    parser_.emplace();
    parser_->header_limit(kHeaderBytesMax);
    parser_->body_limit(0);  // a scrape has no body
    stream_.expires_after(kIoTimeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](const ErrorCode& ec, size_t) { self->OnRead(ec); });
  }

 private:
  void OnRead(const ErrorCode& ec) {
    if (ec == http::error::end_of_stream) return Close();
    if (ec) {
      // Timeouts, resets, malformed or oversize requests: no answer owed.
      if (ec != beast::error::timeout && ec != asio::error::connection_reset) {
        Respond(http::status::bad_request, "bad request: " + ec.message() + "\n", /*keep_alive=*/false);
      }
      return;
    }
    const http::request<http::empty_body>& request = parser_->get();
    const std::string_view target(request.target().data(), request.target().size());
    const bool keep_alive = request.keep_alive();
    if (request.method() != http::verb::get && request.method() != http::verb::head) {
      return Respond(http::status::method_not_allowed, "only GET /metrics\n", keep_alive);
    }
    if (target != "/metrics" && target.substr(0, 9) != "/metrics?") {
      return Respond(http::status::not_found, "not found: try GET /metrics\n", keep_alive);
    }
    absl::StatusOr<std::string> body = state_->render();
    if (!body.ok()) {
      LogLine(StrCat("metrics: cannot read the figures: ", body.status().ToString()));
      return Respond(http::status::service_unavailable, std::string(body.status().message()) + "\n",
                     keep_alive);
    }
    Respond(http::status::ok, *std::move(body), keep_alive, request.method() == http::verb::head);
  }

  void Respond(http::status status, std::string body, bool keep_alive, bool head = false) {
    response_.emplace(status, 11);
    response_->set(http::field::server, "pointledgerd");
    response_->set(http::field::content_type, status == http::status::ok
                                                  ? "text/plain; version=0.0.4; charset=utf-8"
                                                  : "text/plain; charset=utf-8");
    response_->keep_alive(keep_alive);
    response_->body() = std::move(body);
    response_->prepare_payload();
    if (head) response_->body().clear();  // Content-Length stays that of the GET
    stream_.expires_after(kIoTimeout);
    http::async_write(stream_, *response_,
                      [self = shared_from_this(), keep_alive](const ErrorCode& ec, size_t) {
                        if (ec || !keep_alive) return self->Close();
                        self->Read();
                      });
  }

  void Close() {
    ErrorCode ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.close();
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_{kHeaderBytesMax};
  std::optional<http::request_parser<http::empty_body>> parser_;
  std::optional<http::response<http::string_body>> response_;
  std::shared_ptr<State> state_;
};

class EndpointImpl final : public MetricsEndpoint {
 public:
  EndpointImpl(asio::io_context* io, Render render)
      : acceptor_(*io), state_(std::make_shared<State>(State{std::move(render)})) {}

  absl::Status Bind(const std::string& listen) {
    PL_RETURN_IF_ERROR(BindAcceptor(acceptor_, listen, "metrics_listen", &endpoint_));
    Accept();
    return absl::OkStatus();
  }

  std::string bound_address() const override { return EndpointText(endpoint_); }

  void Close() override {
    closed_ = true;
    ErrorCode ignored;
    acceptor_.close(ignored);
  }

 private:
  void Accept() {
    acceptor_.async_accept([this](const ErrorCode& ec, tcp::socket socket) {
      if (closed_ || ec == asio::error::operation_aborted) return;
      if (!ec) {
        if (state_->sessions < kSessionsMax) {
          std::make_shared<Session>(std::move(socket), state_)->Read();
        }  // else: the socket closes as it goes out of scope
      }
      Accept();
    });
  }

  tcp::acceptor acceptor_;
  tcp::endpoint endpoint_;
  std::shared_ptr<State> state_;
  bool closed_ = false;
};

}  // namespace

std::string FormatMetrics(const ServerSnapshot& s) {
  std::string out;
  out.reserve(4096);
  Metric(&out, "pointledger_uptime_seconds", "gauge", "Seconds since pointledgerd started.");
  Value(&out, "pointledger_uptime_seconds", "", s.uptime_s);
  Metric(&out, "pointledger_connections_open", "gauge", "Client connections open now.");
  Value(&out, "pointledger_connections_open", "", s.connections_open);
  Metric(&out, "pointledger_connections_accepted_total", "counter", "Client connections accepted.");
  Value(&out, "pointledger_connections_accepted_total", "", s.connections_accepted);
  Metric(&out, "pointledger_connections_refused_total", "counter",
         "Connections refused because connections_max was reached.");
  Value(&out, "pointledger_connections_refused_total", "", s.connections_refused);
  Metric(&out, "pointledger_reports_running", "gauge",
         "Statements, liability reports, trial balances and audits being computed or queued.");
  Value(&out, "pointledger_reports_running", "", s.reports_running);

  const CommitterStats& c = s.committer;
  Metric(&out, "pointledger_commits_total", "counter", "Group commits (one write-ahead log append and fdatasync each).");
  Value(&out, "pointledger_commits_total", "", c.commits);
  Metric(&out, "pointledger_batches_total", "counter", "Batches committed.");
  Value(&out, "pointledger_batches_total", "", c.batches);
  Metric(&out, "pointledger_transactions_total", "counter", "Transactions in committed batches.");
  Value(&out, "pointledger_transactions_total", "", c.transactions);
  Metric(&out, "pointledger_busy_batches_total", "counter",
         "Batches answered server_busy (queue full, or storage such as a full map).");
  Value(&out, "pointledger_busy_batches_total", "", c.busy_batches);
  Metric(&out, "pointledger_results_total", "counter",
         "First-time results by code: ok is committed; the others are rejections, recorded unless they depend on the request alone (permission_denied, invalid_amount ...).");
  for (size_t code = 0; code < c.results_by_code.size(); ++code) {
    Value(&out, "pointledger_results_total",
          StrCat("code=\"", ledger::CodeName(static_cast<ledger::Code>(code)), "\""), c.results_by_code[code]);
  }
  Metric(&out, "pointledger_duplicates_total", "counter", "Replays answered from the record (exactly once).");
  Value(&out, "pointledger_duplicates_total", "", c.duplicates);
  Metric(&out, "pointledger_commit_latency_microseconds", "gauge",
         "Apply + fsync time of a group commit since start, by quantile.");
  Value(&out, "pointledger_commit_latency_microseconds", "quantile=\"0.5\"", c.commit_p50_us);
  Value(&out, "pointledger_commit_latency_microseconds", "quantile=\"0.99\"", c.commit_p99_us);
  Value(&out, "pointledger_commit_latency_microseconds", "quantile=\"1\"", c.commit_max_us);
  Metric(&out, "pointledger_group_commit_transactions", "gauge",
         "Transactions per group commit since start, by quantile.");
  Value(&out, "pointledger_group_commit_transactions", "quantile=\"0.5\"", c.group_p50);
  Value(&out, "pointledger_group_commit_transactions", "quantile=\"0.99\"", c.group_p99);
  Value(&out, "pointledger_group_commit_transactions", "quantile=\"1\"", c.group_max);

  Metric(&out, "pointledger_map_used_bytes", "gauge",
         "Bytes of the LMDB map in use (pages up to the last one written), by environment.");
  Value(&out, "pointledger_map_used_bytes", "env=\"log\"", s.map.log_used);
  Value(&out, "pointledger_map_used_bytes", "env=\"state\"", s.map.state_used);
  Metric(&out, "pointledger_map_size_bytes", "gauge", "The LMDB map size (map_size_mb), by environment.");
  Value(&out, "pointledger_map_size_bytes", "env=\"log\"", s.map.log_size);
  Value(&out, "pointledger_map_size_bytes", "env=\"state\"", s.map.state_size);
  Metric(&out, "pointledger_head_seq", "gauge", "The seq of the last transaction recorded.");
  Value(&out, "pointledger_head_seq", "", s.head_seq);
  Metric(&out, "pointledger_checkpoint_seq", "gauge",
         "The seq up to which the state environment holds the state: a restart replays the log past it.");
  Value(&out, "pointledger_checkpoint_seq", "", s.checkpoint_seq);
  return out;
}

absl::StatusOr<std::unique_ptr<MetricsEndpoint>> MetricsEndpoint::Start(asio::io_context* io,
                                                                       const std::string& listen,
                                                                       Render render) {
  auto endpoint = std::make_unique<EndpointImpl>(io, std::move(render));
  PL_RETURN_IF_ERROR(endpoint->Bind(listen));
  return std::unique_ptr<MetricsEndpoint>(std::move(endpoint));
}

}  // namespace pointledger::net
