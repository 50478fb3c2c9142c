#include "tools/cli_sort.h"

#include <algorithm>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/temp_dir.h"

namespace pointledger::tools {
namespace {

using ::testing::HasSubstr;

// n rows with random ids and fields of fixed sizes (so every row takes the
// same bytes in a run); line numbers 1..n.
std::vector<Row> Rows(size_t n) {
  std::mt19937_64 rng(7);
  std::vector<Row> rows(n);
  for (size_t i = 0; i < n; ++i) {
    for (uint8_t& b : rows[i].id) b = static_cast<uint8_t>(rng());
    rows[i].order_ref = "order-" + std::to_string(100000 + i);
    rows[i].kind = "earn";
    rows[i].points = static_cast<int64_t>(i);
    rows[i].line = i + 1;
  }
  return rows;
}

// Every row comes back once, in Before order, through spilled runs and a
// merge pass (more runs than are merged at once).
TEST(ExternalSorter, SpilledRunsMergeBackInOrder) {
  test::TempDir dir;
  ExternalSorter sorter(dir.path(), "rows", 100);
  const std::vector<Row> rows = Rows(5'000);
  for (const Row& r : rows) ASSERT_TRUE(sorter.Add(r).ok());
  ASSERT_TRUE(sorter.Finish().ok());
  EXPECT_LT(sorter.run_paths().size(), 50u);  // 50 runs, merged down
  std::vector<uint64_t> seen;
  Row prev, row;
  while (sorter.Next(&row)) {
    if (!seen.empty()) {
      EXPECT_TRUE(Before(prev, row));
    }
    seen.push_back(row.line);
    prev = row;
  }
  EXPECT_TRUE(sorter.status().ok()) << sorter.status();
  std::sort(seen.begin(), seen.end());
  ASSERT_EQ(seen.size(), rows.size());
  for (size_t i = 0; i < seen.size(); ++i) ASSERT_EQ(seen[i], i + 1);
}

// A run cut short, even at a row boundary, is DataLoss naming the run. It
// used to end that run quietly: its missing rows' ids then read as
// missing from this side of the reconciliation.
TEST(ExternalSorter, ARunThatReadsBackShortIsDataLoss) {
  for (const bool at_boundary : {true, false}) {
    SCOPED_TRACE(at_boundary ? "cut at a row boundary" : "cut inside a row");
    test::TempDir dir;
    ExternalSorter sorter(dir.path(), "rows", 1'000);
    for (const Row& r : Rows(3'000)) ASSERT_TRUE(sorter.Add(r).ok());
    ASSERT_TRUE(sorter.Finish().ok());
    const std::vector<std::filesystem::path> runs = sorter.run_paths();
    ASSERT_EQ(runs.size(), 3u);
    const uintmax_t size = std::filesystem::file_size(runs[1]);
    ASSERT_EQ(size % 1'000, 0u);  // rows of equal size
    // Well past the stream's buffer (8 KiB), which holds the first rows.
    std::filesystem::resize_file(runs[1], size / 2 + (at_boundary ? 0 : 7));
    size_t count = 0;
    Row row;
    while (sorter.Next(&row)) ++count;
    EXPECT_LT(count, 3'000u);
    EXPECT_EQ(sorter.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_THAT(std::string(sorter.status().message()), HasSubstr(runs[1].string() + " read back short"));
  }
}

}  // namespace
}  // namespace pointledger::tools
