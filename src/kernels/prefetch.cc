#include "kernels/prefetch.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace tokenlora::kernels {

std::optional<size_t> ParsePrefetchBytes(const char* text) {
  if (text == nullptr || *text == '\0' || std::strlen(text) > 5) return std::nullopt;
  size_t value = 0;
  for (const char* c = text; *c != '\0'; ++c) {
    if (*c < '0' || *c > '9') return std::nullopt;
    value = value * 10 + static_cast<size_t>(*c - '0');
  }
  if (value > 65536 || value % 64 != 0) return std::nullopt;
  return value;
}

size_t DefaultPrefetchBytes() {
  __builtin_cpu_init();
  return __builtin_cpu_is("intel") ? 4096 : 0;
}

size_t StreamPrefetchBytes() {
  static const size_t bytes = [] {
    const char* env = std::getenv("TOKENLORA_PREFETCH");
    if (env == nullptr) return DefaultPrefetchBytes();
    if (const std::optional<size_t> v = ParsePrefetchBytes(env)) return *v;
    std::fprintf(stderr,
                 "tokenlora: warning: TOKENLORA_PREFETCH='%s' is not a byte count (expected a "
                 "multiple of 64 from 0 to 65536, 0 = off); using the default %zu\n",
                 env, DefaultPrefetchBytes());
    return DefaultPrefetchBytes();
  }();
  return bytes;
}

}  // namespace tokenlora::kernels
