#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "model/model.h"

namespace tokenlora::cli {

RunFn AddTokenizeCommand(CLI::App& app) {
  struct Args {
    std::string model, text;
    bool json = false, no_special = false, bos = false;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("tokenize", "Show the token ids and pieces of a text");
  cmd->add_option("-m,--model", a->model, "model (.gguf file or HF directory); default: the built-in model");
  cmd->add_option("TEXT", a->text, "text to tokenize")->required();
  cmd->add_flag("--json", a->json, "print {\"ids\": [...], \"pieces\": [...]}");
  cmd->add_flag("--no-special", a->no_special, "treat special-token text like <|im_start|> as plain text");
  cmd->add_flag("--bos", a->bos, "prepend BOS when the model asks for it");
  return [a] {
    auto model = Model::Load(a->model.empty() ? DefaultModelPath() : a->model);
    const Tokenizer& tok = model->tokenizer();
    a->text = PromptUtf8(a->text, "TEXT");
    const auto ids = a->bos ? tok.EncodeWithBos(a->text, !a->no_special) : tok.Encode(a->text, !a->no_special);
    if (a->json) {
      nlohmann::json j;
      j["ids"] = ids;
      nlohmann::json pieces = nlohmann::json::array();
      for (int32_t id : ids) pieces.push_back(tok.TokenText(id));
      j["pieces"] = pieces;
      std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    } else {
      for (int32_t id : ids) {
        nlohmann::json piece = tok.TokenBytes(id);
        std::printf("%6d  %s\n", id, piece.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
      }
      std::printf("%zu tokens\n", ids.size());
    }
    return 0;
  };
}

}  // namespace tokenlora::cli
