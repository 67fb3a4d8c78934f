#include "train/lora_params.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "core/error.h"

namespace tokenlora {

std::vector<ModuleKind> ParseTargetModules(const std::string& text, const std::string& field) {
  std::vector<ModuleKind> kinds;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (item.empty()) continue;
    const std::string name = item.size() > 5 && item.ends_with("_proj") ? item : item + "_proj";
    bool found = false;
    for (int k = 0; k < kNumLoraKinds; ++k) {
      const auto kind = static_cast<ModuleKind>(k);
      if (name == ModuleName(kind)) {
        for (ModuleKind seen : kinds) {
          if (seen == kind) throw InputError(field + ": '" + item + "' is listed twice");
        }
        kinds.push_back(kind);
        found = true;
      }
    }
    if (!found) {
      throw InputError(field + ": unknown module '" + item +
                       "'; expected a comma-separated list of q_proj, k_proj, v_proj, o_proj, gate_proj, "
                       "up_proj, down_proj");
    }
  }
  if (kinds.empty()) throw InputError(field + ": expected at least one module, got '" + text + "'");
  return kinds;
}

LoraParams::LoraParams(const LlamaConfig& base, LoraTrainConfig config) : config_(std::move(config)) {
  if (config_.rank < 1) throw InputError("--rank: expected >= 1, got " + std::to_string(config_.rank));
  if (!(config_.alpha > 0)) throw InputError("--alpha: expected > 0, got " + std::to_string(config_.alpha));
  if (!(config_.dropout >= 0 && config_.dropout < 1)) {
    throw InputError("--dropout: expected a probability in [0, 1), got " + std::to_string(config_.dropout));
  }
  if (config_.targets.empty()) throw InputError("--targets: expected at least one module");
  bool wanted[kNumLoraKinds] = {};
  for (ModuleKind k : config_.targets) wanted[LoraKindIndex(k)] = true;
  const size_t r = static_cast<size_t>(config_.rank);
  for (int l = 0; l < base.n_layers; ++l) {
    for (int k = 0; k < kNumLoraKinds; ++k) {
      if (!wanted[k]) continue;
      TrainableModule m;
      m.layer = l;
      m.kind = static_cast<ModuleKind>(k);
      std::tie(m.n_out, m.n_in) = ModuleShape(base, m.kind);
      if (config_.rank > std::min(m.n_in, m.n_out)) {
        throw InputError("--rank " + std::to_string(config_.rank) + ": expected at most min(in, out) = " +
                         std::to_string(std::min(m.n_in, m.n_out)) + " of " + std::string(ModuleName(m.kind)) +
                         " (" + std::to_string(m.n_in) + " -> " + std::to_string(m.n_out) +
                         "); a higher rank adds nothing and only costs memory");
      }
      m.a.assign(r * static_cast<size_t>(m.n_in), 0.0f);
      m.b.assign(static_cast<size_t>(m.n_out) * r, 0.0f);
      m.grad_a.assign(m.a.size(), 0.0f);
      m.grad_b.assign(m.b.size(), 0.0f);
      modules_.push_back(std::move(m));
    }
  }
  index_.assign(static_cast<size_t>(base.n_layers) * kNumLoraKinds, -1);
  for (size_t i = 0; i < modules_.size(); ++i)
    index_[Slot(modules_[i].layer, modules_[i].kind)] = static_cast<int32_t>(i);
}

void LoraParams::InitPeft(uint64_t seed) {
  SplitMix64 rng(seed);
  for (TrainableModule& m : modules_) {
    // kaiming_uniform_(a=√5): gain √(2/(1+5)), bound = gain·√(3/fan_in) = 1/√fan_in.
    const double bound = 1.0 / std::sqrt(static_cast<double>(m.n_in));
    for (float& v : m.a) v = static_cast<float>((2.0 * rng.Uniform01() - 1.0) * bound);
    std::fill(m.b.begin(), m.b.end(), 0.0f);
  }
}

void LoraParams::ZeroGrad() {
  for (TrainableModule& m : modules_) {
    std::fill(m.grad_a.begin(), m.grad_a.end(), 0.0f);
    std::fill(m.grad_b.begin(), m.grad_b.end(), 0.0f);
  }
}

int64_t LoraParams::NumParameters() const {
  int64_t n = 0;
  for (const TrainableModule& m : modules_) n += static_cast<int64_t>(m.a.size() + m.b.size());
  return n;
}

LoraAdapter LoraParams::ToAdapter(const std::string& name, QkRowOrder base_rows) const {
  LoraAdapter adapter;
  adapter.name = name;
  adapter.format = "peft";
  adapter.qk_rows = base_rows;
  adapter.rank = config_.rank;
  adapter.alpha = config_.alpha;
  for (const TrainableModule& m : modules_) {
    LoraModule out;
    out.layer = m.layer;
    out.kind = m.kind;
    out.rank = config_.rank;
    out.alpha = config_.alpha;
    out.scale = scale();
    out.a = LoraMatrix::FromF32(m.a.data(), config_.rank, m.n_in, DType::kF32);
    out.b = LoraMatrix::FromF32(m.b.data(), m.n_out, config_.rank, DType::kF32);
    adapter.modules.push_back(std::move(out));
  }
  return adapter;
}

}  // namespace tokenlora
