// What a token-level generation did, token by token: as JSON (`generate
// --trace FILE.json`) and as an SVG picture (`--trace-svg FILE.svg`): the
// adapter weights as a stacked band over the steps, and the generated text
// with each token tinted by its top adapter and underlined by its mixture.
//
// JSON layout (format "tokenlora-trace", version 1):
//   {"format": "tokenlora-trace", "version": 1,
//    "router": "...", "policy": "paper (T=4)", "window": "whole",
//    "route_every": 2, "kv_policy": "keep", "mix_mode": "exact",
//    "tasks": ["gsm8k", ...], "prompt": "...", "prompt_tokens": 37,
//    "output": "...", "stop_reason": "eos",
//    "steps": [{"step": 0, "token": 504, "text": " The", "rerouted": true,
//               "weights": [...], "similarities": [...], "router_ms": 3.1}, ...],
//    "stats": {"route_calls": 64, "encoder_runs": 60, "router_ms": 812.0,
//              "prefill_seconds": 0.1, "decode_seconds": 1.4}}
// "weights"/"similarities" follow "tasks"; a step's weights are those its
// token's logits were computed under.
#pragma once

#include <string>
#include <vector>

#include "generate/generator.h"
#include "generate/token_routing.h"

namespace tokenlora {

struct RoutingTraceInfo {
  std::string router;  // the router file
  std::string policy;  // RoutingPolicy::Describe()
  std::string window;  // RouteWindow::Describe()
  std::string mix_mode;
  std::string prompt;  // the text the router saw first
};

std::string RoutingTraceJson(const TokenRouting& routing, const GenerateResult& result,
                             const RoutingTraceInfo& info);
std::string RoutingTraceSvg(const TokenRouting& routing, const RoutingTraceInfo& info);

}  // namespace tokenlora
