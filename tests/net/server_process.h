// Test support for tests/net: the real pointledgerd in a child process on a
// free loopback port, temporary directories, and raw sockets for hostile
// input.
#ifndef POINTLEDGER_TESTS_NET_SERVER_PROCESS_H_
#define POINTLEDGER_TESTS_NET_SERVER_PROCESS_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "ledger/status.h"
#include "net/client.h"
#include "net/wire.h"
#include "tests/common/temp_dir.h"

#ifndef PL_BIN_DIR
#define PL_BIN_DIR "build/bin"
#endif

namespace pointledger::net::testing {

// A directory removed (with its contents) when the object goes.
// Each test's own directory (tests/common/temp_dir.h).
class TempDir : public ::pointledger::test::TempDir {
 public:
  TempDir() : ::pointledger::test::TempDir("pl_net") {}
};

inline void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  PL_CHECK(out.good());
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// pointledgerd in a child process. Its stderr is collected by a thread.
class ServerProcess {
 public:
  // Starts `pointledgerd --data DIR --listen 127.0.0.1:0 ARGS...` and waits
  // (at most 20 s) for its ready line. nullptr (and an ADD_FAILURE) if it
  // exits or never gets ready; *log gets what it printed.
  static std::unique_ptr<ServerProcess> Start(const std::string& data_dir,
                                              const std::vector<std::string>& args = {},
                                              std::string* log = nullptr) {
    return StartUnder({}, data_dir, args, log);
  }
  // The same, run by `prefix` (a wrapper that execs its arguments, e.g.
  // {"/bin/sh", "-c", "ulimit -n 300 && exec \"$0\" \"$@\""}).
  static std::unique_ptr<ServerProcess> StartUnder(const std::vector<std::string>& prefix,
                                                   const std::string& data_dir,
                                                   const std::vector<std::string>& args = {},
                                                   std::string* log = nullptr) {
    std::unique_ptr<ServerProcess> p(new ServerProcess());
    std::vector<std::string> argv = prefix;
    argv.insert(argv.end(), {std::string(PL_BIN_DIR) + "/pointledgerd", "--data", data_dir, "--listen",
                             "127.0.0.1:0"});
    argv.insert(argv.end(), args.begin(), args.end());
    if (!p->Spawn(argv)) return nullptr;
    const bool ready = p->WaitForLog("listening on ", std::chrono::seconds(20));
    if (log != nullptr) *log = p->log();
    if (!ready) {
      ADD_FAILURE() << "pointledgerd did not get ready; it printed:\n" << p->log();
      return nullptr;
    }
    const std::string text = p->log();
    const size_t at = text.find("listening on ");
    const size_t colon = text.find(':', at + 13);
    p->port_ = static_cast<uint16_t>(std::stoi(text.substr(colon + 1)));
    p->data_dir_ = data_dir;
    return p;
  }

  // Runs pointledgerd with `args` to its end; returns the exit code.
  static int RunToExit(const std::vector<std::string>& args, std::string* log) {
    ServerProcess p;
    std::vector<std::string> argv = {std::string(PL_BIN_DIR) + "/pointledgerd"};
    argv.insert(argv.end(), args.begin(), args.end());
    if (!p.Spawn(argv)) return -1;
    const int code = p.Wait();
    *log = p.log();
    return code;
  }

  ~ServerProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      Wait();
    }
  }

  uint16_t port() const { return port_; }
  // The server's process id (for /proc/PID/status and /proc/PID/fd).
  pid_t pid() const { return pid_; }
  std::string admin_key() const {
    std::string key = ReadFile(data_dir_ + "/admin.key");
    while (!key.empty() && (key.back() == '\n' || key.back() == '\r')) key.pop_back();
    return key;
  }

  ClientOptions Options(const std::string& key) const {
    ClientOptions o;
    o.host = "127.0.0.1";
    o.port = port_;
    o.api_key = key;
    o.client_name = "pl_net_tests";
    o.timeout_ms = 20'000;
    return o;
  }
  absl::StatusOr<std::unique_ptr<Client>> Connect(const std::string& key) const {
    return Client::Connect(Options(key));
  }
  std::unique_ptr<Client> AdminClient() const {
    absl::StatusOr<std::unique_ptr<Client>> c = Connect(admin_key());
    PL_CHECK(c.ok());
    return *std::move(c);
  }

  // Sends `signal` without waiting.
  void Signal(int signal) const {
    PL_CHECK(pid_ > 0);
    ::kill(pid_, signal);
  }

  // Sends `signal` and waits for the exit; returns the exit code (or 128 +
  // the signal that killed it).
  int Stop(int signal = SIGTERM) {
    PL_CHECK(pid_ > 0);
    ::kill(pid_, signal);
    return Wait();
  }

  std::string log() const {
    std::lock_guard<std::mutex> lock(mu_);
    return log_;
  }

  bool WaitForLog(const std::string& needle, std::chrono::milliseconds timeout) const {
    std::unique_lock<std::mutex> lock(mu_);
    return changed_.wait_for(lock, timeout, [&] {
      return log_.find(needle) != std::string::npos || eof_;
    }) && log_.find(needle) != std::string::npos;
  }

 private:
  ServerProcess() = default;

  bool Spawn(const std::vector<std::string>& argv) {
    int fds[2];
    PL_CHECK(::pipe(fds) == 0);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_ = ::fork();
    PL_CHECK(pid_ >= 0);
    if (pid_ == 0) {
      ::dup2(fds[1], STDERR_FILENO);
      ::close(fds[0]);
      ::close(fds[1]);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    ::close(fds[1]);
    reader_ = std::thread([this, fd = fds[0]] { ReadLog(fd); });
    return true;
  }

  void ReadLog(int fd) {
    char buffer[4096];
    for (;;) {
      const ssize_t n = ::read(fd, buffer, sizeof(buffer));
      if (n <= 0) break;
      std::lock_guard<std::mutex> lock(mu_);
      log_.append(buffer, static_cast<size_t>(n));
      changed_.notify_all();
    }
    ::close(fd);
    std::lock_guard<std::mutex> lock(mu_);
    eof_ = true;
    changed_.notify_all();
  }

  int Wait() {
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    if (reader_.joinable()) reader_.join();
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return -1;
  }

  pid_t pid_ = -1;
  uint16_t port_ = 0;
  std::string data_dir_;
  std::thread reader_;
  mutable std::mutex mu_;
  mutable std::condition_variable changed_;
  std::string log_;
  bool eof_ = false;
};

// A plain blocking socket for sending bytes a real client never would.
// Every read waits at most 10 s.
class RawSocket {
 public:
  explicit RawSocket(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    PL_CHECK(fd_ >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    PL_CHECK(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    const int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  ~RawSocket() {
    if (fd_ >= 0) ::close(fd_);
  }

  // False if the peer has closed (a write may fail then).
  bool Send(const void* data, size_t size) {
    const uint8_t* p = static_cast<const uint8_t*>(data);
    while (size > 0) {
      const ssize_t n = ::send(fd_, p, size, MSG_NOSIGNAL);
      if (n <= 0) return false;
      p += n;
      size -= static_cast<size_t>(n);
    }
    return true;
  }
  bool Send(const std::vector<uint8_t>& bytes) { return Send(bytes.data(), bytes.size()); }
  bool Send(const flatbuffers::FlatBufferBuilder& fbb) {
    return Send(fbb.GetBufferPointer(), fbb.GetSize());
  }
  void ShutdownWrite() { ::shutdown(fd_, SHUT_WR); }

  // Reads exactly n bytes; false on EOF, error or timeout.
  bool ReadExactly(uint8_t* out, size_t n) {
    while (n > 0) {
      pollfd pfd{fd_, POLLIN, 0};
      if (::poll(&pfd, 1, 10'000) <= 0) return false;
      const ssize_t k = ::recv(fd_, out, n, 0);
      if (k <= 0) return false;
      out += k;
      n -= static_cast<size_t>(k);
    }
    return true;
  }

  // The next response frame (verified), or nullopt.
  struct Frame {
    std::vector<uint64_t> storage;  // 8-aligned bytes of the frame
    const wire::Response* response = nullptr;
  };
  std::optional<Frame> ReadResponse() {
    uint8_t header[4];
    if (!ReadExactly(header, 4)) return std::nullopt;
    const uint32_t length = DecodeFrameLength(header);
    if (length > (64u << 20)) return std::nullopt;
    Frame f;
    f.storage.resize((4 + length + 7) / 8);
    uint8_t* bytes = reinterpret_cast<uint8_t*>(f.storage.data());
    std::memcpy(bytes, header, 4);
    if (!ReadExactly(bytes + 4, length)) return std::nullopt;
    absl::StatusOr<const wire::Response*> r =
        VerifyResponseFrame(std::span<const uint8_t>(bytes, 4 + length));
    if (!r.ok()) return std::nullopt;
    f.response = *r;
    return f;
  }

  // True if the server closes the connection (EOF or reset) within 10 s,
  // discarding whatever else arrives first.
  bool WaitForClose(int timeout_ms = 10'000) {
    uint8_t buffer[4096];
    for (;;) {
      pollfd pfd{fd_, POLLIN, 0};
      if (::poll(&pfd, 1, timeout_ms) <= 0) return false;
      const ssize_t k = ::recv(fd_, buffer, sizeof(buffer), 0);
      if (k <= 0) return true;
    }
  }

 private:
  int fd_ = -1;
};

}  // namespace pointledger::net::testing

#endif  // POINTLEDGER_TESTS_NET_SERVER_PROCESS_H_
