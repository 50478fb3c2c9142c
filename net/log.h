// The server's log: one line per connection event or error, on stderr.
// Never one per transaction (SPEC §6 keeps the hot path quiet).
#ifndef POINTLEDGER_NET_LOG_H_
#define POINTLEDGER_NET_LOG_H_

#include <unistd.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace pointledger::net {

// Whether stderr is systemd's journal: JOURNAL_STREAM names its device and
// inode ("DEV:INODE"), and the journal stamps each line itself.
bool StderrIsJournal();

// "2026-12-06T23:02:24.123Z " (UTC, milliseconds) for a Unix time in ns.
std::string LogTimestamp(int64_t unix_ns);

// The wall clock, in ns since the Unix epoch.
int64_t LogNowNs();

// Writes "<time> pointledgerd: <line>\n" with one write(2), so lines from
// several threads never interleave. The time is left out when stderr is
// the journal (since session 25; a log written to a file had no times).
inline void LogLine(std::string_view line) {
  static const bool stamp = !StderrIsJournal();
  std::string out;
  out.reserve(line.size() + 48);
  if (stamp) out.append(LogTimestamp(LogNowNs()));
  out.append("pointledgerd: ");
  out.append(line);
  out.push_back('\n');
  const ssize_t ignored = ::write(STDERR_FILENO, out.data(), out.size());
  (void)ignored;  // nowhere to report a failing stderr
}

}  // namespace pointledger::net

#endif  // POINTLEDGER_NET_LOG_H_
