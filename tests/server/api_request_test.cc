// The API's pure parts: request JSON -> structs, errors in OpenAI's shape.
#include "server/api_request.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace tokenlora::server {
namespace {

using nlohmann::json;

// The ApiError a body raises (status 0 when it parses).
ApiError ErrorOf(const std::string& body, bool chat) {
  try {
    ParseCompletionRequest(body, chat);
  } catch (const ApiError& e) {
    return e;
  }
  return ApiError(0, "", "");
}

TEST(ApiRequest, CompletionFieldsAndDefaults) {
  const CompletionRequest r = ParseCompletionRequest(
      R"({"model": "m", "prompt": "hi", "max_tokens": 5, "temperature": 0, "top_p": 0.5, "stop": ["\n", "."],
          "seed": 7, "n": 3, "stream": true, "stream_options": {"include_usage": true}, "user": "u",
          "logprobs": null, "presence_penalty": 0})",
      false);
  EXPECT_EQ(r.model, "m");
  ASSERT_EQ(r.prompts.size(), 1u);
  EXPECT_EQ(r.prompts[0], "hi");
  EXPECT_EQ(*r.max_tokens, 5);
  EXPECT_EQ(r.temperature, 0.0f);
  EXPECT_EQ(r.top_p, 0.5f);
  EXPECT_EQ(r.stop, (std::vector<std::string>{"\n", "."}));
  EXPECT_EQ(*r.seed, 7u);
  EXPECT_EQ(r.n, 3);
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
  const CompletionRequest d = ParseCompletionRequest(R"({"model": "m", "prompt": ["a", "b"]})", false);
  EXPECT_EQ(d.prompts.size(), 2u);
  EXPECT_FALSE(d.max_tokens.has_value());
  EXPECT_EQ(d.temperature, 1.0f);  // OpenAI's default
  EXPECT_EQ(d.n, 1);
  EXPECT_FALSE(d.seed.has_value());
}

TEST(ApiRequest, ChatMessages) {
  const CompletionRequest r = ParseCompletionRequest(
      R"({"model": "m", "messages": [{"role": "system", "content": "be brief"},
          {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}],
          "max_completion_tokens": 9})",
      true);
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(r.messages[0].role, "system");
  EXPECT_EQ(r.messages[1].content, "ab");
  EXPECT_EQ(*r.max_tokens, 9);
  EXPECT_EQ(ErrorOf(R"({"model": "m", "messages": []})", true).param(), "messages");
  EXPECT_EQ(ErrorOf(R"({"model": "m", "messages": [{"role": "robot", "content": "x"}]})", true).param(), "messages[0].role");
}

TEST(ApiRequest, ErrorsNameTheField) {
  EXPECT_EQ(ErrorOf("{not json", false).code(), "invalid_json");
  EXPECT_EQ(ErrorOf("[1]", false).code(), "invalid_json");
  // 100,000 nested lists parse, but copying or dumping them would overflow
  // the HTTP thread's stack: refused at parse time.
  const ApiError deep = ErrorOf(R"({"model": "m", "prompt": )" + std::string(100000, '[') + std::string(100000, ']') + "}", false);
  EXPECT_EQ(deep.code(), "invalid_json");
  EXPECT_NE(std::string(deep.what()).find("nested more than 512 deep"), std::string::npos) << deep.what();
  EXPECT_EQ(ErrorOf(R"({"prompt": "x"})", false).param(), "model");
  EXPECT_EQ(ErrorOf(R"({"model": "m"})", false).param(), "prompt");
  EXPECT_EQ(ErrorOf(R"({"model": "m", "prompt": 5})", false).code(), "invalid_type");
  EXPECT_EQ(ErrorOf(R"({"model": "m", "prompt": "x", "max_tokens": "5"})", false).param(), "max_tokens");
  EXPECT_EQ(ErrorOf(R"({"model": "m", "prompt": "x", "max_tokens": -1})", false).code(), "invalid_value");
  EXPECT_EQ(ErrorOf(R"({"model": "m", "prompt": "x", "temperature": 3})", false).param(), "temperature");
  EXPECT_EQ(ErrorOf(R"({"model": "m", "prompt": "x", "n": 0})", false).param(), "n");
  EXPECT_EQ(ErrorOf(R"({"model": "m", "prompt": "x", "stop": ["a", "b", "c", "d", "e"]})", false).param(), "stop");
  EXPECT_EQ(ErrorOf(R"({"model": "m", "prompt": "x", "bogus": 1})", false).param(), "bogus");
  EXPECT_EQ(ErrorOf(R"({"model": "m", "prompt": "x", "presence_penalty": 2.5})", false).param(), "presence_penalty");
  EXPECT_EQ(ErrorOf(R"({"model": "m", "prompt": "x", "frequency_penalty": -3})", false).param(), "frequency_penalty");
  EXPECT_EQ(ErrorOf(R"({"model": "m", "prompt": "x", "frequency_penalty": "1"})", false).code(), "invalid_type");
  {
    const CompletionRequest pen =
        ParseCompletionRequest(R"({"model": "m", "prompt": "x", "presence_penalty": 0.5, "frequency_penalty": -2})", false);
    EXPECT_FLOAT_EQ(pen.presence_penalty, 0.5f);
    EXPECT_FLOAT_EQ(pen.frequency_penalty, -2.0f);
  }
  EXPECT_EQ(ErrorOf(R"({"model": "m", "prompt": "x", "logprobs": 9})", false).param(), "logprobs");
  EXPECT_EQ(ParseCompletionRequest(R"({"model": "m", "prompt": "x", "logprobs": 2})", false).logprobs, 2);
  EXPECT_EQ(ParseCompletionRequest(R"({"model": "m", "prompt": "x"})", false).logprobs, -1);
  EXPECT_EQ(ParseCompletionRequest(R"({"model": "m", "messages": [{"role": "user", "content": "x"}], "logprobs": true,
                                       "top_logprobs": 3})", true).logprobs, 3);
  EXPECT_EQ(ErrorOf(R"({"model": "m", "messages": [{"role": "user", "content": "x"}], "top_logprobs": 3})", true).param(),
            "top_logprobs");
  EXPECT_EQ(ErrorOf(R"({"model": "m", "prompt": "x", "stream_options": {"include_usage": true}})", false).param(),
            "stream_options");
  const ApiError e = ErrorOf(R"({"model": "m", "prompt": "x", "top_p": "high"})", false);
  EXPECT_EQ(e.status(), 400);
  EXPECT_EQ(e.type(), "invalid_request_error");
  EXPECT_NE(std::string(e.what()).find("top_p"), std::string::npos);
}

TEST(ApiRequest, RoutingExtension) {
  const CompletionRequest r =
      ParseCompletionRequest(R"({"model": "routed", "prompt": "x", "routing": {"every": 4, "kv_policy": "recompute"},
                                 "routing_trace": true})",
                             false);
  EXPECT_TRUE(r.has_routing);
  EXPECT_EQ(*r.routing.every, 4);
  EXPECT_EQ(*r.routing.kv_policy, KvPolicy::kRecompute);
  EXPECT_TRUE(r.routing_trace);
  const CompletionRequest w =
      ParseCompletionRequest(R"({"model": "m", "prompt": "x", "routing": {"weights": {"a": 0.5, "b": 1}}})", false);
  ASSERT_TRUE(w.routing.weights.has_value());
  EXPECT_EQ(w.routing.weights->size(), 2u);
  EXPECT_EQ(ErrorOf(R"({"model": "m", "prompt": "x", "routing": {"every": 0}})", false).param(), "routing.every");
  EXPECT_EQ(ErrorOf(R"({"model": "m", "prompt": "x", "routing": {"kv_policy": "never"}})", false).param(),
            "routing.kv_policy");
  const CompletionRequest p = ParseCompletionRequest(
      R"({"model": "routed", "prompt": "x", "routing": {"policy": "softmax", "temperature": 0.05, "window": "last:16"}})",
      false);
  EXPECT_EQ(*p.routing.policy, "softmax");
  EXPECT_FLOAT_EQ(*p.routing.temperature, 0.05f);
  EXPECT_EQ(p.routing.window->last_pieces, 16);
  EXPECT_EQ(ErrorOf(R"({"model": "m", "prompt": "x", "routing": {"policy": "loudest"}})", false).param(),
            "routing.policy");
  EXPECT_EQ(ErrorOf(R"({"model": "m", "prompt": "x", "routing": {"window": "last:0"}})", false).param(),
            "routing.window");
  EXPECT_EQ(ErrorOf(R"({"model": "m", "prompt": "x", "routing": {"temperature": -1}})", false).param(),
            "routing.temperature");
  const CompletionRequest sc =
      ParseCompletionRequest(R"({"model": "m", "prompt": "x", "routing": {"score": "softmax:0.02"}})", false);
  ASSERT_TRUE(sc.routing.score.has_value());
  EXPECT_EQ(sc.routing.score->Describe(), "softmax:0.02");
  EXPECT_TRUE(sc.routing.wants_router());
  EXPECT_EQ(ErrorOf(R"({"model": "m", "prompt": "x", "routing": {"score": "best"}})", false).param(), "routing.score");
  EXPECT_EQ(ErrorOf(R"({"model": "m", "prompt": "x", "routing": {"score": 3}})", false).param(), "routing.score");
  const CompletionRequest sub = ParseCompletionRequest(
      R"({"model": "m", "prompt": "x", "routing": {"adapters": ["a", "b"], "mix_mode": "peft04-linear"}})", false);
  EXPECT_EQ(*sub.routing.adapters, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(*sub.routing.mix_mode, MixMode::kPeft04Linear);
  EXPECT_TRUE(sub.routing.wants_router());
  const CompletionRequest mode_only =
      ParseCompletionRequest(R"({"model": "m", "prompt": "x", "routing": {"mix_mode": "exact"}})", false);
  EXPECT_FALSE(mode_only.routing.wants_router());  // keeps the mixture `model` selects
  EXPECT_EQ(ErrorOf(R"({"model": "m", "prompt": "x", "routing": {"mix_mode": "cat"}})", false).param(),
            "routing.mix_mode");
  EXPECT_EQ(ErrorOf(R"({"model": "m", "prompt": "x", "routing": {"adapters": "a"}})", false).param(),
            "routing.adapters");
  EXPECT_EQ(ErrorOf(R"({"model": "m", "prompt": "x", "routing": {"adapters": ["a", "a"]}})", false).param(),
            "routing.adapters");
  EXPECT_EQ(ErrorOf(R"({"model": "m", "prompt": "x", "routing": {"weights": {"a": 1}, "adapters": ["a"]}})", false)
                .param(),
            "routing.weights");
  EXPECT_EQ(ErrorOf(R"({"model": "m", "prompt": "x", "routing": {"weights": {"a": 1}, "every": 2}})", false).param(),
            "routing.weights");
}

TEST(ApiRequest, ErrorBodyHasOpenAiShape) {
  const json j = json::parse(ErrorBody(BadRequest("bad n", "n")));
  EXPECT_EQ(j["error"]["message"], "bad n");
  EXPECT_EQ(j["error"]["type"], "invalid_request_error");
  EXPECT_EQ(j["error"]["param"], "n");
  EXPECT_EQ(j["error"]["code"], "invalid_value");
  const json k = json::parse(ErrorBody(ApiError(401, "no key", "invalid_request_error")));
  EXPECT_TRUE(k["error"]["param"].is_null());
  EXPECT_TRUE(k["error"]["code"].is_null());
}

TEST(ApiRequest, Embeddings) {
  const EmbeddingRequest r = ParseEmbeddingRequest(R"({"model": "e", "input": ["a", "b"], "encoding_format": "base64"})");
  EXPECT_EQ(r.inputs.size(), 2u);
  EXPECT_TRUE(r.base64);
  EXPECT_THROW(ParseEmbeddingRequest(R"({"model": "e", "input": [1, 2]})"), ApiError);
  EXPECT_THROW(ParseEmbeddingRequest(R"({"model": "e"})"), ApiError);
}

TEST(ApiRequest, FinishReason) {
  EXPECT_STREQ(FinishReason("eos"), "stop");
  EXPECT_STREQ(FinishReason("stop_string"), "stop");
  EXPECT_STREQ(FinishReason("length"), "length");
  EXPECT_STREQ(FinishReason("context_full"), "length");
}

}  // namespace
}  // namespace tokenlora::server
