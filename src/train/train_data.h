// Training data: a JSONL file (optionally sliced, "FILE.jsonl[:90%]") whose
// records a router template (router/record_template.h) turns into a prompt
// and an answer. The prompt is the formatted text up to and including
// "Answer:" (the template's NAME_prompt form); the answer is the rest, to
// which the tokenizer's EOS is appended so the adapter learns to stop.
// Prompt and answer are tokenized separately, so the boundary is exactly
// where generation starts after the prompt.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"
#include "train/llama_train_graph.h"

namespace tokenlora {

struct TrainDataOptions {
  std::string template_spec;  // built-in name (gsm8k, ...) or a custom template containing "Answer:"
  int max_len = 512;          // tokens per sequence; longer answers are cut at the end, long prompts at the start
  int64_t limit = -1;         // records after the slice; < 0: all
};

struct TrainDataset {
  std::string source;  // "FILE[SLICE]"
  std::vector<TrainSequence> sequences;
  int64_t truncated = 0;  // sequences cut to max_len
  int64_t NumTokens() const;
  int64_t NumTargets() const;
};

// Throws InputError "FILE:LINE: ..." for a record that is not JSON or lacks
// a template field, and for a template without "Answer:".
TrainDataset LoadTrainData(const std::string& file_with_slice, const TrainDataOptions& options,
                           const Tokenizer& tokenizer, const std::string& flag = "--data");

// Batches of up to `batch` sequence indices for one epoch, with length
// bucketing: the data is shuffled (seeded), cut into chunks of 64 batches,
// each chunk sorted by length and cut into batches (so a batch holds
// sequences of similar length and the per-batch cost is even), then the
// batch order is shuffled. Deterministic in (seed, epoch).
std::vector<std::vector<int32_t>> MakeBatches(const TrainDataset& data, int batch, uint64_t seed, int64_t epoch);

}  // namespace tokenlora
