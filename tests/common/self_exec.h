// Runs this test binary again as one of its own tests, in a child process:
// for tests that need a second process (a read-only reader, a writer that
// dies mid-write). The child execs at once after fork(): a bare fork of a
// multi-threaded test process can copy a lock another thread holds and
// hang (docs/testing.md).
#ifndef POINTLEDGER_TESTS_COMMON_SELF_EXEC_H_
#define POINTLEDGER_TESTS_COMMON_SELF_EXEC_H_

#include <sys/types.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace pointledger::test {

// Starts `/proc/self/exe --gtest_filter=<test>` with this process's
// environment plus `extra_env` ("NAME=value"). Returns the child's pid, or
// -1 if fork failed (errno says why). File descriptors are inherited.
inline pid_t ExecThisTestAs(const std::string& test, const std::vector<std::string>& extra_env) {
  std::vector<char*> env;
  for (char** e = environ; *e != nullptr; ++e) env.push_back(*e);
  for (const std::string& e : extra_env) env.push_back(const_cast<char*>(e.c_str()));
  env.push_back(nullptr);
  std::string exe = "/proc/self/exe";
  std::string filter = "--gtest_filter=" + test;
  char* args[] = {exe.data(), filter.data(), nullptr};
  const pid_t child = ::fork();
  if (child == 0) {
    ::execve(args[0], args, env.data());
    ::_exit(127);
  }
  return child;
}

}  // namespace pointledger::test

#endif  // POINTLEDGER_TESTS_COMMON_SELF_EXEC_H_
