#include "train/train_ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "kernels/kernels.h"

namespace tokenlora::train {

void AttentionForward(const float* q, const float* k, const float* v, float* probs, float* out,
                      const kernels::AttentionShape& s, ThreadPool& pool) {
  TL_CHECK(s.n_past == 0);
  const int64_t n = s.n_tok, hd = s.head_dim, group = s.n_heads / s.n_kv_heads;
  const int64_t q_stride = static_cast<int64_t>(s.n_heads) * hd, kv_stride = static_cast<int64_t>(s.n_kv_heads) * hd;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  pool.ParallelFor(static_cast<size_t>(s.n_heads * n), 4, [&](size_t begin, size_t end, int) {
    for (size_t item = begin; item < end; ++item) {
      const int64_t h = static_cast<int64_t>(item) / n, t = static_cast<int64_t>(item) % n;
      const int64_t g = h / group;
      const float* qt = q + t * q_stride + h * hd;
      float* p = probs + (h * n + t) * n;  // [n]
      for (int64_t j = 0; j <= t; ++j) p[j] = kernels::Dot(qt, k + j * kv_stride + g * hd, hd) * scale;
      kernels::Softmax(p, t + 1);
      std::fill(p + t + 1, p + n, 0.0f);
      float* o = out + t * q_stride + h * hd;
      std::fill(o, o + hd, 0.0f);
      for (int64_t j = 0; j <= t; ++j) kernels::Axpy(p[j], v + j * kv_stride + g * hd, o, hd);
    }
  });
}

void AttentionBackward(const float* q, const float* k, const float* v, const float* probs, const float* d_out,
                       float* dq, float* dk, float* dv, float* d_scores, const kernels::AttentionShape& s,
                       ThreadPool& pool) {
  TL_CHECK(s.n_past == 0);
  const int64_t n = s.n_tok, hd = s.head_dim, group = s.n_heads / s.n_kv_heads;
  const int64_t q_stride = static_cast<int64_t>(s.n_heads) * hd, kv_stride = static_cast<int64_t>(s.n_kv_heads) * hd;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  // Pass 1, per (head, query token): dP = dO·v, dS = P⊙(dP − Σ P·dP)·scale,
  // dq = Σ_s dS·k.
  pool.ParallelFor(static_cast<size_t>(s.n_heads * n), 4, [&](size_t begin, size_t end, int) {
    for (size_t item = begin; item < end; ++item) {
      const int64_t h = static_cast<int64_t>(item) / n, t = static_cast<int64_t>(item) % n;
      const int64_t g = h / group;
      const float* p = probs + (h * n + t) * n;
      float* ds = d_scores + (h * n + t) * n;
      const float* dot = d_out + t * q_stride + h * hd;
      double sum = 0;
      for (int64_t j = 0; j <= t; ++j) {
        ds[j] = kernels::Dot(dot, v + j * kv_stride + g * hd, hd);
        sum += static_cast<double>(p[j]) * ds[j];
      }
      const auto fsum = static_cast<float>(sum);
      float* dqt = dq + t * q_stride + h * hd;
      std::fill(dqt, dqt + hd, 0.0f);
      for (int64_t j = 0; j <= t; ++j) {
        ds[j] = p[j] * (ds[j] - fsum) * scale;
        kernels::Axpy(ds[j], k + j * kv_stride + g * hd, dqt, hd);
      }
      std::fill(ds + t + 1, ds + n, 0.0f);
    }
  });
  // Pass 2, per (kv head, key token): dk = Σ_h Σ_{t>=s} dS·q, dv = Σ_h Σ_{t>=s} P·dO.
  pool.ParallelFor(static_cast<size_t>(s.n_kv_heads * n), 4, [&](size_t begin, size_t end, int) {
    for (size_t item = begin; item < end; ++item) {
      const int64_t g = static_cast<int64_t>(item) / n, j = static_cast<int64_t>(item) % n;
      float* dkj = dk + j * kv_stride + g * hd;
      float* dvj = dv + j * kv_stride + g * hd;
      std::fill(dkj, dkj + hd, 0.0f);
      std::fill(dvj, dvj + hd, 0.0f);
      for (int64_t h = g * group; h < (g + 1) * group; ++h) {
        for (int64_t t = j; t < n; ++t) {
          kernels::Axpy(d_scores[(h * n + t) * n + j], q + t * q_stride + h * hd, dkj, hd);
          kernels::Axpy(probs[(h * n + t) * n + j], d_out + t * q_stride + h * hd, dvj, hd);
        }
      }
    }
  });
}

void RmsNormBackwardAdd(const float* x, const float* weight, const float* dy, float* dx, int64_t n, float eps) {
  double sum_sq = 0, dot = 0;
  for (int64_t i = 0; i < n; ++i) {
    sum_sq += static_cast<double>(x[i]) * x[i];
    dot += static_cast<double>(x[i]) * weight[i] * dy[i];
  }
  const double r = 1.0 / std::sqrt(sum_sq / static_cast<double>(n) + eps);
  const double c = r * r * r / static_cast<double>(n) * dot;
  const auto fr = static_cast<float>(r), fc = static_cast<float>(c);
  for (int64_t i = 0; i < n; ++i) dx[i] += fr * weight[i] * dy[i] - fc * x[i];
}

void SiluMulBackward(const float* gate, const float* up, const float* dh, float* d_gate, float* d_up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    const float sig = 1.0f / (1.0f + std::exp(-g));
    const float silu = g * sig;
    d_up[i] = dh[i] * silu;
    d_gate[i] = dh[i] * up[i] * sig * (1.0f + g * (1.0f - sig));
  }
}

namespace {
// max and log Σ exp(z − max), in double.
std::pair<float, double> LogSumExp(const float* z, int64_t vocab) {
  const float max = *std::max_element(z, z + vocab);
  double sum = 0;
  for (int64_t i = 0; i < vocab; ++i) sum += std::exp(static_cast<double>(z[i]) - max);
  return {max, std::log(sum)};
}
}  // namespace

double CrossEntropy(const float* logits, int64_t vocab, int32_t label) {
  const auto [max, log_sum] = LogSumExp(logits, vocab);
  return static_cast<double>(max) + log_sum - logits[label];
}

double CrossEntropyWithGrad(float* logits, int64_t vocab, int32_t label, float grad_scale) {
  const auto [max, log_sum] = LogSumExp(logits, vocab);
  const double loss = static_cast<double>(max) + log_sum - logits[label];
  const double lse = static_cast<double>(max) + log_sum;
  for (int64_t i = 0; i < vocab; ++i) {
    logits[i] = static_cast<float>(std::exp(static_cast<double>(logits[i]) - lse) * grad_scale);
  }
  logits[label] -= grad_scale;
  return loss;
}

}  // namespace tokenlora::train
