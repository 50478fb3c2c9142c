// The server log's line prefix: a UTC time, left out under the journal.
#include "net/log.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "gtest/gtest.h"
#include "ledger/status.h"

namespace pointledger::net {
namespace {

TEST(Log, TimestampIsUtcWithMilliseconds) {
  // 2026-11-24T20:08:19.999999999Z: milliseconds are cut, not rounded up
  // into the next second.
  EXPECT_EQ(LogTimestamp(int64_t{1'795'550'899} * 1'000'000'000 + 999'999'999), "2026-11-24T20:08:19.999Z ");
  EXPECT_EQ(LogTimestamp(0), "1970-01-01T00:00:00.000Z ");
  EXPECT_EQ(LogTimestamp(-1), "1969-12-31T23:59:59.999Z ");
}

// systemd sets JOURNAL_STREAM to the journal's DEV:INODE; only when that
// is stderr does the journal stamp the lines.
TEST(Log, StderrIsTheJournalOnlyWhenJournalStreamNamesIt) {
  struct stat st {};
  ASSERT_EQ(::fstat(STDERR_FILENO, &st), 0);
  const std::string own = StrCat(static_cast<unsigned long long>(st.st_dev), ":",
                                 static_cast<unsigned long long>(st.st_ino));
  const char* saved = std::getenv("JOURNAL_STREAM");
  const std::string before = saved != nullptr ? saved : "";
  ::unsetenv("JOURNAL_STREAM");
  EXPECT_FALSE(StderrIsJournal());
  ::setenv("JOURNAL_STREAM", own.c_str(), 1);
  EXPECT_TRUE(StderrIsJournal());
  ::setenv("JOURNAL_STREAM", StrCat(own, "1").c_str(), 1);  // another inode
  EXPECT_FALSE(StderrIsJournal());
  ::setenv("JOURNAL_STREAM", "garbage", 1);
  EXPECT_FALSE(StderrIsJournal());
  if (saved != nullptr) {
    ::setenv("JOURNAL_STREAM", before.c_str(), 1);
  } else {
    ::unsetenv("JOURNAL_STREAM");
  }
}

}  // namespace
}  // namespace pointledger::net
