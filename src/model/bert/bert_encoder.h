// The BERT encoder forward pass over a batch of token sequences, and the
// sentence-transformers pooling after it. Sequences are stacked without
// padding ([Σ n_tokens, d_model]): the linear layers see one long matrix and
// attention runs per sequence, so a text embeds the same alone or in a batch.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/thread_pool.h"
#include "model/bert/bert_config.h"
#include "model/bert/bert_weights.h"

namespace tokenlora {

// Scratch of one caller (not shareable between threads). Buffers grow to the
// largest batch seen and are reused.
class BertWorkspace {
 public:
  BertWorkspace();
  ~BertWorkspace();
  BertWorkspace(const BertWorkspace&) = delete;
  BertWorkspace& operator=(const BertWorkspace&) = delete;

  // Last hidden states of the latest Forward: [n_tokens, d_model].
  const float* hidden() const { return x_.data(); }

 private:
  friend void BertForward(const BertConfig&, const BertWeights&, std::span<const std::vector<int32_t>>,
                          ThreadPool&, BertWorkspace&, BertActivationRanges*);
  std::vector<float> x_;                  // [n_tokens, d_model] residual stream
  std::vector<float> q_;                  // [n_tokens, d_model]
  std::vector<float> k_;                  // [n_tokens, d_model]
  std::vector<float> v_;                  // [n_tokens, d_model]
  std::vector<float> ctx_;                // [n_tokens, d_model] attention output
  std::vector<float> ff_;                 // [n_tokens, d_ff]
  std::vector<float> xz_;                 // [n_tokens, max(d_model, d_ff)] int8 input without outlier channels
  std::vector<float> keys_;               // per sequence: its keys in the attention kernels' tiles
  std::vector<float> values_;             // per sequence: [capacity, d_model]
};

// Runs the encoder on every sequence of `batch` (token ids including [CLS]
// and [SEP], each 1..max_positions long, ids < vocab_size: checked) and
// leaves the last hidden states in ws.hidden(), sequences one after another.
// Token types are all 0 and positions start at 0 for every sequence.
// `ranges`, when given, gets the largest |input| per channel of q/k/v and
// the MLP's first matmul in every layer (maxima with its earlier contents).
void BertForward(const BertConfig& config, const BertWeights& weights,
                 std::span<const std::vector<int32_t>> batch, ThreadPool& pool, BertWorkspace& ws,
                 BertActivationRanges* ranges = nullptr);

// Pools each sequence's rows of `hidden` ([Σ n_tokens, d_model], the batch
// order of BertForward) as `sentence` says, L2-normalising when asked.
// out: [batch.size(), d_model].
void PoolSentences(const SentenceConfig& sentence, int d_model, std::span<const std::vector<int32_t>> batch,
                   const float* hidden, float* out);

}  // namespace tokenlora
