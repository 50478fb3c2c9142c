#include "net/log.h"

#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>

#include "absl/time/time.h"

namespace pointledger::net {

bool StderrIsJournal() {
  const char* stream = std::getenv("JOURNAL_STREAM");
  if (stream == nullptr) return false;
  unsigned long long dev = 0, ino = 0;
  if (std::sscanf(stream, "%llu:%llu", &dev, &ino) != 2) return false;
  struct stat st {};
  if (::fstat(STDERR_FILENO, &st) != 0) return false;
  return static_cast<unsigned long long>(st.st_dev) == dev && static_cast<unsigned long long>(st.st_ino) == ino;
}

std::string LogTimestamp(int64_t unix_ns) {
  // %E3S: seconds with milliseconds, truncated (never rounded up past the
  // second the line was written in).
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ ", absl::FromUnixNanos(unix_ns), absl::UTCTimeZone());
}

int64_t LogNowNs() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace pointledger::net
