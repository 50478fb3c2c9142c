#include "tools/cli_csv.h"

#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pointledger::tools {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Every record of `text`, or the first error.
absl::StatusOr<std::vector<std::vector<std::string>>> ReadAll(const std::string& text) {
  std::istringstream in(text);
  CsvReader reader(in);
  std::vector<std::vector<std::string>> records;
  std::vector<std::string> fields;
  uint64_t line = 0;
  for (;;) {
    absl::StatusOr<bool> more = reader.Next(&fields, &line);
    if (!more.ok()) return more.status();
    if (!*more) return records;
    records.push_back(fields);
  }
}

TEST(CsvReader, ReadsQuotedFieldsAndSkipsAByteOrderMark) {
  absl::StatusOr<std::vector<std::vector<std::string>>> r =
      ReadAll("\xEF\xBB\xBF\"order_ref\",kind\r\n\"a,\"\"b\"\"\nc\",earn\n\n");
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->size(), 3u);
  EXPECT_THAT((*r)[0], ElementsAre("order_ref", "kind"));
  EXPECT_THAT((*r)[1], ElementsAre("a,\"b\"\nc", "earn"));
  EXPECT_THAT((*r)[2], ElementsAre(""));
}

// Found by the csv fuzz target (session 24): bytes that began as a BOM
// does and then did not ("\xEF", "\xEF\xBB" and another byte: a UTF-8
// character from U+FEC0 on) were dropped from the first field.
TEST(CsvReader, TheStartOfAByteOrderMarkThatIsNotOneStaysInTheFirstField) {
  for (const std::string& start : {std::string("\xEF"), std::string("\xEF\xBB"),
                                   std::string("\xEF\xBB\x80"),
                                   std::string("\xEF\xBB\xBF\xEF")}) {
    absl::StatusOr<std::vector<std::vector<std::string>>> r = ReadAll(start + "x,y\n");
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->size(), 1u);
    const std::string kept = start.starts_with("\xEF\xBB\xBF") ? start.substr(3) : start;
    EXPECT_THAT((*r)[0], ElementsAre(kept + "x", "y"));
  }
  absl::StatusOr<std::vector<std::vector<std::string>>> alone = ReadAll("\xEF\xBB");
  ASSERT_TRUE(alone.ok()) << alone.status();
  EXPECT_THAT(*alone, ElementsAre(ElementsAre("\xEF\xBB")));
}

// Found in the csv fuzz target's review (session 24): a quote never closed,
// or a file with no line break, was read whole into memory.
TEST(CsvReader, ARecordOverTheLimitIsAnErrorNamingItsLine) {
  const std::string big(kCsvRecordBytesMax, 'x');
  for (const std::string& second :
       {"\"" + big, big + "\n", std::string(kCsvRecordBytesMax + 1, ',')}) {
    absl::StatusOr<std::vector<std::vector<std::string>>> r = ReadAll("a,b\n" + second);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(r.status().message()),
                HasSubstr("--csv line 2: a record of more than"));
  }
  // At the limit, its line break included, it is read.
  absl::StatusOr<std::vector<std::vector<std::string>>> r =
      ReadAll("a,b\n" + big.substr(1) + "\n");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)[1][0].size(), kCsvRecordBytesMax - 1);
}

}  // namespace
}  // namespace pointledger::tools
