// libFuzzer target: SafetensorsFile::Parse over arbitrary bytes. Every input
// must either parse or throw InputError; what parses must be safe to read.
#include <cstddef>
#include <cstdint>
#include <span>

#include "core/error.h"
#include "io/inspect.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tokenlora;
  try {
    const SafetensorsFile f = SafetensorsFile::Parse(data, size, "fuzz.safetensors");
    volatile uint8_t sink = 0;
    for (const TensorView& v : f.tensors()) {
      const size_t n = v.NumBytes();
      const auto* p = static_cast<const uint8_t*>(v.data);
      if (n > 0) sink = sink ^ p[0] ^ p[n - 1];
      if (f.Find(v.name) != &v) __builtin_trap();  // names are unique, so lookups are exact
    }
    (void)FormatSafetensorsSummary(std::span(&f, 1), "fuzz");
  } catch (const InputError&) {
    // The expected outcome for malformed input.
  }
  return 0;
}
