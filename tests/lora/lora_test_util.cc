#include "lora_test_util.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "io/gguf.h"
#include "model/llama/forward.h"
#include "tiny_model.h"

namespace tokenlora::testing {
namespace {

// splitmix64, as tiny_model.cc: the same bytes on every platform.
uint64_t Next(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
float Uniform(uint64_t& s, float a) {
  return static_cast<float>((static_cast<double>(Next(s) >> 11) / 9007199254740992.0) * 2 - 1) * a;
}

}  // namespace

LoraAdapter RandomAdapter(const LlamaConfig& base, const std::string& name, int rank, float alpha,
                          const std::vector<ModuleKind>& kinds, uint64_t seed, DType storage,
                          bool use_rslora) {
  LoraAdapter a;
  a.name = name;
  a.path = "<memory:" + name + ">";
  a.format = "peft";
  a.rank = rank;
  a.alpha = alpha;
  a.use_rslora = use_rslora;
  uint64_t s = seed;
  for (int l = 0; l < base.n_layers; ++l) {
    for (ModuleKind k : kinds) {
      const auto [n_out, n_in] = ModuleShape(base, k);
      std::vector<float> va(static_cast<size_t>(rank * n_in)), vb(static_cast<size_t>(n_out * rank));
      for (float& v : va) v = Uniform(s, 1.0f / std::sqrt(static_cast<float>(n_in)));
      for (float& v : vb) v = Uniform(s, 0.1f);
      LoraModule m;
      m.layer = l;
      m.kind = k;
      m.rank = rank;
      m.alpha = alpha;
      m.scale = use_rslora ? alpha / std::sqrt(static_cast<float>(rank)) : alpha / static_cast<float>(rank);
      m.a = LoraMatrix::FromF32(va.data(), rank, n_in, storage);
      m.b = LoraMatrix::FromF32(vb.data(), n_out, rank, storage);
      a.modules.push_back(std::move(m));
    }
  }
  std::sort(a.modules.begin(), a.modules.end(), [](const LoraModule& x, const LoraModule& y) {
    return std::make_pair(x.layer, x.kind) < std::make_pair(y.layer, y.kind);
  });
  return a;
}

std::string WriteTinyLlamaSafetensors(const std::string& dir) {
  return WriteTinyModel({"llama", "safetensors", DType::kF32}, dir);
}

std::string WriteTinyLlamaGgufPermuted(const std::string& dir) {
  // tiny_model.cc writes the same values under both formats without the
  // converter's permutation; apply it here so the GGUF file is the
  // safetensors model as convert_hf_to_gguf would have written it.
  const std::string plain = WriteTinyModel({"llama", "gguf", DType::kF32}, dir);
  const GgufFile src = GgufFile::Open(plain);
  const LlamaConfig c = ConfigFromGguf(src);
  GgufWriter g;
  for (const std::string& key : src.metadata_order()) g.SetValue(key, src.metadata().at(key));
  for (const GgufTensorInfo& info : src.tensors()) {
    const TensorView t = src.View(info);
    std::vector<uint8_t> bytes(static_cast<const uint8_t*>(t.data),
                               static_cast<const uint8_t*>(t.data) + t.NumBytes());
    const bool q = info.name.ends_with("attn_q.weight"), k = info.name.ends_with("attn_k.weight");
    if (q || k) {
      PermuteHeadRows(bytes.data(), q ? c.n_heads : c.n_kv_heads, c.head_dim,
                      RowBytes(info.dtype, info.shape[1]),
                      /*inverse=*/false);
    }
    g.AddTensor(info.name, info.dtype, info.shape, bytes.data(), bytes.size());
  }
  const std::string path = dir + "/tiny_llama_permuted_f32.gguf";
  g.Write(path);
  return path;
}

std::vector<float> RunLogits(const Model& model, const std::vector<int32_t>& ids, const ProjectionHook* hook,
                             ThreadPool& pool, int max_batch) {
  KvCache kv(model.config(), static_cast<int>(ids.size()));
  LlamaForward forward(model, max_batch);
  std::vector<float> logits(ids.size() * static_cast<size_t>(model.config().vocab_size));
  forward.Run(ids, kv, ForwardContext{&pool, hook}, logits.data(), /*all_logits=*/true);
  return logits;
}

float MaxAbsDiff(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return INFINITY;
  float m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

::testing::AssertionResult Contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "expected to find \"" << part << "\" in:\n  " << text;
}

std::vector<int32_t> LoraPromptIds() { return {256, 72, 101, 108, 108, 111, 44, 32}; }

}  // namespace tokenlora::testing
