// pointledgerd: the PointLedger server (SPEC §6).
//
//   pointledgerd --data DIR [--listen HOST:PORT] [--metrics-listen HOST:PORT] [--config FILE]
//
// Prints one ready line on stderr once it accepts connections:
//   2026-12-06T23:03:51.640Z pointledgerd: listening on 127.0.0.1:7600, data ./var, admin key in ./var/admin.key
// (tests and scripts wait for "listening on"; with --listen HOST:0 it names
// the port actually bound). SIGINT/SIGTERM stop it gracefully; SIGHUP reloads the keys.
#include <sys/resource.h>
#include <sys/stat.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "ledger/ledger.h"
#include "ledger/status.h"
#include "net/config.h"
#include "net/limits.h"
#include "net/log.h"
#include "net/server.h"

namespace pointledger {
namespace {

struct Flags {
  std::string data;
  std::string listen;
  std::string config;
  bool config_given = false;  // --config "" is an error, not "no config"
  std::string metrics_listen;
  // SIGHUP was ignored when the process started (nohup): it stays ignored,
  // and the keys are not reloaded.
  bool sighup_ignored = false;
};

// The config file (if any), with the command line on top.
absl::StatusOr<net::ServerConfig> BuildConfig(const Flags& flags) {
  net::ServerConfig config;
  if (flags.config_given) {
    PL_ASSIGN_OR_RETURN(config, net::LoadConfigFile(flags.config));
  }
  if (!flags.data.empty()) config.data_dir = flags.data;
  if (!flags.listen.empty()) config.listen = flags.listen;
  if (!flags.metrics_listen.empty()) config.metrics_listen = flags.metrics_listen;
  // Without [[key]] tables the server makes DIR/admin.key (below) and must
  // stay on loopback; CheckStartPolicy refuses anything wider.
  PL_RETURN_IF_ERROR(net::CheckStartPolicy(config));
  return config;
}

// Descriptors besides connections: the two LMDB environments, write-ahead
// log segments, the listening and metrics sockets, an audit's scratch
// files, TLS files, with room to spare.
constexpr uint64_t kFdsBesideConnections = 256;

// Raises the soft limit on open files to what connections_max needs (a
// served connection and each one being refused hold a descriptor), as far
// as the hard limit allows. Debian's soft limit is 1,024, which the default
// connections_max alone reaches: past it, accept fails (EMFILE) and new
// connections wait in the backlog. Says so when the hard limit is lower.
void RaiseOpenFileLimit(const net::ServerConfig& config) {
  const uint64_t needed =
      config.limits.connections_max + net::kRefusedConnectionsMax + kFdsBesideConnections;
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= needed) return;
  const rlim_t raised = limit.rlim_max == RLIM_INFINITY ? needed : std::min<rlim_t>(needed, limit.rlim_max);
  if (raised > limit.rlim_cur) {
    rlimit wanted = limit;
    wanted.rlim_cur = raised;
    if (::setrlimit(RLIMIT_NOFILE, &wanted) == 0) limit = wanted;
  }
  if (limit.rlim_cur < needed) {
    net::LogLine(StrCat("warning: connections_max ", config.limits.connections_max, " needs about ", needed,
                        " open files, and RLIMIT_NOFILE allows ", limit.rlim_cur,
                        ": connections past that wait in the backlog (raise the hard limit: "
                        "ulimit -Hn, or LimitNOFILE= under systemd)"));
  }
}

// The shipped example config's placeholder (tools/pointledgerd.toml) is an
// all-zero hash, which no key has: it locks its principal out. Say so at
// start, rather than leave an operator to guess why no client can connect.
void WarnOfPlaceholderKeys(const net::ServerConfig& config) {
  for (const net::ApiKey& k : config.keys) {
    if (k.sha256 != net::Sha256Digest{}) continue;
    net::LogLine(StrCat("warning: key '", k.principal,
                        "' has the placeholder sha256 (all zeros), which no key matches: nobody can "
                        "connect with it until it is replaced (docs/operations.md, \"Running as a service\")"));
  }
}

// Keys are accepted beyond loopback without TLS (a private network, a TLS
// proxy in front), but the docs say not to: said at each start (found by
// an operator review, session 31: it started without a word).
void WarnOfPlainTextBeyondLoopback(const net::ServerConfig& config) {
  absl::StatusOr<net::ListenAddress> listen = net::ParseListen(config.listen);
  if (!listen.ok() || listen->loopback || !config.tls_cert.empty()) return;
  net::LogLine(StrCat("warning: listening on ", config.listen,
                      " beyond loopback without TLS: API keys and members' data cross the network in "
                      "the clear (docs/operations.md, \"TLS\")"));
}

// Made 0600; one loosened by hand (or copied without its mode) still
// works, but anyone who can read it can do anything (found in review,
// session 20: accepted without a word).
void WarnOfLooseAdminKey(const net::ServerConfig& config) {
  struct stat st {};
  if (::stat(config.admin_key_file.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
    net::LogLine(StrCat("warning: ", config.admin_key_file, " is readable by others (mode ",
                        absl::StrFormat("%04o", st.st_mode & 07777), "): chmod 600 it"));
  }
}

// SIGHUP: the keys as a start would take them now, and nothing else. The
// rest stays as the server runs (found in review, session 32: the data
// directory and listen address were read again too, so an edited `data`
// moved the admin key to another directory's, and a config without keys
// was taken on an address beyond loopback, which a start refuses).
absl::StatusOr<std::vector<net::ApiKey>> KeysNow(const Flags& flags, const net::ServerConfig& running) {
  net::ServerConfig again = running;
  again.keys.clear();
  again.admin_key_file.clear();
  if (flags.config_given) {
    PL_ASSIGN_OR_RETURN(net::ServerConfig file, net::LoadConfigFile(flags.config));
    again.keys = std::move(file.keys);
  }
  PL_RETURN_IF_ERROR(net::CheckStartPolicy(again));
  if (again.keys.empty()) {
    // DIR/admin.key, made anew if it was deleted.
    PL_RETURN_IF_ERROR(net::UseAdminKeyFile(&again));
    WarnOfLooseAdminKey(again);
  } else {
    WarnOfPlaceholderKeys(again);
  }
  return std::move(again.keys);
}

absl::Status Serve(const Flags& flags) {
  PL_ASSIGN_OR_RETURN(net::ServerConfig config, BuildConfig(flags));
  RaiseOpenFileLimit(config);
  WarnOfPlaceholderKeys(config);
  WarnOfPlainTextBeyondLoopback(config);
  PL_RETURN_IF_ERROR(net::Server::ProbeListen(config));  // before the data directory is made
  PL_ASSIGN_OR_RETURN(std::unique_ptr<ledger::Ledger> ledger,
                      ledger::Ledger::Open({.dir = config.data_dir,
                                            .map_size_bytes = config.map_size_mb << 20,
                                            .checkpoint_interval_ms = static_cast<int64_t>(
                                                config.checkpoint_interval_ms),
                                            .rebuild_memory_entries = config.rebuild_memory_rows,
                                            // Stamped and named as the server's own lines.
                                            .log = [](std::string_view line) { net::LogLine(line); }}));
  if (!config.keys.empty()) {
    // The first start's key stops working once the config names keys;
    // without a word, its owner was only told "unknown API key" (found by
    // an operator review, session 31).
    const std::filesystem::path old_key = std::filesystem::path(config.data_dir) / "admin.key";
    if (std::error_code ec; std::filesystem::exists(old_key, ec)) {
      net::LogLine(StrCat("note: ", old_key.string(),
                          " is not a key of this server: the config's [[key]] tables are its keys "
                          "(docs/operations.md, \"API keys\")"));
    }
  }
  if (config.keys.empty()) {
    PL_RETURN_IF_ERROR(net::UseAdminKeyFile(&config));
    WarnOfLooseAdminKey(config);
  }
  // The server reads `config` only; this runs on its first I/O thread while
  // this thread waits in Run().
  net::Server::KeyLoader load_keys;
  if (!flags.sighup_ignored) load_keys = [&flags, &config] { return KeysNow(flags, config); };
  PL_ASSIGN_OR_RETURN(std::unique_ptr<net::Server> server,
                      net::Server::Start(ledger.get(), &config, /*handle_signals=*/true, load_keys));
  std::string ready = StrCat("listening on ", server->bound_address(), ", data ", config.data_dir);
  if (!config.admin_key_file.empty()) ready += StrCat(", admin key in ", config.admin_key_file);
  if (!config.tls_cert.empty()) ready += ", TLS";
  if (!server->metrics_address().empty()) {
    ready += StrCat(", metrics on http://", server->metrics_address(), "/metrics");
  }
  net::LogLine(ready);
  server->Run();
  server.reset();
  // Its signal set gave SIGHUP its default action back, which would kill
  // the process during the final checkpoint below.
  std::signal(SIGHUP, SIG_IGN);
  ledger.reset();  // closes the environment
  net::LogLine("closed the ledger cleanly");
  return absl::OkStatus();
}

}  // namespace
}  // namespace pointledger

int main(int argc, char** argv) {
  // Debian's abseil checks lock order on every lock (docs/operations.md,
  // "Lock-order checks"): the tests keep that, the shipped programs don't.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  // The log is stderr, often a pipe (`2>&1 | grep -m1 'listening on'`): a
  // reader that goes away must not kill the server at its next log line
  // (SIGPIPE; found in review, session 20). Sockets send with MSG_NOSIGNAL.
  std::signal(SIGPIPE, SIG_IGN);
  pointledger::Flags flags;
  // SIGHUP reloads the keys once the server serves; before that (the
  // ledger's open replays the log: seconds) and after (the final
  // checkpoint), its default action would kill the process, and `systemctl
  // reload` at such a moment stopped the service for good (found in
  // review, session 32). Ignored outside those times; under nohup, always.
  struct sigaction hup {};
  flags.sighup_ignored = ::sigaction(SIGHUP, nullptr, &hup) == 0 && hup.sa_handler == SIG_IGN;
  std::signal(SIGHUP, SIG_IGN);
  CLI::App app{
      "pointledgerd: the PointLedger server.\n"
      "Example: pointledgerd --data ./var --listen 127.0.0.1:7600"};
  app.add_option("--data", flags.data,
                 "Data directory: the write-ahead log and two LMDB environments, created if missing "
                 "(or `data` in the config file; docs/storage.md)");
  app.add_option("--listen", flags.listen,
                 "Address to listen on, HOST:PORT (default 127.0.0.1:7600; port 0 picks one)");
  app.add_option("--metrics-listen", flags.metrics_listen,
                 "Serve Prometheus metrics on HOST:PORT at /metrics (overrides metrics_listen)");
  CLI::Option* config = app.add_option("--config", flags.config,
                                       "TOML config file: keys, limits, TLS (docs/operations.md)");
  app.footer(
      "Signals: SIGINT or SIGTERM stop it gracefully (exit 0); SIGHUP reads the keys again (the\n"
      "config's [[key]] tables, or DIR/admin.key) and leaves every other setting as it is.");
  // What an upgrade changes (docs/operations.md, "Upgrades").
  app.set_version_flag("--version", pointledger::StrCat("pointledgerd (PointLedger): writes record format ",
                                                        pointledger::ledger::kRecordFormat, ", reads ",
                                                        pointledger::ledger::kRecordFormatMin, "-",
                                                        pointledger::ledger::kRecordFormat, "; protocol version ",
                                                        pointledger::net::kProtocolVersion));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return app.exit(e);  // --help
    // A usage error: 2, like pointledger's, in the shape of the one below.
    std::fprintf(stderr, "pointledgerd: %s (see --help)\n", e.what());
    return 2;
  }
  flags.config_given = config->count() > 0;
  if (flags.data.empty() && !flags.config_given) {
    std::fprintf(stderr, "pointledgerd: --data DIR is required (see --help)\n");
    return 2;
  }
  const absl::Status status = pointledger::Serve(flags);
  if (!status.ok()) {
    pointledger::net::LogLine(pointledger::StrCat("error: ", std::string(status.message())));
    return 1;
  }
  return 0;
}
