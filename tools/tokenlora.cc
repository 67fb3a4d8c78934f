// tokenlora: one base model, many LoRA adapters, mixed token by token.
#include <cstdio>
#include <exception>
#include <map>
#include <string>

#include "commands.h"
#include "core/error.h"

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
    for (const CLI::App* sub = &app;;) {
      const auto parsed = sub->get_subcommands();
      if (parsed.empty()) break;
      sub = parsed.front();
      command += (command.empty() ? "" : " ") + sub->get_name();
    }
    std::fprintf(stderr, "tokenlora: error: %s%s\n", command.empty() ? "" : (command + ": ").c_str(), e.what());
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
