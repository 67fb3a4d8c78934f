#include "router/precision_check.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/error.h"
#include "router/progress.h"
#include "router/router.h"

namespace tokenlora {
double PrecisionComparison::ShareCosineAtLeast(double threshold) const {
  if (cosine.empty()) return 0;
  return static_cast<double>(std::count_if(cosine.begin(), cosine.end(), [&](double c) { return c >= threshold; })) /
         static_cast<double>(cosine.size());
}

double PrecisionComparison::ShareWeightsWithin(double threshold) const {
  if (weight_diff.empty()) return 0;
  return static_cast<double>(
             std::count_if(weight_diff.begin(), weight_diff.end(), [&](double d) { return d <= threshold; })) /
         static_cast<double>(weight_diff.size());
}

double PrecisionComparison::ShareSameTop() const {
  if (same_top.empty()) return 0;
  return static_cast<double>(std::count(same_top.begin(), same_top.end(), true)) /
         static_cast<double>(same_top.size());
}

double PrecisionComparison::Quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = static_cast<size_t>(std::clamp(q, 0.0, 1.0) * static_cast<double>(v.size() - 1) + 0.5);
  return v[i];
}

int64_t PrecisionComparison::TextsApartFromTies(double gap) const {
  return std::count_if(top_gap.begin(), top_gap.end(), [&](double g) { return g >= gap; });
}

double PrecisionComparison::ShareWeightsWithinApartFromTies(double threshold, double gap) const {
  int64_t n = 0, ok = 0;
  for (size_t i = 0; i < top_gap.size(); ++i) {
    if (top_gap[i] < gap) continue;
    ++n;
    ok += weight_diff[i] <= threshold;
  }
  return n ? static_cast<double>(ok) / static_cast<double>(n) : 0;
}

double PrecisionComparison::ShareSameTopApartFromTies(double gap) const {
  int64_t n = 0, ok = 0;
  for (size_t i = 0; i < top_gap.size(); ++i) {
    if (top_gap[i] < gap) continue;
    ++n;
    ok += same_top[i];
  }
  return n ? static_cast<double>(ok) / static_cast<double>(n) : 0;
}

PrecisionComparison ComparePrecision(const RouterFile& file, Embedder& reference, Embedder& candidate,
                                     const RoutingPolicy& policy, const std::vector<TaskSpec>& specs,
                                     const RecordOptions& o) {
  TL_CHECK_MSG(reference.identity().sha256 == candidate.identity().sha256 && reference.dim() == candidate.dim(),
               "ComparePrecision: the two embedders are different models");
  if (specs.empty()) throw InputError("no --task given (NAME=FILE.jsonl[SLICE][:TEMPLATE])");
  PrecisionComparison c;
  c.reference = EncoderPrecisionName(reference.model().precision());
  c.candidate = EncoderPrecisionName(candidate.model().precision());
  c.max_pieces = reference.model().max_pieces();
  const size_t dim = static_cast<size_t>(reference.dim());
  std::vector<FormattedRecord> batch;
  std::vector<std::string> texts;
  std::vector<float> ref(dim), cand(dim);
  const TaskScorer scorer(file);
  for (const TaskSpec& spec : specs) {
    TaskRecords records(spec, spec.Template(), o.limit, o.skip_bad);
    ProgressBar bar(spec.name, records.total(), stderr);
    int64_t n = 0;
    while (true) {
      batch.clear();
      if (!records.NextBatch(static_cast<size_t>(std::max(1, o.batch)), &batch)) break;
      texts.clear();
      for (auto& r : batch) texts.push_back(std::move(r.text));
      ref.resize(texts.size() * dim);
      cand.resize(texts.size() * dim);
      reference.EmbedBatch(texts, ref.data());
      candidate.EmbedBatch(texts, cand.data());
      for (size_t i = 0; i < texts.size(); ++i) {
        const float* a = ref.data() + i * dim;
        const float* b = cand.data() + i * dim;
        c.pieces.push_back(static_cast<int>(reference.model().tokenizer().Encode(texts[i], false).size()));
        c.cosine.push_back(CosineSimilarity({a, dim}, {b, dim}));
        std::vector<float> sa = scorer.Similarities({a, dim}, policy.score);
        const std::vector<float> wa = policy.Weights(sa);
        const std::vector<float> wb = policy.Weights(scorer.Similarities({b, dim}, policy.score));
        std::sort(sa.rbegin(), sa.rend());
        c.top_gap.push_back(sa.size() < 2 ? 1.0 : double{sa[0]} - sa[1]);
        double diff = 0;
        for (size_t k = 0; k < wa.size(); ++k) diff = std::max(diff, double{std::fabs(wa[k] - wb[k])});
        c.weight_diff.push_back(diff);
        c.same_top.push_back(std::max_element(wa.begin(), wa.end()) - wa.begin() ==
                             std::max_element(wb.begin(), wb.end()) - wb.begin());
      }
      n += static_cast<int64_t>(texts.size());
      if (o.progress) bar.Update(records.done());
    }
    if (o.progress) bar.Finish(records.done(), "");
    c.tasks.push_back(spec.name);
    c.texts_per_task.push_back(n);
  }
  return c;
}

std::string FormatPrecisionComparison(const PrecisionComparison& c) {
  char buf[256];
  std::string out;
  const int64_t long_texts =
      std::count_if(c.pieces.begin(), c.pieces.end(), [&](int p) { return p > c.max_pieces; });
  std::vector<double> pieces(c.pieces.begin(), c.pieces.end());
  std::snprintf(buf, sizeof buf, "%s against %s on %lld texts (", c.candidate.c_str(), c.reference.c_str(),
                static_cast<long long>(c.Texts()));
  out += buf;
  for (size_t t = 0; t < c.tasks.size(); ++t) {
    out += (t ? ", " : "") + c.tasks[t] + " " + std::to_string(c.texts_per_task[t]);
  }
  std::snprintf(buf, sizeof buf,
                "); word pieces min %.0f, median %.0f, max %.0f; %lld past the %d-piece window\n",
                PrecisionComparison::Quantile(pieces, 0), PrecisionComparison::Quantile(pieces, 0.5),
                PrecisionComparison::Quantile(pieces, 1), static_cast<long long>(long_texts), c.max_pieces);
  out += buf;
  std::snprintf(buf, sizeof buf, "cosine(embeddings):      min %.6f  p1 %.6f  median %.6f\n",
                PrecisionComparison::Quantile(c.cosine, 0), PrecisionComparison::Quantile(c.cosine, 0.01),
                PrecisionComparison::Quantile(c.cosine, 0.5));
  out += buf;
  std::snprintf(buf, sizeof buf, "max |weight difference|: max %.6f  p99 %.6f  median %.6f\n",
                PrecisionComparison::Quantile(c.weight_diff, 1), PrecisionComparison::Quantile(c.weight_diff, 0.99),
                PrecisionComparison::Quantile(c.weight_diff, 0.5));
  out += buf;
  std::snprintf(buf, sizeof buf,
                "bar: cosine >= 0.999 for %.2f%% of texts (need 99%%); weights within 0.01 for %.2f%% (need "
                "100%%); same top task for %.2f%% (need 99.5%%)\n",
                100 * c.ShareCosineAtLeast(0.999), 100 * c.ShareWeightsWithin(0.01), 100 * c.ShareSameTop());
  out += buf;
  const int64_t apart = c.TextsApartFromTies(kNearTieGap);
  std::snprintf(buf, sizeof buf,
                "%lld texts within %.3f of a tie between the two most similar tasks (where the paper's 4x boost can "
                "flip); the other %lld: weights within 0.01 for %.2f%%, same top task for %.2f%%\n",
                static_cast<long long>(c.Texts() - apart), kNearTieGap, static_cast<long long>(apart),
                100 * c.ShareWeightsWithinApartFromTies(0.01, kNearTieGap),
                100 * c.ShareSameTopApartFromTies(kNearTieGap));
  out += buf;
  return out;
}

}  // namespace tokenlora
