#include "router/embedder.h"

#include <chrono>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "io/io_util.h"
#include "router/sha256.h"

namespace tokenlora {

RouteWindow RouteWindow::Parse(std::string_view spec, std::string_view flag) {
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
  throw InputError(std::string(flag) + " " + io_internal::Quote(spec) +
                   ": expected 'whole' or 'last:N' (N word pieces, N >= 1)");
}

std::string RouteWindow::Describe() const {
  return last_pieces == 0 ? "whole text" : "last " + std::to_string(last_pieces) + " word pieces";
}

std::unique_ptr<Embedder> Embedder::Load(const std::string& dir, int n_threads, EncoderPrecision precision) {
  auto pool = std::make_unique<ThreadPool>(n_threads);
  std::unique_ptr<Embedder> e = Load(dir, *pool, precision);
  e->own_pool_ = std::move(pool);
  return e;
}

std::unique_ptr<Embedder> Embedder::Load(const std::string& dir, ThreadPool& pool, EncoderPrecision precision) {
  std::unique_ptr<Embedder> e(new Embedder());
  e->model_ = BertModel::Load(dir, precision);
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

const std::vector<int32_t>& Embedder::Pieces(EmbedderState& st, std::string_view text, size_t enough) {
  const WordPieceTokenizer& tok = model_->tokenizer();
  // Keep the stable prefix only when `text` still starts with it.
  if (text.size() < st.stable_text.size() ||
      std::memcmp(text.data(), st.stable_text.data(), st.stable_text.size()) != 0) {
    st.stable_text.clear();
    st.stable_ids.clear();
  }
  if (st.stable_ids.size() < enough) {
    const std::string_view fresh = text.substr(st.stable_text.size());
    const size_t cut = tok.StableSplit(fresh);
    const size_t before = st.stable_ids.size();
    tok.EncodeTo(fresh.substr(0, cut), &st.stable_ids);
    st.stable_text.append(fresh.substr(0, cut));
    st.ids = st.stable_ids;
    tok.EncodeTo(fresh.substr(cut), &st.ids);
    stats_.pieces_tokenized += static_cast<int64_t>(st.ids.size() - before);
  } else {
    st.ids = st.stable_ids;  // the first `enough` pieces cannot change any more
  }
  return st.ids;
}

bool Embedder::PrepareWindow(EmbedderState& st, std::string_view text, const RouteWindow& window) {
  ++stats_.calls;
  st.pending.clear();
  const size_t max_pieces = static_cast<size_t>(model_->max_pieces());
  const bool whole = window.last_pieces == 0;
  const std::vector<int32_t>& pieces = Pieces(st, text, whole ? max_pieces : SIZE_MAX);
  const size_t keep = std::min(max_pieces, whole ? pieces.size() : static_cast<size_t>(window.last_pieces));
  const size_t n = std::min(keep, pieces.size());
  const auto first = whole ? pieces.begin() : pieces.end() - static_cast<std::ptrdiff_t>(n);
  if (st.has_last && st.last_window.size() == n &&
      std::equal(first, first + static_cast<std::ptrdiff_t>(n), st.last_window.begin())) {
    return false;
  }
  st.last_window.assign(first, first + static_cast<std::ptrdiff_t>(n));
  st.pending = model_->WithSpecialTokens(st.last_window);
  st.has_last = false;  // until EmbedPending fills last_embedding
  return true;
}

void Embedder::EmbedPending(std::span<EmbedderState* const> states) {
  batch_.clear();
  for (EmbedderState* st : states) {
    if (!st->pending.empty()) batch_.push_back(st->pending);
  }
  if (batch_.empty()) return;
  for (const std::vector<int32_t>& ids : batch_) stats_.encoder_flops += EncoderFlops(static_cast<int64_t>(ids.size()));
  const size_t dim = static_cast<size_t>(this->dim());
  batch_out_.resize(batch_.size() * dim);
  const auto t0 = std::chrono::steady_clock::now();
  model_->Embed(batch_, *pool_, ws_, batch_out_.data());
  stats_.encoder_ms +=
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  stats_.encoder_runs += static_cast<int64_t>(batch_.size());
  ++stats_.encoder_batches;
  size_t i = 0;
  for (EmbedderState* st : states) {
    if (st->pending.empty()) continue;
    st->last_embedding.assign(batch_out_.begin() + static_cast<std::ptrdiff_t>(i * dim),
                              batch_out_.begin() + static_cast<std::ptrdiff_t>((i + 1) * dim));
    st->has_last = true;
    st->pending.clear();
    ++i;
  }
}

double Embedder::EncoderFlops(int64_t n) const {
  return BertEncoderFlops(model_->config(), n);
}

const std::vector<float>& Embedder::EmbedWindow(EmbedderState& state, std::string_view text,
                                                const RouteWindow& window) {
  if (PrepareWindow(state, text, window)) {
    EmbedderState* one[1] = {&state};
    EmbedPending(one);
  }
  return state.last_embedding;
}

const std::vector<float>& Embedder::EmbedWindow(std::string_view text, const RouteWindow& window) {
  return EmbedWindow(own_state_, text, window);
}

}  // namespace tokenlora
