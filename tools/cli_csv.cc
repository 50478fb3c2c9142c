#include "tools/cli_csv.h"

#include <cstdio>
#include <utility>

#include "absl/status/status.h"
#include "ledger/status.h"

namespace pointledger::tools {

absl::StatusOr<bool> CsvReader::Next(std::vector<std::string>* fields, uint64_t* line) {
  fields->clear();
  if (line_ == 0) SkipByteOrderMark();
  int c = in_.get();
  if (c == EOF) return false;
  *line = ++line_;
  std::string field;
  bool quoted = false, was_quoted = false;
  for (;; c = in_.get()) {
    if (quoted) {
      if (c == EOF) return absl::InvalidArgumentError(StrCat("--csv line ", *line, ": unterminated quoted field"));
      if (c == '"') {
        if (in_.peek() == '"') {
          in_.get();
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
    if (c == '\r' && in_.peek() == '\n') continue;
    if (was_quoted) {
      return absl::InvalidArgumentError(StrCat("--csv line ", line_, ": text after a closing quote"));
    }
    field.push_back(static_cast<char>(c));
  }
}

// A UTF-8 byte-order mark (spreadsheets write one) is not part of the
// first field: left in it, it kept a quoted header field from being read
// as quoted. Read byte by byte, so a pipe works too (no seeking back).
void CsvReader::SkipByteOrderMark() {
  for (const int want : {0xEF, 0xBB, 0xBF}) {
    if (in_.peek() != want) return;  // not a BOM: the header check says what is wrong
    in_.get();
  }
}

}  // namespace pointledger::tools
