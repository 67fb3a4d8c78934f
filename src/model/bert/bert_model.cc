#include "model/bert/bert_model.h"

#include <filesystem>

#include "core/error.h"

namespace tokenlora {
namespace fs = std::filesystem;
namespace {

// Calibration text of the int8 encoder: ordinary English across the router's
// kinds of text (arithmetic, science, code, a reading passage).
constexpr const char* kCalibrationText =
    "Question: A baker makes 24 muffins and sells them in boxes of 4. How many boxes does she fill? "
    "Which process lets plants turn sunlight into chemical energy? A. respiration B. photosynthesis. "
    "Write a Python function that returns the largest number in a list, then explain its complexity. "
    "The printing press, built around 1440 in Mainz, spread across Europe within a few decades and "
    "changed how people shared news, science and religious texts.";

}  // namespace

std::unique_ptr<BertModel> BertModel::Load(const std::string& path, EncoderPrecision precision) {
  std::unique_ptr<BertModel> m = LoadF32(path);
  if (precision == EncoderPrecision::kInt8) {
    // Outlier channels are a property of the model, not of the text: one
    // f32 pass over a fixed calibration text finds them.
    const std::vector<int32_t> ids = m->Tokenize(kCalibrationText);
    ThreadPool pool(1);
    BertWorkspace ws;
    BertActivationRanges ranges;
    BertForward(m->config_, m->weights_, {&ids, 1}, pool, ws, &ranges);
    PackBertForInt8(m->weights_, &ranges);
  }
  m->precision_ = precision;
  return m;
}

std::unique_ptr<BertModel> BertModel::LoadF32(const std::string& path) {
  std::error_code ec;
  const bool gguf = fs::is_regular_file(path, ec) && fs::path(path).extension() == ".gguf";
  if (!gguf && !fs::is_directory(path, ec)) {
    throw InputError(path +
                     ": not a model directory or .gguf file; the embedder is a sentence-transformers model "
                     "directory (scripts/fetch-models puts all-MiniLM-L6-v2 in models/)");
  }
  if (gguf) {
    auto checkpoint = BertCheckpoint::Open(path);
    const GgufFile& g = *checkpoint->gguf();
    const BertConfig config = BertConfigFromGguf(g);
    // sentence-transformers files beside the GGUF (a converted model's
    // directory) say how it pools, normalises and truncates.
    const fs::path dir = fs::path(path).parent_path();
    SentenceConfig sentence = fs::exists(dir / "modules.json", ec) ? SentenceConfigFromDirectory(dir.string())
                                                                   : SentenceConfigFromGguf(g);
    sentence.Resolve(config, path);
    std::unique_ptr<BertModel> m(new BertModel(WordPieceTokenizer::FromGguf(g)));
    m->dir_ = path;
    m->weights_ = BertWeightsFromCheckpoint(*checkpoint, config, path);
    m->checkpoint_ = std::move(checkpoint);
    m->config_ = config;
    m->sentence_ = sentence;
    return m;
  }
  const std::string& dir = path;
  SentenceConfig sentence = SentenceConfigFromDirectory(dir);
  const std::string tdir = (fs::path(dir) / sentence.transformer_path).string();
  if (!fs::exists(fs::path(tdir) / "config.json", ec)) {
    throw InputError(tdir + ": no config.json — not a Hugging Face BERT or sentence-transformers model directory");
  }
  BertConfig config = BertConfigFromJson((fs::path(tdir) / "config.json").string());
  sentence.Resolve(config, dir);
  WordPieceTokenizer tokenizer = WordPieceTokenizer::LoadDirectory(tdir);
  if (tokenizer.vocab_size() > config.vocab_size) {
    throw InputError(tdir + ": the tokenizer has " + std::to_string(tokenizer.vocab_size()) +
                     " tokens but the encoder's vocab_size is " + std::to_string(config.vocab_size) +
                     " — tokenizer and weights from different models?");
  }
  // The private constructor keeps make_unique out.
  std::unique_ptr<BertModel> m(new BertModel(std::move(tokenizer)));
  m->dir_ = dir;
  m->checkpoint_ = BertCheckpoint::Open(tdir);
  m->weights_ = BertWeightsFromCheckpoint(*m->checkpoint_, config, tdir);
  m->config_ = config;
  m->sentence_ = sentence;
  return m;
}

std::vector<int32_t> BertModel::Tokenize(std::string_view text) const {
  std::vector<int32_t> pieces = tokenizer_.Encode(text, /*add_special_tokens=*/false);
  if (pieces.size() > static_cast<size_t>(max_pieces())) pieces.resize(static_cast<size_t>(max_pieces()));
  return WithSpecialTokens(pieces);
}

std::vector<int32_t> BertModel::WithSpecialTokens(std::span<const int32_t> pieces) const {
  TL_CHECK(pieces.size() <= static_cast<size_t>(max_pieces()));
  std::vector<int32_t> ids;
  ids.reserve(pieces.size() + 2);
  ids.push_back(tokenizer_.cls_id());
  ids.insert(ids.end(), pieces.begin(), pieces.end());
  ids.push_back(tokenizer_.sep_id());
  return ids;
}

void BertModel::Embed(std::span<const std::vector<int32_t>> batch, ThreadPool& pool, BertWorkspace& ws,
                      float* out) const {
  if (batch.empty()) return;
  BertForward(config_, weights_, batch, pool, ws);
  PoolSentences(sentence_, config_.d_model, batch, ws.hidden(), out);
}

void BertModel::EmbedTexts(std::span<const std::string> texts, ThreadPool& pool, BertWorkspace& ws,
                           float* out) const {
  std::vector<std::vector<int32_t>> batch;
  batch.reserve(texts.size());
  for (const std::string& t : texts) batch.push_back(Tokenize(t));
  Embed(batch, pool, ws, out);
}

}  // namespace tokenlora
