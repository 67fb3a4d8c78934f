// StoreKv's SIMD path: converts a position's keys and values to the cache's
// type with vector instructions (f16: vcvtps2ph, round to nearest even, as
// the scalar twin) and writes values as rows and keys into their tiles.
// Targets without F16C convert lane by lane with the scalar F32ToF16
// (Highway 1.0.3's emulated DemoteTo truncates instead of rounding).
#include <cstdint>
#include <cstring>

#include "kernels/attention.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/kv_store.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace tokenlora::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// dst[i] = f16(src[i]), i < n.
HWY_INLINE void ToHalves(const float* HWY_RESTRICT src, uint16_t* HWY_RESTRICT dst, size_t n) {
  size_t i = 0;
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
  const hn::ScalableTag<float> df;
  const hn::Rebind<hwy::float16_t, decltype(df)> dh;
  const size_t N = hn::Lanes(df);
  for (; i + N <= n; i += N) {
    hn::StoreU(hn::DemoteTo(dh, hn::LoadU(df, src + i)), dh, reinterpret_cast<hwy::float16_t*>(dst + i));
  }
#endif
  for (; i < n; ++i) dst[i] = F32ToF16(src[i]);
}

template <typename T>
HWY_INLINE void StoreRows(const KvLayer& kv, int pos, const float* k, const float* v) {
  const size_t hd = static_cast<size_t>(kv.head_dim);
  // The key row of one head in the cache's type, before it is spread over its tile.
  HWY_ALIGN T row[1024];
  for (int g = 0; g < kv.n_kv_heads; ++g) {
    const float* kg = k + static_cast<size_t>(g) * hd;
    const float* vg = v + static_cast<size_t>(g) * hd;
    T* values = static_cast<T*>(kv.values) + kv.ValueIndex(g, pos);
    T* keys = static_cast<T*>(kv.keys) + kv.KeyIndex(g, pos, 0);
    if constexpr (sizeof(T) == 2) {
      ToHalves(vg, values, hd);
      ToHalves(kg, row, hd);
    } else {
      std::memcpy(values, vg, hd * sizeof(float));
      std::memcpy(row, kg, hd * sizeof(float));
    }
    for (size_t d = 0; d < hd; ++d) keys[d * kKeyTile] = row[d];
  }
}

void StoreKvSimd(const KvLayer& kv, int pos, const float* k, const float* v) {
  if (kv.type == DType::kF16) return StoreRows<uint16_t>(kv, pos, k, v);
  StoreRows<float>(kv, pos, k, v);
}

}  // namespace tokenlora::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace tokenlora::kernels::internal {
HWY_EXPORT(StoreKvSimd);
void StoreKvSimd(const KvLayer& kv, int pos, const float* k, const float* v) {
  HWY_DYNAMIC_DISPATCH(StoreKvSimd)(kv, pos, k, v);
}
}  // namespace tokenlora::kernels::internal
#endif  // HWY_ONCE
