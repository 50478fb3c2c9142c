#include "tools/cli_ops.h"

#include <filesystem>
#include <system_error>

#include "ledger/status.h"
#include "nlohmann/json.hpp"
#include "tools/cli_format.h"

namespace pointledger::tools {

int RunBackup(const Output& o, const std::string& from, const std::string& to) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(from, ec)) {
    return ReportError(o, absl::InvalidArgumentError(StrCat("--data ", from, ": no such directory")));
  }
  ledger::Options options;
  options.dir = from;
  options.read_only = true;
  absl::StatusOr<std::unique_ptr<ledger::Ledger>> ledger = ledger::Ledger::Open(options);
  if (!ledger.ok()) {
    return ReportError(o, absl::FailedPreconditionError(StrCat(
                              "--data ", from, ": cannot open the ledger there: ",
                              std::string(ledger.status().message()))));
  }
  absl::StatusOr<ledger::ChainHead> head = (*ledger)->Backup(to);
  if (!head.ok()) return ReportError(o, head.status());
  // The key the server made at its first start, so that a server started
  // on the copy accepts the same admin key (it stays mode 0600).
  const fs::path key = fs::path(from) / "admin.key";
  if (fs::exists(key, ec)) {
    fs::copy_file(key, fs::path(to) / "admin.key", ec);
    if (ec) {
      return ReportError(o, absl::InternalError(StrCat("copying ", key.string(), ": ", ec.message())));
    }
  }
  if (o.json) {
    nlohmann::ordered_json j;
    j["to"] = to;
    j["seq"] = head->seq;
    j["hash"] = HexBytes(head->hash);
    const std::string text = j.dump();
    std::fprintf(o.out, "%s\n", text.c_str());
  } else {
    std::fprintf(o.out, "backup of %s written to %s\nhead %llu:%s\n", from.c_str(), to.c_str(),
                 static_cast<unsigned long long>(head->seq), HexBytes(head->hash).c_str());
    std::fprintf(o.out, "check it with: pointledger audit verify --data %s --expect-head %llu:%s\n",
                 to.c_str(), static_cast<unsigned long long>(head->seq), HexBytes(head->hash).c_str());
  }
  return kExitOk;
}

}  // namespace pointledger::tools
