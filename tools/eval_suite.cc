#include "eval_suite.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "eval/claims.h"
#include "eval/evaluator.h"
#include "eval/suite.h"
#include "eval/suite_cache.h"
#include "eval/suite_report.h"
#include "lora/mix_spec.h"
#include "mixture_args.h"
#include "model/llama/kv_cache.h"
#include "model/model.h"
#include "router/progress.h"

namespace tokenlora::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Bumped when a change of the engine changes outputs for the same options.
constexpr int kCacheVersion = 1;

std::string DataDirOrDefault(const std::string& flag) {
  if (!flag.empty()) return flag;
  if (const char* env = std::getenv("TOKENLORA_DATA"); env != nullptr && *env != '\0') return env;
  const std::string own = FindBundledPath(nullptr, "data/gsm8k");
  if (fs::exists(own)) return fs::path(own).parent_path().string();
  const std::string shared = FindBundledPath(nullptr, "../shared/data/gsm8k");
  if (fs::exists(shared)) return fs::path(shared).parent_path().string();
  throw InputError("no data folder: pass --data-dir DIR (holding gsm8k/, arc_challenge/, squad/, codealpaca/) "
                   "or set TOKENLORA_DATA; scripts/fetch-data downloads the data sets to data/");
}

// Where the built-in suite's adapters/ live: the checkout of this binary.
std::string Checkout() {
  const fs::path found = FindBundledPath(nullptr, "adapters/router.json");
  return found.parent_path().parent_path().string();
}

std::string DataPath(const std::string& data, const std::string& data_dir) {
  return fs::path(data).is_absolute() ? data : (fs::path(data_dir) / data).string();
}

// What ran, whatever the flags asked: a cache made on one CPU must not serve
// a run that computes differently on another.
struct ResolvedPrecisions {
  // "int8" when the model's projections run int8 (--activations int8 on a
  // CPU with the int8 kernels and an int8-packable model), else "f32".
  std::string activations;
  // The router encoder's: "f32", or "auto" for int8 — the name every cache
  // made before this field was resolved carries, written where "auto" meant
  // int8 (every int8 kernel, and the scalar twin, give the same bits).
  std::string embedder;
  bool lora_int8 = false;  // the adapters' products (int8 needs an int8 base)
};

// Everything that changes an item's output under `config` (the cache key).
json RunIdentity(const eval::SuiteConfiguration& config, const eval::SuiteTask& task, const std::string& data_file,
                 const SuiteRunArgs& args, const std::string& model_fingerprint,
                 const std::map<std::string, std::string>& adapter_fingerprints, const std::string& router_fingerprint,
                 const eval::SuiteSampling* sampling, uint64_t seed, const ResolvedPrecisions& resolved) {
  // `sampling`: the suite's, for a sampled run; nullptr for greedy (temperature 0).
  json mix = json::array();
  for (const auto& [name, w] : config.mix) mix.push_back({name, w});
  const eval::AnswerLimits limits = eval::DefaultAnswerLimits(task.task);
  json j = {{"version", kCacheVersion},
            {"model", model_fingerprint},
            {"activations", resolved.activations},
            {"kv_type", args.kv_type},
            {"task", eval::EvalTaskName(task.task)},
            {"data", data_file},
            {"every", task.every},
            {"max_new_tokens", limits.max_new_tokens},
            {"stops", limits.stop_strings},
            {"mix", mix},
            {"mix_mode", config.mix_mode},
            {"retokenize", config.retokenize},
            {"stop_at_eos", config.stop_at_eos},
            {"max_total", config.max_total},
            {"temperature", sampling != nullptr ? sampling->temperature : 0.0f},
            {"seed", seed}};
  // Sampled runs name their cuts only when set (absent: temperature alone,
  // the identity of runs made before the suite had them).
  if (sampling != nullptr && sampling->top_k != 0) j["top_k"] = sampling->top_k;
  if (sampling != nullptr && sampling->top_p != 1.0f) j["top_p"] = sampling->top_p;
  if (!config.base()) {
    j["adapters"] = adapter_fingerprints;
    j["adapter_type"] = args.adapter_type;
    // Named only when the adapters' products run int8 (absent: exact f32
    // products, the identity of runs made before the option existed).
    if (resolved.lora_int8) j["lora_activations"] = "int8";
  }
  if (config.routed()) {
    j["route_every"] = *config.route_every;
    j["kv_policy"] = config.kv_policy;
    j["route_policy"] = config.route_policy;
    j["router"] = router_fingerprint;
    j["embedder_precision"] = resolved.embedder;
  }
  return j;
}

json ItemLine(const std::string& key, const eval::EvalItem& item, size_t index, const eval::EvalItemResult& r,
              const std::vector<std::string>& router_tasks) {
  json j = eval::EvalItemResultJson(r);
  j["key"] = key;
  j["index"] = index;  // in the task's whole item list (a resumed run's list holds only the missing items)
  j["line"] = item.line;
  j["seconds"] = r.seconds;
  if (!r.mean_weights.empty()) {
    j["weights"] = r.mean_weights;
    const size_t top = static_cast<size_t>(
        std::max_element(r.mean_weights.begin(), r.mean_weights.end()) - r.mean_weights.begin());
    if (top < router_tasks.size()) j["top_task"] = router_tasks[top];
  }
  return j;
}

}  // namespace

int RunSuite(const SuiteRunArgs& args) {
  eval::Suite suite = eval::LoadSuite(args.suite, Checkout());
  eval::SelectFromSuite(suite, args.configs, args.decodings, args.tasks);
  const std::string data_dir = DataDirOrDefault(args.data_dir);
  const std::string out_dir = args.out_dir.empty() ? "eval-" + suite.name : args.out_dir;

  // Items first: a bad data file fails before the model loads.
  std::vector<std::vector<eval::EvalItem>> items_of_task;
  for (const eval::SuiteTask& t : suite.tasks) {
    const int64_t limit = args.limit > 0 ? args.limit : (t.limit > 0 ? t.limit : suite.limit);
    items_of_task.push_back(eval::LoadEvalItems(DataPath(t.data, data_dir), t.task, limit, t.every));
  }
  std::vector<std::pair<std::string, std::string>> adapters = suite.adapters;
  if (!args.adapters.empty()) {
    adapters.clear();
    for (const std::string& s : args.adapters) {
      const AdapterSpec spec = ParseAdapterSpec(s);
      adapters.emplace_back(spec.name, spec.path);
    }
  }
  bool any_routed = false, any_adapters = false;
  for (const eval::SuiteConfiguration& c : suite.configurations) {
    any_routed = any_routed || c.routed();
    any_adapters = any_adapters || !c.base();
  }
  if (any_adapters && adapters.empty()) {
    throw InputError("--suite " + args.suite + ": configurations use adapters, but the suite names none: add "
                     "\"adapters\" to the suite or --adapter NAME=PATH");
  }
  const std::string router = args.router.empty() ? suite.router : args.router;
  if (any_routed && router.empty()) {
    throw InputError("--suite " + args.suite + ": routed configurations need a router: add \"router\" to the suite "
                     "or --router FILE");
  }
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) throw InputError("-o: cannot create " + out_dir + ": " + ec.message());
  CheckWritableOutput(out_dir + "/table.md");

  const std::string model_path = args.model.empty() ? DefaultModelPath() : args.model;
  auto model = Model::Load(model_path, ModelOptionsFor(args.activations, args.threads));
  ThreadPool pool(args.threads > 0 ? args.threads : DefaultThreads());
  MixtureArgs mixture_args;
  if (any_adapters) {
    for (const auto& [name, path] : adapters) mixture_args.adapters.push_back(name + "=" + path);
  }
  mixture_args.router = any_routed ? router : "";
  mixture_args.adapter_type = args.adapter_type;
  mixture_args.lora_activations = args.lora_activations;
  mixture_args.embedder = args.embedder;
  mixture_args.embedder_precision = args.embedder_precision;
  MixtureSetup setup(mixture_args, *model, pool);
  ResolvedPrecisions resolved;
  resolved.activations = model->int8_projections() > 0 ? "int8" : "f32";
  resolved.embedder = setup.embedder_precision() == EncoderPrecision::kInt8 ? "auto" : "f32";
  // As the mixer resolved it (int8 needs an int8 base and a CPU with the kernels).
  resolved.lora_int8 = setup.mixer() != nullptr && setup.mixer()->int8_activations();

  const std::string model_fingerprint = eval::FileFingerprint(model_path);
  std::map<std::string, std::string> adapter_fingerprints;
  for (const auto& [name, path] : adapters) adapter_fingerprints[name] = eval::FileFingerprint(path);

  eval::SuiteTable table;
  table.suite = suite.name;
  table.model = fs::path(model_path).filename().string();
  table.configurations.clear();
  for (const eval::SuiteConfiguration& c : suite.configurations) table.configurations.push_back(c.name);
  for (const eval::SuiteTask& t : suite.tasks) table.tasks.push_back(t.task);
  table.decodings = suite.decodings;
  table.seeds = suite.sampling.seeds;
  table.temperature = suite.sampling.temperature;
  table.top_k = suite.sampling.top_k;
  table.top_p = suite.sampling.top_p;

  // Every configuration's mixture and router checked before the first item
  // runs (a missing router file fails now, not an hour in).
  struct Prepared {
    std::string router_path, router_fingerprint;
    std::vector<std::string> router_tasks;
    TokenRoutingOptions routing;
    std::vector<float> weights;
  };
  std::vector<Prepared> prepared;
  for (const eval::SuiteConfiguration& config : suite.configurations) {
    Prepared p;
    const std::string where = "configuration '" + config.name + "'";
    try {
      if (config.routed()) {
        p.router_path = config.router.empty() ? router : config.router;
        p.router_fingerprint = eval::FileFingerprint(p.router_path);
        p.routing.route_every = ParseRouteEvery(*config.route_every);
        p.routing.kv_policy = ParseKvPolicy(config.kv_policy);
        if (!config.route_policy.empty()) p.routing.policy = setup.PolicyFor(p.router_path, config.route_policy, 0);
        p.router_tasks = setup.RoutingFor("", p.router_path, p.routing)->task_names();
      } else if (!config.base()) {
        p.weights = setup.WeightsFor(config.mix, where);
      }
    } catch (const InputError& e) {
      throw InputError("--suite " + args.suite + ", " + where + ": " + e.what());
    }
    prepared.push_back(std::move(p));
  }

  for (size_t c = 0; c < suite.configurations.size(); ++c) {
    const eval::SuiteConfiguration& config = suite.configurations[c];
    const std::string& router_path = prepared[c].router_path;
    const std::string& router_fingerprint = prepared[c].router_fingerprint;
    const std::vector<std::string>& router_tasks = prepared[c].router_tasks;
    const TokenRoutingOptions& routing = prepared[c].routing;
    const std::vector<float>& weights = prepared[c].weights;
    if (!args.quiet) {
      size_t runs = 0;
      for (const std::string& decoding : suite.decodings) runs += table.RunsOf(decoding).size();
      std::fprintf(stderr, "[%zu/%zu] %s: %zu tasks x %zu run%s\n", c + 1, suite.configurations.size(),
                   config.name.c_str(), suite.tasks.size(), runs, runs == 1 ? "" : "s");
    }
    for (size_t t = 0; t < suite.tasks.size(); ++t) {
      const eval::SuiteTask& task = suite.tasks[t];
      const std::vector<eval::EvalItem>& items = items_of_task[t];
      for (const std::string& decoding : suite.decodings) {
        for (const std::string& run : table.RunsOf(decoding)) {
          const bool sampled = decoding == "sampled";
          const uint64_t seed = sampled ? std::stoull(run.substr(4)) : 0;
          const float temperature = sampled ? suite.sampling.temperature : 0.0f;
          // The data file as the suite names it (relative to the data folder), so a
          // cache made on one machine serves another whose data folder differs.
          const json identity = RunIdentity(config, task, task.data, args, model_fingerprint, adapter_fingerprints,
                                            router_fingerprint, sampled ? &suite.sampling : nullptr, seed, resolved);
          const std::string cache_path =
              out_dir + "/items/" + config.name + "/" + eval::EvalTaskName(task.task) + "." + run + ".jsonl";
          eval::RunCache cache(cache_path, args.report_only);
          std::vector<std::string> keys(items.size());
          std::vector<eval::EvalItem> missing;
          std::vector<size_t> missing_index;
          for (size_t i = 0; i < items.size(); ++i) {
            keys[i] = eval::CacheKey(identity, items[i]);
            if (cache.Find(keys[i]) == nullptr) missing.push_back(items[i]), missing_index.push_back(i);
          }
          eval::SuiteRunResult& result = table.runs[eval::SuiteTable::RunKey(config.name, task.task, run)];
          if (!missing.empty() && args.report_only) {
            std::fprintf(stderr, "%s %s %s: %zu of %zu items in the cache; left out (--report-only)\n",
                         config.name.c_str(), eval::EvalTaskName(task.task), run.c_str(), items.size() - missing.size(),
                         items.size());
            table.runs.erase(eval::SuiteTable::RunKey(config.name, task.task, run));
            continue;
          }
          if (!missing.empty()) {
            eval::EvalOptions options;
            options.task = task.task;
            options.limits = eval::DefaultAnswerLimits(task.task);
            options.max_total_tokens = config.max_total;
            options.kv_type = ParseKvType(args.kv_type);
            options.parallel = args.parallel;
            options.weights = weights;
            options.mix_mode = ParseMixMode(config.mix_mode);
            options.temperature = temperature;
            if (sampled) options.top_k = suite.sampling.top_k, options.top_p = suite.sampling.top_p;
            options.seed = seed;
            options.retokenize = config.retokenize;
            options.stop_at_eos = config.stop_at_eos;
            eval::ScheduleFactory schedule_for;
            if (config.routed()) {
              schedule_for = [&](const std::string& prompt) -> std::unique_ptr<MixtureSchedule> {
                return setup.RoutingFor(prompt, router_path, routing);
              };
            }
            const std::string label = config.name + " " + eval::EvalTaskName(task.task) + " " + run;
            ProgressBar progress(label, static_cast<int64_t>(items.size()));
            const int64_t cached = static_cast<int64_t>(items.size() - missing.size());
            const eval::EvalSummary summary = eval::RunEval(
                *model, pool, missing, options, config.base() ? nullptr : setup.mixer(), schedule_for,
                [&](const eval::EvalItemResult& r) {
                  const size_t i = missing_index[r.index];
                  cache.Append(ItemLine(keys[i], items[i], i, r, router_tasks));
                  if (!args.quiet) progress.Update(cached + static_cast<int64_t>(r.index) + 1);
                });
            if (!args.quiet) progress.Finish(static_cast<int64_t>(items.size()), cached > 0 ? std::to_string(cached) + " from the cache" : "");
            result.seconds = summary.seconds;
          }
          std::vector<json> lines;
          for (size_t i = 0; i < items.size(); ++i) {
            const json& line = *cache.Find(keys[i]);
            lines.push_back(line);
            result.scores.push_back(line["score"].get<double>());
            result.top_task.push_back(line.value("top_task", std::string()));
            result.output_tokens += line.value("output_tokens", 0);
          }
          result.tasks = router_tasks;
          // Item order; stale lines of the asked items go, but the items past this
          // --limit stay (a run with a smaller limit must not throw away a larger one's work).
          if (!args.report_only) {
            std::vector<json> kept = std::move(lines);
            for (json& beyond : cache.LinesFrom(items.size())) kept.push_back(std::move(beyond));
            cache.Rewrite(kept);
          }
        }
      }
    }
  }

  std::map<std::string, std::vector<eval::ClaimReport>> claims;
  if (suite.claims) {
    for (const std::string& decoding : suite.decodings) {
      claims[decoding] = eval::EvaluateClaims(*suite.claims, table.tasks, [&](const std::string& c, eval::EvalTask t) {
        return table.ItemScores(c, t, decoding);
      });
    }
  }
  std::string md = "# " + suite.name + " suite on " + table.model + "\n\n";
  for (const std::string& decoding : suite.decodings) {
    md += "## " + std::string(decoding == "greedy" ? "Greedy" : "Sampled") + "\n\n" + eval::TableMarkdown(table, decoding) + "\n";
    if (claims.count(decoding)) md += "### Claims\n\n" + eval::ClaimsMarkdown(claims[decoding]);
    const std::string confusion = eval::ConfusionMarkdown(table, decoding);
    if (!confusion.empty()) md += "### Router: top-weighted adapter vs the item's task\n\n" + confusion;
    std::ofstream(out_dir + "/chart-" + decoding + ".svg") << eval::ChartSvg(table, decoding, {});
  }
  const json results = eval::SuiteJson(table, claims);
  std::ofstream(out_dir + "/table.md") << md;
  std::ofstream(out_dir + "/results.json") << results.dump(1) << "\n";
  if (args.json) {
    std::printf("%s\n", results.dump().c_str());
  } else {
    std::fputs(md.c_str(), stdout);
  }
  std::fprintf(stderr, "suite %s: %s/table.md, results.json, chart-*.svg, items/ (per-item predictions and cache)\n",
               suite.name.c_str(), out_dir.c_str());
  return 0;
}

}  // namespace tokenlora::cli
