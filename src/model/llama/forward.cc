#include "model/llama/forward.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "kernels/attention.h"
#include "kernels/kernels.h"
#include "kernels/rope.h"

namespace tokenlora {

LlamaForward::LlamaForward(const Model& model, int max_batch)
    : model_(model), max_batch_(std::max(1, max_batch)) {
  const LlamaConfig& c = model.config();
  const size_t n = static_cast<size_t>(max_batch_);
  x_.resize(n * c.d_model);
  xn_.resize(n * c.d_model);
  q_.resize(n * c.q_dim());
  k_.resize(n * c.kv_dim());
  v_.resize(n * c.kv_dim());
  att_.resize(n * c.q_dim());
  proj_.resize(n * c.d_model);
  gate_.resize(n * c.d_ff);
  up_.resize(n * c.d_ff);
  cos_.resize(n * (c.head_dim / 2));
  sin_.resize(n * (c.head_dim / 2));
}

void LlamaForward::Run(std::span<const int32_t> tokens, KvCache& kv, const ForwardContext& ctx,
                       float* logits, bool all_logits) {
  const LlamaConfig& c = model_.config();
  if (tokens.empty()) return;
  if (kv.n_past() + static_cast<int64_t>(tokens.size()) > kv.capacity()) {
    throw InputError("context is full: " + std::to_string(kv.n_past()) + " cached + " +
                     std::to_string(tokens.size()) + " new tokens exceed the context size " +
                     std::to_string(kv.capacity()) + " (raise --ctx-size, or shorten the prompt)");
  }
  for (int32_t t : tokens) {
    if (t < 0 || t >= c.vocab_size) {
      throw InputError("token id " + std::to_string(t) + " is outside the vocabulary [0, " +
                       std::to_string(c.vocab_size) + ")");
    }
  }
  for (size_t start = 0; start < tokens.size(); start += static_cast<size_t>(max_batch_)) {
    const size_t n = std::min(tokens.size() - start, static_cast<size_t>(max_batch_));
    const bool last = start + n == tokens.size();
    float* out = nullptr;
    if (all_logits) {
      out = logits + start * static_cast<size_t>(c.vocab_size);
    } else if (last) {
      out = logits;
    }
    RunBatch(tokens.subspan(start, n), kv, ctx, out, all_logits);
  }
}

void LlamaForward::RunBatch(std::span<const int32_t> tokens, KvCache& kv,
                            const ForwardContext& ctx, float* logits, bool all_logits) {
  const LlamaConfig& c = model_.config();
  const LlamaWeights& w = model_.weights();
  const int n = static_cast<int>(tokens.size());
  const int n_past = kv.n_past();
  const int d = c.d_model, kv_dim = c.kv_dim(), half = c.head_dim / 2;
  const bool adjacent = c.rope_style == RopeStyle::kAdjacentPairs;

  // Embeddings: x[t] = token_embd[tokens[t]]
  for (int t = 0; t < n; ++t) {
    kernels::DequantizeRow(w.token_embd.dtype, w.token_embd.RowPtr(tokens[static_cast<size_t>(t)]),
                           &x_[static_cast<size_t>(t) * d], d);
    kernels::RopeCosSin(n_past + t, model_.rope_inv_freq().data(), half, &cos_[static_cast<size_t>(t) * half],
                        &sin_[static_cast<size_t>(t) * half]);
  }

  for (int l = 0; l < c.n_layers; ++l) {
    const LlamaLayer& layer = w.layers[static_cast<size_t>(l)];
    // Attention block.
    for (int t = 0; t < n; ++t) {
      kernels::RmsNorm(&x_[static_cast<size_t>(t) * d], layer.attn_norm.data(),
                       &xn_[static_cast<size_t>(t) * d], d, c.rms_eps);
    }
    const Linear* qkv[] = {&layer.q, &layer.k, &layer.v};
    float* qkv_out[] = {q_.data(), k_.data(), v_.data()};
    ProjectShared(qkv, qkv_out, 3, xn_.data(), n, ctx);
    const kernels::KvLayer cache = kv.layer(l);
    for (int t = 0; t < n; ++t) {
      const float* cs = &cos_[static_cast<size_t>(t) * half];
      const float* sn = &sin_[static_cast<size_t>(t) * half];
      kernels::ApplyRope(&q_[static_cast<size_t>(t) * c.q_dim()], c.n_heads, c.head_dim, cs, sn, adjacent);
      kernels::ApplyRope(&k_[static_cast<size_t>(t) * kv_dim], c.n_kv_heads, c.head_dim, cs, sn, adjacent);
      kernels::StoreKv(cache, n_past + t, &k_[static_cast<size_t>(t) * kv_dim], &v_[static_cast<size_t>(t) * kv_dim]);
    }
    kernels::CausalAttention(q_.data(), cache, att_.data(),
                             {n, n_past, c.n_heads, c.n_kv_heads, c.head_dim}, *ctx.pool);
    Project(layer.o, att_.data(), n, proj_.data(), ctx);
    kernels::AddInPlace(x_.data(), proj_.data(), static_cast<int64_t>(n) * d);

    // MLP block: down(silu(gate(x)) * up(x)).
    for (int t = 0; t < n; ++t) {
      kernels::RmsNorm(&x_[static_cast<size_t>(t) * d], layer.ffn_norm.data(),
                       &xn_[static_cast<size_t>(t) * d], d, c.rms_eps);
    }
    const Linear* gate_up[] = {&layer.gate, &layer.up};
    float* gate_up_out[] = {gate_.data(), up_.data()};
    ProjectShared(gate_up, gate_up_out, 2, xn_.data(), n, ctx);
    kernels::SiluMul(gate_.data(), up_.data(), static_cast<int64_t>(n) * c.d_ff);
    Project(layer.down, gate_.data(), n, proj_.data(), ctx);
    kernels::AddInPlace(x_.data(), proj_.data(), static_cast<int64_t>(n) * d);
  }
  kv.set_n_past(n_past + n);

  if (logits == nullptr) return;
  // Final norm and the output head, for every row or only the last one.
  const int first = all_logits ? 0 : n - 1;
  const int rows = n - first;
  for (int t = first; t < n; ++t) {
    kernels::RmsNorm(&x_[static_cast<size_t>(t) * d], w.output_norm.data(),
                     &xn_[static_cast<size_t>(t - first) * d], d, c.rms_eps);
  }
  Project(w.output, xn_.data(), rows, logits, ctx);
}

}  // namespace tokenlora
