#include "eval/bootstrap.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "core/error.h"

namespace tokenlora::eval {

double Quantile(std::vector<double> values, double q) {
  TL_CHECK(!values.empty() && q >= 0 && q <= 1);
  std::sort(values.begin(), values.end());
  const double pos = q * static_cast<double>(values.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, values.size() - 1);
  return values[lo] + (pos - static_cast<double>(lo)) * (values[hi] - values[lo]);
}

BootstrapInterval BootstrapMeanOfGroupMeans(const std::vector<std::vector<double>>& differences, int resamples,
                                            uint64_t seed, double level) {
  TL_CHECK(!differences.empty() && resamples > 0 && level > 0 && level < 1);
  auto mean_of_means = [&](auto&& value_at) {
    double sum = 0;
    for (size_t g = 0; g < differences.size(); ++g) {
      double group = 0;
      for (size_t i = 0; i < differences[g].size(); ++i) group += value_at(g, i);
      sum += group / static_cast<double>(differences[g].size());
    }
    return sum / static_cast<double>(differences.size());
  };
  for (const std::vector<double>& g : differences) TL_CHECK(!g.empty());
  BootstrapInterval out;
  out.estimate = mean_of_means([&](size_t g, size_t i) { return differences[g][i]; });
  std::mt19937_64 rng(seed);
  std::vector<double> stats(static_cast<size_t>(resamples));
  for (double& stat : stats) {
    stat = mean_of_means([&](size_t g, size_t) {
      const size_t n = differences[g].size();
      return differences[g][std::uniform_int_distribution<size_t>(0, n - 1)(rng)];
    });
  }
  const double tail = (1 - level) / 2;
  out.low = Quantile(stats, tail);
  out.high = Quantile(std::move(stats), 1 - tail);
  return out;
}

MeanSd MeanAndSd(std::span<const double> values) {
  MeanSd out;
  if (values.empty()) return out;
  for (const double v : values) out.mean += v;
  out.mean /= static_cast<double>(values.size());
  if (values.size() < 2) return out;
  double ss = 0;
  for (const double v : values) ss += (v - out.mean) * (v - out.mean);
  out.sd = std::sqrt(ss / static_cast<double>(values.size() - 1));
  return out;
}

}  // namespace tokenlora::eval
