#include "generate/generator.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "core/error.h"
#include "test_util.h"
#include "tiny_model.h"

namespace tokenlora {
namespace {

class GeneratorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::TempDir();
    model_ = Model::Load(testing::WriteTinyModel({"llama", "gguf", DType::kQ8_0}, dir_));
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  GenerateResult Run(const GenerateOptions& options, std::string* streamed = nullptr) {
    ThreadPool pool(2);
    Generator g(*model_, pool);
    return g.Generate(testing::TinyPromptIds(), options, [streamed](const std::string& piece) {
      if (streamed != nullptr) *streamed += piece;
      return true;
    });
  }

  std::string dir_;
  std::unique_ptr<Model> model_;
};

TEST_F(GeneratorTest, StopsAtTokenLimitAndStreamsEverything) {
  GenerateOptions o;
  o.max_new_tokens = 12;
  o.stop_at_eos = false;
  std::string streamed;
  const GenerateResult r = Run(o, &streamed);
  EXPECT_EQ(r.output_ids.size(), 12u);
  EXPECT_EQ(r.stop_reason, "length");
  // Random weights emit stray UTF-8 bytes: the stream turns those into
  // U+FFFD, so compare the stream with the result rather than a raw decode.
  EXPECT_EQ(streamed, r.text);
  EXPECT_FALSE(r.text.empty());
}

TEST_F(GeneratorTest, SameSeedSameText) {
  GenerateOptions o;
  o.max_new_tokens = 16;
  o.stop_at_eos = false;
  o.sampling.temperature = 1.0f;
  o.sampling.seed = 99;
  const auto a = Run(o), b = Run(o);
  EXPECT_EQ(a.output_ids, b.output_ids);
  o.sampling.seed = 100;
  EXPECT_NE(Run(o).output_ids, a.output_ids);
}

TEST_F(GeneratorTest, StopStringCutsTheOutput) {
  GenerateOptions o;
  o.max_new_tokens = 16;
  o.stop_at_eos = false;
  const GenerateResult full = Run(o);
  ASSERT_GE(full.text.size(), 6u);
  // Stop at a piece of text from the middle of the greedy output.
  const size_t at = full.text.size() / 2;
  const std::string stop = full.text.substr(at, 3);
  o.stop_strings = {stop};
  std::string streamed;
  const GenerateResult cut = Run(o, &streamed);
  EXPECT_EQ(cut.stop_reason, "stop_string");
  EXPECT_EQ(cut.text, full.text.substr(0, full.text.find(stop)));
  EXPECT_EQ(streamed, cut.text);
}

TEST_F(GeneratorTest, CallerCanStop) {
  GenerateOptions o;
  o.max_new_tokens = 16;
  o.stop_at_eos = false;
  ThreadPool pool(1);
  Generator g(*model_, pool);
  int pieces = 0;
  const GenerateResult r = g.Generate(testing::TinyPromptIds(), o, [&](const std::string&) {
    return ++pieces < 3;
  });
  EXPECT_LT(r.output_ids.size(), 16u);
}

TEST_F(GeneratorTest, BadRequestsAreInputErrors) {
  GenerateOptions o;
  o.ctx_size = 4;  // shorter than the prompt
  EXPECT_THROW(Run(o), InputError);
  ThreadPool pool(1);
  Generator g(*model_, pool);
  EXPECT_THROW(g.Generate({}, GenerateOptions{}), InputError);
  EXPECT_THROW(g.Generate({100000}, GenerateOptions{}), InputError);
  o = {};
  o.stop_strings = {""};
  EXPECT_THROW(Run(o), InputError);
}


// GenerateOptions::retokenize is the reference code's loop: every step
// decodes prompt + output, tokenizes it from scratch and runs it. Here that
// loop is written out with fresh one-token generations on the re-encoded
// ids; the sequence (which re-runs the text only when its ids change) must
// pick the same tokens. The tiny model's random tokens re-merge often.
TEST_F(GeneratorTest, RetokenizePicksWhatTheReferenceLoopPicks) {
  const Tokenizer& tok = model_->tokenizer();
  // The prompt spelled one character per token, which its first
  // re-tokenization merges: the ids change, the text is run again.
  const std::string text = tok.Decode(testing::TinyPromptIds(), true);
  std::vector<int32_t> prompt = tok.EncodeWithBos("", false);
  for (const char c : text) {
    for (const int32_t id : tok.Encode(std::string(1, c), false)) prompt.push_back(id);
  }
  ASSERT_NE(prompt, tok.EncodeWithBos(text, false)) << "the tiny tokenizer merges nothing";
  GenerateOptions o;
  o.max_new_tokens = 24;
  o.stop_at_eos = false;
  o.retokenize = true;
  ThreadPool pool(2);
  Generator g(*model_, pool);
  const GenerateResult r = g.Generate(prompt, o);
  EXPECT_GT(r.recomputed_tokens, 0) << "no re-tokenization changed the ids: the test does not test it";

  std::vector<int32_t> ids = prompt, expected;
  GenerateOptions one;
  one.max_new_tokens = 1;
  one.stop_at_eos = false;
  while (expected.size() < r.output_ids.size()) {
    const GenerateResult step = g.Generate(ids, one);
    ASSERT_EQ(step.output_ids.size(), 1u);
    expected.push_back(step.output_ids[0]);
    ids.push_back(step.output_ids[0]);
    ids = tok.EncodeWithBos(tok.Decode(ids, true), false);
  }
  EXPECT_EQ(r.output_ids, expected);
}

}  // namespace
}  // namespace tokenlora
