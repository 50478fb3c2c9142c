// Where a fuzz target keeps the files it reuses across inputs (a ledger, a
// write-ahead log): /dev/shm, where fsync is free, or the temporary
// directory without it.
#ifndef POINTLEDGER_TESTS_FUZZ_SCRATCH_DIR_H_
#define POINTLEDGER_TESTS_FUZZ_SCRATCH_DIR_H_

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <string>

namespace pointledger::fuzz {

// A fresh directory name, /dev/shm/pl_fuzz.<pid>.<n> (not created); first
// removes those of processes that are gone (a crashed fuzzer cannot clean
// up after itself).
inline std::string NewScratchDir() {
  std::error_code ec;
  std::filesystem::path parent = "/dev/shm";
  if (!std::filesystem::is_directory(parent, ec) || ::access("/dev/shm", W_OK) != 0) {
    parent = std::filesystem::temp_directory_path();
  }
  for (const auto& entry : std::filesystem::directory_iterator(parent, ec)) {
    const std::string name = entry.path().filename().string();
    if (!name.starts_with("pl_fuzz.")) continue;
    const long pid = std::strtol(name.c_str() + 8, nullptr, 10);
    if (pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) {
      std::filesystem::remove_all(entry.path(), ec);
    }
  }
  static int count = 0;
  return (parent / ("pl_fuzz." + std::to_string(::getpid()) + "." + std::to_string(count++)))
      .string();
}

}  // namespace pointledger::fuzz

#endif  // POINTLEDGER_TESTS_FUZZ_SCRATCH_DIR_H_
