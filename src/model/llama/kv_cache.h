// Keys and values of every past position, per layer, in f32 (the library's
// default: exact) or f16 (the CLI's default, as llama.cpp's: half the memory
// and the attention's reads), in the layout the attention kernels read
// (kernels::KvLayer).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/attention.h"
#include "model/llama/config.h"
#include "tensor/dtype.h"

namespace tokenlora {

class KvCache {
 public:
  // Room for `capacity` positions (rounded up to kernels::kKvCapacityStep);
  // allocated once, up front. type: kF32 or kF16 (else an InputError).
  KvCache(const LlamaConfig& config, int capacity, DType type = DType::kF32);

  int capacity() const { return capacity_; }
  DType type() const { return type_; }
  int n_past() const { return n_past_; }
  void set_n_past(int n) { n_past_ = n; }
  // Forget positions from `n` on (n <= n_past).
  void Truncate(int n);
  // Makes this cache a fresh one of `capacity` positions and `type`, keeping
  // its memory (no allocation, no page faults: a scheduler reuses the caches
  // of finished sequences). False, and nothing changes, when the memory is
  // too small or the type differs. The layout stays that of the allocated
  // capacity; only the positions the cache accepts change.
  bool Reuse(int capacity, DType type);

  // Bytes of keys and values one position holds, over all layers.
  double BytesPerPosition() const { return bytes_per_position_; }
  // Bytes a cache of `capacity` positions allocates (what the constructor
  // would), so a scheduler can check a budget before allocating.
  static size_t BytesFor(const LlamaConfig& config, int capacity, DType type);
  size_t bytes() const { return bytes_; }

  // Layer `layer`'s cache, for writing positions and attending over them.
  kernels::KvLayer layer(int layer);

 private:
  int capacity_;
  int padded_capacity_;  // capacity rounded up to kernels::kKvCapacityStep
  DType type_;
  int n_kv_heads_, head_dim_;
  int n_past_ = 0;
  double bytes_per_position_ = 0;
  size_t bytes_ = 0;
  std::vector<std::vector<uint8_t>> keys_;    // [n_layers][KvLayer keys]
  std::vector<std::vector<uint8_t>> values_;  // [n_layers][KvLayer values]
};

// "f16" or "f32" -> the KV cache type; anything else is an InputError that
// names the flag.
DType ParseKvType(const std::string& text);

}  // namespace tokenlora
