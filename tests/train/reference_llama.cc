#include "train/reference_llama.h"

#include <cmath>

#include "kernels/kernels.h"

namespace tokenlora::testing {
namespace {

void RmsNorm(const std::vector<double>& x, const std::vector<float>& w, int64_t n, int64_t d, double eps,
             std::vector<double>& y) {
  y.assign(static_cast<size_t>(n * d), 0.0);
  for (int64_t t = 0; t < n; ++t) {
    double ss = 0;
    for (int64_t i = 0; i < d; ++i) ss += x[static_cast<size_t>(t * d + i)] * x[static_cast<size_t>(t * d + i)];
    const double r = 1.0 / std::sqrt(ss / static_cast<double>(d) + eps);
    for (int64_t i = 0; i < d; ++i)
      y[static_cast<size_t>(t * d + i)] = x[static_cast<size_t>(t * d + i)] * r * w[static_cast<size_t>(i)];
  }
}

// Rotates each head of each row: pairs (2i, 2i+1) when adjacent, else (i, i + d/2).
void Rope(std::vector<double>& x, int64_t n, int n_heads, int head_dim, const std::vector<float>& inv_freq,
          bool adjacent) {
  const int half = head_dim / 2;
  for (int64_t t = 0; t < n; ++t) {
    for (int h = 0; h < n_heads; ++h) {
      double* v = &x[static_cast<size_t>((t * n_heads + h) * head_dim)];
      for (int i = 0; i < half; ++i) {
        const double angle = static_cast<double>(t) * inv_freq[static_cast<size_t>(i)];
        const double c = std::cos(angle), s = std::sin(angle);
        const int a = adjacent ? 2 * i : i, b = adjacent ? 2 * i + 1 : i + half;
        const double x0 = v[a], x1 = v[b];
        v[a] = x0 * c - x1 * s;
        v[b] = x0 * s + x1 * c;
      }
    }
  }
}

}  // namespace

ReferenceLlama::Matrix ReferenceLlama::FromLinear(const Linear& linear) {
  Matrix m;
  m.rows = linear.n_out();
  m.cols = linear.n_in();
  std::vector<float> row(static_cast<size_t>(m.cols));
  for (int64_t r = 0; r < m.rows; ++r) {
    kernels::scalar::DequantizeRow(linear.weight.dtype, linear.weight.RowPtr(r), row.data(), m.cols);
    m.v.insert(m.v.end(), row.begin(), row.end());
  }
  m.bias.assign(linear.bias.begin(), linear.bias.end());
  return m;
}

ReferenceLlama::ReferenceLlama(const Model& model) : model_(model) {
  const LlamaWeights& w = model.weights();
  for (const LlamaLayer& l : w.layers) {
    layers_.push_back({FromLinear(l.q), FromLinear(l.k), FromLinear(l.v), FromLinear(l.o), FromLinear(l.gate),
                       FromLinear(l.up), FromLinear(l.down)});
  }
  output_ = FromLinear(w.output);
  Linear embed;
  embed.weight = w.token_embd;
  embed_ = FromLinear(embed);
}

std::vector<double> ReferenceLlama::Apply(const Matrix& w, const std::vector<double>& x, int64_t n,
                                          const LoraParams& params, int layer, ModuleKind kind) const {
  std::vector<double> y(static_cast<size_t>(n * w.rows), 0.0);
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t o = 0; o < w.rows; ++o) {
      double acc = w.bias.empty() ? 0.0 : w.bias[static_cast<size_t>(o)];
      for (int64_t i = 0; i < w.cols; ++i)
        acc += w.v[static_cast<size_t>(o * w.cols + i)] * x[static_cast<size_t>(t * w.cols + i)];
      y[static_cast<size_t>(t * w.rows + o)] = acc;
    }
  }
  const TrainableModule* m = layer >= 0 ? params.Find(layer, kind) : nullptr;
  if (m == nullptr) return y;
  const int64_t r = params.rank();
  const double s = static_cast<double>(params.config().alpha) / static_cast<double>(r);
  for (int64_t t = 0; t < n; ++t) {
    std::vector<double> u(static_cast<size_t>(r), 0.0);
    for (int64_t j = 0; j < r; ++j) {
      for (int64_t i = 0; i < w.cols; ++i)
        u[static_cast<size_t>(j)] +=
            static_cast<double>(m->a[static_cast<size_t>(j * w.cols + i)]) * x[static_cast<size_t>(t * w.cols + i)];
    }
    for (int64_t o = 0; o < w.rows; ++o) {
      double acc = 0;
      for (int64_t j = 0; j < r; ++j)
        acc += static_cast<double>(m->b[static_cast<size_t>(o * r + j)]) * u[static_cast<size_t>(j)];
      y[static_cast<size_t>(t * w.rows + o)] += s * acc;
    }
  }
  return y;
}

double ReferenceLlama::SummedLoss(const LoraParams& params, const TrainSequence& seq) const {
  const LlamaConfig& c = model_.config();
  const LlamaWeights& w = model_.weights();
  const int64_t n = static_cast<int64_t>(seq.tokens.size()), d = c.d_model, hd = c.head_dim;
  const bool adjacent = c.rope_style == RopeStyle::kAdjacentPairs;
  std::vector<double> x;
  for (int32_t tok : seq.tokens) {
    x.insert(x.end(), embed_.v.begin() + tok * d, embed_.v.begin() + (tok + 1) * d);
  }
  std::vector<double> xn;
  for (int l = 0; l < c.n_layers; ++l) {
    const auto& m = layers_[static_cast<size_t>(l)];
    const LlamaLayer& lw = w.layers[static_cast<size_t>(l)];
    RmsNorm(x, lw.attn_norm, n, d, c.rms_eps, xn);
    auto q = Apply(m[0], xn, n, params, l, ModuleKind::kQ);
    auto k = Apply(m[1], xn, n, params, l, ModuleKind::kK);
    const auto v = Apply(m[2], xn, n, params, l, ModuleKind::kV);
    Rope(q, n, c.n_heads, c.head_dim, model_.rope_inv_freq(), adjacent);
    Rope(k, n, c.n_kv_heads, c.head_dim, model_.rope_inv_freq(), adjacent);
    std::vector<double> att(static_cast<size_t>(n * c.q_dim()), 0.0);
    const int group = c.n_heads / c.n_kv_heads;
    for (int64_t t = 0; t < n; ++t) {
      for (int h = 0; h < c.n_heads; ++h) {
        const int g = h / group;
        std::vector<double> p(static_cast<size_t>(t + 1));
        double max = -1e300;
        for (int64_t s = 0; s <= t; ++s) {
          double dot = 0;
          for (int64_t i = 0; i < hd; ++i)
            dot += q[static_cast<size_t>((t * c.n_heads + h) * hd + i)] *
                   k[static_cast<size_t>((s * c.n_kv_heads + g) * hd + i)];
          p[static_cast<size_t>(s)] = dot / std::sqrt(static_cast<double>(hd));
          max = std::max(max, p[static_cast<size_t>(s)]);
        }
        double sum = 0;
        for (double& e : p) sum += (e = std::exp(e - max));
        for (int64_t s = 0; s <= t; ++s) {
          for (int64_t i = 0; i < hd; ++i) {
            att[static_cast<size_t>((t * c.n_heads + h) * hd + i)] +=
                p[static_cast<size_t>(s)] / sum * v[static_cast<size_t>((s * c.n_kv_heads + g) * hd + i)];
          }
        }
      }
    }
    const auto o = Apply(m[3], att, n, params, l, ModuleKind::kO);
    for (size_t i = 0; i < x.size(); ++i) x[i] += o[i];
    RmsNorm(x, lw.ffn_norm, n, d, c.rms_eps, xn);
    auto gate = Apply(m[4], xn, n, params, l, ModuleKind::kGate);
    const auto up = Apply(m[5], xn, n, params, l, ModuleKind::kUp);
    for (size_t i = 0; i < gate.size(); ++i) gate[i] = gate[i] / (1.0 + std::exp(-gate[i])) * up[i];
    const auto down = Apply(m[6], gate, n, params, l, ModuleKind::kDown);
    for (size_t i = 0; i < x.size(); ++i) x[i] += down[i];
  }
  RmsNorm(x, w.output_norm, n, d, c.rms_eps, xn);
  const auto logits = Apply(output_, xn, n, params, -1, ModuleKind::kOutput);
  double loss = 0;
  const int64_t vocab = c.vocab_size;
  for (int64_t t = seq.n_prompt - 1; t + 1 < n; ++t) {
    const double* z = &logits[static_cast<size_t>(t * vocab)];
    double max = -1e300, sum = 0;
    for (int64_t i = 0; i < vocab; ++i) max = std::max(max, z[i]);
    for (int64_t i = 0; i < vocab; ++i) sum += std::exp(z[i] - max);
    loss += max + std::log(sum) - z[seq.tokens[static_cast<size_t>(t + 1)]];
  }
  return loss;
}

}  // namespace tokenlora::testing
