// Telling that a client hung up while its non-streamed answer is computed,
// so its sequences are freed at once instead of running to max_tokens.
//
// cpp-httplib 0.11 (Debian's) gives a handler neither its socket nor
// Request::is_connection_closed() (that came in later versions), and a
// non-streamed handler writes nothing until the end, so no write can fail
// early. A TCP connection is unique by its address pair, which the Request
// does carry: the handler's socket is found once among this process's
// descriptors by that pair, then polled without reading. httplib owns the
// descriptor and keeps it open until the handler returns, so it cannot be
// closed and reused under us meanwhile.
#pragma once

#include <string>

namespace tokenlora::server {

class ClientSocket {
 public:
  // Finds the connection local_addr:local_port ↔ remote_addr:remote_port
  // (numeric addresses, as httplib writes them).
  ClientSocket(const std::string& local_addr, int local_port, const std::string& remote_addr, int remote_port);

  bool found() const { return fd_ >= 0; }
  // True when the peer closed or reset the connection: the socket reports a
  // hang-up, or is readable with nothing to read (FIN). A client that
  // half-closes (shutdown(SHUT_WR)) and still waits for the answer looks the
  // same; HTTP clients do not do that. False when the socket was not found.
  bool HungUp() const;

 private:
  int fd_ = -1;
};

}  // namespace tokenlora::server
