// `tokenlora quantize`: re-quantize a GGUF model (e.g. Q4_1 -> Q4_0).
#include <cstdio>
#include <memory>

#include "commands.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "model/requantize.h"
#include "tensor/dtype.h"

namespace tokenlora::cli {

RunFn AddQuantizeCommand(CLI::App& app) {
  struct Args {
    std::string in, out, type;
    int threads = 0;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("quantize", "Write a GGUF model with its 2-D weights in another type");
  cmd->add_option("MODEL", a->in, "input .gguf file")->required()->check(CLI::ExistingFile);
  cmd->add_option("-o,--output", a->out, "output .gguf file (written atomically)")->required();
  cmd->add_option("--type", a->type, "target type: f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q5_k, q6_k")
      ->required();
  AddThreadsOption(cmd, &a->threads);
  return [a] {
    const auto type = DTypeFromName(a->type);
    if (!type || *type == DType::kI32) {
      throw InputError("quantize --type: unknown weight type '" + a->type +
                       "'; expected f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q5_k or q6_k");
    }
    CheckWritableOutput(a->out);
    ThreadPool pool(a->threads > 0 ? a->threads : DefaultThreads());
    const RequantizeResult r = RequantizeGguf(a->in, a->out, *type, pool);
    std::fprintf(stderr, "%s: %lld tensors as %s, %lld kept; tensor data %.1f MiB -> %.1f MiB\n", a->out.c_str(),
                 static_cast<long long>(r.converted), std::string(Name(*type)).c_str(),
                 static_cast<long long>(r.kept), static_cast<double>(r.bytes_in) / (1 << 20),
                 static_cast<double>(r.bytes_out) / (1 << 20));
    return 0;
  };
}

}  // namespace tokenlora::cli
