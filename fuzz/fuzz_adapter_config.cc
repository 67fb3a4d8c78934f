// libFuzzer target: ParsePeftConfig (src/lora/peft_config.h) over arbitrary
// adapter_config.json text, then, for what parses, the module selection a
// loader makes (Targets, rank_pattern / alpha_pattern lookups) on the keys of
// a Llama model. Only InputError may escape the parser (invalid JSON is the
// loader's own refusal); what parses must give a positive rank and a finite
// alpha for every module, and selecting modules must not fail at all.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "core/error.h"
#include "lora/peft_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tokenlora;
  const auto j = nlohmann::ordered_json::parse(reinterpret_cast<const char*>(data),
                                               reinterpret_cast<const char*>(data) + size, nullptr,
                                               /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;  // LoadPeftAdapter refuses it as "not valid JSON"
  lora_internal::PeftConfig c;
  try {
    c = lora_internal::ParsePeftConfig(j, "fuzz/adapter_config.json");
  } catch (const InputError&) {
    return 0;  // the expected outcome for malformed input
  }
  static const char* kModules[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                                   "mlp.gate_proj",    "mlp.up_proj",      "mlp.down_proj"};
  for (int layer : {0, 1, 12}) {
    for (const char* m : kModules) {
      const std::string key = "model.layers." + std::to_string(layer) + "." + m;
      (void)lora_internal::Targets(c, key);
      const int r = lora_internal::PatternValue(c.rank_pattern, key, c.r);
      const float alpha = lora_internal::PatternValue(c.alpha_pattern, key, c.lora_alpha);
      if (r < 1 || !std::isfinite(alpha)) __builtin_trap();
    }
  }
  return 0;
}
