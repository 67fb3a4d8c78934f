// Per-target helpers shared by the SIMD attention kernels
// (attention_block.cc, attention_decode.cc): loading KV cache elements of
// either type as f32 vectors, and the key step of the score loops.

// Per-target part: re-included once per target by foreach_target.h.
#if defined(TOKENLORA_KERNELS_ATTENTION_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef TOKENLORA_KERNELS_ATTENTION_INL_H_
#undef TOKENLORA_KERNELS_ATTENTION_INL_H_
#else
#define TOKENLORA_KERNELS_ATTENTION_INL_H_
#endif

#include "hwy/highway.h"
#include "kernels/attention.h"
#include "kernels/dequant-inl.h"

HWY_BEFORE_NAMESPACE();
namespace tokenlora::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Lanes(df) cache elements at p as f32 (f16 elements are converted).
template <class D>
HWY_INLINE hn::Vec<D> LoadKv(D df, const float* HWY_RESTRICT p) {
  return hn::LoadU(df, p);
}
template <class D>
HWY_INLINE hn::Vec<D> LoadKv(D df, const uint16_t* HWY_RESTRICT p) {
  return LoadHalves(df, reinterpret_cast<const uint8_t*>(p));
}

// Keys per step of a score loop: whole tiles and at least two vectors
// (16 on SSE4/AVX2, 32 on AVX-512); it divides kKvCapacityStep, so a step
// never reads past the cache.
constexpr size_t kMaxLanesF32 = hn::MaxLanes(DF());
constexpr size_t kKeyVectors = kKeyTile / kMaxLanesF32 >= 2 ? kKeyTile / kMaxLanesF32 : 2;
constexpr size_t kStepKeys = kKeyVectors * kMaxLanesF32;
static_assert(kKvCapacityStep % kStepKeys == 0);

// Start of key vector u (of kKeyVectors) of the step at key kc, dimension 0,
// in one head's key tiles (dimension d is kKeyTile·d further on).
template <typename T>
HWY_INLINE const T* KeyVector(const T* keys, size_t head_dim, size_t kc, size_t u) {
  const size_t pos = kc + u * kMaxLanesF32;
  return keys + (pos / kKeyTile) * head_dim * kKeyTile + pos % kKeyTile;
}

}  // namespace tokenlora::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // per-target include guard
