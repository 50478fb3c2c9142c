// Where the engine's few operational messages go: a checkpoint that failed
// and is retried, a write-ahead log segment that cannot be prepared, reader
// slots freed after dead processes. Rare, and never one per transaction.
// The engine has no log of its own: the server passes its own (net/log.h),
// so that these lines carry its time stamp and name like every other one.
#ifndef POINTLEDGER_LEDGER_LOG_SINK_H_
#define POINTLEDGER_LEDGER_LOG_SINK_H_

#include <cstdio>
#include <functional>
#include <string>
#include <string_view>

namespace pointledger::ledger {

// Takes one line, without its line end.
using LogSink = std::function<void(std::string_view line)>;

// To `sink`; without one, to stderr as "pointledger: <line>" (the CLI
// reading a directory, tests).
inline void Log(const LogSink& sink, std::string_view line) {
  if (sink) {
    sink(line);
    return;
  }
  const std::string out = "pointledger: " + std::string(line) + "\n";
  std::fwrite(out.data(), 1, out.size(), stderr);
}

}  // namespace pointledger::ledger

#endif  // POINTLEDGER_LEDGER_LOG_SINK_H_
