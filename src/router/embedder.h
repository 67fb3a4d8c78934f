// The router's sentence embedder: a BertModel with its thread pool and
// scratch, its identity (name + weights sha256), and the machinery that makes
// routing a growing text cheap without changing any result:
//   * the text is tokenized incrementally: pieces before the last
//     whitespace of the previous call are kept (WordPieceTokenizer::StableSplit);
//   * the embedding is reused while the window of word pieces is unchanged
//     (with the whole-text window, once the text passes max_seq_length pieces
//     the window is frozen and routing costs nothing).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/thread_pool.h"
#include "model/bert/bert_model.h"
#include "router/router_file.h"

namespace tokenlora {

// Which word pieces of the running text are embedded.
struct RouteWindow {
  int last_pieces = 0;  // 0: the whole text (its first max_seq_length - 2 pieces, as the reference)
  // "whole" or "last:N" (N word pieces of the embedder). Throws InputError.
  // InputError naming `flag` (as the user typed it) on a bad spec.
  static RouteWindow Parse(std::string_view spec, std::string_view flag = "--window");
  std::string Describe() const;
};

// What makes routing one running text (one sequence) cheap: its incremental
// tokenization and the last window it embedded. One per sequence; an
// Embedder serves any number of them.
struct EmbedderState {
  // Incremental tokenization: stable_text (a prefix of the last text, ending
  // after whitespace) tokenizes to stable_ids; ids adds the rest's pieces.
  std::string stable_text;
  std::vector<int32_t> stable_ids;
  std::vector<int32_t> ids;
  // The last window embedded and its embedding ([dim]).
  std::vector<int32_t> last_window;
  bool has_last = false;
  std::vector<float> last_embedding;
  // [CLS] + window + [SEP] when PrepareWindow found the encoder must run.
  std::vector<int32_t> pending;
};

// Not thread-safe: it holds the encoder's scratch and the reuse state of its
// own caller (EmbedWindow without a state); the BertModel inside is immutable.
class Embedder {
 public:
  // Loads the model in `dir` and hashes its weights. Throws InputError.
  // `precision`: the encoder's arithmetic (f32 is exact; int8 is the
  // fast one, checked against f32 by tests/router/encoder_precision_test.cc).
  static std::unique_ptr<Embedder> Load(const std::string& dir, int n_threads,
                                        EncoderPrecision precision = EncoderPrecision::kF32);
  // The same, running on `pool` (which must outlive it) — e.g. the
  // generator's, so routing and decode share one set of threads.
  static std::unique_ptr<Embedder> Load(const std::string& dir, ThreadPool& pool,
                                        EncoderPrecision precision = EncoderPrecision::kF32);

  const EmbedderIdentity& identity() const { return identity_; }
  const BertModel& model() const { return *model_; }
  int dim() const { return model_->dim(); }

  // Embeddings of whole texts (truncated as sentence-transformers does), in
  // one encoder batch. out: [texts.size(), dim()]
  void EmbedBatch(std::span<const std::string> texts, float* out);

  // The embedding of `window` over `text` ([dim()]), reusing the previous
  // call's tokenization when `text` extends the previous text and its
  // embedding when the window's pieces are unchanged. Valid until the next call.
  const std::vector<float>& EmbedWindow(std::string_view text, const RouteWindow& window);
  // The same for one sequence's `state`: PrepareWindow, then EmbedPending.
  const std::vector<float>& EmbedWindow(EmbedderState& state, std::string_view text, const RouteWindow& window);

  // Batched form, for many sequences routing at once: PrepareWindow finds
  // `window` over `text` in `state` and returns true when its pieces changed
  // (state.pending then holds the encoder's input); EmbedPending runs the
  // encoder once over the pending windows of `states` and leaves each
  // embedding in its state's last_embedding. A text embeds the same alone or
  // in a batch (the encoder stacks sequences without padding).
  bool PrepareWindow(EmbedderState& state, std::string_view text, const RouteWindow& window);
  void EmbedPending(std::span<EmbedderState* const> states);

  struct Stats {
    int64_t calls = 0;             // windows asked for
    int64_t encoder_runs = 0;      // of which ran the encoder (a batch of k windows counts k)
    int64_t encoder_batches = 0;   // encoder calls
    int64_t pieces_tokenized = 0;  // word pieces produced by the tokenizer (incremental work)
    double encoder_ms = 0;         // time in the encoder
    double encoder_flops = 0;      // floating-point operations of those runs (EncoderFlops)
  };
  // Floating-point operations of the encoder on one window of n tokens
  // ([CLS] and [SEP] included): every layer's four attention projections,
  // the two feed-forward matmuls and the n² scores and weighted sums.
  double EncoderFlops(int64_t n_tokens) const;
  const Stats& stats() const { return stats_; }

 private:
  Embedder() = default;
  // The pieces of `text`, stopping early once `enough` pieces are known.
  const std::vector<int32_t>& Pieces(EmbedderState& state, std::string_view text, size_t enough);

  std::unique_ptr<BertModel> model_;
  std::unique_ptr<ThreadPool> own_pool_;  // when not given one
  ThreadPool* pool_ = nullptr;
  BertWorkspace ws_;
  EmbedderIdentity identity_;
  Stats stats_;
  EmbedderState own_state_;  // EmbedWindow's without a state
  std::vector<std::vector<int32_t>> batch_;  // EmbedPending's encoder input
  std::vector<float> batch_out_;             // [batch, dim]
};

}  // namespace tokenlora
