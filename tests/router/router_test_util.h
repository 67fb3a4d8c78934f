// Shared helpers for tests/router: where the MiniLM files are, and the golden
// files of tests/golden/router (made by scripts/make_golden_router.py).
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"

namespace tokenlora::testing {

// models/all-MiniLM-L6-v2 under the source tree (scripts/fetch-models puts it
// there), or "" when its model.safetensors is absent: tests that need the
// weights GTEST_SKIP then.
std::string MiniLmDir();
// A directory with the MiniLM tokenizer.json and vocab.txt: the model
// directory, else the data folder's copy (testing::DataDir); "" when neither exists.
std::string MiniLmTokenizerDir();

// A golden text: {"text": s} inline, {"ref": [file under the data folder,
// 0-based line, "field.path"]}, or {"refs": [ref, ...], "sep": s} joined;
// nullopt when the data is absent.
std::optional<std::string> GoldenText(const nlohmann::json& row);

// Little-endian float16 / float32 file as floats.
std::vector<float> ReadF16File(const std::string& path);
std::vector<float> ReadF32File(const std::string& path);

double Cosine(const float* a, const float* b, size_t n);

// The JSON `text` with `edit` applied, written out again (a router file
// damaged on purpose).
std::string EditedJson(const std::string& text, const std::function<void(nlohmann::json&)>& edit);
// RouterFile::Parse refuses `text` (named "r.json") with an InputError
// containing `needle`.
void ExpectRouterFileRefused(const std::string& text, const std::string& needle);

// fn() throws an InputError whose message contains `needle`.
template <typename Fn>
void ExpectInputError(Fn&& fn, const std::string& needle) {
  try {
    fn();
    ADD_FAILURE() << "expected an InputError containing: " << needle;
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

}  // namespace tokenlora::testing
