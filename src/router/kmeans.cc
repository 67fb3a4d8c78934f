#include "router/kmeans.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "core/error.h"

namespace tokenlora {
namespace {

double Dot(const float* a, const float* b, size_t dim) {
  double s = 0.0;
  for (size_t i = 0; i < dim; ++i) s += double{a[i]} * b[i];
  return s;
}

// 1 − cosine of unit rows, with float rounding (|1 − a·a| ~ 1e-7) and
// points closer than that counted as the same point (distance 0).
double Distance(const float* a, const float* b, size_t dim) {
  const double d = 1.0 - Dot(a, b, dim);
  return d < 1e-6 ? 0.0 : d;
}

// Uniform in [0, 1) from the top 53 bits: the same on every standard library
// (std::uniform_real_distribution's algorithm is not specified).
double Uniform(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

// k-means++ centres (unit rows), at most k; fewer when every remaining point
// coincides with a chosen centre.
std::vector<std::vector<float>> SeedCenters(std::span<const float> points, size_t n, size_t dim, size_t k,
                                            std::mt19937_64& rng) {
  const auto row = [&](size_t i) { return points.data() + i * dim; };
  std::vector<std::vector<float>> centers;
  const size_t first = std::min(n - 1, static_cast<size_t>(Uniform(rng) * static_cast<double>(n)));
  centers.emplace_back(row(first), row(first) + dim);
  std::vector<double> dist(n);  // Distance to the nearest centre so far
  for (size_t i = 0; i < n; ++i) dist[i] = Distance(row(i), centers[0].data(), dim);
  while (centers.size() < k) {
    double total = 0.0;
    for (double d : dist) total += d;
    if (!(total > 0.0)) break;  // no point is away from the centres: no new cluster to make
    const double target = Uniform(rng) * total;
    size_t pick = n;
    double cumulative = 0.0;
    for (size_t i = 0; i < n; ++i) {
      if (dist[i] <= 0.0) continue;
      pick = i;  // the last candidate, should rounding leave cumulative <= target
      cumulative += dist[i];
      if (cumulative > target) break;
    }
    TL_CHECK(pick < n);
    centers.emplace_back(row(pick), row(pick) + dim);
    for (size_t i = 0; i < n; ++i)
      dist[i] = std::min(dist[i], Distance(row(i), centers.back().data(), dim));
  }
  return centers;
}

}  // namespace

KMeansResult SphericalKMeans(std::span<const float> points, size_t n, size_t dim, const KMeansOptions& o) {
  TL_CHECK(n >= 1 && dim >= 1 && points.size() == n * dim && o.k >= 1 && o.max_iterations >= 1);
  const auto row = [&](size_t i) { return points.data() + i * dim; };
  std::mt19937_64 rng(o.seed);
  std::vector<std::vector<float>> centers = SeedCenters(points, n, dim, std::min<size_t>(o.k, n), rng);
  const size_t k = centers.size();

  KMeansResult r;
  std::vector<int>& assign = r.assignment;
  assign.assign(n, -1);
  std::vector<double> best_sim(n);
  std::vector<std::vector<double>> sums(k, std::vector<double>(dim));
  std::vector<int64_t> counts(k);
  for (int iter = 0; iter < o.max_iterations; ++iter) {
    bool changed = false;
    for (size_t i = 0; i < n; ++i) {
      int best = 0;
      double best_dot = Dot(row(i), centers[0].data(), dim);
      for (size_t c = 1; c < k; ++c) {
        const double d = Dot(row(i), centers[c].data(), dim);
        if (d > best_dot) best_dot = d, best = static_cast<int>(c);
      }
      changed |= assign[i] != best;
      assign[i] = best;
      best_sim[i] = best_dot;
    }
    std::fill(counts.begin(), counts.end(), 0);
    for (size_t i = 0; i < n; ++i) ++counts[static_cast<size_t>(assign[i])];
    // An empty cluster takes the point farthest from its own centre, from a
    // cluster that keeps at least one point (n >= k guarantees one).
    for (size_t c = 0; c < k; ++c) {
      if (counts[c] > 0) continue;
      size_t far = n;
      for (size_t i = 0; i < n; ++i) {
        if (counts[static_cast<size_t>(assign[i])] > 1 && (far == n || best_sim[i] < best_sim[far])) far = i;
      }
      TL_CHECK(far < n);
      --counts[static_cast<size_t>(assign[far])];
      assign[far] = static_cast<int>(c);
      counts[c] = 1;
      best_sim[far] = 1.0;
      changed = true;
    }
    for (auto& s : sums) std::fill(s.begin(), s.end(), 0.0);
    for (size_t i = 0; i < n; ++i) {
      std::vector<double>& s = sums[static_cast<size_t>(assign[i])];
      for (size_t j = 0; j < dim; ++j) s[j] += row(i)[j];
    }
    r.iterations = iter + 1;
    if (!changed) {
      r.converged = true;
      break;
    }
    for (size_t c = 0; c < k; ++c) {
      double sq = 0.0;
      for (double v : sums[c]) sq += v * v;
      if (!(sq > 0.0)) continue;  // members cancel out exactly: keep the old direction
      const double inv = 1.0 / std::sqrt(sq);
      for (size_t j = 0; j < dim; ++j) centers[c][j] = static_cast<float>(sums[c][j] * inv);
    }
  }

  // Largest cluster first; ties by the first member's index.
  std::vector<size_t> first(k, n);
  for (size_t i = n; i-- > 0;) first[static_cast<size_t>(assign[i])] = i;
  std::vector<size_t> order(k);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return counts[a] != counts[b] ? counts[a] > counts[b] : first[a] < first[b];
  });
  std::vector<int> new_index(k);
  for (size_t c = 0; c < k; ++c) {
    const size_t old = order[c];
    new_index[old] = static_cast<int>(c);
    std::vector<float> mean(dim);
    for (size_t j = 0; j < dim; ++j)
      mean[j] = static_cast<float>(sums[old][j] / static_cast<double>(counts[old]));
    r.centroids.push_back(std::move(mean));
    r.sizes.push_back(counts[old]);
  }
  for (int& a : assign) a = new_index[static_cast<size_t>(a)];
  return r;
}

}  // namespace tokenlora
