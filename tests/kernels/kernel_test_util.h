// Helpers shared by the kernel tests: deterministic data, golden files, and
// running a check once per compiled SIMD target.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "hwy/targets.h"
#include "tensor/dtype.h"
#include "tensor/tensor.h"
#include "test_util.h"

namespace tokenlora::testing {

// Largest f32 vector of any target we build (AVX-512: 16 lanes); tests sweep
// lengths 0 .. 2·kMaxLanes + 7 so every target sees empty, partial, one, two
// and more vectors plus every tail length.
inline constexpr int kMaxLanes = 16;

// Runs `check` once for every SIMD target compiled into the kernels and
// supported by this CPU (e.g. AVX3, AVX2, SSE4, EMU128), so machines without
// AVX-512 paths are covered too. Restores normal dispatch afterwards.
inline void ForEachSimdTarget(const std::function<void()>& check) {
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    SCOPED_TRACE(std::string("SIMD target ") + hwy::TargetName(target));
    check();
  }
  hwy::SetSupportedTargetsForTest(0);
}

inline std::vector<uint8_t> ReadGolden(const std::string& name) {
  const std::string path = SourcePath("tests/golden/kernels/" + name);
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "missing golden file " << path
                         << " (regenerate with scripts/make_golden_kernels.py)";
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

inline std::vector<float> BytesToFloats(const std::vector<uint8_t>& bytes) {
  std::vector<float> out(bytes.size() / sizeof(float));
  if (!out.empty()) std::memcpy(out.data(), bytes.data(), out.size() * sizeof(float));
  return out;
}

inline uint32_t FloatBits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

inline std::vector<float> RandomFloats(std::mt19937& rng, size_t n, float lo, float hi) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// Random bytes for a row of `n_blocks` blocks of type t, with every f16 scale
// field replaced by a finite random scale (random f16 bits would include
// inf/NaN, for which "equal" is not meaningful).
std::vector<uint8_t> RandomBlocks(std::mt19937& rng, DType t, int64_t n_blocks);

// Random weights in [-1, 1) quantized to t (QuantizeRow is tested in
// quantize_test.cc), with their dequantization by the scalar twin.
struct Weights {
  std::vector<uint8_t> bytes;
  std::vector<float> dequantized;  // [n_out, n_in]
  TensorView view;                 // "test.weight" over `bytes`
};
Weights MakeWeights(std::mt19937& rng, DType t, int64_t n_out, int64_t n_in);

}  // namespace tokenlora::testing
