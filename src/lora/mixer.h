// The LoRA mixer: a ProjectionHook that adds a per-token mixture of the
// bank's adapters to every projection, unmerged. For token t with weights
// w[t][i] and scales s_i (alpha_i/r_i, or alpha_i/√r_i with rsLoRA):
//
//   exact (default)  y += Σ_i w_i·s_i·B_i·(A_i·x)                 (PEFT "cat")
//   peft-linear      y += (Σ_i c_i·B_i)·(Σ_j c'_j·A_j·x)          (PEFT "linear")
//                    c_i = √|w_i·s_i|, c'_j = sign(w_j·s_j)·√|w_j·s_j|
//   peft04-linear    y += (Σ_i B_i)·(Σ_j w_j·s_j·A_j·x)           (PEFT 0.4.0 "linear")
//
// No d×d matrix is ever formed. Per projection, the A matrices of the
// adapters active anywhere in the batch are stacked into one [Σr, n_in]
// matrix and the B matrices side by side into one [n_out, Σr] matrix
// (built once per module and adapter set, then cached), so a batch costs two
// MatMuls whatever its mixtures:
//   u = x·A_stackᵀ  [n_tok, Σr]  →  z = per-token scaling of u in rank
//   space  [n_tok, Σr]  →  y += z·B_stackᵀ  [n_tok, n_out].
// Stacks keep the adapters' storage when they share it (f32, f16 or Q8_0:
// A rows are concatenated, and each B row is the concatenation of the B
// rows, whole Q8_0 blocks since a Q8_0 lora_B has r % 32 == 0), so stacking
// never changes a value; the Q8_0 matrices' power-of-two value_scale is
// applied per adapter in rank space. Adapters of different storage (f16 and
// Q8_0 lora_B, from the Q8_0 fallback for r % 32 != 0) stack as f32 values.
// The linear modes mix within the rank space of one adapter, so the
// adapters a token mixes must share their rank at every module (as PEFT
// requires); an adapter that does not adapt a module takes no part there.
// (PEFT 0.4.0 itself only merged adapters of identical target sets, keyed
// on the first adapter's; for those the results are the same.)
//
// Rows of a batch that use different adapter sets (sequences with their own
// mixtures) are grouped by set, and each group runs the stack of its own
// adapters: a row computes what it would in a batch of its own mixture, and
// rows with no adapter skip the LoRA work.
//
// Adapters whose |weight| is at or below min_weight are skipped for that
// token; a projection none of the batch's adapters touch is left exactly as
// the base computed it (all weights 0 = the base model, bit for bit).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "kernels/int8_matmul.h"
#include "lora/adapter_bank.h"
#include "model/llama/forward.h"
#include "model/project.h"

namespace tokenlora {

enum class MixMode { kExact, kPeftLinear, kPeft04Linear };
const char* MixModeName(MixMode mode);  // "exact", "peft-linear", "peft04-linear"
// Throws InputError listing the modes.
MixMode ParseMixMode(const std::string& text);

struct MixerOptions {
  MixMode mode = MixMode::kExact;
  // |w| at or below this skips the adapter for that token: its contribution
  // would be below 1e-4 of a fully weighted adapter's.
  float min_weight = 1e-4f;
  // Stacked matrices kept per module (least recently used go first); each
  // holds a copy of the adapters' A and B for that module.
  int max_cached_sets = 8;
  // Run u = x·Aᵀ and delta = z·Bᵀ with int8 activations (per block of 32,
  // kernels::MatMulInt8: VNNI/AMX/AVX2) on Q8_0 panels of the stacks, where
  // the CPU has the int8 kernels: q8_0-stored adapters as stored, f32/f16
  // ones quantized to Q8_0 when their stack is built (a side whose rows are
  // not whole 32-value blocks keeps f32). Not exact: the logits move by
  // ~1% of the adapters' effect. For an int8 base (the adapters' products
  // then cost what the base's do); false: exact f32 products.
  bool int8_activations = false;
};

class LoraMixer final : public ProjectionHook {
 public:
  // `bank` must outlive the mixer. Starts with no weights (the base model).
  explicit LoraMixer(const AdapterBank& bank, MixerOptions options = {});

  // One mixture for every token of the following forward calls: (adapter
  // name, weight); adapters not named weigh 0. Throws InputError for an
  // unknown name or a non-finite weight.
  void SetMixture(const std::vector<std::pair<std::string, float>>& weights);
  // Per-row weights w [n_rows, n_cols], indexed by bank slot (slots ≥ n_cols
  // weigh 0). n_rows == 1 applies the row to every token; otherwise the next
  // forward batch must hold exactly n_rows tokens (row t = token t; rows of
  // different sequences may carry different mixtures). Throws InputError for
  // a non-finite weight, a weight on a free slot, or (linear modes) a row
  // mixing adapters of different ranks at some module. `row_modes`
  // ([n_rows], optional): each row's own mix mode (sequences that asked for
  // one); empty: every row in mode().
  void SetTokenWeights(std::span<const float> w, int64_t n_rows, int n_cols,
                       std::span<const MixMode> row_modes = {});
  // No adapters: the base model.
  void Clear();
  // The weights set for every token ([kMaxAdapters] by slot; empty when
  // none are set). Per-row weights are not one row: TL_CHECK.
  std::vector<float> UniformWeights() const;
  // Throws what SetTokenWeights would for this one row of weights by slot
  // in `mode` (mode() when not given), without setting anything (a
  // scheduler checks a request up front).
  void CheckWeights(std::span<const float> w, std::optional<MixMode> mode = std::nullopt) const;

  void set_mode(MixMode mode);  // takes effect with the next Set*() call
  // Whether the products run int8 (MixerOptions::int8_activations on a CPU
  // with the int8 kernels).
  bool int8_activations() const { return options_.int8_activations && kernels::Int8Accelerated(); }
  MixMode mode() const { return options_.mode; }
  // Whether any adapter has a weight above min_weight.
  bool active() const { return union_mask_ != 0; }

  // x: [n_tok, n_in], y: [n_tok, n_out]. Not reentrant: one forward pass at
  // a time per mixer (scratch and the stacked-matrix cache are members).
  void AddDelta(const Linear& linear, const float* x, int64_t n_tok, float* y,
                ThreadPool& pool) const override;
  // The same for projections of one input: when every row uses one adapter
  // set and the stacks run int8, all the A products are one int8 call (x
  // quantized once, one parallel region). Results equal AddDelta's.
  void AddDeltaShared(const Linear* const* linears, float* const* ys, int n, const float* x, int64_t n_tok,
                      ThreadPool& pool) const override;

 private:
  struct Segment {
    int slot = 0;
    int rank = 0;
    int offset = 0;  // first column of this adapter in the rank space
    float scale = 0;
    // True A = a_factor · this adapter's rows of the stacked A, true B =
    // b_factor · its columns of the stacked B (powers of two: 1, or the
    // value_scale of a Q8_0 matrix stacked as stored).
    float a_factor = 1, b_factor = 1;
  };
  // The active adapters of one module, stacked.
  struct Stack {
    uint64_t mask = 0;
    uint64_t last_used = 0;
    int total_rank = 0;
    std::vector<Segment> segments;
    LoraMatrix a, b;    // owned copies when more than one adapter is stacked
    TensorView a_view;  // [total_rank, n_in]   stored values (see Segment)
    TensorView b_view;  // [n_out, total_rank]  stored values (see Segment)
    // a_view / b_view repacked for int8 activations (MixerOptions::
    // int8_activations and a Q8_0 view); null: f32 activations.
    std::shared_ptr<const kernels::PackedMatrix> a_int8, b_int8;
  };
  const Stack& StackFor(int layer, ModuleKind kind, uint64_t mask) const;
  void ValidateRanks() const;
  // InputError unless the adapters of `mask` have equal ranks wherever two adapt a module.
  void CheckRanks(uint64_t mask, MixMode mode) const;
  MixMode RowMode(int64_t row) const { return row_modes_.empty() ? weights_mode_ : row_modes_[static_cast<size_t>(row)]; }
  // z[t] from u[t] for every row, and row_active_[t]. rows[t]: the weight
  // row of u's row t (nullptr: t).  u: [n_tok, Σr]
  void FillRankSpace(const Stack& st, uint64_t mask, const float* u, int64_t n_tok, const int64_t* rows) const;
  // y[rows[t]] += the delta of `st` for x row t, t < n_tok (rows nullptr: t).
  //   x: [n_tok, n_in]   y: rows of y_row_stride floats
  void ApplyStack(const Stack& st, uint64_t mask, const float* x, int64_t n_tok, const int64_t* rows, float* y,
                  int64_t y_row_stride, ThreadPool& pool) const;
  // ApplyStack from u = x·A_stackᵀ already computed.  u: [n_tok, Σr]
  void FinishStack(const Stack& st, uint64_t mask, const float* u, int64_t n_tok, const int64_t* rows, float* y,
                   int64_t y_row_stride, ThreadPool& pool) const;
  // The checks every AddDelta makes on the weights set against this batch.
  void CheckBatch(int64_t n_tok) const;

  const AdapterBank& bank_;
  MixerOptions options_;
  MixMode weights_mode_ = MixMode::kExact;  // the mode the weights were validated for
  std::vector<MixMode> row_modes_;          // [n_rows] per-row modes; empty: weights_mode_ for all
  std::vector<float> weights_;              // [n_rows, kMaxAdapters], |w| <= min_weight stored as 0
  std::vector<uint64_t> row_masks_;         // [n_rows] slots with a nonzero weight
  int64_t n_rows_ = 0;
  uint64_t union_mask_ = 0;
  bool one_row_set_ = true;  // every row uses the same adapters (one group per projection)
  uint64_t generation_ = 0;  // bank generation the weights were set against

  // Cache and scratch: mutable because AddDelta is const (the hook
  // interface); reused across calls so the steady state allocates nothing.
  mutable std::vector<std::vector<Stack>> cache_;  // [module index] → stacks
  mutable uint64_t use_counter_ = 0;
  mutable std::vector<float> u_;             // [n_tok, Σr]   A·x (AddDeltaShared: each projection's, one after another)
  mutable std::vector<float> z_;             // [n_tok, Σr]   scaled rank-space vectors
  mutable std::vector<float> delta_;         // [n_tok, n_out]
  mutable std::vector<uint8_t> row_active_;  // [n_tok]
  mutable std::vector<float> v_;             // [Σr]  linear modes: the merged rank-space vector
  // Rows of one adapter set in a batch of mixed sets, and their gathered input.
  struct RowGroup {
    uint64_t mask = 0;
    std::vector<int64_t> rows;
  };
  mutable std::vector<RowGroup> groups_;
  mutable std::vector<float> gathered_x_;    // [group rows, n_in]
};

// Runs `tokens` through `forward` with per-token weights w [n_tokens,
// n_cols], in chunks of at most `max_batch` tokens (no more than the
// LlamaForward's own max_batch, so each forward batch sees exactly the rows
// set for it). Arguments as LlamaForward::Run.
void RunWithTokenWeights(LlamaForward& forward, LoraMixer& mixer, std::span<const int32_t> tokens,
                         std::span<const float> w, int n_cols, KvCache& kv, ThreadPool& pool, float* logits,
                         bool all_logits, int max_batch);

}  // namespace tokenlora
