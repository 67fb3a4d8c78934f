// SHA-256 (FIPS 180-4), for the embedder's identity in router files: a router
// built with one set of weights must not silently route with another.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace tokenlora {

class Sha256 {
 public:
  Sha256();
  void Update(const void* data, size_t n);
  void Update(std::string_view s) { Update(s.data(), s.size()); }
  // Lower-case hex digest; the object must not be updated afterwards.
  std::string HexDigest();

 private:
  void Block(const uint8_t* p);  // one 64-byte block

  std::array<uint32_t, 8> h_;
  std::array<uint8_t, 64> buffer_{};
  size_t buffered_ = 0;
  uint64_t total_bytes_ = 0;
};

// Hex SHA-256 of a file's bytes (read through a memory mapping). Throws
// InputError naming the file when it cannot be read.
std::string Sha256File(const std::string& path);

}  // namespace tokenlora
