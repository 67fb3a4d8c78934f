// Element and block types of tensors as stored in GGUF and safetensors files.
// Quantized types are stored in blocks of `BlockSize()` elements taking
// `BlockBytes()` bytes (ggml layout, see kernels/quant_blocks.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tokenlora {

enum class DType : uint8_t {
  kF32,
  kF16,
  kBF16,
  kQ8_0,
  kQ4_0,
  kQ4_1,
  kQ5_0,
  kQ5_1,
  kQ4_K,
  kQ5_K,
  kQ6_K,
  kI32,  // token ids, positions (never a weight)
};

struct DTypeInfo {
  std::string_view name;  // as llama.cpp/gguf-py name it ("f32", "q4_K", ...)
  int block_size;         // elements per block (1 for plain types)
  int block_bytes;        // bytes per block
  int ggml_type;          // ggml_type enum value in GGUF files
};

const DTypeInfo& Info(DType t);
inline std::string_view Name(DType t) { return Info(t).name; }
inline bool IsQuantized(DType t) { return Info(t).block_size > 1; }

// Bytes taken by a row of `n` elements; n must be a multiple of the block size.
inline size_t RowBytes(DType t, int64_t n) {
  const DTypeInfo& i = Info(t);
  return static_cast<size_t>(n / i.block_size) * static_cast<size_t>(i.block_bytes);
}

// ggml_type id <-> DType. Returns nullopt for types we do not support.
std::optional<DType> DTypeFromGgml(int ggml_type);
// Safetensors dtype string ("F32", "F16", "BF16", "I32").
std::optional<DType> DTypeFromSafetensors(std::string_view s);
std::string_view SafetensorsName(DType t);
// Parses a user-facing name ("q4_0", "Q4_K", "f16", ...).
std::optional<DType> DTypeFromName(std::string_view s);

// IEEE half and bfloat16 conversions (round to nearest even).
float F16ToF32(uint16_t h);
uint16_t F32ToF16(float f);
float BF16ToF32(uint16_t h);
uint16_t F32ToBF16(float f);

}  // namespace tokenlora
