#include "model/llama/kv_cache.h"

#include "core/error.h"

namespace tokenlora {

KvCache::KvCache(const LlamaConfig& config, int capacity) : capacity_(capacity) {
  TL_CHECK(capacity > 0);
  const size_t n = static_cast<size_t>(capacity) * static_cast<size_t>(config.kv_dim());
  keys_.assign(static_cast<size_t>(config.n_layers), std::vector<float>(n));
  values_.assign(static_cast<size_t>(config.n_layers), std::vector<float>(n));
}

void KvCache::Truncate(int n) {
  TL_CHECK(n >= 0 && n <= n_past_);
  n_past_ = n;
}

}  // namespace tokenlora
