// Public DequantizeRow: Highway dynamic dispatch over dequant-inl.h, or the
// scalar twin when TOKENLORA_SIMD=scalar.
#include <cstdint>

#include "core/error.h"
#include "kernels/dispatch.h"
#include "kernels/kernels.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/dequant_simd.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "kernels/dequant-inl.h"

HWY_BEFORE_NAMESPACE();
namespace tokenlora::kernels::HWY_NAMESPACE {

void DequantizeRowSimd(DType t, const void* src, float* dst, int64_t n) {
  DequantizeRowT(t, src, dst, n);
}

}  // namespace tokenlora::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace tokenlora::kernels {

HWY_EXPORT(DequantizeRowSimd);

void DequantizeRow(DType t, const void* src, float* dst, int64_t n) {
  TL_CHECK_MSG(t != DType::kI32 && n >= 0 && n % Info(t).block_size == 0,
               "DequantizeRow: not a weight dtype, or n is not a whole number of blocks");
  if (internal::ForceScalar()) return scalar::DequantizeRow(t, src, dst, n);
  HWY_DYNAMIC_DISPATCH(DequantizeRowSimd)(t, src, dst, n);
}

}  // namespace tokenlora::kernels
#endif  // HWY_ONCE
