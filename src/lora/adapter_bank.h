// The adapters loaded next to one base model. Each occupies a slot
// (0 .. kMaxAdapters-1) that per-token mixture weights index; adapters of
// any rank and target set can be added and removed while the base stays
// loaded. Not thread-safe: change the bank between forward calls, never
// during one (the server serialises this).
//
// Removing an adapter that running sequences still use: the bank owns each
// adapter through a shared_ptr, and a Lease (Hold) shares the ones a user
// needs. Remove frees an adapter nobody holds at once; a held one is
// retired: its name is gone at once (Find, Names, Require no longer see it,
// and a new adapter may take the name), but its slot, tables and weights stay
// exactly as they were until the last lease on it ends and Reclaim runs. So
// a slot index never changes meaning under a running sequence, and weights a
// sequence reads are never freed.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "lora/adapter.h"
#include "model/model.h"

namespace tokenlora {

class AdapterBank {
 public:
  // Slot masks are 64-bit words.
  static constexpr int kMaxAdapters = 64;

  // `base` must outlive the bank.
  explicit AdapterBank(const Model& base);
  AdapterBank(const AdapterBank&) = delete;
  AdapterBank& operator=(const AdapterBank&) = delete;

  // Validates `adapter` against the base (BindToBase) and stores it in the
  // lowest free slot, which it returns. Throws InputError for a duplicate
  // name, a full bank, or an adapter that does not fit the base.
  int Add(LoraAdapter adapter);
  // LoadAdapter + Add.
  int Load(const std::string& name, const std::string& path, const AdapterLoadOptions& options = {});
  // Throws InputError naming the loaded adapters if `name` is not one of
  // them. Returns true when the slot was freed now, false when a lease holds
  // it (retired; freed by a later Reclaim).
  bool Remove(const std::string& name);

  // Shares the adapters of the slots in `mask` (bit i: slot i) for as long
  // as the lease lives; free slots in the mask are skipped.
  class Lease {
   public:
    Lease() = default;
    bool holds(int slot) const;

   private:
    friend class AdapterBank;
    std::vector<std::pair<int, std::shared_ptr<const LoraAdapter>>> held_;
  };
  Lease Hold(uint64_t mask) const;
  // Frees retired slots no lease holds any more; returns how many. Call
  // between forward calls (it changes generation()).
  int Reclaim();
  // Slots retired by Remove and still held.
  int retired() const;

  // Slot of `name`, or -1.
  int Find(const std::string& name) const;
  // Slot of `name`; throws InputError listing the loaded adapters otherwise.
  int Require(const std::string& name) const;
  // The adapter in `slot`, or null for a free slot.
  // (A retired slot still returns its adapter: running sequences use it.)
  const LoraAdapter* adapter(int slot) const { return slots_[static_cast<size_t>(slot)].get(); }
  int size() const;                        // adapters by name (not retired)
  std::vector<std::string> Names() const;  // in slot order, not retired
  const Model& base() const { return base_; }

  // Bumped by every Add and Remove, so mixers can drop what they cached.
  uint64_t generation() const { return generation_; }
  // Bit i set: slot i holds an adapter.
  uint64_t occupied() const { return occupied_; }

  // Fast lookups for the mixer (module kinds q..down only).
  // Bit i set: the adapter in slot i adapts (layer, kind).
  uint64_t TargetMask(int layer, ModuleKind kind) const { return target_masks_[ModuleIndex(layer, kind)]; }
  const LoraModule* Module(int slot, int layer, ModuleKind kind) const {
    return modules_[static_cast<size_t>(slot)][ModuleIndex(layer, kind)];
  }
  size_t ModuleIndex(int layer, ModuleKind kind) const {
    return static_cast<size_t>(layer) * kNumLoraKinds + static_cast<size_t>(LoraKindIndex(kind));
  }
  size_t NumModuleIndices() const { return target_masks_.size(); }

 private:
  void RebuildTables();

  const Model& base_;
  void Free(int slot);

  std::array<std::shared_ptr<const LoraAdapter>, kMaxAdapters> slots_;
  std::array<bool, kMaxAdapters> retired_{};  // removed by name, kept for a lease
  uint64_t generation_ = 0;
  uint64_t occupied_ = 0;
  std::vector<uint64_t> target_masks_;  // [n_layers · kNumLoraKinds]
  // [kMaxAdapters][n_layers · kNumLoraKinds]; null where a slot does not adapt a module
  std::array<std::vector<const LoraModule*>, kMaxAdapters> modules_;
};

}  // namespace tokenlora
