// A listening socket on 127.0.0.1 at a port the kernel picks, for tests
// that stand in for something other than pointledgerd (a server that never
// answers, a web server).
#ifndef POINTLEDGER_TESTS_COMMON_LOOPBACK_H_
#define POINTLEDGER_TESTS_COMMON_LOOPBACK_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>

namespace pointledger::test {

// The listening descriptor, its port in *port; -1 if any step failed. The
// caller closes it.
inline int ListenOnLoopback(int backlog, uint16_t* port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || ::listen(fd, backlog) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    return -1;
  }
  *port = ntohs(addr.sin_port);
  return fd;
}

}  // namespace pointledger::test

#endif  // POINTLEDGER_TESTS_COMMON_LOOPBACK_H_
