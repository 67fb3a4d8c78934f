#include "lora/merge.h"

#include <cmath>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "core/number_text.h"
#include "io/gguf.h"
#include "io/io_util.h"
#include "io/safetensors.h"
#include "kernels/kernels.h"
#include "kernels/quantize.h"
#include "lora/adapter_internal.h"

namespace tokenlora {
namespace fs = std::filesystem;
using io_internal::Quote;

namespace {
constexpr int kMax = AdapterBank::kMaxAdapters;

struct ModuleId {
  int layer = -1;
  ModuleKind kind = ModuleKind::kQ;
};

// (layer, kind) of a projection weight named the GGUF way (blk.N.attn_q.weight)
// or the Hugging Face way (model.layers.N.self_attn.q_proj.weight).
std::optional<ModuleId> ParseWeightName(const std::string& name) {
  using namespace lora_internal;
  const std::vector<std::string_view> p = SplitDots(name);
  std::optional<int> layer;
  std::optional<ModuleKind> kind;
  if (p.size() == 4 && p[0] == "blk" && p[3] == "weight") {
    layer = ParseLayerIndex(p[1]);
    kind = KindFromGgufRole(p[2]);
  } else if (p.size() == 6 && p[0] == "model" && p[1] == "layers" && p[5] == "weight" &&
             (p[3] == "self_attn" || p[3] == "mlp")) {
    layer = ParseLayerIndex(p[2]);
    kind = KindFromHfName(p[4]);
  }
  if (!layer || !kind) return std::nullopt;
  return ModuleId{*layer, *kind};
}

// Row-major transpose: in [rows, cols] → [cols, rows].
std::vector<float> Transpose(const std::vector<float>& in, int64_t rows, int64_t cols) {
  std::vector<float> out(in.size());
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c)
      out[static_cast<size_t>(c * rows + r)] = in[static_cast<size_t>(r * cols + c)];
  }
  return out;
}

// W + ΔW, encoded as `out_type`.
std::vector<uint8_t> MergedBytes(const TensorView& w, const std::vector<float>& delta, DType out_type) {
  const int64_t rows = w.shape[0], cols = w.shape[1];
  const size_t row_bytes = RowBytes(out_type, cols);
  std::vector<uint8_t> out(static_cast<size_t>(rows) * row_bytes);
  std::vector<float> row(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; ++r) {
    kernels::DequantizeRow(w.dtype, w.RowPtr(r), row.data(), cols);
    kernels::AddInPlace(row.data(), &delta[static_cast<size_t>(r * cols)], cols);
    kernels::QuantizeRow(out_type, row.data(), out.data() + static_cast<size_t>(r) * row_bytes, cols);
  }
  return out;
}

std::string MixtureText(const std::vector<std::pair<std::string, float>>& mixture, MixMode mode) {
  std::string s;
  for (const auto& [name, w] : mixture) {
    if (!s.empty()) s += ',';
    s += name + "=" + GeneralNumber(w);
  }
  return s + " (" + MixModeName(mode) + ")";
}

}  // namespace

std::vector<float> MixtureDelta(const AdapterBank& bank, const float* w, MixMode mode, int layer,
                                ModuleKind kind, ThreadPool& pool) {
  std::vector<const LoraModule*> mods;
  std::vector<float> ws;  // w_i·s_i
  for (uint64_t m = bank.TargetMask(layer, kind); m != 0; m &= m - 1) {
    const int slot = __builtin_ctzll(m);
    if (w[slot] == 0) continue;
    mods.push_back(bank.Module(slot, layer, kind));
    ws.push_back(w[slot] * mods.back()->scale);
  }
  if (mods.empty()) return {};
  const int64_t n_in = mods[0]->a.cols, n_out = mods[0]->b.rows;
  // ΔW = Bm·Am with Bm [n_out, R] and Am [R, n_in] per mode (see mixer.h).
  int64_t R = 0;
  if (mode == MixMode::kExact) {
    for (const LoraModule* m : mods) R += m->rank;
  } else {
    R = mods[0]->rank;  // equal ranks: checked by LoraMixer::SetTokenWeights
  }
  std::vector<float> am(static_cast<size_t>(R * n_in), 0.0f), bm(static_cast<size_t>(n_out * R), 0.0f);
  int64_t off = 0;
  for (size_t i = 0; i < mods.size(); ++i) {
    const std::vector<float> a = mods[i]->a.ToF32(), b = mods[i]->b.ToF32();
    const int64_t r = mods[i]->rank;
    float ca = 1, cb = 1;  // coefficients of A_i and B_i
    switch (mode) {
      case MixMode::kExact:
        cb = ws[i];
        break;
      case MixMode::kPeftLinear:
        ca = std::copysign(std::sqrt(std::fabs(ws[i])), ws[i]);
        cb = std::sqrt(std::fabs(ws[i]));
        break;
      case MixMode::kPeft04Linear:
        ca = ws[i];
        break;
    }
    for (int64_t k = 0; k < r; ++k) {
      for (int64_t c = 0; c < n_in; ++c)
        am[static_cast<size_t>((off + k) * n_in + c)] += ca * a[static_cast<size_t>(k * n_in + c)];
    }
    for (int64_t o = 0; o < n_out; ++o) {
      for (int64_t k = 0; k < r; ++k)
        bm[static_cast<size_t>(o * R + off + k)] += cb * b[static_cast<size_t>(o * r + k)];
    }
    if (mode == MixMode::kExact) off += r;
  }
  // MatMul computes x·Wᵀ: with x = Bm [n_out, R] and W = Amᵀ [n_in, R] that is Bm·Am.
  const std::vector<float> am_t = Transpose(am, R, n_in);
  TensorView w_view;
  w_view.dtype = DType::kF32;
  w_view.shape = {n_in, R};
  w_view.data = am_t.data();
  std::vector<float> delta(static_cast<size_t>(n_out * n_in));
  kernels::MatMul(w_view, bm.data(), n_out, delta.data(), pool);
  return delta;
}

MergeResult MergeMixture(const AdapterBank& bank, const std::vector<std::pair<std::string, float>>& mixture,
                         const MergeOptions& options, const std::string& out, ThreadPool& pool) {
  if (options.merged_type && *options.merged_type != DType::kF32 && *options.merged_type != DType::kF16) {
    throw InputError("merged tensors can be stored as f32, f16, or the base's own type; got " +
                     std::string(Name(*options.merged_type)));
  }
  // The mixer's checks (names, finite weights, equal ranks for linear modes)
  // and its weight threshold apply to merging too.
  LoraMixer check(bank, MixerOptions{.mode = options.mode});
  check.SetMixture(mixture);
  float w[kMax] = {};
  for (const auto& [name, weight] : mixture) w[bank.Require(name)] += weight;
  for (float& v : w) {
    if (std::fabs(v) <= MixerOptions{}.min_weight) v = 0;
  }

  const Model& base = bank.base();
  std::error_code ec;
  const fs::path base_path = fs::absolute(base.path(), ec);
  MergeResult result;
  auto merged = [&](const TensorView& t, const std::string& name) -> std::optional<std::vector<uint8_t>> {
    const std::optional<ModuleId> id = ParseWeightName(name);
    if (!id || t.shape.size() != 2) return std::nullopt;
    const std::vector<float> delta = MixtureDelta(bank, w, options.mode, id->layer, id->kind, pool);
    if (delta.empty()) return std::nullopt;
    ++result.merged_tensors;
    return MergedBytes(t, delta, options.merged_type.value_or(t.dtype));
  };

  if (base.format() == "gguf") {
    if (fs::path(out).extension() != ".gguf") {
      throw InputError("merge: the base " + Quote(base.path(), 512) +
                       " is GGUF, so the output must be a .gguf file, got " + Quote(out, 512));
    }
    if (fs::absolute(out, ec) == base_path)
      throw InputError("merge: -o " + Quote(out, 512) + " would overwrite the base");
    const GgufFile src = GgufFile::Open(base.path());
    GgufWriter g;
    for (const std::string& key : src.metadata_order()) g.SetValue(key, src.metadata().at(key));
    g.SetString("tokenlora.merged_adapters", MixtureText(mixture, options.mode));
    for (const GgufTensorInfo& info : src.tensors()) {
      const TensorView t = src.View(info);
      if (auto bytes = merged(t, info.name)) {
        const DType dt = options.merged_type.value_or(info.dtype);
        g.AddTensor(info.name, dt, info.shape, bytes->data(), bytes->size());
      } else {
        g.AddTensor(info.name, info.dtype, info.shape, t.data, t.NumBytes());
      }
    }
    g.Write(out);
    result.path = out;
    return result;
  }

  // Hugging Face directory.
  const fs::path src_dir = fs::is_regular_file(base_path, ec) ? base_path.parent_path() : base_path;
  fs::path out_dir = out;
  if (fs::path(out).extension() == ".safetensors") {
    if (fs::path(out).filename() != "model.safetensors") {
      throw InputError("merge: a Hugging Face model is loaded from DIR/model.safetensors; name the output " +
                       Quote((fs::path(out).parent_path() / "model.safetensors").string(), 512) +
                       " or pass the directory");
    }
    out_dir = fs::path(out).parent_path();
  } else if (fs::path(out).extension() == ".gguf") {
    throw InputError(
        "merge: the base " + Quote(base.path(), 512) +
        " is a Hugging Face model; the output is a directory (or DIR/model.safetensors), not .gguf");
  }
  if (out_dir.empty()) out_dir = ".";
  if (fs::absolute(out_dir, ec).lexically_normal() == src_dir.lexically_normal()) {
    throw InputError("merge: the output directory " + Quote(out_dir.string(), 512) +
                     " is the base's own directory");
  }
  fs::create_directories(out_dir, ec);
  if (ec) throw InputError("merge: cannot create " + Quote(out_dir.string(), 512) + ": " + ec.message());
  const SafetensorsModel src = SafetensorsModel::OpenDirectory(src_dir.string());
  SafetensorsWriter st;
  st.SetMetadata("format", "pt");
  st.SetMetadata("tokenlora.merged_adapters", MixtureText(mixture, options.mode));
  for (const TensorView* t : src.All()) {
    if (auto bytes = merged(*t, t->name)) {
      st.AddTensor(t->name, options.merged_type.value_or(t->dtype), t->shape, bytes->data(), bytes->size());
    } else {
      st.AddTensor(t->name, t->dtype, t->shape, t->data, t->NumBytes());
    }
  }
  result.path = (out_dir / "model.safetensors").string();
  st.Write(result.path);
  for (const char* side : {"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                           "special_tokens_map.json", "tokenizer.model", "chat_template.jinja"}) {
    if (fs::exists(src_dir / side, ec)) {
      fs::copy_file(src_dir / side, out_dir / side, fs::copy_options::overwrite_existing, ec);
      if (ec)
        throw InputError("merge: cannot copy " + std::string(side) + " to " + Quote(out_dir.string(), 512) +
                         ": " + ec.message());
    }
  }
  return result;
}

void ConvertAdapter(const std::string& in, const std::string& out, const Model& base, DType storage) {
  if (storage == DType::kQ8_0 && fs::path(out).extension() != ".gguf") {
    throw InputError("convert-adapter: q8_0 tensors need a llama.cpp LoRA .gguf output; " + Quote(out, 512) +
                     " would be a PEFT directory, whose adapter_model.safetensors holds f32/f16/bf16 only");
  }
  LoraAdapter adapter = LoadAdapter(fs::path(in).filename().string(), in, {storage});
  BindToBase(adapter, base.config(), base.path());
  std::error_code ec;
  if (fs::absolute(out, ec) == fs::absolute(in, ec)) {
    throw InputError("convert-adapter: the output " + Quote(out, 512) + " is the input");
  }
  if (fs::path(out).extension() == ".gguf") {
    WriteGgufAdapter(adapter, base.config(), out);
  } else {
    WritePeftAdapter(adapter, base.config(), out);
  }
}

}  // namespace tokenlora
