#include "model/bert/bert_encoder.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "kernels/attention.h"
#include "kernels/int8_matmul.h"
#include "kernels/kernels.h"

namespace tokenlora {
namespace {

// Rows per ParallelFor chunk for the row-wise ops (bias, GELU, LayerNorm).
constexpr size_t kRowGrain = 8;

void ForRows(ThreadPool& pool, int64_t n_rows, const std::function<void(int64_t)>& fn) {
  pool.ParallelFor(static_cast<size_t>(n_rows), kRowGrain, [&](size_t begin, size_t end, int) {
    for (size_t r = begin; r < end; ++r) fn(static_cast<int64_t>(r));
  });
}

// The int8 product of `lin` (packed) over x: x's outlier channels are
// zeroed in xz (scratch [n, n_in]) before quantization and added in f32.
// `y` gets no bias. xz is unused when lin has no outlier channels.
const float* Int8Input(const BertLinear& lin, const float* x, int64_t n, float* xz, ThreadPool& pool) {
  if (lin.outlier_channels.empty()) return x;
  const int64_t n_in = lin.weight.shape[1];
  ForRows(pool, n, [&](int64_t t) {
    std::copy(x + t * n_in, x + (t + 1) * n_in, xz + t * n_in);
    for (int32_t c : lin.outlier_channels) xz[t * n_in + c] = 0.0f;
  });
  return xz;
}

// y += Σ_k x[:, c_k] ⊗ outlier_columns[k], then + bias.  x: [n, n_in], y: [n, n_out]
void AddOutliersAndBias(const BertLinear& lin, const float* x, int64_t n, float* y, ThreadPool& pool) {
  const int64_t n_in = lin.weight.shape[1], n_out = lin.weight.shape[0];
  ForRows(pool, n, [&](int64_t t) {
    float* row = y + t * n_out;
    for (size_t k = 0; k < lin.outlier_channels.size(); ++k) {
      const float v = x[t * n_in + lin.outlier_channels[k]];
      const float* col = lin.outlier_columns.data() + k * static_cast<size_t>(n_out);
      for (int64_t o = 0; o < n_out; ++o) row[o] += v * col[o];
    }
    kernels::AddInPlace(row, lin.bias.data(), n_out);  // bit-identical to a plain loop
  });
}

// y = x · Wᵀ + b.  x: [n, n_in], y: [n, n_out]; xz: scratch [n, n_in].
void Linear(const BertLinear& lin, const float* x, int64_t n, float* y, float* xz, ThreadPool& pool) {
  if (lin.packed != nullptr) {
    kernels::MatMulInt8(*lin.packed, Int8Input(lin, x, n, xz, pool), n, y, pool);
  } else {
    kernels::MatMul(lin.weight, x, n, y, pool);
  }
  AddOutliersAndBias(lin, x, n, y, pool);
}

// q, k, v = Linear(query/key/value, x); when all three run int8 with the
// same outlier channels, x is quantized once and the matmuls share one
// parallel region (the same results as three calls).
void QueryKeyValue(const BertLayer& layer, const float* x, int64_t n, float* q, float* k, float* v, float* xz,
                   ThreadPool& pool) {
  const BertLinear* lins[3] = {&layer.query, &layer.key, &layer.value};
  float* ys[3] = {q, k, v};
  bool shared = true;
  for (const BertLinear* l : lins) {
    shared = shared && l->packed != nullptr && l->packed->dtype == layer.query.packed->dtype &&
             l->outlier_channels == layer.query.outlier_channels;
  }
  if (!shared) {
    for (int i = 0; i < 3; ++i) Linear(*lins[i], x, n, ys[i], xz, pool);
    return;
  }
  const kernels::PackedMatrix* ws[3] = {layer.query.packed.get(), layer.key.packed.get(), layer.value.packed.get()};
  kernels::MatMulInt8Shared(ws, ys, 3, Int8Input(layer.query, x, n, xz, pool), n, pool);
  for (int i = 0; i < 3; ++i) AddOutliersAndBias(*lins[i], x, n, ys[i], pool);
}

// x = LayerNorm(x + y), row by row.  x, y: [n, d]
void AddAndNorm(float* x, const float* y, const BertLayerNorm& norm, int64_t n, int64_t d, float eps,
                ThreadPool& pool) {
  ForRows(pool, n, [&](int64_t r) {
    float* row = x + r * d;
    kernels::AddInPlace(row, y + r * d, d);
    kernels::LayerNorm(row, norm.weight.data(), norm.bias.data(), row, d, eps);
  });
}

// Bidirectional self-attention of each sequence on the kernels' attention
// (the SIMD block kernel with its scalar twin): the sequence's keys and values
// are written to a KV layer of its own, laid out as the kernel reads them, and
// every token attends to every token of its sequence.
//   q, k, v, ctx: [n_tokens, d_model], heads side by side; offsets: first row
//   of each sequence and the total last
void SelfAttention(const BertConfig& c, std::span<const int64_t> offsets, const float* q, const float* k,
                   const float* v, float* ctx, std::vector<float>& keys, std::vector<float>& values,
                   ThreadPool& pool) {
  const size_t n_seq = offsets.size() - 1;
  const auto capacity = [&](size_t s) {
    const int64_t n = offsets[s + 1] - offsets[s];
    return (n + kernels::kKvCapacityStep - 1) / kernels::kKvCapacityStep * kernels::kKvCapacityStep;
  };
  int64_t total = 0;
  for (size_t s = 0; s < n_seq; ++s) total += capacity(s);
  const size_t floats = static_cast<size_t>(total * c.d_model);
  if (keys.size() < floats) keys.resize(floats);  // zeros: padding keys are read, never used
  if (values.size() < floats) values.resize(floats);
  std::vector<kernels::AttentionJob> jobs(n_seq);
  int64_t first = 0;  // first KV position of sequence s
  for (size_t s = 0; s < n_seq; ++s) {
    const int n = static_cast<int>(offsets[s + 1] - offsets[s]);
    kernels::KvLayer kv;
    kv.type = DType::kF32;
    kv.keys = keys.data() + first * c.d_model;
    kv.values = values.data() + first * c.d_model;
    kv.capacity = static_cast<int>(capacity(s));
    kv.n_kv_heads = c.n_heads;
    kv.head_dim = c.head_dim;
    for (int t = 0; t < n; ++t) {
      const int64_t row = (offsets[s] + t) * c.d_model;
      kernels::StoreKv(kv, t, k + row, v + row);
    }
    const kernels::AttentionShape shape{n, 0, c.n_heads, c.n_heads, c.head_dim, /*causal=*/false};
    jobs[s] = {q + offsets[s] * c.d_model, kv, ctx + offsets[s] * c.d_model, shape};
    first += capacity(s);
  }
  kernels::CausalAttentionBatch(jobs, pool);
}

// peak[j] = max(peak[j], max_t |x[t, j]|).  x: [n, d]
void RecordPeaks(const float* x, int64_t n, int64_t d, std::vector<float>* peak) {
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t j = 0; j < d; ++j) {
      float& p = (*peak)[static_cast<size_t>(j)];
      p = std::max(p, std::fabs(x[t * d + j]));
    }
  }
}

}  // namespace

BertWorkspace::BertWorkspace() = default;
BertWorkspace::~BertWorkspace() = default;

void BertForward(const BertConfig& c, const BertWeights& w, std::span<const std::vector<int32_t>> batch,
                 ThreadPool& pool, BertWorkspace& ws, BertActivationRanges* ranges) {
  const int64_t d = c.d_model, ff = c.d_ff;
  std::vector<int64_t> offsets(batch.size() + 1, 0);  // first row of each sequence
  for (size_t s = 0; s < batch.size(); ++s) {
    const int64_t n = static_cast<int64_t>(batch[s].size());
    if (n < 1 || n > c.max_positions) {
      throw InputError("BERT input of " + std::to_string(n) + " tokens; expected 1.." +
                       std::to_string(c.max_positions));
    }
    for (int32_t id : batch[s]) {
      if (id < 0 || id >= c.vocab_size) {
        throw InputError("token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                         std::to_string(c.vocab_size) + ")");
      }
    }
    offsets[s + 1] = offsets[s] + n;
  }
  const int64_t n_tok = offsets.back();
  if (n_tok == 0) return;
  const auto fit = [](std::vector<float>& v, int64_t n) {
    if (v.size() < static_cast<size_t>(n)) v.resize(static_cast<size_t>(n));
  };
  fit(ws.x_, n_tok * d);
  fit(ws.q_, n_tok * d);
  fit(ws.k_, n_tok * d);
  fit(ws.v_, n_tok * d);
  fit(ws.ctx_, n_tok * d);
  fit(ws.ff_, n_tok * ff);
  fit(ws.xz_, n_tok * std::max(d, ff));
  float* x = ws.x_.data();

  // Embeddings: word + position + token type 0, then LayerNorm.
  for (size_t s = 0; s < batch.size(); ++s) {
    std::vector<float> tmp(static_cast<size_t>(d));
    for (int64_t p = 0; p < static_cast<int64_t>(batch[s].size()); ++p) {
      float* row = x + (offsets[s] + p) * d;
      kernels::DequantizeRow(w.word_embeddings.dtype,
                             w.word_embeddings.RowPtr(batch[s][static_cast<size_t>(p)]), row, d);
      kernels::DequantizeRow(w.position_embeddings.dtype, w.position_embeddings.RowPtr(p), tmp.data(), d);
      kernels::AddInPlace(row, tmp.data(), d);
      kernels::DequantizeRow(w.token_type_embeddings.dtype, w.token_type_embeddings.RowPtr(0), tmp.data(), d);
      kernels::AddInPlace(row, tmp.data(), d);
      kernels::LayerNorm(row, w.embeddings_norm.weight.data(), w.embeddings_norm.bias.data(), row, d,
                          c.ln_eps);
    }
  }

  if (ranges) {
    ranges->attention_input.resize(w.layers.size(), std::vector<float>(static_cast<size_t>(d), 0.0f));
    ranges->mlp_input.resize(w.layers.size(), std::vector<float>(static_cast<size_t>(d), 0.0f));
  }
  for (size_t l = 0; l < w.layers.size(); ++l) {
    const BertLayer& layer = w.layers[l];
    if (ranges) RecordPeaks(x, n_tok, d, &ranges->attention_input[l]);
    QueryKeyValue(layer, x, n_tok, ws.q_.data(), ws.k_.data(), ws.v_.data(), ws.xz_.data(), pool);

    SelfAttention(c, offsets, ws.q_.data(), ws.k_.data(), ws.v_.data(), ws.ctx_.data(), ws.keys_, ws.values_,
                  pool);

    Linear(layer.attn_output, ws.ctx_.data(), n_tok, ws.q_.data(), ws.xz_.data(), pool);
    AddAndNorm(x, ws.q_.data(), layer.attn_norm, n_tok, d, c.ln_eps, pool);
    if (ranges) RecordPeaks(x, n_tok, d, &ranges->mlp_input[l]);
    Linear(layer.intermediate, x, n_tok, ws.ff_.data(), ws.xz_.data(), pool);
    ForRows(pool, n_tok, [&](int64_t r) { kernels::GeluErf(ws.ff_.data() + r * ff, ff); });
    Linear(layer.output, ws.ff_.data(), n_tok, ws.q_.data(), ws.xz_.data(), pool);
    AddAndNorm(x, ws.q_.data(), layer.output_norm, n_tok, d, c.ln_eps, pool);
  }
}

void PoolSentences(const SentenceConfig& sentence, int d_model, std::span<const std::vector<int32_t>> batch,
                   const float* hidden, float* out) {
  const int64_t d = d_model;
  int64_t row = 0;
  std::vector<double> acc(static_cast<size_t>(d));
  for (size_t s = 0; s < batch.size(); ++s) {
    const int64_t n = static_cast<int64_t>(batch[s].size());
    float* o = out + static_cast<int64_t>(s) * d;
    const float* h = hidden + row * d;
    switch (sentence.pooling) {
      case Pooling::kMean:  // every token is in the attention mask, [CLS] and [SEP] included
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int64_t t = 0; t < n; ++t) {
          for (int64_t j = 0; j < d; ++j) acc[static_cast<size_t>(j)] += h[t * d + j];
        }
        for (int64_t j = 0; j < d; ++j)
          o[j] = static_cast<float>(acc[static_cast<size_t>(j)] / static_cast<double>(n));
        break;
      case Pooling::kCls:
        std::copy(h, h + d, o);
        break;
      case Pooling::kMax:
        std::copy(h, h + d, o);
        for (int64_t t = 1; t < n; ++t) {
          for (int64_t j = 0; j < d; ++j) o[j] = std::max(o[j], h[t * d + j]);
        }
        break;
    }
    if (sentence.normalize) {  // torch.nn.functional.normalize: x / max(‖x‖, 1e-12)
      double sq = 0.0;
      for (int64_t j = 0; j < d; ++j) sq += double{o[j]} * o[j];
      const double inv = 1.0 / std::max(std::sqrt(sq), 1e-12);
      for (int64_t j = 0; j < d; ++j) o[j] = static_cast<float>(o[j] * inv);
    }
    row += n;
  }
}

}  // namespace tokenlora
