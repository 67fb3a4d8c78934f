#include <cstdio>
#include <memory>
#include <vector>

#include "commands.h"
#include "core/error.h"
#include "core/mapped_file.h"
#include "core/thread_pool.h"
#include "generate/generator.h"
#include "generate/routing_trace.h"
#include "generate/token_routing.h"
#include "kernels/kernels.h"
#include "generate_batch.h"
#include "mixture_args.h"
#include "model/model.h"

namespace tokenlora::cli {
namespace {
// A prompt beyond any model's context in text: the read stops there.
constexpr size_t kMaxPromptFileBytes = size_t{64} << 20;
}  // namespace

RunFn AddGenerateCommand(CLI::App& app) {
  struct Args {
    std::string activations = "int8", kv_type = "f16";
    std::string model, prompt, prompt_file, system;
    int n_predict = 128, threads = 0, ctx_size = 0;
    bool chat = false, show_ids = false, no_eos = false, retokenize = false;
    SamplerParams sampling;
    std::vector<std::string> stops;
    int max_total = 0;
    MixtureArgs mixture;
    std::string trace, trace_svg;  // token-level routing's record
    int parallel = 8, batch_tokens = 512;
    double kv_memory_mib = 0;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("generate", "Generate text from a prompt, streaming it to stdout");
  cmd->add_option("-m,--model", a->model, "model: a .gguf file or a Hugging Face directory (default: the built-in SmolLM2-135M-Instruct)");
  auto* p = cmd->add_option("-p,--prompt", a->prompt, "the prompt text");
  auto* f = cmd->add_option("-f,--file", a->prompt_file,
                            "read the prompt from a file; a FILE.jsonl holds one request a line, run in parallel "
                            "(see --parallel)")
                ->check(CLI::ExistingFile);
  p->excludes(f);
  cmd->add_option("-n,--n-predict", a->n_predict, "most new tokens to generate")->check(IntRange(0, 1 << 20));
  cmd->add_flag("--chat", a->chat, "wrap the prompt in the model's chat template as a user message");
  cmd->add_option("--system", a->system, "system message for --chat");
  cmd->add_option("--temp", a->sampling.temperature, "temperature; 0 = greedy")->check(NumberRange(0, 100));
  cmd->add_option("--top-k", a->sampling.top_k, "keep the k most likely tokens; 0 = off")->check(IntRange(0));
  cmd->add_option("--top-p", a->sampling.top_p, "nucleus sampling mass; 1 = off")->check(NumberRange(0, 1));
  cmd->add_option("--min-p", a->sampling.min_p, "drop tokens below min-p x the top probability; 0 = off")->check(NumberRange(0, 1));
  cmd->add_option("--repeat-penalty", a->sampling.repeat_penalty, "penalise tokens seen in the last --repeat-last-n; 1 = off");
  cmd->add_option("--repeat-last-n", a->sampling.repeat_last_n, "window of the repetition penalty")->check(IntRange(0));
  cmd->add_option("--seed", a->sampling.seed, "random seed (same seed, same text)")
      ->check(IntRange(0, std::numeric_limits<long long>::max()));
  cmd->add_option("--stop", a->stops, "stop when this text appears (repeatable)");
  AddThreadsOption(cmd, &a->threads);
  AddActivationsOption(cmd, &a->activations);
  AddKvTypeOption(cmd, &a->kv_type);
  cmd->add_option("-c,--ctx-size", a->ctx_size, "context size in tokens (default: prompt + n-predict)")->check(IntRange(0));
  cmd->add_flag("--ids", a->show_ids, "print the generated token ids to stderr");
  cmd->add_flag("--ignore-eos", a->no_eos, "keep generating past end-of-sequence tokens");
  cmd->add_flag("--retokenize", a->retokenize,
                "the paper's reference loop: after every token decode the text and tokenize it again from scratch "
                "(the text is re-run when its ids change); with --ignore-eos an end-of-text token is dropped from "
                "the text as the reference drops it (greedy: generation ends; sampled: drawn again)");
  cmd->add_option("--max-total", a->max_total,
                  "stop when prompt + output reach this many tokens (the paper's reference: 256); 0 = off")
      ->check(IntRange(0));
  const char* kBatch = "Many requests at once (-f FILE.jsonl)";
  cmd->add_option("--parallel", a->parallel, "sequences generated at once from a .jsonl file")
      ->check(IntRange(1, 4096))
      ->capture_default_str()
      ->group(kBatch);
  cmd->add_option("--batch-tokens", a->batch_tokens,
                  "most tokens in one forward pass (decodes first, then prompt chunks)")
      ->check(IntRange(1, 1 << 16))
      ->capture_default_str()
      ->group(kBatch);
  cmd->add_option("--kv-memory", a->kv_memory_mib,
                  "MiB of KV cache for all sequences together; requests wait until theirs fits "
                  "(default: half the available memory)")
      ->check(NumberRange(0, 1e9))
      ->group(kBatch);
  a->mixture.Add(cmd);
  const char* kRouting = "Token-level routing (the adapters are re-weighted from the running text)";
  cmd->add_option("--trace", a->trace, "write every token with its adapter weights to this JSON file")->group(kRouting);
  cmd->add_option("--trace-svg", a->trace_svg, "draw the weights over the generated text into this SVG file")
      ->group(kRouting);
  return [a, cmd] {
    if (a->prompt.empty() && a->prompt_file.empty()) {
      throw InputError("generate: give a prompt with -p TEXT or -f FILE");
    }
    a->sampling.Validate();
    const bool batch = IsBatchFile(a->prompt_file);
    for (const char* flag : {"--parallel", "--batch-tokens", "--kv-memory"}) {
      if (!batch && cmd->count(flag) > 0) {
        throw InputError(std::string("generate: ") + flag + " is for many requests: give them as -f FILE.jsonl, one "
                         "JSON object a line ({\"prompt\": ...})");
      }
    }
    if (batch) {
      for (const char* flag : {"--trace", "--trace-svg", "--ids"}) {
        if (cmd->count(flag) > 0) {
          throw InputError(std::string("generate: ") + flag + " is for one prompt; with -f FILE.jsonl ask for a "
                           "line's routing trace with \"trace\": true on that line");
        }
      }
      a->mixture.Validate(*cmd, "generate", /*per_request_routers=*/true);
      auto model = Model::Load(a->model.empty() ? DefaultModelPath() : a->model, ModelOptionsFor(a->activations, a->threads));
      ThreadPool pool(a->threads > 0 ? a->threads : DefaultThreads());
      MixtureSetup mixture(a->mixture, *model, pool);
      BatchGenerateArgs b;
      b.file = a->prompt_file;
      b.scheduler.max_sequences = a->parallel;
      b.scheduler.max_tokens_per_step = a->batch_tokens;
      b.scheduler.prefill_chunk = std::min(a->batch_tokens, 256);
      b.scheduler.kv_memory_bytes = static_cast<size_t>(a->kv_memory_mib * (1 << 20));
      b.defaults.max_new_tokens = a->n_predict;
      b.defaults.max_total_tokens = a->max_total;
      b.defaults.sampling = a->sampling;
      b.defaults.stop_strings = a->stops;
      b.defaults.ctx_size = a->ctx_size;
      b.defaults.stop_at_eos = !a->no_eos;
      b.defaults.retokenize = a->retokenize;
      b.defaults.kv_type = ParseKvType(a->kv_type);
      b.chat = a->chat;
      b.system = a->system;
      return RunGenerateBatch(b, *model, pool, mixture);
    }
    const std::string prompt = a->prompt_file.empty()
                                   ? PromptUtf8(a->prompt, "the prompt (-p)")
                                   : PromptUtf8(ReadTextFile(a->prompt_file, kMaxPromptFileBytes),
                                                "the prompt file " + a->prompt_file);
    a->system = PromptUtf8(a->system, "the system message (--system)");
    auto model = Model::Load(a->model.empty() ? DefaultModelPath() : a->model, ModelOptionsFor(a->activations, a->threads));
    const Tokenizer& tok = model->tokenizer();
    std::vector<int32_t> ids;
    if (a->chat) {
      std::vector<ChatMessage> messages;
      if (!a->system.empty()) messages.push_back({"system", a->system});
      messages.push_back({"user", prompt});
      const std::string text = FormatChat(DetectChatFormat(tok), messages, true, tok);
      ids = tok.EncodeWithBos(text, /*parse_special=*/true);
    } else {
      ids = tok.EncodeWithBos(prompt, /*parse_special=*/false);
    }
    // Flags that cannot work together fail before any work.
    a->mixture.Validate(*cmd, "generate");
    const bool routed = !a->mixture.router.empty();
    for (const auto& [flag, path] : {std::pair{"--trace", a->trace}, std::pair{"--trace-svg", a->trace_svg}}) {
      if (path.empty()) continue;
      if (!routed) {
        throw InputError(std::string("generate: ") + flag +
                         " needs a router: add --router FILE (made by `tokenlora router build`)");
      }
      CheckWritableOutput(path);  // before generating: never lose the run
    }
    ThreadPool pool(a->threads > 0 ? a->threads : DefaultThreads());
    const MixtureSetup mixture(a->mixture, *model, pool);
    const std::unique_ptr<TokenRouting> routing = mixture.RoutingFor(prompt);
    Generator generator(*model, pool);
    GenerateOptions options;
    options.max_new_tokens = a->n_predict;
    options.max_total_tokens = a->max_total;
    options.sampling = a->sampling;
    options.stop_strings = a->stops;
    options.ctx_size = a->ctx_size;
    options.stop_at_eos = !a->no_eos;
    options.retokenize = a->retokenize;
    options.kv_type = ParseKvType(a->kv_type);
    const GenerateResult r = generator.Generate(ids, options, [](const std::string& piece) {
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
      return true;
    }, mixture.mixer(), routing.get());
    std::printf("\n");
    std::fflush(stdout);
    if (a->show_ids) {
      std::fprintf(stderr, "ids:");
      for (int32_t id : r.output_ids) std::fprintf(stderr, " %d", id);
      std::fprintf(stderr, "\n");
    }
    std::fprintf(stderr,
                 "prefill: %zu tokens in %.3f s (%.1f tokens/s) | decode: %d tokens in %.3f s "
                 "(%.1f tokens/s) | stop: %s | threads %d | simd %s | activations %s | kv %s | weights %s\n",
                 r.prompt_ids.size(), r.prefill_seconds, r.PrefillTokensPerSecond(),
                 r.decoded_tokens, r.decode_seconds, r.DecodeTokensPerSecond(), r.stop_reason.c_str(),
                 pool.size(), kernels::SimdTargetName(), ActivationsLabel(*model).c_str(),
                 a->kv_type.c_str(), WeightPagesLabel(*model).c_str());
    if (routing != nullptr) {
      const RoutingStats& st = routing->stats();
      const double total_ms = (r.prefill_seconds + r.decode_seconds) * 1e3;
      std::fprintf(stderr,
                   "router: %lld calls (%lld ran the encoder, %lld changed the weights), %.1f ms in all, "
                   "%.2f ms per call, %.1f%% of generation time",
                   static_cast<long long>(st.route_calls), static_cast<long long>(st.encoder_runs),
                   static_cast<long long>(st.weight_changes), st.router_ms,
                   st.route_calls > 0 ? st.router_ms / static_cast<double>(st.route_calls) : 0.0,
                   total_ms > 0 ? 100.0 * st.router_ms / total_ms : 0.0);
      if (r.recomputed_tokens > 0) std::fprintf(stderr, " | recomputed %d past tokens", r.recomputed_tokens);
      std::fprintf(stderr, "\n");
      const Router& router = *mixture.router();
      const RoutingTraceInfo info{a->mixture.router, router.policy().Describe(), router.window().Describe(),
                                  MixModeName(mixture.mixer()->mode()), prompt};
      if (!a->trace.empty()) {
        WriteFileAtomically(a->trace, RoutingTraceJson(*routing, r, info));
        std::fprintf(stderr, "trace: %s\n", a->trace.c_str());
      }
      if (!a->trace_svg.empty()) {
        WriteFileAtomically(a->trace_svg, RoutingTraceSvg(*routing, info));
        std::fprintf(stderr, "trace picture: %s\n", a->trace_svg.c_str());
      }
    }
    return 0;
  };
}

}  // namespace tokenlora::cli
