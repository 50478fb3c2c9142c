#include "tools/cli_csv.h"

#include <fstream>
#include <ios>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/temp_dir.h"

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

// A CR that ends the file ends the last record, as CRLF does; a CR
// elsewhere outside quotes is kept (found by a finance review, session 32:
// "100\r" was read as the points).
TEST(CsvReader, ACarriageReturnAtTheEndOfTheFileEndsTheRecord) {
  absl::StatusOr<std::vector<std::vector<std::string>>> r = ReadAll("a,b\r\nc,100\r");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(*r, ElementsAre(ElementsAre("a", "b"), ElementsAre("c", "100")));
  r = ReadAll("a\rb,c\n");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(*r, ElementsAre(ElementsAre("a\rb", "c")));
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

// A stream buffer that serves `text`, then fails as a disk read does:
// libstdc++'s filebuf throws from underflow() when read() fails, and the
// stream turns that into badbit and EOF.
class FailingBuf : public std::streambuf {
 public:
  explicit FailingBuf(std::string text) : text_(std::move(text)) {
    setg(text_.data(), text_.data(), text_.data() + text_.size());
  }

 protected:
  int_type underflow() override { throw std::ios_base::failure("read failed"); }

 private:
  std::string text_;
};

// A read error ends the stream as the end of the file does; read as the
// end, the rows past it were reported missing from the file. It is an
// error naming the last line read.
TEST(CsvReader, AReadErrorIsAnErrorNotTheEndOfTheFile) {
  FailingBuf buf("order_ref,kind,points\no-1,earn,5\n");
  std::istream in(&buf);
  CsvReader reader(in);
  std::vector<std::string> fields;
  uint64_t line = 0;
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<bool> more = reader.Next(&fields, &line);
    ASSERT_TRUE(more.ok() && *more) << more.status();
  }
  absl::StatusOr<bool> more = reader.Next(&fields, &line);
  ASSERT_FALSE(more.ok());
  EXPECT_EQ(more.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(more.status().message()), HasSubstr("reading the file failed after line 2"));

  // The same mid-record, and from a real file stream: read() of a
  // directory fails (EISDIR).
  FailingBuf cut("order_ref,kind,points\no-1,ea");
  std::istream cut_in(&cut);
  CsvReader cut_reader(cut_in);
  ASSERT_TRUE(cut_reader.Next(&fields, &line).ok());
  more = cut_reader.Next(&fields, &line);
  EXPECT_EQ(more.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(more.status().message()), HasSubstr("reading the file failed in line 2"));
  test::TempDir dir;
  std::ifstream file(dir.path(), std::ios::binary);
  ASSERT_TRUE(file.is_open());
  CsvReader file_reader(file);
  EXPECT_EQ(file_reader.Next(&fields, &line).status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace pointledger::tools
