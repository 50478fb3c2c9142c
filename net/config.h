// pointledgerd's configuration: the TOML file (docs/operations.md), API keys
// and the generated admin key.
#ifndef POINTLEDGER_NET_CONFIG_H_
#define POINTLEDGER_NET_CONFIG_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "ledger/ledger.h"
#include "net/limits.h"

namespace pointledger::net {

using Sha256Digest = std::array<uint8_t, 32>;

Sha256Digest Sha256(std::string_view bytes);
// Lower-case hex; parsing accepts either case and nothing but 64 hex digits.
std::string DigestToHex(const Sha256Digest& digest);
bool DigestFromHex(std::string_view hex, Sha256Digest* digest);

// One [[key]] table. Only the key's SHA-256 is kept in memory.
struct ApiKey {
  std::string principal;
  Sha256Digest sha256{};
  ledger::Auth auth;  // scopes and programs (empty programs = "*")
};

struct Limits {
  uint32_t frame_bytes_max = kFrameBytesMaxDefault;
  uint32_t batch_transactions_max = static_cast<uint32_t>(ledger::kBatchTransactionsMax);
  uint32_t connections_max = kConnectionsMaxDefault;
  uint32_t inflight_requests_max = kInflightRequestsMaxDefault;
  uint32_t idle_timeout_s = kIdleTimeoutSecondsDefault;
  uint64_t output_bytes_max = kOutputBytesMaxDefault;
};

struct ServerConfig {
  std::string listen = "127.0.0.1:7600";
  std::string data_dir;
  uint64_t map_size_mb = kMapSizeMbDefault;
  uint64_t checkpoint_interval_ms = kCheckpointIntervalMsDefault;
  uint64_t rebuild_memory_rows = kRebuildMemoryRowsDefault;
  std::string metrics_listen;  // "HOST:PORT" of the Prometheus endpoint; "" = none
  uint32_t io_threads = kIoThreadsDefault;
  Limits limits;
  std::string tls_cert;  // PEM files; both or neither
  std::string tls_key;
  std::vector<ApiKey> keys;
  // Set when the keys came from DIR/admin.key rather than the config.
  std::string admin_key_file;
};

// Parses a config file's text. `source` names it in error messages.
// InvalidArgument naming the key for an unknown key, a value of the wrong
// type or out of range, a bad scope, a bad hash, or a TOML syntax error.
absl::StatusOr<ServerConfig> ParseConfig(std::string_view text, std::string_view source);
// Reads and parses a file; NotFound if it cannot be read. Relative paths
// in it (data, tls_cert, tls_key) are made relative to the file's
// directory (since session 32; they were the working directory's).
absl::StatusOr<ServerConfig> LoadConfigFile(const std::string& path);

// A listen address, "HOST:PORT" with HOST an IP literal ("[::1]" for IPv6)
// or "localhost". InvalidArgument otherwise.
struct ListenAddress {
  std::string host;  // as an IP literal
  uint16_t port = 0;
  bool loopback = false;
};
absl::StatusOr<ListenAddress> ParseListen(std::string_view text);

// The checks that need the whole picture, once command-line overrides are
// in: a listen address beyond loopback needs [[key]] tables, TLS needs both
// files. FailedPrecondition with the reason.
absl::Status CheckStartPolicy(const ServerConfig& config);

// DIR/admin.key: created at first start (mode 0600, 32 random bytes as hex),
// read back on later starts. Returns the key. Adds nothing to `config`; see
// UseAdminKeyFile.
absl::StatusOr<std::string> EnsureAdminKey(const std::string& data_dir, std::string* path);
// Makes the admin key the config's only key (every scope, every program).
absl::Status UseAdminKeyFile(ServerConfig* config);

// The key whose hash matches `presented`, or nullptr. Compares every stored
// hash in constant time, so timing reveals nothing about which one matched.
const ApiKey* FindKey(const std::vector<ApiKey>& keys, std::string_view presented);

}  // namespace pointledger::net

#endif  // POINTLEDGER_NET_CONFIG_H_
