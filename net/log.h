// The server's log: one line per connection event or error, on stderr.
// Never one per transaction (SPEC §6 keeps the hot path quiet).
#ifndef POINTLEDGER_NET_LOG_H_
#define POINTLEDGER_NET_LOG_H_

#include <unistd.h>

#include <string>
#include <string_view>

namespace pointledger::net {

// Writes "pointledgerd: <line>\n" with one write(2), so lines from several
// threads never interleave.
inline void LogLine(std::string_view line) {
  std::string out;
  out.reserve(line.size() + 16);
  out.append("pointledgerd: ");
  out.append(line);
  out.push_back('\n');
  const ssize_t ignored = ::write(STDERR_FILENO, out.data(), out.size());
  (void)ignored;  // nowhere to report a failing stderr
}

}  // namespace pointledger::net

#endif  // POINTLEDGER_NET_LOG_H_
