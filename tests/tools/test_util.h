// Helpers shared by the tools tests: a fixed clock, a ledger in a temporary
// directory, and capture of what a command prints.
#ifndef POINTLEDGER_TESTS_TOOLS_TEST_UTIL_H_
#define POINTLEDGER_TESTS_TOOLS_TEST_UTIL_H_

#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "ledger/ledger.h"
#include "nlohmann/json.hpp"
#include "tools/cli_read.h"
#include "tools/cli_time.h"
#include "tests/common/temp_dir.h"

namespace pointledger::tools {

class FixedClock final : public ledger::Clock {
 public:
  int64_t NowNs() override { return now_ns; }
  int64_t now_ns = *ParseTime("2026-11-22T10:00:00Z");
};

// Each test's own directory (tests/common/temp_dir.h).
class TempDir : public ::pointledger::test::TempDir {
 public:
  TempDir() : ::pointledger::test::TempDir("pl_tools_test") {}
};

inline std::unique_ptr<ledger::Ledger> OpenTestLedger(const std::string& dir, ledger::Clock* clock) {
  ledger::Options options;
  options.dir = dir;
  options.map_size_bytes = uint64_t{256} << 20;
  options.clock = clock;
  absl::StatusOr<std::unique_ptr<ledger::Ledger>> l = ledger::Ledger::Open(options);
  PL_CHECK(l.ok());
  return std::move(*l);
}

// Captures what a command prints on its out and err streams.
class Captured {
 public:
  Captured() : out_(open_memstream(&out_buf_, &out_size_)), err_(open_memstream(&err_buf_, &err_size_)) {}
  ~Captured() {
    std::fclose(out_);
    std::fclose(err_);
    std::free(out_buf_);
    std::free(err_buf_);
  }
  Captured(const Captured&) = delete;
  Captured& operator=(const Captured&) = delete;

  Output output(bool json) { return Output{out_, err_, json, ""}; }
  std::string out() {
    std::fflush(out_);
    return std::string(out_buf_, out_size_);
  }
  std::string err() {
    std::fflush(err_);
    return std::string(err_buf_, err_size_);
  }

 private:
  char* out_buf_ = nullptr;
  size_t out_size_ = 0;
  char* err_buf_ = nullptr;
  size_t err_size_ = 0;
  std::FILE* out_;
  std::FILE* err_;
};

// `text` as one JSON value; an empty object, and a test failure, if it is
// not one.
inline nlohmann::json ParseJson(const std::string& text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  EXPECT_FALSE(j.is_discarded()) << "not one JSON value: " << text;
  return j.is_discarded() ? nlohmann::json::object() : j;
}

inline std::vector<std::string> SplitLines(const std::string& text) {
  std::vector<std::string> lines;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    lines.push_back(text.substr(pos, nl - pos));
    pos = nl + 1;
  }
  return lines;
}

// One CSV record's cells (RFC 4180 quoting; the record on one line).
inline std::vector<std::string> CsvCells(const std::string& line) {
  std::vector<std::string> cells(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted && c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
      cells.back() += '"';
      ++i;
    } else if (c == '"') {
      quoted = !quoted;
    } else if (c == ',' && !quoted) {
      cells.emplace_back();
    } else {
      cells.back() += c;
    }
  }
  return cells;
}

// A CSV export's rows as maps from its header's names to cells.
inline std::vector<std::map<std::string, std::string>> CsvRows(const std::string& text) {
  const std::vector<std::string> lines = SplitLines(text);
  std::vector<std::map<std::string, std::string>> rows;
  if (lines.empty()) return rows;
  const std::vector<std::string> header = CsvCells(lines[0]);
  for (size_t i = 1; i < lines.size(); ++i) {
    const std::vector<std::string> cells = CsvCells(lines[i]);
    EXPECT_EQ(cells.size(), header.size()) << lines[i];
    std::map<std::string, std::string>& row = rows.emplace_back();
    for (size_t c = 0; c < header.size() && c < cells.size(); ++c) row[header[c]] = cells[c];
  }
  return rows;
}

}  // namespace pointledger::tools

#endif  // POINTLEDGER_TESTS_TOOLS_TEST_UTIL_H_
