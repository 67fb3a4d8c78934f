// llama.cpp LoRA adapters in GGUF, as convert_lora_to_gguf.py writes them:
// general.type = "adapter", adapter.type = "lora", adapter.lora.alpha, and
// per adapted weight W the pair blk.N.<W>.weight.lora_a [rank, n_in] and
// .lora_b [n_out, rank]. llama.cpp scales each pair by alpha / rank (1 when
// alpha is 0 or absent), with rank taken from the tensor.
#include <cmath>
#include <map>

#include "core/error.h"
#include "io/gguf.h"
#include "io/io_util.h"
#include "lora/adapter.h"
#include "lora/adapter_internal.h"

namespace tokenlora {
using io_internal::Quote;
using lora_internal::Who;

LoraAdapter LoadGgufAdapter(const std::string& name, const std::string& path,
                            const AdapterLoadOptions& options) {
  const std::string who = Who(name, path);
  const GgufFile g = GgufFile::Open(path);
  const std::optional<std::string> type = g.FindString("general.type");
  if (type != "adapter") {
    throw InputError(who + ": general.type is " + (type ? Quote(*type) : std::string("missing")) +
                     ", not 'adapter'" +
                     (type == "model" ? " — this is a model: pass it with -m, adapters with --adapter"
                                      : " — not a llama.cpp LoRA adapter?"));
  }
  const std::optional<std::string> adapter_type = g.FindString("adapter.type");
  if (adapter_type != "lora") {
    throw InputError(who + ": adapter.type is " +
                     (adapter_type ? Quote(*adapter_type) : std::string("missing")) +
                     "; only 'lora' adapters are supported (not control vectors or aLoRA)");
  }
  if (g.Find("adapter.alora.invocation_tokens") != nullptr) {
    throw InputError(who + ": an activated LoRA (adapter.alora.invocation_tokens), which is not supported");
  }
  LoraAdapter adapter;
  adapter.name = name;
  adapter.path = path;
  adapter.format = "gguf";
  adapter.arch = g.GetString("general.architecture");
  // convert_lora_to_gguf permutes q/k lora_B rows exactly where
  // convert_hf_to_gguf permutes the base's q/k rows: for llama.
  adapter.qk_rows = adapter.arch == "llama" ? QkRowOrder::kGgml : QkRowOrder::kHuggingFace;
  const double alpha = g.FindFloat("adapter.lora.alpha").value_or(0.0);
  if (!std::isfinite(alpha)) throw InputError(who + ": adapter.lora.alpha is not finite");

  std::map<std::pair<int, ModuleKind>, std::pair<const GgufTensorInfo*, const GgufTensorInfo*>> pairs;
  for (const GgufTensorInfo& t : g.tensors()) {
    // blk.N.<role>.weight.lora_a / .lora_b
    const std::vector<std::string_view> p = lora_internal::SplitDots(t.name);
    const bool shaped =
        p.size() == 5 && p[0] == "blk" && p[3] == "weight" && (p[4] == "lora_a" || p[4] == "lora_b");
    const std::optional<int> layer = shaped ? lora_internal::ParseLayerIndex(p[1]) : std::nullopt;
    const std::optional<ModuleKind> kind = shaped ? lora_internal::KindFromGgufRole(p[2]) : std::nullopt;
    if (!layer || !kind) {
      std::string why =
          "is not a LoRA tensor of a q/k/v/o or gate/up/down projection (expected names like "
          "blk.0.attn_q.weight.lora_a)";
      if (t.name.starts_with("token_embd.")) why = "is an embedding LoRA, which is not supported";
      if (t.name.starts_with("output.")) why = "adapts the output head, which is not supported";
      throw InputError(who + ": tensor " + Quote(t.name) + " " + why);
    }
    if (t.shape.size() != 2) {
      throw InputError(who + ": tensor " + Quote(t.name) + " has shape " + ShapeString(t.shape) +
                       ", expected a matrix — corrupt adapter?");
    }
    auto& slot = pairs[{*layer, *kind}];
    (p[4] == "lora_a" ? slot.first : slot.second) = &t;
  }
  for (const auto& [key, ab] : pairs) {
    const auto [layer, kind] = key;
    const std::string weight = GgufWeightName(layer, kind);
    if (ab.first == nullptr || ab.second == nullptr) {
      throw InputError(who + ": " + weight + " has lora_" + (ab.first ? "a" : "b") + " but no lora_" +
                       (ab.first ? "b" : "a") + " — incomplete file?");
    }
    LoraModule m;
    m.layer = layer;
    m.kind = kind;
    m.rank = static_cast<int>(ab.first->shape[0]);
    if (ab.second->shape[1] != m.rank) {
      throw InputError(who + ": " + weight + ".lora_a is " + ShapeString(ab.first->shape) +
                       " but .lora_b is " + ShapeString(ab.second->shape) +
                       "; lora_b's columns must equal lora_a's rows (the rank)");
    }
    m.alpha = alpha != 0 ? static_cast<float>(alpha) : static_cast<float>(m.rank);  // llama.cpp: scale 1
    m.scale = lora_internal::LoraScale(m.alpha, m.rank, false);
    m.a = lora_internal::ReadLoraTensor(g.View(*ab.first), options.storage, who, ab.first->name);
    m.b = lora_internal::ReadLoraTensor(g.View(*ab.second), options.storage, who, ab.second->name);
    adapter.modules.push_back(std::move(m));
  }
  lora_internal::SortModules(adapter, who);
  adapter.rank = lora_internal::MostCommonRank(adapter);
  adapter.alpha = alpha != 0 ? static_cast<float>(alpha) : static_cast<float>(adapter.rank);
  return adapter;
}

void WriteGgufAdapter(const LoraAdapter& adapter, const LlamaConfig& base, const std::string& path) {
  // GGUF has one alpha and llama.cpp scales each module by alpha / rank.
  // Modules whose scale differs from that (rsLoRA, rank_pattern with a
  // fixed alpha, alpha_pattern) get the ratio folded into their lora_b.
  const int r = lora_internal::MostCommonRank(adapter);
  float alpha = static_cast<float>(r);
  for (const LoraModule& m : adapter.modules) {
    if (m.rank == r) {
      alpha = m.scale * static_cast<float>(r);
      break;
    }
  }
  GgufWriter g;
  g.SetString("general.architecture", base.arch);
  g.SetString("general.type", "adapter");
  g.SetString("general.name", adapter.name);
  g.SetString("adapter.type", "lora");
  g.SetF32("adapter.lora.alpha", alpha);
  const QkRowOrder order = base.arch == "llama" ? QkRowOrder::kGgml : QkRowOrder::kHuggingFace;
  for (const LoraModule& m : adapter.modules) {
    LoraMatrix b = lora_internal::BRowsInOrder(m, base, adapter.qk_rows, order);
    const float llama_cpp_scale = alpha / static_cast<float>(m.rank);
    if (std::fabs(llama_cpp_scale - m.scale) > 1e-6f * std::fabs(m.scale)) {
      std::vector<float> values = b.ToF32();
      for (float& v : values) v *= m.scale / llama_cpp_scale;
      if (LoraMatrix::StoredDType(b.dtype, b.cols) == DType::kF16) {
        lora_internal::CheckFitsF16(values, path + ": lora_B of " + GgufWeightName(m.layer, m.kind) +
                                                " (rescaled by alpha/r)");
      }
      b = LoraMatrix::FromF32(values.data(), b.rows, b.cols, b.dtype);
    }
    const std::string weight = GgufWeightName(m.layer, m.kind);
    const lora_internal::FileTensor fa = lora_internal::EncodeForFile(m.a, /*gguf=*/true);
    const lora_internal::FileTensor fb = lora_internal::EncodeForFile(b, /*gguf=*/true);
    g.AddTensor(weight + ".lora_a", fa.dtype, {m.a.rows, m.a.cols}, fa.bytes.data(), fa.bytes.size());
    g.AddTensor(weight + ".lora_b", fb.dtype, {b.rows, b.cols}, fb.bytes.data(), fb.bytes.size());
  }
  g.Write(path);
}

}  // namespace tokenlora
