// The finance commands (docs/finance.md): reconcile trial-balance,
// reconcile liability, reconcile external, audit verify, audit export.
// Each works over a Reader: a data directory (--data, read-only, with a
// progress bar on a terminal) or the server (a key with the read scope).
#ifndef POINTLEDGER_TOOLS_CLI_FINANCE_H_
#define POINTLEDGER_TOOLS_CLI_FINANCE_H_

#include <cstdint>
#include <optional>
#include <string>

#include "tools/cli_read.h"

namespace pointledger::tools {

// Exit 0 when the books balance, 1 with a line per discrepancy.
int RunTrialBalance(Reader& reader, const Output& o);

// Movements in [from_ns, to_ns), outstanding points at as_of_ns.
int RunLiability(Reader& reader, const Output& o, const std::string& program, int64_t from_ns,
                 int64_t to_ns, int64_t as_of_ns);

// "SEQ:HASH" as `audit head` prints it: the head an earlier run recorded.
struct ExpectedHead {
  uint64_t seq = 0;
  std::string hash_hex;  // 64 lower-case hex digits
};
absl::StatusOr<ExpectedHead> ParseExpectedHead(std::string_view text);

// Exit 0 when the chain verifies, the rebuilt state equals the stored one
// and (if given) the expected head is in the chain; 1 otherwise.
int RunAuditVerify(Reader& reader, const Output& o, const std::optional<ExpectedHead>& expect);

// Streams transactions from_seq..to_seq (to_seq 0: the head when the export
// starts) to o.out as JSON lines or CSV, a page at a time.
int RunAuditExport(Reader& reader, const Output& o, uint64_t from_seq, uint64_t to_seq,
                   const std::string& format);

struct ExternalOptions {
  std::string program;
  std::string csv_path;
  // Rows held in memory per side before a sorted run spills to a temporary
  // file: what bounds memory on a 10-million-line export.
  size_t memory_rows = 500'000;
  bool mismatches_only = false;  // --json: leave out the `matched` lines
};
// Exit 0 when every row matches, 1 on any other finding, 2 on unreadable
// input (with the line number).
int RunReconcileExternal(Reader& reader, const Output& o, const ExternalOptions& options);

}  // namespace pointledger::tools

#endif  // POINTLEDGER_TOOLS_CLI_FINANCE_H_
