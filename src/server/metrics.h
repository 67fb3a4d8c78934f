// Counters for GET /metrics (Prometheus text format 0.0.4). Thread-safe:
// handler threads record, the scrape reads.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "server/server_engine.h"

namespace tokenlora::server {

class Metrics {
 public:
  // One finished HTTP request on `route` with `status`.
  void CountRequest(const std::string& route, int status);
  // Tokens of one finished generation.
  void AddTokens(int64_t prompt_tokens, int64_t completion_tokens);
  // Time to first token and mean time per output token of one generation.
  void ObserveLatency(double ttft_seconds, double tpot_seconds, bool has_tpot);
  // Everything, with the engine's gauges (queue length, batch size, router calls).
  std::string Prometheus(const EngineSnapshot& engine) const;

 private:
  static constexpr std::array<double, 12> kBuckets = {0.005, 0.01, 0.02, 0.05, 0.1, 0.2,
                                                      0.5,   1.0,  2.0,  5.0,  10.0, 30.0};
  struct Histogram {
    std::array<int64_t, kBuckets.size()> counts{};
    int64_t count = 0;
    double sum = 0;
    void Observe(double v);
    void Write(std::string& out, const char* name, const char* help) const;
  };
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, int64_t> requests_;
  int64_t prompt_tokens_ = 0, completion_tokens_ = 0;
  Histogram ttft_, tpot_;
};

}  // namespace tokenlora::server
