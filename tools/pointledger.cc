// pointledger: the command line of PointLedger (SPEC §8). The commands live
// in tools/cli_*.cc; docs/cli.md describes each with an example.
#include <cstdio>

#include "tools/cli_app.h"

int main(int argc, char** argv) {
  // Results can be many (post --file): a large buffer, flushed at exit.
  static char buffer[1 << 16];
  std::setvbuf(stdout, buffer, _IOFBF, sizeof(buffer));
  return pointledger::tools::RunCli(argc, argv);
}
