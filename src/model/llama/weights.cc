#include "model/llama/weights.h"

#include <functional>
#include <map>

#include "core/error.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include "kernels/kernels.h"

namespace tokenlora {

const char* ModuleName(ModuleKind m) {
  switch (m) {
    case ModuleKind::kQ: return "q_proj";
    case ModuleKind::kK: return "k_proj";
    case ModuleKind::kV: return "v_proj";
    case ModuleKind::kO: return "o_proj";
    case ModuleKind::kGate: return "gate_proj";
    case ModuleKind::kUp: return "up_proj";
    case ModuleKind::kDown: return "down_proj";
    case ModuleKind::kOutput: return "lm_head";
  }
  return "?";
}

namespace {

// Looks tensors up by name in one model file and checks their shapes.
class TensorLookup {
 public:
  using FindFn = std::function<const TensorView*(const std::string&)>;
  TensorLookup(std::string source, FindFn find) : source_(std::move(source)), find_(std::move(find)) {}

  const TensorView* Find(const std::string& name) const { return find_(name); }

  TensorView Require(const std::string& name, const std::vector<int64_t>& shape) const {
    const TensorView* t = find_(name);
    if (t == nullptr) {
      throw InputError("'" + source_ + "': missing tensor '" + name +
                       "' — incomplete file, or a model architecture other than the "
                       "metadata says?");
    }
    if (t->shape != shape) {
      throw InputError("'" + source_ + "': tensor '" + name + "' has shape " +
                       ShapeString(t->shape) + ", expected " + ShapeString(shape) +
                       " from the model's hyper-parameters — mismatched config and weights?");
    }
    if (t->dtype == DType::kI32) {
      throw InputError("'" + source_ + "': tensor '" + name +
                       "' has integer dtype i32; weights must be float or quantized");
    }
    return *t;
  }

  // A 1-D tensor converted to f32.
  std::vector<float> RequireVector(const std::string& name, int64_t n) const {
    const TensorView t = Require(name, {n});
    std::vector<float> out(static_cast<size_t>(n));
    kernels::scalar::DequantizeRow(t.dtype, t.data, out.data(), n);
    return out;
  }

  Linear RequireLinear(const std::string& name, ModuleKind kind, int layer, int64_t n_out,
                       int64_t n_in, const std::string& bias_name) const {
    Linear lin;
    lin.kind = kind;
    lin.layer = layer;
    lin.weight = Require(name, {n_out, n_in});
    if (!bias_name.empty()) lin.bias = RequireVector(bias_name, n_out);
    return lin;
  }

  const std::string& source() const { return source_; }

 private:
  std::string source_;
  FindFn find_;
};

struct NameScheme {
  std::function<std::string(int, const char*)> layer;  // (layer, role) -> name
  std::string token_embd, output_norm, output;
};

LlamaWeights BuildWeights(const TensorLookup& lookup, const NameScheme& names,
                          const LlamaConfig& c) {
  LlamaWeights w;
  const int64_t d = c.d_model, q = c.q_dim(), kv = c.kv_dim(), ff = c.d_ff, vocab = c.vocab_size;
  w.token_embd = lookup.Require(names.token_embd, {vocab, d});
  w.layers.resize(static_cast<size_t>(c.n_layers));
  for (int i = 0; i < c.n_layers; ++i) {
    LlamaLayer& l = w.layers[static_cast<size_t>(i)];
    auto n = [&](const char* role) { return names.layer(i, role); };
    auto bias = [&](const char* role) { return c.qkv_bias ? n(role) : std::string(); };
    l.attn_norm = lookup.RequireVector(n("attn_norm"), d);
    l.q = lookup.RequireLinear(n("q"), ModuleKind::kQ, i, q, d, bias("q_bias"));
    l.k = lookup.RequireLinear(n("k"), ModuleKind::kK, i, kv, d, bias("k_bias"));
    l.v = lookup.RequireLinear(n("v"), ModuleKind::kV, i, kv, d, bias("v_bias"));
    l.o = lookup.RequireLinear(n("o"), ModuleKind::kO, i, d, q, "");
    l.ffn_norm = lookup.RequireVector(n("ffn_norm"), d);
    l.gate = lookup.RequireLinear(n("gate"), ModuleKind::kGate, i, ff, d, "");
    l.up = lookup.RequireLinear(n("up"), ModuleKind::kUp, i, ff, d, "");
    l.down = lookup.RequireLinear(n("down"), ModuleKind::kDown, i, d, ff, "");
  }
  w.output_norm = lookup.RequireVector(names.output_norm, d);
  w.output.kind = ModuleKind::kOutput;
  w.output.layer = -1;
  if (c.tied_embeddings) {
    w.output.weight = w.token_embd;
  } else {
    w.output.weight = lookup.Require(names.output, {vocab, d});
  }
  return w;
}

}  // namespace

LlamaWeights WeightsFromGguf(const GgufFile& gguf, const LlamaConfig& config) {
  std::map<std::string, TensorView> views;
  for (const GgufTensorInfo& info : gguf.tensors()) views.emplace(info.name, gguf.View(info));
  TensorLookup lookup(gguf.path(), [&views](const std::string& name) -> const TensorView* {
    auto it = views.find(name);
    return it == views.end() ? nullptr : &it->second;
  });
  NameScheme names;
  names.layer = [](int i, const char* role) {
    static const std::pair<const char*, const char*> kRoles[] = {
        {"attn_norm", "attn_norm.weight"}, {"q", "attn_q.weight"},
        {"k", "attn_k.weight"},            {"v", "attn_v.weight"},
        {"o", "attn_output.weight"},       {"ffn_norm", "ffn_norm.weight"},
        {"gate", "ffn_gate.weight"},       {"up", "ffn_up.weight"},
        {"down", "ffn_down.weight"},       {"q_bias", "attn_q.bias"},
        {"k_bias", "attn_k.bias"},         {"v_bias", "attn_v.bias"}};
    for (const auto& [r, suffix] : kRoles) {
      if (std::string_view(r) == role) return "blk." + std::to_string(i) + "." + suffix;
    }
    TL_CHECK_MSG(false, role);
  };
  names.token_embd = "token_embd.weight";
  names.output_norm = "output_norm.weight";
  names.output = "output.weight";
  LlamaWeights w = BuildWeights(lookup, names, config);
  if (lookup.Find("rope_freqs.weight") != nullptr) {
    w.rope_freq_factors = lookup.RequireVector("rope_freqs.weight", config.head_dim / 2);
  }
  return w;
}

LlamaWeights WeightsFromSafetensors(const SafetensorsModel& st, const LlamaConfig& config,
                                    const std::string& dir) {
  TensorLookup lookup(dir, [&st](const std::string& name) { return st.Find(name); });
  NameScheme names;
  names.layer = [](int i, const char* role) {
    static const std::pair<const char*, const char*> kRoles[] = {
        {"attn_norm", "input_layernorm.weight"},
        {"q", "self_attn.q_proj.weight"},
        {"k", "self_attn.k_proj.weight"},
        {"v", "self_attn.v_proj.weight"},
        {"o", "self_attn.o_proj.weight"},
        {"ffn_norm", "post_attention_layernorm.weight"},
        {"gate", "mlp.gate_proj.weight"},
        {"up", "mlp.up_proj.weight"},
        {"down", "mlp.down_proj.weight"},
        {"q_bias", "self_attn.q_proj.bias"},
        {"k_bias", "self_attn.k_proj.bias"},
        {"v_bias", "self_attn.v_proj.bias"}};
    for (const auto& [r, suffix] : kRoles) {
      if (std::string_view(r) == role) return "model.layers." + std::to_string(i) + "." + suffix;
    }
    TL_CHECK_MSG(false, role);
  };
  names.token_embd = "model.embed_tokens.weight";
  names.output_norm = "model.norm.weight";
  names.output = "lm_head.weight";
  LlamaConfig c = config;
  // Some checkpoints tie embeddings without saying so in config.json.
  if (!c.tied_embeddings && st.Find("lm_head.weight") == nullptr) c.tied_embeddings = true;
  return BuildWeights(lookup, names, c);
}

}  // namespace tokenlora
