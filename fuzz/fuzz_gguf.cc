// libFuzzer target: GgufFile::Parse over arbitrary bytes. Every input must
// either parse or throw InputError; ASan/UBSan report anything else. What
// parses is then used as a loader would use it (tensor views, getters, the
// `inspect` summary), so a file that passes validation but lies about its
// layout shows up as an out-of-bounds read here.
#include <cstddef>
#include <cstdint>
#include <limits>

#include "core/error.h"
#include "io/gguf.h"
#include "io/inspect.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tokenlora;
  try {
    const GgufFile f = GgufFile::Parse(data, size, "fuzz.gguf");
    volatile uint8_t sink = 0;
    for (const GgufTensorInfo& t : f.tensors()) {
      const TensorView v = f.View(t);
      const size_t n = v.NumBytes();
      const auto* p = static_cast<const uint8_t*>(v.data);
      if (n > 0) sink = sink ^ p[0] ^ p[n - 1];
    }
    for (const std::string& key : f.metadata_order()) {
      const GgufValue& v = f.Get(key);
      (void)v.ToDisplayString(std::numeric_limits<size_t>::max());
      try { (void)f.GetInt(key); } catch (const InputError&) {}
      try { (void)f.GetFloat(key); } catch (const InputError&) {}
      try { (void)f.GetString(key); } catch (const InputError&) {}
    }
    (void)FormatGgufSummary(f);
  } catch (const InputError&) {
    // The expected outcome for malformed input.
  }
  return 0;
}
