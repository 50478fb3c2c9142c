// Operations commands: backup (docs/operations.md).
#ifndef POINTLEDGER_TOOLS_CLI_OPS_H_
#define POINTLEDGER_TOOLS_CLI_OPS_H_

#include <string>

#include "tools/cli_read.h"

namespace pointledger::tools {

// A consistent, compacted hot copy of data directory `from` into `to`
// (Ledger::Backup), plus its admin.key if it has one. Prints the copy's
// chain head. Exit 0, or 2 with the reason.
int RunBackup(const Output& o, const std::string& from, const std::string& to);

}  // namespace pointledger::tools

#endif  // POINTLEDGER_TOOLS_CLI_OPS_H_
