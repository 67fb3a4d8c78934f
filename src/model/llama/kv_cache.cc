#include "model/llama/kv_cache.h"

#include <string>

#include "core/error.h"

namespace tokenlora {

KvCache::KvCache(const LlamaConfig& config, int capacity, DType type)
    : capacity_(capacity), type_(type), n_kv_heads_(config.n_kv_heads), head_dim_(config.head_dim) {
  TL_CHECK(capacity > 0);
  if (type != DType::kF16 && type != DType::kF32) {
    throw InputError("KV cache type " + std::string(Name(type)) + " is not supported; expected f16 or f32");
  }
  padded_capacity_ = (capacity + kernels::kKvCapacityStep - 1) / kernels::kKvCapacityStep * kernels::kKvCapacityStep;
  const size_t element = type == DType::kF16 ? 2 : 4;
  const size_t n = static_cast<size_t>(padded_capacity_) * static_cast<size_t>(config.kv_dim()) * element;
  keys_.assign(static_cast<size_t>(config.n_layers), std::vector<uint8_t>(n));
  values_.assign(static_cast<size_t>(config.n_layers), std::vector<uint8_t>(n));
  bytes_per_position_ = 2.0 * config.n_layers * config.kv_dim() * static_cast<double>(element);
  bytes_ = BytesFor(config, capacity, type);
}

size_t KvCache::BytesFor(const LlamaConfig& config, int capacity, DType type) {
  const size_t padded =
      static_cast<size_t>((capacity + kernels::kKvCapacityStep - 1) / kernels::kKvCapacityStep * kernels::kKvCapacityStep);
  const size_t element = type == DType::kF16 ? 2 : 4;
  return 2 * static_cast<size_t>(config.n_layers) * padded * static_cast<size_t>(config.kv_dim()) * element;
}

bool KvCache::Reuse(int capacity, DType type) {
  if (type != type_ || capacity <= 0 || capacity > padded_capacity_) return false;
  capacity_ = capacity;
  n_past_ = 0;
  return true;
}

void KvCache::Truncate(int n) {
  TL_CHECK(n >= 0 && n <= n_past_);
  n_past_ = n;
}

kernels::KvLayer KvCache::layer(int layer) {
  kernels::KvLayer kv;
  kv.type = type_;
  kv.keys = keys_[static_cast<size_t>(layer)].data();
  kv.values = values_[static_cast<size_t>(layer)].data();
  kv.capacity = padded_capacity_;
  kv.n_kv_heads = n_kv_heads_;
  kv.head_dim = head_dim_;
  return kv;
}

DType ParseKvType(const std::string& text) {
  if (text == "f16") return DType::kF16;
  if (text == "f32") return DType::kF32;
  throw InputError("--kv-type: '" + text + "' is not a KV cache type; expected f16 (default) or f32");
}

}  // namespace tokenlora
