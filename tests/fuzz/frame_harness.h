// The server's path for a client's bytes, without the sockets, for the frame
// fuzz target (tests/fuzz/frame_fuzz.cc) and its regression tests: frames are
// cut from the input as net/connection.cc cuts them, checked by
// VerifyRequestFrame, a Hello is checked against a config with three keys,
// reads are answered by net::Service, and batches are converted with
// TransactionFromWire, applied to a real ledger::Ledger and committed as the
// committer does. A request the connection would refuse ends the input (the
// server closes the connection).
//
// Oracles beyond "no crash, no sanitizer report": every answer the server
// builds must pass VerifyResponseFrame and convert back to what was sent,
// and the ledger must balance (TrialBalance) after every batch.
//
// The ledger lives in a directory under /dev/shm (fsync is free there) and
// is reused across inputs, so that state built by one input is there for the
// next; it is recreated every kRunsPerLedger inputs (and after a storage
// error) to keep it small. An input replayed on its own therefore starts
// from the setup state (Setup()); almost every crash reproduces that way,
// one that needed an earlier input's state may not.
//
// PL_FUZZ_TRACE=1 in the environment prints each request and result (to
// read what a crashing input does).
#ifndef POINTLEDGER_TESTS_FUZZ_FRAME_HARNESS_H_
#define POINTLEDGER_TESTS_FUZZ_FRAME_HARNESS_H_

#include <stdlib.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ledger/ledger.h"
#include "ledger/limits.h"
#include "ledger/status.h"
#include "net/committer.h"
#include "net/config.h"
#include "net/limits.h"
#include "net/service.h"
#include "net/wire.h"
#include "tests/fuzz/scratch_dir.h"

namespace pointledger::fuzz {

// The keys a Hello may present (the seeds use them).
inline constexpr std::string_view kAdminKey = "fuzz-admin";
inline constexpr std::string_view kPostKey = "fuzz-post";  // post + read, program "acme" only
inline constexpr std::string_view kReadKey = "fuzz-read";  // read only, every program

// 2026-01-01T00:00:00Z, as in tests/ledger.
inline constexpr int64_t kFuzzStartNs = int64_t{1'767'225'600} * ledger::kNanosPerSecond;

// The clock moves only when a request says so: by (request_id mod 2^20)
// seconds (up to ~12 days) before the request is handled, so the fuzzer
// controls time and lots expire, holds time out, locks end.
class StepClock final : public ledger::Clock {
 public:
  int64_t NowNs() override { return now_ns_; }
  void Reset() { now_ns_ = kFuzzStartNs; }
  void AdvanceForRequest(uint64_t request_id) {
    now_ns_ += static_cast<int64_t>(request_id & ((uint64_t{1} << 20) - 1)) *
               ledger::kNanosPerSecond;
  }

 private:
  int64_t now_ns_ = kFuzzStartNs;
};

class FrameHarness {
 public:
  static constexpr uint64_t kRunsPerLedger = 1000;
  // Small on purpose: a full map is a path worth reaching (server_busy).
  static constexpr uint64_t kMapSizeBytes = uint64_t{32} << 20;

  FrameHarness() {
    config_.keys.push_back(Key("admin", kAdminKey, ledger::Auth::Admin()));
    ledger::Auth post;
    post.scopes = ledger::kScopePost | ledger::kScopeRead;
    post.programs = {"acme"};
    config_.keys.push_back(Key("post", kPostKey, post));
    ledger::Auth read;
    read.scopes = ledger::kScopeRead;
    config_.keys.push_back(Key("read", kReadKey, read));
    dir_ = NewScratchDir();
    Reset();
  }

  ~FrameHarness() {
    Close();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  FrameHarness(const FrameHarness&) = delete;
  FrameHarness& operator=(const FrameHarness&) = delete;

  // Where the ledger lives (removed by the destructor).
  const std::string& dir() const { return dir_; }

  // Runs one input: the bytes one connection sends.
  void Run(std::span<const uint8_t> input) {
    if (needs_reset_ || ++runs_ % kRunsPerLedger == 0) Reset();
    key_ = nullptr;
    size_t pos = 0;
    while (input.size() - pos >= net::kFrameHeaderBytes) {
      const uint32_t length = net::DecodeFrameLength(input.data() + pos);
      // Over frame_bytes_max: request_too_large, and the connection closes.
      if (length > config_.limits.frame_bytes_max) return;
      // An incomplete frame: the connection waits for more that never comes.
      if (input.size() - pos - net::kFrameHeaderBytes < length) return;
      const size_t frame_bytes = net::kFrameHeaderBytes + length;
      // The connection hands the verifier an 8-aligned copy.
      aligned_.assign((frame_bytes + 7) / 8, 0);
      std::memcpy(aligned_.data(), input.data() + pos, frame_bytes);
      const std::span<const uint8_t> frame(reinterpret_cast<const uint8_t*>(aligned_.data()),
                                           frame_bytes);
      if (!HandleFrame(frame)) return;
      pos += frame_bytes;
    }
  }

 private:
  static net::ApiKey Key(std::string principal, std::string_view key, ledger::Auth auth) {
    net::ApiKey k;
    k.principal = std::move(principal);
    k.sha256 = net::Sha256(key);
    k.auth = std::move(auth);
    return k;
  }

  void Close() {
    service_.reset();
    committer_.reset();
    ledger_.reset();
  }

  void Reset() {
    Close();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
    clock_.Reset();
    ledger::Options options;
    options.dir = dir_;
    options.map_size_bytes = kMapSizeBytes;
    options.clock = &clock_;
    // Checkpoints by size only, so that they happen at the same inputs on
    // every run (the checkpointer is still its own thread).
    options.checkpoint_entries = 4096;
    options.checkpoint_interval_ms = int64_t{1} << 40;
    absl::StatusOr<std::unique_ptr<ledger::Ledger>> opened = ledger::Ledger::Open(options);
    if (!opened.ok()) {
      std::fprintf(stderr, "frame harness: cannot open a ledger in %s: %s\n", dir_.c_str(),
                   opened.status().ToString().c_str());
      std::abort();
    }
    ledger_ = *std::move(opened);
    committer_ = std::make_unique<net::Committer>(ledger_.get());  // never started
    service_ = std::make_unique<net::Service>(ledger_.get(), &config_, committer_.get(),
                                              &counters_);
    needs_reset_ = false;
    Setup();
    PL_CHECK(!needs_reset_);
  }

  // Two programs, a partner, members with points and a pending hold: state
  // that small mutations of a seed can reach into.
  void Setup() {
    auto tx = [](ledger::Kind kind, const std::string& program, const std::string& key) {
      ledger::Transaction t;
      t.kind = kind;
      t.program = program;
      t.id = ledger::TxIdFromKey(program, key);
      return t;
    };
    std::vector<ledger::Transaction> batch;
    for (const char* program : {"acme", "beta"}) {
      ledger::Transaction p = tx(ledger::Kind::kProgramCreate, program, "program-create");
      p.currency = "USD";
      p.point_value_micros = 5000;
      p.expiry_days = 365;
      p.lock_days = std::string_view(program) == "beta" ? 7 : 0;
      batch.push_back(p);
    }
    ledger::Transaction partner = tx(ledger::Kind::kPartnerCreate, "acme", "partner-create");
    partner.partner = "hotelco";
    partner.earn_price_micros = 9000;
    partner.redeem_price_micros = 7000;
    batch.push_back(partner);
    for (const char* member : {"alice", "bob"}) {
      ledger::Transaction earn = tx(ledger::Kind::kEarn, "acme", std::string("earn-") + member);
      earn.member = member;
      earn.points = 1000;
      batch.push_back(earn);
    }
    ledger::Transaction hold = tx(ledger::Kind::kHold, "acme", "hold-1");
    hold.member = "alice";
    hold.points = 100;
    hold.timeout_s = 300;
    batch.push_back(hold);
    const std::vector<ledger::Result> results = Apply(batch, ledger::Auth::Admin());
    for (const ledger::Result& r : results) PL_CHECK(r.code == ledger::Code::kOk);
  }

  // One frame; false where the connection would close.
  bool HandleFrame(std::span<const uint8_t> frame) {
    absl::StatusOr<const wire::Request*> verified = net::VerifyRequestFrame(frame);
    if (!verified.ok()) return false;
    const wire::Request& request = **verified;
    if (request.version() != 1) return false;
    clock_.AdvanceForRequest(request.request_id());
    if (trace_) {
      std::fprintf(stderr, "request %llu: %s\n",
                   static_cast<unsigned long long>(request.request_id()),
                   wire::EnumNameRequestBody(request.body_type()));
    }
    if (key_ == nullptr) {
      if (request.body_type() != wire::RequestBody::Hello) return false;
      fbb_.Clear();
      std::string why;
      key_ = service_->Hello(*request.body_as_Hello(), request.request_id(), &fbb_, &why);
      CheckResponse();
      return key_ != nullptr;
    }
    switch (request.body_type()) {
      case wire::RequestBody::Hello:
        return false;  // a second Hello
      case wire::RequestBody::Batch:
        return HandleBatch(*request.body_as_Batch());
      default:
        fbb_.Clear();
        service_->Read(request, *key_, &fbb_);
        CheckResponse();
        // The CLI's `expire` and the server's sweep post what CollectDue
        // finds: do it here too, so expire and hold_timeout are applied.
        if (request.body_type() == wire::RequestBody::CollectDueQuery) Sweep();
        return true;
    }
  }

  bool HandleBatch(const wire::Batch& body) {
    const auto* transactions = body.transactions();
    const size_t n = transactions == nullptr ? 0 : transactions->size();
    if (n == 0 || n > config_.limits.batch_transactions_max) return false;
    batch_.resize(n);
    for (size_t i = 0; i < n; ++i) {
      const wire::Transaction& in = *transactions->Get(static_cast<flatbuffers::uoffset_t>(i));
      if (!net::TransactionFromWire(in, &batch_[i]).ok()) return false;
    }
    const std::vector<ledger::Result> results = Apply(batch_, key_->auth);
    if (needs_reset_) return true;  // answered server_busy
    PL_CHECK(results.size() == n);
    for (size_t i = 0; trace_ && i < n; ++i) {
      std::fprintf(stderr, "  %s: %s\n", std::string(ledger::KindName(batch_[i].kind)).c_str(),
                   std::string(ledger::CodeName(results[i].code)).c_str());
    }
    // The answer, as the connection builds it, must read back the same.
    fbb_.Clear();
    std::vector<flatbuffers::Offset<wire::Result>> offsets;
    for (const ledger::Result& r : results) offsets.push_back(net::ResultToWire(fbb_, r));
    const auto vector = fbb_.CreateVector(offsets);
    net::FinishResponse(fbb_, 0, wire::ConnError::none, "", wire::ResponseBody::BatchResult,
                        wire::CreateBatchResult(fbb_, vector).Union());
    const wire::Response& response = CheckResponse();
    const auto* back = response.body_as_BatchResult()->results();
    PL_CHECK(back != nullptr && back->size() == n);
    for (size_t i = 0; i < n; ++i) {
      ledger::Result r;
      PL_CHECK(net::ResultFromWire(*back->Get(static_cast<flatbuffers::uoffset_t>(i)), &r).ok());
      PL_CHECK(r == results[i]);
    }
    CheckBalanced();
    return true;
  }

  // BeginWrite + Apply + Commit, as the committer does for a group of one.
  // A storage error (the map is full) is the server's server_busy: the
  // ledger is recreated before the next input.
  std::vector<ledger::Result> Apply(std::span<const ledger::Transaction> batch,
                                    const ledger::Auth& auth) {
    std::vector<ledger::Result> results;
    absl::StatusOr<ledger::Ledger::Writer> writer = ledger_->BeginWrite();
    if (!writer.ok()) {
      PL_CHECK(writer.status().code() == absl::StatusCode::kResourceExhausted);
      needs_reset_ = true;
      return results;
    }
    const absl::Status applied = writer->Apply(batch, auth, &results);
    const absl::Status committed = std::move(*writer).Commit();
    if (!applied.ok() || !committed.ok()) {
      // Only a full map may fail here; anything else is a finding.
      PL_CHECK(applied.ok() || applied.code() == absl::StatusCode::kResourceExhausted);
      PL_CHECK(committed.ok() || committed.code() == absl::StatusCode::kResourceExhausted);
      needs_reset_ = true;
      results.clear();
    }
    return results;
  }

  void Sweep() {
    absl::StatusOr<std::vector<ledger::Transaction>> due = ledger_->CollectDue(clock_.NowNs(), 256);
    PL_CHECK(due.ok());
    if (due->empty()) return;
    const std::vector<ledger::Result> results = Apply(*due, ledger::Auth::Admin());
    for (size_t i = 0; trace_ && i < results.size(); ++i) {
      std::fprintf(stderr, "  sweep %s: %s\n", std::string(ledger::KindName((*due)[i].kind)).c_str(),
                   std::string(ledger::CodeName(results[i].code)).c_str());
    }
    if (!needs_reset_) CheckBalanced();
  }

  // The response in fbb_ must pass the client's verifier.
  const wire::Response& CheckResponse() {
    response_.assign((fbb_.GetSize() + 7) / 8, 0);
    std::memcpy(response_.data(), fbb_.GetBufferPointer(), fbb_.GetSize());
    absl::StatusOr<const wire::Response*> r = net::VerifyResponseFrame(
        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(response_.data()),
                                 fbb_.GetSize()));
    PL_CHECK(r.ok());
    return **r;
  }

  void CheckBalanced() {
    absl::StatusOr<std::vector<ledger::Discrepancy>> found = ledger_->TrialBalance();
    PL_CHECK(found.ok());
    for (const ledger::Discrepancy& d : *found) {
      std::fprintf(stderr, "trial balance: %s at %s: expected %s, found %s\n", d.what.c_str(),
                   d.where.c_str(), d.expected.c_str(), d.found.c_str());
    }
    PL_CHECK(found->empty());
  }

  std::string dir_;
  StepClock clock_;
  net::ServerConfig config_;
  net::ConnectionCounters counters_;
  std::unique_ptr<ledger::Ledger> ledger_;
  std::unique_ptr<net::Committer> committer_;
  std::unique_ptr<net::Service> service_;
  uint64_t runs_ = 0;
  bool needs_reset_ = false;
  const bool trace_ = std::getenv("PL_FUZZ_TRACE") != nullptr;
  std::shared_ptr<const net::ApiKey> key_;
  std::vector<uint64_t> aligned_;
  std::vector<uint64_t> response_;
  std::vector<ledger::Transaction> batch_;
  flatbuffers::FlatBufferBuilder fbb_;
};

}  // namespace pointledger::fuzz

#endif  // POINTLEDGER_TESTS_FUZZ_FRAME_HARNESS_H_
