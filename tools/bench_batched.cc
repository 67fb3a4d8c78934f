#include "bench_batched.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <sys/wait.h>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "bench_routing.h"
#include "commands.h"
#include "mixture_args.h"
#include "core/error.h"
#include "core/mapped_file.h"
#include "core/thread_pool.h"
#include "generate/scheduler.h"
#include "generate/token_routing.h"
#include "io/json_text.h"
#include "kernels/kernels.h"
#include "lora/adapter_bank.h"
#include "lora/mix_spec.h"
#include "lora/mixer.h"
#include "model/model.h"
#include "router/embedder.h"
#include "router/router.h"

namespace tokenlora::cli {
namespace {

using Clock = std::chrono::steady_clock;
double Since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// One measured run of P sequences.
struct RunResult {
  double prefill_tps = 0;    // all P prompts: P·npp / time until every sequence has its first token
  double decode_tps = 0;     // tokens sampled after that / the time they took
  double router_share = 0;   // routing time / decode-phase time
  double encoder_gflops = 0; // the batched encoder calls' throughput (routed runs)
  double rows_per_step = 0;
};

// llama-batched-bench's table rows: npl -> {S_PP t/s, S_TG t/s}.
std::map<int, std::pair<double, double>> RunPeer(const BatchedBenchArgs& a, int threads) {
  std::string npl;
  for (int p : a.parallel) npl += (npl.empty() ? "" : ",") + std::to_string(p);
  const int ctx = *std::max_element(a.parallel.begin(), a.parallel.end()) * (a.n_prompt + a.n_gen) + 64;
  const std::string cmd = "'" + a.peer + "' -m '" + a.model + "' -c " + std::to_string(ctx) +
                          " -b 2048 -ub 512 -npp " + std::to_string(a.n_prompt) + " -ntg " +
                          std::to_string(a.n_gen) + " -npl " + npl + " -t " + std::to_string(threads) +
                          " --output-format jsonl 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) throw InputError("--peer-batched: cannot run '" + a.peer + "'");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = pclose(p);
  std::map<int, std::pair<double, double>> rows;
  std::istringstream lines(out);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] != '{') continue;
    try {
      const nlohmann::json j = ParseBoundedJson(line);
      rows[j.at("pl").get<int>()] = {j.at("speed_pp").get<double>(), j.at("speed_tg").get<double>()};
    } catch (const nlohmann::json::exception&) {
    }
  }
  if (rows.empty()) {
    throw InputError("--peer-batched: '" + a.peer + "' (exit status " + std::to_string(WEXITSTATUS(status)) +
                     ") printed no llama-batched-bench JSONL rows — is it llama.cpp's llama-batched-bench?");
  }
  return rows;
}

}  // namespace

std::vector<int> ParseParallelList(const std::string& text, const std::string& flag) {
  std::vector<int> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t used = 0;
    int v = 0;
    try {
      v = std::stoi(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != item.size() || item.empty() || v < 1 || v > 256) {
      throw InputError(flag + ": expected counts 1..256 separated by commas (e.g. 1,4,16), got '" + text + "'");
    }
    out.push_back(v);
  }
  if (out.empty()) throw InputError(flag + ": give at least one count (e.g. 1,4,16)");
  return out;
}

int RunBatchedBench(const BatchedBenchArgs& a) {
  auto model = Model::Load(a.model, ModelOptionsFor(a.activations, a.threads));
  const Tokenizer& tok = model->tokenizer();
  const int threads = a.threads > 0 ? a.threads : DefaultThreads();
  ThreadPool pool(threads);
  const int max_p = *std::max_element(a.parallel.begin(), a.parallel.end());

  // Prompts: -p tokens of the passage, each sequence starting further in,
  // so routed sequences embed different texts.
  const std::string source = a.prompt_file.empty() ? std::string(BenchPassage()) : ReadTextFile(a.prompt_file);
  if (source.empty()) throw InputError("bench --prompt-file " + a.prompt_file + " is empty");
  std::string long_text = source;
  std::vector<int32_t> all = tok.Encode(long_text, false);
  const size_t need = static_cast<size_t>(a.n_prompt) + static_cast<size_t>(max_p) * 5;
  while (all.size() < need) {
    long_text += source;
    all = tok.Encode(long_text, false);
  }
  std::vector<std::vector<int32_t>> prompts;
  std::vector<std::string> prompt_texts;
  for (int i = 0; i < max_p; ++i) {
    std::vector<int32_t> ids(all.begin() + i * 5, all.begin() + i * 5 + a.n_prompt);
    prompt_texts.push_back(tok.Decode(ids, true));
    prompts.push_back(std::move(ids));
  }

  std::unique_ptr<AdapterBank> bank;
  std::unique_ptr<LoraMixer> mixer;
  std::unique_ptr<Embedder> embedder;
  std::unique_ptr<Router> router;
  TokenRoutingOptions routing_options;
  if (!a.adapters.empty()) {
    bank = LoadAdapterBank(*model, a.adapters, a.adapter_type);
    mixer = std::make_unique<LoraMixer>(*bank, MixerOptionsFor(*model, a.mix_mode, a.lora_activations));
  }
  if (!a.router.empty()) {
    if (bank == nullptr) throw InputError("bench --router: give the router's adapters with --adapter TASK=PATH");
    RouterFile file = RouterFile::Load(a.router);
    const RoutingPolicy policy = RoutingPolicy::Make("paper", 0, 1, "", file.TaskNames());
    embedder = Embedder::Load(EmbedderPath(a.embedder), pool, ParseEncoderPrecision(a.embedder_precision));
    router = std::make_unique<Router>(std::move(file), a.router, *embedder, policy, RouteWindow::Parse(a.window));
    routing_options.route_every = ParseRouteEvery(a.route_every);
    routing_options.kv_policy = ParseKvPolicy(a.kv_policy);
  }
  std::vector<float> equal_weights;
  if (bank != nullptr) {
    for (const std::string& name : bank->Names()) {
      const size_t slot = static_cast<size_t>(bank->Require(name));
      if (equal_weights.size() <= slot) equal_weights.resize(slot + 1, 0.0f);
      equal_weights[slot] = 1.0f / static_cast<float>(bank->size());
    }
  }
  std::vector<std::string> variants = {"base"};
  if (bank != nullptr) variants.push_back("adapters");
  if (router != nullptr) variants.push_back("routed");

  auto run = [&](const std::string& variant, int p) {
    SchedulerOptions so;
    so.max_sequences = p;
    so.max_tokens_per_step = std::max(512, a.n_prompt);
    so.prefill_chunk = std::min(256, so.max_tokens_per_step);
    Scheduler scheduler(*model, pool, mixer.get(), so);
    std::vector<std::unique_ptr<TokenRouting>> routings;
    for (int i = 0; i < p; ++i) {
      SequenceRequest r;
      r.prompt_ids = prompts[static_cast<size_t>(i)];
      r.options.max_new_tokens = a.n_gen;
      r.options.stop_at_eos = false;
      r.options.kv_type = ParseKvType(a.kv_type);
      if (variant == "adapters") r.weights = equal_weights;
      if (variant == "routed") {
        routings.push_back(std::make_unique<TokenRouting>(*router, *bank, prompt_texts[static_cast<size_t>(i)],
                                                          routing_options));
        r.schedule = routings.back().get();
      }
      scheduler.Submit(std::move(r));
    }
    const auto t0 = Clock::now();
    while (!scheduler.idle() && scheduler.stats().sampled_tokens < p) scheduler.Step();
    const double t_prefill = Since(t0);
    const SchedulerStats at_boundary = scheduler.stats();
    const Embedder::Stats enc_mid = embedder ? embedder->stats() : Embedder::Stats{};
    const auto t1 = Clock::now();
    scheduler.RunUntilIdle();
    const double t_decode = Since(t1);
    const SchedulerStats& end = scheduler.stats();
    RunResult r;
    r.prefill_tps = static_cast<double>(p) * a.n_prompt / t_prefill;
    r.decode_tps = static_cast<double>(end.sampled_tokens - at_boundary.sampled_tokens) / t_decode;
    r.router_share = (end.routing_seconds - at_boundary.routing_seconds) / t_decode;
    r.rows_per_step = static_cast<double>(end.rows - at_boundary.rows) /
                      static_cast<double>(std::max<int64_t>(1, end.steps - at_boundary.steps));
    if (embedder != nullptr) {
      const Embedder::Stats& e = embedder->stats();
      const double flops = e.encoder_flops - enc_mid.encoder_flops, ms = e.encoder_ms - enc_mid.encoder_ms;
      r.encoder_gflops = ms > 0 ? flops / ms / 1e6 : 0;
    }
    return r;
  };

  // Warm-up: weights paged in, scratch sized.
  run("base", 1);
  std::map<std::pair<std::string, int>, std::vector<RunResult>> results;
  std::map<int, std::vector<std::pair<double, double>>> peer;
  for (int rep = 0; rep < a.reps; ++rep) {
    for (int p : a.parallel) {
      for (const std::string& v : variants) results[{v, p}].push_back(run(v, p));
    }
    if (!a.peer.empty()) {
      for (const auto& [npl, row] : RunPeer(a, threads)) peer[npl].push_back(row);
    }
    std::fprintf(stderr, "bench --parallel: rep %d/%d done\n", rep + 1, a.reps);
  }

  // The encoder's own throughput on one large batch: the routed windows of
  // the largest P, embedded together.
  double encoder_batch_gflops = 0;
  if (embedder != nullptr) {
    std::vector<std::string> texts(prompt_texts.begin(), prompt_texts.begin() + max_p);
    std::vector<float> out(texts.size() * static_cast<size_t>(embedder->dim()));
    std::vector<double> g;
    for (int rep = 0; rep < std::max(3, a.reps); ++rep) {
      double flops = 0;
      for (const std::string& t : texts) flops += embedder->EncoderFlops(static_cast<int64_t>(embedder->model().Tokenize(t).size()));
      const auto t0 = Clock::now();
      embedder->EmbedBatch(texts, out.data());
      g.push_back(flops / Since(t0) / 1e9);
    }
    encoder_batch_gflops = Median(g);
  }

  // Report: medians over reps.
  auto med = [](const std::vector<RunResult>& rs, double RunResult::*field) {
    std::vector<double> v;
    for (const RunResult& r : rs) v.push_back(r.*field);
    return Median(v);
  };
  nlohmann::json j = nlohmann::json::array();
  std::printf("%-9s %4s %12s %16s %14s %12s %10s", "variant", "P", "prefill t/s", "aggregate t/s", "per-seq t/s",
              "rows/step", "router %");
  if (!a.peer.empty()) std::printf(" %16s %8s", "llama.cpp agg t/s", "ratio");
  std::printf("\n");
  for (const std::string& v : variants) {
    for (int p : a.parallel) {
      const auto& rs = results[{v, p}];
      const double agg = med(rs, &RunResult::decode_tps);
      nlohmann::json row = {{"variant", v},
                            {"parallel", p},
                            {"aggregate_decode_tps", agg},
                            {"per_sequence_decode_tps", agg / p},
                            {"prefill_tps", med(rs, &RunResult::prefill_tps)},
                            {"rows_per_step", med(rs, &RunResult::rows_per_step)}};
      std::printf("%-9s %4d %12.1f %16.1f %14.1f %12.1f", v.c_str(), p, med(rs, &RunResult::prefill_tps), agg, agg / p,
                  med(rs, &RunResult::rows_per_step));
      if (v == "routed") {
        row["router_share"] = med(rs, &RunResult::router_share);
        row["encoder_step_gflops"] = med(rs, &RunResult::encoder_gflops);
        row["encoder_batch_gflops"] = encoder_batch_gflops;
        std::printf(" %9.1f%%  encoder %.0f GFLOP/s in steps, %.0f in one batch", 100 * med(rs, &RunResult::router_share),
                    med(rs, &RunResult::encoder_gflops), encoder_batch_gflops);
      } else {
        std::printf(" %10s", "");
      }
      if (!a.peer.empty() && v == "base" && peer.count(p) > 0) {
        std::vector<double> tg;
        for (const auto& [pp, t] : peer[p]) tg.push_back(t);
        const double peer_tg = Median(tg);
        row["peer_aggregate_decode_tps"] = peer_tg;
        std::printf(" %16.1f %7.2fx", peer_tg, peer_tg > 0 ? agg / peer_tg : 0.0);
      }
      std::printf("\n");
      j.push_back(row);
    }
  }
  std::printf("%d threads | simd %s | activations %s | kv %s | -p %d -n %d | %d reps (medians)\n", threads,
              kernels::SimdTargetName(), ActivationsLabel(*model).c_str(), a.kv_type.c_str(), a.n_prompt, a.n_gen,
              a.reps);
  if (a.json) std::printf("%s\n", j.dump().c_str());
  return 0;
}

}  // namespace tokenlora::cli
