#include "kernels/rope.h"

#include <cmath>

namespace tokenlora::kernels {

void RopeCosSin(int64_t position, const float* inv_freq, int half, float* cos_out,
                float* sin_out) {
  const float p = static_cast<float>(position);
  for (int i = 0; i < half; ++i) {
    const float angle = p * inv_freq[i];
    cos_out[i] = std::cos(angle);
    sin_out[i] = std::sin(angle);
  }
}

void ApplyRope(float* x, int n_heads, int head_dim, const float* cos, const float* sin,
               bool adjacent_pairs) {
  const int half = head_dim / 2;
  for (int h = 0; h < n_heads; ++h) {
    float* v = x + static_cast<int64_t>(h) * head_dim;
    for (int i = 0; i < half; ++i) {
      const int a = adjacent_pairs ? 2 * i : i;
      const int b = adjacent_pairs ? 2 * i + 1 : i + half;
      const float x0 = v[a], x1 = v[b];
      v[a] = x0 * cos[i] - x1 * sin[i];
      v[b] = x1 * cos[i] + x0 * sin[i];
    }
  }
}

}  // namespace tokenlora::kernels
