// The `pointledger` command line: CLI11 parsing of the global options and
// every command of SPEC §8, then the command itself (tools/cli_read.h,
// tools/cli_post.h, bench/loadgen.h).
#ifndef POINTLEDGER_TOOLS_CLI_APP_H_
#define POINTLEDGER_TOOLS_CLI_APP_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"

namespace pointledger::tools {

// Global options; they may stand before or after the command.
struct Globals {
  std::string server = "127.0.0.1:7600";
  // Unset when not given; given empty is an error (ResolveKey).
  std::optional<std::string> key;
  std::optional<std::string> key_file;
  std::string data;
  bool json = false;
};

// The API key: --key, else --key-file, else $POINTLEDGER_KEY, else
// $POINTLEDGER_KEY_FILE, else ./var/admin.key if it exists (the key
// `make run` creates). A key file's trailing whitespace is dropped.
// InvalidArgument if both --key and --key-file are given, if either is
// given empty (an empty variable counts as unset), or if a file cannot be
// read; "" when there is no key at all (the server will then refuse).
absl::StatusOr<std::string> ResolveKey(const Globals& g);

// Parses argv and runs the command. Returns the process exit code (0, 1, 2);
// 2 also when stdout could not be written (a full disk), whatever the
// command's outcome: a transaction posted is then on the ledger, and the
// same command again answers it as a duplicate.
// CLI11 reports parse errors by throwing; this function is the one place
// that catches them (STYLE.md: our own code throws nothing).
int RunCli(int argc, char** argv);

}  // namespace pointledger::tools

#endif  // POINTLEDGER_TOOLS_CLI_APP_H_
