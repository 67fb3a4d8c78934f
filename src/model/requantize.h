// Re-quantizes a GGUF model into another weight type (what llama.cpp's
// llama-quantize does for the simple types): every 2-D ".weight" tensor whose
// rows are whole blocks of the target type is dequantized to f32 and
// quantized again with kernels::QuantizeRow (bit for bit gguf-py's quantizers
// for Q8_0/Q4_0/Q4_1/Q5_0/Q5_1; our own scale choice for the K-quants); 1-D
// tensors (norms, biases) and tensors whose rows do not fill whole blocks keep
// their type. Metadata is copied; general.file_type is updated.
#pragma once

#include <cstdint>
#include <string>

#include "core/thread_pool.h"
#include "tensor/dtype.h"

namespace tokenlora {

struct RequantizeResult {
  int64_t converted = 0;  // tensors written in the target type
  int64_t kept = 0;       // tensors copied as they were
  uint64_t bytes_in = 0, bytes_out = 0;  // tensor data sizes
};

// Throws InputError for a non-GGUF input, an output that would overwrite the
// input, or a target type that cannot hold weights (I32).
RequantizeResult RequantizeGguf(const std::string& in, const std::string& out, DType target, ThreadPool& pool);

}  // namespace tokenlora
