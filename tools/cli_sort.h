// The external sort behind `pointledger reconcile external`
// (tools/cli_external.cc): rows of one side (the file's or the ledger's),
// sorted by transaction id in runs of at most `memory_rows` that spill to
// files, then merged. Its own header so that tests can damage a run.
#ifndef POINTLEDGER_TOOLS_CLI_SORT_H_
#define POINTLEDGER_TOOLS_CLI_SORT_H_

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <queue>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "ledger/ledger.h"

namespace pointledger::tools {

// A row's points: a file's field, or the ledger's figure for the
// transaction (a referral's two legs together reach 2^63, past int64).
using Points = __int128;

// One side's view of one transaction.
struct Row {
  ledger::Id id{};
  std::string order_ref;
  std::string kind;
  Points points = 0;
  std::string member;
  uint64_t line = 0;       // file: its line number; ledger: its seq
  int64_t timestamp_ns = 0;  // 0: none given
  std::string status;      // ledger: "ok" or the recorded rejection
  // Ledger: a kind the ledger posts on its own (IsClientKind false). A row
  // naming its id is matched against it, but no export is expected to
  // list it, so it is never missing_in_file.
  bool ledgers_own = false;
};

// The merge order: by id, then by line (file) or seq (ledger).
bool Before(const Row& a, const Row& b);

// Sorts rows in memory_rows runs, spilling each full run to a file in dir,
// then hands them back merged, in Before order. Each run's rows are
// counted as written: one that reads back short (a read error, or the file
// changed under it) sets status() rather than ending quietly, which would
// have reported the missing rows' ids as missing from the other side.
class ExternalSorter {
 public:
  ExternalSorter(std::filesystem::path dir, std::string name, size_t memory_rows);

  // ResourceExhausted if a run cannot be written (a full disk).
  absl::Status Add(Row row);
  // Call once, after the last Add.
  absl::Status Finish();
  // The next row in order; false at the end, or at a run that could not
  // be read back (status() says).
  bool Next(Row* out);
  // DataLoss once a run has read back short; OK otherwise.
  const absl::Status& status() const { return status_; }

  // The run files (tests).
  std::vector<std::filesystem::path> run_paths() const;

 private:
  struct Run {
    std::filesystem::path path;
    uint64_t rows = 0;
  };
  struct Source {
    std::unique_ptr<std::ifstream> in;
    Row row;
    const Run* run;
    uint64_t left;  // rows of the run not read yet
  };
  struct Later {
    const ExternalSorter* s;
    bool operator()(size_t a, size_t b) const { return Before(s->sources_[b].row, s->sources_[a].row); }
  };

  // Opens each run and puts its first row on the heap (which is empty).
  absl::Status OpenSources(const std::vector<Run>& runs);
  // The source's next row; false at the run's end or on damage (status_).
  bool Advance(Source& source);
  std::filesystem::path NextRunPath();
  absl::Status Spill();

  std::filesystem::path dir_;
  std::string name_;
  size_t memory_rows_;
  std::vector<Row> rows_;
  size_t next_ = 0;
  std::vector<Run> runs_;
  std::vector<Run> open_runs_;  // what sources_ read (they point here)
  size_t run_count_ = 0;  // names runs uniquely, merged ones included
  std::vector<Source> sources_;
  std::priority_queue<size_t, std::vector<size_t>, Later> heap_{Later{this}};
  absl::Status status_;
};

}  // namespace pointledger::tools

#endif  // POINTLEDGER_TOOLS_CLI_SORT_H_
