#include "kernels/dispatch.h"

#include <cstdlib>
#include <cstring>

namespace tokenlora::kernels::internal {

bool ForceScalar() {
  // A function-local static is initialised exactly once, even under threads.
  static const bool force = [] {
    const char* env = std::getenv("TOKENLORA_SIMD");
    return env != nullptr && std::strcmp(env, "scalar") == 0;
  }();
  return force;
}

}  // namespace tokenlora::kernels::internal
