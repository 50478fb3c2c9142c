// libFuzzer target: bytes from a client through the server's frame
// verification, Hello, reads and batches applied to a real ledger
// (tests/fuzz/frame_harness.h). Seeds: tests/fuzz/corpus/frame/ (written by
// frame_seeds). `make fuzz` runs it; docs/testing.md says how to replay.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <span>

#include "tests/fuzz/frame_harness.h"

namespace {

// One ledger for the whole run (see the harness for how it is reset). Never
// destroyed: libFuzzer may exit from any thread; at exit only its directory
// is removed.
pointledger::fuzz::FrameHarness* harness = nullptr;

void RemoveLedgerDir() {
  std::error_code ec;
  std::filesystem::remove_all(harness->dir(), ec);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (harness == nullptr) {
    harness = new pointledger::fuzz::FrameHarness();
    std::atexit(RemoveLedgerDir);
  }
  harness->Run(std::span<const uint8_t>(data, size));
  return 0;
}
