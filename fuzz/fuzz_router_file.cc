// libFuzzer target: RouterFile::Parse over arbitrary text. Only InputError
// may escape; what loads must have valid, distinct task names, finite
// centroids of embedder.dim numbers, prototypes exactly with k-means settings
// (version 2, or 3; 1..min(kmeans.k, records) finite vectors of embedder.dim
// numbers each), a whitening exactly in version 3 (lambda in (0, 1e6], a
// finite mean of dim numbers and matrix of dim x dim), and survive Serialize
// -> Parse with the same tasks, centroids, prototypes and whitening (the file
// `router build` writes is the file `route` reads).
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>

#include "core/error.h"
#include "router/router_file.h"
#include "router/task_data.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tokenlora;
  RouterFile file;
  try {
    file = RouterFile::Parse(std::string(reinterpret_cast<const char*>(data), size), "fuzz/router.json");
  } catch (const InputError&) {
    return 0;  // the expected outcome for malformed input
  }
  const auto check_vector = [&](const std::vector<float>& v) {
    if (v.size() != static_cast<size_t>(file.embedder.dim)) __builtin_trap();
    for (const float x : v) {
      if (!std::isfinite(x)) __builtin_trap();
    }
  };
  if ((file.version() == 3) != file.whitening.has_value()) __builtin_trap();
  if (file.whitening) {
    const RouterWhitening& w = *file.whitening;
    if (!(w.lambda > 0 && w.lambda <= RouterWhitening::kMaxLambda)) __builtin_trap();
    check_vector(w.mean);
    if (w.matrix.size() != w.mean.size() * w.mean.size()) __builtin_trap();
    for (const float x : w.matrix) {
      if (!std::isfinite(x)) __builtin_trap();
    }
  }
  std::set<std::string> names;
  for (const RouterTask& t : file.tasks) {
    if (!IsValidTaskName(t.name) || !names.insert(t.name).second) __builtin_trap();
    check_vector(t.centroid);
    if ((file.kmeans.k > 0) == t.prototypes.empty()) __builtin_trap();
    if (static_cast<int64_t>(t.prototypes.size()) > std::min<int64_t>(file.kmeans.k, t.records)) __builtin_trap();
    for (const auto& p : t.prototypes) check_vector(p);
  }
  RouterFile again;
  try {
    again = RouterFile::Parse(file.Serialize(), "fuzz/router.json (rewritten)");
  } catch (const InputError&) {
    __builtin_trap();  // what we write, we must read
  }
  if (again.TaskNames() != file.TaskNames() || again.embedder.dim != file.embedder.dim ||
      again.version() != file.version() || again.kmeans.k != file.kmeans.k || again.kmeans.seed != file.kmeans.seed)
    __builtin_trap();
  for (size_t i = 0; i < file.tasks.size(); ++i) {
    if (again.tasks[i].centroid != file.tasks[i].centroid) __builtin_trap();
    if (again.tasks[i].prototypes != file.tasks[i].prototypes) __builtin_trap();
  }
  if (file.whitening && (again.whitening->lambda != file.whitening->lambda ||
                         again.whitening->mean != file.whitening->mean ||
                         again.whitening->matrix != file.whitening->matrix))
    __builtin_trap();
  return 0;
}
