// Running the real binaries from the tools tests: a command with captured
// stdout/stderr and exit code, and pointledgerd on a free loopback port.
#ifndef POINTLEDGER_TESTS_TOOLS_SUBPROCESS_H_
#define POINTLEDGER_TESTS_TOOLS_SUBPROCESS_H_

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "ledger/status.h"

namespace pointledger::tools {

#ifndef PL_BIN_DIR
#define PL_BIN_DIR "build/bin"
#endif

inline std::string BinPath(const std::string& name) { return std::string(PL_BIN_DIR) + "/" + name; }
inline bool BinExists(const std::string& name) { return access(BinPath(name).c_str(), X_OK) == 0; }

inline std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// A process started by StartProcess, not yet waited for.
struct StartedProcess {
  pid_t pid = -1;
  std::string out_path;
  std::string err_path;
};

// Starts `argv` (argv[0] a path) in `cwd` with a clean environment plus
// `env` ("NAME=value"), stdin from `stdin_path` (or /dev/null), its output
// captured to files; WaitProcess collects it.
inline StartedProcess StartProcess(const std::vector<std::string>& argv, const std::string& cwd,
                                   const std::vector<std::string>& env = {}, const std::string& stdin_path = "") {
  static std::mutex counter_mu;
  static int counter = 0;
  int n = 0;
  {
    std::lock_guard<std::mutex> lock(counter_mu);
    n = ++counter;
  }
  const std::string out_path = StrCat(cwd, "/.run", n, ".out");
  const std::string err_path = StrCat(cwd, "/.run", n, ".err");
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> env_strings = {"PATH=/usr/bin:/bin", "LANG=C"};
  env_strings.insert(env_strings.end(), env.begin(), env.end());
  std::vector<char*> envp;
  for (const std::string& e : env_strings) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  const std::string in_path = stdin_path.empty() ? "/dev/null" : stdin_path;
  const pid_t pid = fork();
  PL_CHECK(pid >= 0);
  if (pid == 0) {
    // Only async-signal-safe calls between fork and exec.
    if (chdir(cwd.c_str()) != 0) _exit(126);
    const int in = open(in_path.c_str(), O_RDONLY);
    const int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (in < 0 || out < 0 || err < 0) _exit(126);
    dup2(in, 0);
    dup2(out, 1);
    dup2(err, 2);
    execve(args[0], args.data(), envp.data());
    _exit(127);
  }
  return StartedProcess{pid, out_path, err_path};
}

inline RunResult WaitProcess(const StartedProcess& p) {
  int status = 0;
  while (waitpid(p.pid, &status, 0) < 0 && errno == EINTR) {
  }
  RunResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = ReadWholeFile(p.out_path);
  r.err = ReadWholeFile(p.err_path);
  unlink(p.out_path.c_str());
  unlink(p.err_path.c_str());
  return r;
}

// StartProcess, then WaitProcess.
inline RunResult RunProcess(const std::vector<std::string>& argv, const std::string& cwd,
                            const std::vector<std::string>& env = {}, const std::string& stdin_path = "") {
  return WaitProcess(StartProcess(argv, cwd, env, stdin_path));
}

// pointledgerd --data DIR --listen 127.0.0.1:0 [extra_args], waiting for its
// ready line ("pointledgerd: listening on HOST:PORT, data DIR, admin key in
// FILE"; without the admin key part when --config names the keys).
class ServerProcess {
 public:
  explicit ServerProcess(const std::string& data_dir, const std::vector<std::string>& extra_args = {}) {
    int pipe_fds[2];
    PL_CHECK(pipe(pipe_fds) == 0);
    const std::string bin = BinPath("pointledgerd");
    std::vector<std::string> argv = {bin, "--data", data_dir, "--listen", "127.0.0.1:0"};
    argv.insert(argv.end(), extra_args.begin(), extra_args.end());
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_ = fork();
    PL_CHECK(pid_ >= 0);
    if (pid_ == 0) {
      dup2(pipe_fds[1], 2);
      close(pipe_fds[0]);
      const int null_fd = open("/dev/null", O_RDWR);
      dup2(null_fd, 0);
      dup2(null_fd, 1);
      execv(args[0], args.data());
      _exit(127);
    }
    close(pipe_fds[1]);
    fd_ = pipe_fds[0];
    reader_ = std::thread([this] { ReadLog(); });
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        const size_t at = log_.find("listening on ");
        const size_t eol = at == std::string::npos ? std::string::npos : log_.find('\n', at);
        if (eol != std::string::npos) {
          ParseReady(log_.substr(at, eol - at));
          return;
        }
        if (eof_) break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  ~ServerProcess() { Stop(); }

  // SIGTERM and wait; returns the exit code.
  int Stop() {
    if (pid_ <= 0) return exit_code_;
    kill(pid_, SIGTERM);
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (reader_.joinable()) reader_.join();
    close(fd_);
    return exit_code_;
  }

  bool ready() const { return port_ != 0; }
  int port() const { return port_; }
  int metrics_port() const { return metrics_port_; }  // with --metrics-listen; else 0
  std::string address() const { return StrCat("127.0.0.1:", port_); }
  const std::string& key_file() const { return key_file_; }
  std::string log() {
    std::lock_guard<std::mutex> lock(mu_);
    return log_;
  }

 private:
  void ReadLog() {
    char buf[4096];
    for (;;) {
      const ssize_t n = read(fd_, buf, sizeof(buf));
      if (n <= 0) break;
      std::lock_guard<std::mutex> lock(mu_);
      log_.append(buf, static_cast<size_t>(n));
    }
    std::lock_guard<std::mutex> lock(mu_);
    eof_ = true;
  }

  // "listening on 127.0.0.1:41234, data /tmp/x, admin key in /tmp/x/admin.key"
  void ParseReady(const std::string& line) {
    const size_t colon = line.find(':', std::strlen("listening on "));
    if (colon == std::string::npos) return;
    port_ = std::atoi(line.c_str() + colon + 1);
    const std::string marker = "admin key in ";
    const size_t k = line.find(marker);
    if (k != std::string::npos) {
      key_file_ = line.substr(k + marker.size());
      const size_t comma = key_file_.find(',');
      if (comma != std::string::npos) key_file_.resize(comma);
    }
    const std::string metrics = "metrics on http://";
    const size_t m = line.find(metrics);
    if (m != std::string::npos) {
      const size_t port_colon = line.find(':', m + metrics.size());
      if (port_colon != std::string::npos) metrics_port_ = std::atoi(line.c_str() + port_colon + 1);
    }
  }

  int metrics_port_ = 0;
  pid_t pid_ = -1;
  int fd_ = -1;
  int exit_code_ = -1;
  int port_ = 0;
  std::string key_file_;
  std::thread reader_;
  std::mutex mu_;
  std::string log_;
  bool eof_ = false;
};

}  // namespace pointledger::tools

#endif  // POINTLEDGER_TESTS_TOOLS_SUBPROCESS_H_
