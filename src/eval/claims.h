// The seed paper's three claims, tested on a suite's per-item scores with
// paired-bootstrap 95% intervals (eval/bootstrap.h):
//   (a) token-level routing beats the base model on every task;
//   (b) its mean over the tasks beats the mean of the task-specific adapters
//       (each on its own task);
//   (c) re-routing every k-th token is best at k = best_k (the paper: 2).
// A difference "holds" when its interval lies above 0, "does not hold" when
// below, and is "not distinguishable at this sample size" otherwise; a
// claim over several differences holds when all hold, does not hold when
// any does not, and is not distinguishable otherwise. No correction for
// multiple comparisons (each interval is 95% on its own).
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "eval/bootstrap.h"
#include "eval/suite.h"

namespace tokenlora::eval {

inline constexpr const char* kHolds = "holds";
inline constexpr const char* kDoesNotHold = "does not hold";
inline constexpr const char* kNotDistinguishable = "not distinguishable at this sample size";
inline constexpr const char* kNotRun = "not run";

struct ClaimComparison {
  std::string label;  // "gsm8k: routed-k2 - base"
  BootstrapInterval difference;
  std::string verdict;
};

struct ClaimReport {
  std::string id;         // "a", "b", "c"
  std::string statement;  // the claim in words
  std::vector<ClaimComparison> comparisons;
  std::string verdict;
  std::string note;       // what was missing, or which k scored best
};

// Per-item scores of a configuration on a task, in item order (the same
// items for every configuration); nullopt when that run is not there.
using ItemScoresFn = std::function<std::optional<std::vector<double>>(const std::string& config, EvalTask task)>;

struct ClaimOptions {
  int resamples = 10000;
  uint64_t seed = 2023;
  double level = 0.95;
};

std::vector<ClaimReport> EvaluateClaims(const SuiteClaims& claims, const std::vector<EvalTask>& tasks,
                                        const ItemScoresFn& scores, const ClaimOptions& options = {});

// The verdict of one interval: holds when it lies above zero, does not hold
// when below, not distinguishable when it touches zero (an end within 1e-9
// of zero, rounding, counts as touching).
const char* IntervalVerdict(const BootstrapInterval& difference);

nlohmann::json ClaimsJson(const std::vector<ClaimReport>& reports);
// Markdown: a section per claim, its differences with intervals, the verdict.
std::string ClaimsMarkdown(const std::vector<ClaimReport>& reports);

}  // namespace tokenlora::eval
