// `tokenlora bench`: end-to-end prefill and decode speed, optionally side by
// side with llama.cpp's llama-bench on the same file, interleaved rep by rep
// so machine drift hits both alike.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <vector>

#include "commands.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/kernels.h"
#include "model/llama/forward.h"
#include "model/model.h"

namespace tokenlora::cli {
namespace {

struct Stats {
  double min = 0, median = 0, max = 0;
};

Stats Summarize(std::vector<double> v) {
  if (v.empty()) return {};
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  const double median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  return {v.front(), median, v.back()};
}

double Seconds(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// One llama-bench run; returns {prefill t/s, decode t/s}.
std::pair<double, double> RunPeer(const std::string& peer, const std::string& model, int n_prompt,
                                  int n_gen, int threads) {
  const std::string cmd = "'" + peer + "' -m '" + model + "' -p " + std::to_string(n_prompt) +
                          " -n " + std::to_string(n_gen) + " -t " + std::to_string(threads) +
                          " -r 1 -o json 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) throw InputError("--peer: cannot run '" + peer + "'");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = pclose(p);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(out);
  } catch (const nlohmann::json::exception&) {
    throw InputError("--peer: '" + peer + "' (exit status " + std::to_string(status) +
                     ") did not print llama-bench JSON — is it llama.cpp's llama-bench binary?");
  }
  double prefill = 0, decode = 0;
  for (const auto& row : j) {
    const double ts = row.value("avg_ts", 0.0);
    if (row.value("n_prompt", 0) > 0) prefill = ts;
    if (row.value("n_gen", 0) > 0) decode = ts;
  }
  return {prefill, decode};
}

}  // namespace

RunFn AddBenchCommand(CLI::App& app) {
  struct Args {
    std::string model, peer;
    int n_prompt = 512, n_gen = 128, reps = 5, threads = 0;
    bool json = false;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("bench", "Measure prefill and decode speed (optionally beside llama.cpp)");
  cmd->add_option("-m,--model", a->model, "model (default: the built-in model)");
  cmd->add_option("-p,--n-prompt", a->n_prompt, "prompt tokens for the prefill test")->check(CLI::Range(1, 1 << 16));
  cmd->add_option("-n,--n-gen", a->n_gen, "tokens for the decode test")->check(CLI::Range(1, 1 << 16));
  cmd->add_option("--reps", a->reps, "repetitions (min/median/max reported)")->check(CLI::Range(1, 1000));
  cmd->add_option("-t,--threads", a->threads, "threads (default: physical cores)")->check(CLI::Range(1, 256));
  cmd->add_option("--peer", a->peer, "path of llama.cpp's llama-bench to run on the same file, interleaved");
  cmd->add_flag("--json", a->json, "print one JSON object");
  return [a] {
    const std::string path = a->model.empty() ? DefaultModelPath() : a->model;
    auto model = Model::Load(path);
    const LlamaConfig& c = model->config();
    const int threads = a->threads > 0 ? a->threads : DefaultThreads();
    ThreadPool pool(threads);
    ForwardContext ctx{&pool, nullptr};
    LlamaForward forward(*model, 512);
    KvCache kv(c, std::min(c.max_context, a->n_prompt + a->n_gen + 1));
    if (a->n_prompt + a->n_gen > kv.capacity()) {
      throw InputError("bench: -p + -n = " + std::to_string(a->n_prompt + a->n_gen) +
                       " exceeds the model's context " + std::to_string(c.max_context));
    }
    std::mt19937 rng(1);
    std::vector<int32_t> prompt(static_cast<size_t>(a->n_prompt));
    for (int32_t& t : prompt) t = static_cast<int32_t>(rng() % static_cast<uint32_t>(c.vocab_size));
    std::vector<float> logits(static_cast<size_t>(c.vocab_size));
    std::vector<double> prefill, decode, peer_prefill, peer_decode;

    // Warm-up: page the weights in and size the scratch buffers.
    kv.set_n_past(0);
    forward.Run(std::span<const int32_t>(prompt).first(std::min<size_t>(prompt.size(), 16)), kv, ctx,
                logits.data(), false);
    for (int rep = 0; rep < a->reps; ++rep) {
      kv.set_n_past(0);
      auto t0 = std::chrono::steady_clock::now();
      forward.Run(prompt, kv, ctx, logits.data(), false);
      prefill.push_back(a->n_prompt / Seconds(t0));
      // Decode after a 1-token context, like llama-bench's tg test.
      kv.set_n_past(0);
      int32_t token = prompt[0];
      t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < a->n_gen; ++i) {
        const int32_t one[1] = {token};
        forward.Run(one, kv, ctx, logits.data(), false);
        token = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
      }
      decode.push_back(a->n_gen / Seconds(t0));
      if (!a->peer.empty()) {
        auto [pp, tg] = RunPeer(a->peer, path, a->n_prompt, a->n_gen, threads);
        peer_prefill.push_back(pp);
        peer_decode.push_back(tg);
      }
      if (!a->json) {
        std::fprintf(stderr, "\rrep %d/%d", rep + 1, a->reps);
        std::fflush(stderr);
      }
    }
    const Stats pf = Summarize(prefill), dc = Summarize(decode);
    if (a->json) {
      nlohmann::json j = {{"model", path},
                          {"threads", threads},
                          {"simd", kernels::SimdTargetName()},
                          {"n_prompt", a->n_prompt},
                          {"n_gen", a->n_gen},
                          {"reps", a->reps},
                          {"prefill_tps", pf.median},
                          {"prefill_tps_min", pf.min},
                          {"prefill_tps_max", pf.max},
                          {"decode_tps", dc.median},
                          {"decode_tps_min", dc.min},
                          {"decode_tps_max", dc.max}};
      if (!a->peer.empty()) {
        const Stats ppf = Summarize(peer_prefill), pdc = Summarize(peer_decode);
        j["peer_prefill_tps"] = ppf.median;
        j["peer_decode_tps"] = pdc.median;
        j["prefill_ratio"] = ppf.median > 0 ? pf.median / ppf.median : 0;
        j["decode_ratio"] = pdc.median > 0 ? dc.median / pdc.median : 0;
      }
      std::printf("%s\n", j.dump(2).c_str());
      return 0;
    }
    std::fprintf(stderr, "\n");
    std::printf("model %s | %d threads | simd %s | %d reps\n", path.c_str(), threads,
                kernels::SimdTargetName(), a->reps);
    std::printf("%-22s %10s %10s %10s\n", "test", "min t/s", "median", "max");
    std::printf("%-22s %10.1f %10.1f %10.1f\n", ("tokenlora pp" + std::to_string(a->n_prompt)).c_str(), pf.min, pf.median, pf.max);
    std::printf("%-22s %10.1f %10.1f %10.1f\n", ("tokenlora tg" + std::to_string(a->n_gen)).c_str(), dc.min, dc.median, dc.max);
    if (!a->peer.empty()) {
      const Stats ppf = Summarize(peer_prefill), pdc = Summarize(peer_decode);
      std::printf("%-22s %10.1f %10.1f %10.1f\n", ("llama.cpp pp" + std::to_string(a->n_prompt)).c_str(), ppf.min, ppf.median, ppf.max);
      std::printf("%-22s %10.1f %10.1f %10.1f\n", ("llama.cpp tg" + std::to_string(a->n_gen)).c_str(), pdc.min, pdc.median, pdc.max);
      std::printf("ratio (tokenlora / llama.cpp, medians): prefill %.2fx, decode %.2fx\n",
                  ppf.median > 0 ? pf.median / ppf.median : 0, pdc.median > 0 ? dc.median / pdc.median : 0);
    }
    return 0;
  };
}

}  // namespace tokenlora::cli
