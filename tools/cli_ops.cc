#include "tools/cli_ops.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <vector>

#include "ledger/status.h"
#include "nlohmann/json.hpp"
#include "tools/cli_format.h"

namespace pointledger::tools {

namespace {

absl::Status SyncPath(const std::filesystem::path& p, bool directory) {
  const int fd = ::open(p.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) return absl::InternalError(StrCat("syncing the backup: opening ", p.string(), ": ", std::strerror(errno)));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) return absl::InternalError(StrCat("syncing the backup: ", p.string(), ": ", std::strerror(err)));
  return absl::OkStatus();
}

// fsyncs every file under `root`, then the directories bottom up, then the
// directory that holds `root`, so that the whole tree and its names are
// on disk.
absl::Status SyncTree(const std::filesystem::path& root) {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::vector<fs::path> dirs = {root};
  for (fs::recursive_directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_directory(ec)) {
      dirs.push_back(it->path());
    } else if (it->is_regular_file(ec)) {
      PL_RETURN_IF_ERROR(SyncPath(it->path(), false));
    }
  }
  if (ec) return absl::InternalError(StrCat("syncing the backup: listing ", root.string(), ": ", ec.message()));
  for (auto d = dirs.rbegin(); d != dirs.rend(); ++d) PL_RETURN_IF_ERROR(SyncPath(*d, true));
  return SyncPath(fs::absolute(root).parent_path(), true);
}

}  // namespace

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
    const std::string message =
        StrCat("--data ", from, ": cannot open the ledger there: ", std::string(ledger.status().message()));
    // No ledger there: a wrong --data (usage, with the help line), as OpenDataDir says.
    return ReportError(o, absl::IsNotFound(ledger.status()) ? absl::InvalidArgumentError(message)
                                                           : absl::FailedPreconditionError(message));
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
  // On disk before it is reported written: LMDB's copy and the files made
  // here are not synced by themselves, and a power cut after "written"
  // could leave a copy that does not open (found in review, session 16).
  if (absl::Status s = SyncTree(fs::path(to)); !s.ok()) return ReportError(o, s);
  if (o.json) {
    nlohmann::ordered_json j;
    j["to"] = to;
    j["seq"] = head->seq;
    j["hash"] = HexBytes(head->hash);
    const std::string text = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);  // bytes that are not UTF-8 are replaced, never an abort
    std::fprintf(o.out, "%s\n", text.c_str());
  } else {
    std::fprintf(o.out, "backup of %s written to %s\nhead %llu:%s\n", from.c_str(), to.c_str(),
                 static_cast<unsigned long long>(head->seq), HexBytes(head->hash).c_str());
    std::fprintf(o.out, "check it with: pointledger audit verify --data %s --expect-head %llu:%s\n",
                 to.c_str(), static_cast<unsigned long long>(head->seq), HexBytes(head->hash).c_str());
  }
  return kExitOk;
}

int RunStats(net::Client& client, const Output& o) {
  absl::StatusOr<net::Client::ServerStats> s = client.GetStats();
  if (!s.ok()) return ReportError(o, s.status());
  nlohmann::ordered_json j;
  j["uptime_s"] = s->uptime_s;
  j["connections_open"] = s->connections_open;
  j["connections_accepted"] = s->connections_accepted;
  j["connections_refused"] = s->connections_refused;
  j["head_seq"] = s->head_seq;
  j["checkpoint_seq"] = s->checkpoint_seq;
  j["commits"] = s->commits;
  j["batches"] = s->batches;
  j["transactions"] = s->transactions;
  j["busy_batches"] = s->busy_batches;
  j["reports_running"] = s->reports_running;
  nlohmann::ordered_json by_code = nlohmann::ordered_json::object();
  uint64_t committed = 0, rejected = 0;
  for (size_t c = 0; c < s->results_by_code.size() && c <= static_cast<size_t>(ledger::kCodeMax); ++c) {
    const uint64_t n = s->results_by_code[c];
    if (c == 0) {
      committed = n;
      continue;
    }
    rejected += n;
    if (n > 0) by_code[std::string(ledger::CodeName(static_cast<ledger::Code>(c)))] = n;
  }
  j["committed"] = committed;
  j["rejected"] = rejected;
  j["rejected_by_code"] = by_code;
  j["duplicates"] = s->duplicates;
  j["commit_p50_us"] = s->commit_p50_us;
  j["commit_p99_us"] = s->commit_p99_us;
  j["commit_max_us"] = s->commit_max_us;
  j["group_commit_p50_transactions"] = s->group_p50;
  j["group_commit_p99_transactions"] = s->group_p99;
  j["group_commit_max_transactions"] = s->group_max;
  j["log_map_used_bytes"] = s->log_map_used_bytes;
  j["log_map_size_bytes"] = s->log_map_size_bytes;
  j["state_map_used_bytes"] = s->state_map_used_bytes;
  j["state_map_size_bytes"] = s->state_map_size_bytes;
  if (o.json) {
    const std::string text = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);  // bytes that are not UTF-8 are replaced, never an abort
    std::fprintf(o.out, "%s\n", text.c_str());
    return kExitOk;
  }
  for (const auto& [name, value] : j.items()) {
    if (name == "rejected_by_code") {
      for (const auto& [code, n] : value.items()) {
        std::fprintf(o.out, "  %-30s %s\n", code.c_str(), n.dump().c_str());
      }
      continue;
    }
    std::fprintf(o.out, "%-32s %s\n", name.c_str(), value.dump().c_str());
  }
  return kExitOk;
}

int RunPing(net::Client& client, const Output& o, double connect_ms, const std::string& address) {
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<ledger::ChainHead> head = client.GetHead();
  // A key without the read scope (a POS's post-only key) is still a key the
  // server accepted and a server that answered: healthy, the head unread
  // (found in review, session 30: a health check with the POS's own key
  // always failed).
  const bool head_denied = absl::IsPermissionDenied(head.status());
  if (!head.ok() && !head_denied) return ReportError(o, head.status());
  const double read_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  if (o.json) {
    nlohmann::ordered_json j;
    j["ok"] = true;
    j["server"] = address;
    j["principal"] = client.principal();
    j["connect_ms"] = connect_ms;
    j["read_ms"] = read_ms;
    j["seq"] = head_denied ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(head->seq);
    const std::string text = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);  // bytes that are not UTF-8 are replaced, never an abort
    std::fprintf(o.out, "%s\n", text.c_str());
  } else if (head_denied) {
    std::fprintf(o.out,
                 "ok: pointledgerd at %s answered as %s (connect %.1f ms, read %.1f ms; this key has no read "
                 "scope, so the head was refused it)\n",
                 address.c_str(), client.principal().c_str(), connect_ms, read_ms);
  } else {
    std::fprintf(o.out, "ok: pointledgerd at %s answered as %s (connect %.1f ms, read %.1f ms, head seq %llu)\n",
                 address.c_str(), client.principal().c_str(), connect_ms, read_ms,
                 static_cast<unsigned long long>(head->seq));
  }
  return kExitOk;
}

}  // namespace pointledger::tools
