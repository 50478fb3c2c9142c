// libFuzzer target: the input is a `pointledger post --file` file. Each line
// goes through ParsePostLine (tools/cli_fields.h) and the parsed
// transactions through the ChainBatcher, as the CLI sends them.
//
// Oracles beyond "no crash, no sanitizer report": ValidatePostFile agrees
// with the line-by-line parse; the batcher keeps every transaction once, in
// order, never splits a linked chain and never makes a batch too big; every
// parsed transaction survives the wire (TransactionToWire, the server's
// VerifyRequestFrame, TransactionFromWire) unchanged; the --json result line
// for it is JSON that names the same id.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ledger/status.h"
#include "net/wire.h"
#include "nlohmann/json.hpp"
#include "tools/cli_fields.h"
#include "tools/cli_format.h"
#include "tools/cli_post.h"

namespace pointledger::tools {
namespace {

// Small, so that inputs of a few lines fill batches and cut chains.
constexpr size_t kFuzzBatchMax = 4;

void CheckWireRoundTrip(const ledger::Transaction& tx) {
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<flatbuffers::Offset<wire::Transaction>> txs = {net::TransactionToWire(fbb, tx)};
  const auto batch = wire::CreateBatch(fbb, fbb.CreateVector(txs));
  net::FinishRequest(fbb, 1, wire::RequestBody::Batch, batch.Union());
  std::vector<uint64_t> aligned((fbb.GetSize() + 7) / 8);
  std::memcpy(aligned.data(), fbb.GetBufferPointer(), fbb.GetSize());
  absl::StatusOr<const wire::Request*> request = net::VerifyRequestFrame(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(aligned.data()), fbb.GetSize()));
  PL_CHECK(request.ok());
  const auto* back = (*request)->body_as_Batch()->transactions();
  PL_CHECK(back != nullptr && back->size() == 1);
  ledger::Transaction out;
  PL_CHECK(net::TransactionFromWire(*back->Get(0), &out).ok());
  PL_CHECK(out == tx);
}

void CheckResultJson(const PostLine& line) {
  ledger::Result ok;
  ok.seq = 1;
  ok.timestamp_ns = 1'767'225'600'000'000'000;
  const std::string text = ResultJson(line.key, line.tx.kind, ok);
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  PL_CHECK(!j.is_discarded());
  PL_CHECK(j.is_object() && j.contains("id") && j["id"].is_string());
  // The key came from a JSON string, so it is valid UTF-8 and echoed as is.
  PL_CHECK(j["id"].get<std::string>() == line.key);
}

void CheckBatches(const std::vector<std::vector<PostLine>>& batches,
                  const std::vector<PostLine>& parsed) {
  size_t next = 0;
  for (const std::vector<PostLine>& batch : batches) {
    PL_CHECK(!batch.empty() && batch.size() <= kFuzzBatchMax);
    // A batch ends a chain unless it holds the input's last transaction
    // (an open chain at the end is sent as it is).
    for (const PostLine& p : batch) {
      PL_CHECK(next < parsed.size() && p.line_number == parsed[next].line_number);
      ++next;
    }
    PL_CHECK(!batch.back().tx.linked || next == parsed.size());
  }
  PL_CHECK(next == parsed.size());
}

void Run(std::string_view text) {
  std::vector<PostLine> parsed;
  absl::Status first_error;
  uint64_t line_number = 0;
  size_t pos = 0;
  // As the CLI reads stdin's text: lines end at '\n'; blank lines are skipped.
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_number;
    if (IsBlankLine(line)) continue;
    absl::StatusOr<PostLine> p = ParsePostLine(line, line_number);
    if (!p.ok()) {
      PL_CHECK(p.status().code() == absl::StatusCode::kInvalidArgument);
      if (first_error.ok()) first_error = p.status();
      continue;
    }
    PL_CHECK(p->line_number == line_number);
    CheckWireRoundTrip(p->tx);
    CheckResultJson(*p);
    parsed.push_back(*std::move(p));
  }

  ChainBatcher batcher(kFuzzBatchMax);
  std::vector<std::vector<PostLine>> batches;
  absl::Status batched;
  for (const PostLine& p : parsed) {
    batched = batcher.Add(p, &batches);
    if (!batched.ok()) break;
  }
  if (batched.ok()) {
    batcher.Finish(&batches);
    CheckBatches(batches, parsed);
  }

  const std::string stdin_text(text);
  absl::StatusOr<uint64_t> validated = ValidatePostFile("-", &stdin_text, kFuzzBatchMax);
  if (!first_error.ok() || !batched.ok() || parsed.empty()) {
    PL_CHECK(!validated.ok() && validated.status().code() == absl::StatusCode::kInvalidArgument);
  } else {
    PL_CHECK(validated.ok() && *validated == parsed.size());
  }
}

}  // namespace
}  // namespace pointledger::tools

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  pointledger::tools::Run(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
