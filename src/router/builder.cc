#include "router/builder.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

#include "core/error.h"
#include "io/io_util.h"
#include "router/progress.h"

namespace tokenlora {
namespace {

// Calls fn(records, embeddings [n, dim]) batch by batch over a task's records.
template <typename Fn>
void ForEachEmbeddedBatch(const TaskSpec& spec, Embedder& embedder, const RecordOptions& o,
                          TaskRecords& records, Fn&& fn) {
  ProgressBar bar(spec.name, records.total(), stderr);
  std::vector<FormattedRecord> batch;
  std::vector<std::string> texts;
  std::vector<float> emb;
  const size_t dim = static_cast<size_t>(embedder.dim());
  while (true) {
    batch.clear();
    if (!records.NextBatch(static_cast<size_t>(std::max(1, o.batch)), &batch)) break;
    texts.clear();
    for (auto& r : batch) texts.push_back(std::move(r.text));
    emb.resize(texts.size() * dim);
    embedder.EmbedBatch(texts, emb.data());
    fn(batch, emb);
    if (o.progress) bar.Update(records.done());
  }
  if (o.progress) {
    bar.Finish(records.done(),
               records.skipped() > 0 ? std::to_string(records.skipped()) + " bad records skipped" : "");
    for (const std::string& m : records.skip_messages()) std::fprintf(stderr, "  skipped %s\n", m.c_str());
  }
}

}  // namespace

RouterFile BuildRouter(const std::vector<TaskSpec>& tasks, Embedder& embedder, const RecordOptions& o) {
  if (tasks.empty()) throw InputError("no --task given (NAME=FILE.jsonl[:TEMPLATE], one per adapter)");
  std::set<std::string> names;
  for (const TaskSpec& t : tasks) {
    if (!names.insert(t.name).second) throw InputError("--task " + t.name + " is given twice");
    t.Template();  // fail on a bad template before hours of embedding
  }
  RouterFile file;
  file.embedder = embedder.identity();
  const size_t dim = static_cast<size_t>(embedder.dim());
  for (const TaskSpec& spec : tasks) {
    const RecordTemplate tmpl = spec.Template();
    TaskRecords records(spec, tmpl, o.limit, o.skip_bad);
    std::vector<double> sum(dim, 0.0);
    int64_t n = 0;
    ForEachEmbeddedBatch(spec, embedder, o, records,
                         [&](const std::vector<FormattedRecord>& batch, const std::vector<float>& emb) {
                           for (size_t i = 0; i < batch.size(); ++i) {
                             // The reference averages sentence-transformers' (normalised) output;
                             // normalising here keeps that meaning for embedders without a
                             // Normalize module and changes nothing for those with one.
                             const float* e = emb.data() + i * dim;
                             double sq = 0.0;
                             for (size_t j = 0; j < dim; ++j) sq += double{e[j]} * e[j];
                             const double inv = 1.0 / std::max(std::sqrt(sq), 1e-12);
                             for (size_t j = 0; j < dim; ++j) sum[j] += e[j] * inv;
                           }
                           n += static_cast<int64_t>(batch.size());
                         });
    if (n == 0) {
      throw InputError("--task " + spec.name + "=" + spec.Describe() + ": no records to embed (" +
                       (records.skipped() > 0 ? std::to_string(records.skipped()) + " bad records skipped"
                                              : "empty file or slice") +
                       ")");
    }
    RouterTask task;
    task.name = spec.name;
    task.source = spec.Describe();
    task.template_spec = tmpl.spec();
    task.records = n;
    task.skipped = records.skipped();
    task.centroid.resize(dim);
    for (size_t j = 0; j < dim; ++j) task.centroid[j] = static_cast<float>(sum[j] / static_cast<double>(n));
    file.tasks.push_back(std::move(task));
  }
  return file;
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
  for (const TaskSpec& spec : specs) {
    TaskRecords records(spec, spec.Template(), o.limit, o.skip_bad);
    std::vector<int64_t> row(ev.tasks.size(), 0);
    ForEachEmbeddedBatch(spec, embedder, o, records,
                         [&](const std::vector<FormattedRecord>& batch, const std::vector<float>& emb) {
                           for (size_t i = 0; i < batch.size(); ++i) {
                             std::vector<float> sims;
                             const std::span<const float> e(emb.data() + i * dim, dim);
                             for (const RouterTask& t : file.tasks)
                               sims.push_back(CosineSimilarity(e, t.centroid));
                             const std::vector<float> w = policy.Weights(sims);
                             ++row[static_cast<size_t>(std::max_element(w.begin(), w.end()) - w.begin())];
                           }
                         });
    ev.eval_tasks.push_back(spec.name);
    ev.confusion.push_back(std::move(row));
    ev.skipped.push_back(records.skipped());
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
