// RFC 4180 CSV records from a stream, for `pointledger reconcile external
// --csv` (tools/cli_external.cc). Its own header so that a fuzz target
// (tests/fuzz/csv_fuzz.cc) can reach it: the file comes from a POS or web
// shop export, so any bytes at all.
#ifndef POINTLEDGER_TOOLS_CLI_CSV_H_
#define POINTLEDGER_TOOLS_CLI_CSV_H_

#include <cstdint>
#include <istream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace pointledger::tools {

// Quoted fields may hold commas, quotes ("" inside quotes) and line breaks;
// a record ends at "\n" or "\r\n" outside quotes, or at the end of input.
// A UTF-8 byte-order mark before the first record is skipped. Tracks line
// numbers for messages. Not thread-safe; reads `in` byte by byte (a pipe
// works: it never seeks).
class CsvReader {
 public:
  explicit CsvReader(std::istream& in) : in_(in) {}
  CsvReader(const CsvReader&) = delete;
  CsvReader& operator=(const CsvReader&) = delete;

  // The next record's fields into *fields (a blank line is one empty
  // field); *line is the line the record starts on. False at the end of
  // input. InvalidArgument naming the line ("--csv line N: ...") for an
  // unterminated quoted field or text after a closing quote.
  absl::StatusOr<bool> Next(std::vector<std::string>* fields, uint64_t* line);

 private:
  void SkipByteOrderMark();

  std::istream& in_;
  uint64_t line_ = 0;
};

}  // namespace pointledger::tools

#endif  // POINTLEDGER_TOOLS_CLI_CSV_H_
