#include "router/router_file.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "core/mapped_file.h"
#include "io/io_util.h"
#include "io/json_text.h"
#include "router/task_data.h"

namespace tokenlora {
namespace {

using nlohmann::ordered_json;

constexpr const char* kFormat = "tokenlora-router";
constexpr int kMaxVersion = 3;

// Shortest decimal that reads back as the same float: 9 significant digits
// always do, and shorter often do.
double FloatForJson(float f) {
  char buf[32];
  for (int digits = 6; digits <= 9; ++digits) {
    std::snprintf(buf, sizeof buf, "%.*g", digits, static_cast<double>(f));
    if (std::strtof(buf, nullptr) == f) break;
  }
  return std::strtod(buf, nullptr);
}

class Reader {
 public:
  explicit Reader(std::string source) : source_(std::move(source)) {}
  [[noreturn]] void Fail(const std::string& field, const std::string& why) const {
    throw InputError(source_ + ": " + field + ": " + why +
                     " — not a router file made by `tokenlora router build`, or edited by hand?");
  }
  const ordered_json& Get(const ordered_json& obj, const char* key, const std::string& field) const {
    const auto it = obj.find(key);
    if (it == obj.end()) Fail(field, "missing");
    return *it;
  }
  std::string String(const ordered_json& obj, const char* key, const std::string& field) const {
    const auto& v = Get(obj, key, field);
    if (!v.is_string()) Fail(field, "expected a string, got " + io_internal::Quote(v.dump(), 40));
    return v.get<std::string>();
  }
  int64_t Int(const ordered_json& obj, const char* key, const std::string& field, int64_t lo,
              int64_t hi) const {
    const auto& v = Get(obj, key, field);
    if (!v.is_number_integer() || v.get<int64_t>() < lo || v.get<int64_t>() > hi) {
      Fail(field, "expected an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " +
                      io_internal::Quote(v.dump(), 40));
    }
    return v.get<int64_t>();
  }
  // embedder.dim (`dim`) finite numbers that fit a float.
  std::vector<float> Vector(const ordered_json& v, const std::string& field, int dim) const {
    if (!v.is_array() || v.size() != static_cast<size_t>(dim)) {
      Fail(field, "expected " + std::to_string(dim) + " numbers (embedder.dim), got " +
                      (v.is_array() ? std::to_string(v.size()) : std::string("no list")));
    }
    std::vector<float> out;
    out.reserve(v.size());
    for (size_t j = 0; j < v.size(); ++j) {
      if (!v[j].is_number() || !std::isfinite(v[j].get<double>()) ||
          !std::isfinite(static_cast<float>(v[j].get<double>()))) {
        Fail(field + "[" + std::to_string(j) + "]", "expected a finite number");
      }
      out.push_back(v[j].get<float>());
    }
    return out;
  }
  bool Bool(const ordered_json& obj, const char* key, const std::string& field) const {
    const auto& v = Get(obj, key, field);
    if (!v.is_boolean()) Fail(field, "expected true or false");
    return v.get<bool>();
  }

 private:
  std::string source_;
};

}  // namespace

std::vector<std::string> RouterFile::TaskNames() const {
  std::vector<std::string> names;
  for (const RouterTask& t : tasks) names.push_back(t.name);
  return names;
}

RouterFile RouterFile::Load(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    throw InputError("router file " + io_internal::Quote(path) + " not found (make one with `tokenlora router build`)");
  }
  return Parse(ReadTextFile(path), path);
}

RouterFile RouterFile::Parse(const std::string& json_text, const std::string& name) {
  ordered_json root;
  try {
    root = ParseBoundedJson<ordered_json>(json_text);
  } catch (const ordered_json::exception& e) {
    throw InputError(name + ": not valid JSON (" + e.what() + ")");
  }
  const Reader r(name);
  if (!root.is_object()) r.Fail("(top level)", "expected an object");
  if (r.String(root, "format", "format") != kFormat)
    r.Fail("format", std::string("expected \"") + kFormat + "\"");
  const int64_t version = r.Int(root, "version", "version", 0, 1 << 20);
  if (version < 1 || version > kMaxVersion) {
    r.Fail("version", "version " + std::to_string(version) + " is not supported (this build reads versions 1 to " +
                          std::to_string(kMaxVersion) + ")");
  }
  RouterFile f;
  if (version == 2 || (version == 3 && root.contains("kmeans"))) {
    const auto& k = r.Get(root, "kmeans", "kmeans");
    if (!k.is_object()) r.Fail("kmeans", "expected an object {\"k\": K, \"seed\": S}");
    f.kmeans.k = static_cast<int>(r.Int(k, "k", "kmeans.k", 2, KMeansSettings::kMaxK));
    f.kmeans.seed = static_cast<uint64_t>(r.Int(k, "seed", "kmeans.seed", 0, INT64_MAX));
  } else if (root.contains("kmeans")) {
    r.Fail("kmeans", "only in version 2 and 3 files (version 1 holds one centroid per task)");
  }
  if (version != 3 && root.contains("whitening")) r.Fail("whitening", "only in version 3 files");
  const auto& e = r.Get(root, "embedder", "embedder");
  if (!e.is_object()) r.Fail("embedder", "expected an object");
  f.embedder.name = r.String(e, "name", "embedder.name");
  f.embedder.sha256 = r.String(e, "sha256", "embedder.sha256");
  f.embedder.dim = static_cast<int>(r.Int(e, "dim", "embedder.dim", 1, 1 << 16));
  f.embedder.max_seq_length =
      static_cast<int>(r.Int(e, "max_seq_length", "embedder.max_seq_length", 2, 1 << 20));
  f.embedder.pooling = r.String(e, "pooling", "embedder.pooling");
  f.embedder.normalize = r.Bool(e, "normalize", "embedder.normalize");
  if (version == 3) {
    const auto& w = r.Get(root, "whitening", "whitening");
    if (!w.is_object()) r.Fail("whitening", "expected an object {\"lambda\": L, \"mean\": [...], \"matrix\": [[...], ...]}");
    const auto& lambda = r.Get(w, "lambda", "whitening.lambda");
    if (!lambda.is_number() || !(lambda.get<double>() > 0) || !(lambda.get<double>() <= RouterWhitening::kMaxLambda))
      r.Fail("whitening.lambda", "expected a number > 0 and <= 1e6, got " + io_internal::Quote(lambda.dump(), 40));
    RouterWhitening wh;
    wh.lambda = lambda.get<double>();
    wh.mean = r.Vector(r.Get(w, "mean", "whitening.mean"), "whitening.mean", f.embedder.dim);
    const auto& m = r.Get(w, "matrix", "whitening.matrix");
    if (!m.is_array() || m.size() != static_cast<size_t>(f.embedder.dim)) {
      r.Fail("whitening.matrix", "expected " + std::to_string(f.embedder.dim) + " rows (embedder.dim), got " +
                                     (m.is_array() ? std::to_string(m.size()) : std::string("no list")));
    }
    wh.matrix.reserve(m.size() * m.size());
    for (size_t i = 0; i < m.size(); ++i) {
      const std::vector<float> row =
          r.Vector(m[i], "whitening.matrix[" + std::to_string(i) + "]", f.embedder.dim);
      wh.matrix.insert(wh.matrix.end(), row.begin(), row.end());
    }
    f.whitening = std::move(wh);
  }
  const auto& tasks = r.Get(root, "tasks", "tasks");
  if (!tasks.is_array() || tasks.empty()) r.Fail("tasks", "expected a non-empty list");
  std::set<std::string> names;
  for (size_t i = 0; i < tasks.size(); ++i) {
    const std::string field = "tasks[" + std::to_string(i) + "]";
    const auto& t = tasks[i];
    if (!t.is_object()) r.Fail(field, "expected an object");
    RouterTask task;
    task.name = r.String(t, "name", field + ".name");
    if (!IsValidTaskName(task.name)) {
      r.Fail(field + ".name", "task name " + io_internal::Quote(task.name) + " " + kTaskNameRule);
    }
    if (!names.insert(task.name).second)
      r.Fail(field + ".name", "task " + io_internal::Quote(task.name) + " appears twice");
    task.source = r.String(t, "source", field + ".source");
    task.template_spec = r.String(t, "template", field + ".template");
    task.records = r.Int(t, "records", field + ".records", 1, int64_t{1} << 50);
    task.skipped = r.Int(t, "skipped", field + ".skipped", 0, int64_t{1} << 50);
    task.centroid = r.Vector(r.Get(t, "centroid", field + ".centroid"), field + ".centroid", f.embedder.dim);
    if (f.kmeans.k > 0) {
      const std::string pf = field + ".prototypes";
      const auto& p = r.Get(t, "prototypes", pf);
      const int64_t most = std::min<int64_t>(f.kmeans.k, task.records);
      if (!p.is_array() || p.empty() || static_cast<int64_t>(p.size()) > most) {
        r.Fail(pf, "expected a list of 1 to " + std::to_string(most) +
                       " prototypes (at most kmeans.k and the task's records), got " +
                       (p.is_array() ? std::to_string(p.size()) : std::string("no list")));
      }
      for (size_t j = 0; j < p.size(); ++j)
        task.prototypes.push_back(r.Vector(p[j], pf + "[" + std::to_string(j) + "]", f.embedder.dim));
    } else if (t.contains("prototypes")) {
      r.Fail(field + ".prototypes", "only with \"kmeans\" (version 2 or 3 files; a version 1 task has one centroid)");
    }
    f.tasks.push_back(std::move(task));
  }
  return f;
}

std::string RouterFile::Serialize() const {
  // One line per task keeps the file readable (and diffable) despite the
  // long centroids.
  const ordered_json e = {{"name", embedder.name},       {"sha256", embedder.sha256},
                          {"dim", embedder.dim},         {"max_seq_length", embedder.max_seq_length},
                          {"pooling", embedder.pooling}, {"normalize", embedder.normalize}};
  const auto numbers = [](const std::vector<float>& v) {
    ordered_json a = ordered_json::array();
    for (float x : v) a.push_back(FloatForJson(x));
    return a;
  };
  std::string out = "{\"format\": \"" + std::string(kFormat) + "\", \"version\": " + std::to_string(version()) +
                    ",\n \"embedder\": " + e.dump();
  if (kmeans.k > 0) {
    out += ",\n \"kmeans\": " + ordered_json{{"k", kmeans.k}, {"seed", kmeans.seed}}.dump();
  }
  if (whitening) {
    TL_CHECK(whitening->mean.size() == static_cast<size_t>(embedder.dim) &&
             whitening->matrix.size() == whitening->mean.size() * whitening->mean.size());
    const size_t dim = whitening->mean.size();
    // One line per row of the matrix, like the tasks below.
    out += ",\n \"whitening\": {\"lambda\": " + ordered_json(whitening->lambda).dump() +
           ", \"mean\": " + numbers(whitening->mean).dump() + ", \"matrix\": [";
    for (size_t i = 0; i < dim; ++i) {
      const auto row = whitening->matrix.begin() + static_cast<ptrdiff_t>(i * dim);
      out += (i ? ",\n   " : "\n   ") + numbers({row, row + static_cast<ptrdiff_t>(dim)}).dump();
    }
    out += "]}";
  }
  out += ",\n \"tasks\": [";
  for (size_t i = 0; i < tasks.size(); ++i) {
    const RouterTask& t = tasks[i];
    TL_CHECK_MSG((kmeans.k > 0) == !t.prototypes.empty(), "prototypes exactly with k-means settings");
    ordered_json task = {{"name", t.name},       {"source", t.source},   {"template", t.template_spec},
                         {"records", t.records}, {"skipped", t.skipped}, {"centroid", numbers(t.centroid)}};
    if (!t.prototypes.empty()) {
      ordered_json p = ordered_json::array();
      for (const auto& v : t.prototypes) p.push_back(numbers(v));
      task["prototypes"] = std::move(p);
    }
    out += (i ? ",\n  " : "\n  ") + task.dump();
  }
  return out + "\n ]}\n";
}

void RouterFile::Save(const std::string& path) const { WriteFileAtomically(path, Serialize()); }

}  // namespace tokenlora
