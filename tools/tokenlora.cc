// tokenlora: one base model, many LoRA adapters, mixed token by token.
#include <algorithm>
#include <cstdio>
#include <exception>
#include <map>
#include <string>
#include <vector>

#include "commands.h"
#include "core/error.h"

namespace {

// Levenshtein distance between two option names.
size_t EditDistance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// "unknown option '--temperature' (did you mean --temp?)" for the first
// leftover argument of `command` that looks like an option, or "" when none
// does (CLI11's own message then says which arguments were not expected).
std::string UnknownOptionMessage(const CLI::App& command) {
  for (const std::string& arg : command.remaining()) {
    if (arg.size() < 2 || arg[0] != '-' || (arg[1] >= '0' && arg[1] <= '9') || arg[1] == '.') continue;
    const std::string given = arg.substr(0, arg.find('='));
    std::string best;
    size_t best_distance = 0;
    for (const CLI::Option* opt : command.get_options()) {
      for (const std::string& name : opt->get_lnames()) {
        const std::string candidate = "--" + name;
        // A prefix either way (--temp for --temperature, --adapter for
        // --adapters) counts as close as one edit.
        const bool prefix = candidate.rfind(given, 0) == 0 || given.rfind(candidate, 0) == 0;
        const size_t d = prefix ? 1 : EditDistance(given, candidate);
        if (best.empty() || d < best_distance) best = candidate, best_distance = d;
      }
    }
    std::string message = "unknown option '" + given + "'";
    if (!best.empty() && best_distance <= std::max<size_t>(2, given.size() / 3)) message += " (did you mean " + best + "?)";
    return message;
  }
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tokenlora — serve one base model with a library of LoRA adapters mixed token by token"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "tokenlora 0.1.0");
  std::map<CLI::App*, tokenlora::cli::RunFn> commands;
  auto add = [&](tokenlora::cli::RunFn (*fn)(CLI::App&)) {
    const size_t before = app.get_subcommands({}).size();
    tokenlora::cli::RunFn run = fn(app);
    commands[app.get_subcommands({})[before]] = std::move(run);
  };
  add(tokenlora::cli::AddGenerateCommand);
  add(tokenlora::cli::AddInspectCommand);
  add(tokenlora::cli::AddTokenizeCommand);
  add(tokenlora::cli::AddBenchCommand);
  add(tokenlora::cli::AddEmbedCommand);
  add(tokenlora::cli::AddRouteCommand);
  add(tokenlora::cli::AddRouterCommand);
  add(tokenlora::cli::AddMergeCommand);
  add(tokenlora::cli::AddConvertAdapterCommand);
  add(tokenlora::cli::AddQuantizeCommand);
  add(tokenlora::cli::AddTrainCommand);
  add(tokenlora::cli::AddEvalCommand);
  add(tokenlora::cli::AddServeCommand);
  if (argc > 1 && argv[1][0] != '-') {
    bool known = false;
    std::string names;
    for (const CLI::App* sub : app.get_subcommands({})) {
      known = known || sub->get_name() == argv[1];
      names += (names.empty() ? "" : ", ") + sub->get_name();
    }
    if (!known) {
      std::fprintf(stderr, "tokenlora: error: unknown command '%s' (commands: %s)\n", argv[1], names.c_str());
      return 2;
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // One line in the house style (prefix, the command, the flag, expected vs
    // got), then where to find the usage.
    std::string command;
    const CLI::App* deepest = &app;  // the (sub)command whose flags were being parsed
    for (;;) {
      const auto parsed = deepest->get_subcommands();
      if (parsed.empty()) break;
      deepest = parsed.front();
      command += (command.empty() ? "" : " ") + deepest->get_name();
    }
    const std::string unknown =
        dynamic_cast<const CLI::ExtrasError*>(&e) != nullptr ? UnknownOptionMessage(*deepest) : std::string();
    std::fprintf(stderr, "tokenlora: error: %s%s\n", command.empty() ? "" : (command + ": ").c_str(),
                 unknown.empty() ? e.what() : unknown.c_str());
    std::fprintf(stderr, "Run 'tokenlora %s --help' for usage.\n", command.empty() ? "COMMAND" : command.c_str());
    return 2;
  }
  try {
    for (auto& [sub, run] : commands) {
      if (sub->parsed()) return run();
    }
    return 2;
  } catch (const tokenlora::InputError& e) {
    std::fprintf(stderr, "tokenlora: error: %s\n", e.what());
    return 2;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "tokenlora: error: out of memory (try a smaller --ctx-size)\n");
    return 1;
  }
}
