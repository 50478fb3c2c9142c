// pointledger: the command line of PointLedger (SPEC §8). The commands live
// in tools/cli_*.cc; docs/cli.md describes each with an example.
#include <cstdio>

#include "absl/synchronization/mutex.h"
#include "tools/cli_app.h"

int main(int argc, char** argv) {
  // Debian's abseil checks lock order on every lock (docs/operations.md,
  // "Lock-order checks"): the tests keep that, the shipped programs don't.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  // Results can be many (post --file): a large buffer, flushed at exit.
  static char buffer[1 << 16];
  std::setvbuf(stdout, buffer, _IOFBF, sizeof(buffer));
  return pointledger::tools::RunCli(argc, argv);
}
