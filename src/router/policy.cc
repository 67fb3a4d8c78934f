#include "router/policy.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <numeric>

#include "core/error.h"
#include "core/number_text.h"
#include "io/io_util.h"

namespace tokenlora {
namespace {

// softmax(x) in place; float32 results like torch.nn.functional.softmax.
void Softmax(std::vector<double>& x) {
  const double mx = *std::max_element(x.begin(), x.end());
  double sum = 0.0;
  for (double& v : x) sum += (v = std::exp(v - mx));
  for (double& v : x) v /= sum;
}

std::vector<float> ToFloat(const std::vector<double>& x) { return {x.begin(), x.end()}; }

}  // namespace

float CosineSimilarity(std::span<const float> a, std::span<const float> b) {
  TL_CHECK(a.size() == b.size());
  double ab = 0.0, aa = 0.0, bb = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    ab += double{a[i]} * b[i];
    aa += double{a[i]} * a[i];
    bb += double{b[i]} * b[i];
  }
  constexpr double kEps = 1e-6;
  return static_cast<float>(ab / (std::max(std::sqrt(aa), kEps) * std::max(std::sqrt(bb), kEps)));
}

PrototypeScore PrototypeScore::Parse(std::string_view spec, std::string_view flag) {
  PrototypeScore s;
  const auto bad = [&](const std::string& why) {
    return InputError((flag.empty() ? std::string() : std::string(flag) + " ") + io_internal::Quote(spec) + ": " + why +
                      " (max, softmax, softmax:T with 0 < T <= 1e6, or centroid)");
  };
  if (spec == "max") return s;
  if (spec == "centroid") {
    s.kind = Kind::kCentroid;
    return s;
  }
  constexpr std::string_view kSoftmax = "softmax";
  if (spec.substr(0, kSoftmax.size()) != kSoftmax) throw bad("unknown score");
  s.kind = Kind::kSoftmax;
  s.temperature = kDefaultTemperature;
  const std::string_view rest = spec.substr(kSoftmax.size());
  if (rest.empty()) return s;
  if (rest[0] != ':' || rest.size() == 1) throw bad("expected softmax:T");
  const std::string t(rest.substr(1));
  char* end = nullptr;
  const float v = std::strtof(t.c_str(), &end);
  if (*end != '\0' || !(v > 0) || v > RoutingPolicy::kMaxTemperature) throw bad("T must be a number");
  s.temperature = v;
  return s;
}

std::string PrototypeScore::Describe() const {
  switch (kind) {
    case Kind::kMax:
      return "max";
    case Kind::kCentroid:
      return "centroid";
    case Kind::kSoftmax:
      return "softmax:" + GeneralNumber(temperature);
  }
  return "?";
}

float PrototypeScore::Combine(std::span<const float> cos) const {
  TL_CHECK(!cos.empty() && kind != Kind::kCentroid);
  if (cos.size() == 1) return cos[0];  // exactly, whatever the rule
  const float mx = *std::max_element(cos.begin(), cos.end());
  if (kind == Kind::kMax) return mx;
  // T·log(mean exp(c/T)) = max + T·log(mean exp((c − max)/T)): no overflow.
  double sum = 0.0;
  for (float c : cos) sum += std::exp((double{c} - mx) / temperature);
  return static_cast<float>(mx + temperature * std::log(sum / static_cast<double>(cos.size())));
}

RoutingPolicy RoutingPolicy::Make(std::string_view name, float temperature, int top_k,
                                  std::string_view fixed_weights,
                                  const std::vector<std::string>& task_names, std::string_view flag_prefix) {
  const std::string flag = "--" + std::string(flag_prefix);
  RoutingPolicy p;
  if (temperature != 0 && !(temperature > 0 && temperature <= kMaxTemperature)) {
    throw InputError(flag + "temperature " + GeneralNumber(temperature) + ": expected a number > 0 and <= 1e6 (leave the flag out for "
                     "the policy's default: paper 4, softmax/top-k 0.1)");
  }
  if (name == "paper") {
    p.kind = PolicyKind::kPaper;
    p.temperature = temperature > 0 ? temperature : 4.0f;
  } else if (name == "softmax" || name == "top-k") {
    p.kind = name == "softmax" ? PolicyKind::kSoftmax : PolicyKind::kTopK;
    p.temperature = temperature > 0 ? temperature : 0.1f;
  } else if (name == "uniform") {
    p.kind = PolicyKind::kUniform;
  } else if (name == "fixed") {
    p.kind = PolicyKind::kFixed;
  } else {
    throw InputError(flag + "policy " + io_internal::Quote(name) +
                     " is unknown (paper, softmax, top-k, uniform, fixed)");
  }
  if (p.kind == PolicyKind::kTopK) {
    if (top_k < 1 || top_k > static_cast<int>(task_names.size())) {
      throw InputError(flag + "top-k " + std::to_string(top_k) + " must be in [1, " +
                       std::to_string(task_names.size()) + "] (the router has " +
                       std::to_string(task_names.size()) + " tasks)");
    }
    p.top_k = top_k;
  }
  if ((p.kind == PolicyKind::kFixed) != !fixed_weights.empty()) {
    throw InputError(p.kind == PolicyKind::kFixed ? flag + "policy fixed needs " + flag + "weights task=w,task=w"
                                                  : flag + "weights is only for " + flag + "policy fixed");
  }
  if (p.kind == PolicyKind::kFixed) {
    p.fixed.assign(task_names.size(), 0.0f);
    size_t start = 0;
    while (start <= fixed_weights.size()) {
      const size_t comma = std::min(fixed_weights.find(',', start), fixed_weights.size());
      const std::string_view item = fixed_weights.substr(start, comma - start);
      const size_t eq = item.find('=');
      const std::string task(item.substr(0, eq));
      const auto it = std::find(task_names.begin(), task_names.end(), task);
      char* end = nullptr;
      const std::string value = eq == std::string_view::npos ? "" : std::string(item.substr(eq + 1));
      const float w = std::strtof(value.c_str(), &end);
      if (eq == std::string_view::npos || it == task_names.end() || value.empty() || *end != '\0' ||
          !(w >= 0) || !std::isfinite(w)) {
        std::string names;
        for (const auto& n : task_names) names.append(names.empty() ? "" : ", ").append(n);
        throw InputError(flag + "weights: " + io_internal::Quote(item) +
                         " must be TASK=WEIGHT with a weight >= 0 and a task of the router (" + names + ")");
      }
      p.fixed[static_cast<size_t>(it - task_names.begin())] = w;
      start = comma + 1;
    }
  }
  return p;
}

std::string RoutingPolicy::Describe() const {
  if (score.kind != PrototypeScore::Kind::kMax) {
    RoutingPolicy plain = *this;
    plain.score = PrototypeScore{};
    return plain.Describe() + (score.kind == PrototypeScore::Kind::kCentroid
                                   ? std::string("; tasks scored by their centroid")
                                   : "; tasks scored by " + score.Describe() + " over prototypes");
  }
  const std::string t = GeneralNumber(temperature);
  switch (kind) {
    case PolicyKind::kPaper:
      return std::string("paper (largest cosine x ") + t + ", softmax)";
    case PolicyKind::kSoftmax:
      return std::string("softmax (cosine / ") + t + ")";
    case PolicyKind::kTopK:
      return "top-" + std::to_string(top_k) + " (softmax of cosine / " + t + ", renormalised)";
    case PolicyKind::kUniform:
      return "uniform";
    case PolicyKind::kFixed:
      return "fixed";
  }
  return "?";
}

std::vector<float> RoutingPolicy::Weights(std::span<const float> sims) const {
  const size_t n = sims.size();
  TL_CHECK(n > 0);
  std::vector<double> x(sims.begin(), sims.end());
  switch (kind) {
    case PolicyKind::kPaper: {
      // list.index(max(list)): the first of equal maxima.
      const size_t best = static_cast<size_t>(std::max_element(sims.begin(), sims.end()) - sims.begin());
      x[best] = static_cast<double>(sims[best] * temperature);  // a float32 product, as in torch
      Softmax(x);
      return ToFloat(x);
    }
    case PolicyKind::kSoftmax:
      for (double& v : x) v /= temperature;
      Softmax(x);
      return ToFloat(x);
    case PolicyKind::kTopK: {
      std::vector<size_t> order(n);
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return sims[a] > sims[b]; });
      std::vector<double> kept;
      for (int i = 0; i < top_k; ++i) kept.push_back(x[order[static_cast<size_t>(i)]] / temperature);
      Softmax(kept);
      std::vector<float> w(n, 0.0f);
      for (int i = 0; i < top_k; ++i)
        w[order[static_cast<size_t>(i)]] = static_cast<float>(kept[static_cast<size_t>(i)]);
      return w;
    }
    case PolicyKind::kUniform:
      return std::vector<float>(n, 1.0f / static_cast<float>(n));
    case PolicyKind::kFixed:
      TL_CHECK(fixed.size() == n);
      return fixed;
  }
  return {};
}

}  // namespace tokenlora
