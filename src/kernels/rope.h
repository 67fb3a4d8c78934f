// Rotary position embeddings.
#pragma once

#include <cstdint>

namespace tokenlora::kernels {

// cos_out/sin_out: [half] = cos/sin(position · inv_freq[i]), angles in f32
// as the reference computes them (f32 product, then cos/sin).
void RopeCosSin(int64_t position, const float* inv_freq, int half, float* cos_out,
                float* sin_out);

// Rotates every head of x in place. x: [n_heads, head_dim] for one token;
// cos/sin: [head_dim / 2]. `adjacent_pairs` rotates (x[2i], x[2i+1]) (ggml
// normal mode), otherwise (x[i], x[i + head_dim/2]) (rotate_half, neox).
void ApplyRope(float* x, int n_heads, int head_dim, const float* cos, const float* sin,
               bool adjacent_pairs);

}  // namespace tokenlora::kernels
