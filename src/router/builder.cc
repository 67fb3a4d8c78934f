#include "router/builder.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>
#include <map>
#include <set>

#include "core/error.h"
#include "io/io_util.h"
#include "router/embedding_cache.h"
#include "router/kmeans.h"
#include "router/progress.h"
#include "router/router.h"
#include "router/whitening.h"

namespace tokenlora {
namespace {

// A NAME may come several times with different files or slices: its
// records are pooled (Hugging Face's "train+test"), so the templates must
// agree; the same file and slice twice would count records twice.
void CheckUniqueTasks(const std::vector<TaskSpec>& tasks) {
  if (tasks.empty()) throw InputError("no --task given (NAME=FILE.jsonl[:TEMPLATE], one per adapter)");
  std::set<std::string> sources;
  std::map<std::string, std::string> template_of;
  for (const TaskSpec& t : tasks) {
    if (!sources.insert(t.name + "=" + t.Describe()).second) throw InputError("--task " + t.name + " is given twice");
    const std::string tmpl = t.Template().spec();  // fails on a bad template before hours of embedding
    const auto [it, fresh] = template_of.emplace(t.name, tmpl);
    if (!fresh && it->second != tmpl) {
      throw InputError("--task " + t.name + " is given with two templates ('" + it->second + "' and '" + tmpl +
                       "'): the files of one task are pooled, so they need one template");
    }
  }
}

// Specs of one name merged into the first (in order of first appearance),
// their embeddings concatenated.
void PoolRepeatedTasks(std::vector<TaskSpec>& specs, std::vector<TaskEmbeddings>& embeddings) {
  std::vector<TaskSpec> out_specs;
  std::vector<TaskEmbeddings> out;
  for (size_t i = 0; i < specs.size(); ++i) {
    size_t j = 0;
    while (j < out_specs.size() && out_specs[j].name != specs[i].name) ++j;
    if (j == out_specs.size()) {
      out_specs.push_back(specs[i]);
      out.push_back(std::move(embeddings[i]));
      continue;
    }
    out_specs[j].pooled_sources += " + " + specs[i].Describe();
    out[j].rows.insert(out[j].rows.end(), embeddings[i].rows.begin(), embeddings[i].rows.end());
    out[j].skipped += embeddings[i].skipped;
  }
  specs = std::move(out_specs);
  embeddings = std::move(out);
}

void RequireRecords(const TaskSpec& spec, const TaskEmbeddings& emb) {
  if (emb.size() > 0) return;
  throw InputError("--task " + spec.name + "=" + spec.Describe() + ": no records to embed (" +
                   (emb.skipped > 0 ? std::to_string(emb.skipped) + " bad records skipped" : "empty file or slice") +
                   ")");
}

}  // namespace

TaskEmbeddings EmbedTask(const TaskSpec& spec, Embedder& embedder, const RecordOptions& o) {
  TaskRecords records(spec, spec.Template(), o.limit, o.skip_bad);
  std::vector<FormattedRecord> formatted;
  while (records.NextBatch(4096, &formatted)) {
  }
  std::vector<std::string> texts;
  texts.reserve(formatted.size());
  for (auto& r : formatted) texts.push_back(std::move(r.text));
  const auto report_skipped = [&] {
    if (!o.progress) return;
    for (const std::string& m : records.skip_messages()) std::fprintf(stderr, "  skipped %s\n", m.c_str());
  };

  TaskEmbeddings out;
  out.dim = static_cast<size_t>(embedder.dim());
  out.skipped = records.skipped();
  std::optional<EmbeddingCache> cache;
  std::string key;
  if (!o.embeddings_cache.empty() && !texts.empty()) {
    cache.emplace(o.embeddings_cache);
    // The exact f32 encoder keeps the empty variant (keys made before
    // --embedder-precision existed stay valid); int8 embeddings are keyed apart.
    const EncoderPrecision precision = embedder.model().precision();
    key = EmbeddingCache::Key(embedder.identity(),
                              precision == EncoderPrecision::kF32 ? "" : EncoderPrecisionName(precision), texts);
    if (auto rows = cache->Load(key, texts.size(), out.dim)) {
      out.rows = std::move(*rows);
      if (o.progress) {
        std::fprintf(stderr, "%s: %zu embeddings from the cache (%s)%s\n", spec.name.c_str(), texts.size(),
                     cache->PathOf(key).c_str(),
                     out.skipped ? (", " + std::to_string(out.skipped) + " bad records skipped").c_str() : "");
      }
      report_skipped();
      return out;
    }
  }
  ProgressBar bar(spec.name, static_cast<int64_t>(texts.size()), stderr);
  out.rows.resize(texts.size() * out.dim);
  const size_t step = static_cast<size_t>(std::max(1, o.batch));
  for (size_t i = 0; i < texts.size(); i += step) {
    const size_t m = std::min(step, texts.size() - i);
    embedder.EmbedBatch(std::span<const std::string>(texts.data() + i, m), out.rows.data() + i * out.dim);
    if (o.progress) bar.Update(static_cast<int64_t>(i + m));
  }
  if (o.progress) {
    bar.Finish(static_cast<int64_t>(texts.size()),
               out.skipped > 0 ? std::to_string(out.skipped) + " bad records skipped" : "");
  }
  report_skipped();
  if (cache) cache->Store(key, texts.size(), out.dim, out.rows);
  return out;
}

RouterFile BuildRouterFromEmbeddings(const std::vector<TaskSpec>& tasks, const EmbedderIdentity& identity,
                                     const std::vector<TaskEmbeddings>& embeddings, const PrototypeOptions& p) {
  TL_CHECK(tasks.size() == embeddings.size() && p.k >= 1 && p.k <= KMeansSettings::kMaxK &&
           p.whiten >= 0 && p.whiten <= RouterWhitening::kMaxLambda);
  RouterFile file;
  file.embedder = identity;
  if (p.k > 1) file.kmeans = {p.k, p.seed};
  const size_t dim = static_cast<size_t>(identity.dim);
  const bool keep_unit = p.k > 1 || p.whiten > 0;
  std::vector<std::vector<float>> units;  // per task [n, dim], kept for the whitening fit only
  for (size_t t = 0; t < tasks.size(); ++t) {
    const TaskSpec& spec = tasks[t];
    const TaskEmbeddings& emb = embeddings[t];
    TL_CHECK(emb.dim == dim);
    RequireRecords(spec, emb);
    const size_t n = emb.size();
    // The reference averages sentence-transformers' (normalised) output;
    // normalising here keeps that meaning for embedders without a Normalize
    // module and changes nothing for those with one.
    std::vector<double> sum(dim, 0.0);
    std::vector<float> unit(keep_unit ? n * dim : 0);  // k-means and whitening input: unit rows
    for (size_t i = 0; i < n; ++i) {
      const float* e = emb.rows.data() + i * dim;
      double sq = 0.0;
      for (size_t j = 0; j < dim; ++j) sq += double{e[j]} * e[j];
      const double inv = 1.0 / std::max(std::sqrt(sq), 1e-12);
      for (size_t j = 0; j < dim; ++j) sum[j] += e[j] * inv;
      if (keep_unit)
        for (size_t j = 0; j < dim; ++j) unit[i * dim + j] = static_cast<float>(e[j] * inv);
    }
    RouterTask task;
    task.name = spec.name;
    task.source = spec.Describe();
    task.template_spec = spec.Template().spec();
    task.records = static_cast<int64_t>(n);
    task.skipped = emb.skipped;
    task.centroid.resize(dim);
    for (size_t j = 0; j < dim; ++j) task.centroid[j] = static_cast<float>(sum[j] / static_cast<double>(n));
    if (p.k > 1) {
      // Each task draws from its own stream: adding a task leaves the others' prototypes as they were.
      const KMeansOptions ko{p.k, p.seed + 0x9E3779B97F4A7C15ull * (t + 1), p.max_iterations};
      KMeansResult km = SphericalKMeans(unit, n, dim, ko);
      task.prototypes = std::move(km.centroids);
      std::string sizes;
      for (int64_t s : km.sizes) sizes += (sizes.empty() ? "" : " ") + std::to_string(s);
      std::fprintf(stderr, "%s: %zu prototypes (records per prototype: %s), k-means %s after %d iterations\n",
                   spec.name.c_str(), task.prototypes.size(), sizes.c_str(),
                   km.converged ? "converged" : "stopped", km.iterations);
    }
    file.tasks.push_back(std::move(task));
    if (p.whiten > 0) units.push_back(std::move(unit));
  }
  if (p.whiten > 0) {
    std::vector<TaskRows> rows;
    for (const auto& u : units) rows.push_back({u, u.size() / dim});
    file.whitening = FitWhitening(rows, dim, p.whiten);
  }
  return file;
}

RouterFile BuildRouter(const std::vector<TaskSpec>& tasks, Embedder& embedder, const RecordOptions& o,
                       const PrototypeOptions& p) {
  CheckUniqueTasks(tasks);
  std::vector<TaskEmbeddings> embeddings;
  for (const TaskSpec& spec : tasks) {
    embeddings.push_back(EmbedTask(spec, embedder, o));
    RequireRecords(spec, embeddings.back());  // at once, not after embedding the tasks that follow
  }
  std::vector<TaskSpec> pooled = tasks;
  PoolRepeatedTasks(pooled, embeddings);
  return BuildRouterFromEmbeddings(pooled, embedder.identity(), embeddings, p);
}

int64_t RouterEval::Total(size_t row) const {
  int64_t t = 0;
  for (int64_t v : confusion[row]) t += v;
  return t;
}

int64_t RouterEval::Correct(size_t row) const {
  const auto it = std::find(tasks.begin(), tasks.end(), eval_tasks[row]);
  return confusion[row][static_cast<size_t>(it - tasks.begin())];
}

double RouterEval::Accuracy() const {
  int64_t total = 0, correct = 0;
  for (size_t r = 0; r < eval_tasks.size(); ++r) {
    total += Total(r);
    correct += Correct(r);
  }
  return total > 0 ? static_cast<double>(correct) / static_cast<double>(total) : 0.0;
}

RouterEval EvaluateRouter(const RouterFile& file, Embedder& embedder, const RoutingPolicy& policy,
                          const std::vector<TaskSpec>& specs, const RecordOptions& o) {
  RouterEval ev;
  ev.tasks = file.TaskNames();
  for (const TaskSpec& spec : specs) {
    if (std::find(ev.tasks.begin(), ev.tasks.end(), spec.name) == ev.tasks.end()) {
      std::string names;
      for (const auto& n : ev.tasks) names.append(names.empty() ? "" : ", ").append(n);
      throw InputError("--task " + spec.name + ": not a task of the router (" + names + ")");
    }
    spec.Template();
  }
  const size_t dim = static_cast<size_t>(embedder.dim());
  const TaskScorer scorer(file);
  for (const TaskSpec& spec : specs) {
    const TaskEmbeddings emb = EmbedTask(spec, embedder, o);
    std::vector<int64_t> row(ev.tasks.size(), 0);
    for (size_t i = 0; i < emb.size(); ++i) {
      const std::span<const float> e(emb.rows.data() + i * dim, dim);
      const std::vector<float> w = policy.Weights(scorer.Similarities(e, policy.score));
      ++row[static_cast<size_t>(std::max_element(w.begin(), w.end()) - w.begin())];
    }
    ev.eval_tasks.push_back(spec.name);
    ev.confusion.push_back(std::move(row));
    ev.skipped.push_back(emb.skipped);
  }
  return ev;
}

std::string FormatRouterEval(const RouterEval& ev) {
  size_t w = 8;
  for (const auto& t : ev.tasks) w = std::max(w, t.size() + 1);
  char buf[64];
  std::string out = std::string(w, ' ') + "  top-weighted task →\n";
  out += std::string(w, ' ');
  for (const auto& t : ev.tasks) {
    std::snprintf(buf, sizeof buf, " %*s", static_cast<int>(w), t.c_str());
    out += buf;
  }
  out += "   prompts  own-task\n";
  int64_t total = 0, correct = 0;
  for (size_t r = 0; r < ev.eval_tasks.size(); ++r) {
    std::snprintf(buf, sizeof buf, "%-*s", static_cast<int>(w), ev.eval_tasks[r].c_str());
    out += buf;
    for (int64_t v : ev.confusion[r]) {
      std::snprintf(buf, sizeof buf, " %*lld", static_cast<int>(w), static_cast<long long>(v));
      out += buf;
    }
    const int64_t n = ev.Total(r), c = ev.Correct(r);
    total += n;
    correct += c;
    std::snprintf(buf, sizeof buf, "  %8lld  %6.2f%%\n", static_cast<long long>(n),
                  n > 0 ? 100.0 * static_cast<double>(c) / static_cast<double>(n) : 0.0);
    out += buf;
  }
  std::snprintf(buf, sizeof buf, "overall: %lld of %lld prompts (%.2f%%) go to their own task\n",
                static_cast<long long>(correct), static_cast<long long>(total),
                total > 0 ? 100.0 * static_cast<double>(correct) / static_cast<double>(total) : 0.0);
  return out + buf;
}

}  // namespace tokenlora
