#include "io/json_text.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>

namespace tokenlora {
namespace {

std::string Nested(int depth) { return std::string(depth, '[') + std::string(depth, ']'); }

TEST(JsonNesting, CountsBracketsOutsideStringsOnly) {
  EXPECT_EQ(JsonNestingExceededAt(R"({"a": [1, {"b": []}]})", 4), std::string_view::npos);
  EXPECT_EQ(JsonNestingExceededAt(R"({"a": [1, {"b": []}]})", 3), 16u);  // the innermost '['
  EXPECT_EQ(JsonNestingExceededAt(R"({"a": [1, {"b": []}]})", 2), 10u);  // the '{' inside the list
  // Brackets and escaped quotes inside strings are text.
  EXPECT_EQ(JsonNestingExceededAt(R"(["[[[[", "\"[[[", "\\", "{{{"])", 1), std::string_view::npos);
  EXPECT_EQ(JsonNestingExceededAt(Nested(512), 512), std::string_view::npos);
  EXPECT_EQ(JsonNestingExceededAt(Nested(513), 512), 512u);
}

TEST(JsonNesting, ParseRefusesDeepTextWithAParseErrorAndKeepsEverythingElse) {
  const nlohmann::json j = ParseBoundedJson(R"({"a": [1, 2, {"b": "]]]"}]})");
  EXPECT_EQ(j["a"][2]["b"], "]]]");
  EXPECT_EQ(ParseBoundedJson<nlohmann::ordered_json>(R"({"z": 1, "a": 2})").begin().key(), "z");
  EXPECT_EQ(ParseBoundedJson(Nested(kMaxJsonDepth)).size(), 1u);
  try {
    ParseBoundedJson(Nested(100000));
    FAIL() << "no exception";
  } catch (const nlohmann::json::parse_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("at byte 513"), std::string::npos) << what;
    EXPECT_NE(what.find("nested more than 512 deep"), std::string::npos) << what;
  }
  EXPECT_TRUE(ParseBoundedJson(Nested(100000), nullptr, /*allow_exceptions=*/false).is_discarded());
  EXPECT_THROW(ParseBoundedJson("[1,"), nlohmann::json::parse_error);  // syntax errors as before
}

// What the bound prevents: a value nested this deep overflows a thread's
// stack when nlohmann copies or dumps it (both recurse), so the deepest
// accepted value must copy and dump on a small stack.
TEST(JsonNesting, TheDeepestAcceptedValueCopiesAndDumpsOnASmallStack) {
  const nlohmann::json j = ParseBoundedJson(Nested(kMaxJsonDepth));
  std::string dumped;
  std::thread t([&] {
    const nlohmann::json copy = j;  // NOLINT(performance-unnecessary-copy-initialization): the point
    dumped = copy.dump();
  });
  t.join();
  EXPECT_EQ(dumped, Nested(kMaxJsonDepth));
}

}  // namespace
}  // namespace tokenlora
