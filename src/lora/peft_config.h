// adapter_config.json of a PEFT LoRA adapter, read the way peft 0.21 reads it
// (tuners_utils.py check_target_module_exists, utils/other.py
// get_pattern_key): which modules are adapted, their ranks and alphas. Its
// own file so that the parser can be fuzzed alone (fuzz/fuzz_adapter_config).
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "lora/pattern.h"

namespace tokenlora::lora_internal {

// A string or a list of strings (target_modules, exclude_modules).
struct NamesOrRegex {
  bool present = false;
  bool is_regex = false;
  std::optional<Pattern> regex;
  std::vector<std::string> names;

  // PEFT: a string is matched with re.fullmatch; a list matches a key equal to
  // an entry or ending in "." + entry.
  bool Matches(const std::string& key) const {
    if (!present) return false;
    if (is_regex) return regex->FullMatch(key);
    for (const std::string& n : names) {
      if (key == n || (key.size() > n.size() && key.ends_with("." + n))) return true;
    }
    return false;
  }
};

struct PeftConfig {
  int r = 8;
  bool r_given = false;  // false: adapter_config.json has no r (PEFT's default 8 applies)
  float lora_alpha = 8;
  bool use_rslora = false;
  NamesOrRegex target_modules, exclude_modules;
  bool all_linear = false;
  std::vector<int> layers_to_transform;  // empty: every layer
  // Find the layer index in a module key: PEFT's regexes with layers_pattern
  // spliced in, or its default one; group "idx" is the index.
  std::vector<Pattern> layer_finders;
  // (compiled "(.*\.)?(KEY)", value) in file order: the first match wins.
  std::vector<std::pair<Pattern, int>> rank_pattern;
  std::vector<std::pair<Pattern, float>> alpha_pattern;
};

// The parsed config; InputError naming `who` and the field for anything
// PEFT would not load or tokenlora does not support. Key order matters:
// rank_pattern and alpha_pattern take the first matching key in the file's
// order, as Python dicts do (hence ordered_json).
PeftConfig ParsePeftConfig(const nlohmann::ordered_json& j, const std::string& who);

// PEFT's check_target_module_exists for one module key
// ("model.layers.0.self_attn.q_proj").
bool Targets(const PeftConfig& c, const std::string& key);

// PEFT's get_pattern_key: the first pattern p with re.match(rf"(.*\.)?({p})$", key).
template <typename T>
T PatternValue(const std::vector<std::pair<Pattern, T>>& patterns, const std::string& key,
               T fallback) {
  for (const auto& [p, v] : patterns) {
    if (p.FullMatch(key)) return v;
  }
  return fallback;
}


}  // namespace tokenlora::lora_internal
