#include "routing_test_util.h"

#include <random>

#include "lora/lora_test_util.h"

namespace tokenlora::testing {
namespace {

RouterTask Task(const std::string& name) {
  RouterTask t;
  t.name = name;
  t.source = "test";
  t.template_spec = "{text}";
  t.records = 1;
  return t;
}

}  // namespace

std::unique_ptr<AdapterBank> RandomTaskAdapters(const Model& model, const std::vector<std::string>& tasks) {
  auto bank = std::make_unique<AdapterBank>(model);
  for (size_t i = 0; i < tasks.size(); ++i) {
    bank->Add(RandomAdapter(model.config(), tasks[i], 6, 16.0f, {ModuleKind::kQ, ModuleKind::kV, ModuleKind::kDown},
                            7 + i));
  }
  return bank;
}

RouterFile RouterFileFromTexts(Embedder& embedder, const std::vector<std::string>& tasks,
                               const std::vector<std::string>& centroid_texts) {
  RouterFile f;
  f.embedder = embedder.identity();
  const std::ptrdiff_t dim = embedder.dim();
  std::vector<float> centroids(centroid_texts.size() * static_cast<size_t>(dim));
  embedder.EmbedBatch(centroid_texts, centroids.data());
  for (size_t i = 0; i < tasks.size(); ++i) {
    RouterTask t = Task(tasks[i]);
    t.centroid.assign(centroids.begin() + static_cast<std::ptrdiff_t>(i) * dim,
                      centroids.begin() + static_cast<std::ptrdiff_t>(i + 1) * dim);
    f.tasks.push_back(std::move(t));
  }
  return f;
}

RouterFile RandomRouterFile(const EmbedderIdentity& embedder, const std::vector<std::string>& tasks, uint32_t seed) {
  RouterFile f;
  f.embedder = embedder;
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  for (const std::string& name : tasks) {
    RouterTask t = Task(name);
    for (int d = 0; d < f.embedder.dim; ++d) t.centroid.push_back(normal(rng));
    f.tasks.push_back(std::move(t));
  }
  return f;
}

}  // namespace tokenlora::testing
