// What `pointledger` prints: one JSON object per line with --json (SPEC §8),
// otherwise readable lines and tables. Pure functions; no I/O.
#ifndef POINTLEDGER_TOOLS_CLI_FORMAT_H_
#define POINTLEDGER_TOOLS_CLI_FORMAT_H_

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ledger/ledger.h"
#include "nlohmann/json_fwd.hpp"

namespace pointledger::tools {

// One line of JSON. Invalid UTF-8 (keys and member names come from users)
// is replaced rather than thrown on.
std::string Dump(const nlohmann::ordered_json& j);

// A user's string (a key, a member, an order_ref, a reason) as the text
// output shows it: a backslash, control characters (a quoted CSV field or a
// JSON string may hold a line break; an escape sequence would drive the
// terminal) and DEL escaped as \\, \n, \r, \t or \xNN, so one record stays
// one line and prints what was stored; UTF-8 is left as it is. --json gives
// the string itself.
std::string Shown(std::string_view s);

// Exit codes (SPEC §8).
inline constexpr int kExitOk = 0;        // all committed (or duplicates), check passed
inline constexpr int kExitRejected = 1;  // a transaction was rejected, or not found
inline constexpr int kExitUsage = 2;     // usage, connection or authentication error

// True if the result counts as committed for the exit code: ok, including
// duplicates of an earlier ok.
inline bool Committed(const ledger::Result& r) { return r.code == ledger::Code::kOk; }

// {"id":"order-1001","status":"ok","duplicate":false,"seq":42,"timestamp":"..."}
// or {"id":"reward-77","status":"insufficient_points"} (a retried recorded
// rejection adds "duplicate":true, "seq" and "timestamp"); "points" is
// added for an ok reverse, capture or account_close, "conflict_field" (by
// its command-line name: "to", "expires_at" ...) for id_conflict. `key` is
// the --id KEY as given (or the hex id).
std::string ResultJson(std::string_view key, ledger::Kind kind, const ledger::Result& r);
// A settle close's result with the statement it recorded: the JSON above
// with "statement" (as `settle statement --json` has it), and the text
// line followed by the statement's lines.
std::string SettledJson(std::string_view key, const ledger::Result& r, const ledger::Statement& s);
std::string SettledText(std::string_view key, const ledger::Result& r, const ledger::Statement& s);
// "order-1001  ok  seq 42  2026-11-22T10:00:00.123456789Z"
// "reward-77  rejected: insufficient_points (the member has fewer available points than asked)"
std::string ResultText(std::string_view key, ledger::Kind kind, const ledger::Result& r);

// One sentence on what a rejection means and what to do; "" for ok.
std::string_view CodeHint(ledger::Code code);

// {"program":"acme","member":"alice","posted":70,"pending":0,"available":70,
//  "locked":0,"expired":0,"closed":false,"expiring":[{"at":"...","points":70}]}
// A lot that never expires has "at":null.
std::string BalanceJson(std::string_view program, std::string_view member, const ledger::Balance& b);
std::string BalanceText(std::string_view program, std::string_view member, const ledger::Balance& b);

// History: one JSON object per entry (newest first), or a table.
std::string HistoryEntryJson(const ledger::HistoryEntry& e);
std::string HistoryText(std::span<const ledger::HistoryEntry> entries);

// A stored transaction: its fields (spelled as the command-line flags, with
// '-' as '_'), result and postings; account ids of the program's system
// accounts and of the members it names are shown as "acme/issuance",
// "acme/member/alice".
std::string TxRecordJson(std::string_view key, const ledger::TxRecord& rec);
std::string TxRecordText(std::string_view key, const ledger::TxRecord& rec);
// The same as one CSV row (`audit export --format csv`): the columns of
// TxRecordCsvHeader(), the first sixteen every kind has, then (since
// session 33) those only some kinds have, named as in the JSON and empty
// where the kind has none, and a settle's statement. No postings: the
// JSON lines export has them.
const std::string& TxRecordCsvHeader();
std::string TxRecordCsv(const ledger::TxRecord& rec);
// RFC 4180: quoted when it holds a comma, a quote or a line break.
std::string CsvField(std::string_view s);

std::string StatementJson(const ledger::Statement& s);
std::string StatementText(const ledger::Statement& s);

// {"seq":42,"timestamp":"...","hash":"<64 hex>"}; text adds SEQ:HASH, the
// form `audit verify --expect-head` takes.
std::string HeadJson(const ledger::ChainHead& head);
std::string HeadText(const ledger::ChainHead& head);

std::string HexBytes(std::span<const uint8_t> bytes);

// Money in micros as a decimal amount: 1234567 -> "1.234567".
std::string MicrosToDecimal(int64_t micros);

}  // namespace pointledger::tools

#endif  // POINTLEDGER_TOOLS_CLI_FORMAT_H_
