#include <cstdio>
#include <memory>

#include "commands.h"
#include "io/inspect.h"

namespace tokenlora::cli {

RunFn AddInspectCommand(CLI::App& app) {
  auto* cmd = app.add_subcommand("inspect", "Print the metadata and tensor table of a GGUF or safetensors file");
  auto path = std::make_shared<std::string>();
  cmd->add_option("FILE", *path, "a .gguf file, a .safetensors file, or a model directory")->required();
  return [path] {
    std::fputs(InspectModelFile(*path).c_str(), stdout);
    return 0;
  };
}

}  // namespace tokenlora::cli
