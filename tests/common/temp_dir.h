// A directory under $TMPDIR (or /tmp) for one test, removed with everything
// in it when the test ends. Shared by the suites that start real processes.
#ifndef POINTLEDGER_TESTS_COMMON_TEMP_DIR_H_
#define POINTLEDGER_TESTS_COMMON_TEMP_DIR_H_

#include <stdlib.h>

#include <filesystem>
#include <string>
#include <system_error>

#include "ledger/status.h"

namespace pointledger::test {

class TempDir {
 public:
  // `prefix` names the directory (pl_net_XXXXXX ...), so that one left
  // behind by a killed test run says which suite made it.
  explicit TempDir(const std::string& prefix = "pl_test") {
    std::string pattern = (std::filesystem::temp_directory_path() / (prefix + "_XXXXXX")).string();
    PL_CHECK(::mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace pointledger::test

#endif  // POINTLEDGER_TESTS_COMMON_TEMP_DIR_H_
