#include "core/memory_info.h"

#include <cstdio>
#include <cstring>

namespace tokenlora {

size_t AvailableMemoryBytes() {
  std::FILE* f = std::fopen("/proc/meminfo", "r");
  if (f == nullptr) return 0;
  char line[256];
  size_t kib = 0;
  while (std::fgets(line, sizeof line, f) != nullptr) {
    unsigned long long v = 0;
    if (std::sscanf(line, "MemAvailable: %llu kB", &v) == 1) {
      kib = static_cast<size_t>(v);
      break;
    }
  }
  std::fclose(f);
  return kib * 1024;
}

}  // namespace tokenlora
