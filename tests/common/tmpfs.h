// A tmpfs of a few MB mounted for a test (a full disk on demand: ENOSPC),
// unmounted when it goes. Needs root (CAP_SYS_ADMIN); tests skip without.
#ifndef POINTLEDGER_TESTS_COMMON_TMPFS_H_
#define POINTLEDGER_TESTS_COMMON_TMPFS_H_

#include <sys/mount.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>

#include "ledger/status.h"

namespace pointledger::test {

// A tmpfs mounted for the test and unmounted when it goes. ok() is false
// (with why()) when this process may not mount (not root, no
// CAP_SYS_ADMIN, no tmpfs).
class Tmpfs {
 public:
  Tmpfs(const std::string& dir, int size_mb) : dir_(dir) {
    std::filesystem::create_directories(dir);
    const std::string options = StrCat("size=", size_mb, "m");
    if (::mount("tmpfs", dir.c_str(), "tmpfs", 0, options.c_str()) != 0) {
      why_ = StrCat("mount -t tmpfs -o ", options, " tmpfs ", dir, ": ", std::strerror(errno));
      return;
    }
    mounted_ = true;
  }
  ~Tmpfs() {
    if (mounted_ && ::umount2(dir_.c_str(), 0) != 0) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  bool ok() const { return mounted_; }
  const std::string& why() const { return why_; }
  // Frees space the way an operator would: a bigger size, same contents.
  bool Grow(int size_mb) {
    const std::string options = StrCat("size=", size_mb, "m");
    return ::mount("tmpfs", dir_.c_str(), "tmpfs", MS_REMOUNT, options.c_str()) == 0;
  }
  // The same contents, read-only (EROFS for every write).
  bool RemountReadOnly() { return ::mount("tmpfs", dir_.c_str(), "tmpfs", MS_REMOUNT | MS_RDONLY, nullptr) == 0; }

 private:
  std::string dir_;
  bool mounted_ = false;
  std::string why_;
};

}  // namespace pointledger::test

#endif  // POINTLEDGER_TESTS_COMMON_TMPFS_H_
