#include "tools/cli_format.h"

#include <cinttypes>
#include <cstdio>
#include <limits>
#include <map>

#include "ledger/status.h"
#include "nlohmann/json.hpp"
#include "tools/cli_time.h"

namespace pointledger::tools {

using ledger::Code;
using ledger::Kind;
using Json = nlohmann::ordered_json;

// Keys and member names come from users and may hold invalid UTF-8: replace
// it rather than let nlohmann throw.
std::string Dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

std::string Shown(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (u < 0x20 || u == 0x7f) out += {'\\', 'x', "0123456789abcdef"[u >> 4], "0123456789abcdef"[u & 15]};
    else out += c;
  }
  return out;
}

namespace {

bool ReportsPoints(Kind kind) {
  return kind == Kind::kReverse || kind == Kind::kCapture || kind == Kind::kAccountClose ||
         kind == Kind::kExpire;
}

std::string Pad(std::string s, size_t width) {
  if (s.size() < width) s.append(width - s.size(), ' ');
  return s;
}

std::string PadLeft(std::string s, size_t width) {
  if (s.size() < width) s.insert(0, width - s.size(), ' ');
  return s;
}

std::string TimeOrNever(int64_t ns) {
  return ns == std::numeric_limits<int64_t>::max() ? std::string("never") : FormatTime(ns);
}

std::string_view PostingTypeName(ledger::PostingType t) {
  switch (t) {
    case ledger::PostingType::kPosted: return "posted";
    case ledger::PostingType::kPending: return "pending";
    case ledger::PostingType::kVoid: return "void";
  }
  return "?";
}

// Names for the accounts a transaction can touch, so postings read as
// "acme/member/alice -> acme/redemption" rather than two hex ids.
std::map<ledger::Id, std::string> AccountLabels(const ledger::Transaction& t) {
  std::map<ledger::Id, std::string> labels;
  for (std::string_view kind : {"issuance", "redemption", "referral", "adjustment", "breakage", "holds"}) {
    labels[ledger::SystemAccountId(t.program, kind)] = StrCat(t.program, "/", kind);
  }
  if (!t.partner.empty()) {
    labels[ledger::PartnerAccountId(t.program, t.partner)] = StrCat(t.program, "/partner/", t.partner);
  }
  for (const std::string* m : {&t.member, &t.member2}) {
    if (!m->empty()) labels[ledger::MemberAccountId(t.program, *m)] = StrCat(t.program, "/member/", *m);
  }
  return labels;
}

// The transaction's own fields, named as the command-line flags ('_' for '-').
void AddConfigFields(const ledger::Transaction& t, Json& j) {
  switch (t.kind) {
    case Kind::kProgramCreate:
      j["currency"] = t.currency;
      j["point_value_micros"] = t.point_value_micros;
      j["expiry_days"] = t.expiry_days;
      j["lock_days"] = t.lock_days < 0 ? 0 : t.lock_days;
      j["auto_open"] = t.auto_open;
      break;
    case Kind::kPartnerCreate:
    case Kind::kPartnerPrice:
      j["partner"] = t.partner;
      j["earn_price_micros"] = t.earn_price_micros;
      j["redeem_price_micros"] = t.redeem_price_micros;
      if (t.kind == Kind::kPartnerPrice && t.time_ns != 0) j["effective_from"] = FormatTime(t.time_ns);
      break;
    case Kind::kSettle:
      j["partner"] = t.partner;
      if (t.time_ns != 0) j["to"] = FormatTime(t.time_ns);
      break;
    default:
      break;
  }
}

void AddMemberFields(const ledger::Transaction& t, Json& j) {
  switch (t.kind) {
    case Kind::kEarn:
    case Kind::kRedeem:
      j["member"] = t.member;
      j["points"] = t.points;
      if (!t.partner.empty()) j["partner"] = t.partner;
      if (t.kind == Kind::kEarn && t.time_ns != 0) j["expires_at"] = FormatTime(t.time_ns);
      if (t.kind == Kind::kEarn && t.lock_days >= 0) j["lock_days"] = t.lock_days;
      break;
    case Kind::kReferral:
      j["referrer"] = t.member;
      j["referee"] = t.member2;
      j["referrer_points"] = t.points;
      j["referee_points"] = t.points2;
      break;
    case Kind::kTransfer:
      j["from"] = t.member;
      j["to"] = t.member2;
      j["points"] = t.points;
      break;
    case Kind::kAdjust:
      j["member"] = t.member;
      j["delta"] = t.delta;
      break;
    case Kind::kReverse:
      j["original_id"] = ledger::IdToHex(t.ref);
      if (t.points != 0) j["points"] = t.points;
      if (t.clawback_partial) j["clawback_partial"] = true;
      break;
    case Kind::kHold:
      j["member"] = t.member;
      j["points"] = t.points;
      j["timeout"] = t.timeout_s;
      break;
    case Kind::kCapture:
    case Kind::kRelease:
    case Kind::kHoldTimeout:
      j["hold_id"] = ledger::IdToHex(t.ref);
      if (t.kind == Kind::kCapture && t.points != 0) j["points"] = t.points;
      break;
    case Kind::kExpire:
      j["member"] = t.member;
      j["lot_expires_at"] = TimeOrNever(t.time_ns);
      j["lot_seq"] = t.lot_seq;
      j["lot_index"] = t.lot_index;
      break;
    case Kind::kAccountClose:
    case Kind::kAccountOpen:
      j["member"] = t.member;
      break;
    default:
      break;
  }
}

Json TransactionJson(const ledger::Transaction& t) {
  Json j;
  j["kind"] = std::string(ledger::KindName(t.kind));
  j["program"] = t.program;
  AddConfigFields(t, j);
  AddMemberFields(t, j);
  if (!t.order_ref.empty()) j["order_ref"] = t.order_ref;
  if (!t.reason.empty()) j["reason"] = t.reason;
  if (!t.metadata.empty()) j["metadata"] = t.metadata;
  return j;
}

std::string JsonScalarText(const Json& v) {
  if (v.is_string()) return Shown(v.get<std::string>());
  return Dump(v);
}

}  // namespace

std::string HexBytes(std::span<const uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(bytes.size() * 2);
  for (uint8_t b : bytes) {
    hex.push_back(kDigits[b >> 4]);
    hex.push_back(kDigits[b & 0xf]);
  }
  return hex;
}

std::string MicrosToDecimal(int64_t micros) {
  const bool negative = micros < 0;
  const uint64_t abs = negative ? uint64_t{0} - static_cast<uint64_t>(micros) : static_cast<uint64_t>(micros);
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%s%" PRIu64 ".%06" PRIu64, negative ? "-" : "", abs / 1'000'000,
                abs % 1'000'000);
  return buf;
}

std::string_view CodeHint(Code code) {
  switch (code) {
    case Code::kOk: return "";
    case Code::kIdZero: return "the transaction id is zero";
    case Code::kIdConflict:
      return "this id was used before with different content; use a new --id for a new attempt";
    case Code::kProgramNotFound: return "no such program; create it with `pointledger program create`";
    case Code::kProgramExists: return "a program or partner of that name already exists";
    case Code::kAccountNotFound: return "no such member in this program (auto_open is off, or it never earned)";
    case Code::kAccountClosed: return "the member's account is closed";
    case Code::kPartnerNotFound: return "no such partner; create it with `pointledger partner create`";
    case Code::kInvalidAmount:
      return "an amount is zero or out of range (or a day count, a timeout, or a settle --to in the future)";
    case Code::kOverflow: return "a balance total would overflow";
    case Code::kSameAccount: return "both members are the same";
    case Code::kInsufficientPoints: return "the member has fewer available points than asked";
    case Code::kExpiryInPast: return "the expiry or effective time is not in the future";
    case Code::kReferralAlreadyRewarded: return "this referee was already rewarded in this program";
    case Code::kOriginalNotFound: return "no transaction with that --original key in this program";
    case Code::kOriginalNotReversible: return "that transaction cannot be reversed (it was rejected, or its kind is not earn, redeem, referral, transfer, adjust or capture)";
    case Code::kReversalExceedsOriginal: return "the reversals would exceed the original's points";
    case Code::kHoldNotFound: return "no hold with that --hold key in this program";
    case Code::kHoldNotPending: return "the hold was already captured, released or timed out";
    case Code::kCaptureExceedsHold: return "more points than the hold reserved";
    case Code::kLinkedEventFailed: return "another transaction of its linked chain failed";
    case Code::kLinkedChainOpen: return "the input ends inside a linked chain (the last line has linked:true)";
    case Code::kFieldTooLong:
      return "a field is too long, empty, or has characters outside its alphabet "
             "(names: [a-z0-9_-], at most 32 bytes; members: at most 64 bytes; currency: 3 letters A-Z)";
    case Code::kPermissionDenied: return "the API key may not do this (program or scope)";
  }
  return "";
}

// The engine names a differing field as the wire schema does (member2,
// time_ns ...); a command-line user knows it by the kind's flag.
std::string_view ConflictFieldName(Kind kind, std::string_view field) {
  const bool referral = kind == Kind::kReferral, transfer = kind == Kind::kTransfer;
  if (field == "member") return referral ? "referrer" : transfer ? "from" : field;
  if (field == "member2") return referral ? "referee" : transfer ? "to" : field;
  if (field == "points" && referral) return "referrer_points";
  if (field == "points2") return referral ? "referee_points" : field;
  if (field == "ref") return kind == Kind::kReverse ? "original" : "hold";
  if (field == "timeout_s") return "timeout";
  if (field == "time_ns") {
    switch (kind) {
      case Kind::kEarn: return "expires_at";
      case Kind::kPartnerPrice: return "effective_from";
      case Kind::kSettle: return "to";
      default: return field;
    }
  }
  if (field == "program" && kind == Kind::kProgramCreate) return "name";
  return field;
}

std::string ResultJson(std::string_view key, Kind kind, const ledger::Result& r) {
  Json j;
  j["id"] = std::string(key);
  j["status"] = std::string(ledger::CodeName(r.code));
  // SPEC §8: a rejection is {"id","status"}. A retried recorded rejection
  // also says it is one, with the original seq and time (SPEC §3), so a
  // script can tell "rejected now" from "was rejected before".
  if (r.code == Code::kOk || r.duplicate) {
    j["duplicate"] = r.duplicate;
    j["seq"] = r.seq;
    j["timestamp"] = FormatTime(r.timestamp_ns);
  }
  if (r.code == Code::kOk && ReportsPoints(kind)) j["points"] = r.points;
  if (r.code == Code::kIdConflict) j["conflict_field"] = std::string(ConflictFieldName(kind, r.conflict_field));
  return Dump(j);
}

std::string ResultText(std::string_view key, Kind kind, const ledger::Result& r) {
  if (r.code == Code::kOk) {
    std::string line = StrCat(Shown(key), "  ok", r.duplicate ? " (duplicate)" : "", "  seq ", r.seq, "  ",
                              FormatTime(r.timestamp_ns));
    if (ReportsPoints(kind)) line += StrCat("  points ", r.points);
    return line;
  }
  std::string line = StrCat(Shown(key), "  rejected: ", ledger::CodeName(r.code));
  if (r.code == Code::kIdConflict) line += StrCat(" (field ", ConflictFieldName(kind, r.conflict_field), ")");
  if (r.seq != 0) line += StrCat(r.duplicate ? " (duplicate)" : "", "  seq ", r.seq);
  return StrCat(line, " - ", CodeHint(r.code));
}

std::string BalanceJson(std::string_view program, std::string_view member, const ledger::Balance& b) {
  Json j;
  j["program"] = std::string(program);
  j["member"] = std::string(member);
  j["posted"] = b.posted;
  j["pending"] = b.pending;
  j["available"] = b.available;
  j["locked"] = b.locked;
  j["expired"] = b.expired;
  j["closed"] = b.closed;
  Json expiring = Json::array();
  for (const ledger::ExpiringLot& lot : b.expiring) {
    Json e;
    if (lot.expires_at_ns == std::numeric_limits<int64_t>::max()) {
      e["at"] = nullptr;
    } else {
      e["at"] = FormatTime(lot.expires_at_ns);
    }
    e["points"] = lot.points;
    expiring.push_back(std::move(e));
  }
  j["expiring"] = std::move(expiring);
  return Dump(j);
}

std::string BalanceText(std::string_view program, std::string_view member, const ledger::Balance& b) {
  std::string out = StrCat("program    ", program, "\nmember     ", Shown(member), b.closed ? "  (closed)" : "", "\n");
  const std::pair<const char*, uint64_t> rows[] = {
      {"posted", b.posted}, {"pending", b.pending}, {"locked", b.locked},
      {"expired", b.expired}, {"available", b.available}};
  for (const auto& [name, value] : rows) {
    out += StrCat(Pad(name, 11), std::to_string(value), "\n");
  }
  if (b.expiring.empty()) return out + "expiring   -\n";
  out += "expiring   AT                              POINTS\n";
  for (const ledger::ExpiringLot& lot : b.expiring) {
    out += StrCat("           ", Pad(TimeOrNever(lot.expires_at_ns), 32), std::to_string(lot.points), "\n");
  }
  return out;
}

std::string HistoryEntryJson(const ledger::HistoryEntry& e) {
  Json j;
  j["seq"] = e.seq;
  j["timestamp"] = FormatTime(e.timestamp_ns);
  j["id"] = ledger::IdToHex(e.id);
  j["kind"] = std::string(ledger::KindName(e.kind));
  j["points"] = e.points;
  return Dump(j);
}

std::string HistoryText(std::span<const ledger::HistoryEntry> entries) {
  if (entries.empty()) return "no transactions\n";
  std::string out = StrCat(Pad("SEQ", 10), Pad("TIMESTAMP", 32), Pad("KIND", 15), PadLeft("POINTS", 12),
                           "  ID\n");
  for (const ledger::HistoryEntry& e : entries) {
    out += StrCat(Pad(std::to_string(e.seq), 10), Pad(FormatTime(e.timestamp_ns), 32),
                  Pad(std::string(ledger::KindName(e.kind)), 15),
                  PadLeft(StrCat(e.points > 0 ? "+" : "", e.points), 12), "  ",
                  ledger::IdToHex(e.id), "\n");
  }
  return out;
}

namespace {

// A statement's period and amounts, as `settle statement --json` and
// `tx get` of a settle show them.
Json StatementFields(const ledger::Statement& s) {
  Json j;
  j["from"] = FormatTime(s.from_ns);
  j["to"] = FormatTime(s.to_ns);
  j["earned_points"] = s.earned_points;
  j["redeemed_points"] = s.redeemed_points;
  j["partner_owes_micros"] = s.partner_owes_micros;
  j["program_owes_micros"] = s.program_owes_micros;
  j["net_micros"] = s.net_micros;
  j["payer"] = s.payer;
  return j;
}

}  // namespace

std::string TxRecordJson(std::string_view key, const ledger::TxRecord& rec) {
  Json j;
  j["id"] = std::string(key);
  j["id_hex"] = ledger::IdToHex(rec.tx.id);
  j["seq"] = rec.seq;
  j["timestamp"] = FormatTime(rec.timestamp_ns);
  j["status"] = std::string(ledger::CodeName(rec.result.code));
  if (rec.result.code == Code::kOk && ReportsPoints(rec.tx.kind)) j["result_points"] = rec.result.points;
  const Json fields = TransactionJson(rec.tx);  // a named object: items() refers into it
  for (const auto& item : fields.items()) j[item.key()] = item.value();
  const std::map<ledger::Id, std::string> labels = AccountLabels(rec.tx);
  auto label = [&](const ledger::Id& id) {
    auto it = labels.find(id);
    return it != labels.end() ? it->second : ledger::IdToHex(id);
  };
  Json postings = Json::array();
  for (const ledger::Posting& p : rec.postings) {
    Json pj;
    pj["debit"] = label(p.debit);
    pj["credit"] = label(p.credit);
    pj["points"] = p.points;
    pj["type"] = std::string(PostingTypeName(p.type));
    postings.push_back(std::move(pj));
  }
  j["postings"] = std::move(postings);
  j["hash"] = HexBytes(rec.hash);
  if (rec.statement) j["statement"] = StatementFields(*rec.statement);
  return Dump(j);
}

namespace {

// The columns after `hash`: each a field of TransactionJson (a kind that
// has none of them leaves the cell empty), then the statement's.
constexpr std::string_view kCsvFieldColumns[] = {
    "original_id",  "hold_id",     "expires_at",        "lock_days",          "timeout",
    "clawback_partial", "lot_expires_at", "lot_seq",     "lot_index",          "currency",
    "point_value_micros", "expiry_days", "auto_open",   "earn_price_micros",  "redeem_price_micros",
    "effective_from", "settle_to", "metadata"};
constexpr std::string_view kCsvStatementColumns[] = {
    "from", "to", "earned_points", "redeemed_points", "partner_owes_micros",
    "program_owes_micros", "net_micros", "payer"};

std::string CsvCell(const Json& v) {
  if (v.is_null()) return "";
  if (v.is_string()) return CsvField(v.get_ref<const std::string&>());
  return Dump(v);
}

}  // namespace

std::string CsvField(std::string_view s) {
  if (s.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(s);
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

const std::string& TxRecordCsvHeader() {
  static const std::string header = [] {
    std::string h =
        "seq,timestamp,id,kind,program,status,member,member2,partner,points,points2,delta,"
        "result_points,order_ref,reason,hash";
    for (std::string_view c : kCsvFieldColumns) h += StrCat(",", c);
    for (std::string_view c : kCsvStatementColumns) h += StrCat(",statement_", c);
    return h;
  }();
  return header;
}

std::string TxRecordCsv(const ledger::TxRecord& rec) {
  const ledger::Transaction& t = rec.tx;
  std::string row = StrCat(rec.seq, ",", FormatTime(rec.timestamp_ns), ",", ledger::IdToHex(t.id), ",",
                           ledger::KindName(t.kind), ",", CsvField(t.program), ",",
                           ledger::CodeName(rec.result.code), ",", CsvField(t.member), ",",
                           CsvField(t.member2), ",", CsvField(t.partner), ",", t.points, ",", t.points2,
                           ",", t.delta, ",", rec.result.points, ",", CsvField(t.order_ref), ",",
                           CsvField(t.reason), ",", HexBytes(rec.hash));
  const Json fields = TransactionJson(t);
  for (std::string_view c : kCsvFieldColumns) {
    // A settle's `to` (its JSON name; a transfer's `to` is member2).
    if (c == "settle_to") c = t.kind == Kind::kSettle ? "to" : "";
    auto it = fields.find(std::string(c));
    row += StrCat(",", it == fields.end() ? std::string() : CsvCell(*it));
  }
  const Json statement = rec.statement ? StatementFields(*rec.statement) : Json::object();
  for (std::string_view c : kCsvStatementColumns) {
    auto it = statement.find(std::string(c));
    row += StrCat(",", it == statement.end() ? std::string() : CsvCell(*it));
  }
  return row;
}

std::string TxRecordText(std::string_view key, const ledger::TxRecord& rec) {
  Json j = nlohmann::ordered_json::parse(TxRecordJson(key, rec), nullptr, false);
  std::string out;
  for (auto& [name, value] : j.items()) {
    if (name == "postings" || name == "statement") continue;
    out += StrCat(Pad(name, 20), JsonScalarText(value), "\n");
  }
  if (j.contains("statement")) {
    out += "statement\n";
    for (auto& [name, value] : j["statement"].items()) {
      out += StrCat("  ", Pad(name, 20), JsonScalarText(value), "\n");
    }
  }
  out += "postings\n";
  for (const auto& p : j["postings"]) {
    out += StrCat("  ", Shown(p["debit"].get<std::string>()), " -> ", Shown(p["credit"].get<std::string>()), "  ",
                  Dump(p["points"]), p["type"] == "posted" ? "" : StrCat("  (", p["type"].get<std::string>(), ")"),
                  "\n");
  }
  if (rec.postings.empty()) out += "  (none)\n";
  return out;
}

std::string StatementJson(const ledger::Statement& s) {
  Json j;
  j["program"] = s.program;
  j["partner"] = s.partner;
  const Json fields = StatementFields(s);  // a named object: items() refers into it
  for (const auto& item : fields.items()) j[item.key()] = item.value();
  return Dump(j);
}

std::string StatementText(const ledger::Statement& s) {
  std::string out = StrCat("settlement statement  ", s.program, " / ", s.partner, "\n",
                           "period                ", FormatTime(s.from_ns), " .. ", FormatTime(s.to_ns), "\n");
  out += StrCat("earned at partner     ", s.earned_points, " points  partner owes  ",
                MicrosToDecimal(s.partner_owes_micros), "\n");
  out += StrCat("redeemed at partner   ", s.redeemed_points, " points  program owes  ",
                MicrosToDecimal(s.program_owes_micros), "\n");
  if (s.payer == "none") return out + "net                   0.000000  nothing to pay\n";
  const int64_t net = s.net_micros < 0 ? -s.net_micros : s.net_micros;
  return out + StrCat("net                   ", MicrosToDecimal(net), "  paid by the ", s.payer, "\n");
}

std::string SettledJson(std::string_view key, const ledger::Result& r, const ledger::Statement& s) {
  Json j = Json::parse(ResultJson(key, Kind::kSettle, r));
  j["statement"] = StatementFields(s);
  return Dump(j);
}

std::string SettledText(std::string_view key, const ledger::Result& r, const ledger::Statement& s) {
  std::string out = ResultText(key, Kind::kSettle, r);
  std::string statement = StatementText(s);
  while (!statement.empty() && statement.back() == '\n') statement.pop_back();
  return StrCat(out, "\n", statement);
}

std::string HeadJson(const ledger::ChainHead& head) {
  Json j;
  j["seq"] = head.seq;
  j["timestamp"] = head.seq == 0 ? Json(nullptr) : Json(FormatTime(head.timestamp_ns));
  j["hash"] = HexBytes(head.hash);
  return Dump(j);
}

std::string HeadText(const ledger::ChainHead& head) {
  if (head.seq == 0) return StrCat("empty ledger  head 0:", HexBytes(head.hash), "\n");
  return StrCat("seq        ", head.seq, "\ntimestamp  ", FormatTime(head.timestamp_ns), "\nhash       ",
                HexBytes(head.hash), "\nhead       ", head.seq, ":", HexBytes(head.hash), "\n");
}

}  // namespace pointledger::tools
