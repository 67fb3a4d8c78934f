// `tokenlora embed`, `tokenlora route` and `tokenlora router build|eval`:
// argument parsing and printing; the work is in src/router.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "routing_args.h"
#include "core/error.h"
#include "router/builder.h"
#include "router/embedder.h"
#include "router/precision_check.h"
#include "router/progress.h"
#include "router/router.h"

namespace tokenlora::cli {
namespace {
namespace fs = std::filesystem;

std::unique_ptr<Embedder> LoadEmbedder(const std::string& dir, int threads, const std::string& precision) {
  return Embedder::Load(EmbedderPath(dir), threads > 0 ? threads : DefaultThreads(),
                        ParseEncoderPrecision(precision));
}

std::string Json(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}


RecordOptions AddRecordOptions(CLI::App* cmd, RecordOptions* o) {
  cmd->add_option("--limit", o->limit, "use at most N records per task (after the slice)");
  cmd->add_flag("--skip-bad", o->skip_bad,
                "count and skip records that are not JSON or lack a template field");
  cmd->add_option("--batch", o->batch, "texts per encoder batch")
      ->capture_default_str()
      ->check(IntRange(1, 4096));
  return *o;
}

void AddEmbeddingsCacheOption(CLI::App* cmd, RecordOptions* o) {
  cmd->add_option("--embeddings-cache", o->embeddings_cache,
                  "folder that keeps each task's embeddings between runs (keyed by the embedder, its precision "
                  "and every text): later builds and evals over the same texts skip the encoder");
}

const char* kTaskHelp =
    "NAME=FILE.jsonl[SLICE][:TEMPLATE]; SLICE like [:90%] or [5696:]; TEMPLATE: gsm8k, arc_challenge, squad, "
    "codealpaca (the reference's formats; default: the task's name), NAME_prompt (the same cut after "
    "\"Answer:\"), or a custom one with {field}, {nested.field}, {list.0}, \\n";

}  // namespace

RunFn AddEmbedCommand(CLI::App& app) {
  struct Args {
    std::string embedder, precision = "auto";
    std::vector<std::string> texts;
    bool json = false;
    int threads = 0, repeat = 0;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("embed", "Print sentence embeddings of texts (the router's embedder)");
  cmd->add_option("--embedder", a->embedder,
                  "sentence-transformers directory (default: models/all-MiniLM-L6-v2)");
  cmd->add_option("TEXT", a->texts, "texts to embed")->required();
  cmd->add_flag("--json", a->json, "print {\"embedder\": ..., \"dim\": n, \"embeddings\": [[...], ...]}");
  AddThreadsOption(cmd, &a->threads);
  AddEmbedderPrecisionOption(cmd, &a->precision);
  cmd->add_option("--repeat", a->repeat,
                  "also time N more encoder calls per text and report ms per call on stderr")
      ->check(IntRange(0, 100000));
  return [a] {
    auto embedder = LoadEmbedder(a->embedder, a->threads, a->precision);
    const size_t dim = static_cast<size_t>(embedder->dim());
    std::vector<float> emb(a->texts.size() * dim);
    embedder->EmbedBatch(a->texts, emb.data());
    for (size_t i = 0; i < a->texts.size() && a->repeat > 0; ++i) {
      const auto pieces = embedder->model().Tokenize(a->texts[i]).size() - 2;
      std::vector<float> one(dim);
      const auto t0 = std::chrono::steady_clock::now();
      for (int r = 0; r < a->repeat; ++r) embedder->EmbedBatch({&a->texts[i], 1}, one.data());
      const double ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      std::fprintf(stderr, "text %zu: %zu word pieces, %.2f ms per embedding (%d calls)\n", i, pieces,
                   ms / a->repeat, a->repeat);
    }
    if (a->json) {
      nlohmann::json j = {{"embedder", embedder->identity().name},
                          {"sha256", embedder->identity().sha256},
                          {"precision", EncoderPrecisionName(embedder->model().precision())},
                          {"dim", dim},
                          {"embeddings", nlohmann::json::array()}};
      for (size_t i = 0; i < a->texts.size(); ++i)
        j["embeddings"].push_back(std::vector<float>(emb.begin() + i * dim, emb.begin() + (i + 1) * dim));
      std::printf("%s\n", Json(j).c_str());
      return 0;
    }
    for (size_t i = 0; i < a->texts.size(); ++i) {
      for (size_t j = 0; j < dim; ++j)
        std::printf("%s%.6f", j ? " " : "", static_cast<double>(emb[i * dim + j]));
      std::printf("\n");
    }
    return 0;
  };
}

RunFn AddRouteCommand(CLI::App& app) {
  struct Args {
    std::string router, embedder, text, precision = "auto";
    RoutingPolicyArgs policy;
    bool json = false;
    int threads = 0;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("route", "Print the adapter weights the router gives a text");
  cmd->add_option("--router", a->router, "router file made by `tokenlora router build`")->required();
  cmd->add_option("--embedder", a->embedder,
                  "the embedder the router was built with (default: models/all-MiniLM-L6-v2)");
  cmd->add_option("TEXT", a->text, "the (running) text to route")->required();
  a->policy.Add(cmd, "");
  cmd->add_option("--window", a->policy.window, "whole (the reference) or last:N word pieces")
      ->capture_default_str();
  cmd->add_flag("--json", a->json, "print {\"weights\": {task: w}, \"similarities\": {task: cos}, ...}");
  AddThreadsOption(cmd, &a->threads);
  AddEmbedderPrecisionOption(cmd, &a->precision);
  return [a] {
    RouterFile file = RouterFile::Load(a->router);
    const RoutingPolicy policy = a->policy.Make(file);
    const RouteWindow window = a->policy.Window();
    auto embedder = LoadEmbedder(a->embedder, a->threads, a->precision);
    Router router(std::move(file), a->router, *embedder, policy, window);
    const RouteResult r = router.Route(a->text);
    const auto& tasks = router.file().tasks;
    if (a->json) {
      nlohmann::json w = nlohmann::json::object(), s = nlohmann::json::object();
      for (size_t i = 0; i < tasks.size(); ++i) {
        w[tasks[i].name] = r.weights[i];
        s[tasks[i].name] = r.similarities[i];
      }
      std::printf("%s\n", Json({{"weights", w},
                                {"similarities", s},
                                {"policy", policy.Describe()},
                                {"window", window.Describe()}})
                              .c_str());
      return 0;
    }
    std::printf("%-16s %8s  %10s\n", "task", "weight", "similarity");
    for (size_t i = 0; i < tasks.size(); ++i) {
      std::printf("%-16s %8.4f  %10.4f\n", tasks[i].name.c_str(), static_cast<double>(r.weights[i]),
                  static_cast<double>(r.similarities[i]));
    }
    std::printf("policy: %s; window: %s%s\n", policy.Describe().c_str(), window.Describe().c_str(),
                SimilarityNote(router.file()).c_str());
    return 0;
  };
}

RunFn AddRouterCommand(CLI::App& app) {
  struct Args {
    std::string embedder, output, router, precision = "auto", check_precision = "int8";
    std::vector<std::string> tasks;
    RecordOptions records;
    PrototypeOptions prototypes;
    RoutingPolicyArgs policy;
    int threads = 0;
    bool json = false;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("router", "Build a router file from data sets, or measure one");
  cmd->require_subcommand(1);

  auto* build =
      cmd->add_subcommand("build", "Embed each task's records and write their centroids to a router file");
  build->add_option("--embedder", a->embedder,
                    "sentence-transformers directory (default: models/all-MiniLM-L6-v2)");
  build->add_option("--task", a->tasks,
                    std::string(kTaskHelp) + "; a NAME given again with another file or slice pools their "
                    "records into one task (e.g. ARC train + test, as the reference's centroid)")
      ->required();
  build->add_option("-o,--output", a->output, "router file to write (atomically)")->required();
  build->add_option("--prototypes", a->prototypes.k,
                    "prototypes per task: 1 = the paper's centroid alone (a version 1 file); K > 1 adds "
                    "the K clusters of spherical k-means over the task's embeddings (a version 2 file)")
      ->capture_default_str()
      ->check(IntRange(1, KMeansSettings::kMaxK));
  build->add_option("--seed", a->prototypes.seed, "seed of the k-means++ seeding (--prototypes K > 1)")
      ->capture_default_str()
      ->check(IntRange(0, std::numeric_limits<long long>::max()));
  build->add_option("--whiten", a->prototypes.whiten,
                    "beyond the paper: take cosines in the space whitened by the tasks' within-task covariance "
                    "plus LAMBDA x its mean eigenvalue on the diagonal (0.1 is a good start; large LAMBDA tends "
                    "to plain centring); writes a version 3 file. Default: off, the paper's plain cosines")
      ->type_name("LAMBDA")
      ->check(NumberRange(0, RouterWhitening::kMaxLambda, /*lo_exclusive=*/true));
  AddRecordOptions(build, &a->records);
  AddEmbeddingsCacheOption(build, &a->records);
  AddThreadsOption(build, &a->threads);
  AddEmbedderPrecisionOption(build, &a->precision);

  auto* eval = cmd->add_subcommand(
      "eval", "Route held-out prompts and report how often the top weight is their own task");
  eval->add_option("--router", a->router, "router file")->required();
  eval->add_option("--embedder", a->embedder,
                   "the embedder the router was built with (default: models/all-MiniLM-L6-v2)");
  eval->add_option("--task", a->tasks, std::string(kTaskHelp) + "; NAME must be a task of the router")
      ->required();
  a->policy.Add(eval, "");
  AddRecordOptions(eval, &a->records);
  AddEmbeddingsCacheOption(eval, &a->records);
  AddThreadsOption(eval, &a->threads);
  AddEmbedderPrecisionOption(eval, &a->precision);
  eval->add_flag("--json", a->json, "print the confusion matrix as JSON");

  auto* check = cmd->add_subcommand(
      "check-precision",
      "Embed and route data-set texts with the exact f32 encoder and with --embedder-precision (default int8): "
      "cosine of the embeddings, routing weight differences, same top task");
  check->add_option("--router", a->router, "router file whose centroids route the texts")->required();
  check->add_option("--embedder", a->embedder,
                    "the embedder the router was built with (default: models/all-MiniLM-L6-v2)");
  check->add_option("--task", a->tasks, kTaskHelp)->required();
  a->policy.Add(check, "");
  AddRecordOptions(check, &a->records);
  AddThreadsOption(check, &a->threads);
  check->add_option("--embedder-precision", a->check_precision, "the precision checked against f32")
      ->check(CLI::IsMember({"int8", "f32"}))
      ->capture_default_str();
  check->add_flag("--json", a->json, "print the per-text series' summary as JSON");

  return [a, build, eval, check] {
    std::vector<TaskSpec> specs;
    for (const std::string& t : a->tasks) specs.push_back(TaskSpec::Parse(t));
    if (build->parsed()) {
      CheckWritableOutput(a->output);  // before minutes of embedding: never lose the run
      auto embedder = LoadEmbedder(a->embedder, a->threads, a->precision);
      const auto t0 = std::chrono::steady_clock::now();
      const RouterFile file = BuildRouter(specs, *embedder, a->records, a->prototypes);
      file.Save(a->output);
      int64_t records = 0;
      for (const RouterTask& t : file.tasks) records += t.records;
      std::fprintf(
          stderr, "wrote %s (version %d): %zu tasks, %lld records, embedder %s (sha256 %.12s…), %s\n",
          a->output.c_str(), file.version(), file.tasks.size(), static_cast<long long>(records),
          file.embedder.name.c_str(),
          file.embedder.sha256.c_str(),
          FormatDuration(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count())
              .c_str());
      return 0;
    }
    RouterFile file = RouterFile::Load(a->router);
    const RoutingPolicy policy = a->policy.Make(file);
    if (check->parsed()) {
      auto reference = LoadEmbedder(a->embedder, a->threads, "f32");
      CheckEmbedderMatches(file, *reference, a->router);
      auto candidate = LoadEmbedder(a->embedder, a->threads, a->check_precision);
      const PrecisionComparison c = ComparePrecision(file, *reference, *candidate, policy, specs, a->records);
      if (a->json) {
        using Q = PrecisionComparison;
        std::printf("%s\n", Json({{"reference", c.reference},
                                  {"candidate", c.candidate},
                                  {"policy", policy.Describe()},
                                  {"texts", c.Texts()},
                                  {"cosine", {{"min", Q::Quantile(c.cosine, 0)}, {"p1", Q::Quantile(c.cosine, 0.01)},
                                              {"median", Q::Quantile(c.cosine, 0.5)}}},
                                  {"weight_diff", {{"max", Q::Quantile(c.weight_diff, 1)},
                                                   {"p99", Q::Quantile(c.weight_diff, 0.99)}}},
                                  {"share_cosine_0999", c.ShareCosineAtLeast(0.999)},
                                  {"share_weights_001", c.ShareWeightsWithin(0.01)},
                                  {"share_same_top", c.ShareSameTop()},
                                  {"near_ties", c.Texts() - c.TextsApartFromTies(kNearTieGap)},
                                  {"share_weights_001_apart_from_ties",
                                   c.ShareWeightsWithinApartFromTies(0.01, kNearTieGap)},
                                  {"share_same_top_apart_from_ties", c.ShareSameTopApartFromTies(kNearTieGap)}})
                                 .c_str());
      } else {
        std::printf("policy: %s\n%s", policy.Describe().c_str(), FormatPrecisionComparison(c).c_str());
      }
      return 0;
    }
    auto embedder = LoadEmbedder(a->embedder, a->threads, a->precision);
    CheckEmbedderMatches(file, *embedder, a->router);
    const RouterEval ev = EvaluateRouter(file, *embedder, policy, specs, a->records);
    if (a->json) {
      nlohmann::json rows = nlohmann::json::object();
      for (size_t r = 0; r < ev.eval_tasks.size(); ++r) {
        nlohmann::json row = nlohmann::json::object();
        for (size_t c = 0; c < ev.tasks.size(); ++c) row[ev.tasks[c]] = ev.confusion[r][c];
        rows[ev.eval_tasks[r]] = {{"top_weight", row},
                                  {"prompts", ev.Total(r)},
                                  {"own_task", ev.Correct(r)},
                                  {"skipped", ev.skipped[r]}};
      }
      std::printf(
          "%s\n",
          Json({{"policy", policy.Describe()}, {"accuracy", ev.Accuracy()}, {"tasks", rows}}).c_str());
    } else {
      std::printf("policy: %s%s\n%s", policy.Describe().c_str(), SimilarityNote(file).c_str(),
                  FormatRouterEval(ev).c_str());
    }
    return 0;
  };
}

}  // namespace tokenlora::cli
