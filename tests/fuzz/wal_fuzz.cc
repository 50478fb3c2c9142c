// libFuzzer target: the input is the segment files of a data directory's
// wal/ (tests/fuzz/wal_harness.h says how bytes become files: frames with
// CRCs that check around payloads the fuzzer chooses, or one file as it
// is). Each input is read the three ways the code reads a write-ahead log
// it did not write: CheckSegments (audit verify), a WalReader (a read-only
// follower), Wal::Open (the writer's recovery); then, when recovery found
// group commits from seq 1 on, a whole Ledger::Open, which replays their
// records.
//
// Oracles beyond "no crash, no hang, no sanitizer report":
// - every error is DataLoss (a follower's may also be Aborted: read the
//   log environment again); nothing here is an I/O error;
// - what recovery returns continues after_seq without a gap, each chunk a
//   group with log entries; the follower returns the same chunks, and
//   again on a second read; CheckSegments passes where recovery does;
// - after recovery, one more group commit appended is read back, after
//   the recovered ones, by the next open;
// - a ledger that opens (its replay matched every record's hash) has the
//   last recovered seq as its head, and balances.
//
// The files live in a directory under /dev/shm (fsync is free there),
// rewritten for every input: an input replayed on its own does the same.
// PL_FUZZ_TRACE=1 in the environment prints what each reading returned.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "ledger/ledger.h"
#include "ledger/limits.h"
#include "ledger/status.h"
#include "ledger/wal.h"
#include "tests/fuzz/scratch_dir.h"
#include "tests/fuzz/wal_harness.h"

namespace pointledger::fuzz {
namespace {

using ledger::LogChunk;
using ledger::LogChunks;

// 2026-01-01T00:00:00Z; the replay uses each record's own time.
class FixedClock final : public ledger::Clock {
 public:
  int64_t NowNs() override { return int64_t{1'767'225'600} * ledger::kNanosPerSecond; }
};

// Seqs continue after_seq, chunk after chunk; each chunk has log entries.
void CheckChunks(const LogChunks& chunks, uint64_t after_seq) {
  uint64_t expected = after_seq + 1;
  for (const auto& c : chunks) {
    PL_CHECK(c != nullptr && !c->refs(ledger::Dbs().log).empty());
    PL_CHECK(c->first_seq() == expected && c->last_seq() >= c->first_seq());
    expected = c->last_seq() + 1;
  }
}

bool SameChunks(const LogChunks& a, const LogChunks& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i]->bytes() != b[i]->bytes()) return false;
  }
  return true;
}

class WalHarness {
 public:
  WalHarness() : dir_(NewScratchDir()), wal_dir_(dir_ + "/wal") {}
  WalHarness(const WalHarness&) = delete;
  WalHarness& operator=(const WalHarness&) = delete;

  const std::string& dir() const { return dir_; }

  void Run(std::span<const uint8_t> data) {
    const WalInput input = WalInputDecoder::Decode(data);
    const uint64_t after_seq = input.after_seq;
    WriteSegments(input);

    const absl::Status checked = ledger::CheckSegments(wal_dir_, after_seq);
    Trace("CheckSegments", checked);
    PL_CHECK(checked.ok() || absl::IsDataLoss(checked));

    ledger::WalReader follower(wal_dir_);
    absl::StatusOr<std::shared_ptr<const LogChunks>> followed = follower.Read(after_seq);
    Trace("WalReader::Read", followed.status(), followed.ok() ? followed->get() : nullptr);
    PL_CHECK(followed.ok() || absl::IsDataLoss(followed.status()) ||
             absl::IsAborted(followed.status()));
    if (followed.ok()) {
      CheckChunks(**followed, after_seq);
      absl::StatusOr<std::shared_ptr<const LogChunks>> again = follower.Read(after_seq);
      PL_CHECK(again.ok() && SameChunks(**again, **followed));
    }

    LogChunks recovered;
    absl::StatusOr<std::unique_ptr<ledger::Wal>> wal =
        ledger::Wal::Open(WalOptions(), after_seq, &recovered);
    Trace("Wal::Open", wal.status(), &recovered);
    PL_CHECK(wal.ok() || absl::IsDataLoss(wal.status()));
    if (!wal.ok()) return;
    CheckChunks(recovered, after_seq);
    PL_CHECK(checked.ok());
    PL_CHECK(followed.ok() && SameChunks(**followed, recovered));

    const uint64_t last_seq = recovered.empty() ? after_seq : recovered.back()->last_seq();
    if (last_seq < std::numeric_limits<uint64_t>::max()) {
      AppendAndReopen(*std::move(wal), after_seq, recovered, last_seq + 1);
    }
    if (after_seq == 0 && !recovered.empty()) {
      WriteSegments(input);  // as they were before the appending
      OpenLedger(recovered.back()->last_seq());
    }
  }

 private:
  ledger::Wal::Options WalOptions() const {
    ledger::Wal::Options options;
    options.dir = wal_dir_;
    options.segment_bytes_max = kWalMinSegmentBytes;  // no more zeros than needed
    return options;
  }

  // wal/ holds the input's segments and nothing else; log/ and state/ are gone.
  void WriteSegments(const WalInput& input) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
    std::filesystem::create_directories(wal_dir_, ec);
    PL_CHECK(!ec);
    for (const WalSegment& s : input.segments) {
      char name[32];
      std::snprintf(name, sizeof(name), "/%016llu.wal", static_cast<unsigned long long>(s.number));
      std::ofstream out(wal_dir_ + name, std::ios::binary | std::ios::trunc);
      out << s.bytes;
      PL_CHECK(out.flush());
    }
  }

  // The group commit a writer makes next is durable and read back after
  // what was there, whatever else the segments hold.
  void AppendAndReopen(std::unique_ptr<ledger::Wal> wal, uint64_t after_seq,
                       const LogChunks& recovered, uint64_t seq) {
    auto next = std::make_shared<LogChunk>();
    next->Add(ledger::Dbs().log, seq, "appended by the wal fuzz target");
    const absl::Status appended = wal->Append(*next);
    PL_CHECK(appended.ok());
    wal.reset();
    LogChunks expected = recovered;
    expected.push_back(next);
    LogChunks again;
    absl::StatusOr<std::unique_ptr<ledger::Wal>> reopened =
        ledger::Wal::Open(WalOptions(), after_seq, &again);
    PL_CHECK(reopened.ok());
    PL_CHECK(SameChunks(again, expected));
  }

  // A new ledger over these segments: its log environment is empty, so
  // recovery takes every group from seq 1 and replays its records.
  void OpenLedger(uint64_t last_seq) {
    ledger::Options options;
    options.dir = dir_;
    options.map_size_bytes = uint64_t{16} << 20;
    options.clock = &clock_;
    options.checkpoint_on_close = false;  // nothing written at close: the next input starts clean
    options.checkpoint_entries = uint64_t{1} << 30;
    options.checkpoint_interval_ms = int64_t{1} << 40;
    options.wal_segment_bytes = kWalMinSegmentBytes;
    absl::StatusOr<std::unique_ptr<ledger::Ledger>> opened = ledger::Ledger::Open(options);
    Trace("Ledger::Open", opened.status());
    if (!opened.ok()) {
      PL_CHECK(absl::IsDataLoss(opened.status()));
      return;
    }
    absl::StatusOr<ledger::ChainHead> head = (*opened)->GetHead();
    PL_CHECK(head.ok() && head->seq == last_seq);
    absl::StatusOr<std::vector<ledger::Discrepancy>> found = (*opened)->TrialBalance();
    PL_CHECK(found.ok());
    for (const ledger::Discrepancy& d : *found) {
      std::fprintf(stderr, "trial balance: %s at %s: expected %s, found %s\n", d.what.c_str(),
                   d.where.c_str(), d.expected.c_str(), d.found.c_str());
    }
    PL_CHECK(found->empty());
  }

  void Trace(const char* what, const absl::Status& status,
             const LogChunks* chunks = nullptr) const {
    if (!trace_) return;
    std::fprintf(stderr, "%s: %s", what, status.ToString().c_str());
    if (chunks != nullptr) {
      for (const auto& c : *chunks) {
        std::fprintf(stderr, " [%llu..%llu]", static_cast<unsigned long long>(c->first_seq()),
                     static_cast<unsigned long long>(c->last_seq()));
      }
    }
    std::fprintf(stderr, "\n");
  }

  const std::string dir_;
  const std::string wal_dir_;
  FixedClock clock_;
  const bool trace_ = std::getenv("PL_FUZZ_TRACE") != nullptr;
};

}  // namespace
}  // namespace pointledger::fuzz

namespace {

// One directory for the whole run. Never destroyed: libFuzzer may exit from
// any thread; at exit only the directory is removed (as frame_fuzz.cc does).
pointledger::fuzz::WalHarness* harness = nullptr;

void RemoveDir() {
  std::error_code ec;
  std::filesystem::remove_all(harness->dir(), ec);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (harness == nullptr) {
    harness = new pointledger::fuzz::WalHarness();
    std::atexit(RemoveDir);
  }
  harness->Run(std::span<const uint8_t>(data, size));
  return 0;
}
