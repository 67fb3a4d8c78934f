// Router inputs and files: SHA-256, record templates (against the reference's
// formats), task specs and record slices, JSONL streaming with file:line
// errors, and the router file format.
#include <gtest/gtest.h>

#include <fstream>

#include "core/error.h"
#include "core/mapped_file.h"
#include "router/progress.h"
#include "router/record_template.h"
#include "router/router_file.h"
#include "router/sha256.h"
#include "router/task_data.h"
#include "router_test_util.h"
#include "test_util.h"

namespace tokenlora {
namespace {

using testing::ExpectInputError;

using nlohmann::json;
using testing::DataPath;
using testing::SourcePath;
using testing::TempDir;

TEST(Sha256, KnownVectors) {
  const auto hex = [](std::string_view s) {
    Sha256 h;
    h.Update(s);
    return h.HexDigest();
  };
  EXPECT_EQ(hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  // Chunked updates across block boundaries give the same digest.
  const std::string million(1'000'000, 'a');
  Sha256 h;
  for (size_t i = 0; i < million.size(); i += 777) h.Update(std::string_view(million).substr(i, 777));
  EXPECT_EQ(h.HexDigest(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(RecordTemplate, BuiltinsReproduceTheReferenceFormats) {
  const json gsm = {{"question", "Q?"}, {"answer", "A #### 4"}};
  EXPECT_EQ(RecordTemplate::Parse("gsm8k").Format(gsm), "Question: Q?\n\nAnswer: A #### 4");
  const json arc_ai2 = json::parse(R"({"question": {"stem": "Why?", "choices": [{"text": "x", "label": "A"},
      {"text": "y", "label": "B"}]}, "answerKey": "B"})");
  const json arc_hf =
      json::parse(R"({"question": "Why?", "choices": {"text": ["x", "y"], "label": ["A", "B"]},
      "answerKey": "B"})");
  const std::string arc = "Question: Why?\nChoices: A. x\nB. y\n\nAnswer: B";
  EXPECT_EQ(RecordTemplate::Parse("arc_challenge").Format(arc_ai2), arc);
  EXPECT_EQ(RecordTemplate::Parse("arc_challenge").Format(arc_hf), arc);
  const json squad = json::parse(R"({"context": "C.", "question": "Q?", "answers": {"text": ["a1", "a2"]}})");
  EXPECT_EQ(RecordTemplate::Parse("squad").Format(squad), "Context:\nC.\n\nQuestion: Q?\n\nAnswer: a1");
  json code = {{"instruction", "Do."}, {"input", "in"}, {"output", "out"}};
  EXPECT_EQ(RecordTemplate::Parse("codealpaca").Format(code), "Do.\nInput: in\n\nAnswer: out");
  code["input"] = "";
  EXPECT_EQ(RecordTemplate::Parse("codealpaca").Format(code), "Do.\n\nAnswer: out");
  // NAME_prompt: the text before the answer, which need not exist.
  EXPECT_EQ(RecordTemplate::Parse("gsm8k_prompt").Format({{"question", "Q?"}}), "Question: Q?\n\nAnswer:");
  EXPECT_EQ(RecordTemplate::Parse("arc_challenge_prompt").Format(arc_ai2), "Question: Why?\nChoices: A. x\nB. y\n\nAnswer:");
  EXPECT_EQ(RecordTemplate::Parse("squad_prompt").Format(squad), "Context:\nC.\n\nQuestion: Q?\n\nAnswer:");
  EXPECT_EQ(RecordTemplate::Parse("codealpaca_prompt").Format(code), "Do.\n\nAnswer:");
  EXPECT_TRUE(RecordTemplate::IsBuiltin("squad_prompt"));
  EXPECT_FALSE(RecordTemplate::IsBuiltin("_prompt"));
}

TEST(RecordTemplate, CustomTemplates) {
  const json r = json::parse(R"({"q": {"stem": "S"}, "list": ["a", "b"], "n": 3, "ok": true})");
  EXPECT_EQ(RecordTemplate::Parse("{q.stem} {list.1} {n} {ok} {{x}}").Format(r), "S b 3 true {x}");
  ExpectInputError([&] { RecordTemplate::Parse("{missing}").Format(r); },
                   "field 'missing' is missing (the record has: list, n, ok, q)");
  ExpectInputError([&] { RecordTemplate::Parse("{q.other}").Format(r); },
                   "field 'q.other' is missing (it has: stem)");
  ExpectInputError([&] { RecordTemplate::Parse("{list}").Format(r); }, "pick an item: 'list.0'");
  ExpectInputError([&] { RecordTemplate::Parse("{list.x}").Format(r); },
                   "field 'list' is a list; index it with a number");
  ExpectInputError([&] { RecordTemplate::Parse("{list.5}").Format(r); },
                   "field 'list.5' is out of range: the list has 2 items");
  ExpectInputError([&] { RecordTemplate::Parse("{n.x}").Format(r); },
                   "field 'n' is a number, so it has no 'x'");
  ExpectInputError([] { RecordTemplate::Parse("a {b"); }, "'{' at offset 2 is not closed");
  ExpectInputError([] { RecordTemplate::Parse("a } {b}"); }, "'}' at offset 2 has no '{'");
  ExpectInputError([] { RecordTemplate::Parse("{a..b}"); }, "is not a field name");
  ExpectInputError([] { RecordTemplate::Parse("gsm"); }, "unknown template 'gsm'");
}

// The Python transcription of the reference's formatters, on real records.
TEST(RecordTemplate, MatchesPythonOnDataSetRecords) {
  std::ifstream in(SourcePath("tests/golden/router/router.json"));
  const json golden = json::parse(in);
  int checked = 0;
  for (const json& f : golden["formatted"]) {
    std::ifstream data(DataPath(f["file"].get<std::string>()));
    if (!data) {
      testing::MissingData(DataPath(f["file"].get<std::string>()));
      continue;
    }
    std::string line;
    for (int i = 0; i <= f["line"].get<int>(); ++i) std::getline(data, line);
    const std::string name = f["task"].get<std::string>();
    EXPECT_EQ(RecordTemplate::Parse(name).Format(json::parse(line)), f["text"].get<std::string>()) << name;
    ++checked;
  }
  if (checked == 0) return;
  EXPECT_EQ(checked, static_cast<int>(golden["formatted"].size()));
}

TEST(TaskSpec, Parse) {
  TaskSpec s = TaskSpec::Parse("squad=dev.jsonl[:5696]:squad");
  EXPECT_EQ(s.name, "squad");
  EXPECT_EQ(s.file, "dev.jsonl");
  EXPECT_EQ(s.slice.text, "[:5696]");
  EXPECT_EQ(s.template_spec, "squad");
  s = TaskSpec::Parse("gsm8k=train.jsonl");
  EXPECT_EQ(s.template_spec, "");
  EXPECT_EQ(s.Template().spec(), "gsm8k");
  s = TaskSpec::Parse(R"(q=a.jsonl:Q: {question}\n\nA:\t\\)");
  EXPECT_EQ(s.template_spec, "Q: {question}\n\nA:\t\\");
  ExpectInputError([] { TaskSpec::Parse("mine=a.jsonl").Template(); }, "no template; add :TEMPLATE");
  ExpectInputError([] { TaskSpec::Parse("a.jsonl"); }, "no '='");
  ExpectInputError([] { TaskSpec::Parse("bad name=a.jsonl"); }, "must be letters, digits");
  ExpectInputError([] { TaskSpec::Parse("a=f.jsonl[:9"); }, "is not closed");
  ExpectInputError([] { TaskSpec::Parse("a=f.jsonl[x:]"); }, "'x' is not a record number or percentage");
  ExpectInputError([] { TaskSpec::Parse("a=f.jsonl:"); }, "empty template");
}

TEST(RecordSlice, ResolvesLikeDatasets) {
  const auto r = [](const char* s, int64_t n) { return RecordSlice::Parse(s).Resolve(n); };
  EXPECT_EQ(r("", 10), (std::pair<int64_t, int64_t>{0, 10}));
  EXPECT_EQ(r("[:90%]", 2017), (std::pair<int64_t, int64_t>{0, 1815}));
  EXPECT_EQ(r("[90%:]", 2017), (std::pair<int64_t, int64_t>{1815, 2017}));
  EXPECT_EQ(r("[5696:]", 10570), (std::pair<int64_t, int64_t>{5696, 10570}));
  EXPECT_EQ(r("[-3:]", 10), (std::pair<int64_t, int64_t>{7, 10}));
  EXPECT_EQ(r("[:50%]", 5), (std::pair<int64_t, int64_t>{0, 2}));  // round(2.5) = 2, half to even
  EXPECT_EQ(r("[:50%]", 7), (std::pair<int64_t, int64_t>{0, 4}));  // round(3.5) = 4
  EXPECT_EQ(r("[8:3]", 10), (std::pair<int64_t, int64_t>{8, 8}));
  EXPECT_EQ(r("[:100]", 10), (std::pair<int64_t, int64_t>{0, 10}));
}

std::string WriteJsonl(const std::string& text) {
  const std::string path = TempDir() + "/data.jsonl";
  WriteFileAtomically(path, text);
  return path;
}

TEST(TaskRecords, StreamsWithSlicesLimitsAndLineNumbers) {
  const std::string path = WriteJsonl(
      "{\"question\": \"q1\", \"answer\": \"a1\"}\n\n{\"question\": \"q2\", \"answer\": \"a2\"}\n"
      "{\"question\": \"q3\"}\nnot json\n{\"question\": \"q5\", \"answer\": \"a5\"}\n");
  const TaskSpec spec = TaskSpec::Parse("gsm8k=" + path);
  {
    TaskRecords records(spec, spec.Template(), -1, /*skip_bad=*/false);
    EXPECT_EQ(records.total(), 5);
    std::vector<FormattedRecord> batch;
    ASSERT_TRUE(records.NextBatch(2, &batch));
    EXPECT_EQ(batch[1].text, "Question: q2\n\nAnswer: a2");
    EXPECT_EQ(batch[1].line, 3);
    ExpectInputError(
        [&] { records.NextBatch(2, &batch); },
        path +
            ":4: field 'answer' is missing (the record has: question) (template 'gsm8k') — check the "
            "template's field names, or pass --skip-bad");
  }
  {
    TaskRecords records(spec, spec.Template(), -1, /*skip_bad=*/true);
    std::vector<FormattedRecord> batch;
    while (records.NextBatch(10, &batch)) {
    }
    EXPECT_EQ(batch.size(), 3u);
    EXPECT_EQ(records.skipped(), 2);
    ASSERT_EQ(records.skip_messages().size(), 2u);
    EXPECT_NE(records.skip_messages()[1].find(path + ":5: not valid JSON"), std::string::npos);
    EXPECT_EQ(records.done(), 5);
  }
  {
    const TaskSpec sliced = TaskSpec::Parse("gsm8k=" + path + "[1:]");
    TaskRecords records(sliced, sliced.Template(), 1, false);
    std::vector<FormattedRecord> batch;
    ASSERT_TRUE(records.NextBatch(10, &batch));
    ASSERT_EQ(batch.size(), 1u);
    EXPECT_EQ(batch[0].line, 3);
    EXPECT_FALSE(records.NextBatch(10, &batch));
  }
  ExpectInputError(
      [] {
        TaskRecords(TaskSpec::Parse("gsm8k=/nonexistent.jsonl"), RecordTemplate::Parse("gsm8k"), -1, false);
      },
      "cannot open '/nonexistent.jsonl'");
}

TEST(Progress, Durations) {
  EXPECT_EQ(FormatDuration(5), "5s");
  EXPECT_EQ(FormatDuration(91), "1m31s");
  EXPECT_EQ(FormatDuration(7500), "2h05m");
  EXPECT_EQ(FormatDuration(-3), "0s");
}

RouterFile SmallRouterFile() {
  RouterFile f;
  f.embedder = {"tiny", std::string(64, 'a'), 3, 8, "mean", true};
  f.tasks.push_back({"math", "m.jsonl[:10]", "gsm8k", 10, 1, {0.1f, -0.2f, 1.0f / 3.0f}, {}});
  f.tasks.push_back({"code", "c.jsonl", "{instruction}\n", 4, 0, {1e-8f, 0.5f, -123.456f}, {}});
  return f;
}

TEST(RouterFile, RoundTripsExactly) {
  const RouterFile f = SmallRouterFile();
  const std::string path = TempDir() + "/router.json";
  f.Save(path);
  const RouterFile g = RouterFile::Load(path);
  EXPECT_EQ(g.embedder.sha256, f.embedder.sha256);
  ASSERT_EQ(g.tasks.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(g.tasks[i].name, f.tasks[i].name);
    EXPECT_EQ(g.tasks[i].template_spec, f.tasks[i].template_spec);
    EXPECT_EQ(g.tasks[i].records, f.tasks[i].records);
    EXPECT_EQ(g.tasks[i].skipped, f.tasks[i].skipped);
    EXPECT_EQ(g.tasks[i].centroid, f.tasks[i].centroid);  // bit-exact floats
  }
  EXPECT_EQ(g.Serialize(), f.Serialize());
}

TEST(RouterFile, ErrorsNameTheField) {
  const std::string good = SmallRouterFile().Serialize();
  const auto edit = [&](const std::function<void(json&)>& fn) {
    json j = json::parse(good);
    fn(j);
    return j.dump();
  };
  ExpectInputError([&] { RouterFile::Parse("{", "r.json"); }, "r.json: not valid JSON");
  ExpectInputError([&] { RouterFile::Parse(edit([](json& j) { j["format"] = "x"; }), "r.json"); },
                   "r.json: format:");
  ExpectInputError([&] { RouterFile::Parse(edit([](json& j) { j["version"] = 9; }), "r.json"); },
                   "version 9 is not supported");
  ExpectInputError([&] { RouterFile::Parse(edit([](json& j) { j["embedder"].erase("sha256"); }), "r.json"); },
                   "embedder.sha256: missing");
  ExpectInputError(
      [&] { RouterFile::Parse(edit([](json& j) { j["tasks"][1]["centroid"].erase(0); }), "r.json"); },
      "tasks[1].centroid: expected 3 numbers (embedder.dim), got 2");
  ExpectInputError(
      [&] { RouterFile::Parse(edit([](json& j) { j["tasks"][1]["name"] = "math"; }), "r.json"); },
      "tasks[1].name: task 'math' appears twice");
  ExpectInputError([&] { RouterFile::Parse(edit([](json& j) { j["tasks"] = json::array(); }), "r.json"); },
                   "tasks: expected a non-empty list");
  // Task names follow --task's rule: an empty name (no adapter can match it) is refused.
  ExpectInputError([&] { RouterFile::Parse(edit([](json& j) { j["tasks"][0]["name"] = ""; }), "r.json"); },
                   "tasks[0].name: task name '' must be non-empty");
  ExpectInputError([&] { RouterFile::Parse(edit([](json& j) { j["tasks"][0]["name"] = "a b"; }), "r.json"); },
                   "tasks[0].name: task name 'a b' must be non-empty: letters, digits");
}

}  // namespace
}  // namespace tokenlora
