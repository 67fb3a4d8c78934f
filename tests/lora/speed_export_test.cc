// Writes the random adapters of the decode-speed measurement (issue 4: four
// r=64, alpha=16 adapters on q_proj+v_proj of the default model) as PEFT
// directories; does nothing in a normal run.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "lora_test_util.h"
#include "model/model.h"
#include "test_util.h"

namespace tokenlora {
namespace {

TEST(LoraSpeedExport, WriteRandomAdapters) {
  const char* dir = std::getenv("TOKENLORA_LORA_SPEED_EXPORT_DIR");
  if (dir == nullptr) GTEST_SKIP() << "set TOKENLORA_LORA_SPEED_EXPORT_DIR to write the speed-test adapters";
  const std::string model_path = testing::DefaultModelPath();
  ASSERT_FALSE(model_path.empty()) << "run scripts/fetch-models first";
  auto model = Model::Load(model_path);
  for (int i = 0; i < 4; ++i) {
    const std::string name = "r64_" + std::to_string(i);
    const LoraAdapter a = testing::RandomAdapter(
        model->config(), name, 64, 16.0f, {ModuleKind::kQ, ModuleKind::kV}, 100 + static_cast<uint64_t>(i));
    WritePeftAdapter(a, model->config(), std::string(dir) + "/" + name);
  }
}

}  // namespace
}  // namespace tokenlora
