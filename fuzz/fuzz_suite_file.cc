// libFuzzer target: eval::ParseSuite over arbitrary text (the suite files of
// `tokenlora eval --suite FILE.json`). Only InputError may escape (or JSON's
// own parse error, before the parser sees anything); what parses must have
// tasks, configurations with unique valid names, no configuration both
// fixed and routed, and claims that name existing configurations.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>

#include "core/error.h"
#include "eval/suite.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tokenlora;
  const nlohmann::json j =
      nlohmann::json::parse(reinterpret_cast<const char*>(data), reinterpret_cast<const char*>(data) + size, nullptr,
                            /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;
  eval::Suite suite;
  try {
    suite = eval::ParseSuite(j, "fuzz/suite.json", "/base");
  } catch (const InputError&) {
    return 0;  // the expected outcome for malformed input
  }
  if (suite.tasks.empty() || suite.configurations.empty() || suite.decodings.empty()) __builtin_trap();
  if (suite.limit < 1 || suite.sampling.seeds.empty() || !(suite.sampling.temperature > 0)) __builtin_trap();
  std::set<std::string> names;
  for (const eval::SuiteConfiguration& c : suite.configurations) {
    if (c.name.empty() || !names.insert(c.name).second) __builtin_trap();
    if (c.name.find('/') != std::string::npos || c.name == "." || c.name == "..") __builtin_trap();
    if (c.routed() && !c.mix.empty()) __builtin_trap();
    if (c.max_total < 0) __builtin_trap();
  }
  for (const eval::SuiteTask& t : suite.tasks) {
    if (t.every < 1 || t.data.empty()) __builtin_trap();
  }
  if (suite.claims) {
    const eval::SuiteClaims& c = *suite.claims;
    if (suite.Find(c.base) == nullptr || suite.Find(c.routed) == nullptr) __builtin_trap();
    if (c.every_k.count(c.best_k) == 0) __builtin_trap();
    for (const auto& [k, name] : c.every_k) {
      if (k < 1 || suite.Find(name) == nullptr) __builtin_trap();
    }
    for (const auto& [task, name] : c.own_adapter) {
      if (suite.Find(name) == nullptr) __builtin_trap();
    }
  }
  return 0;
}
