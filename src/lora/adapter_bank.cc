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
  Reclaim();
  int slot = -1;
  for (int i = 0; i < kMaxAdapters && slot < 0; ++i) {
    if (!slots_[static_cast<size_t>(i)]) slot = i;
  }
  if (slot < 0) {
    throw InputError("cannot add adapter " + Quote(adapter.name) + ": all " + std::to_string(kMaxAdapters) +
                     " adapter slots are in use" + (retired() > 0 ? " (" + std::to_string(retired()) +
                     " by removed adapters that running requests still use)" : std::string()) + " — remove one first");
  }
  BindToBase(adapter, base_.config(), base_.path());
  slots_[static_cast<size_t>(slot)] = std::make_shared<const LoraAdapter>(std::move(adapter));
  retired_[static_cast<size_t>(slot)] = false;
  RebuildTables();
  return slot;
}

int AdapterBank::Load(const std::string& name, const std::string& path, const AdapterLoadOptions& options) {
  return Add(LoadAdapter(name, path, options));
}

bool AdapterBank::Remove(const std::string& name) {
  const int slot = Require(name);
  if (slots_[static_cast<size_t>(slot)].use_count() > 1) {  // a lease shares it
    retired_[static_cast<size_t>(slot)] = true;
    return false;
  }
  Free(slot);
  RebuildTables();
  return true;
}

void AdapterBank::Free(int slot) {
  slots_[static_cast<size_t>(slot)].reset();
  retired_[static_cast<size_t>(slot)] = false;
}

bool AdapterBank::Lease::holds(int slot) const {
  for (const auto& [s, a] : held_) {
    if (s == slot) return true;
  }
  return false;
}

AdapterBank::Lease AdapterBank::Hold(uint64_t mask) const {
  Lease lease;
  for (uint64_t m = mask; m != 0; m &= m - 1) {
    const int slot = __builtin_ctzll(m);
    if (slot < kMaxAdapters && slots_[static_cast<size_t>(slot)]) {
      lease.held_.emplace_back(slot, slots_[static_cast<size_t>(slot)]);
    }
  }
  return lease;
}

int AdapterBank::Reclaim() {
  int freed = 0;
  for (int i = 0; i < kMaxAdapters; ++i) {
    if (retired_[static_cast<size_t>(i)] && slots_[static_cast<size_t>(i)].use_count() == 1) {
      Free(i);
      ++freed;
    }
  }
  if (freed > 0) RebuildTables();
  return freed;
}

int AdapterBank::retired() const {
  int n = 0;
  for (bool r : retired_) n += r ? 1 : 0;
  return n;
}

int AdapterBank::Find(const std::string& name) const {
  for (int i = 0; i < kMaxAdapters; ++i) {
    if (slots_[static_cast<size_t>(i)] && !retired_[static_cast<size_t>(i)] && slots_[static_cast<size_t>(i)]->name == name) {
      return i;
    }
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

int AdapterBank::size() const { return __builtin_popcountll(occupied_) - retired(); }

std::vector<std::string> AdapterBank::Names() const {
  std::vector<std::string> names;
  for (int i = 0; i < kMaxAdapters; ++i) {
    if (slots_[static_cast<size_t>(i)] && !retired_[static_cast<size_t>(i)]) names.push_back(slots_[static_cast<size_t>(i)]->name);
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
