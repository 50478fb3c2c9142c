#include "tools/cli_read.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>
#include <system_error>

#include "ledger/limits.h"
#include "ledger/status.h"
#include "net/limits.h"
#include "tools/cli_format.h"
#include "tools/cli_time.h"

namespace pointledger::tools {
namespace {

class LedgerReader final : public Reader {
 public:
  LedgerReader(std::unique_ptr<ledger::Ledger> owned, ledger::Ledger* ledger)
      : owned_(std::move(owned)), ledger_(ledger) {}

  absl::StatusOr<std::optional<ledger::Balance>> GetBalance(const std::string& program,
                                                            const std::string& member) override {
    return ledger_->GetBalance(program, member);
  }
  absl::StatusOr<std::vector<ledger::HistoryEntry>> GetHistory(const std::string& program,
                                                               const std::string& member,
                                                               uint32_t limit,
                                                               uint64_t before_seq) override {
    return ledger_->GetHistory(program, member, limit, before_seq);
  }
  absl::StatusOr<std::optional<ledger::TxRecord>> GetTransaction(const std::string& program,
                                                                 const ledger::Id& id) override {
    absl::StatusOr<std::optional<ledger::TxRecord>> rec = ledger_->GetTransaction(id);
    // Ids are per program (derived from it); the server answers the same way.
    if (rec.ok() && rec->has_value() && (*rec)->tx.program != program) {
      return std::optional<ledger::TxRecord>();
    }
    return rec;
  }
  absl::StatusOr<ledger::ChainHead> GetHead() override { return ledger_->GetHead(); }
  absl::StatusOr<ledger::Statement> SettlementStatement(const std::string& program,
                                                        const std::string& partner, int64_t from_ns,
                                                        int64_t to_ns) override {
    return ledger_->SettlementStatement(program, partner, from_ns, to_ns);
  }
  std::optional<bool> ProgramExists(const std::string& program) override {
    absl::StatusOr<std::optional<ledger::ProgramInfo>> p = ledger_->GetProgram(program);
    if (!p.ok()) return std::nullopt;
    return p->has_value();
  }
  absl::StatusOr<ledger::RecordsPage> GetRecords(uint64_t from_seq, uint32_t limit,
                                                 const std::string& program) override {
    if (!program.empty()) {
      PL_ASSIGN_OR_RETURN(std::optional<ledger::ProgramInfo> p, ledger_->GetProgram(program));
      if (!p) return absl::NotFoundError(StrCat("program_not_found: ", program));
    }
    return ledger_->GetRecords(from_seq, limit, program);
  }
  absl::StatusOr<ledger::Liability> LiabilityReport(const std::string& program, int64_t from_ns,
                                                    int64_t to_ns, int64_t as_of_ns) override {
    return ledger_->LiabilityReport(program, from_ns, to_ns, as_of_ns);
  }
  absl::StatusOr<ledger::AuditReport> TrialBalance() override {
    PL_ASSIGN_OR_RETURN(std::vector<ledger::Discrepancy> found, ledger_->TrialBalance());
    ledger::AuditReport report;
    report.discrepancy_count = found.size();
    report.discrepancies = std::move(found);
    return report;
  }
  absl::StatusOr<ledger::AuditReport> Audit(const ledger::Progress& progress) override {
    return ledger_->Audit(progress);
  }

 private:
  std::unique_ptr<ledger::Ledger> owned_;
  ledger::Ledger* ledger_;
};

void Print(const Output& o, const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), o.out);
}

// A "not found" message on stderr and exit 1 (SPEC §8: a check found nothing).
int NotFound(const Output& o, const std::string& message) {
  std::fprintf(o.err, "%s\n", message.c_str());
  return kExitRejected;
}

}  // namespace

void PrintLine(const Output& o, const std::string& text) {
  Print(o, text);
  std::fputc('\n', o.out);
}

int ReportError(const Output& o, const absl::Status& status, std::string_view hint) {
  // Messages quote names and keys as typed: escaped, like every line of text.
  std::fprintf(o.err, "error: %s\n", Shown(std::string(status.message())).c_str());
  // The server's refusal of the key (net/client.cc), not a file the
  // operating system would not let --data read.
  if (hint.empty() && absl::IsPermissionDenied(status) && status.message() == "permission_denied") {
    hint = "The API key lacks the scope (read; admin for expire) or the program this needs: "
           "use another key, or see docs/operations.md, \"API keys\".";
  }
  if (hint.empty() && absl::IsInvalidArgument(status)) hint = o.usage_hint;
  if (!hint.empty()) std::fprintf(o.err, "%s\n", std::string(hint).c_str());
  return kExitUsage;
}

uint64_t DefaultRebuildMemoryRows(uint64_t available_bytes) {
  // A rebuild's peak anonymous memory was 2.27 GB for 8M rows (~280 bytes a
  // row: the entry, its slot, the hash and order indexes).
  constexpr uint64_t kBytesPerRow = 300;
  return std::clamp(available_bytes / 2 / kBytesPerRow, net::kRebuildMemoryRowsDefault, net::kRebuildMemoryRowsCap);
}

namespace {

// The number in a cgroup file ("max", a missing file: nullopt).
std::optional<uint64_t> ReadCgroupNumber(const std::filesystem::path& file) {
  std::ifstream in(file);
  uint64_t value = 0;
  if (!(in >> value)) return std::nullopt;
  return value;
}

std::string ReadWhole(const char* path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace

uint64_t CgroupRoomBytes(const std::string& proc_self_cgroup, const std::string& v2_root,
                         const std::string& v1_root) {
  namespace fs = std::filesystem;
  uint64_t room = UINT64_MAX;
  // From the cgroup up to the hierarchy's root: a limit set on a parent
  // (a slice, a pod) binds too.
  auto walk = [&room](std::string root, std::string relative, const char* limit_name, const char* usage_name) {
    while (root.size() > 1 && root.back() == '/') root.pop_back();
    if (relative.empty() || relative.front() != '/') relative.insert(relative.begin(), '/');
    std::string dir = root + relative;
    while (dir.size() > root.size() && dir.back() == '/') dir.pop_back();
    for (;;) {
      if (const std::optional<uint64_t> limit = ReadCgroupNumber(fs::path(dir) / limit_name)) {
        const uint64_t usage = ReadCgroupNumber(fs::path(dir) / usage_name).value_or(0);
        room = std::min(room, *limit > usage ? *limit - usage : 0);
      }
      if (dir.size() <= root.size()) break;
      dir.resize(dir.rfind('/'));
    }
  };
  std::istringstream lines(proc_self_cgroup);
  for (std::string line; std::getline(lines, line);) {
    // "ID:CONTROLLERS:PATH"; v2 is "0::PATH".
    const size_t first = line.find(':');
    const size_t second = first == std::string::npos ? first : line.find(':', first + 1);
    if (second == std::string::npos) continue;
    const std::string controllers = line.substr(first + 1, second - first - 1);
    const std::string path = line.substr(second + 1);
    if (line.substr(0, first) == "0" && controllers.empty()) {
      walk(v2_root, path, "memory.max", "memory.current");
    } else if (("," + controllers + ",").find(",memory,") != std::string::npos) {
      walk(v1_root, path, "memory.limit_in_bytes", "memory.usage_in_bytes");
    }
  }
  return room;
}

uint64_t AvailableMemoryBytes() {
  std::ifstream meminfo("/proc/meminfo");
  std::string name;
  uint64_t kib = 0;
  std::string unit;
  uint64_t available = 0;
  while (meminfo >> name >> kib >> unit) {
    if (name == "MemAvailable:") {
      available = kib * 1024;
      break;
    }
  }
  if (available == 0) return 0;
  // cgroup v2 is at /sys/fs/cgroup, or at .../unified beside v1's.
  const std::string v2 =
      std::filesystem::exists("/sys/fs/cgroup/cgroup.controllers") ? "/sys/fs/cgroup" : "/sys/fs/cgroup/unified";
  return std::min(available, CgroupRoomBytes(ReadWhole("/proc/self/cgroup"), v2, "/sys/fs/cgroup/memory"));
}

absl::StatusOr<std::unique_ptr<Reader>> OpenDataDir(const std::string& dir, uint64_t rebuild_memory_rows) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    return absl::InvalidArgumentError(StrCat("--data ", dir, ": no such directory"));
  }
  ledger::Options options;
  options.dir = dir;
  options.read_only = true;
  options.rebuild_memory_entries =
      rebuild_memory_rows != 0 ? rebuild_memory_rows : DefaultRebuildMemoryRows(AvailableMemoryBytes());
  absl::StatusOr<std::unique_ptr<ledger::Ledger>> opened = ledger::Ledger::Open(options);
  if (!opened.ok()) {
    // A directory that holds no ledger is a wrong --data (usage, with the
    // help line); one that cannot be opened is trouble with the ledger.
    const std::string message =
        StrCat("--data ", dir, ": cannot open the ledger there: ", std::string(opened.status().message()));
    return absl::IsNotFound(opened.status()) ? absl::InvalidArgumentError(message)
                                             : absl::FailedPreconditionError(message);
  }
  ledger::Ledger* raw = opened->get();
  return std::unique_ptr<Reader>(new LedgerReader(std::move(*opened), raw));
}

std::unique_ptr<Reader> ReaderOverLedger(ledger::Ledger* ledger) {
  return std::make_unique<LedgerReader>(nullptr, ledger);
}

int RunBalance(Reader& reader, const Output& o, const std::string& program, const std::string& member) {
  absl::StatusOr<std::optional<ledger::Balance>> b = reader.GetBalance(program, member);
  if (!b.ok()) return ReportError(o, b.status());
  if (!b->has_value()) {
    const std::optional<bool> program_exists = reader.ProgramExists(program);
    if (program_exists == std::optional<bool>(false)) {
      return NotFound(o, StrCat("no program '", Shown(program), "'"));
    }
    return NotFound(o, StrCat("no member '", Shown(member), "' in program '", Shown(program),
                              program_exists ? "' (it has never earned)"
                                             : "' (it has never earned, or the program does not exist)"));
  }
  if (o.json) {
    PrintLine(o, BalanceJson(program, member, **b));
  } else {
    Print(o, BalanceText(program, member, **b));
  }
  return kExitOk;
}

int RunHistory(Reader& reader, const Output& o, const std::string& program, const std::string& member,
               uint32_t limit, uint64_t before_seq) {
  if (limit == 0 || limit > ledger::kHistoryLimitMax) {
    return ReportError(o, absl::InvalidArgumentError(
                              StrCat("--limit must be from 1 to ", ledger::kHistoryLimitMax)));
  }
  absl::StatusOr<std::optional<ledger::Balance>> b = reader.GetBalance(program, member);
  if (!b.ok()) return ReportError(o, b.status());
  if (!b->has_value()) {
    return NotFound(o, StrCat("no member '", Shown(member), "' in program '", Shown(program), "'"));
  }
  absl::StatusOr<std::vector<ledger::HistoryEntry>> h = reader.GetHistory(program, member, limit, before_seq);
  if (!h.ok()) return ReportError(o, h.status());
  if (o.json) {
    for (const ledger::HistoryEntry& e : *h) PrintLine(o, HistoryEntryJson(e));
  } else {
    Print(o, HistoryText(*h));
  }
  return kExitOk;
}

int RunTxGet(Reader& reader, const Output& o, const std::string& program, const std::string& key,
             const ledger::Id& id) {
  absl::StatusOr<std::optional<ledger::TxRecord>> rec = reader.GetTransaction(program, id);
  if (!rec.ok()) return ReportError(o, rec.status());
  if (!rec->has_value()) {
    return NotFound(o, StrCat("no transaction '", Shown(key), "' in program '", Shown(program), "' (id ",
                              ledger::IdToHex(id), ")"));
  }
  if (o.json) {
    PrintLine(o, TxRecordJson(key, **rec));
  } else {
    Print(o, TxRecordText(key, **rec));
  }
  return kExitOk;
}

int RunAuditHead(Reader& reader, const Output& o) {
  absl::StatusOr<ledger::ChainHead> head = reader.GetHead();
  if (!head.ok()) return ReportError(o, head.status());
  if (o.json) {
    PrintLine(o, HeadJson(*head));
  } else {
    Print(o, HeadText(*head));
  }
  return kExitOk;
}

int RunSettleStatement(Reader& reader, const Output& o, const std::string& program,
                       const std::string& partner, int64_t from_ns, int64_t to_ns) {
  absl::StatusOr<ledger::Statement> s = reader.SettlementStatement(program, partner, from_ns, to_ns);
  if (!s.ok()) {
    if (absl::IsNotFound(s.status())) {
      // The engine and the server say only the code; say what was not there.
      // (The engine read through --data adds ": NAME" after the code.)
      const std::string message(s.status().message());
      const std::string code = message.substr(0, message.find(':'));
      if (code == "program_not_found") return NotFound(o, StrCat("no program '", Shown(program), "'"));
      if (code == "partner_not_found") {
        return NotFound(o, StrCat("no partner '", Shown(partner), "' in program '", Shown(program), "'"));
      }
      return NotFound(o, Shown(message));
    }
    return ReportError(o, s.status());
  }
  if (s->from_ns > s->to_ns) {
    // Only without --from (checked against --to before): the period starts
    // where the last settlement ended, after this --to. An all-zero
    // statement of a backwards period would read as "nothing to settle".
    return ReportError(o, absl::InvalidArgumentError(
                              StrCat("--to ", FormatTime(s->to_ns), " is before the end of the last settlement (",
                                     FormatTime(s->from_ns), "), where the period starts without --from; give "
                                     "--from to print an earlier period")));
  }
  if (o.json) {
    PrintLine(o, StatementJson(*s));
  } else {
    Print(o, StatementText(*s));
  }
  return kExitOk;
}

}  // namespace pointledger::tools
