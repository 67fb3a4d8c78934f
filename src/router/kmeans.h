// Spherical k-means: the prototypes of a task (`router build --prototypes K`)
// are the clusters of its records' embeddings under cosine similarity.
//
// Seeding is k-means++ (Arthur & Vassilvitskii, 2007) with the distance
// 1 − cos: the first centre is a uniformly drawn point, each next one a point
// drawn with probability proportional to its distance to the nearest centre
// chosen so far (points within 1e-6 of a centre count as that point, so
// duplicates never become clusters of their own). Lloyd iterations then assign every point to the centre of
// largest cosine (the first on ties) and move each centre to its members'
// mean, re-normalised for the next assignment (Dhillon & Modha, 2001). An
// empty cluster takes the point farthest from its own centre. The RNG is a
// seeded std::mt19937_64 whose bits are turned into doubles by hand, and all
// sums run in a fixed order in double: one seed gives bit-identical
// prototypes on every machine and thread count.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace tokenlora {

struct KMeansOptions {
  int k = 1;                 // clusters asked for (>= 1)
  uint64_t seed = 0;         // k-means++ seeding
  int max_iterations = 100;  // Lloyd iterations at most
};

struct KMeansResult {
  // [n_clusters][dim]: each cluster's mean of its (unit) points, not
  // re-normalised; largest cluster first (ties: the one whose first member
  // comes first). n_clusters = min(k, n, distinct points).
  std::vector<std::vector<float>> centroids;
  std::vector<int64_t> sizes;  // [n_clusters] points per cluster
  std::vector<int> assignment;  // [n] cluster of each point
  int iterations = 0;           // Lloyd iterations run
  bool converged = false;       // assignments stopped changing within max_iterations
};

// `points`: [n, dim] row-major, each of unit length (cosine = dot product);
// n >= 1. Deterministic for a given seed.
KMeansResult SphericalKMeans(std::span<const float> points, size_t n, size_t dim, const KMeansOptions& options);

}  // namespace tokenlora
