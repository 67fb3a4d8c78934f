// Helpers for the io tests: deterministic random bytes, a byte-level GGUF
// builder for files our writer refuses to produce, and parse-from-exact-copy
// helpers (an exact-size heap copy lets ASan see any read past the end).
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/gguf.h"
#include "io/safetensors.h"

namespace tokenlora::testing {

inline std::vector<uint8_t> RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> out(n);
  for (uint8_t& b : out) b = static_cast<uint8_t>(rng());
  return out;
}

// FNV-1a 64: the checksum scripts/make_golden_io.py records for tensor data.
inline uint64_t Fnv1a64(const void* data, size_t n) {
  const auto* p = static_cast<const uint8_t*>(data);
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

// Appends little-endian GGUF fields to a byte string.
class RawGguf {
 public:
  template <typename T>
  RawGguf& Put(T v) {
    char buf[sizeof(T)];
    std::memcpy(buf, &v, sizeof(T));
    bytes_.append(buf, sizeof(T));
    return *this;
  }
  RawGguf& U8(uint8_t v) { return Put(v); }
  RawGguf& U32(uint32_t v) { return Put(v); }
  RawGguf& U64(uint64_t v) { return Put(v); }
  RawGguf& Str(const std::string& s) {
    U64(s.size());
    bytes_ += s;
    return *this;
  }
  RawGguf& Raw(const std::string& s) {
    bytes_ += s;
    return *this;
  }
  // "GGUF", version, tensor count, key count.
  RawGguf& Header(uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    return Raw("GGUF").U32(version).U64(n_tensors).U64(n_kv);
  }
  // Key with a u32 value.
  RawGguf& KvU32(const std::string& key, uint32_t v) { return Str(key).U32(4).U32(v); }
  // Tensor info; `ne` in ggml order (row length first).
  RawGguf& TensorInfo(const std::string& name, const std::vector<uint64_t>& ne,
                      uint32_t ggml_type, uint64_t offset) {
    Str(name).U32(static_cast<uint32_t>(ne.size()));
    for (uint64_t d : ne) U64(d);
    return U32(ggml_type).U64(offset);
  }
  // Zero padding up to a multiple of `alignment`.
  RawGguf& Pad(size_t alignment) {
    bytes_.append((alignment - bytes_.size() % alignment) % alignment, '\0');
    return *this;
  }
  RawGguf& Zeros(size_t n) {
    bytes_.append(n, '\0');
    return *this;
  }
  const std::string& bytes() const { return bytes_; }

 private:
  std::string bytes_;
};

// Parses a copy of `bytes` sized exactly; returns the InputError message, or
// "" if parsing succeeded.
inline std::string GgufParseError(const std::string& bytes, const std::string& name = "t.gguf") {
  const std::vector<uint8_t> copy(bytes.begin(), bytes.end());
  try {
    GgufFile::Parse(copy.data(), copy.size(), name);
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

inline std::string SafetensorsParseError(const std::string& bytes,
                                         const std::string& name = "t.safetensors") {
  const std::vector<uint8_t> copy(bytes.begin(), bytes.end());
  try {
    SafetensorsFile::Parse(copy.data(), copy.size(), name);
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

// A safetensors file from a raw header text (padding not applied) and data.
inline std::string RawSafetensors(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  const uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  return out + header + data;
}

}  // namespace tokenlora::testing
