#include "lora/peft_config.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "core/error.h"
#include "io/io_util.h"

namespace tokenlora::lora_internal {

using io_internal::Quote;
using Json = nlohmann::ordered_json;

namespace {

NamesOrRegex ReadNamesOrRegex(const Json& j, const char* field, const std::string& who) {
  NamesOrRegex out;
  if (!j.contains(field) || j[field].is_null()) return out;
  const Json& v = j[field];
  out.present = true;
  if (v.is_string()) {
    out.is_regex = true;
    out.regex = lora_internal::Pattern::Compile(v.get<std::string>(), who + ": adapter_config.json " + field);
    return out;
  }
  if (!v.is_array()) {
    throw InputError(who + ": adapter_config.json " + field + " must be a string or a list of strings, got " +
                     v.dump());
  }
  for (const Json& e : v) {
    if (!e.is_string()) {
      throw InputError(who + ": adapter_config.json " + field + " must list strings, got " + e.dump());
    }
    out.names.push_back(e.get<std::string>());
  }
  return out;
}

// An integer field as an int: refuses fractions and values outside int's
// range (a rank or layer index of 2^40 is a corrupt file, not a big model).
int CheckedInt(const Json& v, const std::string& field, const std::string& who) {
  if (!v.is_number()) throw InputError(who + ": " + field + " must be a number, got " + v.dump());
  if (!v.is_number_integer()) throw InputError(who + ": " + field + " must be an integer, got " + v.dump());
  const bool fits = v.is_number_unsigned()
                        ? v.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<int>::max())
                        : v.get<int64_t>() >= std::numeric_limits<int>::min() &&
                              v.get<int64_t>() <= std::numeric_limits<int>::max();
  if (!fits) throw InputError(who + ": " + field + " is out of range, got " + v.dump());
  return static_cast<int>(v.get<int64_t>());
}

// A real-valued field as a float: refuses what does not fit one (1e300
// becomes infinity in float, and an infinite LoRA scale poisons every logit).
float CheckedFloat(const Json& v, const std::string& field, const std::string& who) {
  if (!v.is_number()) throw InputError(who + ": " + field + " must be a number, got " + v.dump());
  const double d = v.get<double>();
  if (!std::isfinite(d) || std::fabs(d) > std::numeric_limits<float>::max()) {
    throw InputError(who + ": " + field + " must be a finite number, got " + v.dump());
  }
  return static_cast<float>(d);
}

bool IsUnset(const Json& v) {
  return v.is_null() || (v.is_boolean() && !v.get<bool>()) || ((v.is_array() || v.is_object()) && v.empty());
}

// Options that change what the adapter computes: refused unless left at
// their defaults, so an adapter never runs with part of its behaviour missing.
void RefuseUnsupported(const Json& j, const std::string& who) {
  if (j.contains("peft_type") && j["peft_type"] != "LORA") {
    throw InputError(who + ": adapter_config.json peft_type is " + j["peft_type"].dump() +
                     "; tokenlora loads LoRA adapters only");
  }
  if (j.contains("bias") && !j["bias"].is_null() && j["bias"] != "none") {
    throw InputError(who + ": adapter_config.json bias is " + j["bias"].dump() +
                     "; only \"none\" is supported (trained biases of the base layers cannot be mixed "
                     "per token) — retrain with bias=\"none\"");
  }
  static const std::pair<const char*, const char*> kRefused[] = {
      {"use_dora", "DoRA (use_dora) is not supported — merge the adapter into the base with PEFT instead"},
      {"modules_to_save",
       "modules_to_save (fully trained extra modules) is not supported — retrain without it"},
      {"lora_bias", "lora_bias (a bias on lora_B) is not supported"},
      {"layer_replication", "layer_replication is not supported"},
      {"target_parameters", "target_parameters (LoRA on nn.Parameter) is not supported"},
      {"trainable_token_indices", "trainable_token_indices (embedding rows) is not supported"},
      {"alora_invocation_tokens", "activated LoRA (alora_invocation_tokens) is not supported"},
      {"use_qalora", "QA-LoRA (use_qalora) is not supported"},
      {"use_bdlora", "BD-LoRA (use_bdlora) is not supported"},
      {"arrow_config", "Arrow routing (arrow_config) is not supported"},
      {"kasa_config", "KaSA (kasa_config) is not supported"},
      {"monteclora_config", "MonteCLoRA (monteclora_config) is not supported"},
  };
  for (const auto& [key, why] : kRefused) {
    if (j.contains(key) && !IsUnset(j[key])) {
      throw InputError(who + ": adapter_config.json sets " + key + " = " + j[key].dump(-1).substr(0, 80) +
                       "; " + why);
    }
  }
}

}  // namespace

PeftConfig ParsePeftConfig(const Json& j, const std::string& who) {
  if (!j.is_object()) throw InputError(who + ": adapter_config.json is not a JSON object");
  RefuseUnsupported(j, who);
  PeftConfig c;
  auto number = [&](const char* key, auto fallback) {
    using T = decltype(fallback);
    if (!j.contains(key) || j[key].is_null()) return fallback;
    if (!j[key].is_number()) {
      throw InputError(who + ": adapter_config.json " + key + " must be a number, got " + j[key].dump());
    }
    if constexpr (std::is_integral_v<T>) {
      return CheckedInt(j[key], std::string("adapter_config.json ") + key, who);
    } else {
      return CheckedFloat(j[key], std::string("adapter_config.json ") + key, who);
    }
  };
  c.r = number("r", 8);
  c.r_given = j.contains("r") && !j["r"].is_null();
  c.lora_alpha = number("lora_alpha", 8.0f);
  if (c.r <= 0)
    throw InputError(who + ": adapter_config.json r must be positive, got " + std::to_string(c.r));
  if (j.contains("use_rslora") && !j["use_rslora"].is_null()) {
    if (!j["use_rslora"].is_boolean()) {
      throw InputError(who + ": adapter_config.json use_rslora must be true or false, got " +
                       j["use_rslora"].dump());
    }
    c.use_rslora = j["use_rslora"].get<bool>();
  }
  // fan_in_fan_out only concerns Conv1D layers (GPT-2); PEFT switches it off
  // for nn.Linear, which every Llama projection is, so the tensors read the same.
  c.target_modules = ReadNamesOrRegex(j, "target_modules", who);
  if (!c.target_modules.present) {
    throw InputError(who + ": adapter_config.json has no target_modules — which modules does it adapt?");
  }
  if (c.target_modules.is_regex) {
    std::string lower = c.target_modules.regex->text();
    for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    c.all_linear = lower == "all-linear";  // PEFT: every linear layer but the output head
  }
  c.exclude_modules = ReadNamesOrRegex(j, "exclude_modules", who);
  if (j.contains("layers_to_transform") && !j["layers_to_transform"].is_null()) {
    const Json& v = j["layers_to_transform"];
    if (v.is_number()) {
      c.layers_to_transform.push_back(CheckedInt(v, "adapter_config.json layers_to_transform", who));
    } else if (v.is_array()) {
      for (const Json& e : v) {
        c.layers_to_transform.push_back(CheckedInt(e, "adapter_config.json layers_to_transform", who));
      }
    } else {
      throw InputError(who + ": adapter_config.json layers_to_transform must be an integer or a list, got " +
                       v.dump());
    }
  }
  // PEFT splices layers_pattern into its own regexes (tuners_utils.py).
  std::vector<std::string> layers_pattern;
  if (j.contains("layers_pattern") && !j["layers_pattern"].is_null()) {
    const Json& v = j["layers_pattern"];
    if (v.is_string()) {
      layers_pattern.push_back(v.get<std::string>());
    } else if (v.is_array()) {
      for (const Json& e : v) {
        if (!e.is_string()) {
          throw InputError(who + ": adapter_config.json layers_pattern must list strings, got " + e.dump());
        }
        layers_pattern.push_back(e.get<std::string>());
      }
    } else {
      throw InputError(who + ": adapter_config.json layers_pattern must be a string or a list, got " +
                       v.dump());
    }
  }
  const std::string where = who + ": adapter_config.json layers_pattern";
  if (layers_pattern.empty()) {
    c.layer_finders.push_back(lora_internal::Pattern::Compile(R"(.*?\.[^.]*\.(?P<idx>\d+)\.)", where));
  }
  for (const std::string& p : layers_pattern) {
    c.layer_finders.push_back(
        lora_internal::Pattern::Compile("(?:^|.*?\\.)" + p + "\\.(?P<idx>\\d+)\\.", where));
  }
  auto patterns = [&](const char* key, auto& out) {
    if (!j.contains(key) || j[key].is_null()) return;
    if (!j[key].is_object()) throw InputError(who + ": adapter_config.json " + key + " must be an object");
    for (const auto& [k, v] : j[key].items()) {
      const std::string field = std::string("adapter_config.json ") + key + "[" + Quote(k) + "]";
      using Value = typename std::decay_t<decltype(out)>::value_type::second_type;
      Value value;
      if constexpr (std::is_integral_v<Value>) {
        value = CheckedInt(v, field, who);
        if (value <= 0) {
          throw InputError(who + ": " + field + " must be a positive rank, got " + v.dump());
        }
      } else {
        value = CheckedFloat(v, field, who);
      }
      out.emplace_back(lora_internal::Pattern::Compile("(.*\\.)?(" + k + ")",
                                                       who + ": adapter_config.json " + key + " key"),
                       value);
    }
  };
  patterns("rank_pattern", c.rank_pattern);
  patterns("alpha_pattern", c.alpha_pattern);
  return c;
}

bool Targets(const PeftConfig& c, const std::string& key) {
  if (c.exclude_modules.Matches(key)) return false;
  if (c.target_modules.is_regex) {
    if (c.all_linear) return key.starts_with("model.layers.");
    return c.target_modules.Matches(key);
  }
  if (std::find(c.target_modules.names.begin(), c.target_modules.names.end(), key) !=
      c.target_modules.names.end()) {
    return true;  // named directly: PEFT skips the layer filter
  }
  if (!c.target_modules.Matches(key)) return false;
  if (c.layers_to_transform.empty()) return true;
  std::optional<std::string> index;
  for (const lora_internal::Pattern& finder : c.layer_finders) {
    if ((index = finder.MatchGroup(key, "idx"))) break;
  }
  if (!index) return false;
  int layer = 0;
  const auto [end, err] = std::from_chars(index->data(), index->data() + index->size(), layer);
  if (err != std::errc() || end != index->data() + index->size()) return false;  // no layer that big
  return std::find(c.layers_to_transform.begin(), c.layers_to_transform.end(), layer) !=
         c.layers_to_transform.end();
}

}  // namespace tokenlora::lora_internal
