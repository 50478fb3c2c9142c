// RFC 4180 CSV records from a stream, for `pointledger reconcile external
// --csv` (tools/cli_external.cc). Its own header so that a fuzz target
// (tests/fuzz/csv_fuzz.cc) can reach it: the file comes from a POS or web
// shop export, so any bytes at all.
#ifndef POINTLEDGER_TOOLS_CLI_CSV_H_
#define POINTLEDGER_TOOLS_CLI_CSV_H_

#include <cstddef>
#include <cstdint>
#include <istream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace pointledger::tools {

// The most bytes one record may take in the file, separators and quotes
// included. An export's row is a few hundred bytes; one with every column
// a shop system has stays far below. Without a bound, a quote never closed
// or a file with no line break was read whole into one field (found by the
// csv fuzz target's review, session 24). A record's fields then take at
// most this much, plus one std::string per separator.
inline constexpr size_t kCsvRecordBytesMax = size_t{1} << 20;

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
  // unterminated quoted field, text after a closing quote, or a record
  // over kCsvRecordBytesMax. Unavailable if reading `in` failed (an I/O
  // error): a stream ends at one as at the end of the file, and the rows
  // past it would otherwise be reported as missing from the file.
  absl::StatusOr<bool> Next(std::vector<std::string>* fields, uint64_t* line);

 private:
  // libstdc++'s filebuf turns a failed read() into badbit, not just EOF.
  bool ReadFailed() const { return in_.bad(); }
  // Names the line being read (inside_record), or the last one read.
  absl::Status ReadError(bool inside_record) const;
  void SkipByteOrderMark();
  // The next byte, or EOF; those SkipByteOrderMark read but kept come first.
  int Get() {
    return kept_at_ < kept_.size() ? static_cast<unsigned char>(kept_[kept_at_++]) : in_.get();
  }
  int Peek() {
    return kept_at_ < kept_.size() ? static_cast<unsigned char>(kept_[kept_at_]) : in_.peek();
  }

  std::istream& in_;
  uint64_t line_ = 0;
  std::string kept_;  // the start of the first field, which began as a BOM does
  size_t kept_at_ = 0;
};

}  // namespace pointledger::tools

#endif  // POINTLEDGER_TOOLS_CLI_CSV_H_
