#include "server/metrics.h"

#include <cstdio>

namespace tokenlora::server {
namespace {

void Line(std::string& out, const std::string& text) {
  out += text;
  out += '\n';
}

std::string Num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.9g", v);
  return buf;
}

}  // namespace

void Metrics::Histogram::Observe(double v) {
  for (size_t i = 0; i < kBuckets.size(); ++i) {
    if (v <= kBuckets[i]) ++counts[i];
  }
  ++count;
  sum += v;
}

void Metrics::Histogram::Write(std::string& out, const char* name, const char* help) const {
  Line(out, std::string("# HELP ") + name + " " + help);
  Line(out, std::string("# TYPE ") + name + " histogram");
  for (size_t i = 0; i < kBuckets.size(); ++i) {
    Line(out, std::string(name) + "_bucket{le=\"" + Num(kBuckets[i]) + "\"} " + std::to_string(counts[i]));
  }
  Line(out, std::string(name) + "_bucket{le=\"+Inf\"} " + std::to_string(count));
  Line(out, std::string(name) + "_sum " + Num(sum));
  Line(out, std::string(name) + "_count " + std::to_string(count));
}

void Metrics::CountRequest(const std::string& route, int status) {
  std::lock_guard<std::mutex> lock(mu_);
  ++requests_[{route, status}];
}

void Metrics::AddTokens(int64_t prompt_tokens, int64_t completion_tokens) {
  std::lock_guard<std::mutex> lock(mu_);
  prompt_tokens_ += prompt_tokens;
  completion_tokens_ += completion_tokens;
}

void Metrics::ObserveLatency(double ttft_seconds, double tpot_seconds, bool has_tpot) {
  std::lock_guard<std::mutex> lock(mu_);
  ttft_.Observe(ttft_seconds);
  if (has_tpot) tpot_.Observe(tpot_seconds);
}

std::string Metrics::Prometheus(const EngineSnapshot& e) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  Line(out, "# HELP tokenlora_requests_total HTTP requests answered, by route and status.");
  Line(out, "# TYPE tokenlora_requests_total counter");
  for (const auto& [key, n] : requests_) {
    Line(out, "tokenlora_requests_total{route=\"" + key.first + "\",status=\"" + std::to_string(key.second) + "\"} " +
                  std::to_string(n));
  }
  Line(out, "# HELP tokenlora_prompt_tokens_total Prompt tokens of finished generations.");
  Line(out, "# TYPE tokenlora_prompt_tokens_total counter");
  Line(out, "tokenlora_prompt_tokens_total " + std::to_string(prompt_tokens_));
  Line(out, "# HELP tokenlora_completion_tokens_total Output tokens of finished generations.");
  Line(out, "# TYPE tokenlora_completion_tokens_total counter");
  Line(out, "tokenlora_completion_tokens_total " + std::to_string(completion_tokens_));
  Line(out, "# HELP tokenlora_queue_length Requests and sequences waiting to be admitted.");
  Line(out, "# TYPE tokenlora_queue_length gauge");
  Line(out, "tokenlora_queue_length " + std::to_string(e.waiting));
  Line(out, "# HELP tokenlora_batch_size Sequences running in the batch.");
  Line(out, "# TYPE tokenlora_batch_size gauge");
  Line(out, "tokenlora_batch_size " + std::to_string(e.running));
  Line(out, "# HELP tokenlora_requests_in_flight Requests the engine is working on.");
  Line(out, "# TYPE tokenlora_requests_in_flight gauge");
  Line(out, "tokenlora_requests_in_flight " + std::to_string(e.jobs));
  Line(out, "# HELP tokenlora_kv_cache_bytes KV cache memory of the running sequences.");
  Line(out, "# TYPE tokenlora_kv_cache_bytes gauge");
  Line(out, "tokenlora_kv_cache_bytes " + std::to_string(e.kv_bytes));
  Line(out, "# HELP tokenlora_engine_steps_total Forward passes run.");
  Line(out, "# TYPE tokenlora_engine_steps_total counter");
  Line(out, "tokenlora_engine_steps_total " + std::to_string(e.steps));
  Line(out, "# HELP tokenlora_engine_rows_total Token rows of those passes.");
  Line(out, "# TYPE tokenlora_engine_rows_total counter");
  Line(out, "tokenlora_engine_rows_total " + std::to_string(e.rows));
  Line(out, "# HELP tokenlora_router_calls_total Token-level routings asked for.");
  Line(out, "# TYPE tokenlora_router_calls_total counter");
  Line(out, "tokenlora_router_calls_total " + std::to_string(e.route_calls));
  ttft_.Write(out, "tokenlora_time_to_first_token_seconds", "Time from request to first output token.");
  tpot_.Write(out, "tokenlora_time_per_output_token_seconds", "Mean time between output tokens of a generation.");
  return out;
}

}  // namespace tokenlora::server
