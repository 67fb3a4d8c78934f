#include "model/bert/bert_weights.h"

#include <algorithm>

#include "core/error.h"
#include "io/io_util.h"
#include "kernels/kernels.h"
#include "kernels/quantize.h"
#include "model/bert/bert_checkpoint.h"

namespace tokenlora {
namespace {

class Lookup {
 public:
  Lookup(const BertCheckpoint& st, std::string prefix, std::string source)
      : st_(st), prefix_(std::move(prefix)), source_(std::move(source)) {}

  TensorView Require(const std::string& name, const std::vector<int64_t>& shape) const {
    const std::string full = prefix_ + name;
    const TensorView* t = st_.Find(full);
    if (t == nullptr) {
      throw InputError(source_ + ": missing tensor '" + full +
                       "' — incomplete download, or not a BERT encoder?");
    }
    if (t->shape != shape) {
      throw InputError(source_ + ": tensor '" + full + "' has shape " + ShapeString(t->shape) +
                       ", expected " + ShapeString(shape) +
                       " from the model's config — config and weights from different models?");
    }
    if (t->dtype == DType::kI32) {
      throw InputError(source_ + ": tensor '" + full +
                       "' has integer dtype i32; weights must be float or quantized");
    }
    return *t;
  }

  std::vector<float> Vector(const std::string& name, int64_t n) const {
    const TensorView t = Require(name, {n});
    std::vector<float> out(static_cast<size_t>(n));
    kernels::scalar::DequantizeRow(t.dtype, t.data, out.data(), n);
    return out;
  }

  BertLinear Linear(const std::string& name, int64_t n_out, int64_t n_in) const {
    return {Require(name + ".weight", {n_out, n_in}), Vector(name + ".bias", n_out), nullptr, {}, {}};
  }

  BertLayerNorm Norm(const std::string& name, int64_t d) const {
    return {Vector(name + ".weight", d), Vector(name + ".bias", d)};
  }

 private:
  const BertCheckpoint& st_;
  std::string prefix_;
  std::string source_;
};

}  // namespace

BertWeights BertWeightsFromCheckpoint(const BertCheckpoint& st, const BertConfig& c,
                                      const std::string& source) {
  // Hugging Face names, or llama.cpp's for GGUF.
  struct Names {
    std::string word, position, token_type, embd_norm, layer_prefix;
    const char *q, *k, *v, *attn_out, *attn_norm, *up, *down, *out_norm;
  };
  const bool gguf = st.gguf() != nullptr;
  std::string prefix;
  if (!gguf && st.Find("embeddings.word_embeddings.weight") == nullptr &&
      st.Find("bert.embeddings.word_embeddings.weight") != nullptr) {
    prefix = "bert.";  // a task-head checkpoint (BertForMaskedLM, ...)
  }
  const Names n = gguf ? Names{"token_embd.weight",
                               "position_embd.weight",
                               "token_types.weight",
                               "token_embd_norm",
                               "blk.",
                               "attn_q",
                               "attn_k",
                               "attn_v",
                               "attn_output",
                               "attn_output_norm",
                               "ffn_up",
                               "ffn_down",
                               "layer_output_norm"}
                       : Names{"embeddings.word_embeddings.weight",
                               "embeddings.position_embeddings.weight",
                               "embeddings.token_type_embeddings.weight",
                               "embeddings.LayerNorm",
                               "encoder.layer.",
                               "attention.self.query",
                               "attention.self.key",
                               "attention.self.value",
                               "attention.output.dense",
                               "attention.output.LayerNorm",
                               "intermediate.dense",
                               "output.dense",
                               "output.LayerNorm"};
  // A file with more layers than the config says would otherwise load fine
  // and silently run a truncated model.
  const std::string layer_prefix = prefix + n.layer_prefix;
  for (const TensorView* t : st.All()) {
    if (t->name.rfind(layer_prefix, 0) != 0) continue;
    const int layer = std::atoi(t->name.c_str() + layer_prefix.size());
    if (layer >= c.n_layers) {
      throw InputError(source + ": tensor '" + t->name + "' belongs to layer " + std::to_string(layer) +
                       ", but " + (gguf ? "bert.block_count" : "config.json") + " says " +
                       std::to_string(c.n_layers) + " layers — mismatched config?");
    }
  }
  const Lookup l(st, prefix, source);
  const int64_t d = c.d_model, ff = c.d_ff;
  BertWeights w;
  w.word_embeddings = l.Require(n.word, {c.vocab_size, d});
  w.position_embeddings = l.Require(n.position, {c.max_positions, d});
  w.token_type_embeddings = l.Require(n.token_type, {c.type_vocab_size, d});
  w.embeddings_norm = l.Norm(n.embd_norm, d);
  w.layers.resize(static_cast<size_t>(c.n_layers));
  for (int i = 0; i < c.n_layers; ++i) {
    const std::string p = n.layer_prefix + std::to_string(i) + ".";
    BertLayer& layer = w.layers[static_cast<size_t>(i)];
    layer.query = l.Linear(p + n.q, d, d);
    layer.key = l.Linear(p + n.k, d, d);
    layer.value = l.Linear(p + n.v, d, d);
    layer.attn_output = l.Linear(p + n.attn_out, d, d);
    layer.attn_norm = l.Norm(p + n.attn_norm, d);
    layer.intermediate = l.Linear(p + n.up, ff, d);
    layer.output = l.Linear(p + n.down, d, ff);
    layer.output_norm = l.Norm(p + n.out_norm, d);
  }
  return w;
}

}  // namespace tokenlora

namespace tokenlora {

const char* EncoderPrecisionName(EncoderPrecision p) {
  return p == EncoderPrecision::kInt8 ? "int8" : "f32";
}

EncoderPrecision ParseEncoderPrecision(std::string_view spec, std::string_view flag) {
  if (spec == "f32") return EncoderPrecision::kF32;
  if (spec == "int8") return EncoderPrecision::kInt8;
  if (spec == "auto") return kernels::Int8Accelerated() ? EncoderPrecision::kInt8 : EncoderPrecision::kF32;
  throw InputError(std::string(flag) + " " + io_internal::Quote(spec) +
                   ": expected f32 (exact, the reference's arithmetic), int8 (8-bit weights and "
                   "activations, ~3x faster) or auto");
}

std::vector<int32_t> OutlierChannels(const std::vector<float>& peaks) {
  if (peaks.empty()) return {};
  std::vector<float> sorted = peaks;
  const auto mid = sorted.begin() + static_cast<std::ptrdiff_t>(sorted.size() / 2);
  std::nth_element(sorted.begin(), mid, sorted.end());
  const float median = *mid;
  std::vector<int32_t> out;
  for (size_t j = 0; j < peaks.size(); ++j) {
    if (peaks[j] > 0 && peaks[j] >= kOutlierRatio * median) out.push_back(static_cast<int32_t>(j));
  }
  std::sort(out.begin(), out.end(), [&](int32_t a, int32_t b) {
    return peaks[static_cast<size_t>(a)] > peaks[static_cast<size_t>(b)];
  });
  if (out.size() > static_cast<size_t>(kMaxOutliers)) out.resize(static_cast<size_t>(kMaxOutliers));
  std::sort(out.begin(), out.end());
  return out;
}

namespace {

void PackLinear(BertLinear& lin, const std::vector<int32_t>& outliers) {
  const TensorView& w = lin.weight;
  const int64_t n_out = w.shape[0], n_in = w.shape[1];
  if (n_in % 32 != 0) return;  // stays f32
  if (outliers.empty() && kernels::Int8Packable(w.dtype)) {
    lin.packed = kernels::PackForInt8(w);
    return;
  }
  const size_t row_bytes = RowBytes(DType::kQ8_0, n_in);
  std::vector<float> row(static_cast<size_t>(n_in));
  std::vector<uint8_t> q8(row_bytes * static_cast<size_t>(n_out));
  lin.outlier_channels = outliers;
  lin.outlier_columns.assign(outliers.size() * static_cast<size_t>(n_out), 0.0f);
  for (int64_t r = 0; r < n_out; ++r) {
    kernels::DequantizeRow(w.dtype, w.RowPtr(r), row.data(), n_in);
    for (size_t k = 0; k < outliers.size(); ++k) {
      float& v = row[static_cast<size_t>(outliers[k])];
      lin.outlier_columns[k * static_cast<size_t>(n_out) + static_cast<size_t>(r)] = v;
      v = 0.0f;  // added in f32; zero here so it cannot widen its block's scale either
    }
    kernels::QuantizeRow(DType::kQ8_0, row.data(), q8.data() + static_cast<size_t>(r) * row_bytes, n_in);
  }
  // PackForInt8 copies: q8 is scratch.
  lin.packed = kernels::PackForInt8(TensorView{w.name, DType::kQ8_0, {n_out, n_in}, q8.data()});
}

}  // namespace

void PackBertForInt8(BertWeights& w, const BertActivationRanges* ranges) {
  for (size_t l = 0; l < w.layers.size(); ++l) {
    BertLayer& layer = w.layers[l];
    const std::vector<int32_t> attention_outliers =
        ranges ? OutlierChannels(ranges->attention_input.at(l)) : std::vector<int32_t>{};
    const std::vector<int32_t> mlp_outliers = ranges ? OutlierChannels(ranges->mlp_input.at(l)) : std::vector<int32_t>{};
    for (BertLinear* lin : {&layer.query, &layer.key, &layer.value}) PackLinear(*lin, attention_outliers);
    PackLinear(layer.intermediate, mlp_outliers);
    PackLinear(layer.attn_output, {});
    PackLinear(layer.output, {});
  }
}

}  // namespace tokenlora
