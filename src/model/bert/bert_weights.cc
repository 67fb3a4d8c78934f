#include "model/bert/bert_weights.h"

#include "core/error.h"
#include "io/io_util.h"
#include "kernels/kernels.h"
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
    return {Require(name + ".weight", {n_out, n_in}), Vector(name + ".bias", n_out)};
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
