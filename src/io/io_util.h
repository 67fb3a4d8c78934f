// Small helpers shared by the GGUF and safetensors readers and `inspect`:
// overflow-checked size arithmetic and safe rendering of untrusted names.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace tokenlora::io_internal {

// Hint appended to every error about a file that ends too early.
inline constexpr std::string_view kTruncatedHint = "file truncated? re-download it";

// a * b and a + b, or nullopt when the result does not fit in 64 bits. Every
// size computed from file contents goes through these, because a crafted file
// can hold any count or dimension.
inline std::optional<uint64_t> CheckedMul(uint64_t a, uint64_t b) {
  uint64_t out;
  if (__builtin_mul_overflow(a, b, &out)) return std::nullopt;
  return out;
}
inline std::optional<uint64_t> CheckedAdd(uint64_t a, uint64_t b) {
  uint64_t out;
  if (__builtin_add_overflow(a, b, &out)) return std::nullopt;
  return out;
}
// Rounds `x` up to a multiple of `alignment` (a power of two), or nullopt on
// overflow.
inline std::optional<uint64_t> AlignUp(uint64_t x, uint64_t alignment) {
  const std::optional<uint64_t> bumped = CheckedAdd(x, alignment - 1);
  if (!bumped) return std::nullopt;
  return *bumped & ~(alignment - 1);
}

// Number of elements of a tensor of shape `dims` (1 for an empty list: a
// scalar), or nullopt if a dim is negative or the shape does not fit the
// int64 arithmetic TensorView does. The product of the non-zero dims must fit
// too: [0, 2^40, 2^40] has no elements, but its row count would overflow.
std::optional<uint64_t> CheckedProduct(std::span<const int64_t> dims);

// `s` with control characters, backslashes, double quotes and invalid UTF-8
// escaped (\n, \\, \", \xNN), cut after about `max_bytes` bytes (on a
// character boundary) with "..." and the full length. Names and strings read
// from files go through this before they land in an error message or
// `inspect` output: those must stay readable, short and valid UTF-8 (the
// server turns messages into JSON).
std::string Escape(std::string_view s, size_t max_bytes = 96);
// Escape() inside single quotes, as error messages name things: 'x.gguf'.
std::string Quote(std::string_view s, size_t max_bytes = 96);
// Escape() inside double quotes, as `inspect` shows string values.
std::string DoubleQuote(std::string_view s, size_t max_bytes = 96);

// "1.5 KiB", "28.7 MiB"; exact byte counts below 1 KiB ("512 B").
std::string HumanBytes(uint64_t bytes);

}  // namespace tokenlora::io_internal
