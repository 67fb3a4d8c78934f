// Whitened cosines (router/whitening.h, `router build --whiten`): the fit
// against numpy (tests/golden/router/whitening.json, scripts/
// make_golden_router.py whitening), its defining identity, version 3 router
// files, and the builder writing one.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "core/mapped_file.h"
#include "router/builder.h"
#include "router/router.h"
#include "router/router_file.h"
#include "router/whitening.h"
#include "router_test_util.h"
#include "test_util.h"

namespace tokenlora {
namespace {

using nlohmann::json;
using testing::ExpectInputError;
using testing::SourcePath;

struct Golden {
  size_t dim = 0;
  double lambda = 0;
  std::vector<std::vector<float>> tasks;  // per task [n, dim]
  std::vector<size_t> n;
  json j;
};

Golden LoadGolden() {
  std::ifstream in(SourcePath("tests/golden/router/whitening.json"));
  Golden g;
  g.j = json::parse(in);
  g.dim = g.j["dim"].get<size_t>();
  g.lambda = g.j["lambda"].get<double>();
  for (const auto& t : g.j["tasks"]) {
    std::vector<float> rows;
    for (const auto& r : t)
      for (const auto& v : r) rows.push_back(v.get<float>());
    g.n.push_back(t.size());
    g.tasks.push_back(std::move(rows));
  }
  return g;
}

RouterWhitening FitGolden(const Golden& g) {
  std::vector<TaskRows> rows;
  for (size_t t = 0; t < g.tasks.size(); ++t) rows.push_back({g.tasks[t], g.n[t]});
  return FitWhitening(rows, g.dim, g.lambda);
}

TEST(Whitening, MatchesNumpy) {
  const Golden g = LoadGolden();
  const RouterWhitening w = FitGolden(g);
  EXPECT_EQ(w.lambda, g.lambda);
  ASSERT_EQ(w.mean.size(), g.dim);
  ASSERT_EQ(w.matrix.size(), g.dim * g.dim);
  double largest = 0;
  for (const auto& row : g.j["matrix"])
    for (const auto& v : row) largest = std::max(largest, std::fabs(v.get<double>()));
  for (size_t i = 0; i < g.dim; ++i) {
    EXPECT_NEAR(w.mean[i], g.j["mean"][i].get<double>(), 1e-6) << i;
    for (size_t k = 0; k < g.dim; ++k) {
      EXPECT_NEAR(w.matrix[i * g.dim + k], g.j["matrix"][i][k].get<double>(), 2e-6 * largest) << i << "," << k;
      EXPECT_EQ(w.matrix[i * g.dim + k], w.matrix[k * g.dim + i]);  // symmetric, bit for bit
    }
  }
  // Whitened cosines of the queries to the task centroids.
  RouterFile file;
  file.embedder = {"tiny", std::string(64, 'a'), static_cast<int>(g.dim), 8, "mean", true};
  for (size_t t = 0; t < g.tasks.size(); ++t) {
    RouterTask task{"t" + std::to_string(t), "x.jsonl", "{t}", static_cast<int64_t>(g.n[t]), 0, {}, {}};
    for (const auto& v : g.j["centroids"][t]) task.centroid.push_back(v.get<float>());
    file.tasks.push_back(task);
  }
  file.whitening = w;
  const TaskScorer scorer(file);
  for (size_t q = 0; q < g.j["queries"].size(); ++q) {
    std::vector<float> query;
    for (const auto& v : g.j["queries"][q]) query.push_back(v.get<float>());
    const std::vector<float> s = scorer.Similarities(query, PrototypeScore{});
    ASSERT_EQ(s.size(), g.tasks.size());
    for (size_t t = 0; t < s.size(); ++t)
      EXPECT_NEAR(s[t], g.j["similarities"][q][t].get<double>(), 1e-5) << "query " << q << " task " << t;
  }
}

// W is the symmetric inverse square root of S + ridge: W·(S + ridge)·W = I,
// with S the average within-task covariance computed here in plain loops.
TEST(Whitening, InvertsTheRegularisedWithinTaskCovariance) {
  const Golden g = LoadGolden();
  const size_t d = g.dim;
  for (double lambda : {1e-3, 0.1, 10.0}) {
    std::vector<TaskRows> rows;
    for (size_t t = 0; t < g.tasks.size(); ++t) rows.push_back({g.tasks[t], g.n[t]});
    const RouterWhitening w = FitWhitening(rows, d, lambda);
    std::vector<double> s(d * d, 0.0);
    for (size_t t = 0; t < g.tasks.size(); ++t) {
      std::vector<double> c(d, 0.0);
      for (size_t i = 0; i < g.n[t]; ++i)
        for (size_t k = 0; k < d; ++k) c[k] += g.tasks[t][i * d + k] / static_cast<double>(g.n[t]);
      for (size_t i = 0; i < g.n[t]; ++i)
        for (size_t a = 0; a < d; ++a)
          for (size_t b = 0; b < d; ++b)
            s[a * d + b] += (g.tasks[t][i * d + a] - c[a]) * (g.tasks[t][i * d + b] - c[b]) /
                            static_cast<double>(g.n[t]) / static_cast<double>(g.tasks.size());
    }
    double trace = 0;
    for (size_t a = 0; a < d; ++a) trace += s[a * d + a];
    for (size_t a = 0; a < d; ++a) s[a * d + a] += lambda * trace / static_cast<double>(d);
    for (size_t a = 0; a < d; ++a) {
      for (size_t b = 0; b < d; ++b) {
        double v = 0;
        for (size_t x = 0; x < d; ++x)
          for (size_t y = 0; y < d; ++y) v += double{w.matrix[a * d + x]} * s[x * d + y] * w.matrix[y * d + b];
        EXPECT_NEAR(v, a == b ? 1.0 : 0.0, 1e-5) << "lambda " << lambda << " at " << a << "," << b;
      }
    }
  }
}

RouterFile WhitenedFile(bool with_prototypes) {
  const Golden g = LoadGolden();
  RouterFile f;
  f.embedder = {"tiny", std::string(64, 'a'), static_cast<int>(g.dim), 8, "mean", true};
  for (size_t t = 0; t < 2; ++t) {
    RouterTask task{t ? "b" : "a", "x.jsonl", "{t}", static_cast<int64_t>(g.n[t]), 0, {}, {}};
    task.centroid.assign(g.tasks[t].begin(), g.tasks[t].begin() + static_cast<ptrdiff_t>(g.dim));
    if (with_prototypes) task.prototypes = {task.centroid};
    f.tasks.push_back(task);
  }
  if (with_prototypes) f.kmeans = {2, 3};
  f.whitening = FitGolden(g);
  return f;
}

TEST(RouterFileVersions, Version3RoundTripsExactly) {
  for (bool prototypes : {false, true}) {
    const RouterFile f = WhitenedFile(prototypes);
    EXPECT_EQ(f.version(), 3);
    const std::string text = f.Serialize();
    EXPECT_NE(text.find("\"version\": 3"), std::string::npos);
    EXPECT_EQ(text.find("kmeans") != std::string::npos, prototypes);
    const RouterFile g = RouterFile::Parse(text, "r.json");
    ASSERT_TRUE(g.whitening.has_value());
    EXPECT_EQ(g.whitening->lambda, f.whitening->lambda);
    EXPECT_EQ(g.whitening->mean, f.whitening->mean);  // bit-exact floats
    EXPECT_EQ(g.whitening->matrix, f.whitening->matrix);
    EXPECT_EQ(g.kmeans.k, f.kmeans.k);
    EXPECT_EQ(g.tasks[1].prototypes, f.tasks[1].prototypes);
    EXPECT_EQ(g.Serialize(), text);
  }
}

TEST(RouterFileVersions, BadVersion3FilesNameTheField) {
  const std::string good = WhitenedFile(false).Serialize();
  const auto edit = testing::EditedJson;
  const auto refused = testing::ExpectRouterFileRefused;
  refused(edit(good, [](json& j) { j.erase("whitening"); }), "r.json: whitening: missing");
  refused(edit(good, [](json& j) { j["whitening"] = 1; }), "whitening: expected an object");
  refused(edit(good, [](json& j) { j["whitening"]["lambda"] = 0; }),
          "whitening.lambda: expected a number > 0 and <= 1e6, got '0'");
  refused(edit(good, [](json& j) { j["whitening"]["mean"] = {1, 2}; }),
          "whitening.mean: expected 6 numbers (embedder.dim), got 2");
  refused(edit(good, [](json& j) { j["whitening"]["matrix"].erase(0); }),
          "whitening.matrix: expected 6 rows (embedder.dim), got 5");
  refused(edit(good, [](json& j) { j["whitening"]["matrix"][2][3] = "x"; }),
          "whitening.matrix[2][3]: expected a finite number");
  refused(edit(good, [](json& j) { j["version"] = 1; }), "whitening: only in version 3 files");
  refused(edit(good, [](json& j) { j["tasks"][0]["prototypes"] = {{0, 0, 0, 0, 0, 1}}; }),
          "tasks[0].prototypes: only with \"kmeans\"");
}

// The builder fits the whitening from the same unit embeddings as the
// centroids; without --whiten the file is what it was.
TEST(BuildRouter, WhitenWritesVersion3FromTheTasksEmbeddings) {
  const Golden g = LoadGolden();
  std::vector<TaskSpec> specs;
  std::vector<TaskEmbeddings> embeddings;
  for (size_t t = 0; t < g.tasks.size(); ++t) {
    specs.push_back(TaskSpec::Parse("t" + std::to_string(t) + "=x.jsonl:{t}"));
    embeddings.push_back({g.dim, g.tasks[t], 0});
  }
  const EmbedderIdentity id{"tiny", std::string(64, 'a'), static_cast<int>(g.dim), 8, "mean", true};
  const RouterFile plain = BuildRouterFromEmbeddings(specs, id, embeddings, {});
  EXPECT_EQ(plain.version(), 1);
  PrototypeOptions p;
  p.whiten = g.lambda;
  const RouterFile whitened = BuildRouterFromEmbeddings(specs, id, embeddings, p);
  EXPECT_EQ(whitened.version(), 3);
  ASSERT_TRUE(whitened.whitening.has_value());
  for (size_t t = 0; t < g.tasks.size(); ++t) EXPECT_EQ(whitened.tasks[t].centroid, plain.tasks[t].centroid);
  const RouterWhitening direct = FitGolden(g);
  for (size_t i = 0; i < direct.matrix.size(); ++i)
    EXPECT_NEAR(whitened.whitening->matrix[i], direct.matrix[i], 1e-5 * std::fabs(direct.matrix[i]) + 1e-6);
  p.k = 2;
  const RouterFile both = BuildRouterFromEmbeddings(specs, id, embeddings, p);
  EXPECT_EQ(both.version(), 3);
  EXPECT_EQ(both.kmeans.k, 2);
  EXPECT_FALSE(both.tasks[1].prototypes.empty());
  EXPECT_EQ(RouterFile::Parse(both.Serialize(), "r.json").Serialize(), both.Serialize());
}

// The committed whitened router (the suite's routed-k2-whitened) loads and
// is written back byte for byte.
TEST(RouterFileVersions, CommittedWhitenedRouterLoads) {
  const std::string path = SourcePath("adapters/router-whitened.json");
  const RouterFile f = RouterFile::Load(path);
  EXPECT_EQ(f.version(), 3);
  ASSERT_TRUE(f.whitening.has_value());
  EXPECT_EQ(f.whitening->lambda, 0.1);
  EXPECT_EQ(f.whitening->matrix.size(), 384u * 384u);
  EXPECT_EQ(f.TaskNames(), (std::vector<std::string>{"gsm8k", "arc_challenge", "squad", "codealpaca"}));
  EXPECT_EQ(f.Serialize(), ReadTextFile(path));
}

}  // namespace
}  // namespace tokenlora
