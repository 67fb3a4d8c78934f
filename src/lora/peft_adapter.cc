// PEFT LoRA adapters: a directory with adapter_config.json and
// adapter_model.safetensors, as peft's save_pretrained writes them. The
// config is read the way peft 0.21 reads it (tuners_utils.py
// check_target_module_exists, utils/other.py get_pattern_key), so the set of
// adapted modules, their ranks and their alphas are the ones PEFT would use.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/mapped_file.h"
#include "io/io_util.h"
#include "io/json_text.h"
#include "io/safetensors.h"
#include "lora/adapter.h"
#include "lora/adapter_internal.h"
#include "lora/pattern.h"
#include "lora/peft_config.h"

namespace tokenlora {
namespace fs = std::filesystem;
using io_internal::Quote;
using lora_internal::Who;
// Key order matters: rank_pattern and alpha_pattern take the first matching
// key in the file's order, as Python dicts do.
using Json = nlohmann::ordered_json;

using lora_internal::PatternValue;
using lora_internal::PeftConfig;
using lora_internal::Targets;

namespace {

std::string BinHint(const fs::path& dir) {
  const std::string d = dir.string();
  return " — convert it to safetensors once with:\n  python -c \"import torch; from safetensors.torch import "
         "save_file; sd = torch.load('" +
         d +
         "/adapter_model.bin', map_location='cpu', weights_only=True); "
         "save_file({k: v.contiguous() for k, v in sd.items()}, '" +
         d +
         "/adapter_model.safetensors', "
         "metadata={'format': 'pt'})\"";
}

struct TensorName {
  int layer = -1;
  ModuleKind kind = ModuleKind::kQ;
  bool is_a = false;
};

// Names as PEFT writes them for Llama/Qwen2:
// base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight (a base
// saved without the causal-LM head wrapper drops one "model.").
TensorName ParseTensorName(const std::string& name, const std::string& who) {
  std::vector<std::string_view> p = lora_internal::SplitDots(name);
  if (p.size() == 9 && p[2] == "model") p.erase(p.begin() + 2);  // with the causal-LM wrapper
  if (p.size() == 8 && p[0] == "base_model" && p[1] == "model" && p[2] == "layers" &&
      (p[4] == "self_attn" || p[4] == "mlp") && (p[6] == "lora_A" || p[6] == "lora_B") && p[7] == "weight") {
    const std::optional<int> layer = lora_internal::ParseLayerIndex(p[3]);
    const std::optional<ModuleKind> kind = lora_internal::KindFromHfName(p[5]);
    if (layer && kind) {
      const bool mlp = *kind == ModuleKind::kGate || *kind == ModuleKind::kUp || *kind == ModuleKind::kDown;
      if (mlp != (p[4] == "mlp")) {
        throw InputError(who + ": tensor " + Quote(name) + " puts " + std::string(p[5]) + " under " +
                         std::string(p[4]) + " — not a Llama/Qwen2 adapter?");
      }
      return {*layer, *kind, p[6] == "lora_A"};
    }
  }
  std::string why =
      "is not a LoRA tensor of a Llama/Qwen2 projection (expected names like "
      "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight)";
  if (name.find("lora_embedding_") != std::string::npos || name.find("embed_tokens") != std::string::npos) {
    why = "is an embedding LoRA, which is not supported";
  } else if (name.find("lora_magnitude_vector") != std::string::npos) {
    why = "belongs to a DoRA adapter, which is not supported";
  } else if (name.find("modules_to_save") != std::string::npos) {
    why = "is a modules_to_save copy, which is not supported";
  } else if (name.find("lm_head") != std::string::npos) {
    why = "adapts lm_head, which is not supported";
  } else if (name.ends_with(".bias")) {
    why = "is a bias (bias=\"all\"/\"lora_only\" or lora_bias), which is not supported";
  }
  throw InputError(who + ": tensor " + Quote(name) + " " + why);
}

}  // namespace

LoraAdapter LoadPeftAdapter(const std::string& name, const std::string& path,
                            const AdapterLoadOptions& options) {
  std::error_code ec;
  fs::path dir = path;
  if (fs::is_regular_file(path, ec)) {
    const fs::path p(path);
    if (p.extension() == ".bin") {
      throw InputError(Who(name, path) + ": PyTorch pickle adapters are not read (unsafe and slow to load)" +
                       BinHint(p.parent_path()));
    }
    if (p.filename() != "adapter_config.json" && p.extension() != ".safetensors") {
      throw InputError(Who(name, path) +
                       ": not an adapter — pass a PEFT adapter directory (adapter_config.json + "
                       "adapter_model.safetensors) or a llama.cpp LoRA .gguf file");
    }
    dir = p.parent_path();
  }
  const std::string who = Who(name, dir.string());
  const fs::path config_path = dir / "adapter_config.json", weights_path = dir / "adapter_model.safetensors";
  if (!fs::exists(config_path, ec)) {
    throw InputError(who +
                     ": no adapter_config.json — pass a PEFT adapter directory (adapter_config.json + "
                     "adapter_model.safetensors) or a llama.cpp LoRA .gguf file");
  }
  if (!fs::exists(weights_path, ec)) {
    if (fs::exists(dir / "adapter_model.bin", ec)) {
      throw InputError(who + ": has adapter_model.bin (a PyTorch pickle) but no adapter_model.safetensors" +
                       BinHint(dir));
    }
    throw InputError(who +
                     ": no adapter_model.safetensors beside adapter_config.json — incomplete download?");
  }
  Json j;
  try {
    j = ParseBoundedJson<Json>(ReadTextFile(config_path.string()));
  } catch (const Json::exception& e) {
    throw InputError(who + ": adapter_config.json is not valid JSON: " + e.what());
  }
  const PeftConfig c = lora_internal::ParsePeftConfig(j, who);
  for (const char* key : {"lm_head", "model.embed_tokens"}) {
    if (Targets(c, key)) {
      throw InputError(who + ": adapter_config.json targets " + key + "; LoRA on " + key +
                       " is not supported — only the q/k/v/o and gate/up/down projections");
    }
  }

  LoraAdapter adapter;
  adapter.name = name;
  adapter.path = dir.string();
  adapter.format = "peft";
  adapter.qk_rows = QkRowOrder::kHuggingFace;
  adapter.rank = c.r;
  adapter.alpha = c.lora_alpha;
  adapter.use_rslora = c.use_rslora;

  const SafetensorsFile file = SafetensorsFile::Open(weights_path.string());
  std::map<std::pair<int, ModuleKind>, std::pair<const TensorView*, const TensorView*>> pairs;  // (A, B)
  for (const TensorView& t : file.tensors()) {
    const TensorName n = ParseTensorName(t.name, who);
    if (t.shape.size() != 2) {
      throw InputError(who + ": tensor " + Quote(t.name) + " has shape " + ShapeString(t.shape) +
                       ", expected a matrix — corrupt adapter?");
    }
    auto& slot = pairs[{n.layer, n.kind}];
    (n.is_a ? slot.first : slot.second) = &t;
  }
  for (const auto& [key, ab] : pairs) {
    const auto [layer, kind] = key;
    const std::string module_key = HfModuleKey(layer, kind);
    const std::string what = "layer " + std::to_string(layer) + " " + ModuleName(kind);
    if (ab.first == nullptr || ab.second == nullptr) {
      throw InputError(who + ": " + what + " has lora_" + (ab.first ? "A" : "B") + " but no lora_" +
                       (ab.first ? "B" : "A") + " — incomplete adapter_model.safetensors?");
    }
    if (!Targets(c, module_key)) {
      throw InputError(who + ": adapter_model.safetensors adapts " + module_key +
                       " but adapter_config.json's target_modules/layers_to_transform do not include it — "
                       "config and weights from different adapters?");
    }
    LoraModule m;
    m.layer = layer;
    m.kind = kind;
    m.rank = static_cast<int>(ab.first->shape[0]);
    if (ab.second->shape[1] != m.rank) {
      throw InputError(who + ": " + what + " lora_A is " + ShapeString(ab.first->shape) + " but lora_B is " +
                       ShapeString(ab.second->shape) +
                       "; lora_B's columns must equal lora_A's rows (the rank)");
    }
    const int want_rank = PatternValue(c.rank_pattern, module_key, c.r);
    if (m.rank != want_rank) {
      const bool from_default = !c.r_given && want_rank == c.r && PatternValue(c.rank_pattern, module_key, -1) < 0;
      throw InputError(who + ": " + what + " has rank " + std::to_string(m.rank) +
                       (from_default ? " but adapter_config.json has no r, so PEFT's default r=8 applies"
                                     : " but adapter_config.json gives r=" + std::to_string(want_rank) +
                                           " for it (r / rank_pattern)") +
                       " — config and weights from different adapters?" +
                       (from_default ? " (add \"r\": " + std::to_string(m.rank) + " if the weights are right)" : ""));
    }
    m.alpha = PatternValue(c.alpha_pattern, module_key, c.lora_alpha);
    m.scale = lora_internal::LoraScale(m.alpha, m.rank, c.use_rslora);
    m.a = lora_internal::ReadLoraTensor(*ab.first, options.storage, who, ab.first->name);
    m.b = lora_internal::ReadLoraTensor(*ab.second, options.storage, who, ab.second->name);
    adapter.modules.push_back(std::move(m));
  }
  lora_internal::SortModules(adapter, who);
  adapter.declared_target = [c](const std::string& key) { return Targets(c, key); };
  return adapter;
}

// ------------------------------------------------------------------- writing

namespace {

std::string EscapeRegex(const std::string& s) {
  std::string out;
  for (char ch : s) {
    if (std::string_view(".^$|()[]{}*+?\\").find(ch) != std::string_view::npos) out += '\\';
    out += ch;
  }
  return out;
}

}  // namespace

void WritePeftAdapter(const LoraAdapter& adapter, const LlamaConfig& base, const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw InputError("cannot create directory " + Quote(dir, 512) + ": " + ec.message());
  const int r = lora_internal::MostCommonRank(adapter);
  // Loaders keep each module's alpha consistent with its scale under the
  // adapter's use_rslora; the most common alpha becomes lora_alpha.
  auto module_alpha = [](const LoraModule& m) { return m.alpha; };
  std::map<float, int> alpha_count;
  for (const LoraModule& m : adapter.modules) ++alpha_count[module_alpha(m)];
  float alpha = adapter.alpha;
  int best = 0;
  for (const auto& [a, n] : alpha_count) {
    if (n > best) alpha = a, best = n;
  }

  Json rank_pattern = Json::object(), alpha_pattern = Json::object();
  bool kinds[kNumLoraKinds] = {};
  for (const LoraModule& m : adapter.modules) {
    const std::string key = EscapeRegex(HfModuleKey(m.layer, m.kind));
    if (m.rank != r) rank_pattern[key] = m.rank;
    if (module_alpha(m) != alpha) alpha_pattern[key] = module_alpha(m);
    kinds[LoraKindIndex(m.kind)] = true;
  }
  // A plain module list when every listed kind is adapted in every layer;
  // otherwise an exact regex of the adapted modules.
  Json targets = Json::array();
  size_t n_kinds = 0;
  for (int k = 0; k < kNumLoraKinds; ++k) {
    if (kinds[k]) targets.push_back(ModuleName(static_cast<ModuleKind>(k))), ++n_kinds;
  }
  if (adapter.modules.size() != n_kinds * static_cast<size_t>(base.n_layers)) {
    std::string re;
    for (const LoraModule& m : adapter.modules) {
      if (!re.empty()) re += '|';
      re += EscapeRegex(HfModuleKey(m.layer, m.kind));
    }
    targets = "(" + re + ")";
  }
  Json config = {{"peft_type", "LORA"},
                 {"task_type", "CAUSAL_LM"},
                 {"base_model_name_or_path", nullptr},
                 {"r", r},
                 {"lora_alpha", alpha},
                 {"use_rslora", adapter.use_rslora},
                 {"target_modules", targets},
                 {"rank_pattern", rank_pattern},
                 {"alpha_pattern", alpha_pattern},
                 {"lora_dropout", 0.0},
                 {"bias", "none"},
                 {"fan_in_fan_out", false},
                 {"modules_to_save", nullptr},
                 {"use_dora", false},
                 {"inference_mode", true}};

  SafetensorsWriter st;
  st.SetMetadata("format", "pt");
  for (const LoraModule& m : adapter.modules) {
    const std::string prefix = "base_model.model." + HfModuleKey(m.layer, m.kind);
    const LoraMatrix b = lora_internal::BRowsInOrder(m, base, adapter.qk_rows, QkRowOrder::kHuggingFace);
    const lora_internal::FileTensor fa = lora_internal::EncodeForFile(m.a, /*gguf=*/false);
    const lora_internal::FileTensor fb = lora_internal::EncodeForFile(b, /*gguf=*/false);
    st.AddTensor(prefix + ".lora_A.weight", fa.dtype, {m.a.rows, m.a.cols}, fa.bytes.data(), fa.bytes.size());
    st.AddTensor(prefix + ".lora_B.weight", fb.dtype, {b.rows, b.cols}, fb.bytes.data(), fb.bytes.size());
  }
  st.Write((fs::path(dir) / "adapter_model.safetensors").string());
  WriteFileAtomically((fs::path(dir) / "adapter_config.json").string(), config.dump(2) + "\n");
}

}  // namespace tokenlora
