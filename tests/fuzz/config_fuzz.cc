// libFuzzer target: the input is a pointledgerd config file (TOML, parsed by
// net::ParseConfig with toml++ header-only and exceptions off).
//
// Oracles beyond "no crash, no sanitizer report": a parse error is
// InvalidArgument; an accepted config holds only values within the caps of
// net/limits.h, a listen address ParseListen accepts, and keys that each
// have a principal, a scope and a distinct hash; CheckStartPolicy decides
// without crashing.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "ledger/limits.h"
#include "ledger/status.h"
#include "net/config.h"
#include "net/limits.h"

namespace pointledger::net {
namespace {

void CheckLimits(const Limits& l) {
  PL_CHECK(l.frame_bytes_max >= kFrameBytesMinCap && l.frame_bytes_max <= kFrameBytesMaxCap);
  PL_CHECK(l.batch_transactions_max >= 1 &&
           l.batch_transactions_max <= ledger::kBatchTransactionsMax);
  PL_CHECK(l.connections_max >= 1 && l.connections_max <= kConnectionsMaxCap);
  PL_CHECK(l.inflight_requests_max >= 1 && l.inflight_requests_max <= kInflightRequestsMaxCap);
  PL_CHECK(l.idle_timeout_s >= 1 && l.idle_timeout_s <= kIdleTimeoutSecondsCap);
  PL_CHECK(l.output_bytes_max <= kOutputBytesMaxCap);
}

void Run(std::string_view text) {
  absl::StatusOr<ServerConfig> config = ParseConfig(text, "fuzz.toml");
  if (!config.ok()) {
    PL_CHECK(config.status().code() == absl::StatusCode::kInvalidArgument);
    return;
  }
  CheckLimits(config->limits);
  PL_CHECK(config->map_size_mb >= 1 && config->map_size_mb <= kMapSizeMbCap);
  PL_CHECK(config->io_threads >= 1 && config->io_threads <= kIoThreadsCap);
  PL_CHECK(config->checkpoint_interval_ms >= kCheckpointIntervalMsMin &&
           config->checkpoint_interval_ms <= kCheckpointIntervalMsCap);
  PL_CHECK(config->rebuild_memory_rows >= 1 && config->rebuild_memory_rows <= kRebuildMemoryRowsCap);
  PL_CHECK(ParseListen(config->listen).ok());
  for (size_t i = 0; i < config->keys.size(); ++i) {
    const ApiKey& k = config->keys[i];
    PL_CHECK(!k.principal.empty());
    PL_CHECK(k.auth.scopes != 0);
    for (size_t j = 0; j < i; ++j) PL_CHECK(config->keys[j].sha256 != k.sha256);
  }
  const absl::Status policy = CheckStartPolicy(*config);
  PL_CHECK(policy.ok() || policy.code() == absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace pointledger::net

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  pointledger::net::Run(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
