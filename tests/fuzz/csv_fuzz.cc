// libFuzzer target: the input is a `reconcile external --csv` file, read
// record by record by CsvReader (tools/cli_csv.h) as the command reads it.
//
// Oracles beyond "no crash, no hang, no sanitizer report": an error is
// InvalidArgument naming a line of the file ("--csv line N: ..."), at or
// after the line the record starts on; each record starts on the line that
// the newlines before it say; the fields hold no more bytes than the input
// (the reader keeps nothing else). A file read without error, written out
// again with every field quoted per RFC 4180 where it needs it, reads back
// as the same records.
//
// What this cannot show: that a record over kCsvRecordBytesMax is refused
// (libFuzzer's inputs are far smaller; tests/tools/cli_csv_test.cc).
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "ledger/status.h"
#include "tools/cli_csv.h"

namespace pointledger::tools {
namespace {

using Record = std::vector<std::string>;

// The lines of text: 1 + the newlines in it.
uint64_t LineCount(std::string_view text) {
  uint64_t n = 1;
  for (const char c : text) n += c == '\n' ? 1 : 0;
  return n;
}

// The number in "--csv line N: ...", or 0 if the message is not of that form.
uint64_t LineOf(std::string_view message) {
  constexpr std::string_view kPrefix = "--csv line ";
  if (!message.starts_with(kPrefix)) return 0;
  message.remove_prefix(kPrefix.size());
  uint64_t n = 0;
  size_t digits = 0;
  for (; digits < message.size() && message[digits] >= '0' && message[digits] <= '9'; ++digits) {
    n = n * 10 + static_cast<uint64_t>(message[digits] - '0');
  }
  if (digits == 0 || digits > 19 || message.substr(digits, 2) != ": ") return 0;
  return n;
}

// Reads every record of text; false (and PL_CHECKs on the error) if the
// reader refuses it.
bool ReadAll(std::string_view text, std::vector<Record>* records) {
  std::istringstream in{std::string(text)};
  CsvReader reader(in);
  Record fields;
  uint64_t line = 0;
  size_t start = 0;  // where the next record starts (a BOM is skipped inside Next)
  size_t field_bytes = 0;
  for (;;) {
    absl::StatusOr<bool> more = reader.Next(&fields, &line);
    if (!more.ok()) {
      PL_CHECK(more.status().code() == absl::StatusCode::kInvalidArgument);
      const uint64_t bad = LineOf(std::string(more.status().message()));
      PL_CHECK(bad >= line && bad <= LineCount(text));
      return false;
    }
    if (!*more) break;
    PL_CHECK(!fields.empty());
    PL_CHECK(line == LineCount(text.substr(0, start)));
    for (const std::string& f : fields) field_bytes += f.size();
    PL_CHECK(field_bytes <= text.size());
    records->push_back(fields);
    // The stream stands just past the record's last byte, or at the end.
    const std::streampos at = in.tellg();
    start = at < 0 ? text.size() : static_cast<size_t>(at);
  }
  return true;
}

// RFC 4180: a field is quoted when it holds a comma, a quote or a line
// break, with each quote doubled. Also when it starts with a UTF-8 BOM,
// which the reader would skip at the start of the file.
std::string Quoted(std::string_view s) {
  if (s.find_first_of(",\"\r\n") == std::string_view::npos && !s.starts_with("\xEF\xBB\xBF")) {
    return std::string(s);
  }
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

std::string Write(const std::vector<Record>& records) {
  std::string out;
  for (const Record& r : records) {
    for (size_t i = 0; i < r.size(); ++i) {
      if (i > 0) out += ',';
      out += Quoted(r[i]);
    }
    out += '\n';
  }
  return out;
}

void Run(std::string_view text) {
  std::vector<Record> records;
  if (!ReadAll(text, &records)) return;
  const std::string written = Write(records);
  std::vector<Record> back;
  PL_CHECK(ReadAll(written, &back));
  PL_CHECK(back == records);
}

}  // namespace
}  // namespace pointledger::tools

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  pointledger::tools::Run(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
