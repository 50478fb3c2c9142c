#include "tools/cli_csv.h"

#include <cstdio>
#include <utility>

#include "absl/status/status.h"
#include "ledger/status.h"

namespace pointledger::tools {

absl::StatusOr<bool> CsvReader::Next(std::vector<std::string>* fields, uint64_t* line) {
  fields->clear();
  if (line_ == 0) SkipByteOrderMark();
  int c = Get();
  if (c == EOF) return ReadFailed() ? ReadError(/*inside_record=*/false) : absl::StatusOr<bool>(false);
  *line = ++line_;
  std::string field;
  bool quoted = false, was_quoted = false;
  size_t record_bytes = 0;
  for (;; c = Get()) {
    if (c == EOF && ReadFailed()) return ReadError(/*inside_record=*/true);
    if (c != EOF && ++record_bytes > kCsvRecordBytesMax) {
      return absl::InvalidArgumentError(
          StrCat("--csv line ", *line, ": a record of more than ", kCsvRecordBytesMax, " bytes"));
    }
    if (quoted) {
      if (c == EOF) return absl::InvalidArgumentError(StrCat("--csv line ", *line, ": unterminated quoted field"));
      if (c == '"') {
        if (Peek() == '"') {
          Get();
          ++record_bytes;
          field.push_back('"');
        } else {
          quoted = false;
        }
      } else {
        if (c == '\n') ++line_;
        field.push_back(static_cast<char>(c));
      }
      continue;
    }
    if (c == '"' && field.empty() && !was_quoted) {
      quoted = was_quoted = true;
      continue;
    }
    if (c == ',' || c == '\n' || c == EOF) {
      fields->push_back(std::move(field));
      field.clear();
      was_quoted = false;
      if (c != ',') return true;
      continue;
    }
    // CRLF ends a record, and so does a CR that ends the file (a file
    // whose last CRLF lost its LF: found by a finance review, session 32,
    // "points '100\r' is not an integer"). A CR elsewhere is data.
    if (c == '\r' && (Peek() == '\n' || Peek() == EOF)) continue;
    if (was_quoted) {
      return absl::InvalidArgumentError(StrCat("--csv line ", line_, ": text after a closing quote"));
    }
    field.push_back(static_cast<char>(c));
  }
}

absl::Status CsvReader::ReadError(bool inside_record) const {
  return absl::UnavailableError(StrCat("--csv: reading the file failed ", inside_record ? "in" : "after",
                                       " line ", line_, " (an I/O error): the rest of it was not read"));
}

// A UTF-8 byte-order mark (spreadsheets write one) is not part of the
// first field: left in it, it kept a quoted header field from being read
// as quoted. Read byte by byte, so a pipe works too (no seeking back);
// bytes that only began as a BOM does are kept for the first field (they
// were dropped: found by the csv fuzz target, session 24).
void CsvReader::SkipByteOrderMark() {
  for (const int want : {0xEF, 0xBB, 0xBF}) {
    if (in_.peek() != want) return;  // not a BOM: the header check says what is wrong
    kept_.push_back(static_cast<char>(in_.get()));
  }
  kept_.clear();
}

}  // namespace pointledger::tools
