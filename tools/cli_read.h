// The read-only commands (balance, history, tx get, audit head, settle
// statement), over either the server (net::Client) or a data directory
// opened read-only (--data DIR, safe beside a running server).
#ifndef POINTLEDGER_TOOLS_CLI_READ_H_
#define POINTLEDGER_TOOLS_CLI_READ_H_

#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "ledger/ledger.h"

namespace pointledger::tools {

// The reads the commands need; the same calls as net::Client's.
class Reader {
 public:
  virtual ~Reader() = default;
  virtual absl::StatusOr<std::optional<ledger::Balance>> GetBalance(const std::string& program,
                                                                    const std::string& member) = 0;
  virtual absl::StatusOr<std::vector<ledger::HistoryEntry>> GetHistory(const std::string& program,
                                                                       const std::string& member,
                                                                       uint32_t limit,
                                                                       uint64_t before_seq) = 0;
  // nullopt if no transaction has this id in this program.
  virtual absl::StatusOr<std::optional<ledger::TxRecord>> GetTransaction(const std::string& program,
                                                                         const ledger::Id& id) = 0;
  virtual absl::StatusOr<ledger::ChainHead> GetHead() = 0;
  virtual absl::StatusOr<ledger::Statement> SettlementStatement(const std::string& program,
                                                                const std::string& partner,
                                                                int64_t from_ns, int64_t to_ns) = 0;
  // Whether the program exists, if the backend can tell (the server cannot).
  virtual std::optional<bool> ProgramExists(const std::string& program) = 0;

  // Finance (cli_finance.cc). The server cannot report progress; a data
  // directory does, through `progress`.
  virtual absl::StatusOr<ledger::RecordsPage> GetRecords(uint64_t from_seq, uint32_t limit,
                                                         const std::string& program) = 0;
  virtual absl::StatusOr<ledger::Liability> LiabilityReport(const std::string& program,
                                                            int64_t from_ns, int64_t to_ns,
                                                            int64_t as_of_ns) = 0;
  virtual absl::StatusOr<ledger::AuditReport> TrialBalance() = 0;
  virtual absl::StatusOr<ledger::AuditReport> Audit(const ledger::Progress& progress) = 0;
};

// Opens DIR read-only. InvalidArgument (a usage error) if DIR is missing or
// holds no ledger; FailedPrecondition if its ledger cannot be opened. `rebuild_memory_rows` bounds what a rebuild from seq 1 holds in
// memory (ledger::Options::rebuild_memory_entries); 0 sizes it to this
// machine: DefaultRebuildMemoryRows(AvailableMemoryBytes()).
absl::StatusOr<std::unique_ptr<Reader>> OpenDataDir(const std::string& dir, uint64_t rebuild_memory_rows = 0);

// What a rebuild in this process may hold in memory when --memory-rows is
// not given: half of `available_bytes` at ~300 bytes a row, never below the
// server's fixed default (8,388,608 rows). A rebuild that spills to its
// scratch environment runs ~25% slower (BENCHMARKS.md, "Finance"), and a
// one-off command on an operator's machine can use the memory a
// long-running server must not; the server keeps its configured bound.
uint64_t DefaultRebuildMemoryRows(uint64_t available_bytes);
// What this process may use: MemAvailable from /proc/meminfo, or less when
// a memory cgroup (a container's limit, systemd's MemoryMax=) leaves less
// room (CgroupRoomBytes). 0 when /proc/meminfo cannot be read.
uint64_t AvailableMemoryBytes();
// The room the memory cgroups of `proc_self_cgroup` (the text of
// /proc/self/cgroup) leave: the smallest limit minus usage over the cgroup
// and its ancestors, for cgroup v2 under `v2_root` (memory.max,
// memory.current) and v1 under `v1_root` (memory.limit_in_bytes,
// memory.usage_in_bytes). UINT64_MAX when nothing limits it.
uint64_t CgroupRoomBytes(const std::string& proc_self_cgroup, const std::string& v2_root,
                         const std::string& v1_root);
// Reads through an already open ledger (tests).
std::unique_ptr<Reader> ReaderOverLedger(ledger::Ledger* ledger);

// Where a command writes: stdout for results, stderr for messages.
struct Output {
  std::FILE* out = stdout;
  std::FILE* err = stderr;
  bool json = false;
  // Printed under an InvalidArgument error (a flag's value, a file's
  // line): where the command's options are described. Empty: none.
  std::string usage_hint;
};

// `text` and a line break on o.out.
void PrintLine(const Output& o, const std::string& text);

// Each returns the exit code (cli_format.h). A read failure (connection,
// storage) is exit 2 with the message on err; "not found" is exit 1.
int RunBalance(Reader& reader, const Output& o, const std::string& program, const std::string& member);
int RunHistory(Reader& reader, const Output& o, const std::string& program, const std::string& member,
               uint32_t limit, uint64_t before_seq);
// `key` is printed back; `id` is TxIdFromKey(program, key) or a --hex id.
int RunTxGet(Reader& reader, const Output& o, const std::string& program, const std::string& key,
             const ledger::Id& id);
int RunAuditHead(Reader& reader, const Output& o);
int RunSettleStatement(Reader& reader, const Output& o, const std::string& program,
                       const std::string& partner, int64_t from_ns, int64_t to_ns);

// Prints "error: <message>" and a hint line on o.err: `hint`, or, when
// that is empty and the status is InvalidArgument (a usage error),
// o.usage_hint. Returns kExitUsage.
int ReportError(const Output& o, const absl::Status& status, std::string_view hint = "");

}  // namespace pointledger::tools

#endif  // POINTLEDGER_TOOLS_CLI_READ_H_
