// Multi-prototype routing: spherical k-means, version 2 router files (and
// version 1 files loading unchanged), task scores from prototypes, and the
// embeddings cache.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>

#include "core/error.h"
#include "core/mapped_file.h"
#include "router/embedding_cache.h"
#include "router/kmeans.h"
#include "router/policy.h"
#include "router/router.h"
#include "router/router_file.h"
#include "router_test_util.h"
#include "test_util.h"

namespace tokenlora {
namespace {

using testing::ExpectInputError;

using nlohmann::json;
using testing::SourcePath;
using testing::TempDir;

void Normalise(float* v, size_t dim) {
  double sq = 0;
  for (size_t j = 0; j < dim; ++j) sq += double{v[j]} * v[j];
  for (size_t j = 0; j < dim; ++j) v[j] = static_cast<float>(v[j] / std::sqrt(sq));
}

// Points around `n_clusters` random unit directions in `dim` dimensions,
// `sizes[c]` each, shuffled; truth[i] is the cluster point i was drawn from.
struct Synthetic {
  size_t dim = 16;
  std::vector<std::vector<float>> directions;
  std::vector<float> points;  // [n, dim], unit rows
  std::vector<int> truth;
};

Synthetic MakeClusters(const std::vector<int>& sizes, float noise, uint32_t seed) {
  Synthetic s;
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (size_t c = 0; c < sizes.size(); ++c) {
    std::vector<float> d(s.dim);
    for (float& x : d) x = normal(rng);
    Normalise(d.data(), s.dim);
    s.directions.push_back(d);
    for (int i = 0; i < sizes[c]; ++i) s.truth.push_back(static_cast<int>(c));
  }
  std::shuffle(s.truth.begin(), s.truth.end(), rng);
  for (int c : s.truth) {
    std::vector<float> p = s.directions[static_cast<size_t>(c)];
    for (float& x : p) x += noise * normal(rng);
    Normalise(p.data(), s.dim);
    s.points.insert(s.points.end(), p.begin(), p.end());
  }
  return s;
}

TEST(KMeans, RecoversSyntheticClustersLargestFirst) {
  const Synthetic s = MakeClusters({20, 50, 30}, 0.05f, 1);
  const size_t n = s.truth.size();
  for (uint64_t seed : {0u, 1u, 7u}) {
    const KMeansResult r = SphericalKMeans(s.points, n, s.dim, {3, seed, 100});
    ASSERT_EQ(r.centroids.size(), 3u);
    EXPECT_EQ(r.sizes, (std::vector<int64_t>{50, 30, 20}));
    EXPECT_TRUE(r.converged);
    // Cluster c of the result is the true cluster 1, 2, 0 (by size), point by point.
    const int true_of[3] = {1, 2, 0};
    for (size_t i = 0; i < n; ++i) EXPECT_EQ(true_of[r.assignment[i]], s.truth[i]) << "point " << i;
    for (size_t c = 0; c < 3; ++c) {
      EXPECT_GT(testing::Cosine(r.centroids[c].data(), s.directions[static_cast<size_t>(true_of[c])].data(), s.dim),
                0.99);
    }
    // Each prototype is its members' mean (not re-normalised).
    for (size_t j = 0; j < s.dim; ++j) {
      double sum = 0;
      for (size_t i = 0; i < n; ++i) sum += r.assignment[i] == 2 ? s.points[i * s.dim + j] : 0.0;
      EXPECT_NEAR(r.centroids[2][j], sum / 20, 1e-6);
    }
  }
}

TEST(KMeans, OneSeedGivesBitIdenticalResults) {
  const Synthetic s = MakeClusters({40, 40, 40, 40}, 0.6f, 2);  // overlapping: seeding matters
  const size_t n = s.truth.size();
  const KMeansResult a = SphericalKMeans(s.points, n, s.dim, {6, 42, 100});
  const KMeansResult b = SphericalKMeans(s.points, n, s.dim, {6, 42, 100});
  EXPECT_EQ(a.centroids, b.centroids);
  EXPECT_EQ(a.assignment, b.assignment);
  EXPECT_EQ(a.iterations, b.iterations);
  EXPECT_EQ(std::accumulate(a.sizes.begin(), a.sizes.end(), int64_t{0}), static_cast<int64_t>(n));
  for (size_t c = 0; c + 1 < a.sizes.size(); ++c) EXPECT_GE(a.sizes[c], a.sizes[c + 1]);
  for (int64_t size : a.sizes) EXPECT_GT(size, 0);
  // Every point sits with its nearest prototype once converged.
  ASSERT_TRUE(a.converged);
  for (size_t i = 0; i < n; ++i) {
    const float* p = s.points.data() + i * s.dim;
    const double own = testing::Cosine(p, a.centroids[static_cast<size_t>(a.assignment[i])].data(), s.dim);
    for (const auto& c : a.centroids) EXPECT_LE(testing::Cosine(p, c.data(), s.dim), own + 1e-6);
  }
}

TEST(KMeans, FewerClustersThanAskedAndKOfOne) {
  const Synthetic s = MakeClusters({3}, 0.3f, 3);
  // Fewer points than K: one cluster each.
  const KMeansResult few = SphericalKMeans(s.points, 3, s.dim, {8, 0, 100});
  EXPECT_EQ(few.centroids.size(), 3u);
  EXPECT_EQ(few.sizes, (std::vector<int64_t>{1, 1, 1}));
  // Identical points: one cluster, whatever K.
  std::vector<float> same;
  for (int i = 0; i < 5; ++i) same.insert(same.end(), s.points.begin(), s.points.begin() + 16);
  const KMeansResult dup = SphericalKMeans(same, 5, s.dim, {4, 0, 100});
  ASSERT_EQ(dup.centroids.size(), 1u);
  EXPECT_EQ(dup.sizes[0], 5);
  // K = 1: the mean of all points.
  const KMeansResult one = SphericalKMeans(s.points, 3, s.dim, {1, 0, 100});
  ASSERT_EQ(one.centroids.size(), 1u);
  for (size_t j = 0; j < s.dim; ++j) {
    EXPECT_NEAR(one.centroids[0][j], (s.points[j] + s.points[16 + j] + s.points[32 + j]) / 3, 1e-6);
  }
}

TEST(PrototypeScore, ParsesAndCombines) {
  EXPECT_EQ(PrototypeScore::Parse("max", "--score").kind, PrototypeScore::Kind::kMax);
  EXPECT_EQ(PrototypeScore::Parse("centroid", "--score").kind, PrototypeScore::Kind::kCentroid);
  EXPECT_EQ(PrototypeScore::Parse("softmax", "--score").Describe(), "softmax:0.05");
  EXPECT_EQ(PrototypeScore::Parse("softmax:0.2", "--score").Describe(), "softmax:0.2");
  for (const char* bad : {"", "mean", "softmax:", "softmax:0", "softmax:-1", "softmax:x", "softmax:2e6",
                          "softmax0.1", "max:1"}) {
    ExpectInputError([&] { PrototypeScore::Parse(bad, "--route-score"); },
                     std::string("--route-score '") + bad + "'");
  }
  // One prototype: its cosine exactly, under every rule.
  const float one[] = {0.123456789f};
  for (const char* spec : {"max", "softmax:0.01", "softmax:1000"})
    EXPECT_EQ(PrototypeScore::Parse(spec, "").Combine(one), one[0]) << spec;
  const float cos[] = {0.2f, 0.8f, 0.5f};
  EXPECT_EQ(PrototypeScore::Parse("max", "").Combine(cos), 0.8f);
  // T·log(mean exp(c/T)), between the mean and the max; → max and → mean.
  const double t = 0.1;
  const double want = t * std::log((std::exp(2.0) + std::exp(8.0) + std::exp(5.0)) / 3);
  EXPECT_NEAR(PrototypeScore::Parse("softmax:0.1", "").Combine(cos), want, 1e-6);
  EXPECT_NEAR(PrototypeScore::Parse("softmax:0.0001", "").Combine(cos), 0.8 - 1e-4 * std::log(3.0), 1e-6);
  EXPECT_NEAR(PrototypeScore::Parse("softmax:100000", "").Combine(cos), 0.5, 1e-5);
}

// Two tasks in 3 dimensions; "b" has two prototypes whose mean points away from both.
RouterFile TwoTaskFile(bool with_prototypes) {
  RouterFile f;
  f.embedder = {"tiny", std::string(64, 'a'), 3, 8, "mean", true};
  RouterTask a{"a", "a.jsonl", "{t}", 10, 0, {0.0f, 0.0f, 1.0f}, {}};
  RouterTask b{"b", "b.jsonl", "{t}", 10, 0, {0.5f, 0.5f, 0.0f}, {}};
  if (with_prototypes) {
    f.kmeans = {2, 5};
    a.prototypes = {{0.0f, 0.0f, 1.0f}};
    b.prototypes = {{1.0f, 0.0f, 0.0f}, {0.0f, 1.0f, 0.0f}};
  }
  f.tasks = {a, b};
  return f;
}

TEST(PrototypeScore, TaskSimilaritiesAndEveryPolicy) {
  const std::vector<float> e = {0.6f, 0.0f, 0.55f};  // near b's first prototype, not b's centroid
  const RouterFile v1 = TwoTaskFile(false), v2 = TwoTaskFile(true);
  // A version 1 file: the cosine to the centroid, bit for bit, under every score.
  for (const char* spec : {"max", "softmax:0.05", "centroid"}) {
    const std::vector<float> s = TaskSimilarities(v1, e, PrototypeScore::Parse(spec, ""));
    EXPECT_EQ(s[0], CosineSimilarity(e, v1.tasks[0].centroid));
    EXPECT_EQ(s[1], CosineSimilarity(e, v1.tasks[1].centroid));
  }
  const std::vector<float> by_max = TaskSimilarities(v2, e, PrototypeScore::Parse("max", ""));
  EXPECT_EQ(by_max[0], CosineSimilarity(e, v2.tasks[0].centroid));  // one prototype
  EXPECT_EQ(by_max[1], CosineSimilarity(e, v2.tasks[1].prototypes[0]));
  const std::vector<float> by_centroid = TaskSimilarities(v2, e, PrototypeScore::Parse("centroid", ""));
  EXPECT_EQ(by_centroid[1], CosineSimilarity(e, v2.tasks[1].centroid));
  const std::vector<float> soft = TaskSimilarities(v2, e, PrototypeScore::Parse("softmax:0.05", ""));
  EXPECT_LT(soft[1], by_max[1]);
  EXPECT_GT(soft[1], by_max[1] - 0.05 * std::log(2.0) - 1e-6);
  // By its centroid "a" wins (cosine 0.68 vs 0.52); by its best prototype (0.74) "b" does, under every policy.
  EXPECT_GT(by_centroid[0], by_centroid[1]);
  for (const char* policy : {"paper", "softmax", "top-k"}) {
    RoutingPolicy p = RoutingPolicy::Make(policy, 0, 1, "", v2.TaskNames());
    for (const char* spec : {"max", "softmax:0.05"}) {
      p.score = PrototypeScore::Parse(spec, "");
      const std::vector<float> w = p.Weights(TaskSimilarities(v2, e, p.score));
      EXPECT_GT(w[1], w[0]) << policy << " " << spec;
    }
    p.score = PrototypeScore::Parse("centroid", "");
    const std::vector<float> w = p.Weights(TaskSimilarities(v2, e, p.score));
    EXPECT_GT(w[0], w[1]) << policy;
  }
  RoutingPolicy p = RoutingPolicy::Make("paper", 0, 1, "", v2.TaskNames());
  EXPECT_EQ(p.Describe(), "paper (largest cosine x 4, softmax)");  // the default score adds nothing
  p.score = PrototypeScore::Parse("softmax:0.1", "");
  EXPECT_EQ(p.Describe(), "paper (largest cosine x 4, softmax); tasks scored by softmax:0.1 over prototypes");
}

TEST(RouterFileVersions, Version2RoundTripsExactly) {
  const RouterFile f = TwoTaskFile(true);
  EXPECT_EQ(f.version(), 2);
  const std::string text = f.Serialize();
  EXPECT_NE(text.find("\"version\": 2"), std::string::npos);
  EXPECT_NE(text.find("\"kmeans\": {\"k\":2,\"seed\":5}"), std::string::npos);
  const RouterFile g = RouterFile::Parse(text, "r.json");
  EXPECT_EQ(g.kmeans.k, 2);
  EXPECT_EQ(g.kmeans.seed, 5u);
  ASSERT_EQ(g.tasks.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(g.tasks[i].centroid, f.tasks[i].centroid);
    EXPECT_EQ(g.tasks[i].prototypes, f.tasks[i].prototypes);  // bit-exact floats
  }
  EXPECT_EQ(g.Serialize(), text);
  // Without prototypes: version 1, no new fields.
  const std::string v1 = TwoTaskFile(false).Serialize();
  EXPECT_NE(v1.find("\"version\": 1"), std::string::npos);
  EXPECT_EQ(v1.find("kmeans"), std::string::npos);
  EXPECT_EQ(v1.find("prototypes"), std::string::npos);
}

// Version 1 files written before prototypes existed load unchanged and are
// written back byte for byte.
TEST(RouterFileVersions, OldVersion1FilesLoadUnchanged) {
  for (const char* rel : {"adapters/router.json", "fuzz/corpus/fuzz_router_file/valid.json"}) {
    const std::string path = SourcePath(rel);
    const RouterFile f = RouterFile::Load(path);
    EXPECT_EQ(f.version(), 1) << rel;
    for (const RouterTask& t : f.tasks) EXPECT_TRUE(t.prototypes.empty()) << rel;
    if (std::string(rel) == "adapters/router.json") {
      EXPECT_EQ(f.Serialize(), ReadTextFile(path)) << rel;
    }
  }
}

TEST(RouterFileVersions, BadFilesNameTheField) {
  const std::string good = TwoTaskFile(true).Serialize();
  const std::string good_v1 = TwoTaskFile(false).Serialize();
  const auto edit = testing::EditedJson;
  const auto refused = testing::ExpectRouterFileRefused;
  refused(edit(good, [](json& j) { j["version"] = 4; }), "version 4 is not supported (this build reads versions 1 to 3)");
  refused(edit(good, [](json& j) { j.erase("kmeans"); }), "r.json: kmeans: missing");
  refused(edit(good, [](json& j) { j["kmeans"] = 4; }), "r.json: kmeans: expected an object");
  refused(edit(good, [](json& j) { j["kmeans"]["k"] = 1; }), "kmeans.k: expected an integer in [2, 4096], got '1'");
  refused(edit(good, [](json& j) { j["kmeans"]["seed"] = -1; }), "kmeans.seed: expected an integer");
  refused(edit(good, [](json& j) { j["tasks"][1].erase("prototypes"); }), "tasks[1].prototypes: missing");
  refused(edit(good, [](json& j) { j["tasks"][1]["prototypes"] = json::array(); }),
          "tasks[1].prototypes: expected a list of 1 to 2 prototypes (at most kmeans.k and the task's records), got 0");
  refused(edit(good, [](json& j) { j["tasks"][1]["prototypes"].push_back({1, 2, 3}); }),
          "tasks[1].prototypes: expected a list of 1 to 2 prototypes");
  refused(edit(good, [](json& j) { j["tasks"][1]["records"] = 1; }),
          "tasks[1].prototypes: expected a list of 1 to 1 prototypes");
  refused(edit(good, [](json& j) { j["tasks"][1]["prototypes"][1] = {1, 2}; }),
          "tasks[1].prototypes[1]: expected 3 numbers (embedder.dim), got 2");
  refused(edit(good, [](json& j) { j["tasks"][1]["prototypes"][0][2] = "x"; }),
          "tasks[1].prototypes[0][2]: expected a finite number");
  refused(edit(good, [](json& j) { j["tasks"][1]["prototypes"][0][2] = 1e300; }),
          "tasks[1].prototypes[0][2]: expected a finite number");
  refused(edit(good_v1, [](json& j) { j["kmeans"] = {{"k", 2}, {"seed", 0}}; }),
          "kmeans: only in version 2 and 3 files");
  refused(edit(good_v1, [](json& j) { j["tasks"][0]["prototypes"] = {{0, 0, 1}}; }),
          "tasks[0].prototypes: only with \"kmeans\" (version 2 or 3 files");
}

TEST(EmbeddingCache, StoresLoadsAndRefusesDamagedEntries) {
  const std::string dir = TempDir() + "/cache";
  const EmbeddingCache cache(dir);
  const EmbedderIdentity id{"tiny", std::string(64, 'a'), 3, 8, "mean", true};
  const std::vector<std::string> texts = {"one", "two"};
  const std::string key = EmbeddingCache::Key(id, "", texts);
  EXPECT_EQ(key.size(), 64u);
  // Anything that changes the numbers changes the key.
  EXPECT_NE(EmbeddingCache::Key(id, "int8", texts), key);
  EXPECT_NE(EmbeddingCache::Key(id, "", {"one", "two "}), key);
  EXPECT_NE(EmbeddingCache::Key(id, "", {"onetwo", ""}), key);
  EmbedderIdentity other = id;
  other.sha256[0] = 'b';
  EXPECT_NE(EmbeddingCache::Key(other, "", texts), key);

  EXPECT_FALSE(cache.Load(key, 2, 3).has_value());
  const std::vector<float> e = {1, 2, 3, -4, 5.5f, 1e-20f};
  cache.Store(key, 2, 3, e);
  EXPECT_EQ(cache.Load(key, 2, 3).value(), e);
  ExpectInputError([&] { cache.Load(key, 3, 3); }, "expected 132 bytes (3 × 3 floats), got 120");
  std::string bytes = ReadTextFile(cache.PathOf(key));
  bytes[3] = 'X';
  WriteFileAtomically(cache.PathOf(key), bytes);
  ExpectInputError([&] { cache.Load(key, 2, 3); }, "the header does not match");
  ExpectInputError([&] { EmbeddingCache(SourcePath("README.md") + "/x").Store(key, 2, 3, e); },
                   "--embeddings-cache");
}

}  // namespace
}  // namespace tokenlora
