// Keys and values of every past position, per layer, in f32.
#pragma once

#include <cstdint>
#include <vector>

#include "model/llama/config.h"

namespace tokenlora {

class KvCache {
 public:
  // Room for `capacity` positions; allocated once, up front.
  KvCache(const LlamaConfig& config, int capacity);

  int capacity() const { return capacity_; }
  int n_past() const { return n_past_; }
  void set_n_past(int n) { n_past_ = n; }
  // Forget positions from `n` on (n <= n_past).
  void Truncate(int n);

  float* keys(int layer) { return keys_[static_cast<size_t>(layer)].data(); }      // [capacity, kv_dim]
  float* values(int layer) { return values_[static_cast<size_t>(layer)].data(); }  // [capacity, kv_dim]

 private:
  int capacity_;
  int n_past_ = 0;
  std::vector<std::vector<float>> keys_;    // [n_layers][capacity * kv_dim]
  std::vector<std::vector<float>> values_;  // [n_layers][capacity * kv_dim]
};

}  // namespace tokenlora
