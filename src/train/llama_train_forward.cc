// LlamaTrainGraph: the forward pass (saving activations) and the loss.
#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "kernels/kernels.h"
#include "kernels/rope.h"
#include "model/project.h"
#include "train/llama_train_graph.h"
#include "train/train_ops.h"

namespace tokenlora {
LlamaTrainGraph::LlamaTrainGraph(const Model& model, LoraParams& params) : model_(model), params_(params) {
  const LlamaConfig& c = model.config();
  for (const TrainableModule& m : params.modules()) {
    const auto [n_out, n_in] = ModuleShape(c, m.kind);
    if (m.layer >= c.n_layers || m.n_in != n_in || m.n_out != n_out) {
      throw InputError("LoRA module layer " + std::to_string(m.layer) + " " + ModuleName(m.kind) + " is [" +
                       std::to_string(m.n_out) + ", " + std::to_string(m.n_in) + "], the base " + model.path() +
                       " has [" + std::to_string(n_out) + ", " + std::to_string(n_in) + "]");
    }
  }
  layers_.resize(static_cast<size_t>(c.n_layers));
}

void LlamaTrainGraph::ProjectForward(const Linear& linear, int layer, const float* x, int n, float* y, LoraSaved& saved,
                                     const TrainRunOptions& options, ThreadPool& pool) {
  Project(linear, x, n, y, ForwardContext{&pool, nullptr});
  const TrainableModule* m = params_.Find(layer, linear.kind);
  if (m == nullptr) return;
  const int64_t n_in = m->n_in, n_out = m->n_out, r = params_.rank();
  const float p = params_.config().dropout;
  const float* xa = x;
  if (options.dropout && p > 0) {
    // PEFT's nn.Dropout: keep with probability 1 − p, scale kept values by 1/(1 − p).
    const uint64_t key = ModuleDropoutKey(options.dropout_key, layer, linear.kind);
    const float keep_scale = 1.0f / (1.0f - p);
    saved.x_dropped.resize(static_cast<size_t>(n * n_in));
    for (int64_t i = 0; i < n * n_in; ++i) {
      const bool keep = HashUniform01(key, static_cast<uint64_t>(i)) >= p;
      saved.x_dropped[static_cast<size_t>(i)] = keep ? x[i] * keep_scale : 0.0f;
    }
    xa = saved.x_dropped.data();
  }
  saved.u.resize(static_cast<size_t>(n * r));
  kernels::MatMul(F32View(m->a, r, n_in, "lora_A"), xa, n, saved.u.data(), pool);  // [n, r]
  lora_tmp_.resize(static_cast<size_t>(n * n_out));
  kernels::MatMul(F32View(m->b, n_out, r, "lora_B"), saved.u.data(), n, lora_tmp_.data(), pool);  // [n, n_out]
  kernels::Axpy(params_.scale(), lora_tmp_.data(), y, n * n_out);
}

void LlamaTrainGraph::Forward(const TrainSequence& seq, const TrainRunOptions& options, ThreadPool& pool) {
  const LlamaConfig& c = model_.config();
  const LlamaWeights& w = model_.weights();
  const int n = static_cast<int>(seq.tokens.size());
  const int64_t d = c.d_model, q_dim = c.q_dim(), kv_dim = c.kv_dim(), d_ff = c.d_ff, half = c.head_dim / 2;
  const bool adjacent = c.rope_style == RopeStyle::kAdjacentPairs;
  const auto sz = [n](int64_t cols) { return static_cast<size_t>(n * cols); };

  cos_.resize(sz(half));
  sin_.resize(sz(half));
  neg_sin_.resize(sz(half));
  std::vector<float> x(sz(d));  // [n, d_model] residual stream
  for (int t = 0; t < n; ++t) {
    kernels::DequantizeRow(w.token_embd.dtype, w.token_embd.RowPtr(seq.tokens[static_cast<size_t>(t)]),
                           &x[static_cast<size_t>(t * d)], d);
    kernels::RopeCosSin(t, model_.rope_inv_freq().data(), static_cast<int>(half), &cos_[static_cast<size_t>(t * half)],
                        &sin_[static_cast<size_t>(t * half)]);
  }
  for (size_t i = 0; i < neg_sin_.size(); ++i) neg_sin_[i] = -sin_[i];

  for (int l = 0; l < c.n_layers; ++l) {
    const LlamaLayer& layer = w.layers[static_cast<size_t>(l)];
    LayerSaved& s = layers_[static_cast<size_t>(l)];
    s.x_in = x;
    s.xn_attn.resize(sz(d));
    for (int t = 0; t < n; ++t)
      kernels::RmsNorm(&x[static_cast<size_t>(t * d)], layer.attn_norm.data(), &s.xn_attn[static_cast<size_t>(t * d)],
                       d, c.rms_eps);
    s.q.resize(sz(q_dim));
    s.k.resize(sz(kv_dim));
    s.v.resize(sz(kv_dim));
    ProjectForward(layer.q, l, s.xn_attn.data(), n, s.q.data(), s.lora[LoraKindIndex(ModuleKind::kQ)], options, pool);
    ProjectForward(layer.k, l, s.xn_attn.data(), n, s.k.data(), s.lora[LoraKindIndex(ModuleKind::kK)], options, pool);
    ProjectForward(layer.v, l, s.xn_attn.data(), n, s.v.data(), s.lora[LoraKindIndex(ModuleKind::kV)], options, pool);
    for (int t = 0; t < n; ++t) {
      const float* cs = &cos_[static_cast<size_t>(t * half)];
      const float* sn = &sin_[static_cast<size_t>(t * half)];
      kernels::ApplyRope(&s.q[static_cast<size_t>(t * q_dim)], c.n_heads, c.head_dim, cs, sn, adjacent);
      kernels::ApplyRope(&s.k[static_cast<size_t>(t * kv_dim)], c.n_kv_heads, c.head_dim, cs, sn, adjacent);
    }
    s.probs.resize(static_cast<size_t>(c.n_heads) * sz(n));
    s.att.resize(sz(q_dim));
    train::AttentionForward(s.q.data(), s.k.data(), s.v.data(), s.probs.data(), s.att.data(),
                            {n, 0, c.n_heads, c.n_kv_heads, c.head_dim}, pool);
    dxn_.resize(sz(d));  // o_proj output
    ProjectForward(layer.o, l, s.att.data(), n, dxn_.data(), s.lora[LoraKindIndex(ModuleKind::kO)], options, pool);
    kernels::AddInPlace(x.data(), dxn_.data(), n * d);

    s.x_mid = x;
    s.xn_ffn.resize(sz(d));
    for (int t = 0; t < n; ++t)
      kernels::RmsNorm(&x[static_cast<size_t>(t * d)], layer.ffn_norm.data(), &s.xn_ffn[static_cast<size_t>(t * d)], d,
                       c.rms_eps);
    s.gate.resize(sz(d_ff));
    s.up.resize(sz(d_ff));
    ProjectForward(layer.gate, l, s.xn_ffn.data(), n, s.gate.data(), s.lora[LoraKindIndex(ModuleKind::kGate)], options,
                   pool);
    ProjectForward(layer.up, l, s.xn_ffn.data(), n, s.up.data(), s.lora[LoraKindIndex(ModuleKind::kUp)], options, pool);
    s.h = s.gate;
    kernels::SiluMul(s.h.data(), s.up.data(), n * d_ff);
    ProjectForward(layer.down, l, s.h.data(), n, dxn_.data(), s.lora[LoraKindIndex(ModuleKind::kDown)], options, pool);
    kernels::AddInPlace(x.data(), dxn_.data(), n * d);
  }
  x_final_ = std::move(x);
}

double LlamaTrainGraph::LossAndHeadBackward(const TrainSequence& seq, const TrainRunOptions& options,
                                            ThreadPool& pool) {
  const LlamaConfig& c = model_.config();
  const LlamaWeights& w = model_.weights();
  const int n = static_cast<int>(seq.tokens.size());
  const int64_t d = c.d_model, vocab = c.vocab_size;
  // Rows first .. n − 2 predict the answer tokens first + 1 .. n − 1.
  const int first = seq.n_prompt - 1;
  const int rows = n - 1 - first;
  dx_.assign(static_cast<size_t>(n * d), 0.0f);
  if (rows <= 0) return 0.0;
  xn_rows_.resize(static_cast<size_t>(rows * d));
  for (int i = 0; i < rows; ++i) {
    kernels::RmsNorm(&x_final_[static_cast<size_t>((first + i) * d)], w.output_norm.data(),
                     &xn_rows_[static_cast<size_t>(i * d)], d, c.rms_eps);
  }
  logits_.resize(static_cast<size_t>(rows * vocab));
  Project(w.output, xn_rows_.data(), rows, logits_.data(), ForwardContext{&pool, nullptr});
  double loss = 0;
  const auto g = static_cast<float>(options.grad_scale);
  for (int i = 0; i < rows; ++i) {
    float* z = &logits_[static_cast<size_t>(i * vocab)];
    const int32_t label = seq.tokens[static_cast<size_t>(first + i + 1)];
    loss += options.backward ? train::CrossEntropyWithGrad(z, vocab, label, g) : train::CrossEntropy(z, vocab, label);
  }
  if (!options.backward) return loss;
  // d xn_rows = dlogits · W_out  [rows, d_model], then back through the final RMSNorm.
  dxn_.assign(static_cast<size_t>(rows * d), 0.0f);
  kernels::AddMatMulTransposed(w.output.weight, logits_.data(), rows, dxn_.data(), pool);
  for (int i = 0; i < rows; ++i) {
    train::RmsNormBackwardAdd(&x_final_[static_cast<size_t>((first + i) * d)], w.output_norm.data(),
                              &dxn_[static_cast<size_t>(i * d)], &dx_[static_cast<size_t>((first + i) * d)], d,
                              c.rms_eps);
  }
  return loss;
}

double LlamaTrainGraph::Run(const TrainSequence& seq, const TrainRunOptions& options, ThreadPool& pool) {
  const LlamaConfig& c = model_.config();
  const int64_t n = static_cast<int64_t>(seq.tokens.size());
  TL_CHECK_MSG(seq.n_prompt >= 1 && seq.n_prompt <= n, "TrainSequence: n_prompt outside [1, n]");
  if (n > c.max_context) {
    throw InputError("training sequence of " + std::to_string(n) + " tokens exceeds the model's context " +
                     std::to_string(c.max_context) + " (lower --max-len)");
  }
  for (int32_t t : seq.tokens) {
    if (t < 0 || t >= c.vocab_size) {
      throw InputError("token id " + std::to_string(t) + " is outside the vocabulary [0, " +
                       std::to_string(c.vocab_size) + ")");
    }
  }
  Forward(seq, options, pool);
  const double loss = LossAndHeadBackward(seq, options, pool);
  if (options.backward && seq.NumTargets() > 0) Backward(static_cast<int>(n), options, pool);
  return loss;
}

}  // namespace tokenlora
