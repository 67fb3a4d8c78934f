#include "server/client_socket.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cstdlib>
#include <cstring>

namespace tokenlora::server {
namespace {

// The numeric host and port of `addr`, as httplib's get_ip_and_port gives them.
bool HostPort(const sockaddr_storage& addr, socklen_t len, std::string& host, int& port) {
  char buf[NI_MAXHOST];
  if (getnameinfo(reinterpret_cast<const sockaddr*>(&addr), len, buf, sizeof(buf), nullptr, 0, NI_NUMERICHOST) != 0) {
    return false;
  }
  host = buf;
  if (addr.ss_family == AF_INET) {
    port = ntohs(reinterpret_cast<const sockaddr_in*>(&addr)->sin_port);
  } else if (addr.ss_family == AF_INET6) {
    port = ntohs(reinterpret_cast<const sockaddr_in6*>(&addr)->sin6_port);
  } else {
    return false;
  }
  return true;
}

bool Matches(int fd, bool local, const std::string& want_host, int want_port) {
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  const int rc = local ? getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len)
                       : getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  std::string host;
  int port = -1;
  return rc == 0 && HostPort(addr, len, host, port) && port == want_port && host == want_host;
}

}  // namespace

ClientSocket::ClientSocket(const std::string& local_addr, int local_port, const std::string& remote_addr,
                           int remote_port) {
  if (local_port <= 0 || remote_port <= 0) return;
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return;
  while (const dirent* entry = readdir(dir)) {
    if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
    const int fd = std::atoi(entry->d_name);
    struct stat st{};
    if (fd == dirfd(dir) || fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) continue;
    if (Matches(fd, /*local=*/true, local_addr, local_port) && Matches(fd, /*local=*/false, remote_addr, remote_port)) {
      fd_ = fd;
      break;
    }
  }
  closedir(dir);
}

bool ClientSocket::HungUp() const {
  if (fd_ < 0) return false;
  pollfd p{fd_, static_cast<short>(POLLIN | POLLRDHUP), 0};
  if (poll(&p, 1, 0) <= 0) return false;
  if ((p.revents & (POLLHUP | POLLERR | POLLRDHUP | POLLNVAL)) != 0) return true;
  if ((p.revents & POLLIN) == 0) return false;
  char c = 0;
  // Readable: FIN reads as 0 bytes; a pipelined request's bytes stay queued.
  return recv(fd_, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

}  // namespace tokenlora::server
