// Routing-policy flags shared by `route`, `router eval` and `generate`
// (where they carry a "route-" prefix: generate has its own --temp/--top-k).
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "commands.h"
#include "core/error.h"
#include "router/embedder.h"
#include "router/policy.h"
#include "router/router_file.h"

namespace tokenlora::cli {

struct RoutingPolicyArgs {
  std::string policy = "paper", weights, window = "whole", score = "max";
  float temperature = 0;
  int top_k = 1;
  std::string prefix;  // "" (route, router eval) or "route-" (generate, eval): errors name the typed flag

  // --<prefix>policy, --<prefix>temperature, --<prefix>top-k, --<prefix>weights,
  // --<prefix>score.
  void Add(CLI::App* cmd, const std::string& flag_prefix) {
    prefix = flag_prefix;
    cmd->add_option("--" + prefix + "policy", policy,
                    "paper (the reference: largest cosine x T, softmax; T=4), softmax (cosine/T; "
                    "T=0.1), top-k, uniform, fixed")
        ->capture_default_str();
    cmd->add_option("--" + prefix + "temperature", temperature,
                    "T of the policy (default: paper 4, softmax/top-k 0.1)")
        ->check(NumberRange(0, RoutingPolicy::kMaxTemperature, /*lo_exclusive=*/true));
    cmd->add_option("--" + prefix + "top-k", top_k, "tasks kept by policy top-k")
        ->check(IntRange(1))
        ->capture_default_str();
    cmd->add_option("--" + prefix + "weights", weights, "weights of policy fixed: task=w,task=w");
    cmd->add_option("--" + prefix + "score", score,
                    "how a task with several prototypes (router build --prototypes K) is scored: max (its best "
                    "prototype's cosine), softmax[:T] (T·log mean exp(cos/T); T=0.05) or centroid (the paper's "
                    "mean); a one-centroid router scores the same under all three")
        ->capture_default_str()
        ->check(CLI::Validator(
            [](std::string& text) -> std::string {
              try {
                PrototypeScore::Parse(text, "");
                return {};
              } catch (const InputError& e) {
                return e.what();  // "'mean': unknown score (max, ...)"
              }
            },
            "max|softmax[:T]|centroid"));
  }
  RoutingPolicy Make(const RouterFile& file) const {
    RoutingPolicy p = RoutingPolicy::Make(policy, temperature, top_k, weights, file.TaskNames(), prefix);
    p.score = Score();
    return p;
  }
  PrototypeScore Score() const { return PrototypeScore::Parse(score, "--" + prefix + "score"); }
  RouteWindow Window() const { return RouteWindow::Parse(window, "--" + prefix + "window"); }
};

}  // namespace tokenlora::cli
