// A LoRA adapter in memory: for each (layer, module) it adapts, the low-rank
// pair A [rank, n_in] and B [n_out, rank] and the scale s, so that the
// adapted projection is  y = W·x + s·B·(A·x).
//
// Loaders read PEFT directories (peft_adapter.cc) and llama.cpp LoRA GGUF
// files (gguf_adapter.cc). A loaded adapter is base-independent; BindToBase()
// checks it against the model it will run on (architecture, layer count,
// every shape) and puts the q/k rows of B into that base's order.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "model/llama/config.h"
#include "model/llama/weights.h"
#include "tensor/tensor.h"

namespace tokenlora {

// Module kinds an adapter may target: q, k, v, o, gate, up, down (the values
// of ModuleKind before kOutput). LoRA on lm_head or embeddings is refused.
inline constexpr int kNumLoraKinds = 7;
inline int LoraKindIndex(ModuleKind kind) { return static_cast<int>(kind); }

// The storage types of adapter matrices (AdapterLoadOptions::storage):
//   f32   exact;
//   f16   half the memory and decode traffic, values rounded to 11 bits;
//   q8_0  34/128 of f32's bytes: ggml's Q8_0 blocks (32 values, one f16
//         scale), each value off by at most (1/254 + 2^-11) times the
//         largest magnitude in its block. A row must be whole blocks, so a
//         matrix whose rows are not a multiple of 32 long (lora_B [n_out, r]
//         when r % 32 != 0) is kept in f16 instead; Describe() says so.
// "f32", "f16", "q8_0" (any case) → the DType; throws InputError naming the
// choices for anything else.
DType ParseAdapterStorage(const std::string& text);
// kF32 → "f32", kF16 → "f16", kQ8_0 → "q8_0"; "?" for any other type.
const char* AdapterStorageName(DType storage);

// An owned dense row-major matrix in f32, f16 or Q8_0 (the storage the
// mixer's MatMul reads directly).
struct LoraMatrix {
  DType dtype = DType::kF32;  // kF32, kF16 or kQ8_0
  int64_t rows = 0, cols = 0;
  // True value = value_scale · stored value. 1 except for Q8_0, where it is
  // the power of two (so applying it is exact) that put the matrix's largest
  // magnitude near 2^16 before quantizing: the blocks' f16 scales then stay
  // far from f16's subnormal range, which would cost bits for the small
  // magnitudes LoRA weights have (plain Q8_0 loses them below |x| ≈ 7.8e-3).
  float value_scale = 1.0f;
  std::vector<uint8_t> data;  // [rows, cols] elements of `dtype` (Q8_0: cols / 32 blocks per row)

  // The dtype a matrix with rows of `cols` values gets for `storage`: Q8_0
  // falls back to f16 when cols % 32 != 0.
  static DType StoredDType(DType storage, int64_t cols);
  // values: [rows, cols] f32, finite; stored as StoredDType(storage, cols).
  static LoraMatrix FromF32(const float* values, int64_t rows, int64_t cols, DType storage);
  // Any dtype the kernels can dequantize (file tensors: F32, F16, BF16, Q8_0, ...).
  static LoraMatrix FromView(const TensorView& t, DType storage);
  std::vector<float> ToF32() const;            // [rows, cols] true values
  void RowToF32(int64_t r, float* out) const;  // out: [cols] true values
  // The stored values for kernels::MatMul (shape [rows, cols]); valid while
  // *this lives. Results computed from it are to be multiplied by value_scale.
  TensorView View() const;
};

struct LoraModule {
  int layer = 0;
  ModuleKind kind = ModuleKind::kQ;
  int rank = 0;
  float alpha = 0;  // as configured (per module with alpha_pattern)
  float scale = 0;  // alpha / rank, or alpha / √rank with rsLoRA
  LoraMatrix a;     // lora_A: [rank, n_in]
  LoraMatrix b;     // lora_B: [n_out, rank]
};

// Row order of the q_proj/k_proj outputs (and so of B's rows): Hugging Face
// keeps each head's halves (x[i], x[i+d/2]) apart; GGUF llama files
// interleave them for ggml's RoPE (convert_hf_to_gguf permutes W's rows, and
// convert_lora_to_gguf permutes lora_B's rows the same way).
enum class QkRowOrder { kHuggingFace, kGgml };

struct LoraAdapter {
  std::string name;    // what mixtures and messages call it
  std::string path;    // where it was loaded from
  std::string format;  // "peft" or "gguf"
  std::string arch;    // GGUF general.architecture; empty for PEFT (unknown)
  QkRowOrder qk_rows = QkRowOrder::kHuggingFace;
  int rank = 0;     // the configured r (modules may differ: rank_pattern)
  float alpha = 0;  // the configured lora_alpha
  bool use_rslora = false;
  std::vector<LoraModule> modules;  // sorted by (layer, kind), one per adapted projection
  // PEFT: whether adapter_config.json targets the module of this Hugging Face
  // key ("model.layers.3.self_attn.q_proj"); BindToBase checks that every
  // targeted module has tensors. Empty for GGUF adapters (no such config).
  std::function<bool(const std::string& key)> declared_target;

  const LoraModule* Find(int layer, ModuleKind kind) const;
  // "q_proj,v_proj"
  std::string TargetNames() const;
  // "r=8 alpha=16 q_proj,v_proj on 30 layers, f16, 1.2 MiB"; mixed storage
  // (the Q8_0 fallback) reads "lora_A q8_0, lora_B f16 (...)".
  std::string Describe() const;
  size_t NumBytes() const;
};

struct AdapterLoadOptions {
  DType storage = DType::kF32;  // kF32 (exact), kF16 or kQ8_0: see ParseAdapterStorage
};

// Loads a PEFT adapter (a directory holding adapter_config.json and
// adapter_model.safetensors, or either file) or a llama.cpp LoRA GGUF file.
// Throws InputError naming the adapter, the file and the field.
LoraAdapter LoadAdapter(const std::string& name, const std::string& path,
                        const AdapterLoadOptions& options = {});
LoraAdapter LoadPeftAdapter(const std::string& name, const std::string& path,
                            const AdapterLoadOptions& options);
LoraAdapter LoadGgufAdapter(const std::string& name, const std::string& path,
                            const AdapterLoadOptions& options);

// Validates `adapter` against the base model (`base_path` names it in
// messages) and reorders the q/k rows of B into the base's order. Throws
// InputError: "adapter 'math': layer 3 q_proj lora_A is [16, 4096], base
// expects [16, 576] — adapter for a different base model?".
void BindToBase(LoraAdapter& adapter, const LlamaConfig& base, const std::string& base_path);

// The row order of q/k projections in a base: GGUF llama files interleave.
QkRowOrder BaseQkRowOrder(const LlamaConfig& base);
// Reorders the q_proj/k_proj B rows of `adapter` (already checked against
// `base`'s head counts) from its current order to `to`.
void ReorderQkRows(LoraAdapter& adapter, const LlamaConfig& base, QkRowOrder to);

// rows: [n_head · head_dim, cols] of `row_bytes` each. Hugging Face order →
// ggml order (forward) or back (inverse), exactly as convert_hf_to_gguf's
// permute(): within each head, row s·(d/2) + j moves to row 2·j + s.
void PermuteHeadRows(uint8_t* rows, int64_t n_head, int64_t head_dim, size_t row_bytes, bool inverse);

// Writers for `tokenlora convert-adapter`. The adapter must be bound to
// `base` (its q/k rows in the base's order); the writers put them into the
// order the target format expects. Both write atomically. Tensors keep the
// matrices' types, except Q8_0: plain ggml Q8_0 blocks in GGUF (value_scale
// folded in), f32 in safetensors (which has no Q8_0).
void WritePeftAdapter(const LoraAdapter& adapter, const LlamaConfig& base, const std::string& dir);
void WriteGgufAdapter(const LoraAdapter& adapter, const LlamaConfig& base, const std::string& path);

// Hugging Face module key of (layer, kind): "model.layers.3.self_attn.q_proj".
std::string HfModuleKey(int layer, ModuleKind kind);
// GGUF weight name: "blk.3.attn_q.weight".
std::string GgufWeightName(int layer, ModuleKind kind);
// [n_out, n_in] of a module in `base`.
std::pair<int64_t, int64_t> ModuleShape(const LlamaConfig& base, ModuleKind kind);

}  // namespace tokenlora
