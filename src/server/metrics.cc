#include "server/metrics.h"

#include <cstdio>

namespace tokenlora::server {
namespace {

void Line(std::string& out, const std::string& text) {
  out += text;
  out += '\n';
}

// One metric with a single value: its HELP and TYPE lines and the sample.
template <typename T>
void Scalar(std::string& out, const std::string& name, const char* type, const std::string& help, T value) {
  Line(out, "# HELP " + name + " " + help);
  Line(out, std::string("# TYPE ") + name + " " + type);
  Line(out, name + " " + std::to_string(value));
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
  Scalar(out, "tokenlora_prompt_tokens_total", "counter", "Prompt tokens of finished generations.", prompt_tokens_);
  Scalar(out, "tokenlora_completion_tokens_total", "counter", "Output tokens of finished generations.", completion_tokens_);
  Scalar(out, "tokenlora_queue_length", "gauge", "Requests and sequences waiting to be admitted.", e.waiting);
  Scalar(out, "tokenlora_batch_size", "gauge", "Sequences running in the batch.", e.running);
  Scalar(out, "tokenlora_requests_in_flight", "gauge", "Requests the engine is working on.", e.jobs);
  Scalar(out, "tokenlora_kv_cache_bytes", "gauge", "KV cache memory of the running sequences.", e.kv_bytes);
  Scalar(out, "tokenlora_engine_steps_total", "counter", "Forward passes run.", e.steps);
  Scalar(out, "tokenlora_engine_rows_total", "counter", "Token rows of those passes.", e.rows);
  Scalar(out, "tokenlora_router_calls_total", "counter", "Token-level routings asked for.", e.route_calls);
  Scalar(out, "tokenlora_encoder_runs_total", "counter", "Windows the router's encoder embedded.", e.encoder_runs);
  Scalar(out, "tokenlora_encoder_seconds_total", "counter", "Time in the router's encoder.", e.encoder_seconds);
  ttft_.Write(out, "tokenlora_time_to_first_token_seconds", "Time from request to first output token.");
  tpot_.Write(out, "tokenlora_time_per_output_token_seconds", "Mean time between output tokens of a generation.");
  return out;
}

}  // namespace tokenlora::server
