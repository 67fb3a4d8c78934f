#include "train/train_data.h"

#include <algorithm>
#include <numeric>

#include "core/error.h"
#include "router/record_template.h"
#include "router/task_data.h"

namespace tokenlora {
namespace {

constexpr std::string_view kAnswerMark = "Answer:";

// The template that formats only the prompt part.
std::string PromptSpec(const std::string& spec) {
  if (RecordTemplate::IsBuiltin(spec)) {
    if (spec.ends_with("_prompt")) {
      throw InputError("--template: '" + spec + "' has no answer part; use '" + spec.substr(0, spec.size() - 7) +
                       "' for training");
    }
    return spec + "_prompt";
  }
  const size_t pos = spec.find(kAnswerMark);
  if (pos == std::string::npos || spec.find('{', pos) == std::string::npos) {
    throw InputError(
        "--template: a custom training template must contain \"Answer:\" followed by the answer "
        "field(s), e.g. \"Q: {question}\\nAnswer: {answer}\"; got \"" +
        spec + "\"");
  }
  return spec.substr(0, pos + kAnswerMark.size());
}

}  // namespace

int64_t TrainDataset::NumTokens() const {
  int64_t n = 0;
  for (const auto& s : sequences) n += static_cast<int64_t>(s.tokens.size());
  return n;
}

int64_t TrainDataset::NumTargets() const {
  int64_t n = 0;
  for (const auto& s : sequences) n += s.NumTargets();
  return n;
}

TrainDataset LoadTrainData(const std::string& file_with_slice, const TrainDataOptions& options,
                           const Tokenizer& tokenizer, const std::string& flag) {
  if (options.max_len < 2) throw InputError("--max-len: expected >= 2, got " + std::to_string(options.max_len));
  TaskSpec spec = TaskSpec::FromFile("train", file_with_slice);
  spec.flag = flag;
  spec.template_spec = options.template_spec;
  const RecordTemplate full = RecordTemplate::Parse(options.template_spec);
  const RecordTemplate prompt = RecordTemplate::Parse(PromptSpec(options.template_spec));
  TaskRecords full_records(spec, full, options.limit, /*skip_bad=*/false);
  TaskRecords prompt_records(spec, prompt, options.limit, /*skip_bad=*/false);

  TrainDataset data;
  data.source = spec.Describe();
  std::vector<FormattedRecord> fulls, prompts;
  try {
    for (bool more = true; more;) {
      more = full_records.NextBatch(256, &fulls);
      prompt_records.NextBatch(256, &prompts);
    }
  } catch (const InputError& e) {
    // The reader suggests --skip-bad, which training does not offer (a
    // skipped record would leave the prompt and answer readers out of step).
    std::string message = e.what();
    const std::string skip_hint = ", or pass --skip-bad to skip bad records";
    if (const size_t pos = message.find(skip_hint); pos != std::string::npos) message.erase(pos, skip_hint.size());
    throw InputError(message);
  }
  TL_CHECK(fulls.size() == prompts.size());
  const auto max_len = static_cast<size_t>(options.max_len);
  for (size_t i = 0; i < fulls.size(); ++i) {
    const std::string& text = fulls[i].text;
    const std::string& head = prompts[i].text;
    if (!text.starts_with(head)) {
      throw InputError(spec.file + ":" + std::to_string(fulls[i].line) +
                       ": the formatted record does not start "
                       "with its prompt part (the text up to \"Answer:\"); does a field itself contain \"Answer:\"?");
    }
    std::vector<int32_t> p = tokenizer.EncodeWithBos(head, false);  // BOS when the model wants one
    std::vector<int32_t> a = tokenizer.Encode(std::string_view(text).substr(head.size()), false);
    if (tokenizer.eos_id() >= 0) a.push_back(tokenizer.eos_id());
    if (a.empty()) continue;
    if (p.size() + a.size() > max_len) {
      ++data.truncated;
      // Keep at least a quarter of max_len (and one token) of answer; cut the prompt from the start.
      const size_t keep_answer = std::min(a.size(), std::max<size_t>(1, max_len / 4));
      if (p.size() + keep_answer > max_len) p.erase(p.begin(), p.end() - static_cast<ptrdiff_t>(max_len - keep_answer));
      a.resize(max_len - p.size());
    }
    if (p.empty()) {  // the first answer token needs a position before it
      p.push_back(a.front());
      a.erase(a.begin());
      if (a.empty()) continue;
    }
    TrainSequence seq;
    seq.n_prompt = static_cast<int>(p.size());
    seq.tokens = std::move(p);
    seq.tokens.insert(seq.tokens.end(), a.begin(), a.end());
    data.sequences.push_back(std::move(seq));
  }
  if (data.sequences.empty()) {
    throw InputError(flag + " " + spec.Describe() + ": no training records (empty file or slice?)");
  }
  return data;
}

std::vector<std::vector<int32_t>> MakeBatches(const TrainDataset& data, int batch, uint64_t seed, int64_t epoch) {
  const auto n = static_cast<int32_t>(data.sequences.size());
  std::vector<int32_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  SplitMix64 rng(seed * 0x9e3779b97f4a7c15ull + static_cast<uint64_t>(epoch) + 1);
  auto shuffle = [&rng](auto& v) {  // Fisher–Yates with our portable generator
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng.Next() % i]);
  };
  shuffle(order);
  const size_t b = static_cast<size_t>(std::max(1, batch));
  const size_t chunk = 64 * b;
  std::vector<std::vector<int32_t>> batches;
  for (size_t start = 0; start < order.size(); start += chunk) {
    const auto first = order.begin() + static_cast<ptrdiff_t>(start);
    const auto last = order.begin() + static_cast<ptrdiff_t>(std::min(order.size(), start + chunk));
    std::stable_sort(first, last, [&](int32_t x, int32_t y) {
      return data.sequences[static_cast<size_t>(x)].tokens.size() <
             data.sequences[static_cast<size_t>(y)].tokens.size();
    });
    for (auto it = first; it < last;
         it += static_cast<ptrdiff_t>(std::min<size_t>(b, static_cast<size_t>(last - it)))) {
      batches.emplace_back(it, it + static_cast<ptrdiff_t>(std::min<size_t>(b, static_cast<size_t>(last - it))));
    }
  }
  shuffle(batches);
  return batches;
}

}  // namespace tokenlora
