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

#include "bench_batched.h"
#include "bench_encoder.h"
#include "bench_routing.h"
#include "commands.h"
#include "core/error.h"
#include "core/stream_buffer.h"
#include "core/thread_pool.h"
#include "io/json_text.h"
#include "kernels/kernels.h"
#include "kernels/prefetch.h"
#include "lora/adapter_bank.h"
#include "lora/mix_spec.h"
#include "lora/mixer.h"
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

// DRAM read bandwidth, probed between the reps: a 512 MiB buffer of distinct
// random data (a repeated pattern would be served faster) summed by all
// threads with the SIMD StreamSum kernel, one 4 MiB chunk per claim. The
// buffer has the same pages as the model's weights (a StreamBuffer: huge
// pages unless TOKENLORA_HUGE_PAGES=0), so the bound compares like with like.
// Each probe reads the buffer without and with software prefetch (4 KiB
// ahead, or TOKENLORA_PREFETCH's distance) and keeps the faster: the bound is
// the best stream this machine gave, whatever the decode kernels use.
class DramProbe {
 public:
  DramProbe() : floats_(size_t{512} << 18), mem_(floats_ * sizeof(float)),
                buf_(reinterpret_cast<float*>(mem_.data())) {
    uint64_t state = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < floats_; ++i) {
      state ^= state >> 12;
      state ^= state << 25;
      state ^= state >> 27;
      buf_[i] = static_cast<float>(static_cast<int32_t>((state * 0x2545F4914F6CDD1Dull) >> 32)) * 0x1p-31f;
    }
  }
  double MeasureGBps(ThreadPool& pool) {
    const size_t configured = kernels::StreamPrefetchBytes();
    double best = 0;
    for (const size_t prefetch : {size_t{0}, configured != 0 ? configured : size_t{4096}}) {
      best = std::max(best, MeasureGBps(pool, prefetch));
    }
    return best;
  }

 private:
  double MeasureGBps(ThreadPool& pool, size_t prefetch) {
    constexpr size_t kChunk = size_t{1} << 20;  // floats
    std::vector<float> partial(static_cast<size_t>(pool.size()) * 16, 0.0f);
    const auto t0 = std::chrono::steady_clock::now();
    pool.ParallelFor(floats_ / kChunk, 1, [&](size_t begin, size_t end, int thread) {
      float sum = 0;
      for (size_t c = begin; c < end; ++c) sum += kernels::StreamSum(&buf_[c * kChunk], kChunk, prefetch);
      partial[static_cast<size_t>(thread) * 16] += sum;
    });
    const double seconds = Seconds(t0);
    volatile float keep = partial[0];
    (void)keep;
    return static_cast<double>(floats_ * sizeof(float)) / seconds / 1e9;
  }


  size_t floats_;
  StreamBuffer mem_;
  float* buf_;
};

// Bytes of projection weights one decoded token reads (every layer's seven
// projections and the output head; the embedding row is negligible).
double WeightBytesPerToken(const Model& model) {
  double bytes = static_cast<double>(model.weights().output.weight.NumBytes());
  for (const LlamaLayer& l : model.weights().layers) {
    for (const Linear* p : l.Projections()) {
      bytes += static_cast<double>(p->weight.NumBytes());
    }
  }
  return bytes;
}

// One llama-bench run; returns {prefill t/s, decode t/s}.
std::pair<double, double> RunPeer(const std::string& peer, const std::string& model, int n_prompt,
                                  int n_gen, int n_depth, int threads) {
  const std::string cmd = "'" + peer + "' -m '" + model + "' -p " + std::to_string(n_prompt) +
                          " -n " + std::to_string(n_gen) + (n_depth > 0 ? " -d " + std::to_string(n_depth) : "") +
                          " -t " + std::to_string(threads) +
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
    j = ParseBoundedJson(out);
  } catch (const nlohmann::json::exception&) {
    throw InputError("--peer: '" + peer + "' (" + DescribeWaitStatus(status) +
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
    std::string model, peer, mix_mode = "exact", adapter_type = "f32", activations = "int8", kv_type = "f16";
    std::string lora_activations = "int8";
    std::string parallel, peer_batched;
    std::vector<std::string> adapters;
    int n_prompt = 512, n_gen = 128, n_depth = 0, reps = 5, threads = 0, mix_every = 0;
    bool json = false;
    RoutingBenchArgs routing;  // --router: the token-level routing benchmark
    std::string encoder;       // --encoder: the router encoder's precisions
    int encoder_batch = 1;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("bench", "Measure prefill and decode speed (optionally beside llama.cpp)");
  cmd->add_option("-m,--model", a->model, "model (default: the built-in model)");
  cmd->add_option("-p,--n-prompt", a->n_prompt, "prompt tokens for the prefill test")->check(IntRange(1, 1 << 16));
  cmd->add_option("-n,--n-gen", a->n_gen, "tokens for the decode test")->check(IntRange(1, 1 << 16));
  cmd->add_option("-d,--n-depth", a->n_depth,
                  "tokens already in the KV cache before each test (llama-bench's -d): measures long-context speed")
      ->check(IntRange(0, 1 << 20));
  cmd->add_option("--reps", a->reps, "repetitions (min/median/max reported)")->check(IntRange(1, 1000));
  AddThreadsOption(cmd, &a->threads);
  AddActivationsOption(cmd, &a->activations);
  AddKvTypeOption(cmd, &a->kv_type);
  cmd->add_option("--peer", a->peer, "path of llama.cpp's llama-bench to run on the same file, interleaved")
      ->check(ExecutableFile());
  cmd->add_flag("--json", a->json, "print one JSON object");
  cmd->add_option("--adapter", a->adapters, "LoRA adapter NAME=PATH (repeatable): also measure with adapters, beside the base in the same run");
  cmd->add_option("--mix-every", a->mix_every, "fresh random adapter weights every K tokens (prefill rows too); 0: fixed equal weights")
      ->check(IntRange(0));
  cmd->add_option("--mix-mode", a->mix_mode, "exact (default), peft-linear or peft04-linear")
      ->check(CLI::IsMember({"exact", "peft-linear", "peft04-linear"}));
  cmd->add_option("--adapter-type", a->adapter_type, "adapter storage: f32 (default), f16 or q8_0");
  AddLoraActivationsOption(cmd, &a->lora_activations);
  const char* kBatched = "Many sequences at once (--parallel): aggregate and per-sequence decode, beside llama-batched-bench";
  cmd->add_option("--parallel", a->parallel,
                  "sequence counts, e.g. 1,4,16: each runs -p prompt tokens (default 64) and -n new tokens (default "
                  "64) per sequence on the batched engine; with --adapter also at fixed equal weights, with --router "
                  "also routed per sequence")
      ->group(kBatched);
  cmd->add_option("--peer-batched", a->peer_batched,
                  "path of llama.cpp's llama-batched-bench to run with -npp/-ntg/-npl on the same file, interleaved")
      ->check(ExecutableFile())
      ->group(kBatched);
  const char* kRouting = "Token-level routing benchmark (--router): fixed weights vs routing every K";
  cmd->add_option("--router", a->routing.router,
                  "router file: time a generation (-p prompt tokens of real text, -n new) routed every K tokens "
                  "against the same with fixed weights; --adapter names = router tasks")
      ->group(kRouting);
  cmd->add_option("--embedder", a->routing.embedder, "the router's embedder (default: the built-in MiniLM)")->group(kRouting);
  AddEmbedderPrecisionOption(cmd, &a->routing.embedder_precision);
  cmd->get_option("--embedder-precision")->group(kRouting);
  cmd->add_option("--route-every", a->routing.route_every, "K, or 'prompt'")->capture_default_str()->group(kRouting);
  cmd->add_option("--kv-policy", a->routing.kv_policy, "keep or recompute")->capture_default_str()->group(kRouting);
  cmd->add_option("--route-window", a->routing.window, "whole or last:N")->capture_default_str()->group(kRouting);
  cmd->add_option("--prompt-file", a->routing.prompt_file, "text to cut the prompt from (default: a built-in passage)")
      ->check(CLI::ExistingFile)
      ->group(kRouting);
  const char* kEncoder = "Router encoder benchmark (--encoder): f32 vs int8 milliseconds per call";
  cmd->add_option("--encoder", a->encoder,
                  "word pieces per window, e.g. 16,64,128,256: time the embedder (--embedder) in f32 and int8, "
                  "interleaved, with the cosine between them; no language model is loaded")
      ->group(kEncoder);
  cmd->add_option("--encoder-batch", a->encoder_batch, "windows per encoder call (default 1)")
      ->check(IntRange(1, 256))
      ->group(kEncoder);
  return [a, cmd] {
    if (!a->encoder.empty()) {
      for (const char* flag : {"--parallel", "--router", "--adapter", "--peer", "--model", "--n-prompt", "--n-gen"}) {
        if (cmd->count(flag) > 0) throw InputError(std::string("bench: ") + flag + " is not taken with --encoder");
      }
      EncoderBenchArgs e;
      e.embedder = a->routing.embedder;
      e.pieces = ParseParallelList(a->encoder, "--encoder");
      e.batch = a->encoder_batch;
      e.reps = a->reps;
      e.threads = a->threads;
      e.json = a->json;
      return RunEncoderBench(e);
    }
    if (cmd->count("--encoder-batch") > 0) throw InputError("bench: --encoder-batch goes with --encoder");
    if (!a->parallel.empty()) {
      BatchedBenchArgs b;
      b.model = a->model.empty() ? DefaultModelPath() : a->model;
      b.parallel = ParseParallelList(a->parallel);
      b.n_prompt = cmd->count("--n-prompt") > 0 ? a->n_prompt : 64;
      b.n_gen = cmd->count("--n-gen") > 0 ? a->n_gen : 64;
      b.reps = cmd->count("--reps") > 0 ? a->reps : 3;
      b.threads = a->threads;
      b.activations = a->activations;
      b.kv_type = a->kv_type;
      b.adapters = a->adapters;
      b.adapter_type = a->adapter_type;
      b.mix_mode = a->mix_mode;
      b.lora_activations = a->lora_activations;
      b.router = a->routing.router;
      b.embedder = a->routing.embedder;
      b.embedder_precision = a->routing.embedder_precision;
      b.route_every = a->routing.route_every;
      b.kv_policy = a->routing.kv_policy;
      b.window = a->routing.window;
      b.prompt_file = a->routing.prompt_file;
      b.peer = a->peer_batched;
      b.json = a->json;
      for (const char* flag : {"--n-depth", "--peer", "--mix-every"}) {
        if (cmd->count(flag) > 0) throw InputError(std::string("bench: ") + flag + " is not taken with --parallel");
      }
      return RunBatchedBench(b);
    }
    if (!a->peer_batched.empty()) throw InputError("bench: --peer-batched goes with --parallel (e.g. --parallel 1,4,16)");
    if (!a->routing.router.empty()) {
      RoutingBenchArgs r = a->routing;
      r.model = a->model.empty() ? DefaultModelPath() : a->model;
      r.adapters = a->adapters;
      r.adapter_type = a->adapter_type;
      r.mix_mode = a->mix_mode;
      r.lora_activations = a->lora_activations;
      r.n_prompt = cmd->count("--n-prompt") > 0 ? a->n_prompt : 100;  // the setting
      r.n_gen = a->n_gen;
      r.reps = a->reps;
      r.threads = a->threads;
      r.activations = a->activations;
      r.kv_type = a->kv_type;
      r.json = a->json;
      if (a->n_depth > 0) throw InputError("bench: --n-depth is not taken with --router (it measures a whole generation)");
      return RunRoutingBench(r);
    }
    const DType storage = ParseAdapterStorage(a->adapter_type);
    const std::string path = a->model.empty() ? DefaultModelPath() : a->model;
    auto model = Model::Load(path, ModelOptionsFor(a->activations, a->threads));
    const LlamaConfig& c = model->config();
    const int threads = a->threads > 0 ? a->threads : DefaultThreads();
    ThreadPool pool(threads);
    ForwardContext ctx{&pool, nullptr};
    LlamaForward forward(*model, 512);
    const int64_t needed = int64_t{a->n_depth} + std::max(a->n_prompt, a->n_gen);
    if (needed > c.max_context) {
      throw InputError("bench: -d + max(-p, -n) = " + std::to_string(needed) + " exceeds the model's context " +
                       std::to_string(c.max_context) + "; hint: lower --n-depth");
    }
    KvCache kv(c, static_cast<int>(needed), ParseKvType(a->kv_type));
    std::mt19937 rng(1);
    std::vector<int32_t> prompt(static_cast<size_t>(a->n_prompt));
    for (int32_t& t : prompt) t = static_cast<int32_t>(rng() % static_cast<uint32_t>(c.vocab_size));
    std::vector<float> logits(static_cast<size_t>(c.vocab_size));
    std::vector<double> prefill, decode, peer_prefill, peer_decode, lora_prefill, lora_decode, dram;
    DramProbe probe;

    // Adapters, when given: measured beside the base in the same reps.
    std::unique_ptr<AdapterBank> bank;
    std::unique_ptr<LoraMixer> mixer;
    if (!a->adapters.empty()) {
      bank = std::make_unique<AdapterBank>(*model);
      const AdapterLoadOptions load{storage};
      for (const std::string& text : a->adapters) {
        const AdapterSpec spec = ParseAdapterSpec(text);
        bank->Load(spec.name, spec.path, load);
      }
      mixer = std::make_unique<LoraMixer>(*bank, MixerOptionsFor(*model, a->mix_mode, a->lora_activations));
    } else if (a->mix_every > 0) {
      throw InputError("bench: --mix-every needs adapters (--adapter NAME=PATH)");
    }
    const int n_adapters = bank ? bank->size() : 0;
    // Weights for `n` tokens [n, n_adapters]: random (normalised to sum 1)
    // and changing every mix_every tokens, or equal and fixed.
    auto make_weights = [&](int n, int first_token) {
      std::vector<float> w(static_cast<size_t>(n) * static_cast<size_t>(n_adapters), 1.0f / std::max(1, n_adapters));
      if (a->mix_every <= 0) return w;
      std::vector<float> row(static_cast<size_t>(n_adapters));
      for (int t = 0; t < n; ++t) {
        if ((first_token + t) % a->mix_every == 0 || t == 0) {
          float sum = 0;
          for (float& v : row) sum += (v = 0.05f + static_cast<float>(rng() % 1000) / 1000.0f);
          for (float& v : row) v /= sum;
        }
        std::copy(row.begin(), row.end(), w.begin() + static_cast<std::ptrdiff_t>(t) * n_adapters);
      }
      return w;
    };
    // One prefill + decode measurement; with_adapters routes through the mixer.
    // bw_gbps (base runs only): DRAM read bandwidth probed right before and
    // right after the decode, averaged, so the bound is taken at the same
    // moment as the decode it is compared with (the machine's bandwidth
    // drifts by 2x within a minute).
    auto measure = [&](bool with_adapters, double& pp_tps, double& tg_tps, double* bw_gbps) {
      ForwardContext run_ctx{&pool, with_adapters ? mixer.get() : nullptr};
      kv.set_n_past(a->n_depth);
      auto t0 = std::chrono::steady_clock::now();
      if (with_adapters) {
        const std::vector<float> w = make_weights(a->n_prompt, 0);
        RunWithTokenWeights(forward, *mixer, prompt, w, n_adapters, kv, pool, logits.data(), false, 512);
      } else {
        forward.Run(prompt, kv, run_ctx, logits.data(), false);
      }
      pp_tps = a->n_prompt / Seconds(t0);
      // Decode after the depth's context, like llama-bench's tg test.
      kv.set_n_past(a->n_depth);
      int32_t token = prompt[0];
      if (with_adapters && a->mix_every <= 0) {
        const std::vector<float> w = make_weights(1, 0);
        mixer->SetTokenWeights(w, 1, n_adapters);
      }
      const double bw_before = bw_gbps != nullptr ? probe.MeasureGBps(pool) : 0;
      t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < a->n_gen; ++i) {
        if (with_adapters && a->mix_every > 0 && i % a->mix_every == 0) {
          const std::vector<float> w = make_weights(1, i);
          mixer->SetTokenWeights(w, 1, n_adapters);
        }
        const int32_t one[1] = {token};
        forward.Run(one, kv, run_ctx, logits.data(), false);
        token = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
      }
      tg_tps = a->n_gen / Seconds(t0);
      if (bw_gbps != nullptr) *bw_gbps = (bw_before + probe.MeasureGBps(pool)) / 2;
    };

    // Warm-up: page the weights in and size the scratch buffers; then the
    // depth's context (random tokens), which every test starts from.
    kv.set_n_past(0);
    forward.Run(std::span<const int32_t>(prompt).first(std::min<size_t>(prompt.size(), 16)), kv, ctx,
                logits.data(), false);
    if (a->n_depth > 0) {
      std::vector<int32_t> context(static_cast<size_t>(a->n_depth));
      for (int32_t& t : context) t = static_cast<int32_t>(rng() % static_cast<uint32_t>(c.vocab_size));
      kv.set_n_past(0);
      forward.Run(context, kv, ctx, nullptr, false);
    }
    // Bytes one decoded token reads: the weights, and the KV cache of the
    // context it attends to (on average depth + n_gen / 2 positions).
    const double weight_bytes = WeightBytesPerToken(*model);
    const double kv_bytes = kv.BytesPerPosition() * (a->n_depth + (a->n_gen + 1) / 2.0);
    const double read_bytes = weight_bytes + kv_bytes;
    std::vector<double> fraction;  // per rep: decode / the bound probed around it
    for (int rep = 0; rep < a->reps; ++rep) {
      double pp = 0, tg = 0, bw = 0;
      measure(false, pp, tg, &bw);
      prefill.push_back(pp);
      decode.push_back(tg);
      dram.push_back(bw);
      fraction.push_back(tg * read_bytes / (bw * 1e9));
      if (mixer) {
        measure(true, pp, tg, nullptr);
        lora_prefill.push_back(pp);
        lora_decode.push_back(tg);
      }
      if (!a->peer.empty()) {
        auto [ppp, ptg] = RunPeer(a->peer, path, a->n_prompt, a->n_gen, a->n_depth, threads);
        peer_prefill.push_back(ppp);
        peer_decode.push_back(ptg);
      }
      if (!a->json) {
        std::fprintf(stderr, "\rrep %d/%d", rep + 1, a->reps);
        std::fflush(stderr);
      }
    }
    const Stats pf = Summarize(prefill), dc = Summarize(decode), bw = Summarize(dram);
    const Stats frac = Summarize(fraction);
    const double bound_tps = bw.median * 1e9 / read_bytes;
    if (a->json) {
      nlohmann::json j = {{"model", path},
                          {"threads", threads},
                          {"simd", kernels::SimdTargetName()},
                          {"activations", ActivationsLabel(*model)},
                          {"kv_type", a->kv_type},
                          {"weights", WeightPagesLabel(*model)},
                          {"n_prompt", a->n_prompt},
                          {"n_gen", a->n_gen},
                          {"n_depth", a->n_depth},
                          {"reps", a->reps},
                          {"prefill_tps", pf.median},
                          {"prefill_tps_min", pf.min},
                          {"prefill_tps_max", pf.max},
                          {"decode_tps", dc.median},
                          {"decode_tps_min", dc.min},
                          {"decode_tps_max", dc.max},
                          {"weight_bytes_per_token", weight_bytes},
                          {"kv_bytes_per_token", kv_bytes},
                          {"dram_read_gbps", bw.median},
                          {"decode_bound_tps", bound_tps},
                          {"decode_fraction_of_bound", frac.median},
                          {"decode_fraction_of_bound_min", frac.min},
                          {"decode_fraction_of_bound_max", frac.max}};
      if (mixer) {
        const Stats lpf = Summarize(lora_prefill), ldc = Summarize(lora_decode);
        j["adapters"] = n_adapters;
        j["mix_every"] = a->mix_every;
        j["mix_mode"] = a->mix_mode;
        j["adapter_type"] = AdapterStorageName(storage);
        j["lora_activations"] = mixer->int8_activations() ? "int8" : "f32";
        j["lora_prefill_tps"] = lpf.median;
        j["lora_decode_tps"] = ldc.median;
        j["lora_prefill_ratio"] = pf.median > 0 ? lpf.median / pf.median : 0;
        j["lora_decode_ratio"] = dc.median > 0 ? ldc.median / dc.median : 0;
      }
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
    const std::string at = a->n_depth > 0 ? " @ d" + std::to_string(a->n_depth) : "";  // llama-bench's naming
    std::printf("model %s | %d threads | simd %s | activations %s | kv %s | weights %s | %d reps\n", path.c_str(),
                threads, kernels::SimdTargetName(), ActivationsLabel(*model).c_str(), a->kv_type.c_str(),
                WeightPagesLabel(*model).c_str(), a->reps);
    std::printf("%-22s %10s %10s %10s\n", "test", "min t/s", "median", "max");
    std::printf("%-22s %10.1f %10.1f %10.1f\n", ("tokenlora pp" + std::to_string(a->n_prompt) + at).c_str(), pf.min, pf.median, pf.max);
    std::printf("%-22s %10.1f %10.1f %10.1f\n", ("tokenlora tg" + std::to_string(a->n_gen) + at).c_str(), dc.min, dc.median, dc.max);
    std::printf("decode bandwidth bound: %.1f MB of weights%s per token / %.1f GB/s DRAM read (probed around each "
                "decode, %.1f-%.1f) = %.0f t/s; decode at %.0f%% of the bound probed with it (median of reps, "
                "%.0f-%.0f%%)\n",
                read_bytes / 1e6, a->n_depth > 0 ? " and KV cache" : "", bw.median, bw.min, bw.max, bound_tps, 100.0 * frac.median, 100.0 * frac.min,
                100.0 * frac.max);
    if (mixer) {
      const Stats lpf = Summarize(lora_prefill), ldc = Summarize(lora_decode);
      const std::string tag = "+" + std::to_string(n_adapters) + " LoRA";
      std::printf("%-22s %10.1f %10.1f %10.1f\n", (tag + " pp" + std::to_string(a->n_prompt) + at).c_str(), lpf.min, lpf.median, lpf.max);
      std::printf("%-22s %10.1f %10.1f %10.1f\n", (tag + " tg" + std::to_string(a->n_gen) + at).c_str(), ldc.min, ldc.median, ldc.max);
      std::printf("adapters / base (medians, %s, %s storage, %s products, weights %s): prefill %.2fx, decode %.2fx\n",
                  a->mix_mode.c_str(), AdapterStorageName(storage), mixer->int8_activations() ? "int8" : "f32",
                  a->mix_every > 0 ? ("change every " + std::to_string(a->mix_every) + " tokens").c_str() : "fixed",
                  pf.median > 0 ? lpf.median / pf.median : 0, dc.median > 0 ? ldc.median / dc.median : 0);
    }
    if (!a->peer.empty()) {
      const Stats ppf = Summarize(peer_prefill), pdc = Summarize(peer_decode);
      std::printf("%-22s %10.1f %10.1f %10.1f\n", ("llama.cpp pp" + std::to_string(a->n_prompt) + at).c_str(), ppf.min, ppf.median, ppf.max);
      std::printf("%-22s %10.1f %10.1f %10.1f\n", ("llama.cpp tg" + std::to_string(a->n_gen) + at).c_str(), pdc.min, pdc.median, pdc.max);
      std::printf("ratio (tokenlora / llama.cpp, medians): prefill %.2fx, decode %.2fx\n",
                  ppf.median > 0 ? pf.median / ppf.median : 0, pdc.median > 0 ? dc.median / pdc.median : 0);
    }
    return 0;
  };
}

}  // namespace tokenlora::cli
