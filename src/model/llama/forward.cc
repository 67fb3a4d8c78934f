#include "model/llama/forward.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"
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
  pos_.resize(n);
}

void LlamaForward::Check(std::span<const int32_t> tokens, const KvCache& kv) const {
  const LlamaConfig& c = model_.config();
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
}

void LlamaForward::Run(std::span<const int32_t> tokens, KvCache& kv, const ForwardContext& ctx,
                       float* logits, bool all_logits) {
  if (tokens.empty()) return;
  Check(tokens, kv);
  const int64_t vocab = model_.config().vocab_size;
  for (size_t start = 0; start < tokens.size(); start += static_cast<size_t>(max_batch_)) {
    const size_t n = std::min(tokens.size() - start, static_cast<size_t>(max_batch_));
    const bool last = start + n == tokens.size();
    ForwardSegment seg{tokens.subspan(start, n), &kv, ForwardSegment::Logits::kNone};
    float* out = nullptr;
    if (all_logits) {
      seg.logits = ForwardSegment::Logits::kAll;
      out = logits + static_cast<int64_t>(start) * vocab;
    } else if (last) {
      seg.logits = ForwardSegment::Logits::kLast;
      out = logits;
    }
    RunSegments({&seg, 1}, ctx, out);
  }
}

int64_t LlamaForward::LogitRows(std::span<const ForwardSegment> segments) {
  int64_t rows = 0;
  for (const ForwardSegment& s : segments) {
    if (s.logits == ForwardSegment::Logits::kAll) rows += static_cast<int64_t>(s.tokens.size());
    if (s.logits == ForwardSegment::Logits::kLast && !s.tokens.empty()) ++rows;
  }
  return rows;
}

void LlamaForward::RunSegments(std::span<const ForwardSegment> segments, const ForwardContext& ctx,
                               float* logits) {
  const LlamaConfig& c = model_.config();
  const LlamaWeights& w = model_.weights();
  int n = 0;
  for (const ForwardSegment& s : segments) {
    TL_CHECK(s.kv != nullptr);
    Check(s.tokens, *s.kv);
    n += static_cast<int>(s.tokens.size());
  }
  if (n == 0) return;
  TL_CHECK_MSG(n <= max_batch_, "a forward pass of " + std::to_string(n) + " rows exceeds max_batch " +
                                    std::to_string(max_batch_));
  const int d = c.d_model, kv_dim = c.kv_dim(), half = c.head_dim / 2;
  const bool adjacent = c.rope_style == RopeStyle::kAdjacentPairs;

  // Embeddings and each row's rotary angles: x[r] = token_embd[token of r].
  int r = 0;
  for (const ForwardSegment& s : segments) {
    for (size_t i = 0; i < s.tokens.size(); ++i, ++r) {
      pos_[static_cast<size_t>(r)] = s.kv->n_past() + static_cast<int>(i);
      kernels::DequantizeRow(w.token_embd.dtype, w.token_embd.RowPtr(s.tokens[i]), &x_[static_cast<size_t>(r) * d], d);
      kernels::RopeCosSin(pos_[static_cast<size_t>(r)], model_.rope_inv_freq().data(), half,
                          &cos_[static_cast<size_t>(r) * half], &sin_[static_cast<size_t>(r) * half]);
    }
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
    jobs_.clear();
    int row0 = 0;
    for (const ForwardSegment& s : segments) {
      const int rows = static_cast<int>(s.tokens.size());
      if (rows == 0) continue;
      const kernels::KvLayer cache = s.kv->layer(l);
      for (int t = row0; t < row0 + rows; ++t) {
        const float* cs = &cos_[static_cast<size_t>(t) * half];
        const float* sn = &sin_[static_cast<size_t>(t) * half];
        kernels::ApplyRope(&q_[static_cast<size_t>(t) * c.q_dim()], c.n_heads, c.head_dim, cs, sn, adjacent);
        kernels::ApplyRope(&k_[static_cast<size_t>(t) * kv_dim], c.n_kv_heads, c.head_dim, cs, sn, adjacent);
        kernels::StoreKv(cache, pos_[static_cast<size_t>(t)], &k_[static_cast<size_t>(t) * kv_dim],
                         &v_[static_cast<size_t>(t) * kv_dim]);
      }
      jobs_.push_back({&q_[static_cast<size_t>(row0) * c.q_dim()], cache, &att_[static_cast<size_t>(row0) * c.q_dim()],
                       {rows, s.kv->n_past(), c.n_heads, c.n_kv_heads, c.head_dim}});
      row0 += rows;
    }
    kernels::CausalAttentionBatch(jobs_, *ctx.pool);
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
  for (const ForwardSegment& s : segments) s.kv->set_n_past(s.kv->n_past() + static_cast<int>(s.tokens.size()));

  if (logits == nullptr) return;
  // Final norm and the output head, for the rows the segments ask for.
  // (The hook sees these rows too; the mixer leaves the output head alone.)
  int rows = 0, row0 = 0;
  for (const ForwardSegment& s : segments) {
    const int seg_rows = static_cast<int>(s.tokens.size());
    int first = seg_rows;
    if (s.logits == ForwardSegment::Logits::kAll) first = 0;
    if (s.logits == ForwardSegment::Logits::kLast) first = seg_rows - 1;
    for (int t = row0 + first; t < row0 + seg_rows; ++t, ++rows) {
      kernels::RmsNorm(&x_[static_cast<size_t>(t) * d], w.output_norm.data(),
                       &xn_[static_cast<size_t>(rows) * d], d, c.rms_eps);
    }
    row0 += seg_rows;
  }
  if (rows > 0) Project(w.output, xn_.data(), rows, logits, ctx);
}

}  // namespace tokenlora
