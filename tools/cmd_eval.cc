// `tokenlora eval`: held-out accuracy on one or more of the paper's tasks,
// with the base model, fixed adapters, or token-level routing. Parsing and
// printing only; the work is in src/eval/ (eval/task_runs.h: several tasks).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "commands.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "eval/evaluator.h"
#include "eval/task_eval.h"
#include "eval/suite.h"
#include "eval/task_runs.h"
#include "eval_suite.h"
#include "generate/generator.h"
#include "mixture_args.h"
#include "model/model.h"
#include "router/progress.h"

namespace tokenlora::cli {

namespace {

// --suite: the suite sets tasks, data, adapters' weights and routing; the
// flags that would set them for one run are refused by name.
template <typename Args>
int RunSuiteCommand(const Args& a, const CLI::App& cmd) {
  for (const char* flag : {"--task", "--data", "--every", "-n", "--max-total", "--mix", "--mix-mode", "--route-every",
                           "--kv-policy", "--route-policy", "--route-temperature", "--route-top-k", "--route-weights",
                           "--route-window", "--route-score"}) {
    if (cmd.count(flag) > 0) {
      throw InputError(std::string("eval --suite: ") + flag +
                       " is set per task or configuration in the suite file, not on the command line");
    }
  }
  SuiteRunArgs s;
  s.suite = a.suite;
  s.out_dir = a.out;
  s.model = a.model;
  s.data_dir = a.data_dir;
  s.configs = a.configs;
  s.decodings = a.decodings;
  s.tasks = a.suite_tasks;
  s.report_only = a.report_only;
  s.adapters = a.mixture.adapters;
  s.router = a.mixture.router;
  s.activations = a.activations;
  s.kv_type = a.kv_type;
  s.adapter_type = a.mixture.adapter_type;
  s.lora_activations = a.mixture.lora_activations;
  s.embedder = a.mixture.embedder;
  s.embedder_precision = a.mixture.embedder_precision;
  s.limit = a.limit;
  s.threads = a.threads;
  s.parallel = cmd.count("--parallel") > 0 ? a.parallel : 8;
  s.json = a.json;
  s.quiet = a.quiet;
  return RunSuite(s);
}

}  // namespace

RunFn AddEvalCommand(CLI::App& app) {
  struct Args {
    std::string activations = "int8", kv_type = "f16";
    std::string model, data, out;
    std::vector<std::string> tasks;
    int64_t limit = -1, every = 1;
    int n_predict = 0, max_total = 0, threads = 0, parallel = 1;
    bool json = false, quiet = false;
    MixtureArgs mixture;
    std::string suite, configs, decodings, suite_tasks, data_dir;
    bool print_suite = false, report_only = false;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "eval", "Score greedy answers on held-out items of a task (base model, fixed adapters, or routed)");
  cmd->add_option("--task", a->tasks,
                  "gsm8k (exact final number), arc_challenge (answer letter), squad (exact match, also F1), "
                  "codealpaca (ROUGE-L F); or NAME=FILE, repeatable: several tasks, one summary");
  cmd->add_option("--suite", a->suite,
                  "run a whole suite instead: 'paper' (the seed paper's table: base, every adapter on every task, "
                  "uniform mixes, routing once and every k = 1..4, the reference's loop; greedy and sampled) or a "
                  "suite FILE.json; -o is then its output folder (default eval-NAME), resumable")
      ->group("Suite");
  cmd->add_flag("--print-suite", a->print_suite,
                "with --suite paper: print the built-in suite as JSON (a starting point for your own suite file) and exit")
      ->group("Suite");
  cmd->add_flag("--report-only", a->report_only,
                "with --suite: build the table from the cache alone (nothing is generated; runs with items "
                "missing are left out), e.g. while another run fills it")
      ->group("Suite");
  cmd->add_option("--configs", a->configs, "with --suite: only these configurations (comma-separated names)")
      ->group("Suite");
  cmd->add_option("--tasks", a->suite_tasks, "with --suite: only these tasks (comma-separated; the mean needs all)")
      ->group("Suite");
  cmd->add_option("--decodings", a->decodings, "with --suite: greedy, sampled or greedy,sampled (default: the suite's)")
      ->group("Suite");
  cmd->add_option("--data-dir", a->data_dir,
                  "with --suite: the data folder its task files are relative to (default: $TOKENLORA_DATA, data/ "
                  "or ../shared/data beside the checkout)")
      ->group("Suite");
  cmd->add_option("--data", a->data,
                  "held-out records of the one --task NAME: FILE.jsonl, optionally sliced: FILE.jsonl[:100]");
  cmd->add_option("--limit", a->limit, "score only the first N records (after the slice)")->check(IntRange(1));
  cmd->add_option("--every", a->every, "score every K-th record of the slice (spreads --limit over a file ordered by topic)")
      ->check(IntRange(1));
  cmd->add_option("-m,--model", a->model,
                  "model: a .gguf file or a Hugging Face directory (default: the built-in SmolLM2-135M-Instruct)");
  cmd->add_option("-n,--n-predict", a->n_predict,
                  "most answer tokens (default per task: gsm8k 256, arc_challenge 8, squad 32, codealpaca 192)")
      ->check(IntRange(1));
  cmd->add_option("--max-total", a->max_total, "stop when prompt + answer reach this many tokens; 0 = off")
      ->check(IntRange(0));
  cmd->add_option("-o,--out", a->out, "write every item (output, what was read from it, reference, score) to this JSONL file; "
                  "with --suite: the output folder");
  cmd->add_flag("--json", a->json, "print the summary as one JSON object on stdout");
  AddThreadsOption(cmd, &a->threads);
  AddActivationsOption(cmd, &a->activations);
  AddKvTypeOption(cmd, &a->kv_type);
  cmd->add_flag("-q,--quiet", a->quiet, "no progress bar");
  cmd->add_option("--parallel", a->parallel, "items generated at once (same predictions at any value; --suite default 8)")
      ->check(IntRange(1, 256))
      ->capture_default_str();
  a->mixture.Add(cmd);
  return [a, cmd] {
    if (a->print_suite) {
      if (a->suite != "paper") throw InputError("eval --print-suite prints the built-in suite: add --suite paper");
      std::printf("%s\n", eval::PaperSuiteJson().dump(2).c_str());
      return 0;
    }
    if (!a->suite.empty()) return RunSuiteCommand(*a, *cmd);
    for (const char* flag : {"--configs", "--decodings", "--tasks", "--data-dir", "--report-only"}) {
      if (cmd->count(flag) > 0) throw InputError(std::string("eval: ") + flag + " needs --suite paper|FILE.json");
    }
    if (a->tasks.empty()) {
      throw InputError("eval: give --task NAME (with --data FILE) or --task NAME=FILE, or --suite paper|FILE.json");
    }
    const std::vector<eval::TaskRun> runs = eval::ParseTaskRuns(a->tasks, a->data);
    a->mixture.Validate(*cmd, "eval");
    if (!a->out.empty()) CheckWritableOutput(a->out);
    std::vector<std::vector<eval::EvalItem>> items_of_run;  // all read first: a bad file fails before the model loads
    for (const eval::TaskRun& run : runs) {
      items_of_run.push_back(eval::LoadEvalItems(run.data, run.task, a->limit, a->every));
    }
    auto model = Model::Load(a->model.empty() ? DefaultModelPath() : a->model, ModelOptionsFor(a->activations, a->threads));
    ThreadPool pool(a->threads > 0 ? a->threads : DefaultThreads());
    const MixtureSetup mixture(a->mixture, *model, pool);
    // Predictions are appended as they come to OUT.partial, renamed to OUT at
    // the end: a run stopped half way keeps what it scored.
    const std::string partial = a->out.empty() ? "" : a->out + ".partial";
    std::ofstream predictions;
    if (!partial.empty()) {
      predictions.open(partial, std::ios::binary | std::ios::trunc);
      if (!predictions) throw InputError("cannot write " + partial + " (check the directory of -o)");
    }
    std::vector<eval::TaskResult> results;
    for (size_t run_index = 0; run_index < runs.size(); ++run_index) {
      const eval::EvalTask task = runs[run_index].task;
      const std::vector<eval::EvalItem>& items = items_of_run[run_index];
      eval::EvalOptions options;
      options.parallel = a->parallel;
      options.task = task;
      options.limits = eval::DefaultAnswerLimits(task);
      if (a->n_predict > 0) options.limits.max_new_tokens = a->n_predict;
      options.max_total_tokens = a->max_total;
      options.kv_type = ParseKvType(a->kv_type);
      eval::ScheduleFactory schedule_for;
      if (mixture.routed()) {
        schedule_for = [&mixture](const std::string& prompt) -> std::unique_ptr<MixtureSchedule> {
          return mixture.RoutingFor(prompt);
        };
      }
      ProgressBar progress(eval::EvalTaskName(task), static_cast<int64_t>(items.size()));
      double score_sum = 0;
      const eval::EvalSummary summary = eval::RunEval(
          *model, pool, items, options, mixture.mixer(), schedule_for, [&](const eval::EvalItemResult& r) {
            score_sum += r.score.score;
            if (!a->out.empty()) {
              nlohmann::json j = eval::EvalItemResultJson(r);
              if (runs.size() > 1) j["task"] = eval::EvalTaskName(task);
              predictions << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
              predictions.flush();
            }
            if (!a->quiet) progress.Update(static_cast<int64_t>(r.index + 1));
          });
      if (!a->quiet) {
        char note[64];
        std::snprintf(note, sizeof note, "score %.3f", score_sum / static_cast<double>(items.size()));
        progress.Finish(static_cast<int64_t>(items.size()), note);
      }
      results.push_back({runs[run_index], summary});
    }
    if (!partial.empty()) {
      predictions.close();
      std::error_code ec;
      std::filesystem::rename(partial, a->out, ec);
      if (ec) throw InputError("cannot rename " + partial + " to " + a->out + ": " + ec.message());
    }
    std::string adapters = "none (base model)";
    if (mixture.bank() != nullptr) {
      adapters.clear();
      for (const std::string& s : a->mixture.adapters) adapters += (adapters.empty() ? "" : " ") + s;
      adapters += mixture.routed() ? " | routed by " + a->mixture.router + " every " + a->mixture.route_every
                                   : (a->mixture.mix.empty() ? " | each at weight 1" : " | mix " + a->mixture.mix);
    }
    if (a->json) {
      const nlohmann::json j = results.size() == 1 ? eval::TaskSummaryJson(results[0], adapters)
                                                   : eval::MultiTaskSummaryJson(results, adapters);
      std::printf("%s\n", j.dump().c_str());
    } else {
      const std::string text = results.size() == 1 ? eval::TaskSummaryText(results[0], adapters)
                                                   : eval::MultiTaskSummaryText(results, adapters);
      std::fputs(text.c_str(), stdout);
    }
    if (!a->out.empty()) std::fprintf(stderr, "predictions: %s\n", a->out.c_str());
    return 0;
  };
}

}  // namespace tokenlora::cli
