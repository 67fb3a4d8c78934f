#include "lora/adapter_bank.h"

#include "core/error.h"
#include "io/io_util.h"

namespace tokenlora {
using io_internal::Quote;

AdapterBank::AdapterBank(const Model& base) : base_(base) { RebuildTables(); }

int AdapterBank::Add(LoraAdapter adapter) {
  if (adapter.name.empty()) throw InputError("an adapter needs a name (NAME=PATH)");
  if (Find(adapter.name) >= 0) {
    throw InputError("adapter " + Quote(adapter.name) + " is already loaded (from " +
                     Quote(slots_[static_cast<size_t>(Find(adapter.name))]->path, 512) +
                     "); give each adapter its own name, or remove the old one first");
  }
  int slot = -1;
  for (int i = 0; i < kMaxAdapters && slot < 0; ++i) {
    if (!slots_[static_cast<size_t>(i)]) slot = i;
  }
  if (slot < 0) {
    throw InputError("cannot add adapter " + Quote(adapter.name) + ": all " + std::to_string(kMaxAdapters) +
                     " adapter slots are in use — remove one first");
  }
  BindToBase(adapter, base_.config(), base_.path());
  slots_[static_cast<size_t>(slot)] = std::make_unique<LoraAdapter>(std::move(adapter));
  RebuildTables();
  return slot;
}

int AdapterBank::Load(const std::string& name, const std::string& path, const AdapterLoadOptions& options) {
  return Add(LoadAdapter(name, path, options));
}

void AdapterBank::Remove(const std::string& name) {
  slots_[static_cast<size_t>(Require(name))].reset();
  RebuildTables();
}

int AdapterBank::Find(const std::string& name) const {
  for (int i = 0; i < kMaxAdapters; ++i) {
    if (slots_[static_cast<size_t>(i)] && slots_[static_cast<size_t>(i)]->name == name) return i;
  }
  return -1;
}

int AdapterBank::Require(const std::string& name) const {
  const int slot = Find(name);
  if (slot >= 0) return slot;
  std::string names;
  for (const std::string& n : Names()) {
    if (!names.empty()) names += ", ";
    names += Quote(n);
  }
  throw InputError("no adapter named " + Quote(name) +
                   " is loaded (loaded: " + (names.empty() ? std::string("none") : names) + ")");
}

int AdapterBank::size() const { return __builtin_popcountll(occupied_); }

std::vector<std::string> AdapterBank::Names() const {
  std::vector<std::string> names;
  for (const auto& a : slots_) {
    if (a) names.push_back(a->name);
  }
  return names;
}

// Tables are rebuilt on every change (a few thousand pointers), which keeps
// the per-projection lookups of the hot path to two array reads.
void AdapterBank::RebuildTables() {
  const size_t n = static_cast<size_t>(base_.config().n_layers) * kNumLoraKinds;
  target_masks_.assign(n, 0);
  occupied_ = 0;
  for (int s = 0; s < kMaxAdapters; ++s) {
    std::vector<const LoraModule*>& table = modules_[static_cast<size_t>(s)];
    const LoraAdapter* a = slots_[static_cast<size_t>(s)].get();
    table.assign(a ? n : 0, nullptr);
    if (!a) continue;
    occupied_ |= uint64_t{1} << s;
    for (const LoraModule& m : a->modules) {
      const size_t idx = ModuleIndex(m.layer, m.kind);
      table[idx] = &m;
      target_masks_[idx] |= uint64_t{1} << s;
    }
  }
  ++generation_;
}

}  // namespace tokenlora
