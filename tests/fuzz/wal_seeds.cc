// Writes the wal target's seed corpus (tests/fuzz/corpus/wal/) from a real
// write-ahead log: a ledger with 16 KiB segments commits a few batches of
// client kinds, then its frames are read back and written in the target's
// input format (tests/fuzz/wal_harness.h), whole and in variations, and
// the segment file as it is.
//
//   build-fuzz/fuzz/wal_seeds tests/fuzz/corpus/wal
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ledger/ledger.h"
#include "ledger/limits.h"
#include "ledger/status.h"
#include "tests/fuzz/scratch_dir.h"
#include "tests/fuzz/wal_harness.h"

namespace pointledger::fuzz {
namespace {

using ledger::Kind;
using ledger::Transaction;

class FixedClock final : public ledger::Clock {
 public:
  int64_t NowNs() override { return int64_t{1'767'225'600} * ledger::kNanosPerSecond; }
};

struct Frame {
  uint32_t flags = 0;
  uint64_t first_seq = 0;
  std::string payload;
};

struct Segment {
  uint64_t number = 0;
  std::string bytes;           // the file, trailing zeros dropped
  std::vector<Frame> frames;   // those that check, in order
};

Transaction Tx(Kind kind, const char* program, const std::string& key) {
  Transaction t;
  t.kind = kind;
  t.program = program;
  t.id = ledger::TxIdFromKey(program, key);
  return t;
}

Transaction Points(Kind kind, const char* member, uint64_t points, const std::string& key) {
  Transaction t = Tx(kind, "acme", key);
  t.member = member;
  t.points = points;
  return t;
}

std::vector<std::vector<Transaction>> Batches() {
  std::vector<Transaction> setup;
  Transaction program = Tx(Kind::kProgramCreate, "acme", "program-create");
  program.currency = "USD";
  program.point_value_micros = 5000;
  program.expiry_days = 365;
  setup.push_back(program);
  Transaction partner = Tx(Kind::kPartnerCreate, "acme", "partner-create");
  partner.partner = "hotelco";
  partner.earn_price_micros = 9000;
  partner.redeem_price_micros = 7000;
  setup.push_back(partner);
  setup.push_back(Points(Kind::kEarn, "alice", 1000, "earn-alice"));
  setup.push_back(Points(Kind::kEarn, "bob", 500, "earn-bob"));

  std::vector<Transaction> kinds;
  Transaction hold = Points(Kind::kHold, "alice", 100, "hold-1");
  hold.timeout_s = 300;
  kinds.push_back(hold);
  Transaction capture = Tx(Kind::kCapture, "acme", "cap-1");
  capture.ref = ledger::TxIdFromKey("acme", "hold-1");
  capture.points = 60;
  kinds.push_back(capture);
  Transaction redeem = Points(Kind::kRedeem, "bob", 50, "redeem-bob");
  redeem.partner = "hotelco";
  kinds.push_back(redeem);
  Transaction transfer = Points(Kind::kTransfer, "alice", 10, "gift-1");
  transfer.member2 = "bob";
  kinds.push_back(transfer);
  Transaction referral = Points(Kind::kReferral, "alice", 50, "ref-carol");
  referral.member2 = "carol";
  referral.points2 = 25;
  kinds.push_back(referral);
  Transaction adjust = Tx(Kind::kAdjust, "acme", "adj-1");
  adjust.member = "bob";
  adjust.delta = -20;
  adjust.reason = "service recovery";
  kinds.push_back(adjust);
  Transaction reverse = Tx(Kind::kReverse, "acme", "refund-1");
  reverse.ref = ledger::TxIdFromKey("acme", "earn-bob");
  reverse.points = 60;
  reverse.clawback_partial = true;
  kinds.push_back(reverse);
  kinds.push_back(Points(Kind::kRedeem, "carol", 1'000'000, "too-much"));  // refused, recorded

  std::vector<Transaction> last = {Points(Kind::kEarn, "erin", 3, "last")};
  return {setup, kinds, last};
}

// The frames of one segment file that check, as the reader takes them.
Segment ReadSegment(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  Segment s;
  s.number = std::stoull(path.stem().string());
  auto le = [&](size_t at, size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v |= uint64_t{static_cast<uint8_t>(bytes[at + i])} << (8 * i);
    return v;
  };
  PL_CHECK(bytes.size() >= kWalSegmentHeaderBytes && le(0, 4) == kWalSegmentMagic);
  const uint64_t salt = le(16, 8);
  size_t at = kWalSegmentHeaderBytes;
  while (bytes.size() - at >= kWalFrameHeaderBytes && le(at, 4) == kWalFrameMagic &&
         le(at + 8, 8) == s.number) {
    const size_t size = le(at + 24, 4);
    if (size > bytes.size() - at - kWalFrameHeaderBytes) break;
    std::string salt_bytes;
    AppendLe(&salt_bytes, salt);
    const std::string_view view(bytes);
    const uint32_t crc = WalCrc(WalCrc(WalCrc(0, salt_bytes), view.substr(at, 28)),
                                view.substr(at + kWalFrameHeaderBytes, size));
    if (crc != le(at + 28, 4)) break;
    s.frames.push_back({static_cast<uint32_t>(le(at + 4, 4)), le(at + 16, 8),
                        bytes.substr(at + kWalFrameHeaderBytes, size)});
    at += kWalFrameHeaderBytes + size;
  }
  bytes.resize(std::max(at, bytes.find_last_not_of('\0') + 1));
  s.bytes = std::move(bytes);
  return s;
}

std::vector<Segment> WriteLog(const std::string& dir) {
  FixedClock clock;
  ledger::Options options;
  options.dir = dir;
  options.map_size_bytes = uint64_t{16} << 20;
  options.clock = &clock;
  options.checkpoint_on_close = false;  // the log stays in the segments
  options.checkpoint_entries = uint64_t{1} << 30;
  options.checkpoint_interval_ms = int64_t{1} << 40;
  options.wal_segment_bytes = kWalMinSegmentBytes;
  {
    absl::StatusOr<std::unique_ptr<ledger::Ledger>> ledger = ledger::Ledger::Open(options);
    PL_CHECK(ledger.ok());
    for (const std::vector<Transaction>& batch : Batches()) {
      absl::StatusOr<ledger::Ledger::Writer> writer = (*ledger)->BeginWrite();
      PL_CHECK(writer.ok());
      std::vector<ledger::Result> results;
      PL_CHECK(writer->Apply(batch, ledger::Auth::Admin(), &results).ok());
      PL_CHECK(std::move(*writer).Commit().ok());
    }
  }
  std::vector<std::filesystem::path> paths;
  for (const auto& e : std::filesystem::directory_iterator(dir + "/wal")) paths.push_back(e.path());
  std::sort(paths.begin(), paths.end());
  std::vector<Segment> segments;
  for (const auto& p : paths) {
    Segment s = ReadSegment(p);
    if (!s.frames.empty()) segments.push_back(std::move(s));
  }
  return segments;
}

// What a seed holds: the groups (one frame each, as the ledger wrote
// them), the second cut in two across segments 1 and 2 (the first segment
// filled), as a group that did not fit is.
struct Layout {
  uint8_t after_seq = 0;
  Header first_header = Header::kChecks;
  bool skip_number = false;         // segment 2 is numbered 3
  std::optional<size_t> bad_frame;  // this frame's CRC does not check
  bool drop_first_group = false;
};

std::string AsInput(const std::vector<Frame>& groups, const Layout& layout) {
  PL_CHECK(groups.size() >= 3);
  WalInputWriter w(layout.after_seq, 1, layout.first_header, End::kMinSize);
  size_t n = 0;
  auto frame = [&](uint32_t flags, const Frame& g, std::string_view payload) {
    PL_CHECK(g.first_seq < 0xf0);
    w.Frame(flags, static_cast<uint8_t>(g.first_seq), payload, layout.bad_frame != n++);
  };
  if (!layout.drop_first_group) frame(3, groups[0], groups[0].payload);
  const std::string_view second = groups[1].payload;
  frame(1, groups[1], second.substr(0, second.size() / 2));
  w.NextSegment(End::kFilled, layout.skip_number, Header::kChecks);
  frame(2, groups[1], second.substr(second.size() / 2));
  for (size_t i = 2; i < groups.size(); ++i) frame(3, groups[i], groups[i].payload);
  return w.bytes();
}

bool Write(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
  return static_cast<bool>(out.flush());
}

int WriteAll(const std::string& corpus) {
  const std::string dir = NewScratchDir();
  const std::vector<Segment> segments = WriteLog(dir);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  // Every group fits in the first segment, one frame each.
  PL_CHECK(segments.size() == 1 && segments[0].number == 1 && segments[0].frames.size() >= 3);
  const std::vector<Frame>& groups = segments[0].frames;
  for (const Frame& g : groups) PL_CHECK(g.flags == 3);
  const uint8_t first_group_last_seq = static_cast<uint8_t>(groups[1].first_seq - 1);

  bool ok = true;
  auto write = [&](const char* name, const std::string& bytes) {
    ok = Write(corpus + "/" + name, bytes) && ok;
  };
  // Everything from seq 1: recovery, then the ledger's replay.
  write("all_groups", AsInput(groups, {}));
  // The log environment has the first group already.
  write("after_first_group", AsInput(groups, {.after_seq = first_group_last_seq}));
  // The first group is gone, and the log environment does not have it: a gap.
  write("gap", AsInput(groups, {.drop_first_group = true}));
  // A damaged frame before good ones (DataLoss), and a torn last one (dropped).
  write("damaged_first_frame", AsInput(groups, {.bad_frame = 0}));
  write("torn_last_frame", AsInput(groups, {.bad_frame = groups.size()}));
  // The group cut in two is not joined across a number skipped.
  write("skipped_number", AsInput(groups, {.skip_number = true}));
  // The first segment's header as a crash may leave it.
  write("header_zeros", AsInput(groups, {.first_header = Header::kZeros}));
  write("header_other_number", AsInput(groups, {.first_header = Header::kOtherNumber}));
  // One group in a file of its own, then the raw bytes of a torn frame.
  write("one_group_then_raw",
        WalInputWriter(0, 1, Header::kChecks, End::kOddSize)
            .Frame(3, static_cast<uint8_t>(groups[0].first_seq), groups[0].payload)
            .Raw(std::string("PLW1\x03\0\0\0", 8) + std::string(20, '\x01'))
            .bytes());
  // The segment file as the writer left it (its own salt: its frames check).
  write("raw_segment", std::string({'\0', '\x01'}) + segments[0].bytes);
  // Every group whole, its records' hashes made by the harness: a changed
  // record reaches the engine's replay.
  WalInputWriter forged(0, 1, Header::kChecks, End::kMinSize, /*forged=*/true);
  for (const Frame& g : groups) forged.Frame(3, static_cast<uint8_t>(g.first_seq), g.payload);
  write("forged_chain", forged.bytes());
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace pointledger::fuzz

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: wal_seeds CORPUS_DIR\n");
    return 2;
  }
  return pointledger::fuzz::WriteAll(argv[1]);
}
