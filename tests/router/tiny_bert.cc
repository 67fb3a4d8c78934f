#include "tiny_bert.h"

#include <cmath>
#include <filesystem>
#include <map>
#include <random>

#include "core/mapped_file.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include "test_util.h"

namespace tokenlora::testing {
namespace {

constexpr int kLayers = 2, kD = 16, kHeads = 4, kFf = 24;

using Tensors = std::map<std::string, std::pair<std::vector<int64_t>, std::vector<float>>>;

void LayerNorm(std::vector<double>& x, const std::vector<float>& w, const std::vector<float>& b, double eps) {
  double mean = 0, var = 0;
  for (double v : x) mean += v;
  mean /= static_cast<double>(x.size());
  for (double v : x) var += (v - mean) * (v - mean);
  var /= static_cast<double>(x.size());
  for (size_t i = 0; i < x.size(); ++i) x[i] = (x[i] - mean) / std::sqrt(var + eps) * w[i] + b[i];
}

// y = W x + b for one token.
std::vector<double> Affine(const Tensors& t, const std::string& name, const std::vector<double>& x) {
  const auto& [shape, w] = t.at(name + ".weight");
  const auto& b = t.at(name + ".bias").second;
  std::vector<double> y(static_cast<size_t>(shape[0]));
  for (int64_t o = 0; o < shape[0]; ++o) {
    double s = b[static_cast<size_t>(o)];
    for (int64_t i = 0; i < shape[1]; ++i)
      s += double{w[static_cast<size_t>(o * shape[1] + i)]} * x[static_cast<size_t>(i)];
    y[static_cast<size_t>(o)] = s;
  }
  return y;
}

}  // namespace

std::vector<std::string> TinyVocab() {
  return {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "##s", "."};
}

TinyBertFiles TinyBert(int positions, int max_seq_length) {
  TinyBertFiles f;
  const int vocab = static_cast<int>(TinyVocab().size());
  f.config = {{"model_type", "bert"},
              {"hidden_act", "gelu"},
              {"hidden_size", kD},
              {"num_hidden_layers", kLayers},
              {"num_attention_heads", kHeads},
              {"intermediate_size", kFf},
              {"vocab_size", vocab},
              {"max_position_embeddings", positions},
              {"type_vocab_size", 2},
              {"layer_norm_eps", 1e-12},
              {"position_embedding_type", "absolute"}};
  f.modules = nlohmann::json::parse(R"([
    {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
    {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}])");
  f.pooling = {{"word_embedding_dimension", kD},
               {"pooling_mode_mean_tokens", true},
               {"pooling_mode_cls_token", false},
               {"pooling_mode_max_tokens", false}};
  f.sentence_config = {{"max_seq_length", max_seq_length}, {"do_lower_case", false}};
  std::mt19937 rng(42);
  std::normal_distribution<float> normal(0.0f, 0.5f);
  const auto add = [&](const std::string& name, std::vector<int64_t> shape, float offset = 0.0f) {
    int64_t n = 1;
    for (int64_t s : shape) n *= s;
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = offset + normal(rng) * (offset != 0.0f ? 0.1f : 1.0f);
    f.tensors.push_back({name, {std::move(shape), std::move(v)}});
  };
  add("embeddings.word_embeddings.weight", {vocab, kD});
  add("embeddings.position_embeddings.weight", {positions, kD});
  add("embeddings.token_type_embeddings.weight", {2, kD});
  add("embeddings.LayerNorm.weight", {kD}, 1.0f);
  add("embeddings.LayerNorm.bias", {kD});
  for (int l = 0; l < kLayers; ++l) {
    const std::string p = "encoder.layer." + std::to_string(l) + ".";
    for (const char* m :
         {"attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"}) {
      add(p + m + ".weight", {kD, kD});
      add(p + m + ".bias", {kD});
    }
    add(p + "attention.output.LayerNorm.weight", {kD}, 1.0f);
    add(p + "attention.output.LayerNorm.bias", {kD});
    add(p + "intermediate.dense.weight", {kFf, kD});
    add(p + "intermediate.dense.bias", {kFf});
    add(p + "output.dense.weight", {kD, kFf});
    add(p + "output.dense.bias", {kD});
    add(p + "output.LayerNorm.weight", {kD}, 1.0f);
    add(p + "output.LayerNorm.bias", {kD});
  }
  add("pooler.dense.weight", {kD, kD});  // unused by sentence-transformers
  add("pooler.dense.bias", {kD});
  return f;
}

std::string WriteTinyBert(const TinyBertFiles& files) {
  namespace fs = std::filesystem;
  const std::string dir = TempDir();
  WriteFileAtomically(dir + "/config.json", files.config.dump());
  if (!files.modules.is_null()) WriteFileAtomically(dir + "/modules.json", files.modules.dump());
  fs::create_directories(dir + "/1_Pooling");
  WriteFileAtomically(dir + "/1_Pooling/config.json", files.pooling.dump());
  WriteFileAtomically(dir + "/sentence_bert_config.json", files.sentence_config.dump());
  std::string vocab;
  for (const std::string& t : TinyVocab()) vocab += t + "\n";
  WriteFileAtomically(dir + "/vocab.txt", vocab);
  SafetensorsWriter w;
  for (const auto& [name, st] : files.tensors) {
    w.AddTensor(name, DType::kF32, st.first, st.second.data(), st.second.size() * sizeof(float));
  }
  w.Write(dir + "/model.safetensors");
  return dir;
}

std::string WriteTinyBertGguf(const TinyBertFiles& files, DType dtype) {
  GgufWriter w;
  const auto& c = files.config;
  w.SetString("general.architecture", "bert");
  w.SetU32("bert.block_count", c["num_hidden_layers"].get<uint32_t>());
  w.SetU32("bert.context_length", c["max_position_embeddings"].get<uint32_t>());
  w.SetU32("bert.embedding_length", c["hidden_size"].get<uint32_t>());
  w.SetU32("bert.feed_forward_length", c["intermediate_size"].get<uint32_t>());
  w.SetU32("bert.attention.head_count", c["num_attention_heads"].get<uint32_t>());
  w.SetF32("bert.attention.layer_norm_epsilon", c["layer_norm_eps"].get<float>());
  w.SetBool("bert.attention.causal", false);
  w.SetU32("bert.pooling_type", 1);
  w.SetU32("tokenizer.ggml.token_type_count", 2);
  w.SetString("tokenizer.ggml.model", "bert");
  // llama.cpp's phantom-space vocabulary.
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  for (const std::string& t : TinyVocab()) {
    const bool special = t.front() == '[';
    tokens.push_back(special ? t : t.rfind("##", 0) == 0 ? t.substr(2) : "\xE2\x96\x81" + t);
    types.push_back(special ? 3 : 1);
  }
  w.SetStringArray("tokenizer.ggml.tokens", tokens);
  w.SetI32Array("tokenizer.ggml.token_type", types);
  w.SetU32("tokenizer.ggml.unknown_token_id", 1);
  w.SetU32("tokenizer.ggml.cls_token_id", 2);
  w.SetU32("tokenizer.ggml.seperator_token_id", 3);
  w.SetU32("tokenizer.ggml.padding_token_id", 0);
  const std::vector<std::pair<std::string, std::string>> renames = {
      {"embeddings.word_embeddings", "token_embd"},
      {"embeddings.position_embeddings", "position_embd"},
      {"embeddings.token_type_embeddings", "token_types"},
      {"embeddings.LayerNorm", "token_embd_norm"},
      {"encoder.layer.", "blk."},
      {"attention.self.query", "attn_q"},
      {"attention.self.key", "attn_k"},
      {"attention.self.value", "attn_v"},
      {"attention.output.dense", "attn_output"},
      {"attention.output.LayerNorm", "attn_output_norm"},
      {"intermediate.dense", "ffn_up"},
      {"output.dense", "ffn_down"},
      {"output.LayerNorm", "layer_output_norm"}};
  for (const auto& [hf_name, st] : files.tensors) {
    if (hf_name.rfind("pooler.", 0) == 0) continue;  // llama.cpp's converter drops the pooler
    std::string name = hf_name;
    for (const auto& [from, to] : renames) {
      if (const size_t at = name.find(from); at != std::string::npos) name.replace(at, from.size(), to);
    }
    const auto& [shape, values] = st;
    if (shape.size() == 2 && dtype == DType::kF16) {
      std::vector<uint16_t> half;
      for (float v : values) half.push_back(F32ToF16(v));
      w.AddTensor(name, DType::kF16, shape, half.data(), half.size() * 2);
    } else {
      w.AddTensor(name, DType::kF32, shape, values.data(), values.size() * 4);
    }
  }
  const std::string path = TempDir() + "/tiny-bert.gguf";
  w.Write(path);
  return path;
}

std::vector<float> ReferenceEmbedding(const TinyBertFiles& files, const std::vector<int32_t>& ids) {
  Tensors t(files.tensors.begin(), files.tensors.end());
  const size_t n = ids.size(), d = kD, hd = kD / kHeads;
  const double eps = files.config["layer_norm_eps"].get<double>();
  const auto row = [&](const std::string& name, size_t r) {
    const auto& v = t.at(name).second;
    return std::vector<double>(v.begin() + static_cast<long>(r * d),
                               v.begin() + static_cast<long>((r + 1) * d));
  };
  const auto vec = [&](const std::string& name) { return t.at(name).second; };
  std::vector<std::vector<double>> x(n);
  for (size_t i = 0; i < n; ++i) {
    x[i] = row("embeddings.word_embeddings.weight", static_cast<size_t>(ids[i]));
    const auto p = row("embeddings.position_embeddings.weight", i),
               ty = row("embeddings.token_type_embeddings.weight", 0);
    for (size_t j = 0; j < d; ++j) x[i][j] += p[j] + ty[j];
    LayerNorm(x[i], vec("embeddings.LayerNorm.weight"), vec("embeddings.LayerNorm.bias"), eps);
  }
  for (int l = 0; l < kLayers; ++l) {
    const std::string p = "encoder.layer." + std::to_string(l) + ".";
    std::vector<std::vector<double>> q(n), k(n), v(n), ctx(n, std::vector<double>(d, 0.0));
    for (size_t i = 0; i < n; ++i) {
      q[i] = Affine(t, p + "attention.self.query", x[i]);
      k[i] = Affine(t, p + "attention.self.key", x[i]);
      v[i] = Affine(t, p + "attention.self.value", x[i]);
    }
    for (size_t h = 0; h < static_cast<size_t>(kHeads); ++h) {
      for (size_t i = 0; i < n; ++i) {
        std::vector<double> s(n);
        double mx = -1e300, sum = 0;
        for (size_t j = 0; j < n; ++j) {
          double dot = 0;
          for (size_t c = 0; c < hd; ++c) dot += q[i][h * hd + c] * k[j][h * hd + c];
          s[j] = dot / std::sqrt(static_cast<double>(hd));
          mx = std::max(mx, s[j]);
        }
        for (double& e : s) sum += (e = std::exp(e - mx));
        for (size_t j = 0; j < n; ++j) {
          for (size_t c = 0; c < hd; ++c) ctx[i][h * hd + c] += s[j] / sum * v[j][h * hd + c];
        }
      }
    }
    for (size_t i = 0; i < n; ++i) {
      auto a = Affine(t, p + "attention.output.dense", ctx[i]);
      for (size_t j = 0; j < d; ++j) x[i][j] += a[j];
      LayerNorm(x[i], vec(p + "attention.output.LayerNorm.weight"),
                vec(p + "attention.output.LayerNorm.bias"), eps);
      auto u = Affine(t, p + "intermediate.dense", x[i]);
      for (double& e : u) e = 0.5 * e * (1.0 + std::erf(e / std::sqrt(2.0)));
      auto o = Affine(t, p + "output.dense", u);
      for (size_t j = 0; j < d; ++j) x[i][j] += o[j];
      LayerNorm(x[i], vec(p + "output.LayerNorm.weight"), vec(p + "output.LayerNorm.bias"), eps);
    }
  }
  std::vector<double> mean(d, 0.0);
  for (const auto& r : x) {
    for (size_t j = 0; j < d; ++j) mean[j] += r[j] / static_cast<double>(n);
  }
  double norm = 0;
  for (double m : mean) norm += m * m;
  std::vector<float> out(d);
  for (size_t j = 0; j < d; ++j) out[j] = static_cast<float>(mean[j] / std::sqrt(norm));
  return out;
}

}  // namespace tokenlora::testing
