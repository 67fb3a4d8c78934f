#include "tiny_model.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "io/gguf.h"
#include "io/safetensors.h"
#include "kernels/quantize.h"

namespace tokenlora::testing {
namespace {

constexpr int kLayers = 2, kDModel = 256, kHeads = 4, kKvHeads = 2, kHeadDim = 64, kDff = 512,
              kVocab = 512, kContext = 256;

// splitmix64: a portable generator (std distributions differ across libraries).
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t Next() {
    uint64_t z = (s_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  float Uniform(float a) {  // in [-a, a)
    return static_cast<float>((static_cast<double>(Next() >> 11) / 9007199254740992.0) * 2 - 1) * a;
  }

 private:
  uint64_t s_;
};

std::vector<float> RandomMatrix(Rng& rng, int64_t rows, int64_t cols, float scale) {
  std::vector<float> m(static_cast<size_t>(rows * cols));
  for (float& v : m) v = rng.Uniform(scale);
  return m;
}

std::vector<float> NormWeights(Rng& rng, int64_t n) {
  std::vector<float> w(static_cast<size_t>(n));
  for (float& v : w) v = 1.0f + rng.Uniform(0.2f);
  return w;
}

// Encodes f32 values as `dtype` bytes (quantizing block types).
std::vector<uint8_t> Encode(const std::vector<float>& values, int64_t cols, DType dtype) {
  const int64_t rows = static_cast<int64_t>(values.size()) / cols;
  std::vector<uint8_t> out(static_cast<size_t>(rows) * RowBytes(dtype, cols));
  for (int64_t r = 0; r < rows; ++r) {
    uint8_t* dst = out.data() + static_cast<size_t>(r) * RowBytes(dtype, cols);
    const float* src = values.data() + r * cols;
    if (dtype == DType::kF32) {
      std::memcpy(dst, src, static_cast<size_t>(cols) * 4);
    } else if (dtype == DType::kF16 || dtype == DType::kBF16) {
      for (int64_t i = 0; i < cols; ++i) {
        const uint16_t h = dtype == DType::kF16 ? F32ToF16(src[i]) : F32ToBF16(src[i]);
        std::memcpy(dst + 2 * i, &h, 2);
      }
    } else {
      kernels::QuantizeRow(dtype, src, dst, cols);
    }
  }
  return out;
}

// GPT-2 byte-to-unicode table: printable bytes map to themselves, the rest
// to code points from 256 up, so every byte is a visible one-char token.
std::vector<std::string> ByteLevelTokens() {
  std::vector<std::string> tokens;
  int next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    const int cp = printable ? b : next++;
    std::string s;
    if (cp < 0x80) {
      s += static_cast<char>(cp);
    } else {
      s += static_cast<char>(0xC0 | (cp >> 6));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    }
    tokens.push_back(s);
  }
  for (int i = 256; i < kVocab; ++i) tokens.push_back("<extra_" + std::to_string(i) + ">");
  return tokens;
}

struct TinyWeights {
  struct Named {
    std::string gguf_name, hf_name;
    std::vector<int64_t> shape;
    std::vector<float> values;
    bool is_matrix;
  };
  std::vector<Named> tensors;
};

TinyWeights MakeWeights(const TinySpec& spec) {
  Rng rng(spec.arch == "llama" ? 1234 : 5678);
  TinyWeights w;
  auto add = [&](std::string g, std::string h, std::vector<int64_t> shape, std::vector<float> v) {
    const bool matrix = shape.size() == 2;
    w.tensors.push_back({std::move(g), std::move(h), std::move(shape), std::move(v), matrix});
  };
  const bool tied = spec.arch == "qwen2";  // one of each: llama untied, qwen2 tied
  // Tied: the same matrix embeds and scores, so a token's logit holds its own
  // embedding's squared norm (|e|^2 ~ kDModel * scale^2 / 3) next to the
  // layers' contribution (~ sqrt(kDModel) * scale * |layer output|). At scale
  // 1 the first dominates and the top-1 is always the input token (greedy
  // repeats one token); at 1/sqrt(kDModel) the layers decide.
  const float embd_scale = tied ? 1.0f / std::sqrt(static_cast<float>(kDModel)) : 1.0f;
  add("token_embd.weight", "model.embed_tokens.weight", {kVocab, kDModel},
      RandomMatrix(rng, kVocab, kDModel, embd_scale));
  const float s_in = 1.0f / std::sqrt(static_cast<float>(kDModel));
  const float s_ff = 1.0f / std::sqrt(static_cast<float>(kDff));
  const int q = kHeads * kHeadDim, kv = kKvHeads * kHeadDim;
  for (int l = 0; l < kLayers; ++l) {
    const std::string g = "blk." + std::to_string(l) + ".";
    const std::string h = "model.layers." + std::to_string(l) + ".";
    add(g + "attn_norm.weight", h + "input_layernorm.weight", {kDModel}, NormWeights(rng, kDModel));
    add(g + "attn_q.weight", h + "self_attn.q_proj.weight", {q, kDModel}, RandomMatrix(rng, q, kDModel, 2 * s_in));
    add(g + "attn_k.weight", h + "self_attn.k_proj.weight", {kv, kDModel}, RandomMatrix(rng, kv, kDModel, 2 * s_in));
    add(g + "attn_v.weight", h + "self_attn.v_proj.weight", {kv, kDModel}, RandomMatrix(rng, kv, kDModel, 2 * s_in));
    if (spec.arch == "qwen2") {
      add(g + "attn_q.bias", h + "self_attn.q_proj.bias", {q}, RandomMatrix(rng, 1, q, 0.5f));
      add(g + "attn_k.bias", h + "self_attn.k_proj.bias", {kv}, RandomMatrix(rng, 1, kv, 0.5f));
      add(g + "attn_v.bias", h + "self_attn.v_proj.bias", {kv}, RandomMatrix(rng, 1, kv, 0.5f));
    }
    add(g + "attn_output.weight", h + "self_attn.o_proj.weight", {kDModel, q}, RandomMatrix(rng, kDModel, q, s_in));
    add(g + "ffn_norm.weight", h + "post_attention_layernorm.weight", {kDModel}, NormWeights(rng, kDModel));
    add(g + "ffn_gate.weight", h + "mlp.gate_proj.weight", {kDff, kDModel}, RandomMatrix(rng, kDff, kDModel, 2 * s_in));
    add(g + "ffn_up.weight", h + "mlp.up_proj.weight", {kDff, kDModel}, RandomMatrix(rng, kDff, kDModel, 2 * s_in));
    add(g + "ffn_down.weight", h + "mlp.down_proj.weight", {kDModel, kDff}, RandomMatrix(rng, kDModel, kDff, s_ff));
  }
  add("output_norm.weight", "model.norm.weight", {kDModel}, NormWeights(rng, kDModel));
  if (!tied) {
    add("output.weight", "lm_head.weight", {kVocab, kDModel}, RandomMatrix(rng, kVocab, kDModel, 2 * s_in));
  }
  return w;
}

std::string WriteGguf(const TinySpec& spec, const TinyWeights& w, const std::string& path) {
  GgufWriter g;
  const std::string a = spec.arch + ".";
  g.SetString("general.architecture", spec.arch);
  g.SetString("general.type", "model");
  g.SetString("general.name", "tokenlora tiny " + spec.Name());
  g.SetU32(a + "block_count", kLayers);
  g.SetU32(a + "context_length", kContext);
  g.SetU32(a + "embedding_length", kDModel);
  g.SetU32(a + "feed_forward_length", kDff);
  g.SetU32(a + "attention.head_count", kHeads);
  g.SetU32(a + "attention.head_count_kv", kKvHeads);
  g.SetU32(a + "rope.dimension_count", kHeadDim);
  g.SetF32(a + "rope.freq_base", 10000.0f);
  g.SetF32(a + "attention.layer_norm_rms_epsilon", 1e-5f);
  g.SetU32(a + "vocab_size", kVocab);
  g.SetString("tokenizer.ggml.model", "gpt2");
  g.SetString("tokenizer.ggml.pre", "default");
  const std::vector<std::string> tokens = ByteLevelTokens();
  g.SetStringArray("tokenizer.ggml.tokens", tokens);
  std::vector<int32_t> types(tokens.size(), 1);
  for (size_t i = 256; i < types.size(); ++i) types[i] = 4;  // user-defined
  g.SetI32Array("tokenizer.ggml.token_type", types);
  g.SetStringArray("tokenizer.ggml.merges", {});
  g.SetU32("tokenizer.ggml.bos_token_id", 256);
  g.SetU32("tokenizer.ggml.eos_token_id", 257);
  for (const auto& t : w.tensors) {
    const DType dt = t.is_matrix ? spec.dtype : DType::kF32;
    const auto bytes = Encode(t.values, t.shape.back(), dt);
    g.AddTensor(t.gguf_name, dt, t.shape, bytes.data(), bytes.size());
  }
  g.Write(path);
  return path;
}

std::string WriteSafetensors(const TinySpec& spec, const TinyWeights& w, const std::string& dir) {
  std::filesystem::create_directories(dir);
  SafetensorsWriter st;
  st.SetMetadata("format", "pt");
  for (const auto& t : w.tensors) {
    const auto bytes = Encode(t.values, t.shape.back(), spec.dtype);
    st.AddTensor(t.hf_name, spec.dtype, t.shape, bytes.data(), bytes.size());
  }
  st.Write(dir + "/model.safetensors");
  nlohmann::json config = {
      {"architectures", {spec.arch == "llama" ? "LlamaForCausalLM" : "Qwen2ForCausalLM"}},
      {"model_type", spec.arch},
      {"hidden_size", kDModel},
      {"intermediate_size", kDff},
      {"num_hidden_layers", kLayers},
      {"num_attention_heads", kHeads},
      {"num_key_value_heads", kKvHeads},
      {"head_dim", kHeadDim},
      {"max_position_embeddings", kContext},
      {"rms_norm_eps", 1e-5},
      {"rope_theta", 10000.0},
      {"vocab_size", kVocab},
      {"hidden_act", "silu"},
      {"tie_word_embeddings", spec.arch == "qwen2"},
      {"torch_dtype", "float32"},
      {"bos_token_id", 256},
      {"eos_token_id", 257},
  };
  if (spec.llama3_rope) {
    // Small original context so the scaling bends frequencies inside the
    // head dim at these sizes: long wavelengths are divided by the factor.
    config["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
                              {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 64}};
  }
  std::ofstream(dir + "/config.json") << config.dump(2);
  nlohmann::json vocab = nlohmann::json::object();
  const auto tokens = ByteLevelTokens();
  for (size_t i = 0; i < tokens.size(); ++i) vocab[tokens[i]] = i;
  nlohmann::json tokenizer = {
      {"version", "1.0"},
      {"added_tokens", nlohmann::json::array()},
      {"normalizer", nullptr},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}}},
      {"post_processor", nullptr},
      {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
      {"model", {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"continuing_subword_prefix", nullptr},
                 {"end_of_word_suffix", nullptr}, {"fuse_unk", false}, {"byte_fallback", false},
                 {"vocab", vocab}, {"merges", nlohmann::json::array()}}},
  };
  std::ofstream(dir + "/tokenizer.json") << tokenizer.dump();
  return dir;
}

}  // namespace

std::string TinySpec::Name() const {
  return arch + "_" + format + "_" + std::string(tokenlora::Name(dtype)) + (llama3_rope ? "_rope_llama3" : "");
}

std::vector<TinySpec> AllTinySpecs() {
  std::vector<TinySpec> specs;
  const DType gguf_types[] = {DType::kF32,  DType::kF16,  DType::kBF16, DType::kQ8_0,
                              DType::kQ4_0, DType::kQ4_1, DType::kQ5_0, DType::kQ5_1,
                              DType::kQ4_K, DType::kQ5_K, DType::kQ6_K};
  for (DType t : gguf_types) specs.push_back({"llama", "gguf", t});
  for (DType t : {DType::kF32, DType::kQ8_0, DType::kQ4_K}) specs.push_back({"qwen2", "gguf", t});
  for (const char* arch : {"llama", "qwen2"}) {
    for (DType t : {DType::kF32, DType::kF16, DType::kBF16}) specs.push_back({arch, "safetensors", t});
  }
  specs.push_back({"llama", "safetensors", DType::kF32, /*llama3_rope=*/true});
  return specs;
}

std::string WriteTinyModel(const TinySpec& spec, const std::string& dir) {
  const TinyWeights w = MakeWeights(spec);
  if (spec.format == "gguf") return WriteGguf(spec, w, dir + "/" + spec.Name() + ".gguf");
  return WriteSafetensors(spec, w, dir + "/" + spec.Name());
}

std::vector<int32_t> TinyPromptIds() { return {256, 72, 101, 108, 108, 111, 44, 32, 119, 111, 114, 108, 100, 33}; }

}  // namespace tokenlora::testing
