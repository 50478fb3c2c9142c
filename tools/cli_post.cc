#include "tools/cli_post.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>

#include "flatbuffers/flatbuffers.h"
#include "ledger/status.h"
#include "net/wire.h"
#include "tools/cli_format.h"
#include "tools/cli_time.h"

namespace pointledger::tools {

using ledger::Code;
using ledger::Kind;

// ---------------------------------------------------------------------------
// Batching.

size_t WireBytesBound(const ledger::Transaction& tx) {
  // Its own encoding, alone in a builder (its vtable with it, which a batch
  // may share), plus the batch vector's offset to it and alignment: never
  // less than it adds to a request. It was a guess of 320 bytes plus 8 a
  // string, three times a small earn's size: with a small frame_bytes_max
  // a linked chain of two small transactions could not be posted (found
  // by a conformance test, session 33).
  thread_local flatbuffers::FlatBufferBuilder fbb(1024);
  fbb.Clear();
  net::TransactionToWire(fbb, tx);
  return fbb.GetSize() + 16;
}

absl::Status ChainBatcher::Add(PostLine line, std::vector<std::vector<PostLine>>* ready) {
  const bool ends_chain = !line.tx.linked;
  const uint64_t line_number = line.line_number;
  chain_bytes_ += WireBytesBound(line.tx);
  chain_.push_back(std::move(line));
  const size_t room = bytes_max_ > kBatchFrameOverheadBytes ? bytes_max_ - kBatchFrameOverheadBytes : 0;
  if (chain_.size() > batch_max_) {
    return absl::InvalidArgumentError(
        StrCat("line ", line_number, ": a linked chain starting at line ", chain_.front().line_number,
               " is longer than a batch (", batch_max_, " transactions); a chain must fit in one request"));
  }
  if (chain_bytes_ > room) {
    // One line alone is not a chain (found in review, session 30: an
    // unlinked line was called "a linked chain starting at line 1").
    if (chain_.size() == 1) {
      return absl::InvalidArgumentError(
          StrCat("line ", line_number, ": the transaction is larger than a request can be (up to ", chain_bytes_,
                 " bytes; the server's frame_bytes_max is ", bytes_max_, ")"));
    }
    return absl::InvalidArgumentError(
        StrCat("line ", line_number, ": a linked chain starting at line ", chain_.front().line_number,
               " is larger than a request can be (up to ", chain_bytes_, " bytes; the server takes ",
               bytes_max_, "); a chain must fit in one request"));
  }
  if (!ends_chain) return absl::OkStatus();
  if (batch_.size() + chain_.size() > batch_max_ || batch_bytes_ + chain_bytes_ > room) Flush(ready);
  TakeChain();
  if (batch_.size() == batch_max_) Flush(ready);
  return absl::OkStatus();
}

void ChainBatcher::Finish(std::vector<std::vector<PostLine>>* ready) {
  if (!chain_.empty()) {
    // An open chain at the end: sent as it is, the server says linked_chain_open.
    const size_t room = bytes_max_ > kBatchFrameOverheadBytes ? bytes_max_ - kBatchFrameOverheadBytes : 0;
    if (batch_.size() + chain_.size() > batch_max_ || batch_bytes_ + chain_bytes_ > room) Flush(ready);
    TakeChain();
  }
  Flush(ready);
}

void ChainBatcher::TakeChain() {
  for (PostLine& p : chain_) batch_.push_back(std::move(p));
  batch_bytes_ += chain_bytes_;
  chain_.clear();
  chain_bytes_ = 0;
}

void ChainBatcher::Flush(std::vector<std::vector<PostLine>>* ready) {
  if (batch_.empty()) return;
  ready->push_back(std::move(batch_));
  batch_.clear();
  batch_bytes_ = 0;
}

namespace {

// ---------------------------------------------------------------------------
// Reading lines from a file or from stdin's text.

class LineSource {
 public:
  ~LineSource() {
    if (file_ != nullptr) std::fclose(file_);
    std::free(buf_);
  }

  static absl::StatusOr<std::unique_ptr<LineSource>> Open(const std::string& path,
                                                          const std::string* stdin_text) {
    auto source = std::make_unique<LineSource>();
    if (path == "-" || stdin_text != nullptr) {
      PL_CHECK(stdin_text != nullptr);
      source->text_ = *stdin_text;
      return source;
    }
    source->file_ = std::fopen(path.c_str(), "r");
    if (source->file_ == nullptr) {
      // A wrong --file is a usage error (with the help line), as a wrong --csv is.
      return absl::InvalidArgumentError(StrCat("--file ", path, ": ", std::strerror(errno)));
    }
    return source;
  }

  // The next line without its '\n'; false at the end.
  bool Next(std::string_view* line) {
    ++line_number_;
    if (file_ == nullptr) {
      if (pos_ >= text_.size()) return false;
      size_t end = text_.find('\n', pos_);
      if (end == std::string_view::npos) end = text_.size();
      *line = text_.substr(pos_, end - pos_);
      pos_ = end + 1;
      return true;
    }
    const ssize_t n = getline(&buf_, &cap_, file_);
    if (n < 0) {
      if (std::ferror(file_)) read_errno_ = errno;  // not the end: a read that failed
      return false;
    }
    *line = std::string_view(buf_, static_cast<size_t>(n));
    if (!line->empty() && line->back() == '\n') line->remove_suffix(1);
    return true;
  }

  uint64_t line_number() const { return line_number_; }
  // After Next returned false: whether it was a read error, not the end.
  absl::Status status(const std::string& path) const {
    if (read_errno_ == 0) return absl::OkStatus();
    return absl::DataLossError(StrCat("--file ", path, ": reading line ", line_number_, ": ",
                                      std::strerror(read_errno_)));
  }

 private:
  std::FILE* file_ = nullptr;
  int read_errno_ = 0;
  char* buf_ = nullptr;
  size_t cap_ = 0;
  std::string_view text_;
  size_t pos_ = 0;
  uint64_t line_number_ = 0;
};

// A batch on the wire, with what is needed to print its results.
struct SentBatch {
  std::vector<ledger::Transaction> txs;
  std::vector<std::string> keys;
  uint64_t first_line = 0, last_line = 0;  // of the input
};

class ResultPrinter {
 public:
  explicit ResultPrinter(const Output& o) : o_(o) {}

  void Print(std::string_view key, Kind kind, const ledger::Result& r) {
    line_ = o_.json ? ResultJson(key, kind, r) : ResultText(key, kind, r);
    line_.push_back('\n');
    std::fwrite(line_.data(), 1, line_.size(), o_.out);
    ++answered_;
    if (r.code != Code::kOk) ++rejected_;
    if (r.code == Code::kOk && r.duplicate) ++duplicates_;
  }

  uint64_t answered() const { return answered_; }
  uint64_t rejected() const { return rejected_; }
  uint64_t duplicates() const { return duplicates_; }

 private:
  const Output& o_;
  std::string line_;
  uint64_t answered_ = 0;
  uint64_t rejected_ = 0;
  uint64_t duplicates_ = 0;
};

// The next answer, for window->front(). A transport error leaves that batch
// in flight (*lost: nothing more will be read); a batch the server refused
// (server_busy ...) is done, nothing of it applied, and its lines print
// nothing: the error says why, and later batches' answers are still read.
absl::Status ReceiveOne(net::Client& client, std::deque<SentBatch>* window, ResultPrinter* printer,
                        bool* lost) {
  absl::StatusOr<net::Client::BatchAnswer> answer = client.Receive();
  if (!answer.ok()) {
    *lost = true;
    return answer.status();
  }
  const SentBatch sent = std::move(window->front());
  window->pop_front();
  if (absl::IsDataLoss(answer->status)) {
    // An answer that does not read right: the batch may well be committed,
    // and the stream is not to be believed further.
    *lost = true;
    return absl::Status(answer->status.code(),
                        StrCat(answer->status.message(), " (the batch of input lines ", sent.first_line, "-",
                               sent.last_line, ": it may or may not be committed)"));
  }
  if (!answer->status.ok()) {
    return absl::Status(answer->status.code(),
                        StrCat(answer->status.message(), " (the batch of input lines ", sent.first_line, "-",
                               sent.last_line, ", not applied)"));
  }
  if (answer->results.size() != sent.txs.size()) {
    *lost = true;
    return absl::DataLossError(StrCat("the server answered ", answer->results.size(),
                                      " results for a batch of ", sent.txs.size()));
  }
  for (size_t i = 0; i < sent.txs.size(); ++i) {
    printer->Print(sent.keys[i], sent.txs[i].kind, answer->results[i]);
  }
  return absl::OkStatus();
}

absl::Status SendAll(net::Client& client, LineSource& source, const PostFileOptions& options,
                     ResultPrinter* printer) {
  ChainBatcher batcher(options.batch_max, options.bytes_max);
  std::deque<SentBatch> window;
  std::vector<std::vector<PostLine>> ready;
  bool lost = false;
  auto send_ready = [&]() -> absl::Status {
    for (std::vector<PostLine>& batch : ready) {
      while (window.size() >= static_cast<size_t>(options.in_flight)) {
        PL_RETURN_IF_ERROR(ReceiveOne(client, &window, printer, &lost));
      }
      SentBatch sent;
      sent.first_line = batch.front().line_number;
      sent.last_line = batch.back().line_number;
      sent.txs.reserve(batch.size());
      sent.keys.reserve(batch.size());
      for (PostLine& p : batch) {
        sent.txs.push_back(std::move(p.tx));
        sent.keys.push_back(std::move(p.key));
      }
      PL_RETURN_IF_ERROR(client.Send(sent.txs).status());
      window.push_back(std::move(sent));
    }
    ready.clear();
    return absl::OkStatus();
  };
  auto send_all = [&]() -> absl::Status {
    std::string_view line;
    while (source.Next(&line)) {
      if (IsBlankLine(line)) continue;
      PL_ASSIGN_OR_RETURN(PostLine parsed, ParsePostLine(line, source.line_number()));
      PL_RETURN_IF_ERROR(batcher.Add(std::move(parsed), &ready));
      PL_RETURN_IF_ERROR(send_ready());
    }
    // A read error is not the end of the file: the rest would go unsent.
    PL_RETURN_IF_ERROR(source.status("(input)"));
    batcher.Finish(&ready);
    return send_ready();
  };
  absl::Status first = send_all();
  // Answers to what was sent are printed even when sending stopped early
  // (a refused batch stops it): those transactions may be committed, and
  // their lines must say so. Past a refused batch the later ones are still
  // answered (found in review, session 30: the first error stopped the
  // reading, and committed batches went unprinted).
  while (!window.empty() && !lost) {
    const absl::Status received = ReceiveOne(client, &window, printer, &lost);
    if (first.ok()) first = received;
  }
  return first;
}

}  // namespace

absl::StatusOr<uint64_t> ValidatePostFile(const std::string& path, const std::string* stdin_text,
                                          size_t batch_max, size_t bytes_max) {
  PL_ASSIGN_OR_RETURN(std::unique_ptr<LineSource> source, LineSource::Open(path, stdin_text));
  uint64_t count = 0;
  // The same batcher as the send, so that what passes here is sent.
  ChainBatcher batcher(batch_max, bytes_max);
  std::vector<std::vector<PostLine>> ready;
  std::string_view line;
  while (source->Next(&line)) {
    if (IsBlankLine(line)) continue;
    PL_ASSIGN_OR_RETURN(PostLine parsed, ParsePostLine(line, source->line_number()));
    ++count;
    PL_RETURN_IF_ERROR(batcher.Add(std::move(parsed), &ready));
    ready.clear();
  }
  PL_RETURN_IF_ERROR(source->status(path));
  if (count == 0) {
    return absl::InvalidArgumentError(StrCat("--file ", path, ": no transactions (one JSON object a line)"));
  }
  return count;
}

int RunPostFile(net::Client& client, const Output& o, const std::string& path,
                const std::string* stdin_text, const PostFileOptions& options) {
  absl::StatusOr<std::unique_ptr<LineSource>> source = LineSource::Open(path, stdin_text);
  if (!source.ok()) return ReportError(o, source.status());
  ResultPrinter printer(o);
  PostFileOptions effective = options;
  // A server configured for smaller batches or frames says so in its Hello answer.
  effective.batch_max = std::min<size_t>(options.batch_max, client.batch_transactions_max());
  effective.bytes_max = client.frame_bytes_max();
  const absl::Status sent = SendAll(client, **source, effective, &printer);
  std::fflush(o.out);
  if (!sent.ok()) {
    return ReportError(o, sent,
                       StrCat(printer.answered(), " transactions were answered before this error; the "
                              "others may or may not be committed. Re-running the same file is safe: "
                              "the ids make every transaction exactly-once, and a committed one answers "
                              "as a duplicate."));
  }
  if (!o.json) {
    std::fprintf(o.err, "%llu transaction%s: %llu ok (%llu duplicate%s), %llu rejected\n",
                 static_cast<unsigned long long>(printer.answered()), printer.answered() == 1 ? "" : "s",
                 static_cast<unsigned long long>(printer.answered() - printer.rejected()),
                 static_cast<unsigned long long>(printer.duplicates()), printer.duplicates() == 1 ? "" : "s",
                 static_cast<unsigned long long>(printer.rejected()));
  }
  return printer.rejected() == 0 ? kExitOk : kExitRejected;
}

int RunPostOne(net::Client& client, const Output& o, std::string_view key, const ledger::Transaction& tx) {
  absl::StatusOr<std::vector<ledger::Result>> results = client.Post({&tx, 1});
  if (!results.ok()) return ReportError(o, results.status());
  if (results->size() != 1) {
    return ReportError(o, absl::DataLossError(StrCat("the server answered ", results->size(),
                                                     " results for one transaction")));
  }
  const ledger::Result& r = results->front();
  std::string line = o.json ? ResultJson(key, tx.kind, r) : ResultText(key, tx.kind, r);
  if (tx.kind == ledger::Kind::kSettle && r.code == Code::kOk) {
    // What was settled, read back from the record: "ok seq 38" alone sent a
    // finance user to `tx get` for the amount and who pays (found by a
    // finance review, session 32). A key without the read scope cannot
    // read it back; the close stands all the same.
    absl::StatusOr<std::optional<ledger::TxRecord>> rec = client.GetTransaction(tx.program, tx.id);
    if (rec.ok() && rec->has_value() && (*rec)->statement) {
      line = o.json ? SettledJson(key, r, *(*rec)->statement) : SettledText(key, r, *(*rec)->statement);
    } else {
      const std::string why = rec.ok() ? "not in the record" : Shown(std::string(rec.status().message()));
      std::fprintf(o.err, "note: the statement could not be read back (%s); `pointledger tx get --program %s --id "
                          "KEY` shows it\n",
                   why.c_str(), Shown(tx.program).c_str());
    }
  }
  std::fprintf(o.out, "%s\n", line.c_str());
  return r.code == Code::kOk ? kExitOk : kExitRejected;
}

namespace {

struct ExpireTotals {
  uint64_t expired_points = 0;
  uint64_t expired_lots = 0;
  uint64_t holds_released = 0;
  uint64_t rejected = 0;
  uint64_t duplicates = 0;
};

// Collects what is due at as_of_ns and posts the kinds wanted, round after
// round, until nothing is due or the same due set comes back (its
// transactions were rejected: they would only come back again). Not "until
// a round applied nothing": a round whose answer was lost and whose batch
// the client library sent again answers all duplicates, though it booked
// them, and stopping there left the rest due (found in review, session 30).
absl::Status ExpireRounds(net::Client& client, int64_t as_of_ns, bool with_holds, ExpireTotals* totals) {
  std::vector<ledger::Id> previous;
  for (;;) {
    PL_ASSIGN_OR_RETURN(std::vector<ledger::Transaction> due,
                        client.CollectDue(as_of_ns, static_cast<uint32_t>(ledger::kBatchTransactionsMax)));
    std::erase_if(due, [&](const ledger::Transaction& t) {
      return t.kind == Kind::kHoldTimeout && !with_holds;
    });
    if (due.empty()) return absl::OkStatus();
    std::vector<ledger::Id> ids;
    ids.reserve(due.size());
    for (const ledger::Transaction& t : due) ids.push_back(t.id);
    if (ids == previous) return absl::OkStatus();
    previous = std::move(ids);
    PL_ASSIGN_OR_RETURN(std::vector<ledger::Result> results, client.Post(due));
    if (results.size() != due.size()) {
      return absl::DataLossError("the server answered a different number of results");
    }
    for (size_t i = 0; i < due.size(); ++i) {
      const ledger::Result& r = results[i];
      if (r.code != Code::kOk) {
        ++totals->rejected;
        continue;
      }
      if (r.duplicate) {
        ++totals->duplicates;
        continue;
      }
      if (due[i].kind == Kind::kExpire) {
        totals->expired_points += r.points;
        if (r.points > 0) ++totals->expired_lots;
      } else {
        ++totals->holds_released;
      }
    }
  }
}

}  // namespace

int RunExpire(net::Client& client, const Output& o, int64_t as_of_ns, int64_t now_ns) {
  constexpr int64_t kClockMarginNs = 5'000'000'000;
  ExpireTotals totals;
  absl::Status s = ExpireRounds(client, as_of_ns, /*with_holds=*/false, &totals);
  const int64_t holds_as_of_ns = std::min(as_of_ns, now_ns - kClockMarginNs);
  if (s.ok()) s = ExpireRounds(client, holds_as_of_ns, /*with_holds=*/true, &totals);
  if (!s.ok()) return ReportError(o, s);
  if (o.json) {
    std::fprintf(o.out,
                 "{\"as_of\":\"%s\",\"expired_points\":%llu,\"expired_lots\":%llu,\"holds_released\":%llu,"
                 "\"rejected\":%llu,\"duplicates\":%llu}\n",
                 FormatTime(as_of_ns).c_str(), static_cast<unsigned long long>(totals.expired_points),
                 static_cast<unsigned long long>(totals.expired_lots),
                 static_cast<unsigned long long>(totals.holds_released),
                 static_cast<unsigned long long>(totals.rejected),
                 static_cast<unsigned long long>(totals.duplicates));
  } else {
    std::fprintf(o.out, "expired %llu points in %llu lots, released %llu timed-out holds (as of %s)\n",
                 static_cast<unsigned long long>(totals.expired_points),
                 static_cast<unsigned long long>(totals.expired_lots),
                 static_cast<unsigned long long>(totals.holds_released), FormatTime(as_of_ns).c_str());
    if (totals.rejected > 0) {
      std::fprintf(o.err, "%llu due transactions were rejected (see `pointledger tx get --hex`)\n",
                   static_cast<unsigned long long>(totals.rejected));
    }
    if (totals.duplicates > 0) {
      // Booked already: by the server's sweep or another run meanwhile, or
      // by this run's own first attempt when a lost connection made the
      // client send its batch again. Not in the figures above.
      std::fprintf(o.err, "%llu due transactions were already booked (duplicates; not counted above)\n",
                   static_cast<unsigned long long>(totals.duplicates));
    }
  }
  if (as_of_ns > now_ns + kClockMarginNs && totals.expired_lots > 0) {
    // Booked now, for good (an expiry is not reversible): say so, where
    // a mistyped year would otherwise pass unnoticed (found by a semantics
    // review, session 19).
    std::fprintf(o.err,
                 "note: --as-of %s is in the future: these lots were booked as expired now, "
                 "before their expiry (the server's sweep books each lot at its own time)\n",
                 FormatTime(as_of_ns).c_str());
  }
  return totals.rejected == 0 ? kExitOk : kExitRejected;
}

}  // namespace pointledger::tools
