// `pointledger reconcile external`: a POS / e-commerce export matched
// against the ledger by idempotency key, in bounded memory.
//
// How: both sides become streams of rows sorted by transaction id (the
// file's order_ref turned into the id the CLI's --id derives, the ledger's
// transactions of the program paged from the log). A transaction's own
// order_ref field is shown, not matched on: one order's hold, capture and
// refund commonly share it, while each has its own id (tried in session 17
// and taken back: it turned such orders into kind mismatches). Each side
// is sorted in runs of ExternalOptions::memory_rows that spill to temporary files, then
// merged; one pass over the two merged streams finds every match and
// mismatch. Findings therefore come in id order, each naming its file line.
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <string_view>

#include "ledger/limits.h"
#include "ledger/status.h"
#include "nlohmann/json.hpp"
#include "tools/cli_csv.h"
#include "tools/cli_finance.h"
#include "tools/cli_format.h"
#include "tools/cli_progress.h"
#include "tools/cli_sort.h"
#include "tools/cli_time.h"

namespace pointledger::tools {
namespace {

using Json = nlohmann::ordered_json;

// A temporary directory removed with everything in it when done.
class TempDir {
 public:
  static absl::StatusOr<std::unique_ptr<TempDir>> Create() {
    std::error_code ec;
    std::filesystem::path base = std::filesystem::temp_directory_path(ec);
    if (ec) base = "/tmp";
    std::string templ = (base / "pointledger-external-XXXXXX").string();
    if (mkdtemp(templ.data()) == nullptr) {
      return absl::InternalError(StrCat("cannot create a temporary directory in ", base.string(), ": ",
                                        std::strerror(errno)));
    }
    return std::unique_ptr<TempDir>(new TempDir(templ));
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  explicit TempDir(std::filesystem::path p) : path_(std::move(p)) {}
  std::filesystem::path path_;
};

// The last nanosecond that an RFC 3339 time (already parsed to `ns`)
// names: `…:06Z` covers 06.000000000 to 06.999999999, `…:06.5Z` 06.5 to
// 06.599999999, nine fraction digits exactly `ns`.
int64_t LastInstantOf(std::string_view text, int64_t ns) {
  int digits = 0;
  if (const size_t dot = text.find('.'); dot != std::string_view::npos) {
    while (dot + 1 + digits < text.size() && std::isdigit(static_cast<unsigned char>(text[dot + 1 + digits]))) {
      ++digits;
    }
  }
  int64_t span = 1;
  for (int i = digits; i < 9; ++i) span *= 10;
  return ns > std::numeric_limits<int64_t>::max() - (span - 1) ? std::numeric_limits<int64_t>::max()
                                                               : ns + (span - 1);
}

// A `points` field: -2^63 to 2^64 - 1, what a JSON number of the output
// holds either way (Points), and room for a referral's two legs together.
absl::Status ParsePoints(std::string_view text, Points* out) {
  std::string_view s = text;
  const bool negative = !s.empty() && s[0] == '-';
  if (!s.empty() && (negative || s[0] == '+')) s.remove_prefix(1);
  if (s.empty() || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return absl::InvalidArgumentError(StrCat("points '", text, "' is not an integer"));
  }
  const uint64_t kMax = std::numeric_limits<uint64_t>::max();
  uint64_t v = 0;
  bool overflow = false;
  for (char c : s) {
    const auto digit = static_cast<uint64_t>(c - '0');
    if (v > (kMax - digit) / 10) {  // v * 10 + digit would pass 2^64 - 1
      overflow = true;
      break;
    }
    v = v * 10 + digit;
  }
  if (overflow || v > (negative ? uint64_t{1} << 63 : kMax)) {
    return absl::InvalidArgumentError(StrCat("points '", text,
                                             "' is out of range (-9223372036854775808 to 18446744073709551615)"));
  }
  *out = negative ? -static_cast<Points>(v) : static_cast<Points>(v);
  return absl::OkStatus();
}

// Points as JSON: an int64 or, past it (a referral's legs of 2^62 each), a uint64.
Json PointsJson(Points p) {
  if (p > std::numeric_limits<int64_t>::max()) return Json(static_cast<uint64_t>(p));
  return Json(static_cast<int64_t>(p));
}

// The kinds a POS or web shop posts with its own ids (an enrollment is an
// account_open); the others (expiry, configuration, settlement, closing an
// account) are the ledger's own and never in an export.
bool IsClientKind(ledger::Kind k) {
  switch (k) {
    case ledger::Kind::kEarn:
    case ledger::Kind::kRedeem:
    case ledger::Kind::kReferral:
    case ledger::Kind::kTransfer:
    case ledger::Kind::kAdjust:
    case ledger::Kind::kReverse:
    case ledger::Kind::kHold:
    case ledger::Kind::kCapture:
    case ledger::Kind::kRelease:
    case ledger::Kind::kAccountOpen:
      return true;
    default:
      return false;
  }
}

// What the export's `points` column is compared with (docs/finance.md).
// Each amount is at most kPointsMax (2^62); a referral's two legs together
// reach 2^63, one past int64 (found in review, session 30: it wrapped to
// -2^63).
Points LedgerPoints(const ledger::TxRecord& rec) {
  const ledger::Transaction& t = rec.tx;
  switch (t.kind) {
    case ledger::Kind::kReferral: return static_cast<Points>(t.points) + t.points2;
    case ledger::Kind::kAdjust: return t.delta;
    case ledger::Kind::kReverse:
    case ledger::Kind::kCapture:
    case ledger::Kind::kAccountClose:  // the points it forfeited
      return static_cast<int64_t>(rec.result.code == ledger::Code::kOk ? rec.result.points : t.points);
    case ledger::Kind::kRelease: {
      // What it gave back: the hold's amount, voided from pending.
      uint64_t released = 0;
      for (const ledger::Posting& p : rec.postings) {
        if (p.type == ledger::PostingType::kVoid) released += p.points;
      }
      return static_cast<int64_t>(released);
    }
    default: return static_cast<int64_t>(t.points);
  }
}

constexpr const char* kFindings[] = {"matched",         "missing_in_ledger", "missing_in_file",
                                     "amount_mismatch", "kind_mismatch",     "member_mismatch",
                                     "duplicate_in_file"};

class Matcher {
 public:
  Matcher(const Output& o, bool mismatches_only) : o_(o), mismatches_only_(mismatches_only) {}

  void Report(std::string_view finding, const Row* file, const Row* ledger) {
    ++counts_[std::string(finding)];
    if (finding == "matched" && (mismatches_only_ || !o_.json)) return;
    const Row& any = file != nullptr ? *file : *ledger;
    if (o_.json) {
      Json j;
      j["finding"] = std::string(finding);
      j["order_ref"] = any.order_ref;
      if (file != nullptr) {
        j["line"] = file->line;
        j["file_kind"] = file->kind;
        j["file_points"] = PointsJson(file->points);
        if (!file->member.empty()) j["file_member"] = file->member;
      }
      if (ledger != nullptr) {
        j["seq"] = ledger->line;
        j["id_hex"] = ledger::IdToHex(ledger->id);  // order_ref is its field, not what it matched by
        j["ledger_kind"] = ledger->kind;
        j["ledger_points"] = PointsJson(ledger->points);
        j["ledger_member"] = ledger->member;
        j["ledger_status"] = ledger->status;
        j["timestamp"] = FormatTime(ledger->timestamp_ns);
      }
      Print(j.dump(-1, ' ', false, Json::error_handler_t::replace));
      return;
    }
    std::string text = StrCat(finding, "  ", Shown(any.order_ref));
    if (file != nullptr) text += StrCat("  line ", file->line, " ", file->kind, " ", PointsJson(file->points).dump(),
                                        file->member.empty() ? "" : " ", Shown(file->member));
    if (ledger != nullptr) {
      text += StrCat("  ledger seq ", ledger->line, " ", ledger->kind, " ", PointsJson(ledger->points).dump(),
                     ledger->member.empty() ? "" : " ", Shown(ledger->member), ledger->status == "ok" ? "" : " (", ledger->status == "ok" ? "" : ledger->status,
                     ledger->status == "ok" ? "" : ")");
    }
    Print(text);
  }

  bool AllMatched() const {
    for (const auto& [finding, n] : counts_) {
      if (finding != "matched" && n > 0) return false;
    }
    return true;
  }

  void Summary(uint64_t file_rows, uint64_t ledger_rows, int64_t from_ns, int64_t to_ns) {
    if (o_.json) {
      Json j;
      j["summary"] = true;
      for (const char* f : kFindings) j[f] = counts_[f];
      j["file_rows"] = file_rows;
      j["ledger_transactions"] = ledger_rows;
      if (to_ns != 0) {
        j["from"] = FormatTime(from_ns);
        j["to"] = FormatTime(to_ns);
      }
      Print(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
      return;
    }
    Print(StrCat("external reconciliation: ", file_rows, " file rows, ", ledger_rows,
                 " ledger transactions",
                 to_ns != 0 ? StrCat(" (file period ", FormatTime(from_ns), " to ", FormatTime(to_ns), ")")
                            : ""));
    for (const char* f : kFindings) Print(StrCat("  ", f, std::string(20 - std::strlen(f), ' '), counts_[f]));
  }

 private:
  void Print(const std::string& line) {
    std::fwrite(line.data(), 1, line.size(), o_.out);
    std::fputc('\n', o_.out);
  }
  const Output& o_;
  bool mismatches_only_;
  std::map<std::string, uint64_t> counts_;
};

}  // namespace

int RunReconcileExternal(Reader& reader, const Output& o, const ExternalOptions& options) {
  // A directory opens as a stream and reads as an empty file: say what it is.
  // "-" is standard input, as for post --file: the file is read once, in
  // order, so a pipe from the exporter works as well as a file. Opened as
  // /dev/stdin, not std::cin, which reads a character at a time through C
  // stdio.
  const std::string path = options.csv_path == "-" ? "/dev/stdin" : options.csv_path;
  std::error_code ec;
  if (options.csv_path != "-" && std::filesystem::is_directory(path, ec)) {
    return ReportError(o, absl::InvalidArgumentError(StrCat("--csv ", options.csv_path, " is a directory, not a file")));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return ReportError(o, absl::InvalidArgumentError(StrCat("--csv ", options.csv_path, ": cannot read it (",
                                                            std::strerror(errno), ")")));
  }
  absl::StatusOr<std::unique_ptr<TempDir>> tmp = TempDir::Create();
  if (!tmp.ok()) return ReportError(o, tmp.status());
  ProgressBar bar(o.err);

  // The file side.
  CsvReader csv(in);
  std::vector<std::string> fields;
  uint64_t line = 0;
  absl::StatusOr<bool> more = csv.Next(&fields, &line);
  if (!more.ok()) return ReportError(o, more.status());
  if (!*more) return ReportError(o, absl::InvalidArgumentError("--csv: the file is empty (expected a header row)"));
  int col_ref = -1, col_kind = -1, col_points = -1, col_member = -1, col_ts = -1;
  for (size_t i = 0; i < fields.size(); ++i) {
    const std::string& name = fields[i];
    for (auto& [col, want] : {std::pair{&col_ref, "order_ref"}, std::pair{&col_kind, "kind"},
                              std::pair{&col_points, "points"}, std::pair{&col_member, "member"},
                              std::pair{&col_ts, "timestamp"}}) {
      if (name != want) continue;
      if (*col >= 0) {
        return ReportError(o, absl::InvalidArgumentError(
                                  StrCat("--csv: the header row names the column ", want, " twice")));
      }
      *col = static_cast<int>(i);
    }
  }
  if (col_ref < 0 || col_kind < 0 || col_points < 0) {
    // What it does name: a header in other words or case, or a whole file
    // read as one line (CR-only line ends), shows as what it is (found by
    // a conformance test, session 33).
    std::string named;
    for (const std::string& f : fields) {
      if (named.size() > 200) {
        named += ", ...";
        break;
      }
      // Raw: ReportError escapes what the terminal should not see.
      named += StrCat(named.empty() ? "" : ", ", "'", f.substr(0, 64), f.size() > 64 ? "...'" : "'");
    }
    return ReportError(o, absl::InvalidArgumentError(
                              StrCat("--csv: the header row must name the columns order_ref, kind and points "
                                     "(and optionally member, timestamp), lower case as here; it names ",
                                     named.empty() ? "nothing" : named)));
  }
  const size_t header_columns = fields.size();
  ExternalSorter file_rows(tmp->get()->path(), "file", options.memory_rows);
  uint64_t file_count = 0;
  int64_t min_ts = std::numeric_limits<int64_t>::max(), max_ts = std::numeric_limits<int64_t>::min();
  bool every_row_timed = col_ts >= 0;
  for (;;) {
    more = csv.Next(&fields, &line);
    if (!more.ok()) return ReportError(o, more.status());
    if (!*more) break;
    if (fields.size() == 1 && fields[0].empty()) continue;  // a blank line
    auto bad = [&](std::string what) {
      return ReportError(o, absl::InvalidArgumentError(StrCat("--csv line ", line, ": ", what)));
    };
    // RFC 4180 gives every record the header's count of fields. More: an
    // unquoted comma in a field has shifted the row, and the columns read
    // would not be the ones named (found in review, session 29: the extra
    // fields were ignored). Fewer: a field is missing, and which one cannot
    // be told; read as empty, a dropped member went unchecked and a dropped
    // timestamp silently widened the period to the whole ledger.
    if (fields.size() != header_columns) {
      return bad(StrCat(fields.size(), fields.size() == 1 ? " field" : " fields",
                        ", but the header names ", header_columns, " columns",
                        fields.size() > header_columns ? " (a comma that should be quoted?)"
                                                       : " (a field missing?)"));
    }
    auto field = [&](int col) -> const std::string& {
      static const std::string kEmpty;
      return col >= 0 && static_cast<size_t>(col) < fields.size() ? fields[col] : kEmpty;
    };
    Row row;
    row.order_ref = field(col_ref);
    row.kind = field(col_kind);
    row.member = field(col_member);
    row.line = line;
    if (row.order_ref.empty()) return bad("order_ref is empty");
    if (row.order_ref.size() > ledger::kMemberKeyBytesMax * 4) return bad("order_ref is too long");
    // No member of the ledger is longer, and memory_rows rows are held at
    // once: an unbounded member made "memory bounded" a matter of the file.
    if (row.member.size() > ledger::kMemberKeyBytesMax * 4) return bad("member is too long");
    if (!ledger::KindFromName(row.kind)) {
      return bad(StrCat("unknown kind '", row.kind,
                        "' (a kind as SPEC §2 spells it, lower case: earn, redeem, referral, transfer, ...)"));
    }
    if (absl::Status s = ParsePoints(field(col_points), &row.points); !s.ok()) return bad(std::string(s.message()));
    if (col_ts >= 0 && !field(col_ts).empty()) {
      absl::StatusOr<int64_t> ts = ParseTime(field(col_ts));
      if (!ts.ok()) return bad(StrCat("timestamp: ", std::string(ts.status().message())));
      row.timestamp_ns = *ts;
      min_ts = std::min(min_ts, *ts);
      // A time names every instant of its precision: "…:06Z" is the whole
      // second. Ledger times are nanoseconds, so the period must reach the
      // last of them, or transactions later in that second fall outside.
      max_ts = std::max(max_ts, LastInstantOf(field(col_ts), *ts));
    } else {
      // Said once, on stderr: a row left without its time makes the period
      // the whole ledger, and every transaction outside the file's times is
      // then missing_in_file (found by a finance review, session 32: 47
      // findings for a file of 3 rows, without a word why).
      if (every_row_timed && col_ts >= 0) {
        std::fprintf(o.err,
                     "note: --csv line %llu has no timestamp: the period is the whole ledger, not the "
                     "file's first to last time (stamp every row to match a period)\n",
                     static_cast<unsigned long long>(line));
      }
      every_row_timed = false;
    }
    row.id = ledger::TxIdFromKey(options.program, row.order_ref);
    if (absl::Status s = file_rows.Add(std::move(row)); !s.ok()) return ReportError(o, s);
    ++file_count;
    if (file_count % 65536 == 0) bar.Update("reading file", file_count, 0);
  }
  // The period the file covers: ledger transactions outside it are not
  // expected in the file. Without timestamps on every row, it covers all.
  const bool bounded = every_row_timed && file_count > 0;

  // The ledger side: the program's transactions, paged from the log.
  ExternalSorter ledger_rows(tmp->get()->path(), "ledger", options.memory_rows);
  uint64_t ledger_count = 0;
  uint64_t next = 1, end = 0;
  for (;;) {
    absl::StatusOr<ledger::RecordsPage> page =
        reader.GetRecords(next, ledger::kRecordsPageMax, options.program);
    if (!page.ok()) {
      if (absl::IsNotFound(page.status()) || absl::IsFailedPrecondition(page.status())) {
        std::fprintf(o.err, "no program '%s'\n", Shown(options.program).c_str());
        return kExitRejected;
      }
      return ReportError(o, page.status());
    }
    if (end == 0) end = page->head_seq;  // a growing ledger: stop at the head seen first
    for (const ledger::TxRecord& rec : page->records) {
      if (rec.seq > end) break;
      // Every kind is loaded: a row that names the id of, say, an
      // account_close must find it, not read as missing_in_ledger (found
      // in review, session 20).
      Row row;
      row.ledgers_own = !IsClientKind(rec.tx.kind);
      row.id = rec.tx.id;
      row.order_ref = rec.tx.order_ref.empty() ? ledger::IdToHex(rec.tx.id) : rec.tx.order_ref;
      row.kind = std::string(ledger::KindName(rec.tx.kind));
      row.points = LedgerPoints(rec);
      row.member = rec.tx.member;
      row.line = rec.seq;
      row.timestamp_ns = rec.timestamp_ns;
      row.status = std::string(ledger::CodeName(rec.result.code));
      if (!row.ledgers_own) ++ledger_count;
      if (absl::Status s = ledger_rows.Add(std::move(row)); !s.ok()) return ReportError(o, s);
    }
    bar.Update("reading ledger", std::min(page->next_seq - 1, end), end);
    if (page->next_seq > end || page->next_seq > page->head_seq) break;
    next = page->next_seq;
  }
  for (ExternalSorter* s : {&file_rows, &ledger_rows}) {
    if (absl::Status st = s->Finish(); !st.ok()) return ReportError(o, st);
  }
  bar.Clear();

  // One pass over both sorted streams.
  Matcher m(o, options.mismatches_only);
  Row f, l, prev_file;
  bool has_f = file_rows.Next(&f), has_l = ledger_rows.Next(&l), has_prev = false;
  // A side whose sort run read back short ends early: stop there, before
  // the other side's rows read as missing from it. What was printed up to
  // then is right (rows come in id order, and the lost rows sort after the
  // last one read), but it is not the whole answer.
  auto sorted_whole = [&] { return file_rows.status().ok() && ledger_rows.status().ok(); };
  while ((has_f || has_l) && sorted_whole()) {
    if (has_f && has_prev && f.id == prev_file.id) {
      m.Report("duplicate_in_file", &f, nullptr);
      has_f = file_rows.Next(&f);
      continue;
    }
    if (has_f && (!has_l || f.id < l.id)) {
      m.Report("missing_in_ledger", &f, nullptr);
      prev_file = f;
      has_prev = true;
      has_f = file_rows.Next(&f);
    } else if (has_l && (!has_f || l.id < f.id)) {
      const bool in_period = !bounded || (l.timestamp_ns >= min_ts && l.timestamp_ns <= max_ts);
      if (l.status == "ok" && in_period && !l.ledgers_own) m.Report("missing_in_file", nullptr, &l);
      has_l = ledger_rows.Next(&l);
    } else {
      if (l.status != "ok") {
        m.Report("missing_in_ledger", &f, &l);  // recorded, but rejected: nothing was booked
      } else if (f.kind != l.kind) {
        m.Report("kind_mismatch", &f, &l);
      } else {
        bool any = false;
        if (f.points != l.points) {
          m.Report("amount_mismatch", &f, &l);
          any = true;
        }
        // Reverse, capture and release name no member (their original or
        // hold does): the row's member is not compared for them.
        if (!f.member.empty() && !l.member.empty() && f.member != l.member) {
          m.Report("member_mismatch", &f, &l);
          any = true;
        }
        if (!any) m.Report("matched", &f, &l);
      }
      prev_file = f;
      has_prev = true;
      has_f = file_rows.Next(&f);
      has_l = ledger_rows.Next(&l);
    }
  }
  for (const ExternalSorter* s : {&file_rows, &ledger_rows}) {
    if (!s->status().ok()) return ReportError(o, s->status());
  }
  m.Summary(file_count, ledger_count, bounded ? min_ts : 0, bounded ? max_ts : 0);
  return m.AllMatched() ? kExitOk : kExitRejected;
}

}  // namespace pointledger::tools
