#include "bench_routing.h"

#include <algorithm>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "mixture_args.h"
#include "core/error.h"
#include "core/mapped_file.h"
#include "core/thread_pool.h"
#include "generate/generator.h"
#include "generate/token_routing.h"
#include "kernels/kernels.h"
#include "lora/adapter_bank.h"
#include "lora/mix_spec.h"
#include "lora/mixer.h"
#include "model/model.h"
#include "router/embedder.h"
#include "router/router.h"

namespace tokenlora::cli {
namespace {

// The default prompt text (written for this benchmark): ordinary English
// that mixes the four tasks' topics, repeated as needed and cut to -p tokens.
constexpr const char* kPassage =
    "A class of 28 students is planning a science fair. Each student needs 3 poster boards, and a pack of "
    "poster boards holds 12. The teacher also asks why ice floats on water: which property of water explains "
    "it, and how does that help fish survive the winter in a frozen lake? One group wants to write a short "
    "Python function that reads the list of projects from a file and prints them sorted by title. Another "
    "group read an article about the history of the printing press in Europe and must answer questions about "
    "who built the first press, in which city, and how quickly printed books spread to other countries. How "
    "many packs of poster boards must the teacher buy, and how many boards will be left over? ";

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

}  // namespace

const char* BenchPassage() { return kPassage; }

int RunRoutingBench(const RoutingBenchArgs& a) {
  if (a.adapters.empty()) {
    throw InputError("bench --router: give the router's adapters with --adapter TASK=PATH");
  }
  auto model = Model::Load(a.model, ModelOptionsFor(a.activations, a.threads));
  const Tokenizer& tok = model->tokenizer();
  const int threads = a.threads > 0 ? a.threads : DefaultThreads();
  ThreadPool pool(threads);

  // The prompt: -p tokens of the passage, and the text those tokens spell.
  const std::string source = a.prompt_file.empty() ? std::string(kPassage) : ReadTextFile(a.prompt_file);
  std::string long_text = source;
  std::vector<int32_t> ids = tok.EncodeWithBos(long_text, false);
  while (static_cast<int>(ids.size()) < a.n_prompt) {
    if (source.empty()) throw InputError("bench --prompt-file " + a.prompt_file + " is empty");
    long_text += source;
    ids = tok.EncodeWithBos(long_text, false);
  }
  ids.resize(static_cast<size_t>(a.n_prompt));
  const std::string prompt_text = tok.Decode(ids, /*skip_special=*/true);

  const std::unique_ptr<AdapterBank> bank_owner = LoadAdapterBank(*model, a.adapters, a.adapter_type);
  AdapterBank& bank = *bank_owner;
  LoraMixer mixer(bank, MixerOptionsFor(*model, a.mix_mode, a.lora_activations));

  RouterFile file = RouterFile::Load(a.router);
  const RoutingPolicy policy = RoutingPolicy::Make("paper", 0, 1, "", file.TaskNames());
  const RouteWindow window = RouteWindow::Parse(a.window);
  auto embedder = Embedder::Load(EmbedderPath(a.embedder), pool, ParseEncoderPrecision(a.embedder_precision));
  Router router(std::move(file), a.router, *embedder, policy, window);
  TokenRoutingOptions routed_options;
  routed_options.route_every = ParseRouteEvery(a.route_every);
  routed_options.kv_policy = ParseKvPolicy(a.kv_policy);

  Generator generator(*model, pool);
  GenerateOptions gen;
  gen.max_new_tokens = a.n_gen;
  gen.stop_at_eos = false;
  gen.kv_type = ParseKvType(a.kv_type);

  std::vector<double> fixed_s, routed_s, router_ms, per_call_ms;
  int64_t calls = 0, encoder_runs = 0;
  int generated = 0;
  auto run_fixed = [&] {
    // Fixed weights: the prompt's routing, set before Generate starts its
    // clocks (it times only its own prefill and decode).
    TokenRouting once(router, bank, prompt_text, {0, KvPolicy::kKeep});
    once.BeforeStep(0, "");
    const std::span<const float> w = once.slot_weights();
    mixer.SetTokenWeights(w, 1, static_cast<int>(w.size()));
    const GenerateResult r = generator.Generate(ids, gen, {}, &mixer);
    fixed_s.push_back(r.prefill_seconds + r.decode_seconds);
    generated = static_cast<int>(r.output_ids.size());
  };
  auto run_routed = [&] {
    TokenRouting routing(router, bank, prompt_text, routed_options);
    const GenerateResult r = generator.Generate(ids, gen, {}, &mixer, &routing);
    routed_s.push_back(r.prefill_seconds + r.decode_seconds);
    const RoutingStats& st = routing.stats();
    router_ms.push_back(st.router_ms);
    per_call_ms.push_back(st.route_calls > 0 ? st.router_ms / static_cast<double>(st.route_calls) : 0);
    calls = st.route_calls;
    encoder_runs = st.encoder_runs;
  };
  run_fixed();  // warm-up: page the weights in, size the scratch
  for (int rep = 0; rep < a.reps; ++rep) {
    run_fixed();
    run_routed();
    if (!a.json) {
      std::fprintf(stderr, "\rrep %d/%d", rep + 1, a.reps);
      std::fflush(stderr);
    }
  }
  const double fixed = Median(fixed_s), routed = Median(routed_s), rms = Median(router_ms);
  const double ratio = fixed > 0 ? routed / fixed : 0;
  const double share = routed > 0 ? rms / 1e3 / routed : 0;
  const int k = routed_options.route_every;
  if (a.json) {
    const nlohmann::json j = {{"model", a.model},
                              {"threads", threads},
                              {"simd", kernels::SimdTargetName()},
                              {"n_prompt", a.n_prompt},
                              {"n_gen", generated},
                              {"reps", a.reps},
                              {"adapters", bank.size()},
                              {"adapter_type", a.adapter_type},
                              {"mix_mode", a.mix_mode},
                              {"route_every", k},
                              {"kv_policy", a.kv_policy},
                              {"window", window.Describe()},
                              {"fixed_seconds", fixed},
                              {"routed_seconds", routed},
                              {"routed_over_fixed", ratio},
                              {"route_calls", calls},
                              {"encoder_runs", encoder_runs},
                              {"router_ms", rms},
                              {"router_ms_per_call", Median(per_call_ms)},
                              {"router_share", share}};
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::fprintf(stderr, "\n");
  std::printf("model %s | %d threads | simd %s | %d reps | %d adapters (%s, %s) | prompt %d tokens, %d new\n",
              a.model.c_str(), threads, kernels::SimdTargetName(), a.reps, bank.size(), a.adapter_type.c_str(),
              a.mix_mode.c_str(), a.n_prompt, generated);
  std::printf("%-40s %10s\n", "generation (medians)", "seconds");
  std::printf("%-40s %10.3f\n", "fixed weights (the prompt's routing)", fixed);
  const std::string routed_name =
      "routed " + (k == 0 ? std::string("once") : "every " + std::to_string(k)) + ", kv " + a.kv_policy;
  std::printf("%-40s %10.3f\n", routed_name.c_str(), routed);
  std::printf("routed / fixed: %.3fx | router: %lld calls, %lld encoder runs, %.1f ms (%.2f ms per call), "
              "%.1f%% of the routed generation\n",
              ratio, static_cast<long long>(calls), static_cast<long long>(encoder_runs), rms,
              Median(per_call_ms), 100.0 * share);
  return 0;
}

}  // namespace tokenlora::cli
