#include "model/bert/bert_config.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/mapped_file.h"
#include "io/gguf.h"
#include "io/io_util.h"
#include "io/json_text.h"

namespace tokenlora {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

json ParseJsonFile(const std::string& path) {
  try {
    return ParseBoundedJson(ReadTextFile(path));
  } catch (const json::exception& e) {
    throw InputError(path + ": not valid JSON (" + e.what() + ")");
  }
}

int GetInt(const json& j, const char* key, const std::string& source,
           std::optional<int> dflt = std::nullopt) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (dflt) return *dflt;
    throw InputError(source + ": missing key '" + key + "'");
  }
  if (!it->is_number_integer() || it->get<int64_t>() < 0 || it->get<int64_t>() > (int64_t{1} << 30)) {
    throw InputError(source + ": '" + key + "' must be a non-negative integer, got " +
                     io_internal::Quote(it->dump()));
  }
  return it->get<int>();
}

std::string GetString(const json& j, const char* key, const std::string& source, const std::string& dflt) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return dflt;
  if (!it->is_string())
    throw InputError(source + ": '" + key + "' must be a string, got " + io_internal::Quote(it->dump()));
  return it->get<std::string>();
}

bool GetBool(const json& j, const char* key, const std::string& source) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return false;
  if (!it->is_boolean())
    throw InputError(source + ": '" + key + "' must be true or false, got " + it->dump());
  return it->get<bool>();
}

}  // namespace

const char* PoolingName(Pooling p) {
  switch (p) {
    case Pooling::kMean:
      return "mean";
    case Pooling::kCls:
      return "cls";
    case Pooling::kMax:
      return "max";
  }
  return "?";
}

void BertConfig::Validate(const std::string& source) const {
  const auto positive = [&](int v, const char* name) {
    if (v <= 0) throw InputError(source + ": " + name + " must be positive, got " + std::to_string(v));
  };
  positive(n_layers, "num_hidden_layers");
  positive(d_model, "hidden_size");
  positive(n_heads, "num_attention_heads");
  positive(d_ff, "intermediate_size");
  positive(vocab_size, "vocab_size");
  positive(max_positions, "max_position_embeddings");
  positive(type_vocab_size, "type_vocab_size");
  if (d_model % n_heads != 0) {
    throw InputError(source + ": hidden_size " + std::to_string(d_model) +
                     " is not divisible by num_attention_heads " + std::to_string(n_heads));
  }
  if (!(ln_eps > 0.0f && ln_eps < 1.0f)) throw InputError(source + ": layer_norm_eps must be in (0, 1)");
}

BertConfig BertConfigFromJson(const std::string& path) {
  const json j = ParseJsonFile(path);
  if (!j.is_object()) throw InputError(path + ": expected a JSON object");
  const std::string model_type = GetString(j, "model_type", path, "bert");
  if (model_type != "bert") {
    throw InputError(path + ": model_type '" + model_type +
                     "' is not supported; the router's embedder is a BERT encoder (model_type \"bert\")");
  }
  const std::string act = GetString(j, "hidden_act", path, "gelu");
  if (act != "gelu") {
    throw InputError(path + ": hidden_act '" + act +
                     "' is not supported (only \"gelu\", the exact erf form)");
  }
  const std::string pos = GetString(j, "position_embedding_type", path, "absolute");
  if (pos != "absolute") {
    throw InputError(path + ": position_embedding_type '" + pos + "' is not supported (only \"absolute\")");
  }
  BertConfig c;
  c.n_layers = GetInt(j, "num_hidden_layers", path);
  c.d_model = GetInt(j, "hidden_size", path);
  c.n_heads = GetInt(j, "num_attention_heads", path);
  c.d_ff = GetInt(j, "intermediate_size", path);
  c.vocab_size = GetInt(j, "vocab_size", path);
  c.max_positions = GetInt(j, "max_position_embeddings", path);
  c.type_vocab_size = GetInt(j, "type_vocab_size", path, 2);
  if (const auto it = j.find("layer_norm_eps"); it != j.end()) {
    if (!it->is_number()) throw InputError(path + ": 'layer_norm_eps' must be a number, got " + it->dump());
    c.ln_eps = it->get<float>();
  }
  c.Validate(path);
  c.head_dim = c.d_model / c.n_heads;
  return c;
}

BertConfig BertConfigFromGguf(const GgufFile& g) {
  const std::string arch = g.GetString("general.architecture");
  if (arch != "bert") {
    throw InputError(g.path() + ": general.architecture is '" + arch +
                     "'; the router's embedder supports 'bert'");
  }
  if (const GgufValue* causal = g.Find("bert.attention.causal");
      causal != nullptr && causal->AsBool("bert.attention.causal")) {
    throw InputError(g.path() + ": bert.attention.causal is true; a sentence encoder attends both ways");
  }
  const auto get = [&](const char* key) {
    const int64_t v = g.GetInt(key);
    if (v <= 0 || v > (int64_t{1} << 30))
      throw InputError(g.path() + ": " + key + " = " + std::to_string(v) + " is out of range");
    return static_cast<int>(v);
  };
  BertConfig c;
  c.n_layers = get("bert.block_count");
  c.d_model = get("bert.embedding_length");
  c.n_heads = get("bert.attention.head_count");
  c.d_ff = get("bert.feed_forward_length");
  c.max_positions = get("bert.context_length");
  c.type_vocab_size = static_cast<int>(g.FindInt("tokenizer.ggml.token_type_count").value_or(2));
  c.ln_eps = static_cast<float>(g.FindFloat("bert.attention.layer_norm_epsilon").value_or(1e-12));
  const GgufValue& tokens = g.Get("tokenizer.ggml.tokens");
  c.vocab_size = static_cast<int>(tokens.ArraySize());
  c.Validate(g.path());
  c.head_dim = c.d_model / c.n_heads;
  return c;
}

SentenceConfig SentenceConfigFromGguf(const GgufFile& g) {
  SentenceConfig s;
  s.normalize = true;
  const int64_t pooling = g.FindInt("bert.pooling_type").value_or(1);
  if (pooling == 1) {
    s.pooling = Pooling::kMean;
  } else if (pooling == 2) {
    s.pooling = Pooling::kCls;
  } else {
    throw InputError(
        g.path() + ": bert.pooling_type " + std::to_string(pooling) +
        " is not supported (1 = mean, 2 = cls; 0 none, 3 last and 4 rank are not sentence embeddings)");
  }
  return s;
}

void SentenceConfig::Resolve(const BertConfig& config, const std::string& source) {
  if (pooling_dim != 0 && pooling_dim != config.d_model) {
    throw InputError(source + ": the Pooling module's word_embedding_dimension " +
                     std::to_string(pooling_dim) + " does not match the encoder's hidden_size " +
                     std::to_string(config.d_model) + " — files from different models?");
  }
  if (max_seq_length == 0) max_seq_length = config.max_positions;
  if (max_seq_length < 2 || max_seq_length > config.max_positions) {
    throw InputError(source + ": max_seq_length " + std::to_string(max_seq_length) + " must be in [2, " +
                     std::to_string(config.max_positions) + "] (max_position_embeddings)");
  }
}

SentenceConfig SentenceConfigFromDirectory(const std::string& dir) {
  SentenceConfig s;
  const fs::path root(dir);
  const fs::path modules_path = root / "modules.json";
  std::error_code ec;
  if (!fs::exists(modules_path, ec)) return s;  // plain BERT directory: sentence-transformers' defaults

  const std::string modules_src = modules_path.string();
  const json modules = ParseJsonFile(modules_src);
  if (!modules.is_array()) throw InputError(modules_src + ": expected a list of modules");
  std::string pooling_path;
  bool has_transformer = false;
  for (size_t i = 0; i < modules.size(); ++i) {
    const json& m = modules[i];
    const std::string where = modules_src + ": module " + std::to_string(i);
    if (!m.is_object()) throw InputError(where + ": expected an object");
    const std::string type = GetString(m, "type", where, "");
    const std::string path = GetString(m, "path", where, "");
    const auto expect_position = [&](size_t pos) {
      if (i != pos) {
        throw InputError(where + ": " + type + " must be module " + std::to_string(pos) +
                         " (Transformer, Pooling, then Normalize)");
      }
    };
    if (type == "sentence_transformers.models.Transformer") {
      expect_position(0);
      has_transformer = true;
      s.transformer_path = path;
    } else if (type == "sentence_transformers.models.Pooling") {
      expect_position(1);
      pooling_path = path;
    } else if (type == "sentence_transformers.models.Normalize") {
      expect_position(2);
      s.normalize = true;
    } else {
      throw InputError(where + ": module type '" + type +
                       "' is not supported (supported: Transformer, Pooling, Normalize)");
    }
  }
  if (!has_transformer || pooling_path.empty()) {
    throw InputError(modules_src + ": expected a Transformer and a Pooling module");
  }

  const std::string pool_src = (root / pooling_path / "config.json").string();
  const json p = ParseJsonFile(pool_src);
  s.pooling_dim = GetInt(p, "word_embedding_dimension", pool_src);
  int n_modes = 0;
  for (const auto& [key, mode] : {std::pair{"pooling_mode_mean_tokens", Pooling::kMean},
                                  std::pair{"pooling_mode_cls_token", Pooling::kCls},
                                  std::pair{"pooling_mode_max_tokens", Pooling::kMax}}) {
    if (GetBool(p, key, pool_src)) {
      s.pooling = mode;
      ++n_modes;
    }
  }
  for (const char* key :
       {"pooling_mode_mean_sqrt_len_tokens", "pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken"}) {
    if (GetBool(p, key, pool_src)) {
      throw InputError(pool_src + ": '" + key + "' is not supported (supported: mean, cls, max)");
    }
  }
  if (n_modes != 1) {
    throw InputError(pool_src + ": expected exactly one pooling mode (mean, cls or max), got " +
                     std::to_string(n_modes) +
                     (n_modes > 1 ? " (concatenated poolings are not supported)" : ""));
  }

  const fs::path sbert = root / "sentence_bert_config.json";
  if (fs::exists(sbert, ec)) {
    const std::string src = sbert.string();
    const json b = ParseJsonFile(src);
    s.max_seq_length = GetInt(b, "max_seq_length", src, 0);
    if (GetBool(b, "do_lower_case", src)) {
      throw InputError(src + ": do_lower_case=true (lower-casing before the tokenizer) is not supported");
    }
  }
  return s;
}

double BertEncoderFlops(const BertConfig& c, int64_t n) {
  const double d = c.d_model, ff = c.d_ff, tokens = static_cast<double>(n);
  const double per_layer = tokens * (4 * d * d + 2 * d * ff) * 2 + 2 * tokens * tokens * d * 2;
  return per_layer * c.n_layers;
}

}  // namespace tokenlora
