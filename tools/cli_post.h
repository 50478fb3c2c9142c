// The commands that post transactions: one from flags, many from a
// JSON-lines file (`post --file`), and `expire`.
#ifndef POINTLEDGER_TOOLS_CLI_POST_H_
#define POINTLEDGER_TOOLS_CLI_POST_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "ledger/ledger.h"
#include "ledger/limits.h"
#include "net/client.h"
#include "tools/cli_fields.h"
#include "tools/cli_read.h"

namespace pointledger::tools {

// At least the bytes a transaction takes in a request frame (FlatBuffers:
// its strings, a fixed part and padding), so that batches cut by it fit the
// server's frame limit.
size_t WireBytesBound(const ledger::Transaction& tx);
// What a request frame needs besides its transactions, at most.
inline constexpr size_t kBatchFrameOverheadBytes = 256;

// Cuts a stream of transactions into batches of at most `batch_max`
// transactions and `bytes_max` bytes on the wire (WireBytesBound), never
// splitting a linked chain (a run of linked:true plus the transaction that
// ends it) across two batches. A chain that ends the input while still open
// (the last transaction has linked:true) is sent as it is; the server then
// answers linked_chain_open (SPEC §4).
class ChainBatcher {
 public:
  explicit ChainBatcher(size_t batch_max, size_t bytes_max = SIZE_MAX)
      : batch_max_(batch_max), bytes_max_(bytes_max) {}

  // Adds one transaction; appends the batches that are complete to *ready.
  // InvalidArgument if a chain grows longer than a batch (in transactions
  // or bytes).
  absl::Status Add(PostLine line, std::vector<std::vector<PostLine>>* ready);
  // Flushes what is left (including an open chain).
  void Finish(std::vector<std::vector<PostLine>>* ready);

 private:
  void Flush(std::vector<std::vector<PostLine>>* ready);
  void TakeChain();  // the chain, complete, joins the batch

  size_t batch_max_;
  size_t bytes_max_;
  std::vector<PostLine> batch_;
  size_t batch_bytes_ = 0;
  std::vector<PostLine> chain_;
  size_t chain_bytes_ = 0;
};

// Reads every line of `path` (or, when `stdin_text` is given, of that text:
// stdin or a file that can be read only once, already read whole) and
// checks it parses and that no chain is longer than a
// batch of `batch_max` transactions and `bytes_max` bytes (the server's
// limits, from its Hello answer), without sending anything. Returns the
// number of transactions, or InvalidArgument "line N: ..." / NotFound for a
// missing file.
absl::StatusOr<uint64_t> ValidatePostFile(const std::string& path, const std::string* stdin_text,
                                          size_t batch_max = ledger::kBatchTransactionsMax,
                                          size_t bytes_max = size_t{4} << 20);

// Sends the file in batches, keeping up to `in_flight` batches pipelined,
// and prints one result per transaction in input order. Exit code: 0 if
// every transaction committed (or was a duplicate of a commit), 1 if any
// was rejected, 2 if the connection failed (the message says how many were
// answered; re-running the same file is safe).
struct PostFileOptions {
  size_t batch_max = ledger::kBatchTransactionsMax;  // and the server's, if smaller
  size_t bytes_max = size_t{4} << 20;                // set from the server's Hello answer
  int in_flight = 4;
};
int RunPostFile(net::Client& client, const Output& o, const std::string& path,
                const std::string* stdin_text, const PostFileOptions& options = {});

// Posts one transaction and prints its result.
int RunPostOne(net::Client& client, const Output& o, std::string_view key, const ledger::Transaction& tx);

// `pointledger expire --as-of T`: collects the expiries due at as_of_ns and
// posts them until none are left, then the hold timeouts due at
// min(as_of_ns, now_ns - 5 s) — never a hold whose deadline the server's
// clock may not have reached, since a premature hold_timeout would be
// recorded as hold_not_pending under the hold's one derived timeout id.
// Prints how many points expired.
int RunExpire(net::Client& client, const Output& o, int64_t as_of_ns, int64_t now_ns);

}  // namespace pointledger::tools

#endif  // POINTLEDGER_TOOLS_CLI_POST_H_
