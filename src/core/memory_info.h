// What the machine has to give: the memory a new allocation can take
// without pushing the kernel into swapping or the OOM killer.
#pragma once

#include <cstddef>

namespace tokenlora {

// MemAvailable of /proc/meminfo in bytes (0 when it cannot be read).
size_t AvailableMemoryBytes();

}  // namespace tokenlora
