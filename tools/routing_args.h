// Routing-policy flags shared by `route`, `router eval` and `generate`
// (where they carry a "route-" prefix: generate has its own --temp/--top-k).
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "router/policy.h"
#include "router/router_file.h"

namespace tokenlora::cli {

struct RoutingPolicyArgs {
  std::string policy = "paper", weights, window = "whole";
  float temperature = 0;
  int top_k = 1;

  // --<prefix>policy, --<prefix>temperature, --<prefix>top-k, --<prefix>weights.
  void Add(CLI::App* cmd, const std::string& prefix) {
    cmd->add_option("--" + prefix + "policy", policy,
                    "paper (the reference: largest cosine x T, softmax; T=4), softmax (cosine/T; "
                    "T=0.1), top-k, uniform, fixed")
        ->capture_default_str();
    cmd->add_option("--" + prefix + "temperature", temperature,
                    "T of the policy (default: paper 4, softmax/top-k 0.1)");
    cmd->add_option("--" + prefix + "top-k", top_k, "tasks kept by policy top-k")->capture_default_str();
    cmd->add_option("--" + prefix + "weights", weights, "weights of policy fixed: task=w,task=w");
  }
  RoutingPolicy Make(const RouterFile& file) const {
    return RoutingPolicy::Make(policy, temperature, top_k, weights, file.TaskNames());
  }
};

}  // namespace tokenlora::cli
