#include "eval/claims.h"

#include <cstdio>

namespace tokenlora::eval {
namespace {

std::string Percent(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%+.1f", 100 * v);
  return buf;
}

// holds / does not hold / not distinguishable over several verdicts.
std::string Combine(const std::vector<ClaimComparison>& comparisons) {
  bool all_hold = !comparisons.empty();
  for (const ClaimComparison& c : comparisons) {
    if (c.verdict == kDoesNotHold) return kDoesNotHold;
    all_hold = all_hold && c.verdict == kHolds;
  }
  return all_hold ? kHolds : kNotDistinguishable;
}

// Per-task differences a − b, or nullopt (with `missing` set) when a run is absent.
std::optional<std::vector<double>> Differences(const ItemScoresFn& scores, const std::string& a, const std::string& b,
                                               EvalTask task, std::string* missing) {
  const auto sa = scores(a, task), sb = scores(b, task);
  if (!sa || !sb || sa->empty() || sa->size() != sb->size()) {
    *missing = std::string(!sa || sa->empty() ? a : b) + " on " + EvalTaskName(task);
    return std::nullopt;
  }
  std::vector<double> d(sa->size());
  for (size_t i = 0; i < d.size(); ++i) d[i] = (*sa)[i] - (*sb)[i];
  return d;
}

}  // namespace

const char* IntervalVerdict(const BootstrapInterval& difference) {
  // An end within rounding of zero is zero: a resampled mean of differences
  // such as 2/3 − 1/3 that cancel exactly can come out 6e-18, which must not
  // turn an interval that touches zero into a verdict. Scores are fractions
  // in [0, 1], so 1e-9 is far below any difference that means anything.
  constexpr double kZero = 1e-9;
  if (difference.low > kZero) return kHolds;
  if (difference.high < -kZero) return kDoesNotHold;
  return kNotDistinguishable;
}

std::vector<ClaimReport> EvaluateClaims(const SuiteClaims& claims, const std::vector<EvalTask>& tasks,
                                        const ItemScoresFn& scores, const ClaimOptions& options) {
  std::vector<ClaimReport> out;
  auto compare = [&](const std::string& label, const std::vector<std::vector<double>>& groups) {
    ClaimComparison c;
    c.label = label;
    c.difference = BootstrapMeanOfGroupMeans(groups, options.resamples, options.seed, options.level);
    c.verdict = IntervalVerdict(c.difference);
    return c;
  };
  auto not_run = [](ClaimReport& r, const std::string& missing) {
    r.comparisons.clear();
    r.verdict = kNotRun;
    r.note = "no scores for " + missing;
  };

  // (a) and (b) for one routed configuration; `suffix` tells extra ones apart.
  const auto routed_claims = [&](const std::string& routed, const std::string& suffix) {
    ClaimReport a;
    a.id = "a" + suffix;
    a.statement = "token-level routing (" + routed + ") beats the base model (" + claims.base + ") on every task";
    for (const EvalTask task : tasks) {
      std::string missing;
      const auto d = Differences(scores, routed, claims.base, task, &missing);
      if (!d) {
        not_run(a, missing);
        break;
      }
      a.comparisons.push_back(compare(std::string(EvalTaskName(task)) + ": " + routed + " - " + claims.base, {*d}));
    }
    if (a.verdict.empty()) a.verdict = Combine(a.comparisons);
    out.push_back(std::move(a));

    ClaimReport b;
    b.id = "b" + suffix;
    b.statement = "the mean over the tasks of token-level routing (" + routed +
                  ") beats the mean of the task-specific adapters, each on its own task";
    std::vector<std::vector<double>> own_groups;
    for (const EvalTask task : tasks) {
      const auto it = claims.own_adapter.find(EvalTaskName(task));
      std::string missing = std::string("an own-adapter configuration for ") + EvalTaskName(task);
      const auto d = it == claims.own_adapter.end() ? std::nullopt
                                                    : Differences(scores, routed, it->second, task, &missing);
      if (!d) {
        not_run(b, missing);
        break;
      }
      own_groups.push_back(*d);
    }
    if (b.verdict.empty()) {
      b.comparisons.push_back(compare("task mean: " + routed + " - own adapters", own_groups));
      b.verdict = Combine(b.comparisons);
    }
    out.push_back(std::move(b));
  };
  routed_claims(claims.routed, "");

  ClaimReport c;
  c.id = "c";
  c.statement = "re-routing every " + std::to_string(claims.best_k) + " tokens is best among k = ";
  for (const auto& [k, name] : claims.every_k) c.statement += (k == claims.every_k.begin()->first ? "" : ", ") + std::to_string(k);
  const std::string& best = claims.every_k.at(claims.best_k);
  double top_mean = -1;
  int top_k = 0;
  for (const auto& [k, name] : claims.every_k) {
    std::vector<std::vector<double>> groups;
    std::string missing;
    double mean = 0;
    for (const EvalTask task : tasks) {
      const auto s = scores(name, task);
      if (!s || s->empty()) {
        missing = name + " on " + EvalTaskName(task);
        break;
      }
      double sum = 0;
      for (const double v : *s) sum += v;
      mean += sum / static_cast<double>(s->size()) / static_cast<double>(tasks.size());
      if (k != claims.best_k) {
        const auto d = Differences(scores, best, name, task, &missing);
        if (!d) break;
        groups.push_back(*d);
      }
    }
    if (!missing.empty()) {
      not_run(c, missing);
      break;
    }
    if (mean > top_mean) top_mean = mean, top_k = k;
    if (k != claims.best_k) c.comparisons.push_back(compare("task mean: " + best + " - " + name, groups));
  }
  if (c.verdict.empty()) {
    c.verdict = Combine(c.comparisons);
    char buf[96];
    std::snprintf(buf, sizeof buf, "highest task mean: k = %d (%.1f%%)", top_k, 100 * top_mean);
    c.note = buf;
  }
  out.push_back(std::move(c));
  // Beyond the paper: (a) and (b) again for other routed configurations.
  for (const std::string& routed : claims.also_routed) routed_claims(routed, ", " + routed);
  return out;
}

nlohmann::json ClaimsJson(const std::vector<ClaimReport>& reports) {
  nlohmann::json out = nlohmann::json::array();
  for (const ClaimReport& r : reports) {
    nlohmann::json comparisons = nlohmann::json::array();
    for (const ClaimComparison& c : r.comparisons) {
      comparisons.push_back({{"label", c.label},
                             {"difference", c.difference.estimate},
                             {"ci95", {c.difference.low, c.difference.high}},
                             {"verdict", c.verdict}});
    }
    out.push_back({{"claim", r.id}, {"statement", r.statement}, {"comparisons", comparisons}, {"verdict", r.verdict},
                   {"note", r.note}});
  }
  return out;
}

std::string ClaimsMarkdown(const std::vector<ClaimReport>& reports) {
  std::string md;
  for (const ClaimReport& r : reports) {
    md += "**(" + r.id + ") " + r.statement + "**: " + r.verdict + (r.note.empty() ? "" : " (" + r.note + ")") + "\n\n";
    if (r.comparisons.empty()) continue;
    md += "| difference (points) | 95% paired-bootstrap interval | verdict |\n|---|---|---|\n";
    for (const ClaimComparison& c : r.comparisons) {
      md += "| " + c.label + ": " + Percent(c.difference.estimate) + " | [" + Percent(c.difference.low) + ", " +
            Percent(c.difference.high) + "] | " + c.verdict + " |\n";
    }
    md += "\n";
  }
  return md;
}

}  // namespace tokenlora::eval
