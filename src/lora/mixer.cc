#include "lora/mixer.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "io/io_util.h"
#include "kernels/int8_matmul.h"
#include "kernels/kernels.h"

namespace tokenlora {
using io_internal::Quote;

namespace {
constexpr int kMax = AdapterBank::kMaxAdapters;

bool SameDtype(const std::vector<const LoraModule*>& mods, LoraMatrix LoraModule::*which) {
  for (const LoraModule* mod : mods) {
    if ((mod->*which).dtype != (mods[0]->*which).dtype) return false;
  }
  return true;
}

// The A matrices [r_i, n_in] of `mods` stacked row-wise into [Σr, n_in]: their
// stored rows concatenated (any one dtype; value_scale stays per adapter, in
// the mixer's Segment), or their true values as f32.
LoraMatrix StackA(const std::vector<const LoraModule*>& mods, int64_t total_rank, bool as_stored) {
  const int64_t n_in = mods[0]->a.cols;
  if (!as_stored) {
    std::vector<float> a(static_cast<size_t>(total_rank * n_in));  // [Σr, n_in]
    int64_t row = 0;
    for (const LoraModule* mod : mods) {
      for (int64_t r = 0; r < mod->rank; ++r, ++row) mod->a.RowToF32(r, &a[static_cast<size_t>(row * n_in)]);
    }
    return LoraMatrix::FromF32(a.data(), total_rank, n_in, DType::kF32);
  }
  LoraMatrix st;
  st.dtype = mods[0]->a.dtype;
  st.rows = total_rank;
  st.cols = n_in;
  st.data.reserve(static_cast<size_t>(total_rank) * RowBytes(st.dtype, n_in));
  for (const LoraModule* mod : mods) st.data.insert(st.data.end(), mod->a.data.begin(), mod->a.data.end());
  return st;
}

// The B matrices [n_out, r_i] of `mods` side by side in [n_out, Σr]: each
// stacked row the concatenation of the adapters' stored rows (for Q8_0 whole
// blocks: a Q8_0 lora_B has r_i % 32 == 0), or their true values as f32.
LoraMatrix StackB(const std::vector<const LoraModule*>& mods, int64_t total_rank, bool as_stored) {
  const int64_t n_out = mods[0]->b.rows;
  if (!as_stored) {
    std::vector<float> b(static_cast<size_t>(n_out * total_rank));  // [n_out, Σr]
    std::vector<float> row;                                         // [r_i]
    int64_t offset = 0;
    for (const LoraModule* mod : mods) {
      row.resize(static_cast<size_t>(mod->rank));
      for (int64_t o = 0; o < n_out; ++o) {
        mod->b.RowToF32(o, row.data());
        std::copy(row.begin(), row.end(), b.begin() + o * total_rank + offset);
      }
      offset += mod->rank;
    }
    return LoraMatrix::FromF32(b.data(), n_out, total_rank, DType::kF32);
  }
  LoraMatrix st;
  st.dtype = mods[0]->b.dtype;
  st.rows = n_out;
  st.cols = total_rank;
  const size_t row_bytes = RowBytes(st.dtype, total_rank);
  st.data.resize(static_cast<size_t>(n_out) * row_bytes);
  size_t offset = 0;  // bytes into each stacked row
  for (const LoraModule* mod : mods) {
    TL_CHECK(mod->b.cols % Info(st.dtype).block_size == 0);
    const size_t bytes = RowBytes(st.dtype, mod->b.cols);
    for (int64_t o = 0; o < n_out; ++o) {
      std::memcpy(st.data.data() + static_cast<size_t>(o) * row_bytes + offset,
                  mod->b.data.data() + static_cast<size_t>(o) * bytes, bytes);
    }
    offset += bytes;
  }
  TL_CHECK(offset == row_bytes);
  return st;
}

}  // namespace

const char* MixModeName(MixMode mode) {
  switch (mode) {
    case MixMode::kExact:
      return "exact";
    case MixMode::kPeftLinear:
      return "peft-linear";
    case MixMode::kPeft04Linear:
      return "peft04-linear";
  }
  return "?";
}

MixMode ParseMixMode(const std::string& text) {
  for (MixMode m : {MixMode::kExact, MixMode::kPeftLinear, MixMode::kPeft04Linear}) {
    if (text == MixModeName(m)) return m;
  }
  throw InputError("unknown mix mode " + Quote(text) + "; expected exact, peft-linear or peft04-linear");
}

LoraMixer::LoraMixer(const AdapterBank& bank, MixerOptions options)
    : bank_(bank), options_(options), weights_mode_(options.mode) {
  TL_CHECK(options_.max_cached_sets >= 1);
  TL_CHECK(options_.min_weight >= 0);
}

void LoraMixer::set_mode(MixMode mode) { options_.mode = mode; }

void LoraMixer::Clear() {
  n_rows_ = 0;
  union_mask_ = 0;
  weights_.clear();
  row_masks_.clear();
  row_modes_.clear();
}

std::vector<float> LoraMixer::UniformWeights() const {
  if (n_rows_ == 0 || union_mask_ == 0) return {};
  TL_CHECK_MSG(n_rows_ == 1, "the mixer holds per-row weights, not one mixture");
  return std::vector<float>(weights_.begin(), weights_.begin() + kMax);
}

void LoraMixer::CheckWeights(std::span<const float> w, std::optional<MixMode> mode) const {
  uint64_t mask = 0;
  if (w.size() > static_cast<size_t>(kMax)) {
    throw InputError("mixture weights have " + std::to_string(w.size()) + " columns; at most " +
                     std::to_string(kMax) + " adapters are supported");
  }
  for (size_t s = 0; s < w.size(); ++s) {
    if (!std::isfinite(w[s])) {
      throw InputError("mixture weight for adapter slot " + std::to_string(s) + " is not finite");
    }
    if (std::fabs(w[s]) > options_.min_weight && bank_.adapter(static_cast<int>(s)) == nullptr) {
      throw InputError("mixture gives weight " + std::to_string(w[s]) + " to adapter slot " + std::to_string(s) +
                       ", which holds no adapter");
    }
    if (std::fabs(w[s]) > options_.min_weight) mask |= uint64_t{1} << s;
  }
  const MixMode m = mode.value_or(options_.mode);
  if (m != MixMode::kExact) CheckRanks(mask, m);
}

void LoraMixer::SetMixture(const std::vector<std::pair<std::string, float>>& weights) {
  float row[kMax] = {};
  for (const auto& [name, w] : weights) row[bank_.Require(name)] += w;
  SetTokenWeights(row, 1, kMax);
}

void LoraMixer::SetTokenWeights(std::span<const float> w, int64_t n_rows, int n_cols,
                                std::span<const MixMode> row_modes) {
  TL_CHECK(n_rows >= 1 && n_cols >= 0);
  TL_CHECK(row_modes.empty() || row_modes.size() == static_cast<size_t>(n_rows));
  if (n_cols > kMax) {
    throw InputError("mixture weights have " + std::to_string(n_cols) + " columns; at most " +
                     std::to_string(kMax) + " adapters are supported");
  }
  TL_CHECK(w.size() == static_cast<size_t>(n_rows) * static_cast<size_t>(n_cols));
  if (bank_.generation() != generation_) {
    cache_.assign(bank_.NumModuleIndices(), {});  // stacks may reference removed adapters
    generation_ = bank_.generation();
  }
  weights_.assign(static_cast<size_t>(n_rows) * kMax, 0.0f);  // no reallocation once grown
  row_masks_.assign(static_cast<size_t>(n_rows), 0);
  union_mask_ = 0;
  n_rows_ = n_rows;
  for (int64_t t = 0; t < n_rows; ++t) {
    uint64_t mask = 0;
    for (int s = 0; s < n_cols; ++s) {
      const float v = w[static_cast<size_t>(t * n_cols + s)];
      if (!std::isfinite(v)) {
        Clear();
        throw InputError("mixture weight for adapter slot " + std::to_string(s) + " (row " +
                         std::to_string(t) + ") is not finite");
      }
      if (std::fabs(v) <= options_.min_weight) continue;
      if (bank_.adapter(s) == nullptr) {
        Clear();
        throw InputError("mixture gives weight " + std::to_string(v) + " to adapter slot " +
                         std::to_string(s) + ", which holds no adapter");
      }
      weights_[static_cast<size_t>(t * kMax + s)] = v;
      mask |= uint64_t{1} << s;
    }
    row_masks_[static_cast<size_t>(t)] = mask;
    union_mask_ |= mask;
  }
  one_row_set_ = std::all_of(row_masks_.begin(), row_masks_.end(), [&](uint64_t m) { return m == row_masks_[0]; });
  weights_mode_ = options_.mode;
  row_modes_.assign(row_modes.begin(), row_modes.end());
  const bool any_linear = weights_mode_ != MixMode::kExact ||
                          std::any_of(row_modes_.begin(), row_modes_.end(), [](MixMode m) { return m != MixMode::kExact; });
  if (any_linear) {
    try {
      ValidateRanks();
    } catch (const InputError&) {
      Clear();
      throw;
    }
  }
}

// The linear modes add rank-space vectors of different adapters, so every
// pair a row mixes must have equal ranks wherever both adapt a module.
void LoraMixer::ValidateRanks() const {
  uint64_t checked[8];
  int n_checked = 0;
  for (size_t row = 0; row < row_masks_.size(); ++row) {
    const uint64_t mask = row_masks_[row];
    const MixMode mode = RowMode(static_cast<int64_t>(row));
    if (mode == MixMode::kExact || __builtin_popcountll(mask) < 2) continue;
    if (std::find(checked, checked + n_checked, mask) != checked + n_checked) continue;
    if (n_checked < 8) checked[n_checked++] = mask;
    CheckRanks(mask, mode);
  }
}

void LoraMixer::CheckRanks(uint64_t mask, MixMode mode) const {
  if (__builtin_popcountll(mask) < 2) return;
  for (size_t idx = 0; idx < bank_.NumModuleIndices(); ++idx) {
    const int layer = static_cast<int>(idx / kNumLoraKinds);
    const ModuleKind kind = static_cast<ModuleKind>(idx % kNumLoraKinds);
    const LoraModule* first = nullptr;
    int first_slot = 0;
    for (uint64_t m = mask & bank_.TargetMask(layer, kind); m != 0; m &= m - 1) {
      const int slot = __builtin_ctzll(m);
      const LoraModule* mod = bank_.Module(slot, layer, kind);
      if (first == nullptr) {
        first = mod;
        first_slot = slot;
      } else if (mod->rank != first->rank) {
        throw InputError(std::string("mix mode ") + MixModeName(mode) +
                         " mixes adapters of equal rank only (as PEFT's linear merge does), but at layer " +
                         std::to_string(layer) + " " + ModuleName(kind) + " adapter " +
                         Quote(bank_.adapter(first_slot)->name) + " has r=" + std::to_string(first->rank) +
                         " and " + Quote(bank_.adapter(slot)->name) + " has r=" + std::to_string(mod->rank) +
                         " — mix them in exact mode (--mix-mode exact)");
      }
    }
  }
}

const LoraMixer::Stack& LoraMixer::StackFor(int layer, ModuleKind kind, uint64_t mask) const {
  std::vector<Stack>& entries = cache_[bank_.ModuleIndex(layer, kind)];
  ++use_counter_;
  for (Stack& s : entries) {
    if (s.mask == mask) {
      s.last_used = use_counter_;
      return s;
    }
  }
  // Miss: build (allocates; happens when a module meets a new adapter set).
  if (static_cast<int>(entries.size()) >= options_.max_cached_sets) {
    auto lru = std::min_element(entries.begin(), entries.end(),
                                [](const Stack& a, const Stack& b) { return a.last_used < b.last_used; });
    entries.erase(lru);
  }
  Stack st;
  st.mask = mask;
  st.last_used = use_counter_;
  std::vector<const LoraModule*> mods;
  for (uint64_t m = mask; m != 0; m &= m - 1) {
    const int slot = __builtin_ctzll(m);
    const LoraModule* mod = bank_.Module(slot, layer, kind);
    st.segments.push_back(
        {slot, mod->rank, st.total_rank, mod->scale, mod->a.value_scale, mod->b.value_scale});
    st.total_rank += mod->rank;
    mods.push_back(mod);
  }
  if (mods.size() == 1) {
    // One adapter: its own matrices already are the stack.
    st.a_view = mods[0]->a.View();
    st.b_view = mods[0]->b.View();
  } else {
    const bool a_as_stored = SameDtype(mods, &LoraModule::a);
    const bool b_as_stored = SameDtype(mods, &LoraModule::b);
    st.a = StackA(mods, st.total_rank, a_as_stored);
    st.b = StackB(mods, st.total_rank, b_as_stored);
    for (Segment& seg : st.segments) {
      if (!a_as_stored) seg.a_factor = 1;  // f32 stacks hold true values
      if (!b_as_stored) seg.b_factor = 1;
    }
    st.a_view = st.a.View();
    st.b_view = st.b.View();
  }
  if (int8_activations()) {
    // Both products on int8 panels. A Q8_0 view packs as stored (the same
    // values); an f32/f16 view holds true values (its factors are 1) and is
    // quantized to Q8_0 first, its power-of-two value_scale becoming the
    // segments' factor. A side whose rows are not whole 32-value blocks
    // (lora_B with r % 32 != 0) keeps f32 activations.
    const auto pack = [](const TensorView& view, float* factor) -> std::shared_ptr<const kernels::PackedMatrix> {
      if (view.shape[1] % Info(DType::kQ8_0).block_size != 0) return nullptr;
      if (view.dtype == DType::kQ8_0) return kernels::PackForInt8(view);
      const LoraMatrix q8 = LoraMatrix::FromView(view, DType::kQ8_0);
      *factor = q8.value_scale;
      return kernels::PackForInt8(q8.View());  // the panels are a copy
    };
    float a_factor = 0, b_factor = 0;  // 0: the segments' factors stand
    st.a_int8 = pack(st.a_view, &a_factor);
    st.b_int8 = pack(st.b_view, &b_factor);
    for (Segment& seg : st.segments) {
      if (a_factor != 0) seg.a_factor = a_factor;
      if (b_factor != 0) seg.b_factor = b_factor;
    }
  }
  entries.push_back(std::move(st));
  return entries.back();
}

void LoraMixer::FillRankSpace(const Stack& st, uint64_t mask, const float* u_all, int64_t n_tok,
                              const int64_t* rows) const {
  const int64_t R = st.total_rank;
  for (int64_t t = 0; t < n_tok; ++t) {
    const int64_t row = n_rows_ == 1 ? 0 : (rows != nullptr ? rows[t] : t);
    const float* w = &weights_[static_cast<size_t>(row * kMax)];
    const uint64_t row_mask = row_masks_[static_cast<size_t>(row)] & mask;
    row_active_[static_cast<size_t>(t)] = row_mask != 0;
    const float* u = u_all + t * R;
    float* z = &z_[static_cast<size_t>(t * R)];
    std::fill(z, z + R, 0.0f);
    if (row_mask == 0) continue;
    const MixMode mode = RowMode(row);
    if (mode == MixMode::kExact) {
      for (const Segment& s : st.segments) {
        const float c = w[s.slot] * s.scale * (s.a_factor * s.b_factor);
        if (c == 0) continue;
        for (int k = 0; k < s.rank; ++k) z[s.offset + k] = c * u[s.offset + k];
      }
      continue;
    }
    // Linear modes: v = Σ_j cA_j·(A_j·x) in one adapter's rank space (ranks
    // checked equal), then every active adapter's B block gets cB_i·v.
    float* v = v_.data();
    int rank = 0;
    for (const Segment& s : st.segments) {
      if (w[s.slot] == 0) continue;
      if (rank == 0) {
        rank = s.rank;
        std::fill(v, v + rank, 0.0f);
      }
      const float ws = w[s.slot] * s.scale;
      const float ca = mode == MixMode::kPeftLinear ? std::copysign(std::sqrt(std::fabs(ws)), ws) : ws;
      const float ca_stored = ca * s.a_factor;  // u holds A·x / a_factor
      for (int k = 0; k < rank; ++k) v[k] += ca_stored * u[s.offset + k];
    }
    for (const Segment& s : st.segments) {
      if (w[s.slot] == 0) continue;
      const float cb = mode == MixMode::kPeftLinear ? std::sqrt(std::fabs(w[s.slot] * s.scale)) : 1.0f;
      const float cb_stored = cb * s.b_factor;  // the stacked B block holds B / b_factor
      for (int k = 0; k < rank; ++k) z[s.offset + k] = cb_stored * v[k];
    }
  }
}

namespace {
// Grow-only scratch: after the largest batch, no call allocates.
template <typename T>
void Grow(std::vector<T>& v, int64_t n) {
  if (v.size() < static_cast<size_t>(n)) v.resize(static_cast<size_t>(n));
}
}  // namespace

void LoraMixer::ApplyStack(const Stack& st, uint64_t mask, const float* x, int64_t n_tok, const int64_t* rows,
                           float* y, int64_t y_row_stride, ThreadPool& pool) const {
  Grow(u_, n_tok * st.total_rank);
  // Row-invariant products: a row's delta has the same bits whatever else
  // is in the batch (a sequence's output does not depend on the load).
  // The int8 kernels are row-invariant too (per-row activation scales; AMX,
  // VNNI, AVX2 and the scalar twin give the same bits).
  if (st.a_int8 != nullptr) {
    kernels::MatMulInt8(*st.a_int8, x, n_tok, u_.data(), pool);  // u: [n_tok, Σr]
  } else {
    kernels::MatMulRowInvariant(st.a_view, x, n_tok, u_.data(), pool);
  }
  FinishStack(st, mask, u_.data(), n_tok, rows, y, y_row_stride, pool);
}

void LoraMixer::FinishStack(const Stack& st, uint64_t mask, const float* u, int64_t n_tok, const int64_t* rows,
                            float* y, int64_t y_row_stride, ThreadPool& pool) const {
  const int64_t R = st.total_rank, n_out = st.b_view.shape[0];
  Grow(z_, n_tok * R);
  Grow(delta_, n_tok * n_out);
  Grow(row_active_, n_tok);
  Grow(v_, R);

  FillRankSpace(st, mask, u, n_tok, rows);  // z: [n_tok, Σr]
  if (st.b_int8 != nullptr) {
    kernels::MatMulInt8(*st.b_int8, z_.data(), n_tok, delta_.data(), pool);  // delta: [n_tok, n_out]
  } else {
    kernels::MatMulRowInvariant(st.b_view, z_.data(), n_tok, delta_.data(), pool);
  }

  // Rows with no active adapter keep y untouched (adding 0 would turn -0 into +0).
  struct Job {
    const LoraMixer* self;
    float* y;
    const int64_t* rows;
    int64_t n_out, y_row_stride;
  } job{this, y, rows, n_out, y_row_stride};
  auto add_rows = [&job](size_t begin, size_t end, int) {
    for (size_t t = begin; t < end; ++t) {
      if (!job.self->row_active_[t]) continue;
      const int64_t y_row = job.rows != nullptr ? job.rows[t] : static_cast<int64_t>(t);
      kernels::AddInPlace(job.y + y_row * job.y_row_stride,
                          job.self->delta_.data() + static_cast<int64_t>(t) * job.n_out, job.n_out);
    }
  };
  if (n_tok * n_out < (1 << 16)) {
    add_rows(0, static_cast<size_t>(n_tok), 0);  // decode: not worth waking the pool
  } else {
    pool.ParallelFor(static_cast<size_t>(n_tok), 8, add_rows);
  }
}

void LoraMixer::CheckBatch(int64_t n_tok) const {
  TL_CHECK_MSG(bank_.generation() == generation_,
               "the adapter bank changed after the mixture weights were set; set them again");
  TL_CHECK_MSG(n_rows_ == 1 || n_rows_ == n_tok, "per-token mixture weights have " + std::to_string(n_rows_) +
                                                     " rows but the batch has " + std::to_string(n_tok) +
                                                     " tokens (see RunWithTokenWeights)");
}

void LoraMixer::AddDeltaShared(const Linear* const* linears, float* const* ys, int n, const float* x,
                               int64_t n_tok, ThreadPool& pool) const {
  if (union_mask_ == 0) return;
  // Projections whose one stack (every row uses the same adapters) runs
  // int8 take part; the others run alone.
  const Stack* stacks[kernels::kMaxShared];
  const kernels::PackedMatrix* a_panels[kernels::kMaxShared];
  uint64_t masks[kernels::kMaxShared];
  int which[kernels::kMaxShared];
  int m = 0;
  for (int i = 0; i < n; ++i) {
    const Linear& linear = *linears[i];
    if (linear.layer < 0 || linear.kind == ModuleKind::kOutput) continue;
    const uint64_t mask = union_mask_ & bank_.TargetMask(linear.layer, linear.kind);
    const Stack* st = nullptr;
    if (mask != 0 && one_row_set_ && m < kernels::kMaxShared) {
      CheckBatch(n_tok);
      st = &StackFor(linear.layer, linear.kind, mask);  // each projection its own module: no eviction of another's
    }
    if (st == nullptr || st->a_int8 == nullptr) {
      AddDelta(linear, x, n_tok, ys[i], pool);
      continue;
    }
    TL_CHECK(st->a_view.shape[1] == linear.n_in() && st->b_view.shape[0] == linear.n_out());
    stacks[m] = st;
    a_panels[m] = st->a_int8.get();
    masks[m] = mask;
    which[m++] = i;
  }
  if (m == 0) return;
  float* us[kernels::kMaxShared];
  int64_t total = 0;
  for (int j = 0; j < m; ++j) total += n_tok * stacks[j]->total_rank;
  Grow(u_, total);  // the AddDelta calls above are done with it; FinishStack does not use it
  total = 0;
  for (int j = 0; j < m; ++j) {
    us[j] = u_.data() + total;
    total += n_tok * stacks[j]->total_rank;
  }
  kernels::MatMulInt8Shared(a_panels, us, m, x, n_tok, pool);  // us[j]: [n_tok, Σr_j], the same bits as alone
  for (int j = 0; j < m; ++j) {
    FinishStack(*stacks[j], masks[j], us[j], n_tok, nullptr, ys[which[j]], linears[which[j]]->n_out(), pool);
  }
}

void LoraMixer::AddDelta(const Linear& linear, const float* x, int64_t n_tok, float* y,
                         ThreadPool& pool) const {
  if (union_mask_ == 0 || linear.layer < 0 || linear.kind == ModuleKind::kOutput) return;
  CheckBatch(n_tok);
  const uint64_t target = bank_.TargetMask(linear.layer, linear.kind);
  const uint64_t mask = union_mask_ & target;
  if (mask == 0) return;  // no active adapter adapts this projection: y stays bit for bit
  const int64_t n_in = linear.n_in(), n_out = linear.n_out();

  // Rows grouped by the adapters they use here (S-LoRA/Punica's segments):
  // each group runs the stack of exactly its adapters, so every A and B is
  // read once per call, a row computes what it would in a batch of its own
  // mixture, and rows of the base model (no adapter) cost nothing.
  size_t n_groups = 0;  // groups_[0, n_groups): entries past it keep their capacity for later calls
  if (n_rows_ > 1) {
    for (int64_t t = 0; t < n_tok; ++t) {
      const uint64_t m = row_masks_[static_cast<size_t>(t)] & target;
      size_t g = 0;
      while (g < n_groups && groups_[g].mask != m) ++g;
      if (g == n_groups) {
        if (groups_.size() == n_groups) groups_.emplace_back();
        groups_[g].mask = m;
        groups_[g].rows.clear();
        ++n_groups;
      }
      groups_[g].rows.push_back(t);
    }
  }
  if (n_groups <= 1) {  // one mixture (or one adapter set) for every row: no gathering
    const Stack& st = StackFor(linear.layer, linear.kind, mask);
    TL_CHECK(st.a_view.shape[1] == n_in && st.b_view.shape[0] == n_out);
    ApplyStack(st, mask, x, n_tok, nullptr, y, n_out, pool);
    return;
  }
  for (size_t gi = 0; gi < n_groups; ++gi) {
    const RowGroup& g = groups_[gi];
    if (g.mask == 0) continue;
    const Stack& st = StackFor(linear.layer, linear.kind, g.mask);
    TL_CHECK(st.a_view.shape[1] == n_in && st.b_view.shape[0] == n_out);
    const int64_t n = static_cast<int64_t>(g.rows.size());
    if (gathered_x_.size() < static_cast<size_t>(n * n_in)) gathered_x_.resize(static_cast<size_t>(n * n_in));
    for (int64_t i = 0; i < n; ++i) {
      std::memcpy(&gathered_x_[static_cast<size_t>(i * n_in)], x + g.rows[static_cast<size_t>(i)] * n_in,
                  static_cast<size_t>(n_in) * sizeof(float));
    }
    ApplyStack(st, g.mask, gathered_x_.data(), n, g.rows.data(), y, n_out, pool);
  }
}

void RunWithTokenWeights(LlamaForward& forward, LoraMixer& mixer, std::span<const int32_t> tokens,
                         std::span<const float> w, int n_cols, KvCache& kv, ThreadPool& pool, float* logits,
                         bool all_logits, int max_batch) {
  TL_CHECK(max_batch >= 1);
  TL_CHECK(w.size() == tokens.size() * static_cast<size_t>(n_cols));
  const int64_t vocab = forward.model().config().vocab_size;
  for (size_t start = 0; start < tokens.size(); start += static_cast<size_t>(max_batch)) {
    const size_t n = std::min(tokens.size() - start, static_cast<size_t>(max_batch));
    mixer.SetTokenWeights(w.subspan(start * static_cast<size_t>(n_cols), n * static_cast<size_t>(n_cols)),
                          static_cast<int64_t>(n), n_cols);
    float* out = all_logits ? logits + static_cast<int64_t>(start) * vocab : logits;
    forward.Run(tokens.subspan(start, n), kv, ForwardContext{&pool, &mixer}, out, all_logits);
  }
}

}  // namespace tokenlora
