// Paired bootstrap confidence intervals for differences between two
// configurations scored on the same items (Efron & Tibshirani, ch. 13:
// percentile intervals). Pure functions; deterministic for a seed.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace tokenlora::eval {

struct BootstrapInterval {
  double estimate = 0;  // the statistic on the data as measured
  double low = 0, high = 0;
};

// The statistic: the mean over groups of each group's mean per-item
// difference (a group is a task; each task counts once however many items it
// has). Every resample draws each group's items with replacement, within the
// group (paired: an item's difference moves as one). The interval holds the
// `level` central part of `resamples` resampled statistics (percentiles by
// linear interpolation, numpy's default). Groups must not be empty.
BootstrapInterval BootstrapMeanOfGroupMeans(const std::vector<std::vector<double>>& differences, int resamples,
                                            uint64_t seed, double level = 0.95);

// The q-quantile (0..1) of `values` by linear interpolation between order
// statistics (numpy.quantile's default); `values` need not be sorted.
double Quantile(std::vector<double> values, double q);

// Mean and sample standard deviation (n − 1; 0 for fewer than 2 values).
struct MeanSd {
  double mean = 0, sd = 0;
};
MeanSd MeanAndSd(std::span<const double> values);

}  // namespace tokenlora::eval
