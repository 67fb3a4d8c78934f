#include "router/embedder.h"

#include <chrono>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "io/io_util.h"
#include "router/sha256.h"

namespace tokenlora {

RouteWindow RouteWindow::Parse(std::string_view spec) {
  RouteWindow w;
  if (spec == "whole") return w;
  if (spec.substr(0, 5) == "last:") {
    const std::string n(spec.substr(5));
    char* end = nullptr;
    const long v = std::strtol(n.c_str(), &end, 10);
    if (!n.empty() && *end == '\0' && v >= 1 && v <= 1'000'000) {
      w.last_pieces = static_cast<int>(v);
      return w;
    }
  }
  throw InputError("--window " + io_internal::Quote(spec) +
                   ": expected 'whole' or 'last:N' (N word pieces, N >= 1)");
}

std::string RouteWindow::Describe() const {
  return last_pieces == 0 ? "whole text" : "last " + std::to_string(last_pieces) + " word pieces";
}

std::unique_ptr<Embedder> Embedder::Load(const std::string& dir, int n_threads) {
  auto pool = std::make_unique<ThreadPool>(n_threads);
  std::unique_ptr<Embedder> e = Load(dir, *pool);
  e->own_pool_ = std::move(pool);
  return e;
}

std::unique_ptr<Embedder> Embedder::Load(const std::string& dir, ThreadPool& pool) {
  std::unique_ptr<Embedder> e(new Embedder());
  e->model_ = BertModel::Load(dir);
  e->pool_ = &pool;
  const BertModel& m = *e->model_;
  EmbedderIdentity& id = e->identity_;
  std::string name = std::filesystem::path(dir).lexically_normal().filename().string();
  if (name.empty()) name = std::filesystem::path(dir).lexically_normal().parent_path().filename().string();
  id.name = name;
  if (m.weight_files().size() == 1) {
    id.sha256 = Sha256File(m.weight_files()[0]);
  } else {  // shards: the hash of their hashes, in order
    Sha256 h;
    for (const std::string& f : m.weight_files()) h.Update(Sha256File(f));
    id.sha256 = h.HexDigest();
  }
  id.dim = m.dim();
  id.max_seq_length = m.sentence().max_seq_length;
  id.pooling = PoolingName(m.sentence().pooling);
  id.normalize = m.sentence().normalize;
  return e;
}

void Embedder::EmbedBatch(std::span<const std::string> texts, float* out) {
  model_->EmbedTexts(texts, *pool_, ws_, out);
}

const std::vector<int32_t>& Embedder::Pieces(std::string_view text, size_t enough) {
  const WordPieceTokenizer& tok = model_->tokenizer();
  // Keep the stable prefix only when `text` still starts with it.
  if (text.size() < stable_text_.size() ||
      std::memcmp(text.data(), stable_text_.data(), stable_text_.size()) != 0) {
    stable_text_.clear();
    stable_ids_.clear();
  }
  if (stable_ids_.size() < enough) {
    const std::string_view fresh = text.substr(stable_text_.size());
    const size_t cut = tok.StableSplit(fresh);
    const size_t before = stable_ids_.size();
    tok.EncodeTo(fresh.substr(0, cut), &stable_ids_);
    stable_text_.append(fresh.substr(0, cut));
    ids_ = stable_ids_;
    tok.EncodeTo(fresh.substr(cut), &ids_);
    stats_.pieces_tokenized += static_cast<int64_t>(ids_.size() - before);
  } else {
    ids_ = stable_ids_;  // the first `enough` pieces cannot change any more
  }
  return ids_;
}

const std::vector<float>& Embedder::EmbedWindow(std::string_view text, const RouteWindow& window) {
  ++stats_.calls;
  const size_t max_pieces = static_cast<size_t>(model_->max_pieces());
  const bool whole = window.last_pieces == 0;
  const std::vector<int32_t>& pieces = Pieces(text, whole ? max_pieces : SIZE_MAX);
  const size_t keep = std::min(max_pieces, whole ? pieces.size() : static_cast<size_t>(window.last_pieces));
  const size_t n = std::min(keep, pieces.size());
  const auto first = whole ? pieces.begin() : pieces.end() - static_cast<std::ptrdiff_t>(n);
  if (has_last_ && last_window_.size() == n &&
      std::equal(first, first + static_cast<std::ptrdiff_t>(n), last_window_.begin())) {
    return last_embedding_;
  }
  last_window_.assign(first, first + static_cast<std::ptrdiff_t>(n));
  const std::vector<int32_t> ids = model_->WithSpecialTokens(last_window_);
  last_embedding_.resize(static_cast<size_t>(dim()));
  const auto t0 = std::chrono::steady_clock::now();
  model_->Embed({&ids, 1}, *pool_, ws_, last_embedding_.data());
  stats_.encoder_ms +=
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  ++stats_.encoder_runs;
  has_last_ = true;
  return last_embedding_;
}

}  // namespace tokenlora
