#include "lora/adapter.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>

#include "core/error.h"
#include "core/number_text.h"
#include "io/io_util.h"
#include "kernels/kernels.h"
#include "kernels/quantize.h"
#include "lora/adapter_internal.h"

namespace tokenlora {
namespace fs = std::filesystem;
using io_internal::HumanBytes;
using io_internal::Quote;

// ----------------------------------------------------------- storage types

DType ParseAdapterStorage(const std::string& text) {
  std::string lower = text;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (DType t : {DType::kF32, DType::kF16, DType::kQ8_0}) {
    if (lower == AdapterStorageName(t)) return t;
  }
  throw InputError("unknown adapter storage type " + Quote(text) + "; expected f32, f16 or q8_0");
}

const char* AdapterStorageName(DType storage) {
  switch (storage) {
    case DType::kF32:
      return "f32";
    case DType::kF16:
      return "f16";
    case DType::kQ8_0:
      return "q8_0";
    default:
      return "?";
  }
}

// ---------------------------------------------------------------- LoraMatrix

DType LoraMatrix::StoredDType(DType storage, int64_t cols) {
  TL_CHECK(storage == DType::kF32 || storage == DType::kF16 || storage == DType::kQ8_0);
  if (storage == DType::kQ8_0 && cols % Info(DType::kQ8_0).block_size != 0) return DType::kF16;
  return storage;
}

LoraMatrix LoraMatrix::FromF32(const float* values, int64_t rows, int64_t cols, DType storage) {
  LoraMatrix m;
  m.dtype = StoredDType(storage, cols);
  m.rows = rows;
  m.cols = cols;
  const size_t n = static_cast<size_t>(rows * cols);
  m.data.resize(static_cast<size_t>(rows) * RowBytes(m.dtype, cols));
  if (m.dtype == DType::kF32) {
    if (n > 0) std::memcpy(m.data.data(), values, n * sizeof(float));
  } else if (m.dtype == DType::kF16) {
    for (size_t i = 0; i < n; ++i) {
      const uint16_t h = F32ToF16(values[i]);
      std::memcpy(m.data.data() + 2 * i, &h, 2);
    }
  } else {
    // Q8_0 of values / value_scale, value_scale = 2^(e - 17) for the largest
    // magnitude M = f·2^e (f in [0.5, 1)): M / value_scale is in [2^16, 2^17),
    // so the largest block scale (≈ M / value_scale / 127) is about 2^9, and
    // every block whose largest magnitude is above 2^-24·M keeps a normal
    // f16 scale. Dividing by a power of two is exact.
    float amax = 0;
    for (size_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(values[i]));
    if (amax > 0) {
      int e = 0;
      std::frexp(amax, &e);
      m.value_scale = std::ldexp(1.0f, std::max(e - 17, -126));
    }
    const float inverse = 1.0f / m.value_scale;
    const size_t row_bytes = RowBytes(m.dtype, cols);
    std::vector<float> row(static_cast<size_t>(cols));
    for (int64_t r = 0; r < rows; ++r) {
      const float* src = values + r * cols;
      for (int64_t c = 0; c < cols; ++c) row[static_cast<size_t>(c)] = src[c] * inverse;
      kernels::QuantizeRow(m.dtype, row.data(), m.data.data() + static_cast<size_t>(r) * row_bytes, cols);
    }
  }
  return m;
}

LoraMatrix LoraMatrix::FromView(const TensorView& t, DType storage) {
  TL_CHECK(t.shape.size() == 2);
  const int64_t rows = t.shape[0], cols = t.shape[1];
  std::vector<float> f32(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r)
    kernels::DequantizeRow(t.dtype, t.RowPtr(r), &f32[static_cast<size_t>(r * cols)], cols);
  return FromF32(f32.data(), rows, cols, storage);
}

void LoraMatrix::RowToF32(int64_t r, float* out) const {
  const uint8_t* row = data.data() + static_cast<size_t>(r) * RowBytes(dtype, cols);
  kernels::DequantizeRow(dtype, row, out, cols);
  if (value_scale != 1.0f) {
    for (int64_t c = 0; c < cols; ++c) out[c] *= value_scale;
  }
}

std::vector<float> LoraMatrix::ToF32() const {
  std::vector<float> out(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r) RowToF32(r, &out[static_cast<size_t>(r * cols)]);
  return out;
}

TensorView LoraMatrix::View() const {
  TensorView v;
  v.dtype = dtype;
  v.shape = {rows, cols};
  v.data = data.data();
  return v;
}

// --------------------------------------------------------------- LoraAdapter

const LoraModule* LoraAdapter::Find(int layer, ModuleKind kind) const {
  auto it = std::lower_bound(modules.begin(), modules.end(), std::make_pair(layer, kind),
                             [](const LoraModule& m, const std::pair<int, ModuleKind>& key) {
                               return std::make_pair(m.layer, m.kind) < key;
                             });
  return it != modules.end() && it->layer == layer && it->kind == kind ? &*it : nullptr;
}

std::string LoraAdapter::TargetNames() const {
  bool seen[kNumLoraKinds] = {};
  for (const LoraModule& m : modules) seen[LoraKindIndex(m.kind)] = true;
  std::string s;
  for (int k = 0; k < kNumLoraKinds; ++k) {
    if (!seen[k]) continue;
    if (!s.empty()) s += ',';
    s += ModuleName(static_cast<ModuleKind>(k));
  }
  return s;
}

size_t LoraAdapter::NumBytes() const {
  size_t n = 0;
  for (const LoraModule& m : modules) n += m.a.data.size() + m.b.data.size();
  return n;
}

std::string LoraAdapter::Describe() const {
  std::map<int, bool> layers;
  std::vector<DType> a_types, b_types;  // distinct, in order of appearance
  std::set<int> f16_b_ranks;            // ranks whose lora_B is f16
  auto note = [](std::vector<DType>& types, DType t) {
    if (std::find(types.begin(), types.end(), t) == types.end()) types.push_back(t);
  };
  for (const LoraModule& m : modules) {
    layers[m.layer] = true;
    note(a_types, m.a.dtype);
    note(b_types, m.b.dtype);
    if (m.b.dtype == DType::kF16) f16_b_ranks.insert(m.rank);
  }
  auto names = [](const std::vector<DType>& types) {
    std::string s;
    for (DType t : types) s += (s.empty() ? "" : "/") + std::string(Name(t));
    return s.empty() ? std::string("f32") : s;
  };
  std::string storage = a_types == b_types && a_types.size() <= 1
                            ? names(a_types)
                            : "lora_A " + names(a_types) + ", lora_B " + names(b_types);
  const bool q8 = std::find(a_types.begin(), a_types.end(), DType::kQ8_0) != a_types.end() ||
                  std::find(b_types.begin(), b_types.end(), DType::kQ8_0) != b_types.end();
  if (q8 && (a_types.size() > 1 || b_types != a_types)) {
    // The Q8_0 fallback: a row that is not whole 32-value blocks stays f16.
    std::string ranks;
    for (int r : f16_b_ranks) ranks += (ranks.empty() ? "r=" : ",") + std::to_string(r);
    storage +=
        " (f16 where rows are not whole 32-value Q8_0 blocks" + (ranks.empty() ? "" : ": " + ranks) + ")";
  }
  return "r=" + std::to_string(rank) + " alpha=" + GeneralNumber(alpha) + (use_rslora ? " rslora" : "") + " " +
         TargetNames() + " on " + std::to_string(layers.size()) + " layers, " + storage + ", " +
         HumanBytes(NumBytes());
}

// ------------------------------------------------------------------- loading

LoraAdapter LoadAdapter(const std::string& name, const std::string& path, const AdapterLoadOptions& options) {
  if (options.storage != DType::kF32 && options.storage != DType::kF16 && options.storage != DType::kQ8_0) {
    throw InputError(lora_internal::Who(name, path) +
                     ": adapter storage type must be f32, f16 or q8_0, got " +
                     std::string(Name(options.storage)));
  }
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    throw InputError(lora_internal::Who(name, path) +
                     ": no such file or directory — pass a PEFT adapter directory "
                     "(adapter_config.json + adapter_model.safetensors) or a llama.cpp LoRA .gguf");
  }
  if (fs::is_regular_file(path, ec) && fs::path(path).extension() == ".gguf") {
    return LoadGgufAdapter(name, path, options);
  }
  return LoadPeftAdapter(name, path, options);
}

// ---------------------------------------------------------- binding to a base

std::string HfModuleKey(int layer, ModuleKind kind) {
  const bool mlp = kind == ModuleKind::kGate || kind == ModuleKind::kUp || kind == ModuleKind::kDown;
  return "model.layers." + std::to_string(layer) + (mlp ? ".mlp." : ".self_attn.") + ModuleName(kind);
}

std::string GgufWeightName(int layer, ModuleKind kind) {
  return "blk." + std::to_string(layer) + "." + lora_internal::GgufRole(kind) + ".weight";
}

std::pair<int64_t, int64_t> ModuleShape(const LlamaConfig& c, ModuleKind kind) {
  switch (kind) {
    case ModuleKind::kQ:
      return {c.q_dim(), c.d_model};
    case ModuleKind::kK:
    case ModuleKind::kV:
      return {c.kv_dim(), c.d_model};
    case ModuleKind::kO:
      return {c.d_model, c.q_dim()};
    case ModuleKind::kGate:
    case ModuleKind::kUp:
      return {c.d_ff, c.d_model};
    case ModuleKind::kDown:
      return {c.d_model, c.d_ff};
    case ModuleKind::kOutput:
      return {c.vocab_size, c.d_model};
  }
  TL_CHECK(false);
}

QkRowOrder BaseQkRowOrder(const LlamaConfig& base) {
  return base.rope_style == RopeStyle::kAdjacentPairs ? QkRowOrder::kGgml : QkRowOrder::kHuggingFace;
}

void PermuteHeadRows(uint8_t* rows, int64_t n_head, int64_t head_dim, size_t row_bytes, bool inverse) {
  const int64_t half = head_dim / 2;
  std::vector<uint8_t> head(static_cast<size_t>(head_dim) * row_bytes);
  for (int64_t h = 0; h < n_head; ++h) {
    uint8_t* base = rows + static_cast<size_t>(h * head_dim) * row_bytes;
    std::memcpy(head.data(), base, head.size());
    for (int64_t s = 0; s < 2; ++s) {
      for (int64_t j = 0; j < half; ++j) {
        const int64_t hf = s * half + j, gg = 2 * j + s;  // Hugging Face row, ggml row
        const int64_t dst = inverse ? hf : gg, src = inverse ? gg : hf;
        std::memcpy(base + static_cast<size_t>(dst) * row_bytes,
                    head.data() + static_cast<size_t>(src) * row_bytes, row_bytes);
      }
    }
  }
}

namespace lora_internal {

namespace {
const char* const kGgufRoles[kNumLoraKinds] = {"attn_q",   "attn_k", "attn_v",  "attn_output",
                                               "ffn_gate", "ffn_up", "ffn_down"};
}  // namespace

std::vector<std::string_view> SplitDots(std::string_view s) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (size_t dot; (dot = s.find('.', start)) != std::string_view::npos; start = dot + 1) {
    parts.push_back(s.substr(start, dot - start));
  }
  parts.push_back(s.substr(start));
  return parts;
}

std::optional<int> ParseLayerIndex(std::string_view s) {
  if (s.empty() || s.size() > 6) return std::nullopt;
  int v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}

std::optional<ModuleKind> KindFromHfName(std::string_view name) {
  for (int k = 0; k < kNumLoraKinds; ++k) {
    if (name == ModuleName(static_cast<ModuleKind>(k))) return static_cast<ModuleKind>(k);
  }
  return std::nullopt;
}

std::optional<ModuleKind> KindFromGgufRole(std::string_view role) {
  for (int k = 0; k < kNumLoraKinds; ++k) {
    if (role == kGgufRoles[k]) return static_cast<ModuleKind>(k);
  }
  return std::nullopt;
}

const char* GgufRole(ModuleKind kind) {
  TL_CHECK(LoraKindIndex(kind) < kNumLoraKinds);
  return kGgufRoles[LoraKindIndex(kind)];
}

std::string Who(const std::string& name, const std::string& path) {
  return "adapter " + Quote(name) + " (" + Quote(path, 512) + ")";
}

float LoraScale(float alpha, int rank, bool use_rslora) {
  return use_rslora ? alpha / std::sqrt(static_cast<float>(rank)) : alpha / static_cast<float>(rank);
}

LoraMatrix ReadLoraTensor(const TensorView& t, DType dtype, const std::string& who,
                          const std::string& tensor_name) {
  if (t.dtype == DType::kI32) {
    throw InputError(who + ": tensor " + Quote(tensor_name) +
                     " has integer dtype i32; LoRA weights are float");
  }
  LoraMatrix m = LoraMatrix::FromView(t, DType::kF32);
  const float* v = reinterpret_cast<const float*>(m.data.data());
  for (int64_t i = 0; i < m.rows * m.cols; ++i) {
    if (!std::isfinite(v[i])) {
      throw InputError(who + ": tensor " + Quote(tensor_name) + " holds " +
                       (std::isnan(v[i]) ? "NaN" : "Inf") + " at element " + std::to_string(i) +
                       " — corrupt file, or a diverged training run?");
    }
  }
  if (dtype == DType::kF32) return m;
  if (LoraMatrix::StoredDType(dtype, m.cols) == DType::kF16) {
    CheckFitsF16({v, static_cast<size_t>(m.rows * m.cols)}, who + ": tensor " + Quote(tensor_name));
  }
  return LoraMatrix::FromF32(v, m.rows, m.cols, dtype);
}

void CheckFitsF16(std::span<const float> values, const std::string& what) {
  constexpr float kF16Max = 65504.0f;
  for (size_t i = 0; i < values.size(); ++i) {
    if (std::fabs(values[i]) > kF16Max) {
      throw InputError(what + ": element " + std::to_string(i) + " is " + GeneralNumber(values[i]) +
                       ", beyond the f16 range (|x| <= 65504), so f16 storage would make it Inf — keep it f32 "
                       "(--adapter-type f32 / --outtype f32)");
    }
  }
}

FileTensor EncodeForFile(const LoraMatrix& m, bool gguf) {
  if (m.dtype != DType::kQ8_0) return {m.dtype, m.data};
  FileTensor out;
  out.dtype = gguf ? DType::kQ8_0 : DType::kF32;
  const size_t row_bytes = RowBytes(out.dtype, m.cols);
  out.bytes.resize(static_cast<size_t>(m.rows) * row_bytes);
  std::vector<float> row(static_cast<size_t>(m.cols));
  for (int64_t r = 0; r < m.rows; ++r) {
    m.RowToF32(r, row.data());
    kernels::QuantizeRow(out.dtype, row.data(), out.bytes.data() + static_cast<size_t>(r) * row_bytes,
                         m.cols);
  }
  return out;
}

void SortModules(LoraAdapter& adapter, const std::string& who) {
  auto key = [](const LoraModule& m) { return std::make_pair(m.layer, m.kind); };
  std::sort(adapter.modules.begin(), adapter.modules.end(),
            [&](const LoraModule& x, const LoraModule& y) { return key(x) < key(y); });
  for (size_t i = 1; i < adapter.modules.size(); ++i) {
    if (key(adapter.modules[i]) == key(adapter.modules[i - 1])) {
      throw InputError(who + ": layer " + std::to_string(adapter.modules[i].layer) + " " +
                       ModuleName(adapter.modules[i].kind) + " appears twice — corrupt adapter?");
    }
  }
}

int MostCommonRank(const LoraAdapter& adapter) {
  std::map<int, int> count;
  for (const LoraModule& m : adapter.modules) ++count[m.rank];
  int best = adapter.rank, best_n = 0;
  for (const auto& [r, n] : count) {
    if (n > best_n) best = r, best_n = n;
  }
  return best;
}

LoraMatrix BRowsInOrder(const LoraModule& m, const LlamaConfig& base, QkRowOrder from, QkRowOrder to) {
  LoraMatrix b = m.b;
  if (from == to || (m.kind != ModuleKind::kQ && m.kind != ModuleKind::kK)) return b;
  const int64_t n_head = m.kind == ModuleKind::kQ ? base.n_heads : base.n_kv_heads;
  TL_CHECK(b.rows == n_head * base.head_dim);
  PermuteHeadRows(b.data.data(), n_head, base.head_dim, RowBytes(b.dtype, b.cols),
                  /*inverse=*/to == QkRowOrder::kHuggingFace);
  return b;
}

}  // namespace lora_internal

void ReorderQkRows(LoraAdapter& adapter, const LlamaConfig& base, QkRowOrder to) {
  for (LoraModule& m : adapter.modules) m.b = lora_internal::BRowsInOrder(m, base, adapter.qk_rows, to);
  adapter.qk_rows = to;
}

void BindToBase(LoraAdapter& adapter, const LlamaConfig& base, const std::string& base_path) {
  const std::string who = lora_internal::Who(adapter.name, adapter.path);
  const std::string hint = " — adapter for a different base model?";
  if (!adapter.arch.empty() && adapter.arch != base.arch) {
    throw InputError(who + ": made for architecture '" + adapter.arch + "' but the base " +
                     Quote(base_path, 512) + " is '" + base.arch + "'" + hint);
  }
  if (adapter.modules.empty()) throw InputError(who + ": holds no LoRA tensors — empty or corrupt adapter?");
  for (const LoraModule& m : adapter.modules) {
    const std::string what = "layer " + std::to_string(m.layer) + " " + ModuleName(m.kind);
    if (m.layer >= base.n_layers) {
      throw InputError(who + ": has " + what + " but the base " + Quote(base_path, 512) + " has " +
                       std::to_string(base.n_layers) + " layers (0.." + std::to_string(base.n_layers - 1) +
                       ")" + hint);
    }
    const auto [n_out, n_in] = ModuleShape(base, m.kind);
    const std::vector<int64_t> want_a = {m.rank, n_in}, want_b = {n_out, m.rank};
    const std::vector<int64_t> got_a = {m.a.rows, m.a.cols}, got_b = {m.b.rows, m.b.cols};
    if (got_a != want_a) {
      throw InputError(who + ": " + what + " lora_A is " + ShapeString(got_a) + ", base expects " +
                       ShapeString(want_a) + " (n_in " + std::to_string(n_in) + ")" + hint);
    }
    if (got_b != want_b) {
      throw InputError(who + ": " + what + " lora_B is " + ShapeString(got_b) + ", base expects " +
                       ShapeString(want_b) + " (n_out " + std::to_string(n_out) + ")" + hint);
    }
  }
  if (adapter.declared_target) {
    for (int l = 0; l < base.n_layers; ++l) {
      for (int k = 0; k < kNumLoraKinds; ++k) {
        const ModuleKind kind = static_cast<ModuleKind>(k);
        if (adapter.Find(l, kind) == nullptr && adapter.declared_target(HfModuleKey(l, kind))) {
          throw InputError(who + ": adapter_config.json targets " + HfModuleKey(l, kind) +
                           " but the weights have no lora_A/lora_B for it — incomplete "
                           "adapter_model.safetensors, or a base with more layers than the adapter's?");
        }
      }
    }
  }
  ReorderQkRows(adapter, base, BaseQkRowOrder(base));
}

}  // namespace tokenlora
