// Kernel-internal: the one switch between SIMD kernels and their scalar twins.
#pragma once

namespace tokenlora::kernels::internal {

// True when the environment variable TOKENLORA_SIMD is "scalar": every public
// kernel then runs its scalar twin. Read once, on first use (thread-safe);
// other values leave Highway's dynamic dispatch in charge.
bool ForceScalar();

}  // namespace tokenlora::kernels::internal
