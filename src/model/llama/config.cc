#include "model/llama/config.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/gguf.h"
#include "io/json_text.h"

namespace tokenlora {
namespace {

void Require(bool ok, const std::string& source, const std::string& what) {
  if (!ok) throw InputError("'" + source + "': " + what);
}

}  // namespace

void LlamaConfig::Validate(const std::string& source) const {
  auto positive = [&](int v, const char* field) {
    Require(v > 0 && v < (1 << 24), source,
            std::string(field) + " must be in [1, 16M], got " + std::to_string(v) +
                " — corrupt or unsupported model config?");
  };
  positive(n_layers, "block_count/num_hidden_layers");
  positive(d_model, "embedding_length/hidden_size");
  positive(n_heads, "attention.head_count/num_attention_heads");
  positive(n_kv_heads, "attention.head_count_kv/num_key_value_heads");
  positive(head_dim, "head_dim");
  positive(d_ff, "feed_forward_length/intermediate_size");
  positive(vocab_size, "vocab_size");
  positive(max_context, "context_length/max_position_embeddings");
  Require(n_heads % n_kv_heads == 0, source,
          "attention head count " + std::to_string(n_heads) +
              " is not a multiple of the key/value head count " + std::to_string(n_kv_heads));
  Require(head_dim % 2 == 0, source,
          "head_dim must be even for RoPE, got " + std::to_string(head_dim));
  Require(rms_eps > 0 && std::isfinite(rms_eps), source,
          "rms norm epsilon must be positive, got " + std::to_string(rms_eps));
  Require(rope_theta > 0 && std::isfinite(rope_theta), source,
          "rope theta must be positive, got " + std::to_string(rope_theta));
  Require(rope_scaling.factor > 0, source, "rope scaling factor must be positive");
}

LlamaConfig ConfigFromGguf(const GgufFile& gguf) {
  LlamaConfig c;
  c.arch = gguf.GetString("general.architecture");
  if (c.arch != "llama" && c.arch != "qwen2") {
    throw InputError("'" + gguf.path() + "': general.architecture is '" + c.arch +
                     "'; supported: llama, qwen2 (Llama 2/3, SmolLM2, TinyLlama, Mistral, Qwen2)");
  }
  const std::string a = c.arch + ".";
  c.n_layers = static_cast<int>(gguf.GetInt(a + "block_count"));
  c.d_model = static_cast<int>(gguf.GetInt(a + "embedding_length"));
  c.n_heads = static_cast<int>(gguf.GetInt(a + "attention.head_count"));
  c.n_kv_heads = static_cast<int>(gguf.FindInt(a + "attention.head_count_kv").value_or(c.n_heads));
  c.d_ff = static_cast<int>(gguf.GetInt(a + "feed_forward_length"));
  c.max_context = static_cast<int>(gguf.FindInt(a + "context_length").value_or(2048));
  c.rms_eps = static_cast<float>(gguf.GetFloat(a + "attention.layer_norm_rms_epsilon"));
  c.rope_theta = static_cast<float>(gguf.FindFloat(a + "rope.freq_base").value_or(10000.0));
  c.head_dim = c.n_heads > 0 ? c.d_model / c.n_heads : 0;
  if (auto kl = gguf.FindInt(a + "attention.key_length")) {
    c.head_dim = static_cast<int>(*kl);
  } else if (c.n_heads > 0 && c.d_model % c.n_heads != 0) {
    throw InputError("'" + gguf.path() + "': " + a + "embedding_length " + std::to_string(c.d_model) +
                     " is not a multiple of " + a + "attention.head_count " + std::to_string(c.n_heads) +
                     ", and no " + a + "attention.key_length gives the head size — corrupt or mis-converted "
                     "metadata?");
  }
  if (auto rd = gguf.FindInt(a + "rope.dimension_count"); rd && *rd != c.head_dim) {
    throw InputError("'" + gguf.path() + "': " + a + "rope.dimension_count is " +
                     std::to_string(*rd) + " but head_dim is " + std::to_string(c.head_dim) +
                     "; partial rotary embeddings are not supported");
  }
  // Vocabulary size: explicit key, else the token list.
  if (auto vs = gguf.FindInt(a + "vocab_size")) {
    c.vocab_size = static_cast<int>(*vs);
  } else if (const GgufValue* tokens = gguf.Find("tokenizer.ggml.tokens")) {
    c.vocab_size = static_cast<int>(tokens->ArraySize());
  }
  if (auto type = gguf.FindString(a + "rope.scaling.type")) {
    if (*type == "linear") {
      c.rope_scaling.type = RopeScaling::Type::kLinear;
      c.rope_scaling.factor = static_cast<float>(gguf.GetFloat(a + "rope.scaling.factor"));
    } else if (*type != "none") {
      throw InputError("'" + gguf.path() + "': " + a + "rope.scaling.type '" + *type +
                       "' is not supported (supported: none, linear; llama3 scaling comes "
                       "from the rope_freqs.weight tensor)");
    }
  }
  // ggml rotates adjacent pairs for llama (convert_hf_to_gguf permutes the
  // q/k rows to match) and halves for qwen2.
  c.rope_style = c.arch == "llama" ? RopeStyle::kAdjacentPairs : RopeStyle::kHalfSplit;
  c.qkv_bias = c.arch == "qwen2";
  c.tied_embeddings = gguf.FindTensor("output.weight") == nullptr;
  c.Validate(gguf.path());
  return c;
}

LlamaConfig ConfigFromHfJson(const std::string& json_text, const std::string& path) {
  nlohmann::json j;
  try {
    j = ParseBoundedJson(json_text);
  } catch (const nlohmann::json::exception& e) {
    throw InputError("'" + path + "': not valid JSON: " + e.what());
  }
  if (!j.is_object()) throw InputError("'" + path + "': expected a JSON object");
  auto get_int = [&](const char* key, std::optional<int> fallback) -> int {
    if (!j.contains(key) || j[key].is_null()) {
      if (fallback) return *fallback;
      throw InputError("'" + path + "': missing field '" + key + "'");
    }
    if (!j[key].is_number_integer()) {
      throw InputError("'" + path + "': field '" + key + "' must be an integer, got " +
                       j[key].dump());
    }
    return j[key].get<int>();
  };
  auto get_float = [&](const char* key, double fallback) -> float {
    if (!j.contains(key) || j[key].is_null()) return static_cast<float>(fallback);
    if (!j[key].is_number()) {
      throw InputError("'" + path + "': field '" + key + "' must be a number, got " +
                       j[key].dump());
    }
    return j[key].get<float>();
  };
  LlamaConfig c;
  const std::string model_type = j.value("model_type", std::string());
  if (model_type == "llama" || model_type == "mistral") {
    c.arch = "llama";
  } else if (model_type == "qwen2") {
    c.arch = "qwen2";
  } else {
    throw InputError("'" + path + "': model_type '" + model_type +
                     "' is not supported (supported: llama, mistral, qwen2)");
  }
  c.n_layers = get_int("num_hidden_layers", std::nullopt);
  c.d_model = get_int("hidden_size", std::nullopt);
  c.n_heads = get_int("num_attention_heads", std::nullopt);
  c.n_kv_heads = get_int("num_key_value_heads", c.n_heads);
  c.d_ff = get_int("intermediate_size", std::nullopt);
  c.vocab_size = get_int("vocab_size", std::nullopt);
  c.max_context = get_int("max_position_embeddings", 2048);
  if (!j.contains("head_dim") && c.n_heads > 0 && c.d_model % c.n_heads != 0) {
    throw InputError("'" + path + "': hidden_size " + std::to_string(c.d_model) +
                     " is not a multiple of num_attention_heads " + std::to_string(c.n_heads) +
                     ", and no head_dim gives the head size — a corrupt or hand-edited config.json?");
  }
  c.head_dim = get_int("head_dim", c.n_heads > 0 ? c.d_model / c.n_heads : 0);
  c.rms_eps = get_float("rms_norm_eps", 1e-6);
  c.tied_embeddings = j.value("tie_word_embeddings", false);
  c.qkv_bias = c.arch == "qwen2" || j.value("attention_bias", false);
  if (j.value("mlp_bias", false)) {
    throw InputError("'" + path + "': mlp_bias=true is not supported");
  }
  const std::string act = j.value("hidden_act", std::string("silu"));
  if (act != "silu") {
    throw InputError("'" + path + "': hidden_act '" + act + "' is not supported (expected silu)");
  }
  // rope_theta lives at the top level (transformers 4.x) or in rope_parameters (5.x).
  nlohmann::json rope = j.contains("rope_scaling") && j["rope_scaling"].is_object()
                            ? j["rope_scaling"]
                            : nlohmann::json::object();
  if (j.contains("rope_parameters") && j["rope_parameters"].is_object()) {
    rope = j["rope_parameters"];
  }
  c.rope_theta = get_float("rope_theta", rope.value("rope_theta", 10000.0));
  const std::string rope_type = rope.value("rope_type", rope.value("type", std::string("default")));
  if (rope_type == "linear") {
    c.rope_scaling.type = RopeScaling::Type::kLinear;
    c.rope_scaling.factor = rope.value("factor", 1.0f);
  } else if (rope_type == "llama3") {
    c.rope_scaling.type = RopeScaling::Type::kLlama3;
    c.rope_scaling.factor = rope.value("factor", 8.0f);
    c.rope_scaling.low_freq_factor = rope.value("low_freq_factor", 1.0f);
    c.rope_scaling.high_freq_factor = rope.value("high_freq_factor", 4.0f);
    c.rope_scaling.original_max_positions = rope.value("original_max_position_embeddings", 8192);
  } else if (rope_type != "default") {
    throw InputError("'" + path + "': rope scaling type '" + rope_type +
                     "' is not supported (supported: default, linear, llama3)");
  }
  c.rope_style = RopeStyle::kHalfSplit;
  c.Validate(path);
  return c;
}

std::vector<float> RopeInverseFrequencies(const LlamaConfig& config,
                                          const std::vector<float>& freq_factors) {
  const int half = config.head_dim / 2;
  std::vector<float> inv(half);
  const RopeScaling& s = config.rope_scaling;
  for (int i = 0; i < half; ++i) {
    // Same expression as the reference: 1 / theta^(2i/d), in double then rounded.
    double f = 1.0 / std::pow(static_cast<double>(config.rope_theta),
                              static_cast<double>(2 * i) / config.head_dim);
    if (s.type == RopeScaling::Type::kLinear) {
      f /= s.factor;
    } else if (s.type == RopeScaling::Type::kLlama3) {
      const double low_wavelen = s.original_max_positions / s.low_freq_factor;
      const double high_wavelen = s.original_max_positions / s.high_freq_factor;
      const double wavelen = 2.0 * M_PI / f;
      if (wavelen > low_wavelen) {
        f /= s.factor;
      } else if (wavelen >= high_wavelen) {
        const double smooth = (s.original_max_positions / wavelen - s.low_freq_factor) /
                              (s.high_freq_factor - s.low_freq_factor);
        f = (1.0 - smooth) * f / s.factor + smooth * f;
      }
    }
    if (!freq_factors.empty()) f /= freq_factors[static_cast<size_t>(i)];
    inv[static_cast<size_t>(i)] = static_cast<float>(f);
  }
  return inv;
}

}  // namespace tokenlora
