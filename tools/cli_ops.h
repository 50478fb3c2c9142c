// Operations commands: backup (docs/operations.md).
#ifndef POINTLEDGER_TOOLS_CLI_OPS_H_
#define POINTLEDGER_TOOLS_CLI_OPS_H_

#include <string>

#include "net/client.h"
#include "tools/cli_read.h"

namespace pointledger::tools {

// A consistent, compacted hot copy of data directory `from` into `to`
// (Ledger::Backup), plus its admin.key if it has one. Prints the copy's
// chain head. Exit 0, or 2 with the reason.
int RunBackup(const Output& o, const std::string& from, const std::string& to);

// The server's counters (`pointledger stats`): exit 0, or 2.
int RunStats(net::Client& client, const Output& o);

// A health check: `connect_ms` is how long connecting and Hello took; asks
// for the chain head too, so a server that accepts but cannot read fails.
int RunPing(net::Client& client, const Output& o, double connect_ms, const std::string& address);

}  // namespace pointledger::tools

#endif  // POINTLEDGER_TOOLS_CLI_OPS_H_
