#include "router/router.h"

#include "core/error.h"
#include "core/number_text.h"
#include "router/whitening.h"

namespace tokenlora {

TaskScorer::TaskScorer(const RouterFile& file) : whitening_(file.whitening) {
  const auto space = [&](const std::vector<float>& v) { return whitening_ ? Whiten(*whitening_, v) : v; };
  for (const RouterTask& t : file.tasks) {
    Task task;
    task.centroid = space(t.centroid);
    for (const auto& p : t.prototypes) task.prototypes.push_back(space(p));
    tasks_.push_back(std::move(task));
  }
}

std::vector<float> TaskScorer::Similarities(std::span<const float> embedding, const PrototypeScore& score) const {
  std::vector<float> whitened;
  if (whitening_) {
    whitened = WhitenUnit(*whitening_, embedding);
    embedding = whitened;
  }
  std::vector<float> sims;
  sims.reserve(tasks_.size());
  std::vector<float> cos;
  for (const Task& t : tasks_) {
    if (score.kind == PrototypeScore::Kind::kCentroid || t.prototypes.empty()) {
      sims.push_back(CosineSimilarity(embedding, t.centroid));
      continue;
    }
    cos.clear();
    for (const auto& p : t.prototypes) cos.push_back(CosineSimilarity(embedding, p));
    sims.push_back(score.Combine(cos));
  }
  return sims;
}

std::vector<float> TaskSimilarities(const RouterFile& file, std::span<const float> embedding,
                                    const PrototypeScore& score) {
  return TaskScorer(file).Similarities(embedding, score);
}

std::string SimilarityNote(const RouterFile& file) {
  return file.whitening ? "; cosines whitened (lambda " + GeneralNumber(file.whitening->lambda) + ")" : "";
}

void CheckEmbedderMatches(const RouterFile& file, const Embedder& embedder, const std::string& file_name) {
  const EmbedderIdentity& want = file.embedder;
  const EmbedderIdentity& have = embedder.identity();
  if (want.sha256 != have.sha256) {
    throw InputError(
        file_name + " was built with embedder '" + want.name + "' (weights sha256 " +
        want.sha256.substr(0, 12) + "…), but --embedder is '" + have.name + "' (sha256 " +
        have.sha256.substr(0, 12) +
        "…): similarities would be meaningless — pass the embedder the router was built with, or rebuild it");
  }
  if (want.dim != have.dim || want.max_seq_length != have.max_seq_length || want.pooling != have.pooling ||
      want.normalize != have.normalize) {
    throw InputError(file_name + ": the embedder's weights match but its pipeline does not (router: dim " +
                     std::to_string(want.dim) + ", max_seq_length " + std::to_string(want.max_seq_length) +
                     ", " + want.pooling + (want.normalize ? "+normalize" : "") + "; embedder: dim " +
                     std::to_string(have.dim) + ", max_seq_length " + std::to_string(have.max_seq_length) +
                     ", " + have.pooling + (have.normalize ? "+normalize" : "") +
                     ") — edited sentence-transformers files?");
  }
}

Router::Router(RouterFile file, const std::string& source, Embedder& embedder, RoutingPolicy policy,
               RouteWindow window)
    : file_(std::move(file)), scorer_(file_), embedder_(embedder), policy_(std::move(policy)), window_(window) {
  CheckEmbedderMatches(file_, embedder_, source);
  if (policy_.kind == PolicyKind::kFixed) TL_CHECK(policy_.fixed.size() == file_.tasks.size());
}

RouteResult Router::FromEmbedding(const std::vector<float>& embedding) const {
  RouteResult r;
  r.similarities = scorer_.Similarities(embedding, policy_.score);
  r.weights = policy_.Weights(r.similarities);
  return r;
}

RouteResult Router::Route(std::string_view text) {
  return FromEmbedding(embedder_.EmbedWindow(text, window_));
}

}  // namespace tokenlora
