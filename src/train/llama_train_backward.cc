// LlamaTrainGraph: the backward pass, from the residual stream's gradient at
// the output (set by LossAndHeadBackward) down to layer 0, adding the LoRA
// gradients on the way. The base weights get no gradients; their transposed
// products (AddMatMulTransposed) carry the gradient through them.
#include <algorithm>

#include "kernels/kernels.h"
#include "kernels/rope.h"
#include "train/llama_train_graph.h"
#include "train/train_ops.h"

namespace tokenlora {
void LlamaTrainGraph::ProjectBackward(const Linear& linear, int layer, const float* x, int n, const float* dy,
                                      float* dx, const LoraSaved& saved, const TrainRunOptions& options,
                                      ThreadPool& pool) {
  TrainableModule* m = params_.Find(layer, linear.kind);
  if (m != nullptr) {
    const int64_t n_in = m->n_in, n_out = m->n_out, r = params_.rank();
    const float s = params_.scale();
    const float p = params_.config().dropout;
    const bool dropout = options.dropout && p > 0;
    const float* xa = dropout ? saved.x_dropped.data() : x;  // [n, n_in]
    const float* u = saved.u.data();                         // [n, r]
    // grad_B [n_out, r] += (s·dy)ᵀ·u  and  grad_A [r, n_in] += duᵀ·dropout(x), both as
    // transposed products over the n tokens (AddMatMulTransposed with the
    // activations as the f32 "weights").
    dy_t_.resize(static_cast<size_t>(n_out * n));  // [n_out, n] = s·dyᵀ
    for (int64_t t = 0; t < n; ++t) {
      for (int64_t o = 0; o < n_out; ++o) dy_t_[static_cast<size_t>(o * n + t)] = s * dy[t * n_out + o];
    }
    kernels::AddMatMulTransposed(TensorView{"u", DType::kF32, {n, r}, u}, dy_t_.data(), n_out, m->grad_b.data(), pool);
    // du = s·dy·B  [n, r]
    du_.assign(static_cast<size_t>(n * r), 0.0f);
    kernels::AddMatMulTransposed(F32View(m->b, n_out, r, "lora_B"), dy, n, du_.data(), pool);
    for (float& v : du_) v *= s;
    du_t_.resize(static_cast<size_t>(r * n));  // [r, n] = duᵀ
    for (int64_t t = 0; t < n; ++t) {
      for (int64_t j = 0; j < r; ++j) du_t_[static_cast<size_t>(j * n + t)] = du_[static_cast<size_t>(t * r + j)];
    }
    kernels::AddMatMulTransposed(TensorView{"dropout(x)", DType::kF32, {n, n_in}, xa}, du_t_.data(), r,
                                 m->grad_a.data(), pool);
    // dx += (du·A) ⊙ (dropout mask / (1 − p))
    if (dx != nullptr) {
      const TensorView a = F32View(m->a, r, n_in, "lora_A");
      if (!dropout) {
        kernels::AddMatMulTransposed(a, du_.data(), n, dx, pool);
      } else {
        lora_tmp_.assign(static_cast<size_t>(n * n_in), 0.0f);
        kernels::AddMatMulTransposed(a, du_.data(), n, lora_tmp_.data(), pool);
        const uint64_t key = ModuleDropoutKey(options.dropout_key, layer, linear.kind);
        const float keep_scale = 1.0f / (1.0f - p);
        for (int64_t i = 0; i < n * n_in; ++i) {
          if (HashUniform01(key, static_cast<uint64_t>(i)) >= p)
            dx[i] += lora_tmp_[static_cast<size_t>(i)] * keep_scale;
        }
      }
    }
  }
  if (dx != nullptr) kernels::AddMatMulTransposed(linear.weight, dy, n, dx, pool);
}

void LlamaTrainGraph::Backward(int n, const TrainRunOptions& options, ThreadPool& pool) {
  const LlamaConfig& c = model_.config();
  const LlamaWeights& w = model_.weights();
  const int64_t d = c.d_model, q_dim = c.q_dim(), kv_dim = c.kv_dim(), d_ff = c.d_ff, half = c.head_dim / 2;
  const bool adjacent = c.rope_style == RopeStyle::kAdjacentPairs;
  const auto sz = [n](int64_t cols) { return static_cast<size_t>(n * cols); };
  const auto row = [](std::vector<float>& v, int64_t t, int64_t cols) { return &v[static_cast<size_t>(t * cols)]; };

  // dx_ [n, d_model] holds ∂L/∂(residual stream) after the current layer.
  for (int l = c.n_layers - 1; l >= 0; --l) {
    const LlamaLayer& layer = w.layers[static_cast<size_t>(l)];
    LayerSaved& s = layers_[static_cast<size_t>(l)];
    // MLP block: x_out = x_mid + down(silu(gate(xn)) · up(xn)), xn = ffn_norm(x_mid).
    dh_.assign(sz(d_ff), 0.0f);
    ProjectBackward(layer.down, l, s.h.data(), n, dx_.data(), dh_.data(), s.lora[LoraKindIndex(ModuleKind::kDown)],
                    options, pool);
    d_gate_.resize(sz(d_ff));
    d_up_.resize(sz(d_ff));
    train::SiluMulBackward(s.gate.data(), s.up.data(), dh_.data(), d_gate_.data(), d_up_.data(), n * d_ff);
    dxn_.assign(sz(d), 0.0f);
    ProjectBackward(layer.gate, l, s.xn_ffn.data(), n, d_gate_.data(), dxn_.data(),
                    s.lora[LoraKindIndex(ModuleKind::kGate)], options, pool);
    ProjectBackward(layer.up, l, s.xn_ffn.data(), n, d_up_.data(), dxn_.data(), s.lora[LoraKindIndex(ModuleKind::kUp)],
                    options, pool);
    for (int t = 0; t < n; ++t) {
      train::RmsNormBackwardAdd(row(s.x_mid, t, d), layer.ffn_norm.data(), row(dxn_, t, d), row(dx_, t, d), d,
                                c.rms_eps);
    }

    // Attention block: x_mid = x_in + o(attention(rope(q(xn)), rope(k(xn)), v(xn))), xn = attn_norm(x_in).
    d_att_.assign(sz(q_dim), 0.0f);
    ProjectBackward(layer.o, l, s.att.data(), n, dx_.data(), d_att_.data(), s.lora[LoraKindIndex(ModuleKind::kO)],
                    options, pool);
    dq_.resize(sz(q_dim));
    dk_.resize(sz(kv_dim));
    dv_.resize(sz(kv_dim));
    d_scores_.resize(static_cast<size_t>(c.n_heads) * sz(n));
    train::AttentionBackward(s.q.data(), s.k.data(), s.v.data(), s.probs.data(), d_att_.data(), dq_.data(), dk_.data(),
                             dv_.data(), d_scores_.data(), {n, 0, c.n_heads, c.n_kv_heads, c.head_dim}, pool);
    // RoPE is a rotation: its transpose rotates by the negated angle.
    for (int t = 0; t < n; ++t) {
      const float* cs = &cos_[static_cast<size_t>(t * half)];
      const float* sn = &neg_sin_[static_cast<size_t>(t * half)];
      kernels::ApplyRope(row(dq_, t, q_dim), c.n_heads, c.head_dim, cs, sn, adjacent);
      kernels::ApplyRope(row(dk_, t, kv_dim), c.n_kv_heads, c.head_dim, cs, sn, adjacent);
    }
    // Below layer 0 are only the frozen embeddings: no input gradient needed.
    const bool need_dx = l > 0;
    float* dxn = need_dx ? dxn_.data() : nullptr;
    if (need_dx) dxn_.assign(sz(d), 0.0f);
    ProjectBackward(layer.q, l, s.xn_attn.data(), n, dq_.data(), dxn, s.lora[LoraKindIndex(ModuleKind::kQ)], options,
                    pool);
    ProjectBackward(layer.k, l, s.xn_attn.data(), n, dk_.data(), dxn, s.lora[LoraKindIndex(ModuleKind::kK)], options,
                    pool);
    ProjectBackward(layer.v, l, s.xn_attn.data(), n, dv_.data(), dxn, s.lora[LoraKindIndex(ModuleKind::kV)], options,
                    pool);
    if (need_dx) {
      for (int t = 0; t < n; ++t) {
        train::RmsNormBackwardAdd(row(s.x_in, t, d), layer.attn_norm.data(), row(dxn_, t, d), row(dx_, t, d), d,
                                  c.rms_eps);
      }
    }
  }
}

}  // namespace tokenlora
