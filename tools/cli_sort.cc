#include "tools/cli_sort.h"

#include <algorithm>
#include <utility>

#include "ledger/limits.h"
#include "ledger/status.h"

namespace pointledger::tools {
namespace {

void WriteString(std::ostream& out, const std::string& s) {
  const uint32_t n = static_cast<uint32_t>(s.size());
  out.write(reinterpret_cast<const char*>(&n), sizeof(n));
  out.write(s.data(), n);
}

// The longest string a sort run holds: a longer one is a damaged run. The
// file's strings are bounded far below it: a row with a field longer than
// that was dropped from the merge without a word (found in the csv fuzz
// target's review, session 24).
constexpr uint32_t kRunStringBytesMax = uint32_t{1} << 20;
static_assert(ledger::kMemberKeyBytesMax * 4 <= kRunStringBytesMax,
              "an order_ref or member the file may have reads back from a run");

bool ReadString(std::istream& in, std::string* s) {
  uint32_t n = 0;
  if (!in.read(reinterpret_cast<char*>(&n), sizeof(n)) || n > kRunStringBytesMax) return false;
  s->resize(n);
  return static_cast<bool>(in.read(s->data(), n));
}

template <typename T>
void WritePod(std::ostream& out, const T& v) {
  out.write(reinterpret_cast<const char*>(&v), sizeof(v));
}
template <typename T>
bool ReadPod(std::istream& in, T* v) {
  return static_cast<bool>(in.read(reinterpret_cast<char*>(v), sizeof(*v)));
}

void WriteRow(std::ostream& out, const Row& r) {
  out.write(reinterpret_cast<const char*>(r.id.data()), 16);
  WriteString(out, r.order_ref);
  WriteString(out, r.kind);
  WritePod(out, r.points);
  WriteString(out, r.member);
  WritePod(out, r.line);
  WritePod(out, r.timestamp_ns);
  WriteString(out, r.status);
  WritePod(out, r.ledgers_own);
}

bool ReadRow(std::istream& in, Row* r) {
  return in.read(reinterpret_cast<char*>(r->id.data()), 16) && ReadString(in, &r->order_ref) &&
         ReadString(in, &r->kind) && ReadPod(in, &r->points) && ReadString(in, &r->member) &&
         ReadPod(in, &r->line) && ReadPod(in, &r->timestamp_ns) && ReadString(in, &r->status) &&
         ReadPod(in, &r->ledgers_own);
}

// At most this many sorted runs of one side are open at once (the file's
// and the ledger's are merged side by side: twice this). Past it, runs are
// first merged this many at a time into longer ones: a small --memory-rows
// on a big file makes thousands of runs, more than a process may open.
constexpr size_t kMergeWidth = 32;

absl::Status RunNotWritten(const std::filesystem::path& path) {
  return absl::ResourceExhaustedError(
      StrCat("cannot write the sort run ", path.string(), " (is the temporary directory full?)"));
}

}  // namespace

bool Before(const Row& a, const Row& b) {
  if (a.id != b.id) return a.id < b.id;
  return a.line < b.line;
}

ExternalSorter::ExternalSorter(std::filesystem::path dir, std::string name, size_t memory_rows)
    : dir_(std::move(dir)), name_(std::move(name)), memory_rows_(std::max<size_t>(memory_rows, 1)) {}

absl::Status ExternalSorter::Add(Row row) {
  rows_.push_back(std::move(row));
  if (rows_.size() >= memory_rows_) return Spill();
  return absl::OkStatus();
}

absl::Status ExternalSorter::Finish() {
  if (runs_.empty()) {
    std::sort(rows_.begin(), rows_.end(), Before);
    return absl::OkStatus();
  }
  if (!rows_.empty()) PL_RETURN_IF_ERROR(Spill());
  // Merge passes: the oldest kMergeWidth runs become one, at the back.
  while (runs_.size() > kMergeWidth) {
    std::vector<Run> group(runs_.begin(), runs_.begin() + kMergeWidth);
    runs_.erase(runs_.begin(), runs_.begin() + kMergeWidth);
    PL_RETURN_IF_ERROR(OpenSources(group));
    Run merged{NextRunPath(), 0};
    std::ofstream out(merged.path, std::ios::binary | std::ios::trunc);
    Row row;
    while (Next(&row)) {
      WriteRow(out, row);
      ++merged.rows;
    }
    PL_RETURN_IF_ERROR(status_);
    out.close();
    if (!out) return RunNotWritten(merged.path);
    sources_.clear();
    for (const Run& done : group) std::filesystem::remove(done.path);
    runs_.push_back(std::move(merged));
  }
  return OpenSources(runs_);
}

bool ExternalSorter::Next(Row* out) {
  if (runs_.empty()) {
    if (next_ >= rows_.size()) return false;
    *out = std::move(rows_[next_++]);
    return true;
  }
  if (heap_.empty() || !status_.ok()) return false;
  const size_t i = heap_.top();
  heap_.pop();
  *out = std::move(sources_[i].row);
  if (Advance(sources_[i])) heap_.push(i);
  return true;
}

std::vector<std::filesystem::path> ExternalSorter::run_paths() const {
  std::vector<std::filesystem::path> paths;
  for (const Run& r : runs_) paths.push_back(r.path);
  return paths;
}

absl::Status ExternalSorter::OpenSources(const std::vector<Run>& runs) {
  open_runs_ = runs;  // the sources point into it: no reallocation below
  sources_.reserve(open_runs_.size());
  for (const Run& run : open_runs_) {
    auto in = std::make_unique<std::ifstream>(run.path, std::ios::binary);
    if (!*in) return absl::InternalError(StrCat("cannot reopen ", run.path.string()));
    sources_.push_back(Source{std::move(in), Row{}, &run, run.rows});
    if (Advance(sources_.back())) heap_.push(sources_.size() - 1);
  }
  return status_;
}

bool ExternalSorter::Advance(Source& source) {
  if (source.left == 0) return false;
  if (!ReadRow(*source.in, &source.row)) {
    if (status_.ok()) {
      status_ = absl::DataLossError(StrCat("the sort run ", source.run->path.string(), " read back short: ",
                                           source.left, " of its ", source.run->rows,
                                           " rows could not be read (a read error, or the file changed)"));
    }
    return false;
  }
  --source.left;
  return true;
}

std::filesystem::path ExternalSorter::NextRunPath() { return dir_ / StrCat(name_, "-", run_count_++); }

absl::Status ExternalSorter::Spill() {
  std::sort(rows_.begin(), rows_.end(), Before);
  Run run{NextRunPath(), rows_.size()};
  std::ofstream out(run.path, std::ios::binary | std::ios::trunc);
  for (const Row& r : rows_) WriteRow(out, r);
  out.close();
  if (!out) return RunNotWritten(run.path);
  runs_.push_back(std::move(run));
  rows_.clear();
  return absl::OkStatus();
}

}  // namespace pointledger::tools
