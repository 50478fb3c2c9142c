#include "tools/cli_finance.h"

#include <cinttypes>

#include "ledger/status.h"
#include "nlohmann/json.hpp"
#include "tools/cli_format.h"
#include "tools/cli_progress.h"
#include "tools/cli_time.h"

namespace pointledger::tools {
namespace {

using Json = nlohmann::ordered_json;

Json DiscrepancyJson(const ledger::Discrepancy& d) {
  Json j;
  j["what"] = d.what;
  j["where"] = d.where;
  j["expected"] = d.expected;
  j["found"] = d.found;
  if (d.seq != 0) j["seq"] = d.seq;
  return j;
}

std::string DiscrepancyText(const ledger::Discrepancy& d) {
  return StrCat("  ", d.what, "  ", d.where, "\n    expected: ", d.expected, "\n    found:    ",
                d.found);
}

// A read that failed: exit 2, unless the ledger itself does not parse,
// which is a finding (exit 1): the data is what is wrong.
int ReadFailed(const Output& o, const absl::Status& s, std::string_view check) {
  if (absl::IsDataLoss(s)) {
    if (o.json) {
      Json j;
      j["check"] = std::string(check);
      j["ok"] = false;
      j["error"] = std::string(s.message());
      PrintLine(o, Dump(j));
    } else {
      PrintLine(o, StrCat(check, ": FAILED: ", std::string(s.message())));
    }
    return kExitRejected;
  }
  if (absl::IsPermissionDenied(s)) {
    return ReportError(o, s,
                       "This report needs a key with the read scope: on its program, or on every "
                       "program for trial-balance, audit verify and audit export.");
  }
  return ReportError(o, s);
}

std::string HashHex(const std::array<uint8_t, 32>& hash) { return HexBytes(hash); }

}  // namespace

int RunTrialBalance(Reader& reader, const Output& o) {
  absl::StatusOr<ledger::AuditReport> report = reader.TrialBalance();
  if (!report.ok()) return ReadFailed(o, report.status(), "trial_balance");
  const bool ok = report->discrepancy_count == 0;
  if (o.json) {
    for (const ledger::Discrepancy& d : report->discrepancies) PrintLine(o, Dump(DiscrepancyJson(d)));
    Json j;
    j["check"] = "trial_balance";
    j["ok"] = ok;
    j["discrepancies"] = report->discrepancy_count;
    PrintLine(o, Dump(j));
  } else if (ok) {
    PrintLine(o,
              "trial balance: OK (every program sums to zero, every stored balance equals the "
              "replay of its postings, every member's lots and holds equal its balance)");
  } else {
    PrintLine(o, StrCat("trial balance: ", report->discrepancy_count, " discrepanc",
                        report->discrepancy_count == 1 ? "y" : "ies"));
    for (const ledger::Discrepancy& d : report->discrepancies) PrintLine(o, DiscrepancyText(d));
    if (report->discrepancy_count > report->discrepancies.size()) {
      PrintLine(o, StrCat("  ... and ", report->discrepancy_count - report->discrepancies.size(),
                          " more"));
    }
  }
  return ok ? kExitOk : kExitRejected;
}

int RunLiability(Reader& reader, const Output& o, const std::string& program, int64_t from_ns,
                 int64_t to_ns, int64_t as_of_ns) {
  absl::StatusOr<ledger::Liability> l = reader.LiabilityReport(program, from_ns, to_ns, as_of_ns);
  if (!l.ok()) {
    if (absl::IsNotFound(l.status())) {
      std::fprintf(o.err, "no program '%s'\n", Shown(program).c_str());
      return kExitRejected;
    }
    return ReadFailed(o, l.status(), "liability");
  }
  Json j;
  j["program"] = l->program;
  j["currency"] = l->currency;
  j["point_value_micros"] = l->point_value_micros;
  j["from"] = FormatTime(l->from_ns);
  j["to"] = FormatTime(l->to_ns);
  j["as_of"] = FormatTime(l->as_of_ns);
  j["as_of_seq"] = l->as_of_seq;
  j["outstanding_points"] = l->outstanding_points;
  j["outstanding_value_micros"] = l->outstanding_value_micros;
  j["expired_unswept_points"] = l->expired_unswept_points;
  j["issued_points"] = l->issued_points;
  j["adjusted_up_points"] = l->adjusted_up_points;
  j["redeemed_points"] = l->redeemed_points;
  j["reversed_points"] = l->reversed_points;
  j["reversed_issued_points"] = l->reversed_issued_points;
  j["reversed_redeemed_points"] = l->reversed_redeemed_points;
  // The text's third part (since session 33: a script had to derive it).
  j["reversed_between_members_points"] =
      l->reversed_points - l->reversed_issued_points - l->reversed_redeemed_points;
  j["expired_points"] = l->expired_points;
  j["forfeited_points"] = l->forfeited_points;
  j["adjusted_down_points"] = l->adjusted_down_points;
  j["expiring_30d_points"] = l->expiring_30d_points;
  j["expiring_60d_points"] = l->expiring_60d_points;
  j["expiring_90d_points"] = l->expiring_90d_points;
  j["breakage_rate"] = l->breakage_rate;
  Json partners = Json::array();
  for (const ledger::PartnerMovement& m : l->partners) {
    Json pj;
    pj["partner"] = m.partner;
    pj["earned_points"] = m.earned_points;
    pj["redeemed_points"] = m.redeemed_points;
    partners.push_back(std::move(pj));
  }
  j["partners"] = partners;
  if (o.json) {
    PrintLine(o, Dump(j));
    return kExitOk;
  }
  auto row = [&](std::string_view name, uint64_t points, std::string_view note = "") {
    char buf[160];
    std::snprintf(buf, sizeof(buf), "  %-26s %20" PRIu64 "%s%s", std::string(name).c_str(), points,
                  note.empty() ? "" : "  ", std::string(note).c_str());
    PrintLine(o, buf);
  };
  PrintLine(o, StrCat("liability  ", l->program, "  (", l->currency, ", one point = ",
                      MicrosToDecimal(static_cast<int64_t>(l->point_value_micros)), ")"));
  PrintLine(o, StrCat("as of ", FormatTime(l->as_of_ns), " (seq ", l->as_of_seq, ")"));
  row("outstanding", l->outstanding_points,
      StrCat("worth ", MicrosToDecimal(l->outstanding_value_micros), " ", l->currency));
  row("expired, not yet swept", l->expired_unswept_points);
  row("expiring within 30 days", l->expiring_30d_points);
  row("expiring within 60 days", l->expiring_60d_points);
  row("expiring within 90 days", l->expiring_90d_points);
  PrintLine(o, StrCat("movements from ", FormatTime(l->from_ns), " to ", FormatTime(l->to_ns),
                      " (end exclusive)"));
  row("issued", l->issued_points, "earn, referral, adjust up");
  row("  of which adjusted up", l->adjusted_up_points);
  row("redeemed", l->redeemed_points, "redeem and capture, partners included");
  row("reversed", l->reversed_points);
  row("  of which taken back", l->reversed_issued_points);
  row("  of which given back", l->reversed_redeemed_points);
  // A reversed transfer moves points between members: in neither part, so
  // the three lines add up to the total (as the JSON's three fields do).
  row("  of which between members",
      l->reversed_points - l->reversed_issued_points - l->reversed_redeemed_points, "reversed transfers");
  row("expired", l->expired_points);
  row("forfeited", l->forfeited_points, "account_close");
  row("adjusted down", l->adjusted_down_points);
  char rate[400];
  std::snprintf(rate, sizeof(rate), "  %-26s %19.2f%%  expired / (expired + redeemed)",
                "breakage rate", 100.0 * l->breakage_rate);
  PrintLine(o, rate);
  if (!l->partners.empty()) {
    PrintLine(o, "partners                       earned             redeemed");
    for (const ledger::PartnerMovement& m : l->partners) {
      char buf[160];
      std::snprintf(buf, sizeof(buf), "  %-20s %14" PRIu64 " %20" PRIu64, m.partner.c_str(),
                    m.earned_points, m.redeemed_points);
      PrintLine(o, buf);
    }
  }
  return kExitOk;
}

absl::StatusOr<ExpectedHead> ParseExpectedHead(std::string_view text) {
  const size_t colon = text.find(':');
  ExpectedHead head;
  auto bad = [&] {
    return absl::InvalidArgumentError(StrCat(
        "--expect-head: expected SEQ:HASH as `audit head` prints it (e.g. 42:", std::string(64, 'f'),
        "), got '", text, "'"));
  };
  if (colon == std::string_view::npos || colon == 0) return bad();
  for (char c : text.substr(0, colon)) {
    if (c < '0' || c > '9' || head.seq > (UINT64_MAX - 9) / 10) return bad();
    head.seq = head.seq * 10 + static_cast<uint64_t>(c - '0');
  }
  for (char c : text.substr(colon + 1)) {
    const char lower = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (!((lower >= '0' && lower <= '9') || (lower >= 'a' && lower <= 'f'))) return bad();
    head.hash_hex.push_back(lower);
  }
  if (head.hash_hex.size() != 64) return bad();
  return head;
}

int RunAuditVerify(Reader& reader, const Output& o, const std::optional<ExpectedHead>& expect) {
  ProgressBar bar(o.err);
  absl::StatusOr<ledger::AuditReport> report =
      reader.Audit([&](std::string_view phase, uint64_t done, uint64_t total) {
        bar.Update(phase, done, total);
      });
  bar.Clear();
  if (!report.ok()) return ReadFailed(o, report.status(), "audit");
  auto add = [&](ledger::Discrepancy d) {
    // Seq 0 (an expected head of 0 with another hash) blames no transaction,
    // and 0 is "none" here: it must not hide a real first bad seq.
    if (d.seq != 0 && (report->first_bad_seq == 0 || d.seq < report->first_bad_seq)) {
      report->first_bad_seq = d.seq;
    }
    ++report->discrepancy_count;
    report->discrepancies.push_back(std::move(d));
  };
  // `audit head` of an empty ledger prints 0 and the all-zero hash every
  // chain starts from; seq 0 with another hash is well formed but can match
  // no chain: a mismatch, as a wrong hash at any other seq is (it was a
  // usage error until session 30).
  if (expect && expect->seq == 0 && expect->hash_hex != std::string(64, '0')) {
    add({"head", "seq 0", StrCat("hash ", expect->hash_hex),
         StrCat("hash ", std::string(64, '0'), " (seq 0 is where every chain starts)"), 0});
  }
  if (expect && expect->seq > 0) {
    // The head recorded outside the ledger must still be in the chain: a
    // ledger rewritten from some seq on (hashes recomputed) or cut short
    // fails here even though it verifies on its own.
    const std::string where = StrCat("seq ", expect->seq);
    if (report->head.seq < expect->seq) {
      // The first seq missing is the first bad one, not the expected seq,
      // which names no transaction here (found by a finance review,
      // session 32).
      add({"head", where, StrCat("a chain reaching seq ", expect->seq),
           StrCat("the chain ends at seq ", report->head.seq), report->head.seq + 1});
    } else {
      absl::StatusOr<ledger::RecordsPage> page = reader.GetRecords(expect->seq, 1, "");
      if (!page.ok()) return ReadFailed(o, page.status(), "audit");
      if (page->records.empty() || page->records[0].seq != expect->seq) {
        add({"head", where, StrCat("transaction ", expect->seq), "missing", expect->seq});
      } else if (HashHex(page->records[0].hash) != expect->hash_hex) {
        add({"head", where, StrCat("hash ", expect->hash_hex),
             StrCat("hash ", HashHex(page->records[0].hash)), expect->seq});
      }
    }
  }
  const bool ok = report->discrepancy_count == 0;
  if (o.json) {
    for (const ledger::Discrepancy& d : report->discrepancies) PrintLine(o, Dump(DiscrepancyJson(d)));
    Json j;
    j["check"] = "audit";
    j["ok"] = ok;
    j["seq"] = report->head.seq;
    j["hash"] = HashHex(report->head.hash);
    j["first_bad_seq"] = report->first_bad_seq;
    j["discrepancies"] = report->discrepancy_count;
    j["rebuild_peak_rows"] = report->rebuild_peak_entries;
    j["rebuild_spills"] = report->rebuild_spills;
    if (expect) j["expect_head"] = StrCat(expect->seq, ":", expect->hash_hex);
    PrintLine(o, Dump(j));
  } else if (ok) {
    PrintLine(o, StrCat("audit verify: OK  ", report->head.seq,
                        " transactions; the chain verifies and every balance, lot and hold equals "
                        "a rebuild from seq 1",
                        expect ? StrCat("; seq ", expect->seq, " has the expected hash") : ""));
    PrintLine(o, StrCat("head ", report->head.seq, ":", HashHex(report->head.hash)));
  } else {
    PrintLine(o, StrCat("audit verify: FAILED  ", report->discrepancy_count, " discrepanc",
                        report->discrepancy_count == 1 ? "y" : "ies",
                        report->first_bad_seq != 0 ? StrCat("; first bad seq ", report->first_bad_seq)
                                                   : ""));
    for (const ledger::Discrepancy& d : report->discrepancies) PrintLine(o, DiscrepancyText(d));
    if (report->discrepancy_count > report->discrepancies.size()) {
      PrintLine(o, StrCat("  ... and ", report->discrepancy_count - report->discrepancies.size(),
                          " more"));
    }
  }
  if (!o.json && report->rebuild_spills > 0) {
    PrintLine(o, StrCat("the rebuild held at most ", report->rebuild_peak_entries,
                        " state rows in memory and moved them to its scratch directory ",
                        report->rebuild_spills, " time", report->rebuild_spills == 1 ? "" : "s",
                        " (--memory-rows; through the server, its rebuild_memory_rows)"));
  }
  return ok ? kExitOk : kExitRejected;
}


int RunAuditExport(Reader& reader, const Output& o, uint64_t from_seq, uint64_t to_seq,
                   const std::string& format) {
  if (format != "jsonl" && format != "csv") {
    return ReportError(o, absl::InvalidArgumentError(
                              StrCat("--format must be jsonl or csv, not '", format, "'")));
  }
  from_seq = std::max<uint64_t>(from_seq, 1);
  if (to_seq != 0 && to_seq < from_seq) {
    return ReportError(o, absl::InvalidArgumentError(
                              StrCat("--to-seq ", to_seq, " is before --from-seq ", from_seq)));
  }
  ProgressBar bar(o.err);
  uint64_t next = from_seq;
  uint64_t end = to_seq;  // fixed at the first page when 0: a growing ledger ends somewhere
  for (bool first = true;; first = false) {
    absl::StatusOr<ledger::RecordsPage> page = reader.GetRecords(next, ledger::kRecordsPageMax, "");
    if (!page.ok()) return ReadFailed(o, page.status(), "export");
    // The header only once the first read succeeded: a refused export
    // (permission_denied) must not leave what looks like an empty one.
    if (first && format == "csv") PrintLine(o, TxRecordCsvHeader());
    // A range past the head exports what there is, and says where it
    // ended (found by a finance review, session 32: an empty export and
    // exit 0, no word that the ledger ends before --from-seq).
    if (first && std::max(from_seq, to_seq) > page->head_seq) {
      std::fprintf(o.err, "note: the ledger's head is seq %llu: the export %s\n",
                   static_cast<unsigned long long>(page->head_seq),
                   from_seq > page->head_seq ? "is empty" : "ends there");
    }
    if (end == 0) end = page->head_seq;
    for (const ledger::TxRecord& rec : page->records) {
      if (rec.seq > end) break;
      PrintLine(o, format == "csv" ? TxRecordCsv(rec) : [&] {
        return TxRecordJson(ledger::IdToHex(rec.tx.id), rec);
      }());
    }
    bar.Update("export", page->next_seq - from_seq, end >= from_seq ? end - from_seq + 1 : 0);
    // A full disk: no use reading the rest of a long ledger.
    if (std::ferror(o.out)) break;
    if (page->next_seq > end || page->next_seq > page->head_seq || page->records.empty()) break;
    next = page->next_seq;
  }
  // A write that failed is reported, exit 2, by RunCli once the rest of
  // the output is flushed (cli_app.cc).
  return kExitOk;
}

}  // namespace pointledger::tools
